/**
 * Socket writes and pipelining of a Modbus TCP link (lib/modbus/transport.ts, link-config.ts,
 * server.ts): the requests of one event-loop turn leave in one socket write; a link set to N
 * requests in flight keeps N outstanding (Implementation Guide v1.0b §4.2.1) and matches answers
 * by transaction id, in whatever order they come; the simulated plant's server answers pipelined
 * requests in order.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { createModbusTcpClient, ModbusClient } from '../../lib/modbus/client';
import { createModbusClient, linkSettingsFrom } from '../../lib/modbus/link-config';
import { MbapFramer, MBAP_HEADER_LENGTH, writeMbapHeader } from '../../lib/modbus/mbap';
import { MemoryDataModel } from '../../lib/modbus/memory-model';
import { ModbusTable } from '../../lib/modbus/data-model';
import { encodeRequest, requestLength, valuesOf } from '../../lib/modbus/pdu';
import { RtuTransport } from '../../lib/modbus/rtu';
import { ModbusTcpServer, startModbusTcpServer } from '../../lib/modbus/server';
import { countWritesTo } from '../helpers/socket-writes';

const readHolding = (c: ModbusClient, address: number) =>
  c.request(1, { fc: 3, address, quantity: 1 }).then((r) => valuesOf(r as Parameters<typeof valuesOf>[0])[0]);

const connected = (c: ModbusClient) => new Promise<void>((resolve) => {
  if (c.state === 'connected') resolve();
  else c.on('state', (s) => s === 'connected' && resolve());
});

describe('modbus transport: coalesced writes and pipelining', () => {
  let model: MemoryDataModel;
  let server: ModbusTcpServer;
  let client: ModbusClient | undefined;

  beforeEach(async () => {
    model = new MemoryDataModel({ units: [1], size: 64 });
    for (let a = 0; a < 64; a++) model.write(1, 'holding', a, [1000 + a]);
    server = await startModbusTcpServer({ model });
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await server.close();
  });

  it('puts the requests of one event-loop turn on the wire in one socket write', async () => {
    client = createModbusTcpClient({ host: server.host, port: server.port, maxInFlight: 8 });
    await connected(client);
    const writes = countWritesTo(server.port);
    try {
      const values = await Promise.all(Array.from({ length: 8 }, (_, i) => readHolding(client as ModbusClient, i)));
      assert.deepEqual(values, Array.from({ length: 8 }, (_, i) => 1000 + i));
      assert.equal(writes.count, 1, `8 requests in one turn took ${writes.count} writes`);
    } finally {
      writes.restore();
    }
  });

  it('keeps as many requests in flight as the link setting says (4) against the simulated plant', async () => {
    client = createModbusClient(linkSettingsFrom({ host: server.host, port: server.port, maxInFlight: '4' }));
    await connected(client);
    let mostInFlight = 0;
    const read = model.read.bind(model);
    model.read = (unitId: number, table: ModbusTable, address: number, quantity: number) => {
      mostInFlight = Math.max(mostInFlight, (client as ModbusClient).inFlightCount);
      return read(unitId, table, address, quantity);
    };
    const values = await Promise.all(Array.from({ length: 12 }, (_, i) => readHolding(client as ModbusClient, i)));
    assert.deepEqual(values, Array.from({ length: 12 }, (_, i) => 1000 + i));
    assert.equal(mostInFlight, 4);
  });

  it('defaults to one request in flight, and an RTU link can only carry one', () => {
    assert.equal(linkSettingsFrom({ host: 'h' }).maxInFlight, 1);
    assert.equal(linkSettingsFrom({ host: 'h', maxInFlight: '' }).maxInFlight, 1);
    assert.equal(linkSettingsFrom({ host: 'h', maxInFlight: '0' }).maxInFlight, 1);
    assert.equal(linkSettingsFrom({ host: 'h', maxInFlight: 1000 }).maxInFlight, 16);
    const rtu = linkSettingsFrom({ transport: 'rtu', serialPath: '/dev/ttyUSB0', maxInFlight: 4 });
    assert.equal(new RtuTransport({ ...rtu, path: rtu.serialPath }).maxInFlight, 1);
  });

  it('matches pipelined answers by transaction id when the device answers out of order', async () => {
    // A device that waits for 4 requests and answers them last first, each with its address + 7000.
    const raw = net.createServer((socket) => {
      const received: Array<{ tid: number; address: number }> = [];
      const framer = new MbapFramer((tid, _unit, pdu) => {
        received.push({ tid, address: pdu.readUInt16BE(1) });
        if (received.length < 4) return;
        for (const { tid: t, address } of received.reverse()) {
          const adu = Buffer.alloc(MBAP_HEADER_LENGTH + 4);
          writeMbapHeader(adu, 0, t, 1, 4);
          adu[MBAP_HEADER_LENGTH] = 3;
          adu[MBAP_HEADER_LENGTH + 1] = 2;
          adu.writeUInt16BE(7000 + address, MBAP_HEADER_LENGTH + 2);
          socket.write(adu);
        }
        received.length = 0;
      }, () => socket.destroy());
      socket.on('data', (chunk) => framer.push(chunk));
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (raw.address() as net.AddressInfo).port;
      client = createModbusClient(linkSettingsFrom({ host: '127.0.0.1', port, maxInFlight: 4, timeout: 2000 }));
      const values = await Promise.all([3, 1, 4, 2].map((a) => readHolding(client as ModbusClient, a)));
      assert.deepEqual(values, [7003, 7001, 7004, 7002]);
      assert.equal(client.stats.discardedTransaction, 0);
    } finally {
      await client?.close();
      client = undefined;
      await new Promise((r) => raw.close(r));
    }
  });

  it('the simulated plant server answers pipelined requests in request order, in one write', async () => {
    const socket = net.connect({ host: server.host, port: server.port });
    await new Promise((r) => socket.once('connect', r));
    try {
      const tids = [40, 7, 900, 3];
      const adus = tids.map((tid, i) => {
        const request = { fc: 3 as const, address: i, quantity: 1 };
        const adu = Buffer.alloc(MBAP_HEADER_LENGTH + requestLength(request));
        writeMbapHeader(adu, 0, tid, 1, requestLength(request));
        encodeRequest(request, adu, MBAP_HEADER_LENGTH);
        return adu;
      });
      const firstChunk = new Promise<Buffer>((r) => socket.once('data', r));
      socket.write(Buffer.concat(adus));
      const answered: Array<[number, number]> = [];
      new MbapFramer((tid, _unit, pdu) => answered.push([tid, pdu.readUInt16BE(2)]), (e) => assert.fail(e)).push(await firstChunk);
      assert.deepEqual(answered, tids.map((tid, i) => [tid, 1000 + i]));
    } finally {
      socket.destroy();
    }
  });
});
