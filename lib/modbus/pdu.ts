/**
 * Modbus PDU codec: requests and responses of function codes 1, 2, 3, 4, 5, 6, 15 and 16, and
 * exception responses (Modbus Application Protocol v1.1b3 §6.1–§6.12, §7). One codec serves both
 * sides: the client encodes requests and decodes responses, the server decodes requests and
 * encodes responses, and the tests round-trip each through the other.
 *
 * Performance notes: encoders write into a caller-supplied buffer at an offset (so the client puts
 * the MBAP header and the PDU in one allocation); read responses are decoded to a Buffer *view* of
 * the data bytes, not to an array, so typed decoding reads straight from the received chunk.
 */
import { ModbusException, ModbusExceptionCode, ModbusTable } from './data-model';

/** Public function codes implemented here (Modbus Application Protocol v1.1b3 §5.1). */
export enum FunctionCode {
  ReadCoils = 0x01,
  ReadDiscreteInputs = 0x02,
  ReadHoldingRegisters = 0x03,
  ReadInputRegisters = 0x04,
  WriteSingleCoil = 0x05,
  WriteSingleRegister = 0x06,
  WriteMultipleCoils = 0x0f,
  WriteMultipleRegisters = 0x10,
}

/** Quantity limits per request (§6.1–§6.4, §6.11, §6.12). */
export const MAX_READ_BITS = 2000; // 0x7D0, FC1/FC2
export const MAX_READ_REGISTERS = 125; // 0x7D, FC3/FC4
export const MAX_WRITE_COILS = 1968; // 0x7B0, FC15
export const MAX_WRITE_REGISTERS = 123; // 0x7B, FC16
/** §4.1: a PDU is at most 253 bytes (256-byte serial ADU minus address and CRC). */
export const MAX_PDU_LENGTH = 253;
/** Exception responses set the high bit of the function code (§7). */
export const EXCEPTION_FLAG = 0x80;

/** §6.5: FC5 writes 0xFF00 for ON and 0x0000 for OFF; anything else is illegal. */
const COIL_ON = 0xff00;
const COIL_OFF = 0x0000;

export type ReadFunctionCode = 1 | 2 | 3 | 4;

export type ModbusRequest =
  | { fc: ReadFunctionCode; address: number; quantity: number }
  | { fc: 5; address: number; value: boolean }
  | { fc: 6; address: number; value: number }
  | { fc: 15; address: number; values: ArrayLike<number | boolean> }
  | { fc: 16; address: number; values: ArrayLike<number> };

/** What the server encodes. Read responses carry values (bits as 0/1, registers as uint16). */
export type ModbusResponseData =
  | { fc: ReadFunctionCode; values: ArrayLike<number> }
  | { fc: 5; address: number; value: boolean }
  | { fc: 6; address: number; value: number }
  | { fc: 15 | 16; address: number; quantity: number };

/**
 * What the client decodes. For reads, `data` is a view of the response's data bytes:
 * registers big-endian (§4.2), bits packed LSB first (§6.1). Use registerAt()/bitAt() or
 * lib/modbus/datatypes.ts to read values from it.
 */
export type ModbusResponse =
  | { fc: ReadFunctionCode; quantity: number; data: Buffer }
  | { fc: 5; address: number; value: boolean }
  | { fc: 6; address: number; value: number }
  | { fc: 15 | 16; address: number; quantity: number };

/** Why a PDU could not be encoded or decoded (not a Modbus exception response). */
export type PduErrorCode =
  | 'unsupported-function'
  | 'quantity-out-of-range'
  | 'address-out-of-range'
  | 'value-out-of-range'
  | 'pdu-too-short'
  | 'pdu-length-mismatch'
  | 'byte-count-mismatch'
  | 'function-mismatch'
  | 'echo-mismatch';

export class ModbusPduError extends Error {
  constructor(readonly code: PduErrorCode, message: string) {
    super(message);
    this.name = 'ModbusPduError';
    Object.setPrototypeOf(this, ModbusPduError.prototype);
  }
}

/** The table a read or write function code addresses (§4.3). */
export function tableOf(fc: FunctionCode | number): ModbusTable {
  switch (fc) {
    case FunctionCode.ReadCoils:
    case FunctionCode.WriteSingleCoil:
    case FunctionCode.WriteMultipleCoils:
      return 'coil';
    case FunctionCode.ReadDiscreteInputs:
      return 'discrete';
    case FunctionCode.ReadInputRegisters:
      return 'input';
    case FunctionCode.ReadHoldingRegisters:
    case FunctionCode.WriteSingleRegister:
    case FunctionCode.WriteMultipleRegisters:
      return 'holding';
    default:
      throw new ModbusPduError('unsupported-function', `function code ${fc} is not supported`);
  }
}

