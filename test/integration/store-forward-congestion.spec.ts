/**
 * A producer faster than the broker (lib/store/forwarder.ts, "congested"): the live path keeps at most
 * `liveMaxUnacknowledged` QoS 1 publishes unacknowledged. Beyond that, values go into the store as during an
 * outage (bounded on disk, drop-oldest) and leave in order once the broker catches up; with no store they are
 * dropped and counted, with one warning. Before, every publish went straight to MQTT.js, whose unacknowledged
 * packets and socket buffer grew without bound (bench/pipeline.ts: 270k messages, 851 MB).
 * The slow broker is aedes holding its PUBACKs (authorizePublish answers only when the test releases it).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { MqttConnection } from '../../lib/mqtt/connection';
import { DiskQueue } from '../../lib/store/disk-queue';
import { StoreAndForward } from '../../lib/store/forwarder';
import { startAedes, type AedesBroker } from '../helpers/aedes';
import { sleep, until } from '../helpers/wait';

/** How long a wait may take before the test fails naming what it waited for. */
const WAIT_MS = 15_000;

const LIMIT = 50;
const SENT = 500;

describe('store-and-forward: a broker slower than the producer keeps memory bounded (aedes holding its PUBACKs)', function () {
  this.timeout(40000);
  let aedes: AedesBroker;
  let storeDir: string;
  let held: Array<() => void>;
  let holding: boolean;
  const closers: Array<() => unknown> = [];

  beforeEach(async () => {
    aedes = await startAedes();
    storeDir = mkdtempSync(join(tmpdir(), 'uns-congestion-'));
    held = [];
    holding = true;
    aedes.broker.authorizePublish = (client, _packet, callback) => {
      if (client?.id === 'fast-producer' && holding) held.push(() => callback(null));
      else callback(null);
    };
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await aedes.close();
    rmSync(storeDir, { recursive: true, force: true });
  });

  async function setUp(store: boolean) {
    const received: number[] = [];
    const subscriber = mqtt.connect(aedes.url, { clientId: 'consumer' });
    closers.push(() => subscriber.endAsync(true));
    await new Promise((resolve) => subscriber.once('connect', resolve));
    await subscriber.subscribeAsync('congestion/#', { qos: 1 });
    subscriber.on('message', (_topic, payload) => received.push(Number(payload.toString())));
    const connection = new MqttConnection({
      host: '127.0.0.1', port: aedes.port, protocolVersion: 4, clientId: 'fast-producer', keepaliveSec: 30, clean: true, connectTimeoutMs: 2000,
      backoff: { initialMs: 50, maxMs: 400, jitter: 0.5 },
    });
    const queue = store ? new DiskQueue({ dir: storeDir }) : undefined;
    const warnings: string[] = [];
    const forwarder = new StoreAndForward(connection, queue, { name: 'congestion', windowSize: 10, liveMaxUnacknowledged: LIMIT, warn: (m) => warnings.push(m) });
    closers.push(async () => {
      forwarder.close();
      await connection.close();
      queue?.close();
    });
    connection.start();
    await until('connected', () => connection.connected, WAIT_MS);
    return { connection, forwarder, queue, received, warnings };
  }

  const release = (): void => {
    holding = false;
    for (const answer of held.splice(0)) answer();
  };

  it('with a store: at most the limit unacknowledged, the rest waits on disk and arrives in order once the broker catches up', async () => {
    const { connection, forwarder, queue, received } = await setUp(true);
    for (let i = 0; i < SENT; i++) {
      forwarder.publish(`congestion/t${i % 5}`, String(i), 1, false);
      if (i % 50 === 49) await sleep(5); // batches over several event-loop turns, as polls come
    }
    await until('the broker holds the first publishes', () => held.length >= LIMIT, WAIT_MS);
    await sleep(200);
    assert.ok(connection.unacknowledged <= LIMIT, `unacknowledged ${connection.unacknowledged} (limit ${LIMIT}, live and backlog together)`);
    assert.ok(queue!.count >= SENT - LIMIT - 10, `${queue!.count} kept on disk`);
    release();
    await until(`all ${SENT} at the consumer`, () => received.length >= SENT, WAIT_MS);
    assert.deepEqual(received, Array.from({ length: SENT }, (_, i) => i), 'every value once, in order');
    assert.equal(forwarder.counts.dropped.congested, 0);
    await until('the queue drained', () => queue!.count === 0, WAIT_MS);
  });

  it('with a store: a backlog congestion made drains with the live limit in flight, not the outage window (else it never catches up)', async () => {
    const { connection, forwarder, queue, received } = await setUp(true);
    for (let i = 0; i < SENT; i++) {
      forwarder.publish(`congestion/t${i % 5}`, String(i), 1, false);
      if (i % 50 === 49) await sleep(5);
    }
    await until('the broker holds the first publishes', () => held.length >= LIMIT, WAIT_MS);
    // The broker acknowledges what it holds, and keeps holding what comes next: the backlog starts to drain.
    for (const answer of held.splice(0)) answer();
    await until(`${LIMIT} backlog publishes in flight at once (the outage window is 10)`, () => held.length >= LIMIT, 5000);
    assert.ok(connection.unacknowledged <= LIMIT, `unacknowledged ${connection.unacknowledged}`);
    release();
    await until(`all ${SENT} at the consumer`, () => received.length >= SENT, WAIT_MS);
    assert.deepEqual(received, Array.from({ length: SENT }, (_, i) => i), 'every value once, in order');
    await until('the queue drained', () => queue!.count === 0, WAIT_MS);
  });

  it('without a store: at most the limit unacknowledged, the excess dropped and counted with one warning', async () => {
    const { connection, forwarder, received, warnings } = await setUp(false);
    for (let i = 0; i < SENT; i++) {
      forwarder.publish('congestion/t', String(i), 1, false);
      if (i % 50 === 49) await sleep(5);
    }
    assert.ok(connection.unacknowledged <= LIMIT, `unacknowledged ${connection.unacknowledged}`);
    assert.equal(forwarder.counts.dropped.congested, SENT - LIMIT);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /slower than they come .* store-and-forward is off: messages are dropped until it catches up/);
    release();
    await until(`the ${LIMIT} sent at the consumer`, () => received.length >= LIMIT, WAIT_MS);
    assert.deepEqual(received, Array.from({ length: LIMIT }, (_, i) => i));
  });
});
