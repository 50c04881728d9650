/**
 * lib/modbus/pdu.ts against the example frames printed in Modbus Application Protocol v1.1b3
 * §6.1–§6.12 and §7, plus the quantity limits and malformed responses of security.md T-MB-03..06.
 */
import { strict as assert } from 'node:assert';
import { ModbusException } from '../../lib/modbus/data-model';
import {
  decodeRequest, decodeResponse, describeException, encodeException, encodeResponse, ModbusPduError,
  ModbusRequest, ModbusResponseData, requestToBuffer, responseLength, valuesOf,
} from '../../lib/modbus/pdu';

const hex = (s: string): Buffer => Buffer.from(s.replace(/ /g, ''), 'hex');
const encodeRes = (res: ModbusResponseData): Buffer => {
  const buf = Buffer.alloc(responseLength(res));
  encodeResponse(res, buf, 0);
  return buf;
};
const bitsOf = (bytes: number[], n: number): number[] =>
  Array.from({ length: n }, (_, i) => (bytes[i >> 3] >> (i & 7)) & 1);

/** [clause, request, request frame, response values, response frame] */
const golden: Array<[string, ModbusRequest, string, ModbusResponseData, string]> = [
  ['§6.1 read coils', { fc: 1, address: 19, quantity: 19 }, '01 0013 0013',
    { fc: 1, values: bitsOf([0xcd, 0x6b, 0x05], 19) }, '01 03 CD6B05'],
  ['§6.2 read discrete inputs', { fc: 2, address: 196, quantity: 22 }, '02 00C4 0016',
    { fc: 2, values: bitsOf([0xac, 0xdb, 0x35], 22) }, '02 03 ACDB35'],
  ['§6.3 read holding registers', { fc: 3, address: 107, quantity: 3 }, '03 006B 0003',
    { fc: 3, values: [0x022b, 0, 0x64] }, '03 06 022B 0000 0064'],
  ['§6.4 read input registers', { fc: 4, address: 8, quantity: 1 }, '04 0008 0001',
    { fc: 4, values: [10] }, '04 02 000A'],
  ['§6.5 write single coil', { fc: 5, address: 172, value: true }, '05 00AC FF00',
    { fc: 5, address: 172, value: true }, '05 00AC FF00'],
  ['§6.6 write single register', { fc: 6, address: 1, value: 3 }, '06 0001 0003',
    { fc: 6, address: 1, value: 3 }, '06 0001 0003'],
  ['§6.11 write multiple coils', { fc: 15, address: 19, values: bitsOf([0xcd, 0x01], 10) }, '0F 0013 000A 02 CD01',
    { fc: 15, address: 19, quantity: 10 }, '0F 0013 000A'],
  ['§6.12 write multiple registers', { fc: 16, address: 1, values: [0x000a, 0x0102] }, '10 0001 0002 04 000A 0102',
    { fc: 16, address: 1, quantity: 2 }, '10 0001 0002'],
];

