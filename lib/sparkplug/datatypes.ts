/**
 * Sparkplug B 3.0 data types (§6.4.16) and how a value of each type is carried on the wire
 * (§6.4.4 Metric value oneof, §6.4.17 array encodings), in both directions:
 *
 *   JS value ──valueProblem()/toWire()──▶ wire value in one oneof field ──fromWire()──▶ JS value
 *
 * JS side: Int8…UInt32, Float, Double → number; Int64, UInt64 → number when within ±(2^53−1),
 * else bigint (never rounded); DateTime → ms since the epoch (number); Boolean → boolean;
 * String, Text, UUID → string; Bytes, File → Uint8Array; arrays (22–34) → JS arrays of the
 * element type; DataSet, Template → objects (lib/sparkplug/payload.ts).
 *
 * Wire side (Sparkplug 3.0 §6.4.4 "value" table): Int8/16/32 and UInt8/16/32 in `int_value`
 * (uint32; negative values as 32-bit two's complement, −1 → 4294967295); Int64, UInt64 and
 * DateTime in `long_value` (uint64; Int64 as 64-bit two's complement); Float in `float_value`;
 * Double in `double_value`; Boolean in `boolean_value`; String/Text/UUID in `string_value`;
 * Bytes, File and every array type in `bytes_value`.
 */
import { isBytes, isDate } from '../values';

export const DataType = {
  Unknown: 0,
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
  PropertySet: 20,
  PropertySetList: 21,
  Int8Array: 22,
  Int16Array: 23,
  Int32Array: 24,
  Int64Array: 25,
  UInt8Array: 26,
  UInt16Array: 27,
  UInt32Array: 28,
  UInt64Array: 29,
  FloatArray: 30,
  DoubleArray: 31,
  BooleanArray: 32,
  StringArray: 33,
  DateTimeArray: 34,
} as const;

export type DataTypeName = keyof typeof DataType;

const NAMES: readonly DataTypeName[] = (() => {
  const names: DataTypeName[] = [];
  for (const name of Object.keys(DataType) as DataTypeName[]) names[DataType[name]] = name;
  return names;
})();

/** "Int64" for 4; "#99" for a number the specification does not define. */
export function dataTypeName(code: number): string {
  return NAMES[code] ?? `#${code}`;
}

/** The code of a data type name, or undefined for a name the specification does not define. */
export function dataTypeCode(name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(DataType, name) ? DataType[name as DataTypeName] : undefined;
}

/**
 * The oneof field that carries a value. The numbers are this module's own; each message maps
 * them to its field numbers (Metric 10…19, PropertyValue 3…11, DataSetValue 1…7, Parameter 3…9).
 */
export const ValueKind = {
  Int: 0,
  Long: 1,
  Float: 2,
  Double: 3,
  Boolean: 4,
  String: 5,
  Bytes: 6,
  DataSet: 7,
  Template: 8,
  PropertySet: 9,
  PropertySetList: 10,
  Extension: 11,
} as const;
export type ValueKind = (typeof ValueKind)[keyof typeof ValueKind];

const KIND_NAMES = ['int_value', 'long_value', 'float_value', 'double_value', 'boolean_value', 'string_value',
  'bytes_value', 'dataset_value', 'template_value', 'propertyset_value', 'propertysets_value', 'extension_value'];

export function valueKindName(kind: ValueKind): string {
  return KIND_NAMES[kind];
}

