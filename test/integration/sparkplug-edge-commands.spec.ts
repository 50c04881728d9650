/**
 * Sparkplug B 3.0 edge conformance on a real Mosquitto, part 2: commands (reference/sparkplug.md
 * §1.8) and bad input. The test acts as host application: it publishes NCMD/DCMD and checks, from
 * the broker's side (TAP and observer), what the edge node does; and what a flow behind the device
 * gets on its output (the write command).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPublishPacket } from 'mqtt-packet';
import { DataType } from '../../lib/sparkplug/datatypes';
import type { SparkplugDevice } from '../../lib/sparkplug/device';
import { encodePayload, type Metric } from '../../lib/sparkplug/payload';
import { TagBatchError } from '../../lib/uns/validate';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { SparkplugObserver, assertSeqContinuity, bdSeqOf, sleep, startEdge, waitFor, type EdgeUnderTest } from '../helpers/sparkplug-harness';
import { MqttTap } from '../helpers/sparkplug-tap';

const GROUP = 'Plant 1';
const A1 = 'acme/plant1/press/line2/cell1/drive1';
const NCMD = `spBv1.0/${GROUP}/NCMD/gw-1`;
const DCMD = `spBv1.0/${GROUP}/DCMD/gw-1/drive-1`;
/** Batches every FEED_MS while the rebirth request arrives. */
const FEED_MS = 20;
const REBIRTH: Metric = { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true };

/** `bytes` without its last `n` bytes. */
function cut(bytes: Buffer, n: number): Buffer {
  return bytes.subarray(0, bytes.length - n);
}

function command(metrics: Metric[]): Buffer {
  // Host applications send CMD metrics without datatype when they use aliases (the edge must not need it).
  return encodePayload({ timestamp: Date.now(), metrics }, { omitDatatypes: true });
}

