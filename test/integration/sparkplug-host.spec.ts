/**
 * Sparkplug B 3.0 host application conformance on a real Mosquitto (reference/sparkplug.md §2), and
 * the bridge into the UNS: a uns-edge edge node with a device on one side, the host (lib/sparkplug/
 * host.ts) through the TAP on the other, and the test as observer and as a simulated edge node that
 * sends crafted sequences (seq gaps, unknown aliases, garbage). One `it` per tck-id.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IConnectPacket, IPublishPacket, ISubackPacket, ISubscribePacket } from 'mqtt-packet';
import { DataType } from '../../lib/sparkplug/datatypes';
import { SparkplugHost, pathTemplate, type NodeStateChange } from '../../lib/sparkplug/host';
import { encodePayload, type Metric } from '../../lib/sparkplug/payload';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { SparkplugObserver, sleep, startEdge, waitFor, type EdgeUnderTest, type Observed } from '../helpers/sparkplug-harness';
import { oracleDecode } from '../helpers/sparkplug-oracle';
import { MqttTap } from '../helpers/sparkplug-tap';

const GROUP = 'Plant 1';
const HOST = 'scada-1';
const REORDER_MS = 300;

interface HostUnderTest {
  host: SparkplugHost;
  batches: (TagBatch & { historical?: boolean })[];
  changes: NodeStateChange[];
  warnings: string[];
  infos: string[];
}

function startHost(port: number, protocolVersion: 4 | 5, hostId = HOST): HostUnderTest {
  const batches: HostUnderTest['batches'] = [];
  const changes: NodeStateChange[] = [];
  const warnings: string[] = [];
  const infos: string[] = [];
  const host = new SparkplugHost({
    hostId,
    groups: [GROUP],
    mqtt: { host: '127.0.0.1', port, protocolVersion, clientId: `host-${hostId}`, keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
    assetPath: pathTemplate('acme/{group}/{edge}/{device}', 'acme/{group}/{edge}'),
    reorderTimeoutMs: REORDER_MS,
    rebirthIntervalMs: 100,
    warn: (m) => warnings.push(m),
    info: (m) => infos.push(m),
  });
  host.on('batch', (batch) => batches.push(batch));
  host.on('online', (change) => changes.push(change));
  host.start();
  return { host, batches, changes, warnings, infos };
}

describe('sparkplug host application conformance (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;
  let hut: HostUnderTest;
  let edge: EdgeUnderTest;
  let stateMessages: Observed[];

  const hostPackets = (): IPublishPacket[] => tap.packets.filter((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish').map((p) => p.packet as IPublishPacket);
  const connect = (): IConnectPacket => tap.packets.find((p) => p.packet.cmd === 'connect')!.packet as IConnectPacket;
  const willState = (): { online: unknown; timestamp: unknown } => JSON.parse(connect().will!.payload.toString());
  const statesOf = (from = 0): { online: boolean; timestamp: number; retain: boolean; qos: number }[] =>
    observer.log.slice(from).filter((m) => m.topic === `spBv1.0/STATE/${HOST}`).map((m) => ({ ...JSON.parse(m.bytes.toString()), retain: m.retain, qos: m.qos }));
  /** NCMDs the host sent to an edge node, from the observer's log. */
  const ncmds = (edgeNodeId: string, from = 0): Observed[] => observer.log.slice(from).filter((m) => m.topic === `spBv1.0/${GROUP}/NCMD/${edgeNodeId}`);

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-host-'));
    hut = startHost(tap.port, 5);
    await waitFor('host online', () => hut.host.state === 'online');
    await observer.waitFor('STATE online', (m) => m.topic === `spBv1.0/STATE/${HOST}`);
    edge = startEdge(broker.port, { bdSeqFile: join(dir, 'edge.json'), edgeNodeId: 'gw-1' });
    edge.addDevice({ deviceId: 'drive-1', assetPath: 'acme/Plant 1/gw-1/drive-1' }).handleBatch({
      topic: 'acme/Plant 1/gw-1/drive-1',
      payload: { Speed: 12.5, Energy: 9223372036854775807n, Mode: 'auto', Fault: null },
      meta: { Speed: { type: 'Float', unit: 'Hz' }, Energy: { type: 'Int64' }, Fault: { type: 'Int32', quality: 'bad' } },
    });
    edge.edge.start();
    await waitFor('the device batch at the host', () => hut.batches.some((b) => b.topic === 'acme/Plant 1/gw-1/drive-1'));
    stateMessages = observer.log.filter((m) => m.topic === `spBv1.0/STATE/${HOST}`);
  });

  after(async () => {
    await edge?.close();
    await hut?.host.close();
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('session establishment and STATE (§2)', () => {
    it('tck-id-message-flow-phid-sparkplug-clean-session-50: MQTT 5 Clean Start = 1, no Session Expiry', () => {
      assert.equal(connect().protocolVersion, 5);
      assert.equal(connect().clean, true);
      assert.ok(!connect().properties?.sessionExpiryInterval);
    });

    for (const id of ['host-topic-phid-death-required', 'operational-behavior-host-application-connect-will', 'payloads-state-will-message',
      'host-topic-phid-death-topic', 'operational-behavior-host-application-connect-will-topic', 'operational-behavior-host-application-death-topic']) {
      it(`tck-id-${id}: the CONNECT has a Will on spBv1.0/STATE/<host id>`, () => assert.equal(connect().will?.topic, `spBv1.0/STATE/${HOST}`));
    }

    for (const id of ['host-topic-phid-death-qos', 'host-topic-phid-death-retain', 'payloads-state-will-message-qos', 'payloads-state-will-message-retain',
      'operational-behavior-host-application-connect-will-qos', 'operational-behavior-host-application-connect-will-retained',
      'operational-behavior-host-application-death-qos', 'operational-behavior-host-application-death-retained']) {
      it(`tck-id-${id}: Will QoS 1, retained`, () => assert.deepEqual([connect().will!.qos, connect().will!.retain], [1, true]));
    }

    for (const id of ['host-topic-phid-death-payload', 'payloads-state-will-message-payload', 'operational-behavior-host-application-connect-will-payload',
      'operational-behavior-host-application-death-payload']) {
      it(`tck-id-${id}: Will payload JSON {online: false, timestamp: integer ms}`, () => {
        assert.equal(willState().online, false);
        assert.ok(Number.isInteger(willState().timestamp));
      });
    }

    it('tck-id-host-topic-phid-death-payload-timestamp-connect: the Will timestamp is the time of the CONNECT', () => {
      const at = tap.packets.find((p) => p.packet.cmd === 'connect')!.at;
      assert.ok(Math.abs((willState().timestamp as number) - at) < 1000);
    });

    for (const id of ['host-topic-phid-birth-sub-required', 'payloads-state-subscribe', 'message-flow-phid-sparkplug-subscription']) {
      it(`tck-id-${id}: its own STATE and spBv1.0/<group>/# subscribed (SUBACK) before the STATE birth`, () => {
        const stateAt = tap.packets.findIndex((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish');
        for (const filter of [`spBv1.0/STATE/${HOST}`, `spBv1.0/${GROUP}/#`]) {
          const subscribe = tap.packets.find((p) => p.packet.cmd === 'subscribe' && (p.packet as ISubscribePacket).subscriptions.some((s) => s.topic === filter && s.qos === 1));
          assert.ok(subscribe, filter);
          const suback = tap.packets.findIndex((p) => p.packet.cmd === 'suback' && (p.packet as ISubackPacket).messageId === (subscribe.packet as ISubscribePacket).messageId);
          assert.ok(suback >= 0 && suback < stateAt, `${filter}: SUBACK ${suback}, STATE ${stateAt}`);
        }
      });
    }

    for (const id of ['host-topic-phid-birth-message', 'host-topic-phid-birth-required', 'message-flow-phid-sparkplug-state-publish',
      'operational-behavior-host-application-connect-birth', 'operational-behavior-primary-application-state-with-multiple-servers-state', 'payloads-state-birth',
      'intro-sparkplug-host-state', 'components-ph-state', 'conformance-primary-host',
      'host-topic-phid-birth-topic', 'operational-behavior-host-application-connect-birth-topic']) {
      it(`tck-id-${id}: the first PUBLISH is the STATE birth on spBv1.0/STATE/<host id>`, () => assert.equal(hostPackets()[0].topic, `spBv1.0/STATE/${HOST}`));
    }

    for (const id of ['host-topic-phid-birth-qos', 'host-topic-phid-birth-retain', 'operational-behavior-host-application-connect-birth-qos',
      'operational-behavior-host-application-connect-birth-retained']) {
      it(`tck-id-${id}: STATE birth QoS 1, retained`, () => {
        assert.deepEqual([hostPackets()[0].qos, hostPackets()[0].retain], [1, true]);
        assert.deepEqual([stateMessages[0].qos, stateMessages[0].retain], [1, true]);
      });
    }

    for (const id of ['host-topic-phid-birth-payload', 'payloads-state-birth-payload', 'message-flow-phid-sparkplug-state-publish-payload',
      'operational-behavior-host-application-connect-birth-payload', 'host-topic-phid-birth-payload-timestamp', 'message-flow-phid-sparkplug-state-publish-payload-timestamp']) {
      it(`tck-id-${id}: STATE birth {online: true, timestamp: the Will's}`, () => {
        const birth = JSON.parse(stateMessages[0].bytes.toString());
        assert.deepEqual(birth, { online: true, timestamp: willState().timestamp });
      });
    }

    it('tck-id-message-flow-hid-sparkplug-state-message-delivered: told it is offline, the host republishes online with the same timestamp', async () => {
      const mark = observer.mark;
      await observer.state(HOST, JSON.stringify({ online: false, timestamp: Date.now() }));
      await observer.waitFor('online again', (m) => m.topic === `spBv1.0/STATE/${HOST}` && JSON.parse(m.bytes.toString()).online === true, mark);
      const online = statesOf(mark).filter((s) => s.online);
      assert.equal(online[0].timestamp, willState().timestamp);
    });
  });

  describe('edge node data into the UNS', () => {
    it('tag batches at the mapped UNS path, with types, exact Int64, units, quality, timestamps', () => {
      const batch = hut.batches.find((b) => b.topic === 'acme/Plant 1/gw-1/drive-1')!;
      assert.deepEqual(batch.payload, { Speed: 12.5, Energy: 9223372036854775807n, Mode: 'auto', Fault: null });
      assert.equal(batch.meta!.Speed.type, 'Float');
      assert.equal(batch.meta!.Speed.unit, 'Hz');
      assert.equal(batch.meta!.Energy.type, 'Int64');
      assert.equal(batch.meta!.Fault.quality, 'bad');
      assert.ok(typeof batch.meta!.Speed.timestamp === 'number');
      const node = hut.batches.find((b) => b.topic === 'acme/Plant 1/gw-1')!;
      assert.equal(node.payload['Node Info/Software'], 'uns-edge conformance');
    });

    it('online state of the edge node and its device', () => {
      assert.deepEqual(hut.changes.slice(0, 2).map((c) => [c.topic, c.online]), [['acme/Plant 1/gw-1', true], ['acme/Plant 1/gw-1/drive-1', true]]);
    });

    it('DDATA by alias reaches the UNS as a batch of the changed metrics', async () => {
      const count = hut.batches.length;
      edge.devices.get('drive-1')!.handleBatch({ topic: 'acme/Plant 1/gw-1/drive-1', payload: { Speed: 13, Energy: 9223372036854775807n, Mode: 'auto', Fault: null }, meta: { Fault: { quality: 'bad' } } });
      await waitFor('a batch', () => hut.batches.length > count && hut.batches.at(-1)!.payload.Speed === 13);
      assert.deepEqual(hut.batches.at(-1)!.payload, { Speed: 13 });
    });
  });

  describe('commands (§2)', () => {
    let mark: number;
    let dcmd: Observed;
    let ncmd: Observed;

    before(async () => {
      mark = observer.mark;
      hut.host.write(GROUP, 'gw-1', 'drive-1', { Speed: 42.5, Mode: 'manual' });
      await waitFor('the write at the device', () => edge.writes.length === 1);
      hut.host.requestRebirth(GROUP, 'gw-1');
      ncmd = await observer.waitFor('NCMD', (m) => m.type === 'NCMD', mark);
      dcmd = observer.log.slice(mark).find((m) => m.type === 'DCMD')!;
    });

    it('a write reaches the device as a write command (metrics by alias, values with the DBIRTH types)', () => {
      assert.deepEqual(edge.writes[0].payload, { Speed: 42.5, Mode: 'manual' });
      assert.ok(dcmd.decoded!.metrics.every((m) => m.alias !== undefined && m.name === undefined && m.datatype === undefined));
    });

    for (const id of ['topics-ncmd-topic', 'operational-behavior-data-commands-ncmd-verb', 'operational-behavior-data-commands-ncmd-rebirth-verb']) {
      it(`tck-id-${id}: NCMD on spBv1.0/group/NCMD/edge`, () => assert.equal(ncmd.topic, `spBv1.0/${GROUP}/NCMD/gw-1`));
    }
    for (const id of ['topics-dcmd-topic', 'operational-behavior-data-commands-dcmd-verb']) {
      it(`tck-id-${id}: DCMD on spBv1.0/group/DCMD/edge/device`, () => assert.equal(dcmd.topic, `spBv1.0/${GROUP}/DCMD/gw-1/drive-1`));
    }
    for (const id of ['topics-ncmd-mqtt', 'payloads-ncmd-qos', 'payloads-ncmd-retain', 'topics-dcmd-mqtt', 'payloads-dcmd-qos', 'payloads-dcmd-retain']) {
      it(`tck-id-${id}: commands QoS 0, not retained`, () => {
        for (const packet of hostPackets().filter((p) => /\/(N|D)CMD\//.test(p.topic))) assert.deepEqual([packet.qos, packet.retain], [0, false]);
      });
    }
    for (const id of ['topics-ncmd-timestamp', 'payloads-ncmd-timestamp', 'topics-dcmd-timestamp', 'payloads-dcmd-timestamp']) {
      it(`tck-id-${id}: commands carry a payload timestamp`, () => {
        for (const m of [ncmd, dcmd]) assert.ok(Math.abs(Number(m.decoded!.timestamp) - m.receivedAt) < 60000);
      });
    }
    for (const id of ['payloads-ncmd-seq', 'payloads-dcmd-seq']) {
      it(`tck-id-${id}: commands have no seq`, () => {
        for (const m of [ncmd, dcmd]) assert.equal(m.decoded!.seq, undefined);
      });
    }
    for (const id of ['topics-ncmd-payload', 'topics-dcmd-payload']) {
      it(`tck-id-${id}: commands carry the metrics to write`, () => {
        assert.equal(dcmd.decoded!.metrics.length, 2);
        assert.equal(ncmd.decoded!.metrics.length, 1);
      });
    }
    for (const id of ['operational-behavior-data-commands-ncmd-rebirth-name', 'operational-behavior-data-commands-ncmd-rebirth-value']) {
      it(`tck-id-${id}: Rebirth by name, Boolean true`, () => {
        const metric = ncmd.decoded!.metrics[0];
        assert.deepEqual([metric.name, metric.alias, metric.boolean_value], ['Node Control/Rebirth', undefined, true]);
      });
    }
    it('tck-id-payloads-name-cmd-requirement: command metrics carry timestamps', () => {
      for (const metric of dcmd.decoded!.metrics) assert.ok(metric.timestamp !== undefined);
    });
  });

  describe('sequence, deaths and bad input from a simulated edge node (§2)', () => {
    const node = 'sim-1';
    const T = (): number => Date.now();
    const send = (type: string, seq: number | undefined, metrics: Metric[], device?: string): Promise<void> =>
      observer.command(device ? `spBv1.0/${GROUP}/${type}/${node}/${device}` : `spBv1.0/${GROUP}/${type}/${node}`,
        encodePayload({ timestamp: T(), metrics, ...(seq === undefined ? {} : { seq }) }, { omitDatatypes: type.endsWith('DATA') }));
    /** NBIRTH and DBIRTH, and wait until the host has taken them. */
    const birth = async (bdSeq: number): Promise<void> => {
      const from = hut.changes.length;
      await send('NBIRTH', 0, [{ name: 'bdSeq', datatype: DataType.Int64, value: bdSeq, timestamp: T() }, { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false, timestamp: T() }]);
      await send('DBIRTH', 1, [{ name: 'Level', alias: 10, datatype: DataType.Int16, value: 1, timestamp: T() }], 'tank');
      await waitFor('the host took the births', () => hut.changes.slice(from).some((c) => c.deviceId === 'tank' && c.online));
    };
    const level = (seq: number, value: number): Promise<void> => send('DDATA', seq, [{ alias: 10, datatype: DataType.Int16, value, timestamp: T() }], 'tank');
    const levels = (from: number): number[] => hut.batches.slice(from).filter((b) => b.topic.endsWith('/sim-1/tank')).map((b) => b.payload.Level as number);

    it('tck-id-operational-behavior-host-reordering-start and tck-id-operational-behavior-host-reordering-success: seq 2, 4, 3 within the timeout → held, then 3 and 4 in order, no rebirth', async () => {
      await birth(0);
      const from = hut.batches.length;
      const mark = observer.mark;
      await level(2, 2);
      await level(4, 4);
      await sleep(50);
      assert.deepEqual(levels(from), [2], '4 is held while 3 is missing');
      await level(3, 3);
      await waitFor('3 and 4', () => levels(from).length === 3);
      assert.deepEqual(levels(from), [2, 3, 4]);
      await sleep(REORDER_MS + 100);
      assert.deepEqual(ncmds(node, mark), []);
    });

    it('tck-id-operational-behavior-host-reordering-param and tck-id-operational-behavior-host-reordering-rebirth: seq 5, 7 and 6 never comes → Rebirth NCMD only after the reorder timeout', async () => {
      const mark = observer.mark;
      await level(5, 5);
      const gapAt = Date.now();
      await level(7, 7);
      await observer.waitFor('NCMD rebirth', (m) => m.topic === `spBv1.0/${GROUP}/NCMD/${node}`, mark, 5000);
      const elapsed = ncmds(node, mark)[0].receivedAt - gapAt;
      assert.ok(elapsed >= REORDER_MS - 20, `rebirth after ${elapsed} ms, timeout ${REORDER_MS} ms`);
      assert.equal(oracleDecode(ncmds(node, mark)[0].bytes).metrics[0].name, 'Node Control/Rebirth');
    });

    it('after a rebirth request, DATA is ignored until the NBIRTH; the new births are taken', async () => {
      const from = hut.batches.length;
      await level(8, 8);
      await sleep(100);
      assert.deepEqual(levels(from), []);
      await birth(0);
      await level(2, 9);
      await waitFor('Level 9', () => levels(from).includes(9));
    });

    it('an unknown alias → Rebirth NCMD', async () => {
      await sleep(150); // rebirthIntervalMs
      const mark = observer.mark;
      await send('DDATA', 3, [{ alias: 999, datatype: DataType.Int16, value: 1, timestamp: T() }], 'tank');
      await observer.waitFor('NCMD rebirth', (m) => m.topic === `spBv1.0/${GROUP}/NCMD/${node}`, mark, 5000);
    });

    it('garbage and truncated payloads: a warning and a Rebirth NCMD, no crash', async () => {
      await birth(0);
      await sleep(150);
      const mark = observer.mark;
      await observer.command(`spBv1.0/${GROUP}/DDATA/${node}/tank`, Buffer.from('garbage \u00ff\u00ff'));
      await observer.waitFor('NCMD rebirth', (m) => m.topic === `spBv1.0/${GROUP}/NCMD/${node}`, mark, 5000);
      assert.ok(hut.warnings.some((w) => w.includes('DDATA/sim-1/tank: not a Sparkplug B payload')), hut.warnings.join('\n'));
      await birth(0);
      await sleep(150);
      const mark2 = observer.mark;
      const good = encodePayload({ timestamp: T(), seq: 2, metrics: [{ alias: 10, datatype: DataType.Int16, value: 5, timestamp: T() }] }, { omitDatatypes: true });
      await observer.command(`spBv1.0/${GROUP}/DDATA/${node}/tank`, good.subarray(0, good.length - 4));
      await observer.waitFor('NCMD rebirth', (m) => m.topic === `spBv1.0/${GROUP}/NCMD/${node}`, mark2, 5000);
      assert.equal(hut.host.state, 'online');
    });

    it('tck-id-operational-behavior-edge-node-termination-host-action-ddeath-devices-offline and tck-id-operational-behavior-edge-node-termination-host-action-ddeath-devices-tags-stale: DDEATH → device offline at the DDEATH timestamp', async () => {
      await birth(0);
      const from = hut.changes.length;
      const at = Date.now() - 5000;
      await observer.command(`spBv1.0/${GROUP}/DDEATH/${node}/tank`, encodePayload({ timestamp: at, seq: 2 }));
      await waitFor('offline', () => hut.changes.slice(from).some((c) => c.deviceId === 'tank' && !c.online));
      assert.equal(hut.changes.slice(from).find((c) => c.deviceId === 'tank' && !c.online)!.timestamp, at);
    });

    for (const id of ['operational-behavior-edge-node-termination-host-action-ndeath-node-offline', 'operational-behavior-edge-node-termination-host-action-ndeath-node-tags-stale',
      'operational-behavior-edge-node-termination-host-action-ndeath-devices-offline', 'operational-behavior-edge-node-termination-host-action-ndeath-devices-tags-stale']) {
      it(`tck-id-${id}: an NDEATH with another bdSeq is ignored; with the NBIRTH's bdSeq the node and its devices go offline at receipt time`, async () => {
        await birth(7);
        const from = hut.changes.length;
        await observer.command(`spBv1.0/${GROUP}/NDEATH/${node}`, encodePayload({ timestamp: T(), metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 6 }] }));
        await sleep(100);
        assert.deepEqual(hut.changes.slice(from).filter((c) => !c.online), []);
        const before = Date.now();
        await observer.command(`spBv1.0/${GROUP}/NDEATH/${node}`, encodePayload({ timestamp: T() - 60000, metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 7 }] }));
        await waitFor('node offline', () => hut.changes.slice(from).some((c) => c.deviceId === undefined && !c.online));
        const offline = hut.changes.slice(from).filter((c) => !c.online);
        assert.deepEqual(offline.map((c) => c.deviceId), ['tank', undefined]);
        assert.ok(offline.every((c) => c.timestamp >= before), 'receipt time, not the NDEATH timestamp');
      });
    }
  });

  describe('termination (§2)', () => {
    let mark: number;
    let tapMark: number;

    before(async () => {
      mark = observer.mark;
      tapMark = tap.packets.length;
      await hut.host.close();
      await observer.waitFor('STATE offline', (m) => m.topic === `spBv1.0/STATE/${HOST}` && JSON.parse(m.bytes.toString()).online === false, mark);
    });

    for (const id of ['operational-behavior-host-application-termination', 'host-topic-phid-death-payload-timestamp-disconnect-clean', 'operational-behavior-host-application-disconnect-intentional']) {
      it(`tck-id-${id}: STATE offline (QoS 1, retained, timestamp now ≥ the Will's) before the DISCONNECT`, () => {
        const offline = statesOf(mark).find((s) => !s.online)!;
        assert.deepEqual([offline.qos, offline.retain], [1, true]);
        assert.ok(offline.timestamp >= (willState().timestamp as number));
        const published = tap.packets.findIndex((p, i) => i >= tapMark && p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic === `spBv1.0/STATE/${HOST}`);
        const disconnect = tap.packets.findIndex((p, i) => i >= tapMark && p.packet.cmd === 'disconnect');
        assert.ok(published >= 0 && disconnect > published);
      });
    }
  });
});

