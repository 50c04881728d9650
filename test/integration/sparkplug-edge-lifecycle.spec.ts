/**
 * Sparkplug B 3.0 edge conformance on a real Mosquitto, part 3: sessions ending and starting again
 * (reference/sparkplug.md §1.2, 1.3, 1.6, 1.7): the DUT's TCP killed (NDEATH from the Will, bdSeq
 * + 1, fresh births), Mosquitto SIGKILLed and restarted, the gateway process stopped and killed and
 * started again (bdSeq continues from its file), and seq wrapping past 255 with device births and
 * deaths in between.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IConnackPacket } from 'mqtt-packet';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { EdgeProcess } from '../helpers/sparkplug-edge-process';
import {
  SparkplugObserver, assertSeqContinuity, bdSeqOf, sleep, startEdge, waitFor, willBdSeq, type EdgeUnderTest,
} from '../helpers/sparkplug-harness';
import { MqttTap } from '../helpers/sparkplug-tap';

const A = (device: string): string => `acme/plant1/press/line2/cell1/${device}`;

describe('sparkplug edge conformance: lifecycle (Mosquitto)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-lifecycle-'));
  });

  after(async () => {
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** bdSeq of the Wills of the CONNECTs the broker accepted (CONNACK return code 0), for one client id. */
  function acceptedBdSeqs(clientId: string): string[] {
    const out: string[] = [];
    for (const p of tap.packets) {
      if (p.packet.cmd !== 'connect' || p.packet.clientId !== clientId) continue;
      const connack = tap.packets.find((q) => q.connection === p.connection && q.packet.cmd === 'connack');
      const code = connack ? ((connack.packet as IConnackPacket).returnCode ?? (connack.packet as IConnackPacket).reasonCode ?? 0) : -1;
      if (code === 0) out.push(willBdSeq(p.packet.will?.payload as Buffer)!);
    }
    return out;
  }

  describe('connection killed, broker killed and restarted', () => {
    let dut: EdgeUnderTest;
    let killMark: number;
    let restartMark: number;

    before(async () => {
      dut = startEdge(tap.port, { bdSeqFile: join(dir, 'kill.json'), edgeNodeId: 'gw-kill' });
      for (const id of ['drive-1', 'drive-2']) dut.addDevice({ deviceId: id }).handleBatch({ topic: A(id), payload: { Speed: 1 } });
      dut.edge.start();
      await observer.waitFor('the second DBIRTH', () => observer.of('gw-kill', ['DBIRTH']).length === 2);
      killMark = observer.mark;
      tap.killConnections(); // KILL: TCP gone without DISCONNECT
      await observer.waitFor('births after the kill', () => observer.of('gw-kill', ['DBIRTH'], killMark).length === 2);
      restartMark = observer.mark;
      await broker.stop('SIGKILL');
      await sleep(300); // a few failed attempts of the edge node while the broker is down
      tap.blocked = true; // the observer must be back before the edge node, or it misses the births
      await broker.restart();
      await observer.ready();
      tap.blocked = false;
      await waitFor('births after the broker restart', () => observer.of('gw-kill', ['DBIRTH'], restartMark).length === 2, 15000);
    });

    after(async () => {
      await dut?.close();
    });

    it('tck-id-payloads-ndeath-will-message: KILL → the broker publishes the NDEATH Will', () => {
      const deaths = observer.of('gw-kill', ['NDEATH'], killMark);
      assert.ok(deaths.length >= 1);
      assert.ok(deaths[0].index < observer.of('gw-kill', ['NBIRTH'], killMark)[0].index, 'NDEATH before the new NBIRTH');
    });

    it('tck-id-message-flow-edge-node-birth-publish-will-message-qos: the Will is delivered at QoS 1 to a QoS 1 subscriber', () => {
      assert.equal(observer.of('gw-kill', ['NDEATH'], killMark)[0].qos, 1);
    });

    it('tck-id-message-flow-edge-node-birth-publish-will-message-will-retained: the Will NDEATH is not retained (fresh subscriber gets nothing)', async () => {
      assert.equal(observer.of('gw-kill', ['NDEATH'], killMark)[0].retain, false);
      const fresh = await SparkplugObserver.connect(broker.url);
      await sleep(300);
      const retained = fresh.log.filter((m) => m.topic.includes('/NDEATH/gw-kill'));
      await fresh.close();
      assert.deepEqual(retained, []);
    });

    it('tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq: the Will carries the bdSeq of the killed session', () => {
      const deaths = observer.of('gw-kill', ['NDEATH'], killMark);
      assert.equal(bdSeqOf(deaths[0].decoded), bdSeqOf(observer.of('gw-kill', ['NBIRTH'])[0].decoded));
    });

    it('tck-id-topics-nbirth-bdseq-increment: every CONNECT the broker accepted carries bdSeq + 1 (0, 1, 2), failed attempts skip nothing', () => {
      assert.deepEqual(acceptedBdSeqs('uns-edge-conformance-gw-kill'), ['0', '1', '2']);
    });

    it('tck-id-topics-nbirth-bdseq-matching: each new session\'s NBIRTH has its CONNECT\'s bdSeq', () => {
      assert.deepEqual(observer.of('gw-kill', ['NBIRTH']).map((m) => bdSeqOf(m.decoded)), ['0', '1', '2']);
    });

    it('tck-id-message-flow-device-birth-publish-nbirth-wait: after every CONNECT, NBIRTH (seq 0) then all DBIRTHs, then data', () => {
      for (const from of [killMark, restartMark]) {
        const session = observer.of('gw-kill', undefined, from).filter((m) => m.type !== 'NDEATH');
        assert.deepEqual(session.slice(0, 3).map((m) => m.type), ['NBIRTH', 'DBIRTH', 'DBIRTH']);
        assert.equal(session[0].decoded!.seq, '0');
      }
    });

    it('tck-id-payloads-sequence-num-incrementing: seq restarts at 0 with each session and runs on', () => {
      assertSeqContinuity(observer.of('gw-kill'));
    });

    it('the node metric "Sessions" counts the three sessions', () => {
      const nbirth = observer.of('gw-kill', ['NBIRTH']).at(-1)!;
      assert.equal(nbirth.decoded!.metrics.find((m) => m.name === 'Node Info/Sessions')!.long_value, '3');
    });
  });

  describe('gateway restarted (a process of its own)', () => {
    let gateway: EdgeProcess;
    const marks: number[] = [];

    before(async () => {
      gateway = new EdgeProcess({ port: tap.port, bdSeqFile: join(dir, 'gateway.json'), groupId: 'Plant 1', edgeNodeId: 'gw-proc', deviceIds: ['drive-1'], feedMs: 200 });
      const births = (): number => observer.of('gw-proc', ['DBIRTH']).length;
      marks.push(observer.mark);
      gateway.start();
      await waitFor('first DBIRTH', () => births() === 1, 15000);
      marks.push(observer.mark);
      await gateway.stop('SIGTERM');
      gateway.start();
      await waitFor('DBIRTH after the graceful restart', () => births() === 2, 15000);
      marks.push(observer.mark);
      await gateway.stop('SIGKILL');
      await observer.waitFor('the Will NDEATH', (m) => m.topic.endsWith('/NDEATH/gw-proc'), marks[2]);
      gateway.start();
      await waitFor('DBIRTH after the crash', () => births() === 3, 15000);
    });

    after(async () => {
      await gateway?.stop('SIGTERM');
    });

    it('tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath: SIGTERM → NDEATH with the session\'s bdSeq before the process ends', () => {
      const deaths = observer.of('gw-proc', ['NDEATH'], marks[1]).filter((m) => m.index < marks[2]);
      assert.ok(deaths.length >= 1);
      assert.equal(bdSeqOf(deaths[0].decoded), '0');
    });

    it('tck-id-payloads-ndeath-will-message: SIGKILL → the broker publishes the Will NDEATH', () => {
      const deaths = observer.of('gw-proc', ['NDEATH'], marks[2]);
      assert.equal(bdSeqOf(deaths[0].decoded), '1');
    });

    it('tck-id-topic-structure-namespace-duplicate-device-id-across-edge-node: "drive-1" under two edge nodes on one broker (MAY)', () => {
      assert.ok(observer.log.some((m) => m.topic === 'spBv1.0/Plant 1/DBIRTH/gw-kill/drive-1'));
      assert.ok(observer.log.some((m) => m.topic === 'spBv1.0/Plant 1/DBIRTH/gw-proc/drive-1'));
    });

    it('tck-id-topics-nbirth-bdseq-increment: bdSeq continues across restarts and crashes (0, 1, 2) from its file', () => {
      assert.deepEqual(observer.of('gw-proc', ['NBIRTH']).map((m) => bdSeqOf(m.decoded)), ['0', '1', '2']);
      assert.deepEqual(acceptedBdSeqs('uns-edge-restart-gw-proc'), ['0', '1', '2']);
    });
  });

  describe('seq past 255', () => {
    let dut: EdgeUnderTest;

    before(async () => {
      dut = startEdge(tap.port, { bdSeqFile: join(dir, 'wrap.json'), edgeNodeId: 'gw-wrap' });
      const devices = ['d1', 'd2', 'd3'].map((id) => dut.addDevice({ deviceId: id }));
      for (const device of devices) device.handleBatch({ topic: A(device.deviceId), payload: { Value: 0 } });
      dut.edge.start();
      await observer.waitFor('DBIRTH d3', (m) => m.topic.endsWith('/DBIRTH/gw-wrap/d3'));
      for (let i = 1; i <= 320; i++) {
        const device = devices[i % 3];
        if (i % 50 === 0) {
          device.handleBatch({ topic: A(device.deviceId), payload: { Value: null }, meta: { Value: { quality: 'bad' } } }); // DDEATH
        }
        device.handleBatch({ topic: A(device.deviceId), payload: { Value: i } }); // DBIRTH after a death, else DDATA
        if (i % 20 === 0) await sleep(5);
      }
      await waitFor('all messages', () => observer.of('gw-wrap').length >= 4 + 320 + 6, 10000);
      await sleep(200);
    });

    after(async () => {
      await dut?.close();
    });

    it('tck-id-payloads-sequence-num-incrementing: 255 → 0 and on, across DDATA, DBIRTH and DDEATH of three devices, no NBIRTH in between', () => {
      const messages = observer.of('gw-wrap');
      assert.equal(observer.of('gw-wrap', ['NBIRTH']).length, 1);
      assert.ok(observer.of('gw-wrap', ['DDEATH']).length >= 6 && observer.of('gw-wrap', ['DBIRTH']).length >= 9);
      assertSeqContinuity(messages);
      const seqs = messages.map((m) => Number(m.decoded!.seq));
      const wrap = seqs.indexOf(255);
      assert.ok(wrap > 0 && seqs[wrap + 1] === 0, 'seq wrapped from 255 to 0');
      assert.ok(Math.max(...seqs) === 255);
    });

    for (const type of ['DDEATH', 'DBIRTH', 'DDATA']) {
      const id = { DDEATH: 'payloads-ddeath-seq-inc', DBIRTH: 'payloads-dbirth-seq-inc', DDATA: 'payloads-ddata-seq-inc' }[type];
      it(`tck-id-${id}: every ${type} has the previous message's seq + 1 (mod 256)`, () => {
        const messages = observer.of('gw-wrap');
        for (let i = 1; i < messages.length; i++) {
          if (messages[i].type !== type) continue;
          assert.equal(Number(messages[i].decoded!.seq), (Number(messages[i - 1].decoded!.seq) + 1) % 256, `${messages[i].topic} #${i}`);
        }
      });
    }
  });
});
