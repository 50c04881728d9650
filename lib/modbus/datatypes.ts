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
      // Registers carry one byte per character (Latin-1); anything else would be silently mangled.
      if (/[^\u0000-\u00ff]/.test(value)) throw new ModbusValueError(`"${value}" has characters outside Latin-1`);
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
// Exact decimal arithmetic for scaling
//
// A scale such as 0.01 has no exact binary form, so `378 * 0.01` gives 3.7800000000000002 in
// IEEE 754 doubles. Users write scales and offsets as decimals and expect decimal results, so the
// linear maps below compute on decimals: every operand is m / 10^e with m a safe integer (taken from
// the shortest round-trip string of the double, ECMA-262 Number::toString), the products and sums
// are exact integer operations, and the one final division m / 10^e of two exactly representable
// numbers (10^e is exact up to e = 22) is correctly rounded. The result is therefore the double
// nearest to the exact decimal result: 378 × 0.01 → 3.78, 259 × 0.1 → 25.9. When an intermediate
// would leave the safe-integer range the ordinary double expression is used instead (its error is
// then far below the precision of any 16- or 32-bit register).

/** x = m / 10^e with m a safe integer and 0 ≤ e ≤ 22. */
interface Decimal {
  readonly m: number;
  readonly e: number;
}

/** Largest e with 10^e exactly representable as a double. */
const MAX_EXACT_POWER = 22;
const POWERS_OF_TEN: readonly number[] = Array.from({ length: MAX_EXACT_POWER + 1 }, (_, i) => 10 ** i);
const DECIMAL_FORM = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/;

/** The decimal form of a finite double, or undefined when it has none within the safe range. */
function decimalOf(x: number): Decimal | undefined {
  if (Number.isSafeInteger(x)) return { m: x, e: 0 };
  if (!Number.isFinite(x) || Number.isInteger(x)) return undefined; // huge integers: leave to doubles
  const form = DECIMAL_FORM.exec(String(x));
  if (!form) return undefined;
  const fraction = form[3] ?? '';
  const e = fraction.length - Number(form[4] ?? 0);
  const m = Number(form[1] + form[2] + fraction);
  if (e < 0 || e > MAX_EXACT_POWER || !Number.isSafeInteger(m)) return undefined;
  return { m, e };
}

/** m × 10^shift if it stays a safe integer, else NaN (which fails every later isSafeInteger check). */
function shifted(m: number, shift: number): number {
  const v = m * POWERS_OF_TEN[shift];
  return Number.isSafeInteger(v) ? v : NaN;
}

/**
 * The linear map x ↦ x × factor + addend on decimals (see above), and its inverse. The decimal
 * forms of factor and addend are found once; an integer x (every integer register) needs no
 * string work, so the exact path costs a few integer operations per value.
 */
export class LinearMap {
  private readonly f: Decimal | undefined;
  private readonly a: Decimal | undefined;
  /** −addend, for the inverse. */
  private readonly negA: Decimal | undefined;

  constructor(readonly factor: number, readonly addend: number) {
    this.f = decimalOf(factor);
    this.a = decimalOf(addend);
    this.negA = decimalOf(-addend);
  }

  /** x × factor + addend. */
  apply(x: number): number {
    const exact = this.f && this.a ? exactMultiplyAdd(x, this.f, this.a) : undefined;
    return exact ?? x * this.factor + this.addend;
  }

  /** (y − addend) / factor. */
  invert(y: number): number {
    const f = this.f;
    const a = this.negA;
    const d = decimalOf(y);
    if (f && a && d) {
      const e = Math.max(d.e, a.e);
      const m = shifted(d.m, e - d.e) + shifted(a.m, e - a.e);
      // (m / 10^e) / (mf / 10^ef) = (m · 10^ef) / (mf · 10^e): one correctly rounded division.
      const numerator = shifted(m, f.e);
      const denominator = shifted(f.m, e);
      if (Number.isSafeInteger(numerator) && Number.isSafeInteger(denominator)) return numerator / denominator;
    }
    return (y - this.addend) / this.factor;
  }
}

function exactMultiplyAdd(x: number, f: Decimal, a: Decimal): number | undefined {
  let productM: number;
  let productE: number;
  if (Number.isSafeInteger(x)) {
    // every integer register: no allocation, no string work
    productM = x * f.m;
    productE = f.e;
  } else {
    const d = decimalOf(x);
    if (!d) return undefined;
    productM = d.m * f.m;
    productE = d.e + f.e;
  }
  if (!Number.isSafeInteger(productM) || productE > MAX_EXACT_POWER) return undefined;
  const e = Math.max(productE, a.e);
  const m = shifted(productM, e - productE) + shifted(a.m, e - a.e);
  return Number.isSafeInteger(m) ? m / POWERS_OF_TEN[e] : undefined;
}

