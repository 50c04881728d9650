/**
 * Typed values in Modbus registers, their word and byte order, linear scaling and 4–20 mA
 * scaling with NAMUR NE43 signal checks.
 *
 * Modbus Application Protocol v1.1b3 §4.2 fixes only that one register is sent big-endian; how a
 * device spreads a 32- or 64-bit value over several registers is vendor practice. The four orders,
 * named by where bytes A (most significant) … D land on the wire:
 *   ABCD  registers high word first, bytes high first (big-endian; Modicon/Schneider "standard")
 *   CDAB  registers low word first, bytes high first ("word swap", many drives and meters)
 *   BADC  registers high word first, bytes low first ("byte swap")
 *   DCBA  registers low word first, bytes low first (little-endian)
 * For 64-bit values the same rule applies to four registers; for 16-bit values only the byte
 * order matters (BADC and DCBA swap the two bytes); for strings (two characters per register)
 * BADC/DCBA swap the characters of each register.
 *
 * Decoding reads straight from the response buffer through one reused scratch buffer: no
 * per-value allocation for numbers.
 */
import { MetricDataType, Quality } from '../uns/tag-batch';

export const MODBUS_DATA_TYPES = [
  'bit', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string',
] as const;
export type ModbusDataType = typeof MODBUS_DATA_TYPES[number];

export const WORD_ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const;
export type WordOrder = typeof WORD_ORDERS[number];

export type RawValue = number | bigint | boolean | string;

/** Registers a value of this type occupies (`length` applies to strings only). */
export function registerCount(type: ModbusDataType, length = 1): number {
  switch (type) {
    case 'bit': case 'int16': case 'uint16': return 1;
    case 'int32': case 'uint32': case 'float32': return 2;
    case 'int64': case 'uint64': case 'float64': return 4;
    case 'string': return length;
  }
}

/** The Sparkplug B data type (tag-batch meta.type) of a decoded, unscaled value. */
export function sparkplugTypeOf(type: ModbusDataType, scaled: boolean): MetricDataType {
  if (scaled && type !== 'bit' && type !== 'string') return 'Double';
  switch (type) {
    case 'bit': return 'Boolean';
    case 'int16': return 'Int16';
    case 'uint16': return 'UInt16';
    case 'int32': return 'Int32';
    case 'uint32': return 'UInt32';
    case 'int64': return 'Int64';
    case 'uint64': return 'UInt64';
    case 'float32': return 'Float';
    case 'float64': return 'Double';
    case 'string': return 'String';
  }
}

const scratch = Buffer.alloc(8);

function isWordReversed(order: WordOrder): boolean {
  return order === 'CDAB' || order === 'DCBA';
}
function isByteSwapped(order: WordOrder): boolean {
  return order === 'BADC' || order === 'DCBA';
}

/**
 * Copy `registers` registers at `data[2*offset]` into `scratch` in big-endian (ABCD) order.
 * Canonical byte i comes from wire word w' = reversed ? n−1−w : w, byte b' = swapped ? 1−b : b.
 */
function gather(data: Buffer, offset: number, registers: number, order: WordOrder): Buffer {
  const reversed = isWordReversed(order);
  const swapped = isByteSwapped(order);
  const base = 2 * offset;
  for (let i = 0; i < 2 * registers; i++) {
    const w = i >> 1;
    const word = reversed ? registers - 1 - w : w;
    const byte = swapped ? 1 - (i & 1) : i & 1;
    scratch[i] = data[base + 2 * word + byte];
  }
  return scratch;
}

/** Inverse of gather(): spread the ABCD bytes in `scratch` over `out` registers in `order`. */
function scatter(registers: number, order: WordOrder, out: number[]): number[] {
  const reversed = isWordReversed(order);
  const swapped = isByteSwapped(order);
  for (let w = 0; w < registers; w++) {
    const src = reversed ? registers - 1 - w : w;
    const hi = scratch[2 * src];
    const lo = scratch[2 * src + 1];
    out[w] = swapped ? (lo << 8) | hi : (hi << 8) | lo;
  }
  return out;
}

