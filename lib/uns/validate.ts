/**
 * Validation of the tag batch contract (lib/uns/tag-batch.ts, docs/tag-batch.md) at sinks.
 *
 * The whole batch is checked before anything is published, and every problem is reported in one
 * message, so an integrator fixes a flow in one pass and a sink never publishes half a batch.
 * docs/tag-batch.schema.json states the same rules as JSON Schema; test/unit/uns-validate.spec.ts
 * checks that the two agree.
 */
import type { MetricDataType, Quality, TagBatch } from './tag-batch';
import { dataTypeCode, valueProblem } from '../sparkplug/datatypes';
import { isPlainObject } from '../values';

/** MQTT v5.0 §1.5.4 / v3.1.1 §1.5.3: a UTF-8 string, hence a topic name, is at most 65,535 bytes. */
export const MAX_TOPIC_BYTES = 65535;

/** Earliest source timestamp a sink accepts: 2000-01-01T00:00:00Z (a clock reset to 1970 is not a reading time). */
export const MIN_TIMESTAMP = Date.UTC(2000, 0, 1);

/**
 * Limits a sink applies to a batch (docs/tag-batch.md § "Limits"). Each has a default that fits a
 * gateway; uns-out makes the batch limits configurable.
 */
export interface BatchLimits {
  /** Length in bytes of the base topic the sink puts in front of the asset path (for the topic length check). */
  prefixBytes: number;
  /** Metrics in one batch. 5,000 publishes in ~20 ms here; 20,000 stalled the event loop 339 ms. */
  maxMetrics: number;
  /** UTF-8 bytes of one string value (and of a unit or reason). */
  maxStringBytes: number;
  /** Check each value against its meta.type (a sink with stronger type knowledge, e.g. a Sparkplug device's DBIRTH types, does its own). */
  checkTypes: boolean;
  /** Timestamps must lie in MIN_TIMESTAMP … now + maxFutureMs; false: only that they are ms since the epoch (the sink handles the range). */
  checkTimestampRange: boolean;
  /** How far ahead of the sink's clock a source timestamp may be. */
  maxFutureMs: number;
  /** The sink's clock, ms since the epoch. */
  now: number;
}

export const DEFAULT_LIMITS: Readonly<Omit<BatchLimits, 'now'>> = {
  prefixBytes: 0,
  maxMetrics: 5000,
  maxStringBytes: 64 * 1024,
  checkTypes: true,
  checkTimestampRange: true,
  maxFutureMs: 24 * 3600 * 1000,
};

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
/** Tag batches carry Bytes as base64 text (RFC 4648 §4). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const QUALITIES: ReadonlySet<string> = new Set<Quality>(['good', 'uncertain', 'bad']);
const DATA_TYPES: ReadonlySet<string> = new Set<MetricDataType>([
  'Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64',
  'Float', 'Double', 'Boolean', 'String', 'DateTime', 'Text', 'Bytes',
]);

/** Reported problems stop at this many, so a 10,000-metric garbage batch does not make a 1 MB message. */
const MAX_PROBLEMS_REPORTED = 10;

export class TagBatchError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(formatProblems(problems));
    this.name = 'TagBatchError';
    Object.setPrototypeOf(this, TagBatchError.prototype);
  }
}

function formatProblems(problems: readonly string[]): string {
  const shown = problems.slice(0, MAX_PROBLEMS_REPORTED).join('; ');
  const more = problems.length > MAX_PROBLEMS_REPORTED ? `; and ${problems.length - MAX_PROBLEMS_REPORTED} more` : '';
  return `tag batch rejected: ${shown}${more}`;
}

/**
 * Why a topic level (one segment of the asset path) is not allowed, or undefined when it is.
 * MQTT v5.0 §4.7.1 / v3.1.1 §4.7.1: `+` and `#` are wildcards and must not appear in a topic name
 * [MQTT-3.3.2-2]; `/` separates levels; U+0000 must not appear in a UTF-8 string [MQTT-1.5.4-2].
 */
export function pathSegmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return 'is empty';
  if (segment.includes('+')) return 'contains "+"';
  if (segment.includes('#')) return 'contains "#"';
  if (segment.includes('\u0000')) return 'contains U+0000';
  return undefined;
}

