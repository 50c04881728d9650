/**
 * OPC UA values ↔ tag batch values, with no node-opcua import (plain numbers from the spec).
 *
 * Built-in type ids: OPC 10000-6 §5.1.2 Table 1. Status code classes: OPC 10000-4 §7.39.1 (the two
 * top bits: 00 Good, 01 Uncertain, 10/11 Bad). Int64/UInt64 travel in node-opcua as [high, low]
 * 32-bit words; in a tag batch they are numbers when safe and BigInt beyond 2^53 (docs/tag-batch.md).
 */
import type { MetricDataType, MetricValue, Quality } from '../uns/tag-batch';
import { isDate } from '../values';

export const BuiltInType = {
  Boolean: 1, SByte: 2, Byte: 3, Int16: 4, UInt16: 5, Int32: 6, UInt32: 7, Int64: 8, UInt64: 9,
  Float: 10, Double: 11, String: 12, DateTime: 13, Guid: 14, ByteString: 15, XmlElement: 16, NodeId: 17,
  ExpandedNodeId: 18, StatusCode: 19, QualifiedName: 20, LocalizedText: 21, ExtensionObject: 22,
  DataValue: 23, Variant: 24, DiagnosticInfo: 25,
} as const;

const BUILT_IN_NAMES: Record<number, string> = Object.fromEntries(Object.entries(BuiltInType).map(([name, id]) => [id, name]));

export function builtInTypeName(id: number): string {
  return BUILT_IN_NAMES[id] ?? `type ${id}`;
}

/** The tag batch (Sparkplug) type of an OPC UA built-in type. */
const TAG_TYPES: Partial<Record<number, MetricDataType>> = {
  1: 'Boolean', 2: 'Int8', 3: 'UInt8', 4: 'Int16', 5: 'UInt16', 6: 'Int32', 7: 'UInt32', 8: 'Int64', 9: 'UInt64',
  10: 'Float', 11: 'Double', 12: 'String', 13: 'DateTime', 15: 'Bytes', 21: 'String', 20: 'String', 17: 'String', 14: 'String', 19: 'UInt32',
};

export function tagTypeOf(builtIn: number): MetricDataType | undefined {
  return TAG_TYPES[builtIn];
}

