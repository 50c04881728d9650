/**
 * Tag batch values → OPC UA values for uns-opcua-server (no node-opcua import: plain numbers from
 * the spec, so this is shared with the PubSub JSON encoder).
 *
 * - DataType: the Sparkplug B type name of `meta.type` (docs/tag-batch.md) → OPC UA built-in type
 *   (OPC 10000-6 §5.1.2 Table 1); without a type, from the JavaScript value.
 * - StatusCode: quality → Good / Uncertain / Bad (OPC 10000-4 §7.39.1: the two top bits give the
 *   class). `bad` is BadNoCommunication unless `meta.reason` names an OPC UA Bad code (a batch from
 *   uns-opcua-subscribe carries the server's own code name there); `uncertain` likewise with
 *   Uncertain codes.
 */
import type { MetricDataType, MetricValue, Quality } from '../uns/tag-batch';
import { typedValueProblem } from '../uns/validate';
import { BuiltInType, builtInTypeName } from './values';

/** Sparkplug B 3.0 type name (§6.4.16) → OPC UA built-in type id (Part 6 §5.1.2 Table 1). */
export const BUILT_IN_OF_TAG_TYPE: Readonly<Record<MetricDataType, number>> = {
  Int8: BuiltInType.SByte, Int16: BuiltInType.Int16, Int32: BuiltInType.Int32, Int64: BuiltInType.Int64,
  UInt8: BuiltInType.Byte, UInt16: BuiltInType.UInt16, UInt32: BuiltInType.UInt32, UInt64: BuiltInType.UInt64,
  Float: BuiltInType.Float, Double: BuiltInType.Double, Boolean: BuiltInType.Boolean,
  String: BuiltInType.String, Text: BuiltInType.String, DateTime: BuiltInType.DateTime, Bytes: BuiltInType.ByteString,
};

/** The tag type whose values a built-in type holds (the inverse of BUILT_IN_OF_TAG_TYPE; String for Text). */
export const TAG_TYPE_OF_BUILT_IN: Readonly<Record<number, MetricDataType>> = Object.fromEntries(
  (Object.entries(BUILT_IN_OF_TAG_TYPE) as [MetricDataType, number][]).filter(([name]) => name !== 'Text').map(([name, id]) => [id, name]),
);

/** The type a value without `meta.type` gets: number → Double, bigint → Int64 (UInt64 above 2^63−1), boolean, string. */
export function inferredTagType(value: MetricValue): MetricDataType | undefined {
  switch (typeof value) {
    case 'number': return 'Double';
    case 'bigint': return value > 0x7fffffffffffffffn ? 'UInt64' : 'Int64';
    case 'boolean': return 'Boolean';
    case 'string': return 'String';
    default: return undefined;
  }
}

/**
 * Why `value` cannot be a value of a variable of built-in type `builtIn` (its DataType attribute,
 * Part 3 §5.6.2, is fixed once the variable exists), or undefined. A number fits a Double, Float
 * or integer type within range; null fits every type.
 */
export function builtInValueProblem(builtIn: number, value: MetricValue): string | undefined {
  const tagType = TAG_TYPE_OF_BUILT_IN[builtIn];
  if (!tagType) return `the variable's DataType ${builtInTypeName(builtIn)} takes no tag values`;
  return typedValueProblem(tagType, value);
}

/** StatusCode values (Part 6 Annex A, StatusCode.csv) used by the server. */
export const StatusCodeValue = {
  Good: 0x00000000,
  Uncertain: 0x40000000,
  BadNoCommunication: 0x80310000,
  BadTypeMismatch: 0x80740000,
} as const;

/** Status code names a `reason` may carry, as uns-opcua-subscribe writes them (StatusCode.name). */
function namedStatusCode(reason: string | undefined, lookup: (name: string) => number | undefined): number | undefined {
  const name = reason === undefined ? undefined : /^(Bad|Uncertain)[A-Za-z]+$/.exec(reason.trim())?.[0];
  return name === undefined ? undefined : lookup(name);
}

/**
 * The StatusCode of a metric from its quality and reason. `lookup` resolves a status code name
 * (node-opcua's StatusCodes table); a name of the wrong class is not used (a `bad` metric never
 * becomes Uncertain because of its reason text).
 */
export function statusCodeOf(quality: Quality | undefined, reason: string | undefined, lookup: (name: string) => number | undefined): number {
  if (quality === undefined || quality === 'good') return StatusCodeValue.Good;
  const named = namedStatusCode(reason, lookup);
  const severity = named === undefined ? -1 : named >>> 30;
  if (quality === 'uncertain') return severity === 1 ? named! : StatusCodeValue.Uncertain;
  return severity >= 2 ? named! : StatusCodeValue.BadNoCommunication;
}
