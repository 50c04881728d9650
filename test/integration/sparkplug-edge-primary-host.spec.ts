/**
 * Sparkplug B 3.0 edge conformance on a real Mosquitto, part 4: primary host application awareness
 * (reference/sparkplug.md §1.9). The test plays the primary host "scada" by publishing retained
 * STATE messages; the edge node must wait for a valid online STATE before its births, ignore STATEs
 * of other hosts, malformed ones and stale ones, and end its session when the host goes offline.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPublishPacket, ISubscribePacket } from 'mqtt-packet';
import type { SparkplugDevice } from '../../lib/sparkplug/device';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { SparkplugObserver, bdSeqOf, sleep, startEdge, waitFor, willBdSeq, type EdgeUnderTest } from '../helpers/sparkplug-harness';
import { MqttTap } from '../helpers/sparkplug-tap';

const HOST = 'scada';
const ASSET = 'acme/plant1/press/line2/cell1/drive1';
/** How long "no NBIRTH" is watched for after a STATE that must not cause one. */
const QUIET_MS = 400;

describe('sparkplug edge conformance: primary host (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;
  let dut: EdgeUnderTest;
  let device: SparkplugDevice;
  const T1 = Date.now();
  const nbirths = (from = 0): number => observer.of('gw-ph', ['NBIRTH'], from).length;

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-phid-'));
    dut = startEdge(tap.port, { bdSeqFile: join(dir, 'bdseq.json'), edgeNodeId: 'gw-ph', primaryHostId: HOST, warningIntervalMs: 0, store: { dir: join(dir, 'store') } });
    device = dut.addDevice({ deviceId: 'drive-1' });
    device.handleBatch({ topic: ASSET, payload: { Speed: 1 } });
  });

  after(async () => {
    await dut?.close();
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tck-id-message-flow-edge-node-birth-publish-phid-wait: subscribes to spBv1.0/STATE/scada at QoS 1 and publishes no NBIRTH without an online STATE', async () => {
    dut.edge.start();
    await waitFor('the STATE subscription', () => tap.packets.some((p) => p.packet.cmd === 'subscribe' &&
      (p.packet as ISubscribePacket).subscriptions.some((s) => s.topic === `spBv1.0/STATE/${HOST}` && s.qos === 1)));
    await sleep(1500);
    assert.equal(nbirths(), 0);
    assert.equal(dut.edge.state, 'waiting-for-host');
  });

  it('tck-id-message-flow-edge-node-birth-publish-phid-wait-id: an online STATE of another host id does not count', async () => {
    await observer.state('other-host', JSON.stringify({ online: true, timestamp: T1 }));
    await sleep(QUIET_MS);
    assert.equal(nbirths(), 0);
  });

  it('tck-id-message-flow-edge-node-birth-publish-phid-wait-online: "online" must be the boolean true ("true" as text, malformed JSON do not count; no crash)', async () => {
    await observer.state(HOST, JSON.stringify({ online: 'true', timestamp: T1 }));
    await observer.state(HOST, '{"online": tru');
    await observer.state(HOST, 'ONLINE'); // the pre-3.0 form
    await sleep(QUIET_MS);
    assert.equal(nbirths(), 0);
    assert.ok(dut.warnings.some((w) => w.includes('STATE of primary host "scada" ignored')), dut.warnings.join('\n'));
  });

  it('tck-id-operational-behavior-edge-node-birth-sequence-wait: an online STATE → NBIRTH and DBIRTH', async () => {
    const mark = observer.mark;
    await observer.state(HOST, JSON.stringify({ online: true, timestamp: T1 }));
    await observer.waitFor('DBIRTH', (m) => m.topic.endsWith('/DBIRTH/gw-ph/drive-1'), mark);
    assert.deepEqual(observer.of('gw-ph', undefined, mark).slice(0, 2).map((m) => m.type), ['NBIRTH', 'DBIRTH']);
  });

  it('tck-id-operational-behavior-primary-application-state-with-multiple-servers-state-subs: the STATE subscription is acknowledged before the NBIRTH', () => {
    const subscribe = tap.packets.find((p) => p.packet.cmd === 'subscribe' && (p.packet as ISubscribePacket).subscriptions.some((s) => s.topic === `spBv1.0/STATE/${HOST}`))!;
    const suback = tap.packets.findIndex((p) => p.packet.cmd === 'suback' && p.packet.messageId === (subscribe.packet as ISubscribePacket).messageId);
    const nbirth = tap.packets.findIndex((p) => p.packet.cmd === 'publish' && p.direction === 'edge→broker' && (p.packet as IPublishPacket).topic.includes('/NBIRTH/'));
    assert.ok(suback >= 0 && suback < nbirth);
  });

  it('tck-id-operational-behavior-edge-node-termination-host-offline-timestamp: an offline STATE older than the last online one is ignored; data goes on', async () => {
    const mark = observer.mark;
    await observer.state(HOST, JSON.stringify({ online: false, timestamp: T1 - 1000 }));
    await sleep(QUIET_MS);
    device.handleBatch({ topic: ASSET, payload: { Speed: 2 } });
    await observer.waitFor('DDATA', (m) => m.type === 'DDATA', mark);
    assert.deepEqual(observer.of('gw-ph', ['NDEATH'], mark), []);
    assert.equal(dut.edge.state, 'online');
  });

  describe('the primary host goes offline', () => {
    let mark: number;
    let tapMark: number;
    let bdSeqBefore: string | undefined;

    before(async () => {
      mark = observer.mark;
      tapMark = tap.packets.length;
      bdSeqBefore = bdSeqOf(observer.of('gw-ph', ['NBIRTH']).at(-1)!.decoded);
      await observer.state(HOST, JSON.stringify({ online: false, timestamp: T1 + 1000 }));
      await observer.waitFor('NDEATH', (m) => m.type === 'NDEATH', mark);
      await waitFor('a new CONNECT', () => tap.packets.slice(tapMark).some((p) => p.packet.cmd === 'connack'));
      for (let v = 100; v < 105; v++) device.handleBatch({ topic: ASSET, payload: { Speed: v } }); // kept while the host is offline
      await sleep(QUIET_MS);
    });

    it('tck-id-message-flow-edge-node-birth-publish-phid-offline: NDEATH with the session\'s bdSeq, then DISCONNECT', () => {
      const death = observer.of('gw-ph', ['NDEATH'], mark)[0];
      assert.equal(bdSeqOf(death.decoded), bdSeqBefore);
      const published = tap.packets.findIndex((p, i) => i >= tapMark && p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic.includes('/NDEATH/'));
      const disconnect = tap.packets.findIndex((p, i) => i >= tapMark && p.packet.cmd === 'disconnect');
      assert.ok(published >= 0 && disconnect > published);
    });

    it('tck-id-operational-behavior-edge-node-termination-host-offline: a new session (CONNECT with bdSeq + 1) that waits: no births while the host is offline', () => {
      const connect = tap.packets.slice(tapMark).find((p) => p.packet.cmd === 'connect')!.packet;
      assert.equal(Number(willBdSeq((connect as { will?: { payload: Buffer } }).will?.payload)), Number(bdSeqBefore) + 1);
      assert.equal(nbirths(mark), 0);
      assert.equal(dut.edge.state, 'waiting-for-host');
    });

    it('tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp: an online STATE older than the last offline one does not count', async () => {
      await observer.state(HOST, JSON.stringify({ online: true, timestamp: T1 }));
      await sleep(QUIET_MS);
      assert.equal(nbirths(mark), 0);
    });

    it('the host back online (newer timestamp) → NBIRTH with the new session\'s bdSeq, DBIRTH, then the data kept while it was offline (is_historical)', async () => {
      await observer.state(HOST, JSON.stringify({ online: true, timestamp: T1 + 2000 }));
      await observer.waitFor('DBIRTH', (m) => m.topic.endsWith('/DBIRTH/gw-ph/drive-1'), mark);
      assert.equal(Number(bdSeqOf(observer.of('gw-ph', ['NBIRTH'], mark)[0].decoded)), Number(bdSeqBefore) + 1);
      await observer.waitFor('historical 104', (m) => m.type === 'DDATA' && m.decoded!.metrics.some((x) => x.double_value === 104 && x.is_historical === true), mark);
      const historical = observer.of('gw-ph', ['DDATA'], mark).flatMap((m) => m.decoded!.metrics.filter((x) => x.is_historical).map((x) => x.double_value));
      assert.deepEqual(historical, [100, 101, 102, 103, 104]);
    });
  });
});
