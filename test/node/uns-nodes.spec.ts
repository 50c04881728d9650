/**
 * uns-broker + uns-out + uns-in in a Node-RED runtime (node-red-node-test-helper) against an
 * in-process aedes broker on a free port: topics and payloads, retained state, rejected batches
 * (nothing published), uns-in tag batches, credentials kept out of the flow JSON, and every timer
 * and socket gone after unload (test/helpers/leaks.ts).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import unsNodes = require('../../nodes/uns/uns');
// The real core function node: what it builds comes from its vm sandbox, another JS realm.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as unknown;
import { startAedes, type AedesBroker } from '../helpers/aedes';
import { describeWithLeakDetector } from '../helpers/leaks';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { helper, type Call, type Status } from '../helpers/node-red-runtime';


interface Received { topic: string; payload: string; retain: boolean }

const asset = 'acme/plant1/press/line2/cell1/drive7';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A plain MQTT.js client on the broker that records what it receives. */
async function subscriber(url: string, filter = '#'): Promise<{ client: MqttClient; received: Received[] }> {
  const received: Received[] = [];
  const client = connect(url, { reconnectPeriod: 0 });
  client.on('message', (topic, payload, packet) => received.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, received };
}

/** Every status a node shows from now on. */
function statuses(id: string): Status[] {
  const seen: Status[] = [];
  helper.getNode(id)?.on('call:status', (call: Call) => seen.push(call.args[0] as Status));
  return seen;
}

