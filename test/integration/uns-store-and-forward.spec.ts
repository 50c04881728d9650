/**
 * Store-and-forward against a real Mosquitto (test/helpers/mosquitto.ts), through the same lib
 * classes uns-broker/uns-out use (MqttConnection → StoreAndForward → DiskQueue, UnsOut):
 * - the broker stopped for 20 s mid-stream (MQTT 5) and for 3 s (MQTT 3.1.1): every value published
 *   during the outage arrives after the reconnect, in order, and the retained value of every topic
 *   ends on the newest value;
 * - a gateway killed (SIGKILL) with a non-empty queue: the next process drains it.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { MqttConnection } from '../../lib/mqtt/connection';
import { DiskQueue } from '../../lib/store/disk-queue';
import { StoreAndForward, type LiveDuringDrain } from '../../lib/store/forwarder';
import { UnsOut } from '../../lib/uns/uns-out';
import { Mosquitto } from '../helpers/mosquitto';

const asset = 'acme/plant1/press/line2/cell1/drive7';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Gateway {
  connection: MqttConnection;
  queue: DiskQueue;
  forwarder: StoreAndForward;
  out: UnsOut;
  warnings: string[];
  downs: string[];
  close(): Promise<void>;
}

/** The uns-broker + uns-out stack without Node-RED. */
function gateway(port: number, storeDir: string, protocolVersion: 4 | 5, clientId: string, liveDuringDrain?: LiveDuringDrain): Gateway {
  const warnings: string[] = [];
  const downs: string[] = [];
  const connection = new MqttConnection({
    host: '127.0.0.1', port, protocolVersion, clientId, keepaliveSec: 10, clean: true,
    connectTimeoutMs: 2000, backoff: { initialMs: 200, maxMs: 1000, jitter: 0.5 },
  });
  connection.on('down', (reason) => downs.push(reason));
  const queue = new DiskQueue({ dir: storeDir, warn: (w) => warnings.push(w) });
  const forwarder = new StoreAndForward(connection, queue, { name: clientId, windowSize: 20, liveDuringDrain, warn: (w) => warnings.push(w) });
  const out = new UnsOut({
    topicPrefix: 'uns', qos: 1, retain: true, format: 'metric',
    deadband: { mode: 'off', band: 0, maxSilenceMs: 0, maxEntries: 1 },
  }, (topic, payload, qos, retain) => forwarder.publish(topic, payload, qos, retain));
  connection.start();
  return {
    connection, queue, forwarder, out, warnings, downs,
    async close() {
      const closing = connection.close();
      forwarder.close();
      queue.close();
      await closing;
    },
  };
}

/** A subscriber with a persistent session, so it misses nothing while the broker restarts. */
async function subscriber(port: number, clientId: string, protocolVersion: 4 | 5): Promise<{ client: MqttClient; values: Map<string, number[]> }> {
  const values = new Map<string, number[]>();
  const client = connect({ host: '127.0.0.1', port, clientId, clean: false, protocolVersion, reconnectPeriod: 200, properties: protocolVersion === 5 ? { sessionExpiryInterval: 600 } : undefined });
  client.on('error', () => undefined); // refused connections while the broker is down
  client.on('message', (topic, payload) => {
    const list = values.get(topic) ?? [];
    list.push(JSON.parse(payload.toString()).value);
    values.set(topic, list);
  });
  await new Promise((r) => client.once('connect', r));
  await client.subscribeAsync('uns/#', { qos: 1 });
  return { client, values };
}

/** The retained value of every topic under uns/, as a fresh subscriber sees it. */
async function retainedValues(port: number): Promise<Map<string, number>> {
  const retained = new Map<string, number>();
  const client = connect({ host: '127.0.0.1', port, reconnectPeriod: 0 });
  client.on('message', (topic, payload, packet) => {
    if (packet.retain) retained.set(topic, JSON.parse(payload.toString()).value);
  });
  await new Promise((r) => client.once('connect', r));
  await client.subscribeAsync('uns/#', { qos: 1 });
  await sleep(300);
  await client.endAsync();
  return retained;
}

/** First occurrences of `values` within [from, to], which must be exactly from…to in order. */
function assertCompleteInOrder(values: number[], from: number, to: number, what: string): void {
  const seen = new Set<number>();
  const firsts = values.filter((v) => v >= from && v <= to && !seen.has(v) && seen.add(v));
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const missing = expected.filter((v) => !seen.has(v));
  assert.deepEqual(missing, [], `${what}: ${missing.length} values missing`);
  assert.deepEqual(firsts, expected, `${what}: out of order`);
}

