/**
 * lib/mqtt + lib/store + lib/uns against the embedded aedes broker (test/helpers/aedes.ts), with the
 * broker stopped and started again on the same port: the connection state machine, one 'down' per
 * outage, subscriptions re-established after a reconnect, uns-out → uns-in across the outage, and
 * close() leaving no timer or socket (test/helpers/leaks.ts).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MqttConnection, type ConnectionState } from '../../lib/mqtt/connection';
import { DiskQueue } from '../../lib/store/disk-queue';
import { StoreAndForward } from '../../lib/store/forwarder';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { UnsIn } from '../../lib/uns/uns-in';
import { UnsOut } from '../../lib/uns/uns-out';
import { startAedes, type AedesBroker } from '../helpers/aedes';
import { describeWithLeakDetector } from '../helpers/leaks';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, condition: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function connection(port: number, clientId: string): MqttConnection {
  return new MqttConnection({
    host: '127.0.0.1', port, protocolVersion: 4, clientId, keepaliveSec: 10, clean: true, connectTimeoutMs: 2000,
    backoff: { initialMs: 50, maxMs: 400, jitter: 0.5 },
  });
}

describeWithLeakDetector('MQTT connection and store-and-forward on aedes', function () {
  this.timeout(30000);
  let aedes: AedesBroker;
  let storeDir: string;
  const closers: Array<() => unknown> = [];

  beforeEach(async () => {
    aedes = await startAedes();
    storeDir = mkdtempSync(join(tmpdir(), 'uns-aedes-'));
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await aedes.close();
    rmSync(storeDir, { recursive: true, force: true });
  });

  it('walks idle → connecting → connected → backoff … → connected, with one down/up per outage', async () => {
    const conn = connection(aedes.port, 'state-machine');
    closers.push(() => conn.close());
    const states: ConnectionState[] = [conn.state];
    const downs: string[] = [];
    const ups: number[] = [];
    conn.on('state', (state) => states.push(state));
    conn.on('down', (reason) => downs.push(reason));
    conn.on('up', (ms) => ups.push(ms));
    conn.start();
    await waitFor('connected', () => conn.connected);
    assert.deepEqual(states, ['idle', 'connecting', 'connected']);
    assert.deepEqual(downs, [], 'a first connect that succeeds is no outage');

    const port = aedes.port;
    await aedes.close();
    await sleep(1500); // several retries while the broker is gone
    aedes = await startAedes(port);
    await waitFor('connected again', () => conn.connected);
    const retries = states.filter((s) => s === 'backoff').length;
    assert.ok(retries >= 3, `expected several retries, saw ${retries}`);
    assert.equal(downs.length, 1, 'one down event for the whole outage, not one per retry');
    assert.equal(ups.length, 1);
    assert.ok(ups[0] >= 1400, `outage of ${ups[0]} ms`);
    // Backoff is exponential and capped: at most ~ sum of 50·2^n capped at 400 ms over 1.5 s.
    assert.ok(retries < 15, `too many retries: ${retries}`);
    await conn.close();
    assert.equal(conn.state, 'closed');
  });

  it('re-subscribes after a reconnect, and uns-out → uns-in delivers what was published during the outage', async () => {
    const subscriberConn = connection(aedes.port, 'uns-in');
    let publisherConn = connection(aedes.port, 'uns-out');
    const queue = new DiskQueue({ dir: storeDir });
    let forwarder = new StoreAndForward(publisherConn, queue, { name: 'aedes-test', windowSize: 10, warn: () => undefined });
    const batches: TagBatch[] = [];
    const unsIn = new UnsIn({ topicPrefix: '', assetDepth: 6, mergeWindowMs: 0 }, (b) => batches.push(b), assert.fail);
    const unsOut = new UnsOut({ topicPrefix: '', qos: 1, retain: false, format: 'metric', deadband: { mode: 'off', band: 0, maxSilenceMs: 0, maxEntries: 1 } },
      (topic, payload, qos, retain) => forwarder.publish(topic, payload, qos, retain));
    closers.push(() => subscriberConn.close(), () => publisherConn.close(), () => forwarder.close(), () => queue.close(), () => unsIn.close());
    subscriberConn.subscribe('+/+/+/+/+/+/#', 1, (topic, payload) => unsIn.handleMessage(topic, payload));
    subscriberConn.start();
    publisherConn.start();
    await waitFor('both connected', () => subscriberConn.connected && publisherConn.connected);
    await sleep(50);
    const asset = 'acme/plant1/press/line2/cell1/drive7';
    unsOut.handle({ topic: asset, payload: { Seq: 0 } });
    await waitFor('the first batch', () => batches.length === 1);

    const port = aedes.port;
    await aedes.close();
    await waitFor('both notice', () => !subscriberConn.connected && !publisherConn.connected);
    for (let i = 1; i <= 50; i++) unsOut.handle({ topic: asset, payload: { Seq: i } });
    assert.equal(queue.count, 50);
    // The publishing gateway "restarts" (new connection, same queue) only once the subscriber is
    // back: aedes keeps no sessions, so messages drained before it re-subscribed would be lost.
    forwarder.close();
    await publisherConn.close();
    aedes = await startAedes(port);
    await waitFor('the subscriber back', () => subscriberConn.connected);
    await sleep(100); // SUBACK of the re-established subscription
    publisherConn = connection(port, 'uns-out-2');
    forwarder = new StoreAndForward(publisherConn, queue, { name: 'aedes-test', windowSize: 10, warn: () => undefined });
    publisherConn.start();
    await waitFor('all 51 values', () => batches.length === 51);
    assert.deepEqual(batches.map((b) => b.payload.Seq), Array.from({ length: 51 }, (_, i) => i));
    await waitFor('the queue acknowledged', () => queue.count === 0);
  });
});