describeWithLeakDetector('uns nodes (uns-broker, uns-out, uns-in) on aedes', function () {
  this.timeout(15000);
  let aedes: AedesBroker;
  let storeDir: string;
  const clients: MqttClient[] = [];

  before((done) => { helper.startServer(done); });
  after((done) => { helper.stopServer(done); });

  beforeEach(async () => {
    aedes = await startAedes();
    storeDir = mkdtempSync(join(tmpdir(), 'uns-node-store-'));
  });

  afterEach(async () => {
    await helper.unload();
    for (const client of clients.splice(0)) await client.endAsync(true);
    await aedes.close();
    rmSync(storeDir, { recursive: true, force: true });
  });

  const storedBytes = (): number => readdirSync(storeDir).filter((f) => f.endsWith('.log'))
    .reduce((sum, f) => sum + statSync(join(storeDir, f)).size, 0);

  const brokerNode = (extra: object = {}): object => ({
    id: 'b1', type: 'uns-broker', name: 'uns', host: '127.0.0.1', port: aedes.port, protocolVersion: '4',
    storeEnabled: true, storeDir, storeMaxMB: 10, storeMaxAgeDays: 7, reconnectMin: 0.1, reconnectMax: 1, ...extra,
  });

  async function loadConnected(flow: object[], credentials?: object): Promise<void> {
    let connected = false;
    aedes.broker.once('clientReady', () => { connected = true; });
    await helper.load([unsNodes, functionNode, catchNode], flow, credentials);
    await waitFor('the uns-broker to connect', () => connected);
    await sleep(20);
  }

  it('uns-out publishes one retained topic per metric with the UNS payload', async () => {
    await loadConnected([brokerNode(), { id: 'out', type: 'uns-out', broker: 'b1', qos: '1', retain: true, format: 'metric', deadbandMode: 'off', wires: [] }]);
    helper.getNode('out').receive({
      topic: asset, payload: { Current: 12.5, 'Motor/Temp': 41, Count: 2n ** 63n - 1n },
      meta: { Current: { unit: 'A', timestamp: 1718000000000 }, Count: { type: 'Int64' } }, timestamp: 1718000000001,
    });
    // A subscriber that arrives afterwards gets the current state: the topics are retained.
    await sleep(100);
    const late = await subscriber(aedes.url);
    clients.push(late.client);
    await waitFor('3 retained messages', () => late.received.length === 3);
    const byTopic = new Map(late.received.map((r) => [r.topic, r]));
    assert.deepEqual(byTopic.get(`${asset}/Current`), { topic: `${asset}/Current`, payload: '{"value":12.5,"timestamp":1718000000000,"quality":"good","unit":"A"}', retain: true });
    assert.equal(byTopic.get(`${asset}/Motor/Temp`)?.payload, '{"value":41,"timestamp":1718000000001,"quality":"good"}');
    assert.equal(byTopic.get(`${asset}/Count`)?.payload, '{"value":9223372036854775807,"timestamp":1718000000001,"quality":"good","type":"Int64"}');
  });

  it('uns-out rejects a malformed batch with a clear error, a red status, and publishes nothing of it', async () => {
    await loadConnected([brokerNode(), { id: 'out', type: 'uns-out', broker: 'b1', format: 'both', wires: [] }]);
    const published: string[] = [];
    aedes.broker.on('publish', (packet, client) => { if (client) published.push(packet.topic); });
    const errors: unknown[] = [];
    helper.getNode('out').on('call:error', (call: Call) => errors.push(call.args[0]));
    const seen = statuses('out');
    helper.getNode('out').receive({ topic: 'acme/plant1/press/li+ne/cell1/drive7', payload: { Current: 1, 'x#': 2, ok: 3 } });
    await sleep(200);
    assert.deepEqual(published, []);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /tag batch rejected: topic segment 4 "li\+ne" contains "\+"; metric "x#" contains "#"/);
    assert.deepEqual(seen.at(-1), { fill: 'red', shape: 'ring', text: 'uns.status.rejected' });
    // The next good batch goes through.
    helper.getNode('out').receive({ topic: asset, payload: { ok: 3 } });
    await waitFor('the good batch', () => published.length === 2);
    assert.deepEqual(published, [`${asset}/ok`, asset]);
  });

  it('uns-out publishes a tag batch built in a real function node (objects of the vm realm)', async () => {
    const func = `
      msg.topic = '${asset}';
      msg.payload = { Current: 12.5, Running: true, 'Motor/Temp': 41 };
      msg.meta = { Current: { unit: 'A', type: 'Float', quality: 'good' } };
      msg.timestamp = 1718000000000;
      return msg;`;
    await loadConnected([
      brokerNode(),
      { id: 'fn', type: 'function', func, outputs: 1, wires: [['out']], x: 100, y: 100, z: 'f1' },
      { id: 'out', type: 'uns-out', broker: 'b1', format: 'metric', wires: [], x: 300, y: 100, z: 'f1' },
      { id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['h1']], x: 100, y: 200, z: 'f1' },
      { id: 'h1', type: 'helper', z: 'f1' },
      { id: 'f1', type: 'tab' },
    ]);
    const caught: Array<{ error?: { message?: string } }> = [];
    helper.getNode('h1').on('input', (msg: never) => caught.push(msg));
    const sub = await subscriber(aedes.url, `${asset}/#`);
    clients.push(sub.client);
    helper.getNode('fn').receive({ payload: 'tick' });
    await waitFor('3 metrics from the function node', () => sub.received.length === 3 || caught.length > 0);
    assert.deepEqual(caught.map((msg) => msg.error?.message), []);
    const byTopic = new Map(sub.received.map((r) => [r.topic, r.payload]));
    assert.equal(byTopic.get(`${asset}/Current`), '{"value":12.5,"timestamp":1718000000000,"quality":"good","unit":"A","type":"Float"}');
    assert.equal(byTopic.get(`${asset}/Motor/Temp`), '{"value":41,"timestamp":1718000000000,"quality":"good"}');
  });

  /** fn (a real function node running `func`) → out (uns-out) and a Catch node for the flow; what reaches the broker and the Catch node. */
  async function functionNodeFlow(func: string, outConfig: object = {}): Promise<{ caught: string[]; published: string[] }> {
    await loadConnected([
      brokerNode(),
      { id: 'fn', type: 'function', func, outputs: 1, wires: [['out']], x: 100, y: 100, z: 'f1' },
      { id: 'out', type: 'uns-out', broker: 'b1', format: 'metric', wires: [], x: 300, y: 100, z: 'f1', ...outConfig },
      { id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['h1']], x: 100, y: 200, z: 'f1' },
      { id: 'h1', type: 'helper', z: 'f1' },
      { id: 'f1', type: 'tab' },
    ]);
    const caught: string[] = [];
    helper.getNode('h1').on('input', (msg: { error?: { message?: string } }) => caught.push(String(msg.error?.message)));
    const published: string[] = [];
    aedes.broker.on('publish', (packet, client) => { if (client) published.push(`${packet.topic} ${packet.payload.toString()}`); });
    return { caught, published };
  }

  it('uns-out refuses values that contradict meta.type and absurd timestamps from a function node; a Catch node sees why', async () => {
    const { caught, published } = await functionNodeFlow(`
      if (msg.payload === 'types') {
        return { topic: '${asset}', payload: { Torque: 70000, Mode: 'abc', ok: 1 }, meta: { Torque: { type: 'Int16' }, Mode: { type: 'Int16' } } };
      }
      return { topic: '${asset}', payload: { x: 1 }, timestamp: 1e300 };`);
    helper.getNode('fn').receive({ payload: 'types' });
    helper.getNode('fn').receive({ payload: 'time' });
    await waitFor('two errors at the Catch node', () => caught.length === 2);
    assert.match(caught[0], /^TagBatchError: tag batch rejected: metric "Torque" \(Int16\): 70000 is out of range -32768…32767; metric "Mode" \(Int16\): "abc" is not an integer$/);
    assert.match(caught[1], /^TagBatchError: tag batch rejected: msg.timestamp 1e\+300 is outside 2000-01-01T00:00:00.000Z … /);
    await sleep(100);
    assert.deepEqual(published, []);
  });

  it('uns-out: a batch over the configured metric limit is refused whole, the Catch node sees it', async () => {
    const { caught, published } = await functionNodeFlow(`
      const payload = {};
      for (let i = 0; i < msg.payload; i++) payload['m' + i] = i;
      return { topic: '${asset}', payload };`, { maxMetrics: '1000', maxValueKiB: '1' });
    helper.getNode('fn').receive({ payload: 20000 });
    helper.getNode('fn').receive({ payload: 1000 });
    await waitFor('an error and 1,000 publishes', () => caught.length === 1 && published.length === 1000);
    assert.match(caught[0], /^TagBatchError: tag batch rejected: msg.payload has 20000 metrics, more than 1000 \(the sink's limit per batch/);
  });

  it('uns-out: a batch nested 5,000 levels deep is refused and the Catch node sees the error (not a RangeError)', async () => {
    const { caught, published } = await functionNodeFlow('return msg;');
    let deep: Record<string, unknown> = { v: 1 };
    for (let i = 0; i < 5000; i++) deep = { a: deep };
    const caughtMessages: Array<{ payload?: { x?: unknown } }> = [];
    helper.getNode('h1').on('input', (msg: { payload?: { x?: unknown } }) => caughtMessages.push(msg));
    // Straight into uns-out, as a change or json node would deliver it (the function node itself cannot copy it).
    helper.getNode('out').receive({ topic: asset, payload: { x: deep, y: 1 } });
    await waitFor('the error at the Catch node', () => caught.length === 1);
    assert.equal(caught[0], 'TagBatchError: tag batch rejected: value of "x" is an object (only number, bigint, boolean, string or null)');
    assert.equal(typeof caughtMessages[0].payload?.x, 'object');
    assert.deepEqual(published, []);
  });

  it('uns-in turns UNS topics (per metric and asset JSON) into tag batches', async () => {
    await loadConnected([
      brokerNode(),
      { id: 'in', type: 'uns-in', broker: 'b1', topics: '+/+/+/+/+/+/#', qos: '1', assetDepth: 6, mergeWindow: 50, wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ]);
    const batches: TagBatch[] = [];
    helper.getNode('h1').on('input', (msg: TagBatch) => batches.push(msg));
    await sleep(100); // SUBACK
    const publisher = connect(aedes.url, { reconnectPeriod: 0 });
    clients.push(publisher);
    await new Promise((resolve) => publisher.once('connect', resolve));
    await publisher.publishAsync(`${asset}/Current`, '{"value":12.5,"timestamp":5,"quality":"good","unit":"A"}', { qos: 1 });
    await publisher.publishAsync(`${asset}/Node Control/Rebirth`, '{"value":false,"timestamp":5,"quality":"good"}', { qos: 1 });
    await waitFor('one merged batch', () => batches.length === 1);
    assert.equal(batches[0].topic, asset);
    assert.deepEqual(batches[0].payload, { Current: 12.5, 'Node Control/Rebirth': false });
    assert.deepEqual(batches[0].meta?.Current, { timestamp: 5, quality: 'good', unit: 'A' });
    await publisher.publishAsync('acme/plant1/press/line2/cell1/drive8', '{"timestamp":9,"metrics":{"Speed":{"value":1480}}}', { qos: 1 });
    await waitFor('the asset-topic batch', () => batches.length === 2);
    assert.deepEqual(batches[1].payload, { Speed: 1480 });
    assert.deepEqual(batches[1].meta, { Speed: { timestamp: 9 } });
  });

  it('uns-in tags each batch with the principal of its uns-broker connection (client id, username)', async () => {
    aedes.broker.authenticate = (_client, username, _password, callback) => { callback(null, username === 'gateway'); };
    await loadConnected([
      brokerNode({ clientId: 'gw-line2' }),
      { id: 'in', type: 'uns-in', broker: 'b1', topics: '#', assetDepth: 6, wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ], { b1: { user: 'gateway', password: 'pw' } });
    const batches: TagBatch[] = [];
    helper.getNode('h1').on('input', (msg: TagBatch) => batches.push(msg));
    await sleep(100);
    const publisher = connect(aedes.url, { reconnectPeriod: 0, username: 'gateway', password: 'pw', clientId: 'someone-else' });
    clients.push(publisher);
    await new Promise((resolve) => publisher.once('connect', resolve));
    await publisher.publishAsync(`${asset}/Speed`, '{"value":1200}', { qos: 1 });
    await waitFor('the batch', () => batches.length === 1);
    assert.deepEqual(batches[0].principal, { via: 'mqtt', id: 'mqtt:gw-line2 (user gateway)', clientId: 'gw-line2', user: 'gateway' });
  });

  it('uns-in warns once per topic about payloads that are not UNS JSON', async () => {
    await loadConnected([
      brokerNode(),
      { id: 'in', type: 'uns-in', broker: 'b1', topics: '#', assetDepth: 6, wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ]);
    const warnings: unknown[] = [];
    helper.getNode('in').on('call:warn', (call: Call) => warnings.push(call.args[0]));
    await sleep(100);
    const publisher = connect(aedes.url, { reconnectPeriod: 0 });
    clients.push(publisher);
    await new Promise((resolve) => publisher.once('connect', resolve));
    for (let i = 0; i < 5; i++) await publisher.publishAsync(`${asset}/raw`, String(i), { qos: 1 });
    await sleep(100);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]), /skipping messages on ".*\/raw": payload is not an object with a "value" property/);
  });

  it('uns-out → broker → uns-in gives back the tag batch', async () => {
    await loadConnected([
      brokerNode(),
      { id: 'out', type: 'uns-out', broker: 'b1', topicPrefix: 'uns', wires: [] },
      { id: 'in', type: 'uns-in', broker: 'b1', topics: 'uns/#', topicPrefix: 'uns', assetDepth: 6, wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ]);
    const batches: TagBatch[] = [];
    helper.getNode('h1').on('input', (msg: TagBatch) => batches.push(msg));
    await sleep(100);
    const payload = { Current: 12.5, Running: true, Mode: 'auto', Fault: null, Count: 2n ** 60n, 'Motor/Temp': 41.5 };
    helper.getNode('out').receive({ topic: asset, payload, timestamp: 1718000000000 });
    await waitFor('the batch back', () => batches.length > 0);
    await sleep(50);
    assert.equal(batches.length, 1, 'one message per asset and tick');
    assert.equal(batches[0].topic, asset);
    assert.deepEqual(batches[0].payload, payload);
  });

  it('keeps credentials out of the flow JSON and uses them to log in', async () => {
    aedes.broker.authenticate = (_client, username, password, callback) => {
      callback(null, username === 'gateway' && password?.toString() === 'secret-pw-123');
    };
    await loadConnected([brokerNode(), { id: 'out', type: 'uns-out', broker: 'b1', wires: [] }],
      { b1: { user: 'gateway', password: 'secret-pw-123', passphrase: 'key-pass-456' } });
    assert.equal(helper.getNode('b1')?.credentials?.password, 'secret-pw-123');
    const flows = JSON.stringify(helper._redNodes.getFlows());
    assert.ok(flows.includes('"uns-broker"'));
    for (const secret of ['secret-pw-123', 'key-pass-456', '"gateway"']) assert.ok(!flows.includes(secret), `${secret} in the flow JSON`);
  });

  it('the editor declares user, password and key passphrase as credentials, not as flow properties', () => {
    const html = readFileSync(join(__dirname, '../../nodes/uns/uns.html'), 'utf8');
    const start = html.indexOf("RED.nodes.registerType('uns-broker'");
    const block = html.slice(start, html.indexOf('RED.nodes.registerType(', start + 10));
    const defaults = block.slice(block.indexOf('defaults:'), block.indexOf('credentials:'));
    const credentials = block.slice(block.indexOf('credentials:'), block.indexOf('}', block.indexOf('passphrase')));
    assert.ok(start >= 0 && defaults.length > 0 && credentials.length > 0);
    assert.match(credentials, /user:\s*\{\s*type:\s*'text'/);
    assert.match(credentials, /password:\s*\{\s*type:\s*'password'/);
    assert.match(credentials, /passphrase:\s*\{\s*type:\s*'password'/);
    assert.doesNotMatch(defaults, /\b(user|password|passphrase)\s*:/);
  });

  it('shows connecting → connected on every user, and buffering while the broker is gone', async () => {
    await loadConnected([
      brokerNode(),
      { id: 'out', type: 'uns-out', broker: 'b1', wires: [] },
      { id: 'in', type: 'uns-in', broker: 'b1', topics: '#', wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ]);
    const outSeen = statuses('out');
    const inSeen = statuses('in');
    await aedes.close();
    await waitFor('a disconnected status', () => outSeen.some((s) => s.text === 'uns.status.buffering'));
    helper.getNode('out').receive({ topic: asset, payload: { x: 1 } });
    await waitFor('the message in the store on disk', () => storedBytes() > 0);
    assert.deepEqual(outSeen.at(-1), { fill: 'yellow', shape: 'dot', text: 'uns.status.buffering' });
    assert.deepEqual(inSeen.at(-1), { fill: 'yellow', shape: 'dot', text: 'uns.status.buffering' });
  });
});
