/**
 * Sparkplug B 3.0 edge conformance on a real Mosquitto, part 1: one session from CONNECT to a
 * graceful shutdown, observed from the broker (reference/sparkplug.md §1.1–1.7, 1.10, 1.11). One
 * `it` per tck-id, named with it; the session runs once in `before` and each test checks the
 * recorded traffic: the observer's messages (delivered QoS, retain as published, payloads decoded
 * with protobufjs) and the TAP's packets (CONNECT, Will, SUBSCRIBE/SUBACK, DISCONNECT).
 *
 * Scenario (MQTT 3.1.1): two devices with data before the connect; connect → NBIRTH, two DBIRTHs;
 * a change → DDATA; the same values again → nothing; the second device's source goes bad → DDEATH;
 * "Devices Online" changes → NDATA; graceful shutdown → NDEATH, DISCONNECT. Then the same on MQTT 5.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IConnectPacket, IDisconnectPacket, IPublishPacket, ISubackPacket, ISubscribePacket } from 'mqtt-packet';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import {
  SparkplugObserver, assertSeqContinuity, bdSeqOf, birthMap, sleep, startEdge, willBdSeq, type EdgeUnderTest, type Observed,
} from '../helpers/sparkplug-harness';
import { MqttTap, type TapPacket } from '../helpers/sparkplug-tap';
import { oracleDecode, type OracleMetric } from '../helpers/sparkplug-oracle';

const GROUP = 'Plant 1';
const A1 = 'acme/plant1/press/line2/cell1/drive1';
const A2 = 'acme/plant1/press/line2/cell1/drive2';
const NODE_TOPIC = /^spBv1\.0\/[^/+#]+\/(NBIRTH|NDATA|NDEATH|NCMD)\/[^/+#]+$/;
const DEVICE_TOPIC = /^spBv1\.0\/[^/+#]+\/(DBIRTH|DDATA|DDEATH|DCMD)\/[^/+#]+\/[^/+#]+$/;

interface Check {
  ids: string[];
  what: string;
  check: () => void;
}

describe('sparkplug edge conformance: session (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;
  let dut: EdgeUnderTest;
  /** Everything the observer got from gw-1, and the TAP's packets of the DUT. */
  let traffic: Observed[];
  let packets: TapPacket[];
  let closeMark: number;

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-session-'));
    dut = startEdge(tap.port, { bdSeqFile: join(dir, 'bdseq.json') });
    const d1 = dut.addDevice({ deviceId: 'drive-1', assetPath: A1 });
    const d2 = dut.addDevice({ deviceId: 'drive-2' });
    dut.addDevice({ deviceId: 'DRIVE-2' }); // never gets data: no DBIRTH, but a warning about the case collision
    d1.handleBatch({
      topic: A1,
      payload: { Speed: 12.5, 'Motor/Temp': 41.5, Energy: 9223372036854775807n, Fault: null, Mode: 'auto' },
      meta: { Speed: { type: 'Float', unit: 'Hz' }, Energy: { type: 'Int64' }, Fault: { type: 'Int32', quality: 'bad', reason: 'Modbus exception 2' } },
    });
    d2.handleBatch({ topic: A2, payload: { Level: 3, level: 3 }, meta: { Level: { type: 'UInt16' }, level: { type: 'UInt16' } } });
    dut.edge.start();
    await observer.waitFor('two DBIRTHs', () => observer.of('gw-1', ['DBIRTH']).length === 2);
    d1.handleBatch({ topic: A1, payload: { Speed: 13, 'Motor/Temp': 41.5, Energy: 9223372036854775807n, Fault: null, Mode: 'auto' }, meta: { Fault: { quality: 'bad' } } });
    d1.handleBatch({ topic: A1, payload: { Speed: 13, 'Motor/Temp': 41.5, Energy: 9223372036854775807n, Fault: null, Mode: 'auto' }, meta: { Fault: { quality: 'bad' } } });
    d2.handleBatch({ topic: A2, payload: { Level: null, level: null }, meta: { Level: { quality: 'bad' }, level: { quality: 'bad' } } });
    await observer.waitFor('DDEATH', (m) => m.type === 'DDEATH');
    await sleep(400); // RBE window, and the node metrics NDATA (100 ms interval)
    closeMark = observer.mark;
    await dut.close();
    await observer.waitFor('NDEATH', (m) => m.type === 'NDEATH', closeMark);
    await sleep(200);
    traffic = observer.of('gw-1');
    packets = tap.packets.filter((p) => p.connection === 1);
  });

  after(async () => {
    await dut?.close();
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const ofType = (...types: string[]): Observed[] => traffic.filter((m) => types.includes(m.type));
  const nbirth = (): Observed => ofType('NBIRTH')[0];
  const dbirths = (): Observed[] => ofType('DBIRTH');
  const edgePublishes = (): IPublishPacket[] => packets.filter((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish').map((p) => p.packet as IPublishPacket);
  const connect = (): IConnectPacket => packets.find((p) => p.packet.cmd === 'connect')!.packet as IConnectPacket;
  const allMetrics = (...types: string[]): OracleMetric[] => ofType(...types).flatMap((m) => m.decoded!.metrics);
  const indexOf = (predicate: (p: TapPacket) => boolean): number => packets.findIndex(predicate);
  const nbirthIndex = (): number => indexOf((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic.includes('/NBIRTH/'));
  const subackIndexFor = (filterPart: string): number => {
    const subscribe = packets.find((p) => p.packet.cmd === 'subscribe' && (p.packet as ISubscribePacket).subscriptions.some((s) => s.topic.includes(filterPart) && s.qos === 1));
    assert.ok(subscribe, `no QoS 1 SUBSCRIBE for ${filterPart}`);
    const id = (subscribe.packet as ISubscribePacket).messageId;
    return indexOf((p) => p.packet.cmd === 'suback' && (p.packet as ISubackPacket).messageId === id && (p.packet as ISubackPacket).granted[0] === 1);
  };
  const withinUtcWindow = (timestamp: string | undefined, receivedAt: number, label: string): void => {
    assert.ok(timestamp !== undefined, `${label}: no timestamp`);
    assert.ok(Math.abs(Number(timestamp) - receivedAt) <= 60000, `${label}: timestamp ${timestamp} not within 60 s of ${receivedAt}`);
  };

  const checks: Check[] = [
    // ---- §1.1 topic namespace
    { ids: ['topic-structure', 'topic-structure-namespace-a'], what: 'every topic is spBv1.0/group/TYPE/edge[/device]', check: () => {
      for (const m of traffic) assert.match(m.topic, m.parsed?.kind === 'device' ? DEVICE_TOPIC : NODE_TOPIC, m.topic);
      assert.match(connect().will!.topic, NODE_TOPIC);
    } },
    { ids: ['topic-structure-namespace-valid-group-id', 'topic-structure-namespace-valid-edge-node-id', 'topic-structure-namespace-valid-device-id',
      'intro-group-id-string', 'intro-group-id-chars', 'intro-edge-node-id-string', 'intro-edge-node-id-chars', 'intro-device-id-string', 'intro-device-id-chars'],
    what: 'ids with + / # or control characters are refused; ids in every topic are valid UTF-8 without + / # or U+0000', check: () => {
      for (const bad of ['a/b', 'a+b', 'a#', '', 'a\u0000b']) {
        assert.throws(() => startEdge(tap.port, { bdSeqFile: join(dir, 'unused.json'), groupId: bad }), /Sparkplug group id/);
        assert.throws(() => startEdge(tap.port, { bdSeqFile: join(dir, 'unused.json'), edgeNodeId: bad }), /Sparkplug edge node id/);
        assert.throws(() => dut.addDevice({ deviceId: bad }), /Sparkplug device id/);
      }
      for (const m of traffic) {
        assert.equal(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(m.topic)), m.topic);
        const levels = m.topic.split('/');
        assert.ok(levels.slice(1).every((level) => level !== '' && !/[+#\u0000]/.test(level)), m.topic);
      }
    } },
    { ids: ['topic-structure-namespace-device-id-associated-message-types', 'topic-structure-namespace-device-id-non-associated-message-types'],
      what: 'device id on D* messages, none on N* messages', check: () => {
        for (const m of traffic) assert.equal(m.topic.split('/').length, m.type.startsWith('D') ? 5 : 4, m.topic);
      } },
    { ids: ['topic-structure-namespace-unique-device-id', 'topic-structure-namespace-unique-edge-node-descriptor', 'intro-edge-node-id-uniqueness', 'payloads-nbirth-edge-node-descriptor'],
      what: 'one client id for the descriptor; each device born once per birth sequence', check: () => {
        assert.deepEqual([...new Set(tap.connects.map((c) => c.clientId))], ['uns-edge-conformance-gw-1']);
        assert.deepEqual(dbirths().map((m) => m.topic.split('/')[4]), ['drive-1', 'drive-2']);
      } },
    { ids: ['case-sensitivity-sparkplug-ids'], what: 'device ids that differ only in case are warned about (SHOULD NOT)', check: () => {
      assert.ok(dut.warnings.some((w) => w.includes('"drive-2" and "DRIVE-2"') && w.includes('differ only in case')), dut.warnings.join('\n'));
      const ids = dbirths().map((m) => m.topic.split('/')[4].toLowerCase());
      assert.equal(new Set(ids).size, ids.length);
    } },
    // ---- §1.2 CONNECT, Will, subscriptions
    { ids: ['case-sensitivity-metric-names'], what: 'metric names that differ only in case are warned about (SHOULD NOT); both are still published', check: () => {
      assert.ok(dut.warnings.some((w) => w.includes('metric names "Level" and "level" differ only in case')), dut.warnings.join('\n'));
      assert.deepEqual(dbirths()[1].decoded!.metrics.map((m) => m.name), ['Level', 'level']);
    } },
    { ids: ['principles-persistence-clean-session-311'], what: 'MQTT 3.1.1 CONNECT with Clean Session = 1', check: () => {
      assert.equal(connect().protocolVersion, 4);
      assert.equal(connect().clean, true);
    } },
    { ids: ['message-flow-edge-node-birth-publish-connect'], what: 'no PUBLISH before CONNACK', check: () => {
      const connack = indexOf((p) => p.packet.cmd === 'connack');
      const firstPublish = indexOf((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish');
      assert.ok(connack >= 0 && connack < firstPublish, `CONNACK at ${connack}, first PUBLISH at ${firstPublish}`);
    } },
    { ids: ['message-flow-edge-node-birth-publish-will-message', 'payloads-ndeath-will-message'], what: 'the CONNECT carries a Will', check: () => {
      assert.ok(connect().will);
    } },
    { ids: ['message-flow-edge-node-birth-publish-will-message-topic', 'topics-ndeath-topic'], what: 'Will topic spBv1.0/group/NDEATH/edge', check: () => {
      assert.equal(connect().will!.topic, `spBv1.0/${GROUP}/NDEATH/gw-1`);
    } },
    { ids: ['message-flow-edge-node-birth-publish-will-message-qos', 'payloads-ndeath-will-message-qos'], what: 'Will QoS 1', check: () => {
      assert.equal(connect().will!.qos, 1);
    } },
    { ids: ['message-flow-edge-node-birth-publish-will-message-will-retained', 'payloads-ndeath-will-message-retain'], what: 'Will not retained', check: () => {
      assert.equal(connect().will!.retain, false);
    } },
    { ids: ['message-flow-edge-node-birth-publish-will-message-payload'], what: 'Will payload is a Sparkplug B payload', check: () => {
      assert.ok(willBdSeq(connect().will!.payload as Buffer) !== undefined);
    } },
    { ids: ['topics-ndeath-payload', 'payloads-ndeath-seq', 'topics-ndeath-seq'], what: 'NDEATH (Will and published) has only bdSeq and no seq', check: () => {
      const death = ofType('NDEATH')[0].decoded!;
      for (const payload of [death, oracleDecode(connect().will!.payload as Buffer)]) {
        assert.deepEqual(payload.metrics.map((m) => m.name), ['bdSeq']);
        assert.equal(payload.seq, undefined);
      }
    } },
    { ids: ['message-flow-edge-node-birth-publish-will-message-payload-bdSeq'], what: 'bdSeq metric: Int64 in long_value', check: () => {
      const metric = oracleDecode(connect().will!.payload as Buffer).metrics[0];
      assert.equal(metric.datatype, 4);
      assert.equal(metric.value, 'long_value');
    } },
    { ids: ['topics-nbirth-bdseq-increment'], what: 'the first CONNECT ever (empty state dir) has bdSeq 0', check: () => {
      assert.equal(willBdSeq(connect().will!.payload as Buffer), '0');
    } },
    { ids: ['message-flow-edge-node-ncmd-subscribe'], what: 'NCMD subscribed at QoS 1, SUBACK before NBIRTH', check: () => {
      const suback = subackIndexFor(`spBv1.0/${GROUP}/NCMD/gw-1`);
      assert.ok(suback >= 0 && suback < nbirthIndex(), `SUBACK at ${suback}, NBIRTH at ${nbirthIndex()}`);
    } },
    { ids: ['message-flow-device-dcmd-subscribe'], what: 'DCMD subscribed at QoS 1 (…/DCMD/edge/+), SUBACK before the first DBIRTH', check: () => {
      const suback = subackIndexFor(`spBv1.0/${GROUP}/DCMD/gw-1/`);
      const firstDbirth = indexOf((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic.includes('/DBIRTH/'));
      assert.ok(suback >= 0 && suback < firstDbirth);
    } },
    // ---- §1.3 NBIRTH
    { ids: ['principles-birth-certificates-order'], what: 'the first PUBLISH of the session is the NBIRTH', check: () => {
      assert.match(edgePublishes()[0].topic, /\/NBIRTH\//);
    } },
    { ids: ['topics-nbirth-topic', 'message-flow-edge-node-birth-publish-nbirth-topic'], what: 'NBIRTH topic', check: () => {
      assert.equal(nbirth().topic, `spBv1.0/${GROUP}/NBIRTH/gw-1`);
    } },
    { ids: ['topics-nbirth-mqtt', 'payloads-nbirth-qos', 'payloads-nbirth-retain', 'message-flow-edge-node-birth-publish-nbirth-qos', 'message-flow-edge-node-birth-publish-nbirth-retained'],
      what: 'NBIRTH QoS 0, not retained', check: () => {
        assert.equal(nbirth().qos, 0);
        assert.equal(nbirth().retain, false);
      } },
    { ids: ['message-flow-edge-node-birth-publish-nbirth-payload'], what: 'NBIRTH decodes', check: () => assert.ok(nbirth().decoded) },
    { ids: ['topics-nbirth-seq-num', 'payloads-nbirth-seq', 'payloads-sequence-num-req-nbirth', 'message-flow-edge-node-birth-publish-nbirth-payload-seq'], what: 'NBIRTH seq = 0', check: () => {
      assert.equal(nbirth().decoded!.seq, '0');
    } },
    { ids: ['topics-nbirth-timestamp', 'payloads-nbirth-timestamp'], what: 'NBIRTH timestamp within 5 min before receipt, not after it', check: () => {
      const t = Number(nbirth().decoded!.timestamp);
      assert.ok(t <= nbirth().receivedAt && t > nbirth().receivedAt - 300000, `${t} vs ${nbirth().receivedAt}`);
    } },
    { ids: ['topics-nbirth-bdseq-included', 'payloads-nbirth-bdseq', 'message-flow-edge-node-birth-publish-nbirth-payload-bdSeq'], what: 'NBIRTH has bdSeq, Int64', check: () => {
      const metric = nbirth().decoded!.metrics.find((m) => m.name === 'bdSeq')!;
      assert.equal(metric.datatype, 4);
      assert.equal(metric.value, 'long_value');
    } },
    { ids: ['topics-nbirth-bdseq-matching', 'payloads-nbirth-bdseq-repeat', 'payloads-ndeath-bdseq'], what: 'NBIRTH bdSeq = the Will bdSeq of this CONNECT = the NDEATH bdSeq', check: () => {
      const will = willBdSeq(connect().will!.payload as Buffer);
      assert.equal(bdSeqOf(nbirth().decoded), will);
      assert.equal(bdSeqOf(ofType('NDEATH')[0].decoded), will);
    } },
    { ids: ['topics-nbirth-rebirth-metric', 'payloads-nbirth-rebirth-req', 'operational-behavior-data-commands-rebirth-name',
      'operational-behavior-data-commands-rebirth-datatype', 'operational-behavior-data-commands-rebirth-value'], what: 'Node Control/Rebirth, Boolean, false', check: () => {
      const metric = nbirth().decoded!.metrics.find((m) => m.name === 'Node Control/Rebirth')!;
      assert.equal(metric.datatype, 11);
      assert.equal(metric.boolean_value, false);
    } },
    { ids: ['operational-behavior-data-commands-rebirth-name-aliases'], what: 'Node Control/Rebirth has no alias although aliases are used', check: () => {
      assert.ok(nbirth().decoded!.metrics.some((m) => m.alias !== undefined));
      assert.equal(nbirth().decoded!.metrics.find((m) => m.name === 'Node Control/Rebirth')!.alias, undefined);
    } },
    { ids: ['operational-behavior-data-publish-nbirth-values'], what: 'the NBIRTH\'s "Node Info/Devices Online" counts the DBIRTHs that follow it (2), and no NDATA corrects it before a device changes', check: () => {
      const online = (metrics: OracleMetric[], alias?: string): string | undefined => metrics.find((m) => (alias ? m.alias === alias : m.name === 'Node Info/Devices Online'))?.int_value?.toString();
      const birthMetric = nbirth().decoded!.metrics.find((m) => m.name === 'Node Info/Devices Online')!;
      assert.equal(online(nbirth().decoded!.metrics), String(dbirths().length));
      assert.equal(dbirths().length, 2);
      const ddeath = ofType('DDEATH')[0].index;
      const corrections = ofType('NDATA').filter((m) => m.index < ddeath && online(m.decoded!.metrics, birthMetric.alias) !== undefined);
      assert.deepEqual(corrections.map((m) => m.topic), []);
      const after = ofType('NDATA').find((m) => m.index > ddeath && online(m.decoded!.metrics, birthMetric.alias) !== undefined);
      assert.equal(online(after!.decoded!.metrics, birthMetric.alias), '1');
    } },
    { ids: ['topics-nbirth-metric-reqs', 'operational-behavior-data-publish-nbirth'], what: 'every NDATA metric is in the NBIRTH', check: () => {
      const aliases = new Set(nbirth().decoded!.metrics.map((m) => m.alias));
      assert.ok(ofType('NDATA').length > 0, 'no NDATA seen');
      for (const metric of allMetrics('NDATA')) assert.ok(aliases.has(metric.alias), `alias ${metric.alias}`);
    } },
    { ids: ['topics-nbirth-metrics', 'payloads-metric-datatype-req'], what: 'every NBIRTH/DBIRTH metric has name, datatype, and a value or is_null', check: () => {
      for (const metric of allMetrics('NBIRTH', 'DBIRTH')) {
        assert.ok(metric.name && metric.datatype !== undefined, JSON.stringify(metric));
        assert.ok(metric.value !== undefined || metric.is_null === true, JSON.stringify(metric));
      }
    } },
    // ---- §1.4 DBIRTH
    { ids: ['topics-dbirth-topic', 'message-flow-device-birth-publish-dbirth-topic', 'message-flow-device-birth-publish-dbirth-match-edge-node-topic'],
      what: 'DBIRTH topic spBv1.0/group/DBIRTH/edge/device, group and edge of the NBIRTH', check: () => {
        assert.deepEqual(dbirths().map((m) => m.topic), [`spBv1.0/${GROUP}/DBIRTH/gw-1/drive-1`, `spBv1.0/${GROUP}/DBIRTH/gw-1/drive-2`]);
      } },
    { ids: ['message-flow-device-birth-publish-nbirth-wait', 'payloads-dbirth-order'], what: 'NBIRTH, then all DBIRTHs, before any DATA', check: () => {
      assert.deepEqual(traffic.slice(0, 3).map((m) => m.type), ['NBIRTH', 'DBIRTH', 'DBIRTH']);
    } },
    { ids: ['topics-dbirth-mqtt', 'payloads-dbirth-qos', 'payloads-dbirth-retain', 'message-flow-device-birth-publish-dbirth-qos', 'message-flow-device-birth-publish-dbirth-retained'],
      what: 'DBIRTH QoS 0, not retained', check: () => {
        for (const m of dbirths()) assert.deepEqual([m.qos, m.retain], [0, false]);
      } },
    { ids: ['message-flow-device-birth-publish-dbirth-payload'], what: 'DBIRTH decodes', check: () => dbirths().forEach((m) => assert.ok(m.decoded)) },
    { ids: ['topics-dbirth-seq', 'payloads-dbirth-seq', 'payloads-dbirth-seq-inc', 'message-flow-device-birth-publish-dbirth-payload-seq'], what: 'DBIRTH seq = previous + 1', check: () => {
      assert.deepEqual(dbirths().map((m) => m.decoded!.seq), ['1', '2']);
    } },
    { ids: ['topics-dbirth-timestamp', 'payloads-dbirth-timestamp'], what: 'DBIRTH payload timestamp', check: () => {
      for (const m of dbirths()) withinUtcWindow(m.decoded!.timestamp, m.receivedAt, m.topic);
    } },
    { ids: ['topics-dbirth-metric-reqs', 'operational-behavior-data-publish-dbirth'], what: 'every DDATA metric is in its DBIRTH', check: () => {
      const births = birthMap(traffic);
      const aliases = new Set([...births.values()].map((b) => b.alias));
      assert.ok(ofType('DDATA').length > 0);
      for (const metric of allMetrics('DDATA')) assert.ok(aliases.has(metric.alias), `alias ${metric.alias}`);
    } },
    { ids: ['topics-dbirth-metrics'], what: 'DBIRTH lists every metric with name, datatype and value', check: () => {
      assert.deepEqual(dbirths()[0].decoded!.metrics.map((m) => [m.name, m.datatype]),
        [['Speed', 9], ['Motor/Temp', 10], ['Energy', 4], ['Fault', 3], ['Mode', 12]]);
      assert.equal(dbirths()[0].decoded!.metrics[2].long_value, '9223372036854775807');
    } },
    { ids: ['operational-behavior-data-publish-dbirth-values', 'operational-behavior-data-publish-nbirth-values'], what: 'a null value is is_null = true without a value field', check: () => {
      const fault = dbirths()[0].decoded!.metrics.find((m) => m.name === 'Fault')!;
      assert.equal(fault.is_null, true);
      assert.equal(fault.value, undefined);
    } },
    // ---- §1.5 DATA
    { ids: ['topics-ndata-topic', 'topics-ddata-topic'], what: 'NDATA and DDATA topics', check: () => {
      assert.ok(ofType('NDATA').every((m) => m.topic === `spBv1.0/${GROUP}/NDATA/gw-1`));
      assert.ok(ofType('DDATA').every((m) => m.topic === `spBv1.0/${GROUP}/DDATA/gw-1/drive-1`));
    } },
    { ids: ['topics-ndata-mqtt', 'payloads-ndata-qos', 'payloads-ndata-retain', 'topics-ddata-mqtt', 'payloads-ddata-qos', 'payloads-ddata-retain'], what: 'DATA QoS 0, not retained', check: () => {
      for (const m of ofType('NDATA', 'DDATA')) assert.deepEqual([m.qos, m.retain], [0, false]);
    } },
    { ids: ['topics-ndata-timestamp', 'payloads-ndata-timestamp', 'topics-ddata-timestamp', 'payloads-ddata-timestamp'], what: 'DATA payload timestamps', check: () => {
      for (const m of ofType('NDATA', 'DDATA')) withinUtcWindow(m.decoded!.timestamp, m.receivedAt, m.topic);
    } },
    { ids: ['payloads-ndata-order', 'payloads-ddata-order'], what: 'no DATA before the NBIRTH and every DBIRTH', check: () => {
      const firstData = traffic.findIndex((m) => m.type.endsWith('DATA'));
      const lastBirth = traffic.map((m) => m.type).lastIndexOf('DBIRTH');
      assert.ok(firstData > lastBirth);
    } },
    { ids: ['topics-ndata-payload', 'topics-ddata-payload'], what: 'DATA carries the changed metrics', check: () => {
      const ddata = ofType('DDATA');
      assert.equal(ddata.length, 1);
      const speedAlias = dbirths()[0].decoded!.metrics[0].alias;
      assert.deepEqual(ddata[0].decoded!.metrics.map((m) => [m.alias, m.float_value]), [[speedAlias, 13]]);
    } },
    { ids: ['operational-behavior-data-publish-nbirth-change', 'operational-behavior-data-publish-dbirth-change', 'principles-rbe-recommended'],
      what: 'report by exception: the repeated batch published nothing', check: () => {
        assert.equal(ofType('DDATA').length, 1);
      } },
    { ids: ['operational-behavior-data-publish-nbirth-order', 'operational-behavior-data-publish-dbirth-order'], what: 'one value per metric per payload, so in order', check: () => {
      for (const m of ofType('NDATA', 'DDATA')) {
        const keys = m.decoded!.metrics.map((metric) => metric.alias ?? metric.name);
        assert.equal(new Set(keys).size, keys.length);
      }
    } },
    // ---- §1.6 seq
    { ids: ['payloads-sequence-num-always-included'], what: 'every message but NDEATH has seq', check: () => {
      for (const m of traffic.filter((x) => x.type !== 'NDEATH')) assert.ok(m.decoded!.seq !== undefined, m.topic);
    } },
    { ids: ['payloads-sequence-num-incrementing', 'topics-ndata-seq-num', 'payloads-ndata-seq', 'payloads-ndata-seq-inc', 'topics-ddata-seq-num', 'payloads-ddata-seq',
      'payloads-ddata-seq-inc', 'topics-ddeath-seq-num', 'payloads-ddeath-seq', 'payloads-ddeath-seq-inc', 'payloads-ddeath-seq-number'],
    what: 'one seq across node and devices, +1 per message', check: () => {
      assert.ok(ofType('DDEATH').length === 1 && ofType('NDATA').length >= 1);
      assertSeqContinuity(traffic);
    } },
    // ---- §1.7 termination
    { ids: ['operational-behavior-edge-node-intentional-disconnect-ndeath', 'payloads-ndeath-will-message-publisher'], what: 'graceful shutdown publishes NDEATH', check: () => {
      assert.equal(traffic.filter((m) => m.index >= closeMark).find((m) => m.type === 'NDEATH')?.topic, `spBv1.0/${GROUP}/NDEATH/gw-1`);
    } },
    { ids: ['payloads-ndeath-will-message-publisher-disconnect-mqtt311', 'operational-behavior-edge-node-intentional-disconnect-packet'], what: 'PUBLISH NDEATH, then DISCONNECT', check: () => {
      const death = indexOf((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic.includes('/NDEATH/'));
      const disconnect = indexOf((p) => p.packet.cmd === 'disconnect');
      assert.ok(death >= 0 && disconnect > death, `NDEATH at ${death}, DISCONNECT at ${disconnect}`);
    } },
    { ids: ['operational-behavior-device-ddeath', 'topics-ddeath-topic', 'topics-ddeath-mqtt'], what: 'source gone → DDEATH on its topic, QoS 0, not retained', check: () => {
      const ddeath = ofType('DDEATH');
      assert.deepEqual(ddeath.map((m) => [m.topic, m.qos, m.retain]), [[`spBv1.0/${GROUP}/DDEATH/gw-1/drive-2`, 0, false]]);
    } },
    { ids: ['payloads-ddeath-timestamp'], what: 'DDEATH payload timestamp', check: () => {
      const m = ofType('DDEATH')[0];
      withinUtcWindow(m.decoded!.timestamp, m.receivedAt, m.topic);
    } },
    // ---- §1.10 payload and metric structure
    { ids: ['payloads-timestamp-in-UTC', 'payloads-metric-timestamp-in-UTC'], what: 'payload and metric timestamps within 60 s of the observer clock', check: () => {
      for (const m of traffic) {
        withinUtcWindow(m.decoded!.timestamp, m.receivedAt, m.topic);
        for (const metric of m.decoded!.metrics) if (metric.timestamp !== undefined) withinUtcWindow(metric.timestamp, m.receivedAt, `${m.topic} ${metric.name ?? metric.alias}`);
      }
    } },
    { ids: ['payloads-name-birth-data-requirement'], what: 'every BIRTH and DATA metric has a timestamp', check: () => {
      for (const metric of allMetrics('NBIRTH', 'DBIRTH', 'NDATA', 'DDATA')) assert.ok(metric.timestamp !== undefined, JSON.stringify(metric));
    } },
    { ids: ['payloads-name-requirement', 'payloads-alias-birth-requirement'], what: 'BIRTH metrics have a name (and the alias beside it)', check: () => {
      for (const metric of allMetrics('NBIRTH', 'DBIRTH')) assert.ok(metric.name !== undefined);
      assert.ok(allMetrics('DBIRTH').every((metric) => metric.alias !== undefined));
    } },
    { ids: ['payloads-alias-uniqueness'], what: 'aliases unique across NBIRTH and every DBIRTH', check: () => {
      const aliases = allMetrics('NBIRTH', 'DBIRTH').map((m) => m.alias).filter((a) => a !== undefined);
      assert.equal(new Set(aliases).size, aliases.length);
    } },
    { ids: ['payloads-alias-data-cmd-requirement'], what: 'DATA metrics: alias, no name', check: () => {
      for (const metric of allMetrics('NDATA', 'DDATA')) assert.ok(metric.alias !== undefined && metric.name === undefined, JSON.stringify(metric));
    } },
    { ids: ['payloads-metric-datatype-value-type', 'payloads-metric-datatype-value'], what: 'datatypes are defined codes 1…34', check: () => {
      for (const metric of allMetrics('NBIRTH', 'DBIRTH')) assert.ok(metric.datatype! >= 1 && metric.datatype! <= 34);
    } },
    { ids: ['payloads-metric-datatype-not-req'], what: 'no datatype in DATA', check: () => {
      for (const metric of allMetrics('NDATA', 'DDATA')) assert.equal(metric.datatype, undefined);
    } },
    // ---- §1.11 PropertySets, quality
    { ids: ['payloads-propertyset-keys-array-size', 'payloads-propertyset-values-array-size'], what: 'keys.length == values.length', check: () => {
      const sets = allMetrics('DBIRTH', 'DDATA').map((m) => m.properties).filter((p) => p !== undefined);
      assert.ok(sets.length >= 2);
      for (const set of sets) assert.equal(set!.keys!.length, set!.values!.length);
    } },
    { ids: ['payloads-metric-propertyvalue-type-type', 'payloads-metric-propertyvalue-type-value', 'payloads-metric-propertyvalue-type-req'], what: 'property values have a basic type', check: () => {
      for (const set of allMetrics('DBIRTH').map((m) => m.properties).filter((p) => p !== undefined)) {
        for (const value of set!.values!) assert.ok((value.type as number) >= 1 && (value.type as number) <= 14, JSON.stringify(value));
      }
    } },
    { ids: ['payloads-propertyset-quality-value-type', 'payloads-propertyset-quality-value-value'], what: 'a bad read carries Quality = 0 as Int32', check: () => {
      const fault = dbirths()[0].decoded!.metrics.find((m) => m.name === 'Fault')!;
      const i = fault.properties!.keys!.indexOf('Quality');
      assert.deepEqual([fault.properties!.values![i].type, fault.properties!.values![i].int_value], [3, 0]);
    } },
  ];

  for (const { ids, what, check } of checks) {
    for (const id of ids) it(`tck-id-${id}: ${what}`, check);
  }
});

describe('sparkplug edge conformance: session on MQTT 5 (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;
  let dut: EdgeUnderTest;
  let closeMark: number;

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-session5-'));
    dut = startEdge(tap.port, { bdSeqFile: join(dir, 'bdseq.json'), edgeNodeId: 'gw-5', protocolVersion: 5 });
    dut.addDevice({ deviceId: 'drive-1' }).handleBatch({ topic: A1, payload: { Speed: 1 } });
    dut.edge.start();
    await observer.waitFor('DBIRTH', (m) => m.type === 'DBIRTH');
    closeMark = observer.mark;
    await dut.close();
    await observer.waitFor('NDEATH', (m) => m.type === 'NDEATH', closeMark);
    await sleep(300);
  });

  after(async () => {
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tck-id-principles-persistence-clean-session-50: Clean Start = 1 and no Session Expiry Interval (= 0)', () => {
    const connect = tap.connects[0];
    assert.equal(connect.protocolVersion, 5);
    assert.equal(connect.clean, true);
    assert.ok(!connect.properties?.sessionExpiryInterval, JSON.stringify(connect.properties));
  });

  it('tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt50: NDEATH published, then DISCONNECT with reason code 0x04', () => {
    const death = tap.packets.findIndex((p) => p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic.includes('/NDEATH/'));
    const disconnect = tap.packets.findIndex((p) => p.packet.cmd === 'disconnect');
    assert.ok(death >= 0 && disconnect > death);
    assert.equal((tap.packets[disconnect].packet as IDisconnectPacket).reasonCode, 0x04);
    // 0x04 makes the broker publish the Will as well: a second NDEATH with the same bdSeq.
    const deaths = observer.of('gw-5', ['NDEATH'], closeMark);
    assert.equal(deaths.length, 2);
    assert.equal(bdSeqOf(deaths[0].decoded), bdSeqOf(deaths[1].decoded));
  });
});