/** The oneof field a value of `datatype` goes in (§6.4.4), or undefined for Unknown/undefined codes. */
export function valueKindOf(datatype: number): ValueKind | undefined {
  switch (datatype) {
    case DataType.Int8: case DataType.Int16: case DataType.Int32:
    case DataType.UInt8: case DataType.UInt16: case DataType.UInt32:
      return ValueKind.Int;
    case DataType.Int64: case DataType.UInt64: case DataType.DateTime:
      return ValueKind.Long;
    case DataType.Float: return ValueKind.Float;
    case DataType.Double: return ValueKind.Double;
    case DataType.Boolean: return ValueKind.Boolean;
    case DataType.String: case DataType.Text: case DataType.UUID:
      return ValueKind.String;
    case DataType.DataSet: return ValueKind.DataSet;
    case DataType.Template: return ValueKind.Template;
    case DataType.PropertySet: return ValueKind.PropertySet;
    case DataType.PropertySetList: return ValueKind.PropertySetList;
    case DataType.Bytes: case DataType.File:
      return ValueKind.Bytes;
    default:
      return isArrayType(datatype) ? ValueKind.Bytes : undefined;
  }
}

export function isArrayType(datatype: number): boolean {
  return datatype >= DataType.Int8Array && datatype <= DataType.DateTimeArray;
}

/** The basic types 1…14 (§6.4.16), the only ones allowed in DataSet columns and Template parameters. */
export function isBasicType(datatype: number): boolean {
  return datatype >= DataType.Int8 && datatype <= DataType.Text;
}

/** A 64-bit unsigned integer as read from the wire: a number when ≤ 2^53−1, else a bigint. */
export type Uint64 = number | bigint;
export type ScalarValue = number | bigint | boolean | string;
export type ArrayValue = readonly (number | bigint)[] | readonly boolean[] | readonly string[];

/** A value in one oneof field, as on the wire (int_value: uint32, long_value: Uint64, …). */
export type WireScalar = number | bigint | boolean | string | Uint8Array;

const TWO_32 = 4294967296;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const FLOAT_MAX = 3.4028234663852886e38;

interface IntRange {
  bits: 8 | 16 | 32;
  signed: boolean;
  min: number;
  max: number;
}
const INT_RANGES: Record<number, IntRange> = {
  [DataType.Int8]: { bits: 8, signed: true, min: -128, max: 127 },
  [DataType.Int16]: { bits: 16, signed: true, min: -32768, max: 32767 },
  [DataType.Int32]: { bits: 32, signed: true, min: -2147483648, max: 2147483647 },
  [DataType.UInt8]: { bits: 8, signed: false, min: 0, max: 255 },
  [DataType.UInt16]: { bits: 16, signed: false, min: 0, max: 65535 },
  [DataType.UInt32]: { bits: 32, signed: false, min: 0, max: 4294967295 },
};

/** A bigint within ±(2^53−1) as a number, else unchanged: how 64-bit values appear in JS here. */
export function narrow(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `"${value.length > 30 ? `${value.slice(0, 30)}…` : value}"`;
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  if (isBytes(value)) return 'bytes';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function integerProblem(value: unknown, min: bigint, max: bigint): string | undefined {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return `${describe(value)} is not an integer`;
    if (value < Number(min) || value > Number(max)) return `${describe(value)} is out of range ${min}…${max}`;
    return undefined;
  }
  if (typeof value === 'bigint') return value < min || value > max ? `${describe(value)} is out of range ${min}…${max}` : undefined;
  return `${describe(value)} is not an integer`;
}

const ELEMENT_TYPE: Record<number, number> = {
  [DataType.Int8Array]: DataType.Int8,
  [DataType.Int16Array]: DataType.Int16,
  [DataType.Int32Array]: DataType.Int32,
  [DataType.Int64Array]: DataType.Int64,
  [DataType.UInt8Array]: DataType.UInt8,
  [DataType.UInt16Array]: DataType.UInt16,
  [DataType.UInt32Array]: DataType.UInt32,
  [DataType.UInt64Array]: DataType.UInt64,
  [DataType.FloatArray]: DataType.Float,
  [DataType.DoubleArray]: DataType.Double,
  [DataType.BooleanArray]: DataType.Boolean,
  [DataType.StringArray]: DataType.String,
  [DataType.DateTimeArray]: DataType.DateTime,
};