/** The read function code for a table (§6.1–§6.4). */
export function readFunctionOf(table: ModbusTable): ReadFunctionCode {
  switch (table) {
    case 'coil': return 1;
    case 'discrete': return 2;
    case 'holding': return 3;
    case 'input': return 4;
  }
}

/** Largest quantity one read request of this function code may ask for. */
export function maxReadQuantity(fc: ReadFunctionCode): number {
  return fc <= 2 ? MAX_READ_BITS : MAX_READ_REGISTERS;
}

/** Names of the exception codes of §7, for messages such as "Modbus exception 2 (illegal data address)". */
export function exceptionName(code: number): string {
  switch (code) {
    case ModbusExceptionCode.IllegalFunction: return 'illegal function';
    case ModbusExceptionCode.IllegalDataAddress: return 'illegal data address';
    case ModbusExceptionCode.IllegalDataValue: return 'illegal data value';
    case ModbusExceptionCode.ServerDeviceFailure: return 'server device failure';
    case ModbusExceptionCode.Acknowledge: return 'acknowledge';
    case ModbusExceptionCode.ServerDeviceBusy: return 'server device busy';
    case ModbusExceptionCode.MemoryParityError: return 'memory parity error';
    case ModbusExceptionCode.GatewayPathUnavailable: return 'gateway path unavailable';
    case ModbusExceptionCode.GatewayTargetFailedToRespond: return 'gateway target device failed to respond';
    default: return 'unknown exception code';
  }
}

/** "Modbus exception 2 (illegal data address)". */
export function describeException(code: number): string {
  return `Modbus exception ${code} (${exceptionName(code)})`;
}

const byteCountOfBits = (n: number): number => (n + 7) >>> 3;

function checkUint16(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new ModbusPduError('value-out-of-range', `${name} must be an integer 0..65535, got ${String(v)}`);
  }
}

/** §6.x: the addressed span must fit the 16-bit address space (address + quantity ≤ 65536). */
function checkSpan(address: number, quantity: number, min: number, max: number): void {
  checkUint16('address', address);
  if (!Number.isInteger(quantity) || quantity < min || quantity > max) {
    throw new ModbusPduError('quantity-out-of-range', `quantity must be ${min}..${max}, got ${String(quantity)}`);
  }
  if (address + quantity > 0x10000) {
    throw new ModbusPduError('address-out-of-range', `address ${address} + quantity ${quantity} exceeds 65536`);
  }
}

function bitValue(v: number | boolean): number {
  if (v === true || v === 1) return 1;
  if (v === false || v === 0) return 0;
  throw new ModbusPduError('value-out-of-range', `a bit must be 0, 1, true or false, got ${String(v)}`);
}

/** Pack bits LSB first into `buf` at `offset` (§6.1, §6.11). Returns the byte count. */
function packBits(values: ArrayLike<number | boolean>, buf: Buffer, offset: number): number {
  const byteCount = byteCountOfBits(values.length);
  buf.fill(0, offset, offset + byteCount);
  for (let i = 0; i < values.length; i++) {
    if (bitValue(values[i]) === 1) buf[offset + (i >>> 3)] |= 1 << (i & 7);
  }
  return byteCount;
}

function writeRegisters(values: ArrayLike<number>, buf: Buffer, offset: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    checkUint16('register value', v);
    buf.writeUInt16BE(v, offset + 2 * i);
  }
}

/** Register `i` (uint16) of a read-registers response view. */
export function registerAt(data: Buffer, i: number): number {
  return (data[2 * i] << 8) | data[2 * i + 1];
}

/** Bit `i` (0/1) of a read-bits response view. */
export function bitAt(data: Buffer, i: number): number {
  return (data[i >>> 3] >>> (i & 7)) & 1;
}