/**
 * Why a metric name is not allowed, or undefined when it is. Metric names may contain `/`
 * (Sparkplug B 3.0 §6.4.6 allows it: `Node Control/Rebirth`), which becomes extra topic levels
 * under the asset path; so they must not be empty, start or end with `/`, or hold an empty level.
 */
export function metricNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.includes('+')) return 'contains "+"';
  if (name.includes('#')) return 'contains "#"';
  if (name.includes('\u0000')) return 'contains U+0000';
  if (name.charCodeAt(0) === 47 /* / */) return 'starts with "/"';
  if (name.charCodeAt(name.length - 1) === 47) return 'ends with "/"';
  if (name.includes('//')) return 'contains an empty level "//"';
  if (name === '__proto__') return 'is "__proto__"';
  return undefined;
}

/** Adds to `problems` what is wrong with the asset path (msg.topic), one entry per bad segment. */
function checkAssetPath(topic: unknown, problems: string[]): void {
  if (typeof topic !== 'string') {
    problems.push(`msg.topic must be the asset path as a string, got ${describe(topic)}`);
    return;
  }
  if (topic.length === 0) {
    problems.push('msg.topic (the asset path) is empty');
    return;
  }
  // MQTT v5.0 §4.7.2: topics starting with `$` are reserved for the server ($SYS/...).
  if (topic.charCodeAt(0) === 36 /* $ */) problems.push(`msg.topic "${topic}" starts with "$" (reserved for the broker)`);
  const segments = topic.split('/');
  for (let i = 0; i < segments.length; i++) {
    const problem = pathSegmentProblem(segments[i]);
    if (problem) problems.push(`topic segment ${i + 1} "${segments[i]}" ${problem}`);
  }
}

/** Why a value is not a metric value, or undefined when it is. */
export function metricValueProblem(value: unknown): string | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? undefined : `is ${String(value)} (only finite numbers)`;
    case 'bigint':
      // Int64/UInt64 are the widest types (Sparkplug B §6.4.16); a longer literal is not a reading.
      return value >= INT64_MIN && value <= UINT64_MAX ? undefined : 'is a BigInt outside the 64-bit range -2^63…2^64−1';
    case 'boolean':
    case 'string':
      return undefined;
    case 'object':
      return value === null ? undefined : `is ${describe(value)} (only number, bigint, boolean, string or null)`;
    default:
      return `is ${describe(value)} (only number, bigint, boolean, string or null)`;
  }
}

/**
 * Why a value does not fit its declared data type, or undefined. Same ranges as Sparkplug B 3.0
 * (lib/sparkplug/datatypes.ts valueProblem): Int16 is −32768…32767, Float a finite 32-bit float, …;
 * Bytes are base64 text in a tag batch. null fits every type (no value, e.g. with bad quality).
 */
export function typedValueProblem(type: MetricDataType, value: unknown): string | undefined {
  if (value === null) return undefined;
  if (type === 'Bytes') return typeof value === 'string' && BASE64.test(value) ? undefined : 'is not base64 text (Bytes values are base64 strings in a tag batch)';
  const code = dataTypeCode(type);
  return code === undefined ? undefined : valueProblem(code, value);
}

/** Why a timestamp is not acceptable, or undefined. */
function timestampProblem(value: unknown, limits: BatchLimits): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return `must be ms since the epoch, got ${describe(value)}`;
  if (!limits.checkTimestampRange) return undefined;
  const latest = limits.now + limits.maxFutureMs;
  if (value < MIN_TIMESTAMP || value > latest) {
    return `${value} is outside ${new Date(MIN_TIMESTAMP).toISOString()} … ${new Date(latest).toISOString()} (the sink's clock + ${limits.maxFutureMs / 3600000} h)`;
  }
  return undefined;
}

function stringTooLong(text: string, maxBytes: number): boolean {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: measure exactly only when it could matter.
  return text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes;
}

