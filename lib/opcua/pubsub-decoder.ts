/**
 * OPC UA PubSub JSON over MQTT, subscriber side (OPC 10000-14 v1.05; docs/pubsub.md): ua-metadata
 * and ua-data messages → tag batches. Bounded and strict: a message that is not JSON, larger than
 * `maxBytes`, misses a mandatory field, carries more than `maxFields` fields (metrics once
 * structures and arrays are flattened), or references a
 * MetaDataVersion other than the one received is refused as a whole with a reason (nothing of it
 * is turned into a batch half-way).
 *
 * - The metadata names and types the fields: DataSetMetaData.Name is the asset path when it is a
 *   valid one (uns-edge publishers write it so), else `<PublisherId>/<DataSetWriterId>`;
 *   FieldMetaData.BuiltInType gives the type; an
 *   EngineeringUnits property the unit.
 * - A writer whose metadata is unknown and whose DataSetMessages carry no MetaDataVersion is
 *   decoded by inferring the schema from the JSON (§7.2.5.4.3 allows it): numbers → Double,
 *   booleans, strings; structures and arrays are flattened into metrics `Field/X`, `Field/0`.
 * - 1.04 publishers: DataSetWriterId as a String (Part 14 v1.04 Table 92), Status as a number.
 */
import type { MetricDataType, MetricMeta, MetricValue, TagBatch } from '../uns/tag-batch';
import { metricNameProblem, pathSegmentProblem } from '../uns/validate';
import { isPlainObject } from '../values';
import { TAG_TYPE_OF_BUILT_IN } from './server-types';
import { BuiltInType } from './values';

export interface DecoderOptions {
  /** Largest message, bytes (checked before parsing). Default 1 MiB. */
  maxBytes?: number;
  /**
   * Most fields in one DataSet's metadata, and most metrics one ua-data message yields once its
   * structures and arrays are flattened (a message over it is refused as a whole). Default 10,000.
   */
  maxFields?: number;
  /** Most writers whose metadata is kept. Default 10,000. */
  maxWriters?: number;
}

export interface DecodeResult {
  batches: TagBatch[];
  /** Why (parts of) the message were refused; empty when all is well. */
  problems: string[];
}

interface KnownWriter {
  asset: string;
  fields: Map<string, { builtIn: number; unit?: string }>;
  major: number;
  minor: number;
}

/** Metrics a ua-data NetworkMessage may still yield, flattened structures and arrays included (`maxFields`). */
interface MetricBudget {
  left: number;
}

const DATA_VALUE_KEYS = new Set(['Value', 'Status', 'StatusCode', 'SourceTimestamp', 'ServerTimestamp', 'SourcePicoseconds', 'ServerPicoseconds']);

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value === 'object' ? 'an object' : String(value);
}

/** DataSetWriterId: a UInt16 (1.05 Table 185), or its decimal String (1.04 Table 92). */
function writerIdOf(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff ? n : undefined;
}

/** A StatusCode in JSON: {"Code": n, "Symbol"?: s} (Part 6 v1.05 §5.4.2.11) or a number (1.04). */
function statusOf(value: unknown): { code: number; symbol?: string } | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return { code: value >>> 0 };
  if (isPlainObject(value)) {
    const code = value.Code === undefined ? 0 : value.Code;
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 0) return undefined;
    return { code: code >>> 0, ...(typeof value.Symbol === 'string' ? { symbol: value.Symbol } : {}) };
  }
  return undefined;
}

/** Quality of a StatusCode (Part 4 §7.39.1 classes); Good is the tag batch default and is left out. */
function qualityMeta(status: { code: number; symbol?: string } | undefined): Pick<MetricMeta, 'quality' | 'reason'> {
  if (!status || status.code >>> 30 === 0) return {};
  const reason = status.symbol ?? `0x${status.code.toString(16).padStart(8, '0')}`;
  return status.code >>> 30 === 1 ? { quality: 'uncertain', reason } : { quality: 'bad', reason };
}

