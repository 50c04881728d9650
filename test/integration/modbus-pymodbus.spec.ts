/**
 * uns-edge's Modbus client, read plan and poller against an independent server: pymodbus 3.0.0rc1
 * (Debian python3-pymodbus) in its own process on a free port. Covers typed values, exception
 * codes, writes through the writer, a silent device (timeout, then recovery), a dead unit beside live ones (per-unit breaker),
 * a dropped connection (reconnect without redeploy), and the uns-modbus-read node on the same peer.
 */
import { strict as assert } from 'node:assert';
import { createModbusTcpClient, ModbusClient, ModbusTcpClientOptions } from '../../lib/modbus/client';
import { ModbusException } from '../../lib/modbus/data-model';
import { encodeRegisters } from '../../lib/modbus/datatypes';
import { registerAt, type ModbusResponse } from '../../lib/modbus/pdu';
import { ModbusPoller } from '../../lib/modbus/poller';
import { buildReadPlan, MetricDefinition } from '../../lib/modbus/read-plan';
import { startModbusTcpServer } from '../../lib/modbus/server';
import { buildWritePlan, WriteMetricDefinition } from '../../lib/modbus/write-plan';
import { ModbusWriter } from '../../lib/modbus/writer';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { PymodbusServer, startPymodbusServer } from '../helpers/pymodbus';
import modbusNodes = require('../../nodes/modbus/modbus');
import { helper } from '../helpers/node-red-runtime';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TYPED: MetricDefinition[] = [
  { name: 'speed', table: 'holding', address: 0, type: 'float32', wordOrder: 'CDAB', unit: 'rpm' },
  { name: 'torque', table: 'holding', address: 2, type: 'int32', scale: 0.01, unit: 'N.m' },
  { name: 'hours', table: 'holding', address: 4, type: 'uint64', unit: 'h' },
  { name: 'serial', table: 'holding', address: 8, type: 'string', length: 4 },
  { name: 'energy', table: 'input', address: 0, type: 'float64', wordOrder: 'DCBA', unit: 'kWh' },
  { name: 'level', table: 'input', address: 4, type: 'uint16', scale: 0.001, signal: '4-20mA', euMin: 0, euMax: 5, unit: 'm' },
  { name: 'faultBit', table: 'input', address: 5, type: 'bit', bit: 2 },
  { name: 'running', table: 'coil', address: 3, type: 'bit' },
  { name: 'doorOpen', table: 'discrete', address: 7, type: 'bit' },
];