describe('modbus pdu', () => {
  for (const [clause, req, reqFrame, res, resFrame] of golden) {
    it(`${clause}: request and response frames round-trip`, () => {
      assert.deepEqual(requestToBuffer(req), hex(reqFrame));
      const decodedReq = decodeRequest(hex(reqFrame));
      assert.equal(decodedReq.fc, req.fc);
      assert.deepEqual(requestToBuffer(decodedReq), hex(reqFrame));
      assert.deepEqual(encodeRes(res), hex(resFrame));
      const decodedRes = decodeResponse(hex(resFrame), req);
      if ('values' in res) {
        assert.deepEqual(valuesOf(decodedRes as Parameters<typeof valuesOf>[0]), Array.from(res.values));
      } else {
        assert.deepEqual(decodedRes, res);
      }
    });
  }

  it('§7: an exception response decodes to a ModbusException naming the code', () => {
    const buf = Buffer.alloc(2);
    encodeException(1, 2, buf, 0);
    assert.deepEqual(buf, hex('81 02'));
    assert.throws(() => decodeResponse(buf, { fc: 1, address: 0x04a1, quantity: 1 }),
      (e: unknown) => e instanceof ModbusException && e.code === 2 && e.message === 'Modbus exception 2 (illegal data address)');
    for (const code of [7, 9, 0xff]) assert.match(describeException(code), /unknown exception code/); // T-MB-06
  });

  it('enforces the quantity limits when encoding (T-MB-05)', () => {
    const tooMany: ModbusRequest[] = [
      { fc: 1, address: 0, quantity: 2001 }, { fc: 2, address: 0, quantity: 0 },
      { fc: 3, address: 0, quantity: 126 }, { fc: 4, address: 0, quantity: 126 },
      { fc: 15, address: 0, values: new Array(1969).fill(0) }, { fc: 16, address: 0, values: new Array(124).fill(0) },
    ];
    for (const req of tooMany) {
      assert.throws(() => requestToBuffer(req), (e: unknown) => e instanceof ModbusPduError && e.code === 'quantity-out-of-range');
    }
    const atLimit: ModbusRequest[] = [
      { fc: 1, address: 0, quantity: 2000 }, { fc: 3, address: 65411, quantity: 125 },
      { fc: 15, address: 0, values: new Array(1968).fill(1) }, { fc: 16, address: 0, values: new Array(123).fill(0xffff) },
    ];
    for (const req of atLimit) assert.deepEqual(decodeRequest(requestToBuffer(req)).fc, req.fc);
    assert.throws(() => requestToBuffer({ fc: 3, address: 65500, quantity: 100 }), /exceeds 65536/);
  });

  it('rejects undefined, null, floats and negative numbers as address or value (T-MB-10)', () => {
    for (const address of [undefined, null, 1.5, -1, 65536, NaN] as unknown as number[]) {
      assert.throws(() => requestToBuffer({ fc: 6, address, value: 1 }), ModbusPduError);
    }
    for (const value of [undefined, 65536, -1, 0.5] as unknown as number[]) {
      assert.throws(() => requestToBuffer({ fc: 6, address: 0, value }), ModbusPduError);
      assert.throws(() => requestToBuffer({ fc: 16, address: 0, values: [value] }), ModbusPduError);
    }
    assert.throws(() => requestToBuffer({ fc: 15, address: 0, values: [2] }), ModbusPduError);
  });

  it('server side: answers 01 / 03 / 02 for unknown functions, bad quantities, bad spans', () => {
    const code = (frame: string) => {
      try {
        decodeRequest(hex(frame));
      } catch (e) {
        return (e as ModbusException).code;
      }
      return 0;
    };
    assert.equal(code('08 0000 0000'), 1); // diagnostics is not served (T-MB-07)
    assert.equal(code('2B 0E 01 00'), 1);
    assert.equal(code('41'), 1);
    assert.equal(code('03 0000 007E'), 3);
    assert.equal(code('03 0000 0000'), 3);
    assert.equal(code('03 0000'), 3); // truncated
    assert.equal(code('03 0000 0001 00'), 3); // trailing byte
    assert.equal(code('05 0000 1234'), 3); // §6.5: only FF00 / 0000
    assert.equal(code('10 0000 0002 03 000A 01'), 3); // byte count ≠ 2 × quantity
    assert.equal(code('0F 0000 000A 01 CD'), 3); // byte count ≠ ceil(quantity / 8)
    assert.equal(code('03 FFFF 0002'), 2);
  });

  it('client side: a response that does not answer the request is never taken as the answer (T-MB-03/04)', () => {
    const read: ModbusRequest = { fc: 3, address: 0, quantity: 2 };
    const expectError = (frame: string, req: ModbusRequest, errorCode: string) =>
      assert.throws(() => decodeResponse(hex(frame), req), (e: unknown) => e instanceof ModbusPduError && e.code === errorCode);
    expectError('04 04 0001 0002', read, 'function-mismatch');
    expectError('03 02 0001', read, 'byte-count-mismatch');
    expectError('03 03 000100', read, 'byte-count-mismatch');
    expectError('03 04 0001', read, 'pdu-length-mismatch');
    expectError('03 04 0001 0002 0003', read, 'pdu-length-mismatch');
    expectError('03', read, 'pdu-too-short');
    expectError('83 02 00', read, 'pdu-length-mismatch');
    expectError('06 0002 0003', { fc: 6, address: 1, value: 3 }, 'echo-mismatch');
    expectError('10 0001 0003', { fc: 16, address: 1, values: [1, 2] }, 'echo-mismatch');
    expectError('01 02 FF', { fc: 1, address: 0, quantity: 8 }, 'byte-count-mismatch');
  });

  it('decodes read data as a view without copying', () => {
    const frame = hex('03 04 0001 0002');
    const res = decodeResponse(frame, { fc: 3, address: 0, quantity: 2 });
    assert.ok('data' in res);
    assert.equal(res.data.buffer, frame.buffer);
    assert.deepEqual(valuesOf(res), [1, 2]);
  });
});
