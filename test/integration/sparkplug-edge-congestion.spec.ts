/**
 * A Sparkplug edge node whose broker takes data slower than the devices produce it (lib/sparkplug/edge-node.ts,
 * liveMaxBufferedBytes). DDATA is QoS 0, without flow control: before, every DDATA went into the socket's write
 * buffer, which grew without bound. Now, beyond the limit, DDATA goes to the store (sent as is_historical once
 * the socket drains: every value arrives) or, without a store, is dropped and counted in Node Info/Dropped Data
 * with one warning. The slow broker: a TCP proxy in front of aedes that stops reading from the edge node.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { decodePayload, metricValue } from '../../lib/sparkplug/payload';
import { startAedes, type AedesBroker } from '../helpers/aedes';
import { startTcpProxy, type TcpProxy } from '../helpers/opcua-tcp-proxy';
import { startEdge, waitFor, type EdgeUnderTest } from '../helpers/sparkplug-harness';

const DEVICE = 'acme/plant1/line1/cell1/drive-1';
const LIMIT = 256 * 1024;
const SENT = 20_000;
/** ~1 KB per DDATA, so SENT of them are far more than the kernel's socket buffers hold. */
const LABEL = 'x'.repeat(1000);

describe('Sparkplug edge node behind a broker slower than its devices: the socket buffer stays bounded', function () {
  this.timeout(90_000);
  let broker: AedesBroker;
  let proxy: TcpProxy;
  let dir: string;
  let edge: EdgeUnderTest | undefined;
  let subscriber: mqtt.MqttClient | undefined;

  beforeEach(async () => {
    broker = await startAedes();
    proxy = await startTcpProxy(broker.port);
    dir = mkdtempSync(join(tmpdir(), 'uns-sp-congestion-'));
  });

  afterEach(async () => {
    await subscriber?.endAsync(true);
    await edge?.close();
    await proxy.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(store: boolean): Promise<{ counters: number[]; peakBuffered: number; droppedBefore: number }> {
    const counters: number[] = [];
    subscriber = mqtt.connect(broker.url, { clientId: 'observer' });
    await new Promise((resolve) => subscriber!.once('connect', resolve));
    await subscriber.subscribeAsync(['spBv1.0/+/DBIRTH/#', 'spBv1.0/+/DDATA/#'], { qos: 0 });
    // DDATA carries aliases without datatypes [tck-id-payloads-alias-data-cmd-requirement]: the DBIRTH names them.
    let warmUpSeen = false;
    let counter: { alias: bigint | number | undefined; datatype: number | undefined } | undefined;
    subscriber.on('message', (topic, payload) => {
      const decoded = decodePayload(payload);
      if (topic.includes('/DBIRTH/')) {
        const birth = decoded.metrics.find((metric) => metric.name === 'Counter');
        if (birth) counter = { alias: birth.alias, datatype: birth.datatype };
        return;
      }
      for (const metric of decoded.metrics) {
        if (counter === undefined || metric.alias === undefined || BigInt(metric.alias) !== BigInt(counter.alias ?? -1)) continue;
        const value = Number(metricValue(metric, counter.datatype));
        if (value > 0) counters.push(value); // the warm-up values are ≤ 0
        else warmUpSeen = true;
      }
    });
    edge = startEdge(proxy.port, { bdSeqFile: join(dir, 'bdseq.json'), liveMaxBufferedBytes: LIMIT, ...(store ? { store: { dir: join(dir, 'store') } } : {}) });
    const device = edge.addDevice({ deviceId: 'drive-1', assetPath: DEVICE });
    const batch = (counter: number) => ({ topic: DEVICE, payload: { Counter: counter, Label: `${LABEL}${counter}` }, meta: { Counter: { type: 'Int32' as const } } });
    device.handleBatch(batch(0));
    edge.edge.start();
    await waitFor('online', () => edge!.edge.online);
    let warmUp = 0;
    await waitFor('the first DDATA path works', () => {
      device.handleBatch(batch(--warmUp)); // a new value each time: unchanged values send no DDATA
      return warmUpSeen;
    });
    // The batch given before start counts as dropped DATA already (not online, no store).
    const droppedBefore = edge.edge.counts.droppedData;
    proxy.stall(true);
    let peakBuffered = 0;
    const connection = (edge.edge as unknown as { connection: { bufferedBytes: number } }).connection;
    for (let i = 1; i <= SENT; i++) {
      device.handleBatch(batch(i));
      if (i % 500 === 0) {
        peakBuffered = Math.max(peakBuffered, connection.bufferedBytes);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    peakBuffered = Math.max(peakBuffered, connection.bufferedBytes);
    proxy.stall(false);
    return { counters, peakBuffered, droppedBefore };
  }

  it('with a store: the socket holds at most about the limit, the rest waits on disk and every value arrives', async () => {
    const { counters, peakBuffered, droppedBefore } = await run(true);
    assert.ok(peakBuffered <= LIMIT + 64 * 1024, `socket buffer peaked at ${peakBuffered} bytes (limit ${LIMIT})`);
    await waitFor(`all ${SENT} values at the observer`, () => new Set(counters).size >= SENT, 60_000);
    assert.deepEqual([...new Set(counters)].sort((a, b) => a - b), Array.from({ length: SENT }, (_, i) => i + 1));
    assert.equal(edge!.edge.counts.droppedData, droppedBefore, 'nothing dropped');
  });

  it('without a store: the excess is dropped and counted, with one warning', async () => {
    const { counters, peakBuffered, droppedBefore } = await run(false);
    assert.ok(peakBuffered <= LIMIT + 64 * 1024, `socket buffer peaked at ${peakBuffered} bytes (limit ${LIMIT})`);
    const dropped = edge!.edge.counts.droppedData - droppedBefore;
    assert.ok(dropped > 0, 'dropped and counted');
    const warnings = edge!.warnings.filter((w) => /slower than it comes/.test(w));
    assert.equal(warnings.length, 1, edge!.warnings.join('\n'));
    await waitFor('what was sent arrives', () => counters.length >= SENT - dropped, 30_000);
    assert.equal(counters.length, SENT - dropped, 'sent + dropped = produced');
  });
});
