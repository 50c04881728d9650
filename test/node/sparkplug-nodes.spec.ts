/**
 * uns-sparkplug-edge + uns-sparkplug-device in a Node-RED runtime (node-red-node-test-helper) against
 * an in-process aedes broker on a free port: births from tag batches, DDATA by exception, rejected
 * batches (nothing published, Catch sees the error), DCMD → write command on the output, ids with
 * + / # refused at configuration time, credentials kept out of the flow, NDEATH on unload, and every
 * timer and socket gone afterwards (test/helpers/leaks.ts). Payloads are decoded with protobufjs.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import sparkplugNodes = require('../../nodes/sparkplug/sparkplug');
import { DataType } from '../../lib/sparkplug/datatypes';
import { encodePayload } from '../../lib/sparkplug/payload';
import { startAedes, type AedesBroker } from '../helpers/aedes';
import { describeWithLeakDetector } from '../helpers/leaks';
import { oracleDecode, type OracleDecoded } from '../helpers/sparkplug-oracle';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { helper, type Call, type Status } from '../helpers/node-red-runtime';


interface Seen { topic: string; decoded: OracleDecoded }

const asset = 'acme/plant1/press/line2/cell1/drive7';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describeWithLeakDetector('sparkplug nodes (uns-sparkplug-edge, uns-sparkplug-device) on aedes', function () {
  this.timeout(15000);
  let aedes: AedesBroker;
  let dir: string;
  let observer: MqttClient;
  let seen: Seen[];

  before((done) => { helper.startServer(done); });
  after((done) => { helper.stopServer(done); });

  beforeEach(async () => {
    aedes = await startAedes();
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-node-'));
    seen = [];
    observer = connect(aedes.url, { reconnectPeriod: 0 });
    observer.on('message', (topic, payload) => {
      // The test's own garbage commands come back too: they are not what is being checked. STATE is JSON.
      if (topic.startsWith('spBv1.0/STATE/')) seen.push({ topic, decoded: { metrics: [] } });
      else if (!topic.includes('/DCMD/')) seen.push({ topic, decoded: oracleDecode(payload) });
    });
    await observer.subscribeAsync('spBv1.0/#', { qos: 1 });
  });

  afterEach(async () => {
    await helper.unload();
    await observer.endAsync(true);
    await aedes.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function flow(edge: Record<string, unknown> = {}, device: Record<string, unknown> = {}): object[] {
    return [
      { id: 'edge', type: 'uns-sparkplug-edge', groupId: 'Plant 1', edgeNodeId: 'gw-1', host: '127.0.0.1', port: aedes.port, protocolVersion: '4', reconnectMin: 0.2, reconnectMax: 1, bdSeqDir: dir, storeDir: join(dir, 'store'), ...edge },
      { id: 'dev', type: 'uns-sparkplug-device', edge: 'edge', deviceId: 'drive-7', assetPath: asset, deathOnBadQuality: true, period: 1, missedPeriods: 0, writable: true, wires: [['out']], ...device },
      { id: 'out', type: 'helper' },
    ];
  }

  const topics = (): string[] => seen.map((s) => s.topic);

  it('tag batches → NBIRTH, DBIRTH with every metric, then DDATA with the changes only; status follows', async () => {
    await helper.load(sparkplugNodes, flow());
    const statuses: Status[] = [];
    helper.getNode('dev').on('call:status', (call: Call) => statuses.push(call.args[0] as Status));
    await waitFor('NBIRTH', () => topics().includes('spBv1.0/Plant 1/NBIRTH/gw-1'));
    helper.getNode('dev').receive({ topic: asset, payload: { Speed: 12.5, Energy: 9223372036854775807n, Running: true }, meta: { Energy: { type: 'Int64', unit: 'Wh' } } });
    await waitFor('DBIRTH', () => topics().includes('spBv1.0/Plant 1/DBIRTH/gw-1/drive-7'));
    helper.getNode('dev').receive({ topic: asset, payload: { Speed: 13, Energy: 9223372036854775807n, Running: true } });
    await waitFor('DDATA', () => topics().includes('spBv1.0/Plant 1/DDATA/gw-1/drive-7'));

    const birth = seen.find((s) => s.topic.includes('DBIRTH'))!.decoded;
    assert.deepEqual(birth.metrics.map((m) => [m.name, m.datatype]), [['Speed', DataType.Double], ['Energy', DataType.Int64], ['Running', DataType.Boolean]]);
    assert.equal(birth.metrics[1].long_value, '9223372036854775807');
    assert.deepEqual(birth.metrics[1].properties, { keys: ['engUnit'], values: [{ type: DataType.String, string_value: 'Wh', value: 'string_value' }] });
    const data = seen.find((s) => s.topic.includes('DDATA'))!.decoded;
    assert.equal(data.metrics.length, 1, 'only Speed changed');
    assert.equal(data.metrics[0].alias, birth.metrics[0].alias);
    assert.equal(data.metrics[0].name, undefined);
    assert.equal(data.metrics[0].double_value, 13);
    await waitFor('born status', () => statuses.some((s) => s.text === 'sparkplug.status.born'));
    assert.deepEqual(statuses.at(-1), { fill: 'green', shape: 'dot', text: 'sparkplug.status.born' });
  });

  it('a batch with a value that does not fit its type is refused whole: error for Catch, red status, nothing published', async () => {
    await helper.load(sparkplugNodes, flow());
    await waitFor('NBIRTH', () => topics().length > 0);
    const errors: unknown[] = [];
    const statuses: Status[] = [];
    helper.getNode('dev').on('call:error', (call: Call) => errors.push(call.args[0]));
    helper.getNode('dev').on('call:status', (call: Call) => statuses.push(call.args[0] as Status));
    helper.getNode('dev').receive({ topic: asset, payload: { Torque: 70000, Speed: 1 }, meta: { Torque: { type: 'Int16' } } });
    helper.getNode('dev').receive({ topic: 'other/asset', payload: { Speed: 1 } });
    await waitFor('two errors', () => errors.length === 2);
    assert.match(String(errors[0]), /metric "Torque" \(Int16\): 70000 is out of range -32768…32767/);
    assert.match(String(errors[1]), /is not the asset path/);
    assert.deepEqual(statuses.at(-1), { fill: 'red', shape: 'ring', text: 'sparkplug.status.rejected' });
    await sleep(200);
    assert.deepEqual(topics(), ['spBv1.0/Plant 1/NBIRTH/gw-1']);
  });

  it('a DCMD by alias becomes a write command on the output; a garbage DCMD is refused with a warning and counted', async () => {
    await helper.load(sparkplugNodes, flow());
    const out: { topic: string; payload: Record<string, unknown> }[] = [];
    helper.getNode('out').on('input', (msg: never) => out.push(msg));
    const warnings: unknown[] = [];
    helper.getNode('edge').on('call:warn', (call: Call) => warnings.push(call.args[0]));
    await waitFor('NBIRTH', () => topics().length > 0);
    helper.getNode('dev').receive({ topic: asset, payload: { Setpoint: 10, Mode: 'auto' }, meta: { Setpoint: { type: 'Float' } } });
    await waitFor('DBIRTH', () => topics().some((t) => t.includes('DBIRTH')));
    const birth = seen.find((s) => s.topic.includes('DBIRTH'))!.decoded;
    const alias = Number(birth.metrics.find((m) => m.name === 'Setpoint')!.alias);
    observer.publish('spBv1.0/Plant 1/DCMD/gw-1/drive-7', Buffer.from([0x12, 0xff, 0x01]));
    observer.publish('spBv1.0/Plant 1/DCMD/gw-1/drive-7', encodePayload({ timestamp: 1700000000000, metrics: [{ alias, datatype: DataType.Float, value: 42.5 }] }, { omitDatatypes: true }));
    await waitFor('a write command', () => out.length === 1);
    assert.deepEqual({ topic: out[0].topic, payload: out[0].payload }, { topic: asset, payload: { Setpoint: 42.5 } });
    // Who sent it, for the sink's audit record: no primary host is configured, so the node's own session.
    assert.deepEqual((out[0] as { principal?: unknown }).principal, { via: 'sparkplug', id: 'sparkplug:uns-edge-edge (no primary host)', clientId: 'uns-edge-edge' });
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]), /DCMD for device "drive-7" from sparkplug:uns-edge-edge \(no primary host\) ignored: not a Sparkplug B payload/);
    const nbirth = seen.find((s) => s.topic.includes('NBIRTH'))!.decoded;
    const rejectedAlias = nbirth.metrics.find((m) => m.name === 'Node Info/Rejected Commands')!.alias;
    await waitFor('NDATA with Rejected Commands = 1', () => seen.some((s) => s.topic.includes('/NDATA/') &&
      s.decoded.metrics.some((m) => m.alias === rejectedAlias && m.long_value === '1')));
  });

  it('refuses ids with + / # at configuration time with an error naming the id and the character, and publishes nothing for them', async () => {
    const errors = (): string[] => (helper as unknown as { log(): { args: [{ level: number; msg: unknown }][] } }).log().args
      .map(([entry]) => entry).filter((entry) => entry.level === 20).map((entry) => String(entry.msg));
    await helper.load(sparkplugNodes, flow({ groupId: 'Plant/1' }));
    assert.ok(errors().includes('sparkplug.errors.config: Sparkplug group id "Plant/1" contains "/" (not allowed: + / #)'), errors().join('\n'));
    await sleep(300);
    assert.deepEqual(topics(), []);
    await helper.unload();
    await helper.load(sparkplugNodes, flow({}, { deviceId: 'drive#7' }));
    assert.ok(errors().includes('sparkplug.errors.config: Sparkplug device id "drive#7" contains "#" (not allowed: + / #)'), errors().join('\n'));
    await waitFor('NBIRTH of the edge node', () => topics().length > 0);
    await sleep(200);
    assert.deepEqual(topics(), ['spBv1.0/Plant 1/NBIRTH/gw-1']);
  });

  it('keeps user and password out of the flow and publishes NDEATH (bdSeq of the session) on unload', async () => {
    await helper.load(sparkplugNodes, flow(), { edge: { user: 'edge-user', password: 's3cret' } });
    await waitFor('NBIRTH', () => topics().length > 0);
    assert.ok(!JSON.stringify(helper._redNodes.getFlows()).includes('s3cret'));
    const bdSeq = seen[0].decoded.metrics.find((m) => m.name === 'bdSeq')!.long_value;
    await helper.unload();
    await waitFor('NDEATH', () => topics().includes('spBv1.0/Plant 1/NDEATH/gw-1'));
    const death = seen.find((s) => s.topic.endsWith('NDEATH/gw-1'))!.decoded;
    assert.deepEqual(death.metrics.map((m) => [m.name, m.long_value]), [['bdSeq', bdSeq]]);
    assert.equal(death.seq, undefined);
  });

  it('DDEATH when every metric of a batch is bad, DBIRTH again with the next good batch', async () => {
    await helper.load(sparkplugNodes, flow());
    await waitFor('NBIRTH', () => topics().length > 0);
    const dev = helper.getNode('dev');
    dev.receive({ topic: asset, payload: { Speed: 1, Temp: 20 } });
    dev.receive({ topic: asset, payload: { Speed: null, Temp: null }, meta: { Speed: { quality: 'bad' }, Temp: { quality: 'bad' } } });
    dev.receive({ topic: asset, payload: { Speed: 2, Temp: 21 } });
    await waitFor('DBIRTH, DDEATH, DBIRTH', () => topics().filter((t) => t.includes('/drive-7')).length === 3);
    assert.deepEqual(topics().filter((t) => t.includes('/drive-7')).map((t) => t.split('/')[2]), ['DBIRTH', 'DDEATH', 'DBIRTH']);
  });

  it('store-and-forward: device data while the broker is down is sent after the births with is_historical', async () => {
    await helper.load(sparkplugNodes, flow());
    await waitFor('NBIRTH', () => topics().length > 0);
    const dev = helper.getNode('dev');
    dev.receive({ topic: asset, payload: { Speed: 1 }, meta: { Speed: { type: 'Int32' } } });
    await waitFor('DBIRTH', () => topics().some((t) => t.includes('/DBIRTH/')));
    const port = aedes.port;
    await aedes.close();
    await sleep(100);
    for (let v = 2; v <= 4; v++) dev.receive({ topic: asset, payload: { Speed: v } });
    const mark = seen.length;
    aedes = await startAedes(port);
    await observer.endAsync(true);
    observer = connect(aedes.url, { reconnectPeriod: 0 });
    observer.on('message', (topic, payload) => seen.push({ topic, decoded: oracleDecode(payload) }));
    await observer.subscribeAsync('spBv1.0/#', { qos: 1 });
    await waitFor('historical DDATA', () => seen.slice(mark).some((s) => s.topic.includes('/DDATA/') && s.decoded.metrics.some((m) => m.int_value === 4 && m.is_historical)), 10000);
    const historical = seen.slice(mark).filter((s) => s.topic.includes('/DDATA/')).flatMap((s) => s.decoded.metrics.filter((m) => m.is_historical).map((m) => m.int_value));
    assert.deepEqual(historical, [2, 3, 4]);
  });

  it('DDEATH after N missed periods without a batch (3 × 0.1 s), DBIRTH again with the next batch; the timer is gone on unload', async () => {
    await helper.load(sparkplugNodes, flow({}, { period: 0.1, missedPeriods: 3 }));
    await waitFor('NBIRTH', () => topics().length > 0);
    const dev = helper.getNode('dev');
    dev.receive({ topic: asset, payload: { Speed: 1 } });
    const bornAt = Date.now();
    await waitFor('DDEATH', () => topics().some((t) => t.endsWith('/DDEATH/gw-1/drive-7')));
    assert.ok(Date.now() - bornAt >= 250, `DDEATH after ${Date.now() - bornAt} ms`);
    dev.receive({ topic: asset, payload: { Speed: 1 } });
    await waitFor('second DBIRTH', () => topics().filter((t) => t.endsWith('/DBIRTH/gw-1/drive-7')).length === 2);
    assert.deepEqual(topics().filter((t) => t.includes('/drive-7')).map((t) => t.split('/')[2]), ['DBIRTH', 'DDEATH', 'DBIRTH']);
  });

  it('uns-sparkplug-host: tag batches at the mapped UNS path, online states, and a write by asset path that reaches the device\'s output with who sent it', async () => {
    await helper.load(sparkplugNodes, [
      ...flow({ primaryHostId: 'scada' }),
      { id: 'host', type: 'uns-sparkplug-host', hostId: 'scada', groups: 'Plant 1', host: '127.0.0.1', port: aedes.port, protocolVersion: '4', reconnectMin: 0.2, reconnectMax: 1, devicePath: 'acme/{group}/{edge}/{device}', nodePath: 'acme/{group}/{edge}', reorderTimeout: 1, wires: [['batches'], ['states']] },
      { id: 'batches', type: 'helper' },
      { id: 'states', type: 'helper' },
    ]);
    const batches: TagBatch[] = [];
    const states: { topic: string; payload: { online: boolean } }[] = [];
    const writes: { topic: string; payload: Record<string, unknown> }[] = [];
    helper.getNode('batches').on('input', (msg: never) => batches.push(msg));
    helper.getNode('states').on('input', (msg: never) => states.push(msg));
    helper.getNode('out').on('input', (msg: never) => writes.push(msg));
    await waitFor('STATE online', () => topics().includes('spBv1.0/STATE/scada'));
    // The host may have come up after the edge node's NBIRTH: then it asks for a rebirth on the first DATA.
    helper.getNode('dev').receive({ topic: asset, payload: { Speed: 12.5, Count: 9007199254740993n }, meta: { Speed: { type: 'Float' } } });
    await waitFor('a device batch at the host', () => batches.some((b) => b.topic === 'acme/Plant 1/gw-1/drive-7'), 10000);
    const batch = batches.find((b) => b.topic === 'acme/Plant 1/gw-1/drive-7')!;
    assert.deepEqual(batch.payload, { Speed: 12.5, Count: 9007199254740993n });
    assert.ok(states.some((s) => s.topic === 'acme/Plant 1/gw-1/drive-7' && s.payload.online));
    const logged = (): string[] => (helper as unknown as { log(): { args: [{ level: number; msg: unknown }][] } }).log().args.map(([e]) => String(e.msg));
    helper.getNode('host').receive({ topic: 'acme/Plant 1/gw-1/drive-7', payload: { Speed: 20 }, user: 'alice' });
    await waitFor('the write at the device output', () => writes.length === 1);
    assert.deepEqual({ topic: writes[0].topic, payload: writes[0].payload }, { topic: asset, payload: { Speed: 20 } });
    // The DCMD came from the primary host the edge node waits for: that is who asked, at the device's output.
    assert.deepEqual((writes[0] as { principal?: unknown }).principal, { via: 'sparkplug', id: 'sparkplug-host:scada', hostId: 'scada', clientId: 'uns-edge-edge' });
    // The host's audit line names who asked it to write (senderOf(msg)), for a write sent and one refused.
    assert.ok(logged().includes('write by alice to acme/Plant 1/gw-1/drive-7 [Speed]: sent'), logged().join('\n'));
    helper.getNode('host').receive({ topic: 'acme/Plant 1/gw-1/drive-7', payload: { Nope: 1 }, principal: { via: 'mqtt', id: 'mqtt:hmi-3 (user bob)' } });
    await waitFor('a refusal line', () => logged().some((line) => line.startsWith('write by mqtt:hmi-3 (user bob) to acme/Plant 1/gw-1/drive-7 [Nope]: refused (')));
  });

  it('uns-sparkplug-host: a write to an unknown asset path is an error for Catch; a host id with "+" is refused at configuration time', async () => {
    await helper.load(sparkplugNodes, [{ id: 'host', type: 'uns-sparkplug-host', hostId: 'scada', groups: '', host: '127.0.0.1', port: aedes.port, protocolVersion: '4', wires: [[], []] }]);
    const errors: unknown[] = [];
    helper.getNode('host').on('call:error', (call: Call) => errors.push(call.args[0]));
    await waitFor('STATE online', () => topics().includes('spBv1.0/STATE/scada'));
    helper.getNode('host').receive({ topic: 'acme/nowhere', payload: { Speed: 1 } });
    await waitFor('an error', () => errors.length === 1);
    assert.match(String(errors[0]), /no Sparkplug edge node or device with the asset path "acme\/nowhere"/);
    await helper.unload();
    await helper.load(sparkplugNodes, [{ id: 'host', type: 'uns-sparkplug-host', hostId: 'scada+1', host: '127.0.0.1', port: aedes.port, wires: [[], []] }]);
    const logged = (helper as unknown as { log(): { args: [{ level: number; msg: unknown }][] } }).log().args.map(([e]) => String(e.msg));
    assert.ok(logged.includes('sparkplug.errors.config: Sparkplug host id "scada+1" contains "+" (not allowed: + / #)'), logged.join('\n'));
  });
});