/** raw × scale + offset without binary float noise: 378 × 0.01 = 3.78, 259 × 0.1 = 25.9. */
export function scaleLinear(raw: number, scale = 1, offset = 0): number {
  return new LinearMap(scale, offset).apply(raw);
}

/** (value − offset) / scale, the inverse of scaleLinear: 3.78 / 0.01 = 378. */
export function unscaleLinear(value: number, scale = 1, offset = 0): number {
  return new LinearMap(scale, offset).invert(value);
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

/** The live-zero loop: 4 mA is the lower and 20 mA the upper range value. */
const LOOP_ZERO_MA = 4;
const LOOP_SPAN_MA = 16;

export function isScaled(s: Scaling): boolean {
  return (s.scale !== undefined && s.scale !== 1) || (s.offset !== undefined && s.offset !== 0) || s.signal === '4-20mA';
}

/** A Scaling prepared once per metric: both directions, exact to the decimals of its numbers. */
export interface CompiledScaling {
  /** Raw register value → engineering value with quality (NAMUR NE43 for 4–20 mA). */
  scale(raw: RawValue): ScaledValue;
  /**
   * Engineering value → raw register value, before type encoding (integer rounding is the
   * caller's: it knows the type). A 4–20 mA output takes values within euMin..euMax only: a
   * setpoint cannot ask the loop for less than 4 or more than 20 mA.
   */
  unscale(value: number): number;
}

/**
 * Prepare `s` for many values. Booleans and strings pass through scale(). A BigInt is scaled as
 * a number (precision beyond 2^53 is lost only when scaling is asked for).
 * 4–20 mA quality per NAMUR NE43: below 3.6 or above 21 mA → bad (failure signal, value null;
 * exactly 3.6 / 21 mA count as a live but saturated signal); 3.6..3.8 or 20.5..21 mA → uncertain
 * (outside the measurement range 3.8..20.5 mA); otherwise good.
 */
export function compileScaling(s: Scaling): CompiledScaling {
  const toLinear = new LinearMap(s.scale ?? 1, s.offset ?? 0);
  if (s.signal !== '4-20mA') {
    const scaled = isScaled(s);
    return {
      scale: (raw) => ({
        value: !scaled || typeof raw === 'boolean' || typeof raw === 'string' ? raw : toLinear.apply(Number(raw)),
        quality: 'good',
      }),
      unscale: (value) => toLinear.invert(value),
    };
  }
  const euMin = s.euMin ?? 0;
  const euMax = s.euMax ?? 100;
  // EU = euMin + (mA − 4) × (euMax − euMin) / 16 = mA × perMilliamp + (euMin − 4 × perMilliamp).
  const perMilliamp = new LinearMap(1 / LOOP_SPAN_MA, 0).apply(new LinearMap(1, -euMin).apply(euMax));
  const toEngineering = new LinearMap(perMilliamp, new LinearMap(-LOOP_ZERO_MA, euMin).apply(perMilliamp));
  return {
    scale(raw) {
      if (typeof raw === 'boolean' || typeof raw === 'string') return { value: raw, quality: 'good' };
      const mA = toLinear.apply(Number(raw));
      if (!(mA >= NE43.failureLow && mA <= NE43.failureHigh)) {
        return {
          value: null,
          quality: 'bad',
          reason: `NAMUR NE43 failure signal ${round3(mA)} mA (${mA < NE43.failureLow ? '< 3.6' : '> 21'} mA)`,
        };
      }
      const value = toEngineering.apply(mA);
      if (mA < NE43.measureLow || mA > NE43.measureHigh) {
        return { value, quality: 'uncertain', reason: `NAMUR NE43 signal ${round3(mA)} mA outside the measurement range 3.8..20.5 mA` };
      }
      return { value, quality: 'good' };
    },
    unscale(value) {
      if (!(value >= Math.min(euMin, euMax) && value <= Math.max(euMin, euMax))) {
        throw new ModbusValueError(`${value} is outside the 4–20 mA range ${euMin}..${euMax}`);
      }
      return toLinear.invert(toEngineering.invert(value));
    },
  };
}

/** compileScaling(s).scale(raw), for single values (a read plan compiles once per metric). */
export function applyScaling(raw: RawValue, s: Scaling): ScaledValue {
  return compileScaling(s).scale(raw);
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
