/**
 * The UNS payloads on MQTT (docs/uns-topics.md).
 *
 * Per-metric topic payload, one JSON object:
 *   {"value":12.5,"timestamp":1718000000000,"quality":"good","unit":"A"}
 * plus "type" and "reason" when the tag batch carries them. Asset-level JSON topic payload:
 *   {"timestamp":1718000000000,"metrics":{"Current":{...per-metric object...},"Speed":{...}}}
 *
 * Encoding builds the JSON text by concatenation (no intermediate object, no JSON.stringify of
 * the whole thing): this runs once per metric on the publish hot path. BigInt values are written as
 * exact integer literals; decoding reads them back exactly (lib/uns/json-exact.ts).
 */
import { parseJsonExact } from './json-exact';
import type { MetricMeta, MetricValue, Quality } from './tag-batch';
import { metricValueProblem } from './validate';
import { isPlainObject } from '../values';

/** JSON text of a metric value. Callers have validated it (finite number, bigint, boolean, string, null). */
export function jsonValue(value: MetricValue): string {
  switch (typeof value) {
    case 'number': return '' + value;
    case 'bigint': return value.toString();
    case 'boolean': return value ? 'true' : 'false';
    case 'string': return JSON.stringify(value);
    default: return 'null';
  }
}

/** The per-metric payload. `quality` is the metric's quality or the sink's default ("good"). */
export function encodeMetricPayload(value: MetricValue, timestamp: number, quality: Quality, meta: MetricMeta | undefined): string {
  return encodeMetricPayloadWithTail(value, timestamp, metricPayloadTail(quality, meta));
}

/** The per-metric payload from a tail metricPayloadTail made. */
export function encodeMetricPayloadWithTail(value: MetricValue, timestamp: number, tail: string): string {
  return '{"value":' + jsonValue(value) + ',"timestamp":' + timestamp + tail;
}

/**
 * The per-metric payload after its timestamp: the same text for every value of a metric while its
 * quality, unit, type and reason stay the same (uns-out reuses it: lib/uns/uns-out.ts).
 */
export function metricPayloadTail(quality: Quality, meta: MetricMeta | undefined): string {
  let text = ',"quality":"' + quality + '"';
  if (meta !== undefined) {
    if (meta.unit !== undefined) text += ',"unit":' + JSON.stringify(meta.unit);
    if (meta.type !== undefined) text += ',"type":"' + meta.type + '"';
    if (meta.reason !== undefined) text += ',"reason":' + JSON.stringify(meta.reason);
  }
  return text + '}';
}

/** The JSON member name of a metric in the asset payload's "metrics" object, with its colon. */
export function assetMemberKey(metric: string): string {
  return JSON.stringify(metric) + ':';
}

/** Builds the asset-level payload from per-metric payloads already encoded. */
export class AssetPayloadBuilder {
  private text = '';
  private count = 0;

  reset(): void {
    this.text = '';
    this.count = 0;
  }

  add(metric: string, metricPayload: string): void {
    this.addMember(assetMemberKey(metric), metricPayload);
  }

  /** add() with the metric's key made by assetMemberKey (uns-out keeps one per metric of a batch shape). */
  addMember(memberKey: string, metricPayload: string): void {
    this.text += (this.count++ === 0 ? '' : ',') + memberKey + metricPayload;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  finish(timestamp: number): string {
    return '{"timestamp":' + timestamp + ',"metrics":{' + this.text + '}}';
  }
}

export interface DecodedMetric {
  value: MetricValue;
  meta: MetricMeta;
}

const QUALITY_NAMES = new Set(['good', 'uncertain', 'bad']);

/** Parse JSON, keeping integers beyond ±(2^53−1) exact (slow path only when one is present). */
function parseJson(text: string): unknown {
  const parsed: unknown = JSON.parse(text);
  return containsUnsafeInteger(parsed) ? parseJsonExact(text) : parsed;
}

/**
 * Deepest level at which a UNS payload holds a value: asset payload → "metrics" → metric → "value"
 * (the per-metric payload is shallower). Deeper levels are never values, so they are not searched:
 * a payload nested 100,000 levels deep costs four levels here, not a stack overflow.
 */
const VALUE_DEPTH = 3;

function containsUnsafeInteger(value: unknown, depth = 0): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (typeof value !== 'object' || value === null || depth >= VALUE_DEPTH) return false;
  for (const key in value) {
    if (containsUnsafeInteger((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

/**
 * A parsed per-metric object as {value, meta}, or a string saying why it is not the per-metric shape.
 * A BigInt read back for a Float/Double metric becomes a number again (it was a double on the way in).
 */
export function metricFromObject(object: unknown): DecodedMetric | string {
  if (!isPlainObject(object) || !('value' in object)) return 'is not an object with a "value" property';
  const { timestamp, quality, unit, type, reason } = object;
  let value = object.value;
  // A BigInt read back for a Float/Double metric, or one no 64-bit type holds, was a double on the way in.
  if (typeof value === 'bigint' && (type === 'Float' || type === 'Double' || metricValueProblem(value) !== undefined)) value = Number(value);
  const valueProblem = metricValueProblem(value);
  if (valueProblem) return `"value" ${valueProblem}`;
  const meta: MetricMeta = {};
  if (timestamp !== undefined) {
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) return '"timestamp" is not a number';
    meta.timestamp = timestamp;
  }
  if (quality !== undefined) {
    if (typeof quality !== 'string' || !QUALITY_NAMES.has(quality)) return '"quality" is not good, uncertain or bad';
    meta.quality = quality as Quality;
  }
  if (typeof unit === 'string') meta.unit = unit;
  if (typeof type === 'string') meta.type = type as MetricMeta['type'];
  if (typeof reason === 'string') meta.reason = reason;
  return { value: value as MetricValue, meta };
}

/** Decode a per-metric topic payload; a string result says why it is not one. */
export function decodeMetricPayload(text: string): DecodedMetric | string {
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch {
    return 'is not JSON';
  }
  return metricFromObject(parsed);
}

export interface DecodedAsset {
  timestamp: number | undefined;
  metrics: Record<string, unknown>;
}

/** Decode an asset-level JSON payload to its metric objects (each for metricFromObject), or a problem. */
export function decodeAssetPayload(text: string): DecodedAsset | string {
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch {
    return 'is not JSON';
  }
  if (!isPlainObject(parsed) || !isPlainObject(parsed.metrics)) return 'is not an object with a "metrics" object';
  const timestamp = typeof parsed.timestamp === 'number' ? parsed.timestamp : undefined;
  return { timestamp, metrics: parsed.metrics };
}