/** A VerboseEncoding value of a known built-in type → tag value (Part 6 v1.05 §5.4.2). */
function decodeTyped(builtIn: number, value: unknown): { ok: true; value: MetricValue } | { ok: false; why: string } {
  if (value === undefined || value === null) return { ok: true, value: null };
  switch (builtIn) {
    case BuiltInType.Boolean:
      return typeof value === 'boolean' ? { ok: true, value } : { ok: false, why: `${describe(value)} is not a Boolean` };
    case BuiltInType.Int64:
    case BuiltInType.UInt64: {
      const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
      if (typeof text !== 'string' || !/^-?\d{1,20}$/.test(text)) return { ok: false, why: `${describe(value)} is not a 64-bit integer` };
      const big = BigInt(text);
      return { ok: true, value: big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big };
    }
    case BuiltInType.DateTime: {
      const ms = typeof value === 'string' ? Date.parse(value) : NaN;
      return Number.isFinite(ms) ? { ok: true, value: ms } : { ok: false, why: `${describe(value)} is not a DateTime` };
    }
    case BuiltInType.String:
    case BuiltInType.ByteString:
      return typeof value === 'string' ? { ok: true, value } : { ok: false, why: `${describe(value)} is not a string` };
    default:
      if (TAG_TYPE_OF_BUILT_IN[builtIn] === undefined) return { ok: false, why: `built-in type ${builtIn} has no tag value` };
      return typeof value === 'number' && Number.isFinite(value) ? { ok: true, value } : { ok: false, why: `${describe(value)} is not a number` };
  }
}

export class PubSubDecoder {
  private readonly writers = new Map<string, KnownWriter>();
  private readonly maxBytes: number;
  private readonly maxFields: number;
  private readonly maxWriters: number;

  constructor(options: DecoderOptions = {}) {
    this.maxBytes = options.maxBytes ?? 1024 * 1024;
    this.maxFields = options.maxFields ?? 10_000;
    this.maxWriters = options.maxWriters ?? 10_000;
  }

  /** One MQTT message (any of the topic tree's kinds). */
  decode(payload: Buffer | string): DecodeResult {
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (size > this.maxBytes) return { batches: [], problems: [`message of ${size} bytes, more than ${this.maxBytes}`] };
    let message: unknown;
    try {
      message = JSON.parse(payload.toString());
    } catch (error) {
      return { batches: [], problems: [`not JSON: ${(error as Error).message.slice(0, 80)}`] };
    }
    if (!isPlainObject(message)) return { batches: [], problems: ['not a JSON object'] };
    switch (message.MessageType) {
      case 'ua-metadata': return { batches: [], problems: this.metadata(message) };
      case 'ua-data': return this.data(message);
      case 'ua-status': return { batches: [], problems: [] };
      default: return { batches: [], problems: [`MessageType ${describe(message.MessageType)} is not ua-data, ua-metadata or ua-status`] };
    }
  }

  /** ua-metadata (§7.2.5.5.2 Table 190): MessageId, PublisherId, DataSetWriterId, MetaData mandatory. */
  private metadata(m: Record<string, unknown>): string[] {
    const problems: string[] = [];
    const writerId = writerIdOf(m.DataSetWriterId);
    if (typeof m.MessageId !== 'string') problems.push(`ua-metadata: MessageId is ${describe(m.MessageId)} (mandatory String)`);
    if (typeof m.PublisherId !== 'string' && typeof m.PublisherId !== 'number') problems.push(`ua-metadata: PublisherId is ${describe(m.PublisherId)} (mandatory)`);
    if (writerId === undefined) problems.push(`ua-metadata: DataSetWriterId is ${describe(m.DataSetWriterId)} (mandatory UInt16)`);
    const md = m.MetaData;
    if (!isPlainObject(md) || !Array.isArray(md.Fields)) {
      problems.push('ua-metadata: MetaData.Fields is missing (mandatory DataSetMetaDataType)');
      return problems;
    }
    if (md.Fields.length > this.maxFields) return [`ua-metadata: ${md.Fields.length} fields, more than ${this.maxFields}`];
    const fields = new Map<string, { builtIn: number; unit?: string }>();
    for (const [i, f] of md.Fields.entries()) {
      if (!isPlainObject(f) || typeof f.Name !== 'string' || !Number.isInteger(f.BuiltInType)) {
        problems.push(`ua-metadata: field ${i + 1} needs a Name and a BuiltInType`);
        continue;
      }
      let unit: string | undefined;
      if (Array.isArray(f.Properties)) {
        for (const p of f.Properties) {
          const body = isPlainObject(p) && isPlainObject(p.Key) && p.Key.Name === 'EngineeringUnits' && isPlainObject(p.Value) && isPlainObject(p.Value.Value) ? p.Value.Value.UaBody : undefined;
          if (isPlainObject(body) && isPlainObject(body.DisplayName) && typeof body.DisplayName.Text === 'string') unit = body.DisplayName.Text;
        }
      }
      fields.set(f.Name, { builtIn: f.BuiltInType as number, ...(unit !== undefined ? { unit } : {}) });
    }
    const version = isPlainObject(md.ConfigurationVersion) ? md.ConfigurationVersion : {};
    if (problems.length) return problems;
    const key = `${String(m.PublisherId)}/${writerId}`;
    if (!this.writers.has(key) && this.writers.size >= this.maxWriters) return [`ua-metadata: more than ${this.maxWriters} writers known; ${key} not kept`];
    const name = typeof md.Name === 'string' ? md.Name : '';
    const validPath = name !== '' && name.split('/').every((l) => pathSegmentProblem(l) === undefined);
    this.writers.set(key, {
      asset: validPath ? name : `${String(m.PublisherId)}/${writerId}`,
      fields,
      major: Number(version.MajorVersion ?? 0),
      minor: Number(version.MinorVersion ?? 0),
    });
    return [];
  }