/** Copy of a read response as numbers (convenience for tests and low-rate callers). */
export function valuesOf(res: { fc: ReadFunctionCode; quantity: number; data: Buffer }): number[] {
  const out = new Array<number>(res.quantity);
  const at = res.fc <= 2 ? bitAt : registerAt;
  for (let i = 0; i < res.quantity; i++) out[i] = at(res.data, i);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Requests

/** Encoded length of a request PDU. Throws ModbusPduError for a request the spec does not allow. */
export function requestLength(req: ModbusRequest): number {
  switch (req.fc) {
    case 1: case 2: case 3: case 4:
      checkSpan(req.address, req.quantity, 1, maxReadQuantity(req.fc));
      return 5;
    case 5:
      checkUint16('address', req.address);
      return 5;
    case 6:
      checkUint16('address', req.address);
      checkUint16('register value', req.value);
      return 5;
    case 15:
      checkSpan(req.address, req.values.length, 1, MAX_WRITE_COILS);
      return 6 + byteCountOfBits(req.values.length);
    case 16:
      checkSpan(req.address, req.values.length, 1, MAX_WRITE_REGISTERS);
      return 6 + 2 * req.values.length;
    default:
      throw new ModbusPduError('unsupported-function', `function code ${(req as { fc: number }).fc} is not supported`);
  }
}

/**
 * Write a request PDU into `buf` at `offset` (§6.1–§6.6, §6.11, §6.12). Validates like
 * requestLength(); returns the number of bytes written.
 */
export function encodeRequest(req: ModbusRequest, buf: Buffer, offset: number): number {
  const length = requestLength(req);
  buf[offset] = req.fc;
  buf.writeUInt16BE(req.address, offset + 1);
  switch (req.fc) {
    case 1: case 2: case 3: case 4:
      buf.writeUInt16BE(req.quantity, offset + 3);
      break;
    case 5:
      buf.writeUInt16BE(req.value ? COIL_ON : COIL_OFF, offset + 3);
      break;
    case 6:
      buf.writeUInt16BE(req.value, offset + 3);
      break;
    case 15:
      buf.writeUInt16BE(req.values.length, offset + 3);
      buf[offset + 5] = packBits(req.values, buf, offset + 6);
      break;
    case 16:
      buf.writeUInt16BE(req.values.length, offset + 3);
      buf[offset + 5] = 2 * req.values.length;
      writeRegisters(req.values, buf, offset + 6);
      break;
  }
  return length;
}

/** A fresh buffer holding the request PDU. */
export function requestToBuffer(req: ModbusRequest): Buffer {
  const buf = Buffer.allocUnsafe(requestLength(req));
  encodeRequest(req, buf, 0);
  return buf;
}

/**
 * Server side: decode a request PDU. Throws ModbusException with the code the server must
 * answer, following the request state diagrams of §6.1–§6.12: unknown function → 01,
 * quantity/byte count/value wrong → 03, address + quantity beyond 65536 → 02.
 */
export function decodeRequest(pdu: Buffer): ModbusRequest {
  if (pdu.length < 1) throw new ModbusException(ModbusExceptionCode.IllegalDataValue, 'empty PDU');
  const fc = pdu[0];
  if (!isSupportedFunction(fc)) {
    throw new ModbusException(ModbusExceptionCode.IllegalFunction, `function code ${fc} is not supported`);
  }
  if (pdu.length < 5) throw new ModbusException(ModbusExceptionCode.IllegalDataValue, 'PDU too short');
  const address = pdu.readUInt16BE(1);
  const word = pdu.readUInt16BE(3);
  switch (fc) {
    case 1: case 2: case 3: case 4:
      expectLength(pdu, 5);
      checkRequestSpan(address, word, maxReadQuantity(fc));
      return { fc, address, quantity: word };
    case 5:
      expectLength(pdu, 5);
      if (word !== COIL_ON && word !== COIL_OFF) {
        throw new ModbusException(ModbusExceptionCode.IllegalDataValue, 'coil value must be 0xFF00 or 0x0000');
      }
      return { fc, address, value: word === COIL_ON };
    case 6:
      expectLength(pdu, 5);
      return { fc, address, value: word };
    case 15: case 16: {
      if (pdu.length < 6) throw new ModbusException(ModbusExceptionCode.IllegalDataValue, 'PDU too short');
      const byteCount = pdu[5];
      const max = fc === 15 ? MAX_WRITE_COILS : MAX_WRITE_REGISTERS;
      const expectedBytes = fc === 15 ? byteCountOfBits(word) : 2 * word;
      if (word < 1 || word > max || byteCount !== expectedBytes) {
        throw new ModbusException(ModbusExceptionCode.IllegalDataValue, `quantity ${word} / byte count ${byteCount} out of range`);
      }
      expectLength(pdu, 6 + byteCount);
      checkRequestSpan(address, word, max);
      const values = new Array<number>(word);
      if (fc === 15) {
        const bits = pdu.subarray(6);
        for (let i = 0; i < word; i++) values[i] = bitAt(bits, i);
        return { fc, address, values };
      }
      for (let i = 0; i < word; i++) values[i] = pdu.readUInt16BE(6 + 2 * i);
      return { fc, address, values };
    }
  }
  /* istanbul ignore next: isSupportedFunction() covers every case above */
  throw new ModbusException(ModbusExceptionCode.IllegalFunction);
}

export function isSupportedFunction(fc: number): fc is FunctionCode {
  return (fc >= 1 && fc <= 6) || fc === 15 || fc === 16;
}

function expectLength(pdu: Buffer, length: number): void {
  if (pdu.length !== length) {
    throw new ModbusException(ModbusExceptionCode.IllegalDataValue, `PDU of function ${pdu[0]} must be ${length} bytes, got ${pdu.length}`);
  }
}

function checkRequestSpan(address: number, quantity: number, max: number): void {
  if (quantity < 1 || quantity > max) {
    throw new ModbusException(ModbusExceptionCode.IllegalDataValue, `quantity ${quantity} out of range 1..${max}`);
  }
  if (address + quantity > 0x10000) {
    throw new ModbusException(ModbusExceptionCode.IllegalDataAddress, `address ${address} + quantity ${quantity} exceeds 65536`);
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

/** Encoded length of a response PDU. */
export function responseLength(res: ModbusResponseData): number {
  switch (res.fc) {
    case 1: case 2: return 2 + byteCountOfBits(res.values.length);
    case 3: case 4: return 2 + 2 * res.values.length;
    default: return 5;
  }
}

/** Server side: write a response PDU into `buf` at `offset`; returns the bytes written. */
export function encodeResponse(res: ModbusResponseData, buf: Buffer, offset: number): number {
  buf[offset] = res.fc;
  switch (res.fc) {
    case 1: case 2:
      buf[offset + 1] = packBits(res.values, buf, offset + 2);
      break;
    case 3: case 4:
      buf[offset + 1] = 2 * res.values.length;
      writeRegisters(res.values, buf, offset + 2);
      break;
    case 5:
      buf.writeUInt16BE(res.address, offset + 1);
      buf.writeUInt16BE(res.value ? COIL_ON : COIL_OFF, offset + 3);
      break;
    case 6:
      buf.writeUInt16BE(res.address, offset + 1);
      buf.writeUInt16BE(res.value, offset + 3);
      break;
    case 15: case 16:
      buf.writeUInt16BE(res.address, offset + 1);
      buf.writeUInt16BE(res.quantity, offset + 3);
      break;
  }
  return responseLength(res);
}

/** §7: an exception response is the function code with the high bit set, then the code. */
export const EXCEPTION_RESPONSE_LENGTH = 2;
export function encodeException(fc: number, code: number, buf: Buffer, offset: number): number {
  buf[offset] = (fc | EXCEPTION_FLAG) & 0xff;
  buf[offset + 1] = code;
  return EXCEPTION_RESPONSE_LENGTH;
}

/**
 * Client side: decode a response PDU to `req`. An exception response throws ModbusException
 * (§7); a response that does not answer `req` (other function, byte count ≠ quantity, echo of
 * another address) throws ModbusPduError and must never be taken as the answer.
 */
export function decodeResponse(pdu: Buffer, req: ModbusRequest): ModbusResponse {
  if (pdu.length < 2) throw new ModbusPduError('pdu-too-short', `response PDU of ${pdu.length} bytes`);
  const fc = pdu[0];
  if (fc === (req.fc | EXCEPTION_FLAG)) {
    if (pdu.length !== EXCEPTION_RESPONSE_LENGTH) {
      throw new ModbusPduError('pdu-length-mismatch', `exception response of ${pdu.length} bytes`);
    }
    throw new ModbusException(pdu[1], describeException(pdu[1]));
  }
  if (fc !== req.fc) {
    throw new ModbusPduError('function-mismatch', `response function ${fc} to request function ${req.fc}`);
  }
  switch (req.fc) {
    case 1: case 2: case 3: case 4: {
      const expected = req.fc <= 2 ? byteCountOfBits(req.quantity) : 2 * req.quantity;
      if (pdu[1] !== expected) {
        throw new ModbusPduError('byte-count-mismatch', `byte count ${pdu[1]}, expected ${expected} for quantity ${req.quantity}`);
      }
      if (pdu.length !== 2 + expected) {
        throw new ModbusPduError('pdu-length-mismatch', `response of ${pdu.length} bytes with byte count ${pdu[1]}`);
      }
      return { fc: req.fc, quantity: req.quantity, data: pdu.subarray(2) };
    }
    default: {
      if (pdu.length !== 5) throw new ModbusPduError('pdu-length-mismatch', `write response of ${pdu.length} bytes`);
      const address = pdu.readUInt16BE(1);
      const word = pdu.readUInt16BE(3);
      const echoed = req.fc === 5 ? (req.value ? COIL_ON : COIL_OFF)
        : req.fc === 6 ? req.value
        : req.values.length;
      // §6.5, §6.6: the normal response is an echo of the request; §6.11, §6.12: address and quantity.
      if (address !== req.address || word !== echoed) {
        throw new ModbusPduError('echo-mismatch', `write response echoes ${address}/${word}, request was ${req.address}/${echoed}`);
      }
      if (req.fc === 5) return { fc: 5, address, value: req.value };
      if (req.fc === 6) return { fc: 6, address, value: word };
      return { fc: req.fc, address, quantity: word };
    }
  }
}