describe('store-and-forward against a real Mosquitto', function () {
  this.timeout(90000);
  let broker: Mosquitto;
  let storeDir: string;
  const closers: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    broker = await Mosquitto.start({ persistence: true });
    storeDir = mkdtempSync(join(tmpdir(), 'uns-saf-'));
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await broker.dispose();
    rmSync(storeDir, { recursive: true, force: true });
  });

  async function outageScenario(protocolVersion: 4 | 5, outageMs: number): Promise<void> {
    const sub = await subscriber(broker.port, `sub-${protocolVersion}`, protocolVersion);
    closers.push(() => sub.client.endAsync(true));
    const gw = gateway(broker.port, storeDir, protocolVersion, `gw-${protocolVersion}`);
    closers.push(() => gw.close());
    await waitFor('the gateway to connect', () => gw.connection.connected, 5000);

    let next = 0;
    const publishOne = (): void => {
      gw.out.handle({ topic: asset, payload: { Seq: next, Double: next * 2 } });
      next++;
    };
    const stream = setInterval(publishOne, 25);
    closers.push(async () => clearInterval(stream));
    await sleep(1000);
    const lastBefore = next - 1;
    await broker.stop('SIGTERM');
    await sleep(outageMs);
    // Values published until the gateway is connected again went to the store; later ones go live.
    let lastStored = -1;
    let storedAtReconnect = 0;
    gw.connection.once('connected', () => {
      lastStored = next - 1;
      storedAtReconnect = gw.queue.count; // the drain starts on a later turn
    });
    await broker.restart();
    await sleep(2000);
    clearInterval(stream);
    const last = next - 1;

    const seq = `uns/${asset}/Seq`;
    const dbl = `uns/${asset}/Double`;
    // Both topics: a batch's Double goes out after its Seq, so the last Double can still be on its way.
    await waitFor('every value at the subscriber', () => [seq, dbl].every((topic) => new Set(sub.values.get(topic)).size === last + 1), 30000);
    await waitFor('the store to drain', () => gw.queue.count === 0, 10000);
    const outageValues = lastStored - lastBefore;
    assert.ok(outageValues >= outageMs / 25 * 0.8, `only ${outageValues} values during the outage`);
    // (A few values published just before the broker went down may have been acknowledged by it.)
    assert.ok(storedAtReconnect >= (outageValues - 5) * 2, `store held ${storedAtReconnect} messages for ${outageValues} batches`);
    for (const topic of [seq, dbl]) {
      const received = (sub.values.get(topic) ?? []).map((v) => (topic === dbl ? v / 2 : v));
      // Stored values (and live ones before the outage) arrive complete and in order; live values
      // after the reconnect too (queued behind the backlog by default: the test below checks that).
      assertCompleteInOrder(received, 0, lastStored, `${topic} up to the reconnect`);
      assertCompleteInOrder(received, lastStored + 1, last, `${topic} after the reconnect`);
    }
    assert.equal(gw.downs.length, 1, `one 'down' per outage, got ${JSON.stringify(gw.downs)}`);
    // The broker's retained value is the newest one, not a stale value from the backlog.
    const retained = await retainedValues(broker.port);
    assert.equal(retained.get(seq), last);
    assert.equal(retained.get(dbl), last * 2);
  }

  it('MQTT 5: broker down 20 s mid-stream — every value of the outage arrives after reconnect, in order; retained ends newest', async () => {
    await outageScenario(5, 20000);
  });

  it('MQTT 3.1.1: broker down 3 s mid-stream — the same guarantees', async () => {
    await outageScenario(4, 3000);
  });

  it('default: a live value sent while the backlog drains goes behind it — per-topic order kept, retained ends newest', async () => {
    const sub = await subscriber(broker.port, 'sub-order', 5);
    closers.push(() => sub.client.endAsync(true));
    const gw = gateway(broker.port, storeDir, 5, 'gw-order');
    closers.push(() => gw.close());
    await waitFor('the gateway to connect', () => gw.connection.connected, 5000);
    await broker.stop('SIGTERM');
    await waitFor('the gateway to notice', () => !gw.connection.connected, 5000);
    for (let i = 0; i < 2000; i++) gw.forwarder.publish('uns/order/value', JSON.stringify({ value: i }), 1, true);
    // Sent in the 'connected' event itself, before the drain's first step: it would overtake the whole backlog.
    gw.connection.once('connected', () => gw.forwarder.publish('uns/order/value', JSON.stringify({ value: 2000 }), 1, true));
    await broker.restart();
    await waitFor('the backlog and the live value', () => new Set(sub.values.get('uns/order/value')).size >= 2001, 20000);
    await waitFor('the store to drain', () => gw.queue.count === 0, 5000);
    assertCompleteInOrder(sub.values.get('uns/order/value') ?? [], 0, 2000, 'backlog then the live value');
    assert.equal((await retainedValues(broker.port)).get('uns/order/value'), 2000);
  });

  it("'beside-backlog': a live value sent while the backlog drains stays the retained value (backlog goes out with retain=false)", async () => {
    const sub = await subscriber(broker.port, 'sub-retain', 5);
    closers.push(() => sub.client.endAsync(true));
    const gw = gateway(broker.port, storeDir, 5, 'gw-retain', 'beside-backlog');
    closers.push(() => gw.close());
    await waitFor('the gateway to connect', () => gw.connection.connected, 5000);
    await broker.stop('SIGTERM');
    await waitFor('the gateway to notice', () => !gw.connection.connected, 5000);
    for (let i = 0; i < 2000; i++) gw.forwarder.publish('uns/retain/value', JSON.stringify({ value: i }), 1, true);
    gw.connection.once('connected', () => gw.forwarder.publish('uns/retain/value', JSON.stringify({ value: 5000 }), 1, true));
    await broker.restart();
    await waitFor('the backlog and the live value', () => (sub.values.get('uns/retain/value')?.length ?? 0) >= 2001, 20000);
    await waitFor('the store to drain', () => gw.queue.count === 0, 5000);
    const received = sub.values.get('uns/retain/value') ?? [];
    assertCompleteInOrder(received, 0, 1999, 'backlog');
    assert.ok(received.indexOf(5000) < received.indexOf(1999), 'the live value was not held back behind the backlog');
    assert.equal((await retainedValues(broker.port)).get('uns/retain/value'), 5000);
  });

  it('a gateway killed with a non-empty queue drains it after its restart', async () => {
    await broker.stop('SIGTERM');
    // A separate gateway process stores 300 messages while the broker is down, then is SIGKILLed.
    const root = resolve(__dirname, '../..');
    const script = `
      const { MqttConnection } = require('./lib/mqtt/connection');
      const { DiskQueue } = require('./lib/store/disk-queue');
      const { StoreAndForward } = require('./lib/store/forwarder');
      const connection = new MqttConnection({ host: '127.0.0.1', port: ${broker.port}, protocolVersion: 5, clientId: 'gw-crash',
        keepaliveSec: 10, clean: true, connectTimeoutMs: 1000, backoff: { initialMs: 500, maxMs: 1000, jitter: 0 } });
      const queue = new DiskQueue({ dir: ${JSON.stringify(storeDir)} });
      const forwarder = new StoreAndForward(connection, queue, { name: 'crash', windowSize: 20, warn: () => {} });
      connection.start();
      for (let i = 0; i < 300; i++) forwarder.publish('uns/crash/value', JSON.stringify({ value: i }), 1, true);
      setImmediate(() => console.log('stored ' + queue.count));
    `;
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    closers.push(async () => { child.kill('SIGKILL'); });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    await waitFor('the child to store 300 messages', () => output.includes('stored 300'), 20000);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    await broker.restart();
    const sub = await subscriber(broker.port, 'sub-crash', 5);
    closers.push(() => sub.client.endAsync(true));
    const gw = gateway(broker.port, storeDir, 5, 'gw-restarted');
    closers.push(() => gw.close());
    assert.equal(gw.queue.count, 300, 'the restarted gateway found the stored messages');
    await waitFor('300 values', () => (sub.values.get('uns/crash/value')?.length ?? 0) >= 300, 20000);
    assertCompleteInOrder(sub.values.get('uns/crash/value') ?? [], 0, 299, 'replayed after restart');
    await waitFor('the store to drain', () => gw.queue.count === 0, 5000);
    assert.equal((await retainedValues(broker.port)).get('uns/crash/value'), 299);
  });
});