/** A BigInt within ±(2^53−1) becomes a number; beyond, it stays a BigInt so no precision is lost. */
function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Decode one value from read-registers response data (`data`, big-endian registers as on the
 * wire) at register `offset`. `bit` selects a bit (0 = LSB) of one register for type 'bit';
 * `length` is the register count of a string (trailing NULs are trimmed).
 */
export function decodeRegisters(
  data: Buffer, offset: number, type: ModbusDataType, order: WordOrder = 'ABCD', length = 1, bit = 0,
): RawValue {
  switch (type) {
    case 'bit': {
      const word = (data[2 * offset] << 8) | data[2 * offset + 1];
      return ((word >>> bit) & 1) === 1;
    }
    case 'int16': case 'uint16': {
      const b = gather(data, offset, 1, order);
      return type === 'int16' ? b.readInt16BE(0) : b.readUInt16BE(0);
    }
    case 'int32': return gather(data, offset, 2, order).readInt32BE(0);
    case 'uint32': return gather(data, offset, 2, order).readUInt32BE(0);
    case 'float32': return gather(data, offset, 2, order).readFloatBE(0);
    case 'int64': return narrow(gather(data, offset, 4, order).readBigInt64BE(0));
    case 'uint64': return narrow(gather(data, offset, 4, order).readBigUInt64BE(0));
    case 'float64': return gather(data, offset, 4, order).readDoubleBE(0);
    case 'string': {
      const chars: number[] = [];
      const swapped = isByteSwapped(order);
      for (let r = 0; r < length; r++) {
        const hi = data[2 * (offset + r)];
        const lo = data[2 * (offset + r) + 1];
        chars.push(swapped ? lo : hi, swapped ? hi : lo);
      }
      let end = chars.length;
      while (end > 0 && chars[end - 1] === 0) end--;
      return Buffer.from(chars.slice(0, end)).toString('latin1');
    }
  }
}

export class ModbusValueError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'ModbusValueError';
    Object.setPrototypeOf(this, ModbusValueError.prototype);
  }
}

function integerIn(value: RawValue, min: bigint, max: bigint, type: string): bigint {
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isInteger(value)) big = BigInt(value);
  else throw new ModbusValueError(`${type} needs an integer, got ${typeof value} ${String(value)}`);
  if (big < min || big > max) throw new ModbusValueError(`${String(value)} is out of range for ${type} (${min}..${max})`);
  return big;
}

function finiteNumber(value: RawValue, type: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModbusValueError(`${type} needs a finite number, got ${typeof value} ${String(value)}`);
  }
  return value;
}

/**
 * Encode a value to registers (uint16 each) in `order`. Rejects values that do not fit the type
 * (security.md T-VAL-01/02): no silent wrap, truncation or NaN.
 */
