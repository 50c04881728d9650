/**
 * Sparkplug store-and-forward on a real Mosquitto: while the broker is unreachable (the TAP refuses
 * the edge node and drops its connection; the broker stays up for the observer), device DATA is kept
 * on disk and sent after the next births as DDATA with is_historical = true, in order, exactly once,
 * with the source timestamps; also across a gateway restart (a process of its own).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { EdgeProcess } from '../helpers/sparkplug-edge-process';
import { SparkplugObserver, assertSeqContinuity, sleep, startEdge, waitFor, type EdgeUnderTest, type Observed } from '../helpers/sparkplug-harness';
import type { OracleMetric } from '../helpers/sparkplug-oracle';
import { MqttTap } from '../helpers/sparkplug-tap';

const ASSET = 'acme/plant1/press/line2/cell1/drive1';
const T0 = Date.now() - 60000;

/** [value, is_historical, timestamp] of the metric `alias` in each DDATA of `messages`. */
function points(messages: Observed[], alias: string): { value: number; historical: boolean; timestamp: number; message: Observed }[] {
  return messages.filter((m) => m.type === 'DDATA').flatMap((m) => m.decoded!.metrics.filter((x: OracleMetric) => x.alias === alias).map((x) => ({
    value: Number(x.int_value ?? x.long_value ?? x.double_value), historical: x.is_historical === true, timestamp: Number(x.timestamp), message: m,
  })));
}