function checkMeta(meta: unknown, limits: BatchLimits, problems: string[]): void {
  if (meta === undefined) return;
  if (!isPlainObject(meta)) {
    problems.push(`msg.meta must be an object of per-metric metadata, got ${describe(meta)}`);
    return;
  }
  for (const name in meta) {
    const entry = meta[name];
    if (!isPlainObject(entry)) {
      problems.push(`meta "${name}" must be an object, got ${describe(entry)}`);
      continue;
    }
    const timestamp = entry.timestamp === undefined ? undefined : timestampProblem(entry.timestamp, limits);
    if (timestamp) problems.push(`meta "${name}".timestamp ${timestamp}`);
    if (entry.quality !== undefined && !QUALITIES.has(entry.quality as string)) {
      problems.push(`meta "${name}".quality must be good, uncertain or bad, got ${describe(entry.quality)}`);
    }
    if (entry.unit !== undefined && typeof entry.unit !== 'string') {
      problems.push(`meta "${name}".unit must be a string, got ${describe(entry.unit)}`);
    } else if (entry.unit !== undefined && stringTooLong(entry.unit, limits.maxStringBytes)) {
      problems.push(`meta "${name}".unit is longer than ${limits.maxStringBytes} bytes`);
    }
    if (entry.type !== undefined && !DATA_TYPES.has(entry.type as string)) {
      problems.push(`meta "${name}".type must be a Sparkplug data type name, got ${describe(entry.type)}`);
    }
    if (entry.reason !== undefined && typeof entry.reason !== 'string') {
      problems.push(`meta "${name}".reason must be a string, got ${describe(entry.reason)}`);
    } else if (entry.reason !== undefined && stringTooLong(entry.reason, limits.maxStringBytes)) {
      problems.push(`meta "${name}".reason is longer than ${limits.maxStringBytes} bytes`);
    }
  }
}

/**
 * Every problem of a message against the tag batch contract; empty when it is a valid TagBatch.
 * Nothing here recurses: values are scalars (an object value is a problem, never walked into), so a
 * batch nested 100,000 levels deep costs one check. A batch over `maxMetrics` is refused after
 * counting, without checking its metrics one by one.
 */
export function tagBatchProblems(msg: unknown, options: Partial<BatchLimits> = {}): string[] {
  const limits: BatchLimits = { ...DEFAULT_LIMITS, now: Date.now(), ...options };
  const problems: string[] = [];
  if (!isPlainObject(msg)) return [`message must be an object, got ${describe(msg)}`];
  checkAssetPath(msg.topic, problems);
  const payload = msg.payload;
  const meta = isPlainObject(msg.meta) ? msg.meta : undefined;
  if (!isPlainObject(payload)) {
    problems.push(`msg.payload must be an object of {metric: value}, got ${describe(payload)}`);
  } else {
    const metrics = Object.keys(payload).length;
    if (metrics > limits.maxMetrics) {
      problems.push(`msg.payload has ${metrics} metrics, more than ${limits.maxMetrics} (the sink's limit per batch: split the batch or raise the limit)`);
    } else if (metrics === 0) {
      problems.push('msg.payload has no metrics');
    } else {
      checkMetrics(msg.topic, payload, meta, limits, problems);
    }
  }
  checkMeta(msg.meta, limits, problems);
  const timestamp = msg.timestamp === undefined ? undefined : timestampProblem(msg.timestamp, limits);
  if (timestamp) problems.push(`msg.timestamp ${timestamp}`);
  return problems;
}

function checkMetrics(topic: unknown, payload: Record<string, unknown>, meta: Record<string, unknown> | undefined, limits: BatchLimits, problems: string[]): void {
  const { prefixBytes, maxStringBytes, checkTypes } = limits;
  const assetLength = typeof topic === 'string' ? topic.length : 0;
  for (const name in payload) {
    const value = payload[name];
    const nameProblem = metricNameProblem(name);
    if (nameProblem) problems.push(`metric "${name}" ${nameProblem}`);
    const valueProblem = metricValueProblem(value);
    if (valueProblem) {
      problems.push(`value of "${name}" ${valueProblem}`);
    } else if (typeof value === 'string' && stringTooLong(value, maxStringBytes)) {
      problems.push(`value of "${name}" is a string longer than ${maxStringBytes} bytes`);
    } else if (checkTypes && meta !== undefined) {
      const entry = meta[name];
      const type = isPlainObject(entry) ? entry.type : undefined;
      const typeProblem = typeof type === 'string' && DATA_TYPES.has(type) ? typedValueProblem(type as MetricDataType, value) : undefined;
      // Same wording as uns-sparkplug-device: metric "Torque" (Int16): 70000 is out of range -32768…32767
      if (typeProblem) problems.push(`metric "${name}" (${type as string}): ${typeProblem}`);
    }
    if ((prefixBytes + assetLength + 1 + name.length) * 3 > MAX_TOPIC_BYTES &&
        prefixBytes + Buffer.byteLength(topic as string) + 1 + Buffer.byteLength(name) > MAX_TOPIC_BYTES) {
      problems.push(`topic of metric "${name.slice(0, 40)}…" is longer than ${MAX_TOPIC_BYTES} bytes`);
    }
  }
}

