/**
 * Validation of the tag batch contract (lib/uns/tag-batch.ts, docs/tag-batch.md) at sinks.
 *
 * The whole batch is checked before anything is published, and every problem is reported in one
 * message, so an integrator fixes a flow in one pass and a sink never publishes half a batch.
 * docs/tag-batch.schema.json states the same rules as JSON Schema; test/unit/uns-validate.spec.ts
 * checks that the two agree.
 */
import type { MetricDataType, Quality, TagBatch } from './tag-batch';
import { isPlainObject } from '../values';

/** MQTT v5.0 §1.5.4 / v3.1.1 §1.5.3: a UTF-8 string, hence a topic name, is at most 65,535 bytes. */
export const MAX_TOPIC_BYTES = 65535;

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
    case 'boolean':
    case 'string':
      return undefined;
    case 'object':
      return value === null ? undefined : `is ${describe(value)} (only number, bigint, boolean, string or null)`;
    default:
      return `is ${describe(value)} (only number, bigint, boolean, string or null)`;
  }
}

function isTimestamp(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function checkMeta(meta: unknown, problems: string[]): void {
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
    if (entry.timestamp !== undefined && !isTimestamp(entry.timestamp)) {
      problems.push(`meta "${name}".timestamp must be ms since the epoch, got ${describe(entry.timestamp)}`);
    }
    if (entry.quality !== undefined && !QUALITIES.has(entry.quality as string)) {
      problems.push(`meta "${name}".quality must be good, uncertain or bad, got ${describe(entry.quality)}`);
    }
    if (entry.unit !== undefined && typeof entry.unit !== 'string') {
      problems.push(`meta "${name}".unit must be a string, got ${describe(entry.unit)}`);
    }
    if (entry.type !== undefined && !DATA_TYPES.has(entry.type as string)) {
      problems.push(`meta "${name}".type must be a Sparkplug data type name, got ${describe(entry.type)}`);
    }
    if (entry.reason !== undefined && typeof entry.reason !== 'string') {
      problems.push(`meta "${name}".reason must be a string, got ${describe(entry.reason)}`);
    }
  }
}

/**
 * Every problem of a message against the tag batch contract; empty when it is a valid TagBatch.
 * `prefixBytes` is the length of a base topic put in front of the asset path by the sink, so that
 * the longest resulting topic name is checked against MAX_TOPIC_BYTES.
 */
export function tagBatchProblems(msg: unknown, prefixBytes = 0): string[] {
  const problems: string[] = [];
  if (!isPlainObject(msg)) return [`message must be an object, got ${describe(msg)}`];
  checkAssetPath(msg.topic, problems);
  const payload = msg.payload;
  if (!isPlainObject(payload)) {
    problems.push(`msg.payload must be an object of {metric: value}, got ${describe(payload)}`);
  } else {
    const assetLength = typeof msg.topic === 'string' ? msg.topic.length : 0;
    let metrics = 0;
    for (const name in payload) {
      metrics++;
      const nameProblem = metricNameProblem(name);
      if (nameProblem) problems.push(`metric "${name}" ${nameProblem}`);
      const valueProblem = metricValueProblem(payload[name]);
      if (valueProblem) problems.push(`value of "${name}" ${valueProblem}`);
      // UTF-8 takes at most 3 bytes per UTF-16 unit: measure exactly only when it could matter.
      if ((prefixBytes + assetLength + 1 + name.length) * 3 > MAX_TOPIC_BYTES &&
          prefixBytes + Buffer.byteLength(msg.topic as string) + 1 + Buffer.byteLength(name) > MAX_TOPIC_BYTES) {
        problems.push(`topic of metric "${name.slice(0, 40)}…" is longer than ${MAX_TOPIC_BYTES} bytes`);
      }
    }
    if (metrics === 0) problems.push('msg.payload has no metrics');
  }
  checkMeta(msg.meta, problems);
  if (msg.timestamp !== undefined && !isTimestamp(msg.timestamp)) {
    problems.push(`msg.timestamp must be ms since the epoch, got ${describe(msg.timestamp)}`);
  }
  return problems;
}

/** Throws one TagBatchError naming every problem; returns the message typed as a TagBatch. */
export function assertTagBatch(msg: unknown, prefixBytes = 0): TagBatch {
  const problems = tagBatchProblems(msg, prefixBytes);
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