describe('sparkplug edge store-and-forward (Mosquitto)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-saf-'));
  });

  after(async () => {
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('broker unreachable for a while', () => {
    let dut: EdgeUnderTest;
    let outageMark: number;
    let speedAlias: string;

    before(async () => {
      dut = startEdge(tap.port, { bdSeqFile: join(dir, 'a.json'), edgeNodeId: 'gw-sf', store: { dir: join(dir, 'store-a') } });
      const device = dut.addDevice({ deviceId: 'drive-1' });
      const feed = (v: number): void => device.handleBatch({ topic: ASSET, payload: { Speed: v }, meta: { Speed: { type: 'Int32', timestamp: T0 + v } } });
      feed(1);
      dut.edge.start();
      const dbirth = await observer.waitFor('DBIRTH', (m) => m.topic.endsWith('/DBIRTH/gw-sf/drive-1'));
      speedAlias = dbirth.decoded!.metrics[0].alias!;
      for (let v = 2; v <= 10; v++) feed(v);
      await observer.waitFor('live DDATA 10', (m) => points([m], speedAlias).some((p) => p.value === 10));
      tap.blocked = true;
      tap.killConnections();
      await waitFor('the edge node offline', () => !dut.edge.online);
      outageMark = observer.mark;
      for (let v = 11; v <= 60; v++) feed(v);
      assert.equal(dut.edge.counts.droppedData, 0);
      tap.blocked = false;
      await observer.waitFor('historical 60', (m) => points([m], speedAlias).some((p) => p.value === 60 && p.historical), outageMark, 15000);
      feed(61);
      await observer.waitFor('live 61', (m) => points([m], speedAlias).some((p) => p.value === 61), outageMark);
      await sleep(300);
    });

    after(async () => {
      await dut?.close();
    });

    it('every value of the outage arrives once, in order, as is_historical, with its source timestamp', () => {
      const historical = points(observer.of('gw-sf', undefined, outageMark), speedAlias).filter((p) => p.historical);
      assert.deepEqual(historical.map((p) => p.value), Array.from({ length: 50 }, (_, i) => 11 + i));
      assert.deepEqual(historical.map((p) => p.timestamp), historical.map((p) => T0 + p.value));
    });

    it('the stored DATA comes after the new session\'s NBIRTH and DBIRTH; the DBIRTH has the current value', () => {
      const session = observer.of('gw-sf', undefined, outageMark).filter((m) => m.type !== 'NDEATH');
      assert.deepEqual(session.slice(0, 2).map((m) => m.type), ['NBIRTH', 'DBIRTH']);
      assert.equal(Number(session[1].decoded!.metrics[0].int_value), 60);
      assert.equal(session.findIndex((m) => points([m], speedAlias).some((p) => p.historical)), 2);
    });

    it('live data after the outage is not historical; seq runs on across births, history and live data', () => {
      const live = points(observer.of('gw-sf', undefined, outageMark), speedAlias).filter((p) => !p.historical);
      assert.deepEqual(live.map((p) => p.value), [61]);
      assertSeqContinuity(observer.of('gw-sf'));
    });

    it('"Node Info/Stored Data" is 50 in the NBIRTH and 0 after the replay; nothing dropped', async () => {
      const nbirth = observer.of('gw-sf', ['NBIRTH'], outageMark)[0].decoded!;
      const stored = nbirth.metrics.find((m) => m.name === 'Node Info/Stored Data')!;
      assert.equal(stored.long_value, '50');
      await observer.waitFor('NDATA Stored Data = 0', (m) => m.type === 'NDATA' && m.decoded!.metrics.some((x) => x.alias === stored.alias && x.long_value === '0'), outageMark);
      assert.equal(dut.edge.counts.droppedData, 0);
      // 50, and the first value: fed before the first connect, it went to the store too (and into the first DBIRTH).
      assert.equal(dut.edge.counts.replayedData, 51);
    });
  });

  describe('gateway restarted while the broker is unreachable', () => {
    let first: EdgeProcess;
    let second: EdgeProcess;
    let lastLive = 0;
    let lastFed = 0;
    let counterAlias: string;
    let mark: number;

    before(async () => {
      const config = { port: tap.port, bdSeqFile: join(dir, 'b.json'), groupId: 'Plant 1', edgeNodeId: 'gw-sfp', deviceIds: ['drive-1'], feedMs: 20, storeDir: join(dir, 'store-b') };
      first = new EdgeProcess({ ...config, startAt: 1 });
      first.start();
      const dbirth = await observer.waitFor('DBIRTH', (m) => m.topic.endsWith('/DBIRTH/gw-sfp/drive-1'), 0, 15000);
      counterAlias = dbirth.decoded!.metrics[0].alias!;
      await observer.waitFor('some live data', (m) => points([m], counterAlias).some((p) => p.value >= 5));
      tap.blocked = true;
      tap.killConnections();
      await waitFor('the gateway offline', () => first.lines.includes('state connecting'));
      await sleep(50);
      lastLive = Math.max(...points(observer.of('gw-sfp'), counterAlias).map((p) => p.value));
      await sleep(400);
      await first.stop('SIGTERM');
      lastFed = Number(first.lines.find((line) => line.startsWith('fed '))!.slice(4));
      second = new EdgeProcess({ ...config, startAt: 100000 });
      second.start();
      await waitFor('the second gateway running', () => second.lines.some((line) => line.startsWith('state')), 15000);
      await sleep(300);
      mark = observer.mark;
      tap.blocked = false;
      await observer.waitFor('the first live value of the second gateway', (m) => points([m], counterAlias).some((p) => p.value >= 100000 && !p.historical), mark, 15000);
      await sleep(300);
    });

    after(async () => {
      await first?.stop('SIGKILL');
      await second?.stop('SIGTERM');
    });

    it('what the first process stored is sent by the second one after its births, contiguous up to its last value, in order', () => {
      const historical = points(observer.of('gw-sfp', undefined, mark), counterAlias).filter((p) => p.historical).map((p) => p.value);
      const fromFirst = historical.filter((v) => v < 100000);
      assert.ok(fromFirst.length >= 10, `only ${fromFirst.length} stored values from the first process`);
      // Values published in the instant the connection was cut (QoS 0 in the socket) are lost; nothing after.
      assert.ok(fromFirst[0] > lastLive && fromFirst[0] - lastLive <= 2, `first stored ${fromFirst[0]}, last live ${lastLive}`);
      assert.deepEqual(fromFirst, Array.from({ length: lastFed - fromFirst[0] + 1 }, (_, i) => fromFirst[0] + i));
    });

    it('then what the second process stored while still offline, also in order', () => {
      const historical = points(observer.of('gw-sfp', undefined, mark), counterAlias).filter((p) => p.historical).map((p) => p.value);
      const fromSecond = historical.filter((v) => v >= 100000);
      assert.ok(fromSecond.length >= 3);
      assert.deepEqual(fromSecond, Array.from({ length: fromSecond.length }, (_, i) => 100000 + i));
      assert.ok(historical.indexOf(fromSecond[0]) > historical.indexOf(lastFed));
    });
  });
});
