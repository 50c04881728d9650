/**
 * FC 43/14 Read Device Identification (lib/modbus/device-id.ts): the codec on hostile answers, the
 * server side on the simulated plant (lib/modbus/server.ts + sim/plant.ts), and both sides against
 * an independent implementation (Debian's pymodbus 3.0.0rc1): its client reads our server, our
 * decoder reads its server.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { ModbusException } from '../../lib/modbus/data-model';
import {
  decodeReadDeviceIdResponse, DeviceIdFormatError, encodeReadDeviceIdResponse, encodeReadDeviceIdRequest, MAX_ROUNDS,
  printable, readDeviceIdentification,
} from '../../lib/modbus/device-id';
import { startModbusTcpServer } from '../../lib/modbus/server';
import { SimulatedPlant } from '../../sim/plant';
import { DEBIAN_PYTHON } from '../helpers/pymodbus';
import { rawModbusSession } from '../../lib/audit/modbus-session';

const identity = { vendorName: 'ACME', productCode: 'VFD-7', revision: '2.31', productName: 'Drive', modelName: 'M7', userApplicationName: 'pump 2' };

describe('FC 43/14 Read Device Identification', () => {
  it('round-trips the regular stream through encoder and decoder', async () => {
    const exchange = async (_unit: number, pdu: Buffer) => encodeReadDeviceIdResponse(pdu, identity);
    const read = await readDeviceIdentification(exchange, 1);
    assert.deepEqual(read.identity, identity);
    assert.equal(read.conformityLevel, 0x82);
    assert.equal(read.rounds, 1);
  });

  it('follows "more follows" when the objects do not fit one PDU', async () => {
    const long = { ...identity, productName: 'P'.repeat(120), modelName: 'M'.repeat(120) };
    let requests = 0;
    const read = await readDeviceIdentification(async (_u, pdu) => { requests++; return encodeReadDeviceIdResponse(pdu, long); }, 1);
    assert.equal(requests, 2);
    assert.deepEqual(read.identity, long);
  });

  it('answers individual access and refuses unknown objects and codes with the spec\'s exceptions', () => {
    const one = decodeReadDeviceIdResponse(encodeReadDeviceIdResponse(encodeReadDeviceIdRequest(4, 2), identity));
    assert.deepEqual(one.objects, [{ id: 2, value: '2.31' }]);
    assert.throws(() => encodeReadDeviceIdResponse(encodeReadDeviceIdRequest(4, 0x33), identity), (e: ModbusException) => e.code === 2);
    assert.throws(() => encodeReadDeviceIdResponse(Buffer.from([0x2b, 0x0e, 9, 0]), identity), (e: ModbusException) => e.code === 3);
  });

  it('reads hostile answers as errors, never as an identity', async () => {
    const header = (count: number) => [0x2b, 0x0e, 2, 0x82, 0, 0, count];
    const bad = (bytes: number[]) => () => decodeReadDeviceIdResponse(Buffer.from(bytes));
    assert.throws(bad([0x2b, 0x0e, 2]), DeviceIdFormatError);
    assert.throws(bad([...header(1), 0, 200, 65]), /claims 200 bytes/);
    assert.throws(bad([...header(2), 0, 1, 65]), /object 2 of 2 is missing/);
    assert.throws(bad([...header(0), 1, 2, 3]), /bytes after the last object/);
    assert.throws(bad([0x03, 0x02, 0, 0, 0, 0, 0]), /expected 2b0e/);
    assert.throws(bad([0xab, 0x01]), (e: ModbusException) => e instanceof ModbusException && e.code === 1);
    // A device that says "more follows" forever, or points backwards, is cut off.
    const looping = async () => Buffer.from([0x2b, 0x0e, 2, 0x82, 0xff, 0x01, 1, 0, 1, 65]);
    await assert.rejects(readDeviceIdentification(looping, 1), /not after 1/);
    let next = 0;
    const endless = async () => Buffer.from([0x2b, 0x0e, 2, 0x82, 0xff, ++next, 0]);
    await assert.rejects(readDeviceIdentification(endless, 1), new RegExp(`after ${MAX_ROUNDS} requests`));
  });

  it('escapes control characters of device strings (no forged log lines, no terminal escapes)', () => {
    assert.equal(printable(Buffer.from('a\nb\u001b[31m\u0000é', 'latin1')), 'a\\x0ab\\x1b[31m\\x00é');
  });

  describe('the simulated plant over Modbus TCP', () => {
    let plant: SimulatedPlant;
    let server: Awaited<ReturnType<typeof startModbusTcpServer>>;
    before(async () => {
      plant = new SimulatedPlant({ drives: 3 });
      server = await startModbusTcpServer({ port: 0, model: plant });
    });
    after(async () => {
      await server.close();
    });

    it('answers FC 43/14 with its own identity per unit, and 0A for a unit it does not have', async () => {
      const session = await rawModbusSession({ host: '127.0.0.1', port: server.port, timeoutMs: 2000, connectTimeoutMs: 2000 });
      try {
        const read = await readDeviceIdentification(session.exchange, 2);
        assert.equal(read.identity.vendorName, 'uns-edge');
        assert.equal(read.identity.productCode, 'uns-edge-simulated-drive');
        assert.match(read.identity.revision ?? '', /^\d+\.\d+\.\d+/);
        assert.equal(read.identity.userApplicationName, 'drive 2');
        await assert.rejects(readDeviceIdentification(session.exchange, 9), (e: ModbusException) => e.code === 0x0a);
      } finally {
        session.close();
      }
    });

    it('is read by pymodbus\' own ReadDeviceInformationRequest', async () => {
      const script = [
        'import json, sys',
        'from pymodbus.client import ModbusTcpClient',
        'from pymodbus.mei_message import ReadDeviceInformationRequest',
        'c = ModbusTcpClient("127.0.0.1", port=int(sys.argv[1])); c.connect()',
        'r = c.execute(ReadDeviceInformationRequest(read_code=2, object_id=0, unit=1))',
        'print(json.dumps({str(k): v.decode("latin1") for k, v in r.information.items()}))',
        'c.close()',
      ].join('\n');
      // Asynchronously: the server under test runs in this process.
      const run = await promisify(execFile)(DEBIAN_PYTHON, ['-c', script, String(server.port)], { encoding: 'utf8', timeout: 20_000 });
      const objects = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, string>;
      assert.equal(objects['0'], 'uns-edge');
      assert.equal(objects['1'], 'uns-edge-simulated-drive');
      assert.equal(objects['6'], 'drive 1');
    });
  });

  it('decodes the answer of pymodbus\' server (its ModbusDeviceIdentification)', async function () {
    this.timeout(20_000);
    const script = [
      'import asyncio, json, logging',
      'from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext',
      'from pymodbus.device import ModbusDeviceIdentification',
      'from pymodbus.server.async_io import ModbusTcpServer',
      'async def main():',
      '    ident = ModbusDeviceIdentification(info_name={"VendorName": "PyVendor", "ProductCode": "PY-1", "MajorMinorRevision": "3.0", "ProductName": "<b>py</b>"})',
      '    server = ModbusTcpServer(ModbusServerContext(slaves=ModbusSlaveContext(), single=True), identity=ident, address=("127.0.0.1", 0))',
      '    task = asyncio.create_task(server.serve_forever())',
      '    await server.serving',
      '    print(json.dumps({"port": server.server.sockets[0].getsockname()[1]}), flush=True)',
      '    await asyncio.sleep(30)',
      'asyncio.run(main())',
    ].join('\n');
    const child = spawn(DEBIAN_PYTHON, ['-c', script]);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`pymodbus server exited ${code}`)));
      });
      const { port } = JSON.parse(line) as { port: number };
      const session = await rawModbusSession({ host: '127.0.0.1', port, timeoutMs: 3000, connectTimeoutMs: 3000 });
      try {
        const read = await readDeviceIdentification(session.exchange, 1);
        assert.equal(read.identity.vendorName, 'PyVendor');
        assert.equal(read.identity.productCode, 'PY-1');
        assert.equal(read.identity.revision, '3.0');
        assert.equal(read.identity.productName, '<b>py</b>');
      } finally {
        session.close();
      }
    } finally {
      child.kill();
    }
  });
});
