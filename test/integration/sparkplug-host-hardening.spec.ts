/**
 * The Sparkplug host against hostile and broken edge nodes on a real Mosquitto (issue 8, item 3):
 * a 200,000-metric NBIRTH published by another process (mosquitto_pub) is refused without blocking
 * the event loop and without keeping anything, while other edge nodes are still served; limits on
 * edge nodes, devices and metrics; a value that does not fit its BIRTH datatype is bad quality; an
 * empty NBIRTH is not a birth; duplicate aliases refuse the BIRTH; and the rebirth rate limit defers
 * a needed request instead of swallowing it, seen from a subscriber on the broker.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { connect, type MqttClient } from 'mqtt';
import { DataType } from '../../lib/sparkplug/datatypes';
import { SparkplugHost, pathTemplate, type HostLimits, type NodeStateChange } from '../../lib/sparkplug/host';
import { encodePayload, type Metric } from '../../lib/sparkplug/payload';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { sleep, waitFor } from '../helpers/sparkplug-harness';
import { oracleDecode } from '../helpers/sparkplug-oracle';

const GROUP = 'Plant 1';
const run = promisify(execFile);

interface HostUnderTest {
  host: SparkplugHost;
  batches: TagBatch[];
  changes: NodeStateChange[];
  warnings: string[];
  infos: string[];
}

function startHost(port: number, hostId: string, options: { limits?: Partial<HostLimits>; rebirthIntervalMs?: number } = {}): HostUnderTest {
  const hut: HostUnderTest = { host: undefined as unknown as SparkplugHost, batches: [], changes: [], warnings: [], infos: [] };
  hut.host = new SparkplugHost({
    hostId,
    groups: [GROUP],
    mqtt: { host: '127.0.0.1', port, protocolVersion: 5, clientId: `host-${hostId}`, keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
    assetPath: pathTemplate('acme/{group}/{edge}/{device}', 'acme/{group}/{edge}'),
    reorderTimeoutMs: 200,
    rebirthIntervalMs: options.rebirthIntervalMs ?? 5000,
    limits: options.limits,
    warn: (m) => hut.warnings.push(m),
    info: (m) => hut.infos.push(m),
  });
  hut.host.on('batch', (batch) => hut.batches.push(batch));
  hut.host.on('online', (change) => hut.changes.push(change));
  hut.host.start();
  return hut;
}

/**
 * The longest event-loop delay (ms) while `work` runs. On a loaded machine (the test suite shares two
 * cores with other processes) the OS alone delays the loop by tens of ms, so a limit is checked
 * against max(limit, quiet + limit/2): `quiet` is the same measurement just before, without the flood.
 */
async function loopDelayMs(work: () => Promise<void>): Promise<number> {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  await work();
  delay.disable();
  return delay.max / 1e6;
}

/** A simulated edge node: publishes what the test crafts, as an edge node would (QoS 0). */
class SimulatedEdge {
  constructor(private readonly client: MqttClient, readonly id: string) {}

  topic(type: string, device?: string): string {
    return device === undefined ? `spBv1.0/${GROUP}/${type}/${this.id}` : `spBv1.0/${GROUP}/${type}/${this.id}/${device}`;
  }

  async send(type: string, seq: number | undefined, metrics: Metric[], device?: string, omitDatatypes = type.endsWith('DATA')): Promise<void> {
    await this.raw(this.topic(type, device), encodePayload({ timestamp: Date.now(), metrics, ...(seq === undefined ? {} : { seq }) }, { omitDatatypes }));
  }

  async raw(topic: string, bytes: Buffer): Promise<void> {
    await this.client.publishAsync(topic, bytes, { qos: 0, retain: false });
  }