/** What a valid batch's checks depended on beyond its values: its shape. */
export interface BatchShape {
  readonly topic: string;
  /** Payload metric names in enumeration order. */
  readonly names: readonly string[];
  /** meta[name].type of each payload metric, when the sink checks types and the batch declares one. */
  readonly types: readonly (MetricDataType | undefined)[];
  /** meta's entry names in enumeration order and their `type`s; undefined for a batch without meta. */
  readonly metaNames: readonly string[] | undefined;
  readonly metaTypes: readonly unknown[];
  /** Index in `names` of each meta entry's metric; −1 for an entry of a metric not in the payload. */
  readonly metaIndex: readonly number[];
}

const NO_PROBLEMS: readonly string[] = Object.freeze([]);

/** Asset paths whose batch shape a TagBatchValidator remembers; a sink fed by more forgets the oldest. */
export const MAX_REMEMBERED_SHAPES = 1024;

/**
 * tagBatchProblems for a stream of batches, with the checks that depend only on the batch's shape
 * (asset path, metric names and topic lengths, the count, the `meta.type` names) done once per shape:
 * a batch with the same topic, the same metric names in the same order, meta entries for the same
 * names and the same types as the last valid one has only its values checked (every value, its type
 * fit, every meta timestamp/quality/unit/reason, the batch timestamp). Any difference, or any
 * problem, goes through tagBatchProblems, so the problems reported are always its own.
 *
 * Shapes are remembered per asset path (up to MAX_REMEMBERED_SHAPES; past that the oldest is
 * forgotten), so a sink fed round-robin by many assets keeps the once-per-shape path for each.
 *
 * After a batch without problems, `shape` describes it and `values`/`entries` hold its payload values
 * and meta entries index-aligned with `shape.names`, so a sink reads them without enumerating the
 * batch again (a payload built key by key is a dictionary-mode object in V8: every enumeration of it
 * costs ~40 ns per metric). They are overwritten by the next call.
 */
export class TagBatchValidator {
  private current: BatchShape | undefined;
  /** The last valid shape of each asset path, oldest first (bounded: MAX_REMEMBERED_SHAPES). */
  private readonly known = new Map<string, BatchShape>();
  private readonly limits: BatchLimits;
  private valueSlots: unknown[] = [];
  private entrySlots: (Record<string, unknown> | undefined)[] = [];

