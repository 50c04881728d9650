/**
 * Modbus RTU for real: RtuTransport (serialport) on one end of a socat pseudo-terminal pair, and on
 * the other end either a pymodbus 3.0.0rc1 RTU server (independent implementation) or a scripted
 * faulty device written by the test (garbage, CRC errors, truncated and foreign frames, noise).
 * Also the uns-modbus-link node of type "rtu" with read and write nodes, a dead unit beside a live
 * one on the same bus (breaker), and the serial adapter vanishing and coming back.
 */
import { strict as assert } from 'node:assert';
import type { SerialPort } from 'serialport';
import { createModbusRtuClient, ModbusClient, ModbusClientError, ModbusRtuClientOptions } from '../../lib/modbus/client';
import { ModbusException } from '../../lib/modbus/data-model';
import { encodeRegisters } from '../../lib/modbus/datatypes';
import { valuesOf } from '../../lib/modbus/pdu';
import { ModbusPoller } from '../../lib/modbus/poller';
import { linkSettingsFrom } from '../../lib/modbus/link-config';
import { probeLink } from '../../lib/modbus/probe';
import { buildReadPlan, MetricDefinition } from '../../lib/modbus/read-plan';
import { crc16, RtuTransport } from '../../lib/modbus/rtu';
import { buildWritePlan } from '../../lib/modbus/write-plan';
import { ModbusWriter } from '../../lib/modbus/writer';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { PymodbusRtuServer, startPymodbusRtuServer } from '../helpers/pymodbus';
import { PtyPair } from '../helpers/socat';
import modbusNodes = require('../../nodes/modbus/modbus');
import { helper } from '../helpers/node-red-runtime';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
};
/** An RTU ADU: the bytes given plus their CRC, low byte first. */
const withCrc = (bytes: number[]) => {
  const body = Buffer.from(bytes);
  const crc = crc16(body);
  return Buffer.concat([body, Buffer.from([crc & 0xff, crc >>> 8])]);
};
const outcomeOf = (p: Promise<unknown>) =>
  p.then(() => 'ok', (e: Error) => (e instanceof ModbusClientError ? e.code : e instanceof ModbusException ? `exception ${e.code}` : e.message));