/**
 * Why `value` cannot be sent as `datatype`, or undefined when it can. Covers the scalar and
 * array types; DataSet and Template values are checked by the payload encoder.
 */
export function valueProblem(datatype: number, value: unknown): string | undefined {
  const range = INT_RANGES[datatype];
  if (range !== undefined) {
    // Every polled register value takes this path: no bigint bounds made for a number that fits.
    if (typeof value === 'number' && Number.isInteger(value) && value >= range.min && value <= range.max) return undefined;
    return integerProblem(value, BigInt(range.min), BigInt(range.max));
  }
  switch (datatype) {
    case DataType.Int64: return integerProblem(value, INT64_MIN, INT64_MAX);
    case DataType.UInt64: return integerProblem(value, 0n, UINT64_MAX);
    case DataType.DateTime:
      if (isDate(value)) return Number.isNaN(value.getTime()) ? 'is an invalid Date' : undefined;
      return integerProblem(value, 0n, UINT64_MAX);
    case DataType.Float:
      if (typeof value !== 'number') return `${describe(value)} is not a number`;
      return Number.isFinite(value) && Math.abs(value) <= FLOAT_MAX ? undefined : `${describe(value)} does not fit a 32-bit float`;
    case DataType.Double:
      if (typeof value !== 'number') return `${describe(value)} is not a number`;
      return Number.isFinite(value) ? undefined : `${describe(value)} is not finite`;
    case DataType.Boolean:
      return typeof value === 'boolean' ? undefined : `${describe(value)} is not a boolean`;
    case DataType.String: case DataType.Text: case DataType.UUID:
      return typeof value === 'string' ? undefined : `${describe(value)} is not a string`;
    case DataType.Bytes: case DataType.File:
      return isBytes(value) ? undefined : `${describe(value)} is not bytes (Uint8Array)`;
    case DataType.DataSet: case DataType.Template:
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : `${describe(value)} is not a ${dataTypeName(datatype)}`;
    default: {
      const element = ELEMENT_TYPE[datatype];
      if (element === undefined) return `data type ${dataTypeName(datatype)} cannot carry a metric value`;
      if (!Array.isArray(value)) return `${describe(value)} is not an array`;
      for (let i = 0; i < value.length; i++) {
        const problem = valueProblem(element, value[i]);
        if (problem !== undefined) return `element ${i}: ${problem}`;
      }
      return undefined;
    }
  }
}

/** The unsigned 64-bit wire form of an Int64/UInt64/DateTime value (two's complement for negatives). */
export function toUint64(value: number | bigint | Date): Uint64 {
  if (isDate(value)) return value.getTime();
  if (typeof value === 'bigint') return value < 0n ? BigInt.asUintN(64, value) : narrow(value);
  return value < 0 ? BigInt.asUintN(64, BigInt(value)) : value;
}

/** The wire form of a basic-type value (types 1…14): uint32 for int_value, Uint64 for long_value, … */
export function toWireScalar(datatype: number, value: ScalarValue | Date): WireScalar {
  switch (valueKindOf(datatype)) {
    case ValueKind.Int: return Number(value) >>> 0; // −1 → 4294967295 (§6.4.4)
    case ValueKind.Long: return toUint64(typeof value === 'bigint' || typeof value === 'number' || isDate(value) ? value : 0);
    default: return value as WireScalar;
  }
}

/** Thrown when a wire value does not fit the data type it is read as. */
export class SparkplugValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SparkplugValueError';
    Object.setPrototypeOf(this, SparkplugValueError.prototype);
  }
}

function wireMismatch(datatype: number, kind: ValueKind | undefined): SparkplugValueError {
  const carried = kind === undefined ? 'no value' : valueKindName(kind);
  return new SparkplugValueError(`a ${dataTypeName(datatype)} value cannot be read from ${carried}`);
}