describe('sparkplug host application: MQTT 3.1.1 and a killed connection (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let hut: HostUnderTest;

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    hut = startHost(tap.port, 4, 'scada-2');
    await waitFor('host online', () => hut.host.state === 'online');
  });

  after(async () => {
    await hut?.host.close();
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
  });

  it('tck-id-message-flow-phid-sparkplug-clean-session-311: Clean Session = 1', () => {
    const connect = tap.packets.find((p) => p.packet.cmd === 'connect')!.packet as IConnectPacket;
    assert.deepEqual([connect.protocolVersion, connect.clean], [4, true]);
  });

  it('tck-id-host-topic-phid-death-payload-timestamp-disconnect-with-no-disconnect-packet: KILL → the broker publishes the retained offline STATE with the CONNECT\'s timestamp', async () => {
    const connect = tap.packets.find((p) => p.packet.cmd === 'connect')!.packet as IConnectPacket;
    const willTimestamp = JSON.parse(connect.will!.payload.toString()).timestamp;
    tap.blocked = true;
    const mark = observer.mark;
    tap.killConnections();
    const death = await observer.waitFor('offline STATE', (m) => m.topic === 'spBv1.0/STATE/scada-2' && JSON.parse(m.bytes.toString()).online === false, mark);
    assert.equal(JSON.parse(death.bytes.toString()).timestamp, willTimestamp);
    const fresh = await SparkplugObserver.connect(broker.url);
    await fresh.waitFor('retained STATE', (m) => m.topic === 'spBv1.0/STATE/scada-2');
    const retained = fresh.log.find((m) => m.topic === 'spBv1.0/STATE/scada-2')!;
    await fresh.close();
    assert.equal(retained.retain, true);
    assert.equal(JSON.parse(retained.bytes.toString()).online, false);
    tap.blocked = false;
    await waitFor('host online again', () => hut.host.state === 'online', 10000);
  });
});