describe('modbus RTU over a socat pty pair', function () {
  this.timeout(30_000);
  let pty: PtyPair;
  const clients: ModbusClient[] = [];
  const client = (opts: Partial<ModbusRtuClientOptions> = {}) => {
    const c = createModbusRtuClient({ path: pty.a, baudRate: 38400, parity: 'none', timeoutMs: 300, reconnectMinMs: 50, reconnectMaxMs: 200, ...opts });
    clients.push(c);
    return c;
  };
  const connected = (c: ModbusClient) => until('connected', () => c.state === 'connected');

  beforeEach(async () => {
    pty = await PtyPair.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await pty.stop();
  });

  describe('against a pymodbus RTU server', () => {
    let py: PymodbusRtuServer;
    const pollers: ModbusPoller[] = [];
    beforeEach(async () => {
      py = await startPymodbusRtuServer({ units: [1, 2], size: 100, path: pty.b });
    });
    afterEach(async () => {
      pollers.splice(0).forEach((p) => p.stop());
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await py.close();
    });
    const poller = (c: ModbusClient, unitId: number, defs: MetricDefinition[], intervalMs: number) => {
      const p = new ModbusPoller({ client: c, unitId, plan: buildReadPlan(defs), topic: `acme/site/area/line/cell/drive${unitId}`, intervalMs });
      pollers.push(p);
      return p;
    };

    it('reads typed values as a tag batch and writes with FC 5, 6, 15, 16', async () => {
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [
        ...encodeRegisters(1480.25, 'float32', 'CDAB'), ...encodeRegisters(-259, 'int16'), ...encodeRegisters('VFD7', 'string', 'ABCD', 2),
      ] });
      await py.command({ cmd: 'set', unit: 1, table: 'coil', address: 4, values: [1] });
      const c = client();
      const p = poller(c, 1, [
        { name: 'speed', table: 'holding', address: 0, type: 'float32', wordOrder: 'CDAB', unit: 'rpm' },
        { name: 'temperature', table: 'holding', address: 2, type: 'int16', scale: 0.1, unit: 'degC' },
        { name: 'serial', table: 'holding', address: 3, type: 'string', length: 2 },
        { name: 'running', table: 'coil', address: 4, type: 'bit' },
      ], 0);
      const batch = await new Promise<TagBatch>((resolve) => {
        p.once('batch', resolve);
        p.pollNow();
      });
      assert.deepEqual(batch.payload, { speed: 1480.25, temperature: -25.9, serial: 'VFD7', running: true });
      await c.request(1, { fc: 5, address: 9, value: true });
      await c.request(1, { fc: 6, address: 20, value: 0xbeef });
      await c.request(1, { fc: 15, address: 30, values: [1, 0, 1] });
      await c.request(1, { fc: 16, address: 40, values: [1, 2, 3] });
      assert.deepEqual((await py.command({ cmd: 'get', unit: 1, table: 'coil', address: 9, count: 1 })).values, [1]);
      assert.deepEqual((await py.command({ cmd: 'get', unit: 1, table: 'holding', address: 20, count: 1 })).values, [0xbeef]);
      assert.deepEqual((await py.command({ cmd: 'get', unit: 1, table: 'coil', address: 30, count: 3 })).values, [1, 0, 1]);
      assert.deepEqual((await py.command({ cmd: 'get', unit: 1, table: 'holding', address: 40, count: 3 })).values, [1, 2, 3]);
      assert.equal(await outcomeOf(c.request(1, { fc: 3, address: 99, quantity: 2 })), 'exception 2');
      const transport = c.transport as RtuTransport;
      assert.equal(transport.stats.crcErrors, 0);
      assert.equal(transport.address, `rtu://${pty.a}@38400,8N1`);
    });

    it('the writer checks, then writes over RTU; the device holds the values', async () => {
      const writer = new ModbusWriter({
        client: client(),
        unitId: 2,
        plan: buildWritePlan([
          { name: 'setpoint', table: 'holding', address: 10, type: 'uint16', scale: 0.01, max: 600 },
          { name: 'start', table: 'coil', address: 0, type: 'bit' },
        ]),
        readBefore: true,
      });
      const refused = await writer.write({ setpoint: 600.01, start: true });
      assert.equal(refused.ok, false);
      assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'coil', address: 0, count: 1 })).values, [0], 'nothing written');
      const done = await writer.write({ setpoint: 37.8, start: true });
      assert.equal(done.ok, true, JSON.stringify(done.results));
      assert.equal(done.results.setpoint.old, 0);
      assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'holding', address: 10, count: 1 })).values, [3780]);
      assert.deepEqual((await py.command({ cmd: 'get', unit: 2, table: 'coil', address: 0, count: 1 })).values, [1]);
      writer.close();
    });

    it('a dead unit does not stall the bus: the breaker keeps unit 1 at its rate', async () => {
      const c = client({ timeoutMs: 250, unitFailureThreshold: 2, unitBackoffMs: 5000, silentLinkTimeouts: 1000 });
      const v: MetricDefinition[] = [{ name: 'v', table: 'holding', address: 0, type: 'uint16' }];
      const one = poller(c, 1, v, 50);
      const two = poller(c, 2, v, 50);
      let goodOne = 0;
      one.on('batch', (b) => {
        if (b.meta?.v.quality === 'good') goodOne++;
      });
      one.start();
      two.start();
      await sleep(300);
      await py.command({ cmd: 'remove_unit', unit: 2 });
      await until('unit 2 suspended', () => c.isUnitSuspended(2), 3000);
      const before = goodOne;
      await sleep(1000);
      const rate = goodOne - before;
      // 50 ms period → up to 20/s. Without the breaker each poll of unit 2 holds the bus for 250 ms (< 4/s for unit 1).
      assert.ok(rate >= 12, `unit 1 read ${rate} times in 1 s while unit 2 is dead`);
    });

    it('test connection / read once over RTU: the value, or port-busy while a link holds the port', async () => {
      await py.command({ cmd: 'set', unit: 2, table: 'holding', address: 3, values: [31337] });
      const settings = linkSettingsFrom({ transport: 'rtu', serialPath: pty.a, baudRate: '38400', parity: 'none', timeout: '300' });
      const result = await probeLink(settings, { unitId: 2, table: 'holding', address: 3 });
      assert.equal(result.ok && result.value, 31337, JSON.stringify(result));
      const c = client();
      await connected(c);
      const busy = await probeLink(settings, { unitId: 2, table: 'holding', address: 3 });
      assert.equal(!busy.ok && busy.kind, 'port-busy', JSON.stringify(busy));
    });

    it('uns-modbus-link of type rtu serves uns-modbus-read and uns-modbus-write in Node-RED', async () => {
      await new Promise<void>((r) => helper.startServer(() => r()));
      try {
        await py.command({ cmd: 'set', unit: 1, table: 'input', address: 5, values: [12000] });
        await helper.load(modbusNodes, [
          { id: 'link', type: 'uns-modbus-link', name: 'bus', transport: 'rtu', serialPath: pty.a, baudRate: '38400', parity: 'none', stopBits: '1', timeout: 300, reconnect: 50 },
          { id: 'read', type: 'uns-modbus-read', link: 'link', unitId: 1, interval: 50, topic: 'acme/site/area/line/cell/tank1',
            metrics: [{ name: 'level', table: 'input', address: 5, type: 'uint16', scale: 0.001, signal: '4-20mA', euMin: 0, euMax: 4, unit: 'm' }],
            wires: [['batches']] },
          { id: 'write', type: 'uns-modbus-write', link: 'link', unitId: 1,
            metrics: [{ name: 'valve', table: 'holding', address: 7, type: 'uint16', min: 0, max: 100 }], wires: [['results']] },
          { id: 'batches', type: 'helper' },
          { id: 'results', type: 'helper' },
        ]);
        const batch = await new Promise<TagBatch>((resolve) => helper.getNode('batches').on('input', (m) => resolve(m as TagBatch)));
        assert.deepEqual(batch.payload, { level: 2 });
        const result = new Promise<{ ok: boolean }>((resolve) => helper.getNode('results').on('input', (m) => resolve(m as { ok: boolean })));
        helper.getNode('write').receive({ payload: { valve: 42 } });
        assert.equal((await result).ok, true);
        assert.deepEqual((await py.command({ cmd: 'get', unit: 1, table: 'holding', address: 7, count: 1 })).values, [42]);
      } finally {
        await helper.unload();
        await new Promise<void>((r) => helper.stopServer(() => r()));
      }
    });
  });

  describe('against a scripted faulty device', () => {
    let device: SerialPort;
    /** How the device answers each FC3 request (unit, address, quantity); undefined = silence. */
    let answer: (unit: number, address: number, quantity: number) => Buffer | undefined;
    const requests: Buffer[] = [];

    /** Open the device's end of the pty and answer every 8-byte FC3 request through `answer`. */
    const openDevice = async (): Promise<SerialPort> => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { SerialPort: Port } = require('serialport') as typeof import('serialport');
      const port = new Port({ path: pty.b, baudRate: 38400, autoOpen: false });
      await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
      let pending = Buffer.alloc(0);
      port.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 8) { // every request here is an 8-byte FC3 frame
          const frame = pending.subarray(0, 8);
          pending = pending.subarray(8);
          requests.push(Buffer.from(frame));
          assert.equal(crc16(frame), 0, 'the master sends a correct CRC');
          const reply = answer(frame[0], frame.readUInt16BE(2), frame.readUInt16BE(4));
          if (reply) port.write(reply);
        }
      });
      return port;
    };

    beforeEach(async () => {
      requests.length = 0;
      device = await openDevice();
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      if (device.isOpen) await new Promise<void>((r) => device.close(() => r()));
    });

    /** A correct FC3 response with the given registers. */
    const registers = (unit: number, values: number[]) =>
      withCrc([unit, 3, 2 * values.length, ...values.flatMap((v) => [v >> 8, v & 0xff])]);
    const read = (c: ModbusClient, unit = 1) => c.request(unit, { fc: 3, address: 0, quantity: 2 }).then((r) => valuesOf(r as never));

    it('finds the response after garbage bytes and ignores noise on an idle line', async () => {
      answer = (unit) => Buffer.concat([Buffer.from([0x00, 0xff, 0x13, 0x01]), registers(unit, [7, 8])]);
      const c = client();
      await connected(c);
      assert.deepEqual(await read(c), [7, 8]);
      device.write(Buffer.from('line noise while nobody asks'));
      await sleep(50);
      answer = (unit) => registers(unit, [9, 10]);
      assert.deepEqual(await read(c), [9, 10]);
      const stats = (c.transport as RtuTransport).stats;
      assert.equal(stats.discardedBytes, 4 + 'line noise while nobody asks'.length);
      assert.equal(c.stats.connects, 1, 'garbage does not cost the connection');
    });

    it('a response with a bad CRC is never taken: timeout, counted, and the next request works', async () => {
      answer = (unit) => {
        const frame = registers(unit, [1, 2]);
        frame[4] ^= 0x01; // one bit flipped on the line
        return frame;
      };
      const c = client();
      await connected(c);
      assert.equal(await outcomeOf(read(c)), 'timeout');
      assert.equal((c.transport as RtuTransport).stats.crcErrors, 1);
      answer = (unit) => registers(unit, [3, 4]);
      assert.deepEqual(await read(c), [3, 4]);
    });

    it('a truncated response times out; a response from another unit is ignored', async () => {
      answer = (unit) => registers(unit, [1, 2]).subarray(0, 6);
      const c = client();
      await connected(c);
      assert.equal(await outcomeOf(read(c)), 'timeout');
      answer = () => registers(9, [5, 6]);
      assert.equal(await outcomeOf(read(c)), 'timeout');
      answer = (unit) => registers(unit, [5, 6]);
      assert.deepEqual(await read(c), [5, 6]);
      assert.equal(c.stats.malformed, 0, 'nothing half-parsed was handed to the client');
    });

    it('waits for t3.5 of silence before a request: a late answer still arriving delays the next request', async () => {
      // At 300 baud 8N1, t3.5 = 117 ms: a byte every 5 ms (even with timer jitter) is a frame still on
      // the line. The pty ignores the baud rate; only the master's timing rules change.
      answer = (unit) => registers(unit, [1, 1]);
      const c = client({ baudRate: 300, timeoutMs: 2000 });
      await connected(c);
      const babble = setInterval(() => device.write(Buffer.from([0x55])), 5);
      await until('the babble reaches the master', () => (c.transport as RtuTransport).stats.discardedBytes > 0, 2000);
      const p = read(c);
      await sleep(400);
      clearInterval(babble);
      const babbleEnded = performance.now();
      assert.equal(requests.length, 0, 'no request while the line is busy');
      await until('request sent', () => requests.length === 1, 2000);
      const quietFor = performance.now() - babbleEnded;
      assert.ok(quietFor >= 100, `request sent after ${quietFor.toFixed(1)} ms of silence; t3.5 is 117 ms`);
      assert.deepEqual(await p, [1, 1]);
    });

    it('refuses unit 0 (broadcast has no answer on RTU) without sending anything', async () => {
      answer = (unit) => registers(unit, [1, 2]);
      const c = client();
      await connected(c);
      assert.equal(await outcomeOf(c.request(0, { fc: 3, address: 0, quantity: 1 })), 'invalid-request');
      assert.equal(requests.length, 0);
    });

    it('the serial adapter vanishes and comes back: one outage, then it reads again by itself', async () => {
      answer = (unit) => registers(unit, [4, 2]);
      const c = client();
      const outages: string[] = [];
      c.on('outage', (e) => outages.push(e.reason));
      await connected(c);
      assert.deepEqual(await read(c), [4, 2]);
      await new Promise<void>((r) => device.close(() => r()));
      await pty.kill();
      await until('link down', () => c.state === 'backoff', 3000);
      await pty.restart();
      answer = (unit) => registers(unit, [4, 3]);
      device = await openDevice();
      await until('reconnected', () => c.state === 'connected' && c.stats.connects === 2, 5000);
      assert.deepEqual(await read(c), [4, 3]);
      assert.equal(outages.length, 1, `one outage: ${outages.join(' | ')}`);
    });
  });
});