  /** ua-data NetworkMessage (§7.2.5.3 Table 184): MessageId, MessageType, Messages mandatory. */
  private data(m: Record<string, unknown>): DecodeResult {
    if (typeof m.MessageId !== 'string') return { batches: [], problems: [`ua-data: MessageId is ${describe(m.MessageId)} (mandatory String)`] };
    if (!Array.isArray(m.Messages)) return { batches: [], problems: [`ua-data: Messages is ${describe(m.Messages)} (mandatory array of DataSetMessages)`] };
    const result: DecodeResult = { batches: [], problems: [] };
    const budget: MetricBudget = { left: this.maxFields };
    for (const dsm of m.Messages) {
      if (!isPlainObject(dsm)) {
        result.problems.push('ua-data: a DataSetMessage is not a JSON object');
        continue;
      }
      const publisherId = m.PublisherId ?? dsm.PublisherId;
      const batch = this.dataSetMessage(publisherId, dsm, result.problems, budget);
      if (batch) result.batches.push(batch);
      if (budget.left < 0) {
        return { batches: [], problems: [`ua-data: more than ${this.maxFields} metrics once structures and arrays are flattened; the whole message is refused`] };
      }
    }
    return result;
  }

  private dataSetMessage(publisherId: unknown, dsm: Record<string, unknown>, problems: string[], budget: MetricBudget): TagBatch | undefined {
    const writerId = writerIdOf(dsm.DataSetWriterId);
    const who = `publisher ${describe(publisherId)} writer ${describe(dsm.DataSetWriterId)}`;
    if (writerId === undefined) {
      problems.push(`${who}: DataSetWriterId is not a UInt16 (nor its decimal string)`);
      return undefined;
    }
    if (dsm.Payload === undefined) return undefined; // a keep-alive (§7.2.5.4.1)
    if (!isPlainObject(dsm.Payload)) {
      problems.push(`${who}: Payload is ${describe(dsm.Payload)}, not an object`);
      return undefined;
    }
    let count = 0;
    for (const _ in dsm.Payload) if (++count > this.maxFields) {
      problems.push(`${who}: Payload has more than ${this.maxFields} fields`);
      return undefined;
    }
    const known = this.writers.get(`${String(publisherId)}/${writerId}`);
    const version = dsm.MetaDataVersion;
    if (version !== undefined) {
      const major = isPlainObject(version) ? version.MajorVersion : undefined;
      if (!known) {
        problems.push(`${who}: MetaDataVersion ${describe(major)} references metadata not received (no ua-metadata for this writer)`);
        return undefined;
      }
      if (major !== known.major) {
        problems.push(`${who}: MetaDataVersion ${describe(major)} is not the known version ${known.major} (unknown metadata version)`);
        return undefined;
      }
    }
    const time = typeof dsm.Timestamp === 'string' ? Date.parse(dsm.Timestamp) : NaN;
    const batch: TagBatch = { topic: known?.asset ?? `${String(publisherId)}/${writerId}`, payload: {}, meta: {} };
    if (Number.isFinite(time)) batch.timestamp = time;
    const fieldProblems: string[] = [];
    for (const [name, raw] of Object.entries(dsm.Payload)) {
      if (known) this.typedField(known, name, raw, batch, fieldProblems, budget);
      else this.inferredField(name, raw, batch, fieldProblems, 0, budget);
      if (budget.left < 0) return undefined;
    }
    if (fieldProblems.length) {
      problems.push(`${who}: ${fieldProblems.slice(0, 10).join('; ')}`);
      return undefined;
    }
    return Object.keys(batch.payload).length ? batch : undefined;
  }