describe('modbus against a pymodbus server', function () {
  this.timeout(30_000);
  let py: PymodbusServer;
  const clients: ModbusClient[] = [];
  const pollers: ModbusPoller[] = [];
  const client = (opts: Partial<ModbusTcpClientOptions> = {}) => {
    const c = createModbusTcpClient({ host: '127.0.0.1', port: py.port, timeoutMs: 200, reconnectMinMs: 50, reconnectMaxMs: 400, ...opts });
    clients.push(c);
    return c;
  };
  const poller = (c: ModbusClient, unitId: number, defs: MetricDefinition[], intervalMs: number) => {
    const p = new ModbusPoller({ client: c, unitId, plan: buildReadPlan(defs), topic: `acme/site/area/line/cell/unit${unitId}`, intervalMs });
    pollers.push(p);
    return p;
  };
  const nextBatch = (p: ModbusPoller, pred: (b: TagBatch) => boolean = () => true, ms = 5000): Promise<TagBatch> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching batch')), ms);
      const on = (b: TagBatch) => {
        if (!pred(b)) return;
        clearTimeout(timer);
        p.off('batch', on);
        resolve(b);
      };
      p.on('batch', on);
    });

  beforeEach(async () => {
    py = await startPymodbusServer({ units: [1, 2, 3], size: 200 });
  });
  afterEach(async () => {
    for (const p of pollers.splice(0)) p.stop();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await py.close();
  });

  it('reads typed values in every word order, scaled, as one tag batch', async () => {
    await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [
      ...encodeRegisters(1480.25, 'float32', 'CDAB'), ...encodeRegisters(-123456, 'int32'), ...encodeRegisters(2n ** 60n + 3n, 'uint64'),
      ...encodeRegisters('VFD-0042', 'string', 'ABCD', 4),
    ] });
    await py.command({ cmd: 'set', unit: 1, table: 'input', address: 0, values: [
      ...encodeRegisters(123456.789, 'float64', 'DCBA'), 12000, 0b100,
    ] });
    await py.command({ cmd: 'set', unit: 1, table: 'coil', address: 3, values: [1] });
    await py.command({ cmd: 'set', unit: 1, table: 'discrete', address: 7, values: [1] });
    const p = poller(client(), 1, TYPED, 0);
    const next = nextBatch(p);
    p.pollNow();
    const batch = await next;
    assert.deepEqual(batch.payload, {
      speed: 1480.25, torque: -1234.56, hours: 2n ** 60n + 3n, serial: 'VFD-0042', energy: 123456.789, level: 2.5,
      faultBit: true, running: true, doorOpen: true,
    });
    for (const name of Object.keys(batch.payload)) assert.equal(batch.meta?.[name].quality, 'good', name);
    assert.equal(batch.meta?.hours.type, 'UInt64');
    assert.equal(batch.meta?.torque.type, 'Double');
  });

  it('writes with FC 5, 6, 15, 16 and pymodbus stores them', async () => {
    const c = client();
    await c.request(2, { fc: 5, address: 1, value: true });
    await c.request(2, { fc: 6, address: 10, value: 0xbeef });
    await c.request(2, { fc: 15, address: 20, values: [1, 0, 1, 1] });
    await c.request(2, { fc: 16, address: 30, values: encodeRegisters(-2.5, 'float32') });
    assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'coil', address: 1, count: 1 })).values, [1]);
    assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'holding', address: 10, count: 1 })).values, [0xbeef]);
    assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'coil', address: 20, count: 4 })).values, [1, 0, 1, 1]);
    assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'holding', address: 30, count: 2 })).values, encodeRegisters(-2.5, 'float32'));
  });

  it('the writer (uns-modbus-write) drives pymodbus: typed, scaled command in order, old values, exception 2 stops it', async () => {
    await py.command({ cmd: 'set', unit: 3, table: 'holding', address: 50, values: [123] });
    const defs: WriteMetricDefinition[] = [
      { name: 'setpoint', table: 'holding', address: 50, type: 'int16', scale: 0.01, min: -300, max: 300 },
      { name: 'limit', table: 'holding', address: 51, type: 'float32', wordOrder: 'CDAB' },
      { name: 'tag', table: 'holding', address: 53, type: 'string', length: 3 },
      { name: 'enable', table: 'coil', address: 9, type: 'bit' },
      { name: 'beyond', table: 'holding', address: 199, type: 'uint32' }, // registers 199..200: past the 200-register map
      { name: 'after', table: 'coil', address: 10, type: 'bit' },
    ];
    const writer = new ModbusWriter({ client: client(), unitId: 3, plan: buildWritePlan(defs, { multipleOnly: true }), readBefore: true });
    const ok = await writer.write({ setpoint: -2.59, limit: 1.75, tag: 'P-7', enable: true });
    assert.equal(ok.ok, true, JSON.stringify(ok.results));
    assert.equal(ok.results.setpoint.old, 1.23);
    assert.deepEqual((await py.command({ cmd: 'get', unit: 3, table: 'holding', address: 50, count: 6 })).values, [
      0x10000 - 259, ...encodeRegisters(1.75, 'float32', 'CDAB'), ...encodeRegisters('P-7', 'string', 'ABCD', 3),
    ]);
    assert.deepEqual((await py.command({ cmd: 'get', unit: 3, table: 'coil', address: 9, count: 1 })).values, [1]);
    const failed = await writer.write({ beyond: 1, after: true });
    assert.equal(failed.results.beyond.status, 'exception');
    assert.equal(failed.results.beyond.exceptionCode, 2);
    assert.equal(failed.results.after.status, 'not-sent');
    assert.deepEqual((await py.command({ cmd: 'get', unit: 3, table: 'coil', address: 10, count: 1 })).values, [0]);
    writer.close();
  });

  it('pymodbus exceptions 2 (address) and 4 (device failure) give bad quality with the reason, never 0', async () => {
    const c = client();
    const defs: MetricDefinition[] = [
      { name: 'beyond', table: 'holding', address: 199, type: 'uint32' },
      { name: 'fine', table: 'input', address: 0, type: 'uint16' },
    ];
    const p = poller(c, 1, defs, 0);
    let next = nextBatch(p);
    p.pollNow();
    let batch = await next;
    assert.equal(batch.payload.beyond, null);
    assert.equal(batch.meta?.beyond.quality, 'bad');
    assert.equal(batch.meta?.beyond.reason, 'Modbus exception 2 (illegal data address)');
    assert.equal(batch.payload.fine, 0);
    assert.equal(batch.meta?.fine.quality, 'good', 'only the failed request is bad');

    await py.command({ cmd: 'fail', unit: 1, on: true });
    next = nextBatch(p);
    p.pollNow();
    batch = await next;
    assert.equal(batch.payload.fine, null);
    assert.equal(batch.meta?.fine.reason, 'Modbus exception 4 (server device failure)');
    const error = await c.request(1, { fc: 3, address: 0, quantity: 1 }).catch((e: Error) => e);
    assert.ok(error instanceof ModbusException && error.code === 4);
  });

  it('a response that arrived while the event loop was blocked past the timeout is read, not timed out', async () => {
    const c = client({ timeoutMs: 50 });
    await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [4242] });
    const firstRegister = (response: ModbusResponse): number => registerAt((response as { data: Buffer }).data, 0);
    assert.equal(firstRegister(await c.request(1, { fc: 3, address: 0, quantity: 1 })), 4242, 'connected and answering');
    for (let round = 0; round < 5; round++) {
      const answer = c.request(1, { fc: 3, address: 0, quantity: 1 });
      // The main thread is busy for 3× the timeout while pymodbus (another process) answers.
      const busyUntil = Date.now() + 150;
      while (Date.now() < busyUntil) { /* blocked event loop */ }
      assert.equal(firstRegister(await answer), 4242, `round ${round}`);
    }
    assert.equal(c.stats.timeouts, 0);
  });

  it('exceptions 1 and 3 (from a data model that throws them) map to bad quality with their names', async () => {
    const codes = new Map<number, number>([[10, 1], [20, 3]]);
    const ours = await startModbusTcpServer({
      port: 0,
      model: {
        answers: () => true,
        read: (_u, _t, address) => {
          throw new ModbusException(codes.get(address) ?? 4);
        },
        write: () => undefined,
      },
    });
    try {
      const c = client({ port: ours.port });
      const p = poller(c, 1, [
        { name: 'a', table: 'holding', address: 10, type: 'uint16' },
        { name: 'b', table: 'holding', address: 20, type: 'uint16' },
      ], 0);
      const next = nextBatch(p);
      p.pollNow();
      const batch = await next;
      assert.deepEqual(batch.payload, { a: null, b: null });
      assert.equal(batch.meta?.a.reason, 'Modbus exception 1 (illegal function)');
      assert.equal(batch.meta?.b.reason, 'Modbus exception 3 (illegal data value)');
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await ours.close();
    }
  });

  it('a device that accepts TCP but never answers: timeouts give bad quality, the only unit is never suspended, then it recovers', async () => {
    const c = client({ unitFailureThreshold: 2, unitBackoffMs: 300, silentLinkTimeouts: 100 });
    const p = poller(c, 3, [{ name: 'v', table: 'holding', address: 0, type: 'uint16' }], 100);
    await py.command({ cmd: 'set', unit: 3, table: 'holding', address: 0, values: [7] });
    p.start();
    await nextBatch(p, (b) => b.payload.v === 7);
    await py.command({ cmd: 'remove_unit', unit: 3 });
    const bad = await nextBatch(p, (b) => b.meta?.v.quality === 'bad');
    assert.equal(bad.payload.v, null);
    assert.match(bad.meta?.v.reason ?? '', /no response from unit 3 within 200 ms/);
    await nextBatch(p, (b) => b.meta?.v.quality === 'bad');
    await nextBatch(p, (b) => b.meta?.v.quality === 'bad');
    assert.equal(c.stats.rejectedSuspended, 0, 'a link with one unit: suspending it protects nobody (issue 8)');
    await py.command({ cmd: 'add_unit', unit: 3 });
    const t0 = Date.now();
    const good = await nextBatch(p, (b) => b.meta?.v.quality === 'good');
    assert.equal(good.payload.v, 7);
    assert.ok(Date.now() - t0 < 1000, 'recovered at the next poll');
    assert.equal(c.stats.connects, 1, 'a unit timeout does not cost the connection');
  });

  it('a unit that dies does not stall the others: unit 1 keeps its poll rate', async () => {
    const rateOfUnit1 = async (threshold: number) => {
      const c = client({ timeoutMs: 400, unitFailureThreshold: threshold, unitBackoffMs: 3000, silentLinkTimeouts: 1000 });
      const one = poller(c, 1, [{ name: 'v', table: 'holding', address: 0, type: 'uint16' }], 100);
      const two = poller(c, 2, [{ name: 'v', table: 'holding', address: 0, type: 'uint16' }], 100);
      one.start();
      two.start();
      await nextBatch(two);
      await py.command({ cmd: 'remove_unit', unit: 2 });
      await sleep(1500); // the breaker opens after `threshold` timeouts of 400 ms
      let count = 0;
      const on = () => count++;
      one.on('batch', on);
      await sleep(1500);
      one.off('batch', on);
      one.stop();
      two.stop();
      await py.command({ cmd: 'add_unit', unit: 2 });
      return count / 1.5;
    };
    const withBreaker = await rateOfUnit1(3);
    const withoutBreaker = await rateOfUnit1(1_000_000);
    assert.ok(withBreaker >= 8, `unit 1 at ${withBreaker.toFixed(1)}/s of 10/s with the breaker`);
    assert.ok(withoutBreaker < withBreaker * 0.7, `without the breaker unit 1 drops to ${withoutBreaker.toFixed(1)}/s (shows the test can fail)`);
  });

  it('reconnects by itself when the device drops the connection, no restart needed', async () => {
    const c = client();
    const outages: string[] = [];
    c.on('outage', (e) => outages.push(e.reason));
    await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [11] });
    const p = poller(c, 1, [{ name: 'v', table: 'holding', address: 0, type: 'uint16' }], 50);
    p.start();
    await nextBatch(p, (b) => b.payload.v === 11);
    for (let i = 0; i < 3; i++) {
      await py.command({ cmd: 'drop' });
      const connects = c.stats.connects;
      const deadline = Date.now() + 3000;
      while (c.stats.connects === connects && Date.now() < deadline) await sleep(10);
      await nextBatch(p, (b) => b.payload.v === 11);
    }
    assert.equal(c.stats.connects, 4);
    assert.equal(outages.length, 3, 'one outage event per drop, not per request');
  });

  describe('uns-modbus-read node with pymodbus', () => {
    beforeEach(() => new Promise<void>((r) => helper.startServer(() => r())));
    afterEach(async () => {
      await helper.unload();
      await new Promise<void>((r) => helper.stopServer(() => r()));
    });

    it('polls typed values and keeps going across a dropped connection', async () => {
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: encodeRegisters(1480.25, 'float32', 'CDAB') });
      await helper.load(modbusNodes, [
        { id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port: py.port, timeout: 300, reconnect: 50 },
        { id: 'read', type: 'uns-modbus-read', link: 'link', unitId: 1, interval: 50, topic: 'acme/site/area/line/cell/drive1',
          metrics: [{ name: 'speed', table: 'holding', address: 0, type: 'float32', wordOrder: 'CDAB', unit: 'rpm' }], wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]);
      const batches: TagBatch[] = [];
      helper.getNode('out').on('input', (msg) => batches.push(msg as TagBatch));
      const waitFor = async (pred: (b: TagBatch) => boolean) => {
        const from = batches.length;
        const deadline = Date.now() + 5000;
        while (!batches.slice(from).some(pred)) {
          if (Date.now() > deadline) throw new Error('no matching batch');
          await sleep(10);
        }
      };
      await waitFor((b) => b.payload.speed === 1480.25);
      assert.equal(batches[0].topic, 'acme/site/area/line/cell/drive1');
      await py.command({ cmd: 'drop' });
      await sleep(100);
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: encodeRegisters(900.5, 'float32', 'CDAB') });
      await waitFor((b) => b.payload.speed === 900.5);
    });
  });
});