  constructor(private readonly options: Partial<BatchLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, now: 0, ...options };
  }

  /** The shape of the last batch without problems (a new object whenever the shape changed). */
  get shape(): BatchShape | undefined {
    return this.current;
  }

  /** The last valid batch's payload values, index-aligned with shape.names. */
  get values(): readonly unknown[] {
    return this.valueSlots;
  }

  /** The last valid batch's meta entries, index-aligned with shape.names (undefined: none). */
  get entries(): readonly (Record<string, unknown> | undefined)[] {
    return this.entrySlots;
  }

  /**
   * Every problem of the message (the same list tagBatchProblems gives); empty when it is a valid TagBatch.
   * `now` is the sink's clock for the timestamp range check (default: the `now` option, else Date.now()).
   */
  problems(msg: unknown, now: number = this.options.now ?? Date.now()): readonly string[] {
    this.limits.now = now;
    const topic = isPlainObject(msg) ? msg.topic : undefined;
    const known = typeof topic === 'string' ? this.known.get(topic) : undefined;
    if (known !== undefined) {
      if (known !== this.current) this.useSlotsOf(known);
      if (this.valuesValid(msg, known)) {
        this.current = known;
        return NO_PROBLEMS;
      }
    }
    const problems = tagBatchProblems(msg, this.limits);
    this.current = undefined;
    if (problems.length > 0) return problems;
    const shape = shapeOf(msg as TagBatch, this.limits.checkTypes);
    this.useSlotsOf(shape);
    if (!this.valuesValid(msg, shape)) throw new Error('TagBatchValidator: a batch tagBatchProblems accepts must pass the values check');
    this.current = shape;
    this.known.delete(shape.topic);
    if (this.known.size >= MAX_REMEMBERED_SHAPES) this.known.delete(this.known.keys().next().value!);
    this.known.set(shape.topic, shape);
    return NO_PROBLEMS;
  }

  /** Sizes values/entries for `shape`; entries of metrics without meta stay undefined. */
  private useSlotsOf(shape: BatchShape): void {
    const length = shape.names.length;
    this.valueSlots.length = length;
    this.entrySlots.length = length;
    this.entrySlots.fill(undefined);
  }

  /** True when a batch of `shape` has only valid values (and they are in values/entries); false sends it through the full check. */
  private valuesValid(msg: unknown, shape: BatchShape): boolean {
    const limits = this.limits;
    if (!isPlainObject(msg) || msg.topic !== shape.topic) return false;
    const payload = msg.payload;
    if (!isPlainObject(payload)) return false;
    const names = shape.names;
    const values = this.valueSlots;
    let i = 0;
    for (const name in payload) {
      if (names[i] !== name) return false;
      const value = payload[name];
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) return false;
      } else if (metricValueProblem(value) !== undefined || (typeof value === 'string' && stringTooLong(value, limits.maxStringBytes))) {
        return false;
      }
      const type = shape.types[i];
      if (type !== undefined && typedValueProblem(type, value) !== undefined) return false;
      values[i++] = value;
    }
    if (i !== names.length) return false;
    const meta = msg.meta;
    const metaNames = shape.metaNames;
    if (meta === undefined || metaNames === undefined) return meta === metaNames && timestampValid(msg.timestamp, limits);
    if (!isPlainObject(meta)) return false;
    const entries = this.entrySlots;
    let j = 0;
    for (const name in meta) {
      if (metaNames[j] !== name) return false;
      const entry = meta[name];
      if (!isPlainObject(entry) || entry.type !== shape.metaTypes[j]) return false;
      if (!timestampValid(entry.timestamp, limits)) return false;
      if (entry.quality !== undefined && !QUALITIES.has(entry.quality as string)) return false;
      if (!textValid(entry.unit, limits) || !textValid(entry.reason, limits)) return false;
      const index = shape.metaIndex[j++];
      if (index >= 0) entries[index] = entry;
    }
    return j === metaNames.length && timestampValid(msg.timestamp, limits);
  }
}

function shapeOf(batch: TagBatch, checkTypes: boolean): BatchShape {
  const meta = batch.meta as Record<string, Record<string, unknown>> | undefined;
  const names: string[] = [];
  const types: (MetricDataType | undefined)[] = [];
  for (const name in batch.payload) {
    names.push(name);
    const type = meta?.[name]?.type;
    types.push(checkTypes && typeof type === 'string' ? type as MetricDataType : undefined);
  }
  const metaNames = meta === undefined ? undefined : [] as string[];
  const metaTypes: unknown[] = [];
  const metaIndex: number[] = [];
  if (meta !== undefined) {
    const indexOf = new Map(names.map((name, i) => [name, i]));
    for (const name in meta) {
      metaNames!.push(name);
      metaTypes.push(meta[name].type);
      metaIndex.push(indexOf.get(name) ?? -1);
    }
  }
  return { topic: batch.topic, names, types, metaNames, metaTypes, metaIndex };
}

function timestampValid(value: unknown, limits: BatchLimits): boolean {
  return value === undefined || timestampProblem(value, limits) === undefined;
}

function textValid(value: unknown, limits: BatchLimits): boolean {
  return value === undefined || (typeof value === 'string' && !stringTooLong(value, limits.maxStringBytes));
}

/** Throws one TagBatchError naming every problem; returns the message typed as a TagBatch. */
export function assertTagBatch(msg: unknown, options: Partial<BatchLimits> = {}): TagBatch {
  const problems = tagBatchProblems(msg, options);
  if (problems.length > 0) throw new TagBatchError(problems);
  return msg as TagBatch;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (Buffer.isBuffer(value)) return 'a Buffer';
  switch (typeof value) {
    case 'string': return `"${value.length > 40 ? value.slice(0, 40) + '…' : value}"`;
    case 'number': return String(value);
    case 'object': return 'an object';
    default: return typeof value;
  }
}