describe('sparkplug edge conformance: commands and bad input (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let tap: MqttTap;
  let observer: SparkplugObserver;
  let dir: string;
  let dut: EdgeUnderTest;
  let drive1: SparkplugDevice;
  /** name → alias from drive-1's DBIRTH. */
  let alias: Record<string, number>;
  let rejectedAlias: string;

  const batch = (payload: Record<string, unknown>): void => drive1.handleBatch({
    topic: A1, payload,
    meta: { Setpoint: { type: 'Float' }, Level: { type: 'Int16' }, Counter: { type: 'Int64' } },
  });
  const feed = (setpoint = 10): void => batch({ Setpoint: setpoint, Mode: 'auto', 'Motor/Temp': 41.5, Counter: 9007199254740993n, Enable: true, Level: -5 });

  /** The node's "Rejected Commands" as last reported (NBIRTH or NDATA). */
  const rejectedCommands = (): number => {
    let value = 0;
    for (const m of observer.of('gw-1', ['NBIRTH', 'NDATA'])) {
      for (const metric of m.decoded!.metrics) if (metric.alias === rejectedAlias) value = Number(metric.long_value);
    }
    return value;
  };

  before(async () => {
    broker = await startMosquitto();
    tap = await MqttTap.start(broker.port);
    observer = await SparkplugObserver.connect(broker.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-commands-'));
    dut = startEdge(tap.port, { bdSeqFile: join(dir, 'bdseq.json'), warningIntervalMs: 0 });
    drive1 = dut.addDevice({ deviceId: 'drive-1', assetPath: A1 });
    dut.addDevice({ deviceId: 'drive-2' }).handleBatch({ topic: 'acme/plant1/press/line2/cell1/drive2', payload: { Level: 1 } });
    feed();
    dut.edge.start();
    const dbirth = await observer.waitFor('DBIRTH drive-1', (m) => m.topic.endsWith('/DBIRTH/gw-1/drive-1'));
    alias = Object.fromEntries(dbirth.decoded!.metrics.map((m) => [m.name, Number(m.alias)]));
    rejectedAlias = observer.of('gw-1', ['NBIRTH'])[0].decoded!.metrics.find((m) => m.name === 'Node Info/Rejected Commands')!.alias!;
    await observer.waitFor('DBIRTH drive-2', (m) => m.topic.endsWith('/DBIRTH/gw-1/drive-2'));
  });

  after(async () => {
    await dut?.close();
    await observer?.close();
    await tap?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('Rebirth (§1.8)', () => {
    let ncmdAt: number;
    let mark: number;
    let bdSeqBefore: string | undefined;
    let connectsBefore: number;

    before(async () => {
      bdSeqBefore = bdSeqOf(observer.of('gw-1', ['NBIRTH']).at(-1)!.decoded);
      connectsBefore = tap.connects.length;
      // Data keeps flowing while the rebirth request arrives.
      let n = 0;
      const feeder = setInterval(() => feed(20 + (n++ % 50)), FEED_MS);
      await sleep(100);
      mark = observer.mark;
      ncmdAt = tap.packets.length;
      await observer.command(NCMD, command([REBIRTH]));
      await observer.waitFor('new DBIRTH of drive-2', (m) => m.type === 'DBIRTH' && m.topic.endsWith('drive-2'), mark);
      await sleep(100);
      clearInterval(feeder);
    });

    // The TAP sees the NCMD on its way to the edge node; a DDATA the node wrote just before it read
    // the NCMD can still be on its way the other way. With data every FEED_MS, at most that one
    // DDATA may come between; a node that went on publishing data before its births would show more.
    it('tck-id-operational-behavior-data-commands-rebirth-action-1: no NDATA/DDATA between the NCMD and the new NBIRTH (but one already in flight)', () => {
      const received = tap.packets.findIndex((p, i) => i >= ncmdAt && p.direction === 'broker→edge' && p.packet.cmd === 'publish' && (p.packet as IPublishPacket).topic === NCMD);
      assert.ok(received >= 0, 'the NCMD never reached the edge node');
      const after = tap.packets.slice(received + 1).filter((p) => p.direction === 'edge→broker' && p.packet.cmd === 'publish').map((p) => (p.packet as IPublishPacket).topic);
      const nbirth = after.findIndex((topic) => /\/NBIRTH\/gw-1$/.test(topic));
      assert.ok(nbirth >= 0 && nbirth <= 1, `publishes between the NCMD and the NBIRTH: ${after.slice(0, nbirth).join(', ')}`);
      assert.ok(after.slice(0, nbirth).every((topic) => topic.includes('/DDATA/')));
      assert.ok(observer.of('gw-1', ['DDATA'], mark).length > 0, 'data was flowing before the request');
    });

    it('tck-id-operational-behavior-data-commands-rebirth-action-2: NBIRTH (seq 0) and a DBIRTH for every online device', () => {
      const births = observer.of('gw-1', ['NBIRTH', 'DBIRTH'], mark);
      assert.deepEqual(births.map((m) => m.topic.split('/').slice(2).join('/')), ['NBIRTH/gw-1', 'DBIRTH/gw-1/drive-1', 'DBIRTH/gw-1/drive-2']);
      assert.equal(births[0].decoded!.seq, '0');
      const i = observer.log.indexOf(births[0]);
      assert.deepEqual(observer.log.slice(i, i + 3).map((m) => m.type), ['NBIRTH', 'DBIRTH', 'DBIRTH'], 'the births are back to back');
      assertSeqContinuity(observer.of('gw-1'));
    });

    it('tck-id-operational-behavior-data-commands-rebirth-action-3: same bdSeq, no new CONNECT, no NDEATH', () => {
      assert.equal(bdSeqOf(observer.of('gw-1', ['NBIRTH'], mark)[0].decoded), bdSeqBefore);
      assert.equal(tap.connects.length, connectsBefore);
      assert.deepEqual(observer.of('gw-1', ['NDEATH'], mark), []);
    });
  });

  describe('writes (§1.8)', () => {
    it('tck-id-operational-behavior-data-commands-dcmd-metric-name: a DCMD metric by its DBIRTH alias becomes a write of that metric', async () => {
      const writes = dut.writes.length;
      await observer.command(DCMD, command([{ alias: alias.Setpoint, datatype: DataType.Float, value: 42.5 }]));
      await waitFor('a write command', () => dut.writes.length === writes + 1);
      assert.deepEqual(dut.writes.at(-1)!.topic, A1);
      assert.deepEqual(dut.writes.at(-1)!.payload, { Setpoint: 42.5 });
    });

    it('tck-id-operational-behavior-data-commands-dcmd-metric-value: the new value read back by the source goes out in DDATA', async () => {
      const mark = observer.mark;
      feed(42.5); // the sink wrote it; the source reads it back
      const data = await observer.waitFor('DDATA with 42.5', (m) => m.type === 'DDATA' && m.decoded!.metrics.some((x) => Number(x.alias) === alias.Setpoint && x.float_value === 42.5), mark);
      assert.equal(data.decoded!.metrics.find((x) => Number(x.alias) === alias.Setpoint)!.float_value, 42.5);
    });

    it('tck-id-payloads-alias-data-cmd-requirement: alias-only metrics of every scalar type are read with the DBIRTH datatype (Int16 −5, Int64 beyond 2^53, names with "/")', async () => {
      const writes = dut.writes.length;
      await observer.command(DCMD, command([
        { alias: alias.Level, datatype: DataType.Int16, value: -7 },
        { alias: alias.Counter, datatype: DataType.Int64, value: -9007199254740993n },
        { alias: alias['Motor/Temp'], datatype: DataType.Double, value: 50.25 },
        { alias: alias.Enable, datatype: DataType.Boolean, value: false },
        { alias: alias.Mode, datatype: DataType.String, value: 'manual' },
      ]));
      await waitFor('a write command', () => dut.writes.length === writes + 1);
      assert.deepEqual(dut.writes.at(-1)!.payload, { Level: -7, Counter: -9007199254740993n, 'Motor/Temp': 50.25, Enable: false, Mode: 'manual' });
    });

    it('tck-id-payloads-name-cmd-requirement: CMD metrics may carry timestamps (accepted like without)', async () => {
      const writes = dut.writes.length;
      await observer.command(DCMD, command([{ alias: alias.Setpoint, timestamp: Date.now(), datatype: DataType.Float, value: 11 }]));
      await waitFor('a write command', () => dut.writes.length === writes + 1);
      assert.deepEqual(dut.writes.at(-1)!.payload, { Setpoint: 11 });
    });

    it('a DCMD metric by name (with "/") is accepted too', async () => {
      const writes = dut.writes.length;
      await observer.command(DCMD, command([{ name: 'Motor/Temp', datatype: DataType.Double, value: 1.5 }]));
      await waitFor('a write command', () => dut.writes.length === writes + 1);
      assert.deepEqual(dut.writes.at(-1)!.payload, { 'Motor/Temp': 1.5 });
    });

    it('tck-id-operational-behavior-data-commands-ncmd-metric-name: an NCMD for a metric the node does not have is refused with a warning; the node stays online', async () => {
      const warnings = dut.warnings.length;
      await observer.command(NCMD, command([{ name: 'Node Control/Reboot', datatype: DataType.Boolean, value: true }]));
      await waitFor('a warning', () => dut.warnings.length > warnings);
      assert.match(dut.warnings.at(-1)!, /NCMD for Plant 1\/gw-1 from sparkplug:uns-edge-conformance-gw-1 \(no primary host\): metric "Node Control\/Reboot" cannot be written/);
      assert.equal(dut.edge.state, 'online');
    });

    it('tck-id-operational-behavior-data-commands-ncmd-metric-value: a Rebirth with a value that is not a Boolean is refused, no rebirth', async () => {
      const mark = observer.mark;
      const warnings = dut.warnings.length;
      await observer.command(NCMD, command([{ name: 'Node Control/Rebirth', datatype: DataType.String, value: 'yes' }]));
      await waitFor('a warning', () => dut.warnings.length > warnings);
      assert.match(dut.warnings.at(-1)!, /"Node Control\/Rebirth" a Boolean value cannot be read from string_value/);
      await sleep(100);
      assert.deepEqual(observer.of('gw-1', ['NBIRTH'], mark), []);
    });
  });

  describe('bad input: nothing crashes, each is refused with a clear warning and counted, the node goes on', () => {
    const cases: [string, string, Buffer, RegExp][] = [
      ['garbage on DCMD', DCMD, Buffer.from('not protobuf at all \u0000\u00ff'), /DCMD for device "drive-1" from sparkplug:uns-edge-conformance-gw-1 \(no primary host\) ignored: not a Sparkplug B payload \(.*at byte \d+\)/],
      ['a truncated DCMD (cut inside its metric)', DCMD, cut(command([{ alias: 1, datatype: DataType.Double, value: 1 }]), 3), /DCMD for device "drive-1" from sparkplug:uns-edge-conformance-gw-1 \(no primary host\) ignored: not a Sparkplug B payload/],
      ['garbage on NCMD', NCMD, Buffer.from([0xff, 0xff, 0xff]), /NCMD for Plant 1\/gw-1 from sparkplug:uns-edge-conformance-gw-1 \(no primary host\) ignored: not a Sparkplug B payload/],
      ['a truncated NCMD (a Rebirth cut short)', NCMD, cut(command([REBIRTH]), 5), /NCMD for Plant 1\/gw-1 from sparkplug:uns-edge-conformance-gw-1 \(no primary host\) ignored: not a Sparkplug B payload/],
      ['an unknown alias', DCMD, command([{ alias: 99999, datatype: DataType.Float, value: 1 }]), /DCMD for device "drive-1" from sparkplug:uns-edge-conformance-gw-1 \(no primary host\) refused: unknown metric alias 99999/],
      ['an unknown metric name', DCMD, command([{ name: 'NoSuchMetric', datatype: DataType.Float, value: 1 }]), /refused: unknown metric "NoSuchMetric"/],
      ['a wrong datatype declared', DCMD, encodePayload({ metrics: [{ alias: 0, datatype: DataType.String, value: 'x' }] }), /refused: .*is Float, the command says String|unknown metric alias 0/],
      ['a value in the wrong field (string for a Float)', DCMD, encodePayload({ metrics: [{ name: 'Setpoint', datatype: DataType.String, value: 'x' }] }, { omitDatatypes: true }), /metric "Setpoint" \(Float\): a Float value cannot be read from string_value/],
      ['an Int16 out of range (70000)', DCMD, encodePayload({ metrics: [{ name: 'Level', datatype: DataType.UInt32, value: 70000 }] }, { omitDatatypes: true }), /metric "Level" \(Int16\): 70000 is out of range for Int16/],
      ['a DCMD for a device the node does not have', `spBv1.0/${GROUP}/DCMD/gw-1/ghost`, command([{ alias: 1, datatype: DataType.Float, value: 1 }]), /DCMD on spBv1.0\/Plant 1\/DCMD\/gw-1\/ghost from sparkplug:uns-edge-conformance-gw-1 \(no primary host\) ignored: edge node Plant 1\/gw-1 has no such device/],
    ];

    for (const [label, topic, payload, warning] of cases) {
      it(`${label}`, async () => {
        const warnings = dut.warnings.length;
        const writes = dut.writes.length;
        await waitFor('the reported Rejected Commands to catch up', () => rejectedCommands() === dut.edge.counts.rejectedCommands);
        const rejected = rejectedCommands();
        await observer.command(topic, payload);
        await waitFor('a warning', () => dut.warnings.length > warnings);
        assert.match(dut.warnings.at(-1)!, warning);
        await waitFor('Rejected Commands + 1 in NDATA', () => rejectedCommands() === rejected + 1);
        assert.equal(dut.writes.length, writes, 'nothing was written');
        assert.equal(dut.edge.state, 'online');
      });
    }

    it('a DCMD with one good and one bad metric is refused whole: nothing is written', async () => {
      const warnings = dut.warnings.length;
      const writes = dut.writes.length;
      await observer.command(DCMD, command([{ alias: alias.Setpoint, datatype: DataType.Float, value: 3 }, { alias: 424242, datatype: DataType.Float, value: 4 }]));
      await waitFor('a warning', () => dut.warnings.length > warnings);
      await sleep(50);
      assert.equal(dut.writes.length, writes);
    });

    it('after all that, a Rebirth and a good DCMD still work', async () => {
      const mark = observer.mark;
      await observer.command(NCMD, command([REBIRTH]));
      await observer.waitFor('NBIRTH', (m) => m.type === 'NBIRTH', mark);
      const writes = dut.writes.length;
      await observer.command(DCMD, command([{ alias: alias.Setpoint, datatype: DataType.Float, value: 7 }]));
      await waitFor('a write command', () => dut.writes.length === writes + 1);
      assertSeqContinuity(observer.of('gw-1'));
    });

    it('a tag batch with a value that does not fit its type (text for a Float) is refused whole, nothing is published', async () => {
      const mark = observer.mark;
      assert.throws(() => batch({ Setpoint: 'fast', Mode: 5, Enable: true }), (error: Error) => error instanceof TagBatchError &&
        /metric "Setpoint" \(Float\): "fast" is not a number/.test(error.message) &&
        /metric "Mode" \(String, as in its DBIRTH\): 5 is not a string/.test(error.message));
      await sleep(100);
      assert.deepEqual(observer.of('gw-1', ['DDATA'], mark), []);
    });
  });
});