/**
 * A basic-type (1…14) or Bytes/File value from its wire form. Integers are range-checked:
 * Int8/16 accept both the 32-bit two's complement the specification asks for (−1 as 4294967295)
 * and the N-bit form older peers send (−1 as 255); anything else out of range is an error, never
 * silently wrapped. UInt32 is also read from long_value, where sparkplug-payload ≤ 1.0.3 puts it.
 */
export function fromWireScalar(datatype: number, kind: ValueKind | undefined, wire: WireScalar | undefined): ScalarValue | Uint8Array {
  const range = INT_RANGES[datatype];
  if (range !== undefined) {
    let raw: number;
    if (kind === ValueKind.Int && typeof wire === 'number') raw = wire;
    else if (kind === ValueKind.Long && datatype === DataType.UInt32 && wire !== undefined && typeof wire !== 'object') raw = Number(wire);
    else throw wireMismatch(datatype, kind);
    if (!range.signed) {
      if (raw > range.max) throw new SparkplugValueError(`${raw} is out of range for ${dataTypeName(datatype)}`);
      return raw;
    }
    const span = 2 ** range.bits;
    if (raw <= range.max) return raw; // non-negative
    if (raw < span) return raw - span; // N-bit two's complement
    if (raw >= TWO_32 + range.min) return raw - TWO_32; // 32-bit two's complement
    throw new SparkplugValueError(`${raw} is out of range for ${dataTypeName(datatype)}`);
  }
  switch (datatype) {
    case DataType.Int64:
      if (kind !== ValueKind.Long) throw wireMismatch(datatype, kind);
      return typeof wire === 'bigint' ? narrow(BigInt.asIntN(64, wire)) : wire as number;
    case DataType.UInt64:
    case DataType.DateTime:
      if (kind !== ValueKind.Long) throw wireMismatch(datatype, kind);
      return wire as Uint64;
    case DataType.Float:
      if (kind !== ValueKind.Float) throw wireMismatch(datatype, kind);
      return wire as number;
    case DataType.Double:
      // A float widens to a double without loss.
      if (kind !== ValueKind.Double && kind !== ValueKind.Float) throw wireMismatch(datatype, kind);
      return wire as number;
    case DataType.Boolean:
      if (kind !== ValueKind.Boolean) throw wireMismatch(datatype, kind);
      return wire as boolean;
    case DataType.String: case DataType.Text: case DataType.UUID:
      if (kind !== ValueKind.String) throw wireMismatch(datatype, kind);
      return wire as string;
    case DataType.Bytes: case DataType.File:
      if (kind !== ValueKind.Bytes) throw wireMismatch(datatype, kind);
      return wire as Uint8Array;
    default:
      throw new SparkplugValueError(`${dataTypeName(datatype)} is not a basic data type`);
  }
}

// ---- arrays (§6.4.17): packed little-endian in bytes_value ----

const ELEMENT_BYTES: Record<number, number> = {
  [DataType.Int8Array]: 1, [DataType.UInt8Array]: 1,
  [DataType.Int16Array]: 2, [DataType.UInt16Array]: 2,
  [DataType.Int32Array]: 4, [DataType.UInt32Array]: 4, [DataType.FloatArray]: 4,
  [DataType.Int64Array]: 8, [DataType.UInt64Array]: 8, [DataType.DoubleArray]: 8, [DataType.DateTimeArray]: 8,
};

/**
 * The bytes_value of an array. Numbers are little-endian (the specification's prose; its
 * Float/Double examples show big-endian by mistake, sparkplug issue #435). BooleanArray is a
 * 4-byte little-endian count followed by the bits, most significant bit of each byte first.
 * StringArray is the UTF-8 strings, each followed by a NUL byte. Call valueProblem() first.
 */