  private typedField(known: KnownWriter, name: string, raw: unknown, batch: TagBatch, problems: string[], budget: MetricBudget): void {
    const field = known.fields.get(name);
    if (!field) {
      problems.push(`field "${name}" is not in the metadata`);
      return;
    }
    const isDataValue = isPlainObject(raw) && Object.keys(raw).every((k) => DATA_VALUE_KEYS.has(k));
    const value = isDataValue ? (raw as Record<string, unknown>).Value : raw;
    const decoded = decodeTyped(field.builtIn, value);
    if (!decoded.ok) {
      problems.push(`field "${name}": ${decoded.why}`);
      return;
    }
    const dv = isDataValue ? (raw as Record<string, unknown>) : {};
    const rawStatus = dv.Status ?? dv.StatusCode;
    const status = rawStatus === undefined ? undefined : statusOf(rawStatus);
    if (rawStatus !== undefined && !status) {
      problems.push(`field "${name}": Status is not a StatusCode`);
      return;
    }
    const sourceTime = typeof dv.SourceTimestamp === 'string' ? Date.parse(dv.SourceTimestamp) : NaN;
    const type: MetricDataType | undefined = TAG_TYPE_OF_BUILT_IN[field.builtIn];
    if (--budget.left < 0) return;
    batch.payload[name] = decoded.value;
    batch.meta![name] = {
      ...(Number.isFinite(sourceTime) ? { timestamp: sourceTime } : {}),
      ...qualityMeta(status),
      ...(field.unit !== undefined ? { unit: field.unit } : {}),
      ...(type ? { type } : {}),
    };
  }

  /** Schema-less: a JSON value's own type; structures and arrays flattened (depth ≤ 4). */
  private inferredField(name: string, raw: unknown, batch: TagBatch, problems: string[], depth: number, budget: MetricBudget): void {
    if (budget.left < 0) return;
    const nameProblem = metricNameProblem(name);
    if (nameProblem) {
      problems.push(`field "${name}" ${nameProblem}`);
      return;
    }
    // A DataValue counts as a level: a DataValue nested in DataValues from a hostile publisher stops at depth 4.
    if (depth < 4 && isPlainObject(raw) && Object.keys(raw).length > 0 && Object.keys(raw).every((k) => DATA_VALUE_KEYS.has(k)) && ('Value' in raw || 'Status' in raw)) {
      const status = statusOf(raw.Status ?? raw.StatusCode);
      const sourceTime = typeof raw.SourceTimestamp === 'string' ? Date.parse(raw.SourceTimestamp) : NaN;
      this.inferredField(name, raw.Value ?? null, batch, problems, depth + 1, budget);
      if (name in batch.payload) batch.meta![name] = { ...batch.meta![name], ...qualityMeta(status), ...(Number.isFinite(sourceTime) ? { timestamp: sourceTime } : {}) };
      return;
    }
    if ((isPlainObject(raw) || Array.isArray(raw)) && depth < 4) {
      const entries = Array.isArray(raw) ? raw.entries() : Object.entries(raw);
      for (const [key, v] of entries) {
        this.inferredField(`${name}/${key}`, v, batch, problems, depth + 1, budget);
        if (budget.left < 0) return;
      }
      return;
    }
    const type: MetricDataType | undefined = typeof raw === 'number' && Number.isFinite(raw) ? 'Double'
      : typeof raw === 'boolean' ? 'Boolean' : typeof raw === 'string' ? 'String' : undefined;
    if ((type || raw === null) && --budget.left < 0) return;
    if (type) {
      batch.payload[name] = raw as MetricValue;
      batch.meta![name] = { type };
    } else if (raw === null) {
      batch.payload[name] = null;
    } else {
      problems.push(`field "${name}" nested deeper than 4 levels`);
    }
  }
}