/** Good / Uncertain / Bad from a StatusCode value (Part 4 §7.39.1). */
export function qualityOf(statusCodeValue: number): Quality {
  const severity = statusCodeValue >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/** The parts of a node-opcua Variant read here. */
export interface VariantLike {
  dataType: number;
  arrayType?: number;
  value: unknown;
}

function int64FromWords(words: unknown, signed: boolean): number | bigint | undefined {
  if (!Array.isArray(words) || words.length !== 2 || typeof words[0] !== 'number' || typeof words[1] !== 'number') return undefined;
  const unsigned = (BigInt(words[0] >>> 0) << 32n) | BigInt(words[1] >>> 0);
  const value = signed ? BigInt.asIntN(64, unsigned) : unsigned;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

export type ConvertedValue = { ok: true; value: MetricValue; type?: MetricDataType } | { ok: false; reason: string };

/** A Variant as a tag value: scalars only (arrays and structures are not tag values). */
export function fromVariant(variant: VariantLike | undefined | null): ConvertedValue {
  if (!variant || variant.dataType === 0 || variant.value === null || variant.value === undefined) return { ok: true, value: null };
  if (variant.arrayType !== undefined && variant.arrayType !== 0) {
    return { ok: false, reason: `${builtInTypeName(variant.dataType)} array: arrays are not tag values` };
  }
  const type = tagTypeOf(variant.dataType);
  const v = variant.value;
  switch (variant.dataType) {
    case BuiltInType.Boolean: return { ok: true, value: v === true, type };
    case BuiltInType.Int64:
    case BuiltInType.UInt64: {
      const n = typeof v === 'bigint' ? v : int64FromWords(v, variant.dataType === BuiltInType.Int64);
      return n === undefined ? { ok: false, reason: 'malformed 64-bit integer' } : { ok: true, value: n, type };
    }
    case BuiltInType.Float:
    case BuiltInType.Double:
      if (typeof v !== 'number' || !Number.isFinite(v)) return { ok: false, reason: `${String(v)} has no JSON form (only finite numbers are tag values)` };
      return { ok: true, value: v, type };
    case BuiltInType.DateTime: return v instanceof Date ? { ok: true, value: v.getTime(), type } : { ok: false, reason: 'malformed DateTime' };
    case BuiltInType.ByteString: return Buffer.isBuffer(v) ? { ok: true, value: v.toString('base64'), type } : { ok: true, value: null, type };
    case BuiltInType.LocalizedText: return { ok: true, value: (v as { text?: string | null }).text ?? null, type };
    case BuiltInType.QualifiedName:
    case BuiltInType.NodeId:
    case BuiltInType.Guid: return { ok: true, value: String(v), type };
    case BuiltInType.StatusCode: return { ok: true, value: (v as { value?: number }).value ?? null, type };
    default:
      if (typeof v === 'number' || typeof v === 'string') return { ok: true, value: v, ...(type ? { type } : {}) };
      return { ok: false, reason: `${builtInTypeName(variant.dataType)} is a structure: not a tag value` };
  }
}

const INTEGER_RANGES: Partial<Record<number, [bigint, bigint]>> = {
  [BuiltInType.SByte]: [-128n, 127n], [BuiltInType.Byte]: [0n, 255n],
  [BuiltInType.Int16]: [-32768n, 32767n], [BuiltInType.UInt16]: [0n, 65535n],
  [BuiltInType.Int32]: [-2147483648n, 2147483647n], [BuiltInType.UInt32]: [0n, 4294967295n],
  [BuiltInType.Int64]: [-(2n ** 63n), 2n ** 63n - 1n], [BuiltInType.UInt64]: [0n, 2n ** 64n - 1n],
};
const FLOAT_MAX = 3.4028234663852886e38;

export interface WriteTarget {
  builtIn: number;
  /** EURange of an AnalogItem (Part 8 §5.3.2.2): writes outside it are refused before sending. */
  euRange?: { low: number; high: number };
}

export type CoercedValue = { ok: true; value: unknown; display: string } | { ok: false; problem: string };

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * A command value converted to the node's DataType (Part 3 §5.6.2 DataType attribute), with every
 * check done before anything is sent (security.md T-VAL-01/02): JavaScript type, finiteness,
 * integer range of the type, Float range, EURange. No string → number parsing: a command is a tag
 * batch, whose numbers are numbers.
 */
export function coerceForWrite(value: unknown, target: WriteTarget): CoercedValue {
  const typeName = builtInTypeName(target.builtIn);
  const refuse = (why: string): CoercedValue => ({ ok: false, problem: `${describe(value)} ${why}` });
  const inRange = (n: number): CoercedValue | undefined => {
    const r = target.euRange;
    if (r && (n < r.low || n > r.high)) return refuse(`is outside EURange ${r.low}..${r.high}`);
    return undefined;
  };
  switch (target.builtIn) {
    case BuiltInType.Boolean:
      return typeof value === 'boolean' ? { ok: true, value, display: String(value) } : refuse('is not a Boolean (true or false)');
    case BuiltInType.Float:
    case BuiltInType.Double: {
      if (typeof value !== 'number') return refuse(`is not a number (${typeName})`);
      if (!Number.isFinite(value)) return refuse(`is not finite (${typeName})`);
      if (target.builtIn === BuiltInType.Float && Math.abs(value) > FLOAT_MAX) return refuse('is outside the Float range');
      return inRange(value) ?? { ok: true, value, display: String(value) };
    }
    case BuiltInType.String:
      if (typeof value !== 'string') return refuse('is not a String');
      return value.length > 65_535 ? refuse('is longer than 65535 characters') : { ok: true, value, display: JSON.stringify(value) };
    case BuiltInType.DateTime: {
      // A Date from any realm (a function node builds it in its own): lib/values.ts isDate.
      const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : isDate(value) ? value.getTime() : NaN;
      if (!Number.isFinite(ms)) return refuse('is not a DateTime (a Date, ms since epoch or an ISO 8601 string)');
      return { ok: true, value: new Date(ms), display: new Date(ms).toISOString() };
    }
    default: {
      const range = INTEGER_RANGES[target.builtIn];
      if (!range) return refuse(`cannot be written: the node's data type ${typeName} is not supported for writes`);
      let big: bigint;
      if (typeof value === 'bigint') big = value;
      else if (typeof value === 'number' && Number.isInteger(value)) big = BigInt(value);
      else return refuse(`is not an integer (${typeName})`);
      if (big < range[0] || big > range[1]) return refuse(`is outside the ${typeName} range ${range[0]}..${range[1]}`);
      const rangeProblem = inRange(Number(big));
      if (rangeProblem) return rangeProblem;
      if (target.builtIn === BuiltInType.Int64 || target.builtIn === BuiltInType.UInt64) {
        const words = BigInt.asUintN(64, big);
        return { ok: true, value: [Number(words >> 32n), Number(words & 0xffffffffn)], display: String(big) };
      }
      return { ok: true, value: Number(big), display: String(big) };
    }
  }
}

/** AccessLevel bits (Part 3 §8.57 AccessLevelType): bit 0 CurrentRead, bit 1 CurrentWrite. */
export const ACCESS_CURRENT_READ = 0x01;
export const ACCESS_CURRENT_WRITE = 0x02;