export function packArray(datatype: number, values: ArrayValue): Buffer {
  if (datatype === DataType.BooleanArray) {
    const bits = values as readonly boolean[];
    const out = Buffer.alloc(4 + Math.ceil(bits.length / 8));
    out.writeUInt32LE(bits.length, 0);
    for (let i = 0; i < bits.length; i++) if (bits[i]) out[4 + (i >> 3)] |= 0x80 >> (i & 7);
    return out;
  }
  if (datatype === DataType.StringArray) {
    return Buffer.concat((values as readonly string[]).flatMap((s) => [Buffer.from(s, 'utf8'), Buffer.alloc(1)]));
  }
  const size = ELEMENT_BYTES[datatype];
  const out = Buffer.alloc(values.length * size);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number | bigint;
    const at = i * size;
    switch (datatype) {
      case DataType.Int8Array: out.writeInt8(Number(v), at); break;
      case DataType.UInt8Array: out.writeUInt8(Number(v), at); break;
      case DataType.Int16Array: out.writeInt16LE(Number(v), at); break;
      case DataType.UInt16Array: out.writeUInt16LE(Number(v), at); break;
      case DataType.Int32Array: out.writeInt32LE(Number(v), at); break;
      case DataType.UInt32Array: out.writeUInt32LE(Number(v), at); break;
      case DataType.FloatArray: out.writeFloatLE(Number(v), at); break;
      case DataType.DoubleArray: out.writeDoubleLE(Number(v), at); break;
      case DataType.Int64Array: out.writeBigInt64LE(BigInt(v), at); break;
      default: out.writeBigUInt64LE(BigInt(v), at); break; // UInt64Array, DateTimeArray
    }
  }
  return out;
}

/** An array from its bytes_value; throws SparkplugValueError when the bytes do not fit the type. */
export function unpackArray(datatype: number, bytes: Uint8Array): ArrayValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (datatype === DataType.BooleanArray) {
    if (buf.length < 4) throw new SparkplugValueError('BooleanArray shorter than its 4-byte count');
    const count = buf.readUInt32LE(0);
    if (buf.length - 4 < Math.ceil(count / 8)) throw new SparkplugValueError(`BooleanArray of ${count} values has only ${buf.length - 4} bytes of bits`);
    const out: boolean[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = (buf[4 + (i >> 3)] & (0x80 >> (i & 7))) !== 0;
    return out;
  }
  if (datatype === DataType.StringArray) {
    if (buf.length === 0) return [];
    if (buf[buf.length - 1] !== 0) throw new SparkplugValueError('StringArray does not end with a NUL byte');
    return buf.toString('utf8', 0, buf.length - 1).split('\u0000');
  }
  const size = ELEMENT_BYTES[datatype];
  if (size === undefined) throw new SparkplugValueError(`${dataTypeName(datatype)} is not an array type`);
  if (buf.length % size !== 0) throw new SparkplugValueError(`${dataTypeName(datatype)} of ${buf.length} bytes is not a whole number of ${size}-byte elements`);
  const out: (number | bigint)[] = new Array(buf.length / size);
  for (let i = 0; i < out.length; i++) {
    const at = i * size;
    switch (datatype) {
      case DataType.Int8Array: out[i] = buf.readInt8(at); break;
      case DataType.UInt8Array: out[i] = buf.readUInt8(at); break;
      case DataType.Int16Array: out[i] = buf.readInt16LE(at); break;
      case DataType.UInt16Array: out[i] = buf.readUInt16LE(at); break;
      case DataType.Int32Array: out[i] = buf.readInt32LE(at); break;
      case DataType.UInt32Array: out[i] = buf.readUInt32LE(at); break;
      case DataType.FloatArray: out[i] = buf.readFloatLE(at); break;
      case DataType.DoubleArray: out[i] = buf.readDoubleLE(at); break;
      case DataType.Int64Array: out[i] = narrow(buf.readBigInt64LE(at)); break;
      default: out[i] = narrow(buf.readBigUInt64LE(at)); break; // UInt64Array, DateTimeArray
    }
  }
  return out;
}
