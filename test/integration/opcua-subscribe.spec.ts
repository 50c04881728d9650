/**
 * lib/opcua/subscriber.ts against a real node-opcua server: deadband asked of the server where it
 * accepts it, and a warning (never silently no filter) where it does not.
 */
import { strict as assert } from 'node:assert';
import type { OpcUaConnection } from '../../lib/opcua/connection';
import { MonitoredMetricDefinition, OpcUaSubscriber } from '../../lib/opcua/subscriber';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { newConnection, trustBothWays, waitForState } from '../helpers/opcua-client-harness';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';

describe('OPC UA subscribe: deadband (real node-opcua server)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let connection: OpcUaConnection;
  let subscriber: OpcUaSubscriber;

  afterEach(async () => {
    await subscriber?.stop();
    await connection?.close();
    await server?.dispose();
  });

  /** Subscribe; wait until every name in `first` has a value (at most 20 s), then `ms` more. */
  async function run(metrics: MonitoredMetricDefinition[], ms: number, first: string[] = []) {
    server = await startTestServer({ trustAllClients: true });
    const made = newConnection({ endpointUrl: server.endpointUrl });
    connection = made.connection;
    await trustBothWays(await made.pki(), server);
    subscriber = new OpcUaSubscriber({ connection, topic: 'a/b/c/d/e/f', metrics, publishingInterval: 100, samplingInterval: 100, staleAfter: 3 });
    const batches: TagBatch[] = [];
    const warnings: string[] = [];
    subscriber.on('batch', (b: TagBatch) => batches.push(b));
    subscriber.on('warning', (w: string) => warnings.push(w));
    connection.start();
    subscriber.start();
    await waitForState(connection, (s) => s === 'connected');
    const deadline = Date.now() + 20_000;
    while (!first.every((name) => batches.some((b) => name in b.payload)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, ms));
    const values = (name: string) => batches.filter((b) => name in b.payload).map((b) => b.payload[name]);
    return { values, warnings };
  }

  it('absolute and percent (of EURange) deadbands are applied by the server where it accepts them', async () => {
    const { values, warnings } = await run([
      { name: 'speed', nodeId: 'ns=1;s=Drive1.Speed', deadbandType: 'absolute', deadbandValue: 10 },
      { name: 'current', nodeId: 'ns=1;s=Drive1.Current', deadbandType: 'percent', deadbandValue: 10 },
    ], 4000);
    assert.deepEqual(warnings, []);
    const speeds = values('speed') as number[];
    assert.ok(speeds.length >= 2, JSON.stringify(speeds));
    for (let i = 1; i < speeds.length; i++) assert.ok(Math.abs(speeds[i] - speeds[i - 1]) > 10, JSON.stringify(speeds));
    // current moves 1.0..1.9 A, EURange 0..100 A: 10 % = 10 A, so only the first value is reported
    assert.equal(values('current').length, 1, JSON.stringify(values('current')));
  });

  it('several queued values of one item in one Publish response are all delivered, in order, in rounds (queue size > 1)', async () => {
    // Speed and current change every 100 ms (speed 100 + tick % 50); publishing every 500 ms with a queue of 10 brings
    // ~5 values of each per response: ~5 batches per response, each with both metrics (not one batch per value).
    // Sampling interval 0 (OPC 10000-4 §5.12.1.2: the fastest practical rate; node-opcua then reports every value
    // change of a variable set from source, as it happens): a sampling timer that a loaded machine delays would skip
    // a value that changed twice between two samples, which is sampling, not loss.
    server = await startTestServer({ trustAllClients: true });
    const made = newConnection({ endpointUrl: server.endpointUrl });
    connection = made.connection;
    await trustBothWays(await made.pki(), server);
    subscriber = new OpcUaSubscriber({ connection, topic: 'a/b/c/d/e/f', metrics: [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }, { name: 'current', nodeId: 'ns=1;s=Drive1.Current' }], publishingInterval: 500, samplingInterval: 0, queueSize: 10, staleAfter: 3 });
    const speeds: number[] = [];
    let both = 0;
    subscriber.on('batch', (b: TagBatch) => {
      if (typeof b.payload.speed === 'number') speeds.push(b.payload.speed);
      if (typeof b.payload.speed === 'number' && typeof b.payload.current === 'number') both++;
    });
    connection.start();
    subscriber.start();
    await waitForState(connection, (s) => s === 'connected');
    const deadline = Date.now() + 20_000;
    while (speeds.length < 25 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const steps = speeds.slice(2, 25).map((v, i) => (v - speeds[i + 1] + 50) % 50);
    assert.ok(speeds.length >= 25, `only ${speeds.length} values in 20 s: ${JSON.stringify(speeds)}`);
    assert.ok(steps.every((d) => d === 1), `every change, in order (steps of 1): ${JSON.stringify(speeds)}`);
    assert.ok(both >= speeds.length * 0.8, `${both} of ${speeds.length} batches with speed carry current too`);
  });

  it('a deadband the server refuses, or percent without EURange, is warned about and the values still flow', async () => {
    const { values, warnings } = await run([
      { name: 'name', nodeId: 'ns=1;s=Drive1.Name', deadbandType: 'absolute', deadbandValue: 1 },
      { name: 'mode', nodeId: 'ns=1;s=Drive1.Mode', deadbandType: 'percent', deadbandValue: 10 },
    ], 1000, ['name', 'mode']);
    assert.deepEqual(values('name'), ['pump']);
    assert.deepEqual(values('mode'), [1]);
    assert.ok(warnings.some((w) => /^mode: percent deadband needs an EURange/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /^name: the server did not take the absolute deadband \(refused by the server\)/.test(w)), warnings.join('\n'));
  });
});