export function encodeRegisters(value: RawValue, type: ModbusDataType, order: WordOrder = 'ABCD', length = 1): number[] {
  switch (type) {
    case 'bit':
      if (typeof value !== 'boolean' && value !== 0 && value !== 1) throw new ModbusValueError(`bit needs true/false/0/1, got ${String(value)}`);
      return [value === true || value === 1 ? 1 : 0];
    case 'int16':
      scratch.writeInt16BE(Number(integerIn(value, -0x8000n, 0x7fffn, type)), 0);
      return scatter(1, order, new Array<number>(1));
    case 'uint16':
      scratch.writeUInt16BE(Number(integerIn(value, 0n, 0xffffn, type)), 0);
      return scatter(1, order, new Array<number>(1));
    case 'int32':
      scratch.writeInt32BE(Number(integerIn(value, -0x80000000n, 0x7fffffffn, type)), 0);
      return scatter(2, order, new Array<number>(2));
    case 'uint32':
      scratch.writeUInt32BE(Number(integerIn(value, 0n, 0xffffffffn, type)), 0);
      return scatter(2, order, new Array<number>(2));
    case 'float32': {
      const v = finiteNumber(value, type);
      if (Math.abs(v) > 3.4028234663852886e38) throw new ModbusValueError(`${v} is out of range for float32`);
      scratch.writeFloatBE(v, 0);
      return scatter(2, order, new Array<number>(2));
    }
    case 'int64':
      scratch.writeBigInt64BE(integerIn(value, -(2n ** 63n), 2n ** 63n - 1n, type), 0);
      return scatter(4, order, new Array<number>(4));
    case 'uint64':
      scratch.writeBigUInt64BE(integerIn(value, 0n, 2n ** 64n - 1n, type), 0);
      return scatter(4, order, new Array<number>(4));
    case 'float64':
      scratch.writeDoubleBE(finiteNumber(value, type), 0);
      return scatter(4, order, new Array<number>(4));
    case 'string': {
      if (typeof value !== 'string') throw new ModbusValueError(`string needs a string, got ${typeof value}`);
      const bytes = Buffer.from(value, 'latin1');
      if (bytes.length > 2 * length) throw new ModbusValueError(`"${value}" does not fit ${length} registers`);
      const swapped = isByteSwapped(order);
      const out = new Array<number>(length);
      for (let r = 0; r < length; r++) {
        const hi = bytes[2 * r] ?? 0;
        const lo = bytes[2 * r + 1] ?? 0;
        out[r] = swapped ? (lo << 8) | hi : (hi << 8) | lo;
      }
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scaling

export interface Scaling {
  /** engineering = raw × scale + offset (default 1 and 0). */
  scale?: number;
  offset?: number;
  /**
   * '4-20mA': after scale/offset the value is a loop current in mA, mapped linearly from
   * 4..20 mA to euMin..euMax, with NAMUR NE43 signal checks.
   */
  signal?: '4-20mA';
  euMin?: number;
  euMax?: number;
}

export interface ScaledValue {
  value: RawValue | null;
  quality: Quality;
  reason?: string;
}

/** NAMUR NE43 (2003) limits of a 4–20 mA signal, mA. */
export const NE43 = {
  failureLow: 3.6, // below 3.6 mA: failure signal (sensor/loop fault)
  measureLow: 3.8, // 3.8 mA: lower end of the measurement range (under-range below 4 mA)
  measureHigh: 20.5, // 20.5 mA: upper end of the measurement range (over-range above 20 mA)
  failureHigh: 21, // above 21 mA: failure signal
} as const;

export function isScaled(s: Scaling): boolean {
  return (s.scale !== undefined && s.scale !== 1) || (s.offset !== undefined && s.offset !== 0) || s.signal === '4-20mA';
}

/**
 * Apply linear scaling and 4–20 mA conversion. Booleans and strings pass through. A BigInt is
 * scaled as a number (precision beyond 2^53 is lost only when scaling is asked for).
 * 4–20 mA quality per NAMUR NE43: below 3.6 or above 21 mA → bad (failure signal, value null;
 * exactly 3.6 / 21 mA count as a live but saturated signal); 3.6..3.8 or 20.5..21 mA → uncertain
 * (outside the measurement range 3.8..20.5 mA); otherwise good.
 */
export function applyScaling(raw: RawValue, s: Scaling): ScaledValue {
  if (typeof raw === 'boolean' || typeof raw === 'string' || !isScaled(s)) return { value: raw, quality: 'good' };
  const linear = Number(raw) * (s.scale ?? 1) + (s.offset ?? 0);
  if (s.signal !== '4-20mA') return { value: linear, quality: 'good' };
  const mA = linear;
  if (!(mA >= NE43.failureLow && mA <= NE43.failureHigh)) {
    return {
      value: null,
      quality: 'bad',
      reason: `NAMUR NE43 failure signal ${round3(mA)} mA (${mA < NE43.failureLow ? '< 3.6' : '> 21'} mA)`,
    };
  }
  const euMin = s.euMin ?? 0;
  const euMax = s.euMax ?? 100;
  const value = euMin + ((mA - 4) / 16) * (euMax - euMin);
  if (mA < NE43.measureLow || mA > NE43.measureHigh) {
    return { value, quality: 'uncertain', reason: `NAMUR NE43 signal ${round3(mA)} mA outside the measurement range 3.8..20.5 mA` };
  }
  return { value, quality: 'good' };
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