  nbirth(extra: Metric[] = []): Promise<void> {
    return this.send('NBIRTH', 0, [
      { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
      { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false },
      ...extra,
    ]);
  }
}

/** An NBIRTH with `count` Double metrics, as a very large edge node sends it. */
function bigBirth(count: number): Buffer {
  const metrics: Metric[] = [{ name: 'bdSeq', datatype: DataType.Int64, value: 0 }];
  for (let i = 0; i < count; i++) metrics.push({ name: `Area ${i % 50}/Machine ${i}/Temperature`, alias: i + 1, datatype: DataType.Double, value: i });
  return encodePayload({ timestamp: Date.now(), seq: 0, metrics });
}

/** A hostile NBIRTH: `count` metrics of ~15 bytes each (short names, Boolean), so it is within the byte limit. */
function floodBirth(count: number): Buffer {
  const metrics: Metric[] = [{ name: 'bdSeq', datatype: DataType.Int64, value: 0 }];
  for (let i = 0; i < count; i++) metrics.push({ name: `m${i}`, datatype: DataType.Boolean, value: true });
  return encodePayload({ timestamp: Date.now(), seq: 0, metrics });
}

describe('sparkplug host against hostile and broken edge nodes (Mosquitto)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let client: MqttClient;
  let dir: string;
  const hosts: HostUnderTest[] = [];
  /** NCMDs on the broker, as a subscriber there sees them. */
  const ncmds: { topic: string; at: number; metric: string | undefined }[] = [];

  const host = (hostId: string, options?: Parameters<typeof startHost>[2]): Promise<HostUnderTest> => {
    const hut = startHost(broker.port, hostId, options);
    hosts.push(hut);
    return waitFor('host online', () => hut.host.state === 'online').then(() => hut);
  };
  const batchesOf = (hut: HostUnderTest, edge: string): TagBatch[] => hut.batches.filter((b) => b.topic === `acme/${GROUP}/${edge}`);
  const ncmdsTo = (edge: string, from = 0): typeof ncmds => ncmds.slice(from).filter((n) => n.topic === `spBv1.0/${GROUP}/NCMD/${edge}`);
  /** Publish with mosquitto_pub, another process: the flood is not encoded or sent on this event loop. */
  const publishFile = (topic: string, file: string): Promise<unknown> => run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '-q', '0', '-f', file]);

  before(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-hardening-'));
    client = connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    client.on('message', (topic, bytes) => ncmds.push({ topic, at: Date.now(), metric: oracleDecode(bytes).metrics[0]?.name }));
    // Only the commands: the flood itself must not be decoded in this process by the test.
    await client.subscribeAsync(`spBv1.0/${GROUP}/NCMD/#`, { qos: 1 });
  });

  after(async () => {
    for (const hut of hosts) await hut.host.close();
    await client?.endAsync(true);
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('a 200,000-metric NBIRTH from another broker client', () => {
    let hut: HostUnderTest;
    let file: string;
    const good = (): SimulatedEdge => new SimulatedEdge(client, 'good-1');

    before(async () => {
      hut = await host('flood-host');
      file = join(dir, 'flood.bin');
      writeFileSync(file, floodBirth(200000));
      await good().nbirth([{ name: 'Level', alias: 1, datatype: DataType.Double, value: 1 }]);
      await waitFor('good-1 born', () => batchesOf(hut, 'good-1').length === 1);
    });

    // Every host of this file subscribes to the same group: each answers only its own describe's edge nodes.
    after(() => hut.host.close());

    it('is refused with one warning per edge node, blocks the event loop ≤ 50 ms, keeps nothing, and other edge nodes are still served', async () => {
      // good-1 keeps sending; every value must arrive, with the floods (4 × 200,000 metrics) and without.
      let seq = 0;
      const traffic = async (): Promise<void> => {
        for (let i = 0; i < 10; i++) {
          seq++;
          await good().send('NDATA', seq, [{ alias: 1, datatype: DataType.Double, value: seq }]);
          await sleep(25);
        }
      };
      const quietMs = await loopDelayMs(traffic);
      const floodMs = await loopDelayMs(async () => {
        const floods = ['evil-1', 'evil-1', 'evil-2', 'evil-3'].map((edge) => publishFile(`spBv1.0/${GROUP}/NBIRTH/${edge}`, file));
        await traffic();
        await Promise.all(floods);
        await waitFor('the three refusals', () => ['evil-1', 'evil-2', 'evil-3'].every((edge) => hut.warnings.some((w) => w.includes(`edge node ${GROUP}/${edge} refused`))));
        seq++;
        await good().send('NDATA', seq, [{ alias: 1, datatype: DataType.Double, value: seq }]);
        await waitFor(`good-1 value ${seq}`, () => batchesOf(hut, 'good-1').some((b) => b.payload.Level === seq));
      });
      assert.ok(floodMs <= Math.max(50, quietMs + 25), `event loop blocked up to ${floodMs.toFixed(1)} ms with the floods, ${quietMs.toFixed(1)} ms without`);
      assert.deepEqual(batchesOf(hut, 'good-1').slice(1).map((b) => b.payload.Level), Array.from({ length: seq }, (_, i) => i + 1));
      assert.equal(hut.warnings.filter((w) => w.includes(`${GROUP}/evil-1`)).length, 1, hut.warnings.join('\n'));
      assert.ok(hut.warnings.find((w) => w.includes('evil-2'))!.includes('more than the limit of 10000 metrics'), hut.warnings.join('\n'));
      assert.ok(hut.changes.every((c) => !c.edgeNodeId.startsWith('evil')), 'no refused node came online');
      assert.ok(hut.host.census().metrics < 10, `metrics kept: ${hut.host.census().metrics}`);
      assert.deepEqual(ncmdsTo('evil-1'), [], 'no rebirth asked of a node whose birth is over a limit');
    });

    it('a BIRTH at the limit (10,000 metrics) is taken, decoded a slice at a time: the loop is blocked ≤ 50 ms', async () => {
      const big = join(dir, 'big.bin');
      writeFileSync(big, bigBirth(9999)); // + bdSeq
      const quietMs = await loopDelayMs(() => sleep(300));
      const birthMs = await loopDelayMs(async () => {
        await publishFile(`spBv1.0/${GROUP}/NBIRTH/large-1`, big);
        await waitFor('large-1 born', () => batchesOf(hut, 'large-1').length === 1);
      });
      assert.equal(Object.keys(batchesOf(hut, 'large-1')[0].payload).length, 9999);
      assert.ok(birthMs <= Math.max(50, quietMs + 25), `event loop blocked up to ${birthMs.toFixed(1)} ms by the birth, ${quietMs.toFixed(1)} ms without`);
    });
  });

  describe('limits on edge nodes, devices and metrics', () => {
    let hut: HostUnderTest;

    before(async () => {
      hut = await host('limits-host', { limits: { maxEdgeNodes: 2, maxDevices: 2, maxMetricsPerMessage: 4, maxMetrics: 20, maxPayloadBytes: 2000 } });
    });

    // Every host of this file subscribes to the same group: each answers only its own describe's edge nodes.
    after(() => hut.host.close());

    it('a third edge node is refused while two are online, and taken once one is offline', async () => {
      for (const id of ['node-a', 'node-b']) await new SimulatedEdge(client, id).nbirth();
      await waitFor('two online', () => hut.changes.filter((c) => c.online).length === 2);
      const third = new SimulatedEdge(client, 'node-c');
      await third.nbirth();
      await waitFor('a warning', () => hut.warnings.some((w) => w.includes('node-c ignored')));
      assert.equal(hut.host.census().edgeNodes, 2);
      await new SimulatedEdge(client, 'node-a').send('NDEATH', undefined, [{ name: 'bdSeq', datatype: DataType.Int64, value: 0 }]);
      await waitFor('node-a offline', () => hut.changes.some((c) => c.edgeNodeId === 'node-a' && !c.online));
      await third.nbirth();
      await waitFor('node-c online', () => hut.changes.some((c) => c.edgeNodeId === 'node-c' && c.online));
      assert.equal(hut.host.census().edgeNodes, 2);
    });

    it('devices over the limit and BIRTHs over the metric or byte limits are refused, one warning per edge node, no rebirth asked', async () => {
      const edge = new SimulatedEdge(client, 'node-b');
      const mark = ncmds.length;
      const level = (alias: number): Metric => ({ name: 'Level', alias, datatype: DataType.Int16, value: 1 });
      await edge.send('DBIRTH', 1, [level(11)], 'tank-1');
      await edge.send('DBIRTH', 2, [level(12)], 'tank-2');
      await waitFor('two devices', () => hut.host.census().devices === 2);
      const warned = hut.warnings.length;
      await edge.send('DBIRTH', 3, [level(13)], 'tank-3');
      await edge.send('DBIRTH', 4, [level(14), { name: 'a', alias: 15, datatype: DataType.Int16, value: 1 }, { name: 'b', alias: 16, datatype: DataType.Int16, value: 1 },
        { name: 'c', alias: 17, datatype: DataType.Int16, value: 1 }, { name: 'd', alias: 18, datatype: DataType.Int16, value: 1 }], 'tank-1');
      await edge.send('DDATA', 5, [{ alias: 13, datatype: DataType.Int16, value: 2 }], 'tank-3');
      await waitFor('tank-1 offline', () => hut.changes.some((c) => c.deviceId === 'tank-1' && !c.online));
      await sleep(300);
      const mine = hut.warnings.slice(warned).filter((w) => w.includes('node-b'));
      assert.equal(mine.length, 1, mine.join('\n'));
      assert.match(mine[0], /tank-3 refused: the host knows 2 devices, the limit/);
      assert.equal(hut.host.census().devices, 1);
      assert.deepEqual(ncmdsTo('node-b', mark), []);
      // Bytes: refused before decoding.
      const fat = new SimulatedEdge(client, 'node-c');
      await fat.nbirth([{ name: 'Blob', datatype: DataType.String, value: 'x'.repeat(3000) }]);
      await waitFor('node-c offline', () => hut.changes.filter((c) => c.edgeNodeId === 'node-c').at(-1)?.online === false);
      assert.ok(hut.warnings.some((w) => /NBIRTH of edge node Plant 1\/node-c refused: \d+ bytes, more than the limit of 2000/.test(w)), hut.warnings.join('\n'));
    });
  });

  describe('values, births and rebirth requests', () => {
    let hut: HostUnderTest;
    const RATE_MS = 2000;

    before(async () => {
      hut = await host('rules-host', { rebirthIntervalMs: RATE_MS });
    });

    // Every host of this file subscribes to the same group: each answers only its own describe's edge nodes.
    after(() => hut.host.close());

    it('a String value in a Double metric is bad quality (null, with the reason) and a warning, never the string', async () => {
      const edge = new SimulatedEdge(client, 'typed-1');
      await edge.nbirth([{ name: 'temp', alias: 1, datatype: DataType.Double, value: 20.5 }, { name: 'rpm', alias: 2, datatype: DataType.Double, value: 1 }]);
      await waitFor('born', () => batchesOf(hut, 'typed-1').length === 1);
      // The metric says String (its datatype sent along), and a string_value without a datatype.
      await edge.send('NDATA', 1, [{ alias: 1, datatype: DataType.String, value: 'not a number' }], undefined, false);
      await edge.send('NDATA', 2, [{ alias: 2, datatype: DataType.String, value: 'fast' }, { alias: 1, datatype: DataType.Double, value: 21 }], undefined, true);
      await waitFor('two batches', () => batchesOf(hut, 'typed-1').length === 3);
      const [first, second] = batchesOf(hut, 'typed-1').slice(1);
      assert.deepEqual(first.payload, { temp: null });
      assert.equal(first.meta!.temp.quality, 'bad');
      assert.match(first.meta!.temp.reason!, /String.*Double/);
      assert.deepEqual(second.payload, { rpm: null, temp: 21 });
      assert.equal(second.meta!.rpm.quality, 'bad');
      assert.ok(hut.warnings.some((w) => w.includes('typed-1: metric "temp" is bad quality')), hut.warnings.join('\n'));
    });

    it('a 0-byte NBIRTH is not a birth: a warning, the session goes on', async () => {
      const edge = new SimulatedEdge(client, 'empty-1');
      await edge.nbirth([{ name: 'Level', alias: 1, datatype: DataType.Int16, value: 1 }]);
      await waitFor('born', () => batchesOf(hut, 'empty-1').length === 1);
      const changes = hut.changes.length;
      const mark = ncmds.length;
      await edge.raw(edge.topic('NBIRTH'), Buffer.alloc(0));
      await edge.send('NDATA', 1, [{ alias: 1, datatype: DataType.Int16, value: 2 }]);
      await waitFor('Level 2', () => batchesOf(hut, 'empty-1').some((b) => b.payload.Level === 2));
      assert.ok(hut.warnings.some((w) => w.includes('NBIRTH of edge node Plant 1/empty-1 ignored: it has no bdSeq metric')), hut.warnings.join('\n'));
      assert.equal(hut.changes.length, changes);
      assert.deepEqual(ncmdsTo('empty-1', mark), []);
    });

    it('duplicate aliases in a BIRTH: refused (not online, no data) and a rebirth asked for', async () => {
      const edge = new SimulatedEdge(client, 'dup-1');
      const mark = ncmds.length;
      await edge.nbirth([{ name: 'A', alias: 7, datatype: DataType.Int16, value: 1 }, { name: 'B', alias: 7, datatype: DataType.Int16, value: 2 }]);
      await waitFor('NCMD Rebirth', () => ncmdsTo('dup-1', mark).length === 1);
      assert.equal(ncmdsTo('dup-1', mark)[0].metric, 'Node Control/Rebirth');
      assert.ok(hut.warnings.some((w) => w.includes('alias 7 names both "A" and "B"')), hut.warnings.join('\n'));
      assert.deepEqual(hut.changes.filter((c) => c.edgeNodeId === 'dup-1'), []);
      assert.deepEqual(batchesOf(hut, 'dup-1'), []);
    });

    it('seq gap → rebirth, births 13 ms later, an unknown alias 500 ms after them → a Rebirth NCMD follows within the rate limit window', async () => {
      const edge = new SimulatedEdge(client, 'gap-1');
      const births = async (): Promise<void> => {
        await edge.nbirth();
        await edge.send('DBIRTH', 1, [{ name: 'Level', alias: 10, datatype: DataType.Int16, value: 1 }], 'tank');
      };
      await births();
      await waitFor('tank born', () => hut.changes.some((c) => c.edgeNodeId === 'gap-1' && c.deviceId === 'tank' && c.online));
      const mark = ncmds.length;
      await edge.send('DDATA', 3, [{ alias: 10, datatype: DataType.Int16, value: 3 }], 'tank'); // seq 2 never comes
      await waitFor('first NCMD', () => ncmdsTo('gap-1', mark).length === 1, 5000);
      await sleep(13);
      const online = hut.changes.length;
      await births();
      await waitFor('reborn', () => hut.changes.slice(online).some((c) => c.deviceId === 'tank' && c.online));
      await sleep(500);
      const unknownAt = Date.now();
      await edge.send('DDATA', 2, [{ alias: 99, datatype: DataType.Int16, value: 1 }], 'tank');
      await waitFor('second NCMD', () => ncmdsTo('gap-1', mark).length === 2, RATE_MS + 2000);
      const second = ncmdsTo('gap-1', mark)[1];
      assert.equal(second.metric, 'Node Control/Rebirth');
      assert.ok(second.at - unknownAt < RATE_MS, `NCMD ${second.at - unknownAt} ms after the unknown alias`);
    });

    it('a rebirth needed while the rate limit holds is sent when the limit allows, and the host logs that it waits', async () => {
      const edge = new SimulatedEdge(client, 'wait-1');
      await edge.nbirth([{ name: 'Level', alias: 1, datatype: DataType.Int16, value: 1 }]);
      await waitFor('born', () => batchesOf(hut, 'wait-1').length === 1);
      const mark = ncmds.length;
      await edge.send('NDATA', 1, [{ alias: 99, datatype: DataType.Int16, value: 1 }]);
      await waitFor('first NCMD', () => ncmdsTo('wait-1', mark).length === 1);
      const firstAt = ncmdsTo('wait-1', mark)[0].at;
      // The node did not answer (its NCMD was lost, say) and keeps sending: DATA without a current NBIRTH.
      await sleep(300);
      await edge.send('NDATA', 2, [{ alias: 1, datatype: DataType.Int16, value: 2 }]);
      await waitFor('a waiting line', () => hut.infos.some((i) => i.includes('wait-1') && i.includes('waiting')));
      await waitFor('second NCMD', () => ncmdsTo('wait-1', mark).length === 2, RATE_MS + 3000);
      const gap = ncmdsTo('wait-1', mark)[1].at - firstAt;
      assert.ok(gap >= RATE_MS - 50 && gap < RATE_MS + 1000, `second request ${gap} ms after the first (limit ${RATE_MS} ms)`);
    });
  });
});
