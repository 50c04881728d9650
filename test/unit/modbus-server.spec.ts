/**
 * lib/modbus/server.ts, checked by an independent implementation (pymodbus 3.0.0rc1 client) and by
 * raw sockets for the framing faults pymodbus cannot produce (security.md T-MB-01/02/05/11).
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { ModbusException, ModbusExceptionCode } from '../../lib/modbus/data-model';
import { MemoryDataModel } from '../../lib/modbus/memory-model';
import { ModbusTcpServer, startModbusTcpServer } from '../../lib/modbus/server';
import { PymodbusClient, startPymodbusClient } from '../helpers/pymodbus';

describe('modbus server', () => {
  let model: MemoryDataModel;
  let server: ModbusTcpServer;

  beforeEach(async () => {
    model = new MemoryDataModel({ units: [1, 2, 3], size: 2000 });
    server = await startModbusTcpServer({ port: 0, model });
  });
  afterEach(async () => {
    await server.close();
  });

  describe('with a pymodbus client', () => {
    let py: PymodbusClient;
    beforeEach(async () => {
      py = await startPymodbusClient('127.0.0.1', server.port);
    });
    afterEach(async () => {
      await py.close();
    });

    it('serves reads of all four tables (FC 1, 2, 3, 4)', async () => {
      model.set(1, 'holding', 10, [1, 2, 0xffff]);
      model.set(1, 'input', 0, [500, 600]);
      model.set(1, 'coil', 3, [1, 0, 1, 1, 0, 0, 0, 0, 1]);
      model.set(1, 'discrete', 0, [0, 1]);
      assert.deepEqual(await py.request({ op: 'read_holding_registers', address: 10, count: 3 }), { ok: true, registers: [1, 2, 0xffff] });
      assert.deepEqual(await py.request({ op: 'read_input_registers', address: 0, count: 2 }), { ok: true, registers: [500, 600] });
      assert.deepEqual(await py.request({ op: 'read_coils', address: 3, count: 9 }), { ok: true, bits: [1, 0, 1, 1, 0, 0, 0, 0, 1] });
      assert.deepEqual(await py.request({ op: 'read_discrete_inputs', address: 0, count: 2 }), { ok: true, bits: [0, 1] });
    });

    it('serves 125 registers and 2000 coils, the largest reads (§6.1, §6.3)', async () => {
      const regs = Array.from({ length: 125 }, (_, i) => i * 500);
      model.set(2, 'holding', 0, regs);
      const bits = Array.from({ length: 2000 }, (_, i) => (i % 3 === 0 ? 1 : 0));
      model.set(2, 'coil', 0, bits);
      assert.deepEqual(await py.request({ op: 'read_holding_registers', address: 0, count: 125, slave: 2 }), { ok: true, registers: regs });
      assert.deepEqual(await py.request({ op: 'read_coils', address: 0, count: 2000, slave: 2 }), { ok: true, bits });
    });

    it('applies writes (FC 5, 6, 15, 16) to the data model', async () => {
      assert.deepEqual(await py.request({ op: 'write_coil', address: 7, value: true }), { ok: true });
      assert.deepEqual(await py.request({ op: 'write_register', address: 8, value: 4321 }), { ok: true });
      assert.deepEqual(await py.request({ op: 'write_coils', address: 20, value: [true, false, true] }), { ok: true });
      assert.deepEqual(await py.request({ op: 'write_registers', address: 30, value: [1, 65535, 3] }), { ok: true });
      assert.deepEqual(model.get(1, 'coil', 7, 1), [1]);
      assert.deepEqual(model.get(1, 'holding', 8, 1), [4321]);
      assert.deepEqual(model.get(1, 'coil', 20, 3), [1, 0, 1]);
      assert.deepEqual(model.get(1, 'holding', 30, 3), [1, 65535, 3]);
      assert.deepEqual(await py.request({ op: 'write_coil', address: 7, value: false }), { ok: true });
      assert.deepEqual(model.get(1, 'coil', 7, 1), [0]);
    });

    it('answers exception 2 for an address beyond the model and 1 for an unsupported function', async () => {
      assert.deepEqual(await py.request({ op: 'read_holding_registers', address: 1999, count: 2 }), { ok: false, exception: 2 });
      assert.deepEqual(await py.request({ op: 'read_exception_status' }), { ok: false, exception: 1 });
    });

    it('answers the exception code a data model throws (03, 04, 06, 0x0B)', async () => {
      for (const code of [3, 4, 6, 0x0b]) {
        model.setFailure(3, code);
        assert.deepEqual(await py.request({ op: 'read_input_registers', address: 0, count: 1, slave: 3 }), { ok: false, exception: code });
      }
    });

    it('sends nothing for a unit the model does not answer, and keeps serving other units', async () => {
      model.setSilent(2, true);
      const silent = await py.request({ op: 'read_holding_registers', address: 0, count: 1, slave: 2 });
      assert.equal(silent.ok, false);
      assert.equal((silent as { exception?: number }).exception, undefined, 'a silent unit must not answer an exception');
      model.set(1, 'holding', 0, [42]);
      assert.deepEqual(await py.request({ op: 'read_holding_registers', address: 0, count: 1, slave: 1 }), { ok: true, registers: [42] });
    });
  });

  describe('with raw sockets', () => {
    const connect = (): Promise<net.Socket> => new Promise((resolve, reject) => {
      const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    /** Collect `bytes` bytes of response (or whatever arrived when the socket closes). */
    const receive = (s: net.Socket, bytes: number): Promise<Buffer> => new Promise((resolve) => {
      let got = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= bytes) done();
      };
      const done = () => {
        s.off('data', onData);
        s.off('close', done);
        resolve(got);
      };
      s.on('data', onData);
      s.on('close', done);
    });
    const closed = (s: net.Socket): Promise<void> => new Promise((resolve) => {
      if (s.destroyed) resolve();
      else s.once('close', () => resolve());
    });

    it('answers two ADUs in one segment and one ADU dripped byte by byte (T-MB-11)', async () => {
      model.set(1, 'holding', 0, [0x1234, 0x5678]);
      const s = await connect();
      const req = (tid: number, addr: number) => Buffer.from([0, tid, 0, 0, 0, 6, 1, 3, 0, addr, 0, 1]);
      const reply = receive(s, 22);
      s.write(Buffer.concat([req(1, 0), req(2, 1)]));
      assert.deepEqual(await reply, Buffer.from([
        0, 1, 0, 0, 0, 5, 1, 3, 2, 0x12, 0x34,
        0, 2, 0, 0, 0, 5, 1, 3, 2, 0x56, 0x78,
      ]));
      const dripped = receive(s, 11);
      for (const byte of req(3, 1)) {
        s.write(Buffer.from([byte]));
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.deepEqual(await dripped, Buffer.from([0, 3, 0, 0, 0, 5, 1, 3, 2, 0x56, 0x78]));
      s.destroy();
    });

    it('answers 03 for a quantity beyond 125 and 02 for a span beyond 65536 (T-MB-05)', async () => {
      const s = await connect();
      const reply = receive(s, 18);
      s.write(Buffer.from([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 126]));
      s.write(Buffer.from([0, 2, 0, 0, 0, 6, 1, 3, 0xff, 0xff, 0, 2]));
      assert.deepEqual(await reply, Buffer.from([0, 1, 0, 0, 0, 3, 1, 0x83, 3, 0, 2, 0, 0, 0, 3, 1, 0x83, 2]));
      s.destroy();
    });

    for (const [name, bytes] of [
      ['protocol id ≠ 0', [0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1]],
      ['length 0', [0, 1, 0, 0, 0, 0, 1, 3, 0, 0, 0, 1]],
      ['length > 254', [0, 1, 0, 0, 1, 0, 1, 3, 0, 0, 0, 1]],
      ['text garbage', [...Buffer.from('GET / HTTP/1.1\r\n\r\n')]],
    ] as const) {
      it(`closes a connection that sends garbage: ${name} (T-MB-01/02)`, async () => {
        const s = await connect();
        const reply = receive(s, 1);
        s.write(Buffer.from(bytes));
        await closed(s);
        assert.equal((await reply).length, 0, 'nothing is answered to garbage');
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(server.connections, 0);
      });
    }

    it('answers 04 when the model throws a non-Modbus error, and reports it', async () => {
      const errors: unknown[] = [];
      const broken = await startModbusTcpServer({
        port: 0,
        model: {
          answers: () => true,
          read: () => { throw new TypeError('bug in model'); },
          write: () => { throw new ModbusException(ModbusExceptionCode.IllegalDataValue); },
        },
        onModelError: (e) => errors.push(e),
      });
      try {
        const s = await new Promise<net.Socket>((resolve) => {
          const c = net.connect(broken.port, '127.0.0.1', () => resolve(c));
        });
        const reply = receive(s, 18);
        s.write(Buffer.from([0, 1, 0, 0, 0, 6, 9, 4, 0, 0, 0, 1]));
        s.write(Buffer.from([0, 2, 0, 0, 0, 6, 9, 6, 0, 0, 0, 1]));
        assert.deepEqual(await reply, Buffer.from([0, 1, 0, 0, 0, 3, 9, 0x84, 4, 0, 2, 0, 0, 0, 3, 9, 0x86, 3]));
        assert.equal(errors.length, 1);
        s.destroy();
      } finally {
        await broken.close();
      }
    });

    it('counts connections, drops them on request and refuses none after a drop', async () => {
      const a = await connect();
      const b = await connect();
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(server.connections, 2);
      server.dropConnections();
      await Promise.all([closed(a), closed(b)]);
      const c = await connect();
      model.set(1, 'holding', 0, [7]);
      const reply = receive(c, 11);
      c.write(Buffer.from([0, 9, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]));
      assert.deepEqual(await reply, Buffer.from([0, 9, 0, 0, 0, 5, 1, 3, 2, 0, 7]));
      c.destroy();
    });
  });
});
