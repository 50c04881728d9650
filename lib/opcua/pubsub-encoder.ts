/**
 * OPC UA PubSub JSON over MQTT, publisher side (OPC 10000-14 v1.05; docs/pubsub.md). No
 * node-opcua: the JSON mapping is written here from the spec's tables.
 *
 * One PubSubConnection (a PublisherId) with one WriterGroup; one DataSetWriter per asset (its
 * DataSetWriterId a UInt16 given in order of first appearance, its DataSetMetaData.Name the asset
 * path). For each tag batch: a `ua-metadata` message when the writer is new or gained fields
 * (retained), then a `ua-data` NetworkMessage with one DataSetMessage, a key frame every
 * `keyFrameCount` messages and delta frames (changed fields only) between; `ua-keepalive`
 * DataSetMessages for writers silent longer than the keep-alive time; `ua-status` (retained) with
 * the connection's PubSubState, and a Will carrying Error (§7.3.4.7.7).
 *
 * Field encoding: DataSetFieldContentMask StatusCode | SourceTimestamp (§6.2.4.2 Table 32: fields
 * are DataValues), VerboseEncoding with the top-level Variant collapsed because the FieldMetaData
 * gives the concrete DataType (§7.2.5.4.2): `{"Value": v, "SourceTimestamp": "…"}` plus
 * `"Status": {"Code": n, "Symbol": "…"}` when not Good (Part 6 v1.05 §5.4.2.11/§5.4.2.18: Good
 * StatusCode and null Value are omitted). Values: Part 6 v1.05 §5.4.2 — Int64/UInt64 as JSON
 * strings (§5.4.2.3), DateTime as ISO 8601 (§5.4.2.6), ByteString as base64 (§5.4.2.9).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { MetricMeta, MetricValue, TagBatch } from '../uns/tag-batch';
import { BUILT_IN_OF_TAG_TYPE, builtInValueProblem, inferredTagType, statusCodeOf } from './server-types';
import { BuiltInType, builtInTypeName } from './values';

/** PubSubState (OPC 10000-14 §6.2.1 Table 2), encoded as its integer value. */
export const PubSubState = { Disabled: 0, Paused: 1, Operational: 2, Error: 3, PreOperational: 4 } as const;

/** Seconds since 2000-01-01T00:00:00Z: VersionTime (Part 14 §6.2.3.2.6 ConfigurationVersionDataType). */
export function versionTime(ms: number): number {
  return Math.max(0, Math.floor((ms - Date.UTC(2000, 0, 1)) / 1000)) >>> 0;
}

export interface PubSubMessage {
  topic: string;
  payload: string;
  retain: boolean;
}

export interface PublisherOptions {
  publisherId: string;
  writerGroupName: string;
  /** Topic prefix, default "opcua" (§7.3.5.7). */
  prefix?: string;
  /** A key frame every N DataSetMessages of a writer (1: key frames only). */
  keyFrameCount?: number;
  keepAliveMs?: number;
  now?: () => number;
}

/** Why a topic level (PublisherId, WriterGroup name) cannot be used, or undefined. */
export function topicLevelProblem(level: string): string | undefined {
  if (level === '') return 'is empty';
  if (/[/+#\u0000]/.test(level)) return 'contains "/", "+", "#" or U+0000 (it is one topic level)';
  return undefined;
}

/** The status codes of the fields (Part 4 §7.39) named for Symbol; others are written as Code only. */
const SYMBOLS: Record<number, string> = {
  0x40000000: 'Uncertain', 0x80000000: 'Bad', 0x80310000: 'BadNoCommunication', 0x80740000: 'BadTypeMismatch',
};

interface Field {
  name: string;
  builtIn: number;
  unit?: string;
  id: string;
}

interface Writer {
  id: number;
  name: string;
  fields: Map<string, Field>;
  major: number;
  minor: number;
  sequence: number;
  sinceKeyFrame: number;
  /** Last encoded field per name (for delta frames). */
  last: Map<string, string>;
  lastSentAt: number;
  label: string;
}

/** A stable Guid for a DataSet field: derived from the asset path and field name (FieldMetaData.DataSetFieldId). */
function fieldGuid(asset: string, name: string): string {
  const h = createHash('sha1').update(`${asset}#${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A tag value in VerboseEncoding of its built-in type (Part 6 v1.05 §5.4.2). */
export function encodeValue(builtIn: number, value: MetricValue): unknown {
  if (value === null) return undefined;
  switch (builtIn) {
    case BuiltInType.Int64:
    case BuiltInType.UInt64: return String(value); // §5.4.2.3: Int64/UInt64 are JSON strings
    case BuiltInType.DateTime: return new Date(value as number).toISOString(); // §5.4.2.6
    default: return value; // Boolean, integers ≤ 32 bit, Float, Double: JSON; String; ByteString is base64 already (§5.4.2.9)
  }
}

export class PubSubPublisher {
  private readonly writers = new Map<string, Writer>();
  private readonly prefix: string;
  private readonly keyFrameCount: number;
  private readonly now: () => number;
  private lastVersion = 0;

  constructor(private readonly options: PublisherOptions) {
    this.prefix = options.prefix ?? 'opcua';
    this.keyFrameCount = Math.max(1, options.keyFrameCount ?? 10);
    this.now = options.now ?? Date.now;
    for (const [what, level] of [['PublisherId', options.publisherId], ['WriterGroup name', options.writerGroupName]] as const) {
      const problem = topicLevelProblem(level);
      if (problem) throw new RangeError(`${what} "${level}" ${problem}`);
    }
  }

  /** `<prefix>/json/<kind>/<PublisherId>[/<WriterGroup>/<DataSetWriter>]` (§7.3.5.7). */
  topic(kind: 'data' | 'metadata' | 'status', writer?: Writer): string {
    const base = `${this.prefix}/json/${kind}/${this.options.publisherId}`;
    return writer ? `${base}/${this.options.writerGroupName}/${writer.label}` : base;
  }

  /** A ConfigurationVersion that only grows (two changes in one second still differ). */
  private nextVersion(): number {
    this.lastVersion = Math.max(this.lastVersion + 1, versionTime(this.now()));
    return this.lastVersion;
  }

  /** ua-status (§7.2.5.5.5): IsCyclic false — the broker's Will reports us offline. */
  status(state: keyof typeof PubSubState): PubSubMessage {
    return {
      topic: this.topic('status'),
      retain: true,
      payload: JSON.stringify({ MessageId: randomUUID(), MessageType: 'ua-status', PublisherId: this.options.publisherId, IsCyclic: false, Status: PubSubState[state] }),
    };
  }

  /** The Will to register with every CONNECT: PubSubState Error, IsCyclic false (§7.3.4.7.7). */
  will(): PubSubMessage {
    return this.status('Error');
  }

  private writerOf(asset: string): Writer {
    let writer = this.writers.get(asset);
    if (!writer) {
      if (this.writers.size >= 0xffff) throw new RangeError(`more than 65535 assets: DataSetWriterId is a UInt16 (Part 14 §6.2.4.1); ${asset} not published`);
      const id = this.writers.size + 1;
      const version = this.nextVersion();
      writer = { id, name: asset, fields: new Map(), major: version, minor: version, sequence: 0, sinceKeyFrame: 0, last: new Map(), lastSentAt: 0, label: asset.replace(/\//g, '.') };
      this.writers.set(asset, writer);
    }
    return writer;
  }

  /** ua-metadata (§7.2.5.5.2) of a writer: DataSetMetaDataType (§6.2.3.2.3), FieldMetaData per field. */
  metadata(writer: Writer): PubSubMessage {
    const fields = [...writer.fields.values()].map((f) => ({
      Name: f.name,
      FieldFlags: 0,
      BuiltInType: f.builtIn,
      DataType: `i=${f.builtIn}`, // the built-in DataTypes' NodeIds equal their ids (Part 6 §5.1.2)
      ValueRank: -1,
      MaxStringLength: 0,
      DataSetFieldId: f.id,
      ...(f.unit !== undefined ? {
        Properties: [{
          Key: { Name: 'EngineeringUnits' },
          Value: { UaType: BuiltInType.ExtensionObject, Value: { UaTypeId: 'i=887', UaBody: { DisplayName: { Text: f.unit }, UnitId: -1 } } },
        }],
      } : {}),
    }));
    return {
      topic: this.topic('metadata', writer),
      retain: true,
      payload: JSON.stringify({
        MessageId: randomUUID(),
        MessageType: 'ua-metadata',
        PublisherId: this.options.publisherId,
        DataSetWriterId: writer.id,
        DataSetWriterName: writer.name,
        Timestamp: new Date(this.now()).toISOString(),
        MetaData: { Name: writer.name, Fields: fields, ConfigurationVersion: { MajorVersion: writer.major, MinorVersion: writer.minor } },
      }),
    };
  }

  /**
   * The messages of one (validated) tag batch, in publishing order: metadata first when it changed,
   * then the data. `warnings` names values refused because they contradict their field's DataType.
   */
  publish(batch: TagBatch): { messages: PubSubMessage[]; warnings: string[] } {
    const writer = this.writerOf(batch.topic);
    const messages: PubSubMessage[] = [];
    const warnings: string[] = [];
    const meta = batch.meta ?? {};
    let grew = false;
    for (const name in batch.payload) {
      if (writer.fields.has(name)) continue;
      const m = meta[name];
      const type = m?.type ?? inferredTagType(batch.payload[name]);
      if (!type) continue; // no type yet (null without meta.type): the field appears with its first value
      writer.fields.set(name, { name, builtIn: BUILT_IN_OF_TAG_TYPE[type], ...(m?.unit !== undefined ? { unit: m.unit } : {}), id: fieldGuid(writer.name, name) });
      grew = true;
    }
    if (grew) {
      // A field added: a new MajorVersion (§6.2.3.2.6), announced before the data that uses it; a key frame follows.
      writer.major = writer.minor = this.nextVersion();
      writer.sinceKeyFrame = 0;
      messages.push(this.metadata(writer));
    }
    const keyFrame = writer.sinceKeyFrame === 0;
    const payload: Record<string, unknown> = {};
    const time = batch.timestamp ?? this.now();
    for (const name in batch.payload) {
      const field = writer.fields.get(name);
      if (!field) continue;
      const encoded = this.encodeField(writer, field, batch.payload[name], meta[name], time, warnings);
      const text = JSON.stringify(encoded);
      if (!keyFrame && writer.last.get(name) === text) continue;
      writer.last.set(name, text);
      payload[name] = encoded;
    }
    if (keyFrame) {
      // A key frame carries every field of the DataSet (§7.2.5.4.1): the last known value of fields not in this batch.
      for (const [name, text] of writer.last) if (!(name in payload)) payload[name] = JSON.parse(text);
    }
    messages.push(this.data(writer, keyFrame ? 'ua-keyframe' : 'ua-deltaframe', time, payload));
    writer.sinceKeyFrame = (writer.sinceKeyFrame + 1) % this.keyFrameCount;
    return { messages, warnings };
  }

  private encodeField(writer: Writer, field: Field, value: MetricValue, m: MetricMeta | undefined, time: number, warnings: string[]): Record<string, unknown> {
    const declared = m?.type;
    const problem = declared !== undefined && BUILT_IN_OF_TAG_TYPE[declared] !== field.builtIn
      ? `is now declared ${declared}`
      : builtInValueProblem(field.builtIn, value);
    const sourceTimestamp = new Date(m?.timestamp ?? time).toISOString();
    if (problem) {
      warnings.push(`metric "${field.name}" of ${writer.name} (DataType ${builtInTypeName(field.builtIn)}): value refused, ${problem}; published as BadTypeMismatch`);
      return { Status: { Code: 0x80740000, Symbol: 'BadTypeMismatch' }, SourceTimestamp: sourceTimestamp };
    }
    const code = statusCodeOf(m?.quality, m?.reason, (name) => {
      const entry = Object.entries(SYMBOLS).find(([, symbol]) => symbol === name);
      return entry ? Number(entry[0]) : undefined;
    });
    const encodedValue = encodeValue(field.builtIn, value);
    return {
      ...(encodedValue !== undefined ? { Value: encodedValue } : {}),
      ...(code !== 0 ? { Status: { Code: code, Symbol: SYMBOLS[code] ?? (m?.reason && /^(Bad|Uncertain)[A-Za-z]+$/.test(m.reason) ? m.reason : undefined) } } : {}),
      SourceTimestamp: sourceTimestamp,
    };
  }

  /** A ua-data NetworkMessage (§7.2.5.3 Table 184) with one DataSetMessage (§7.2.5.4 Table 185). */
  private data(writer: Writer, messageType: 'ua-keyframe' | 'ua-deltaframe' | 'ua-keepalive', time: number, payload?: Record<string, unknown>): PubSubMessage {
    writer.sequence = (writer.sequence + 1) >>> 0; // UInt32, wraps (§7.2.3)
    writer.lastSentAt = this.now();
    const dataSetMessage = {
      DataSetWriterId: writer.id,
      DataSetWriterName: writer.name,
      SequenceNumber: writer.sequence,
      MetaDataVersion: { MajorVersion: writer.major, MinorVersion: writer.minor },
      Timestamp: new Date(time).toISOString(),
      MessageType: messageType,
      ...(payload ? { Payload: payload } : {}), // a keep-alive has no Payload (§7.2.5.4.1)
    };
    return {
      topic: this.topic('data', writer),
      retain: false, // §7.3.5.7: data is not retained
      payload: JSON.stringify({
        MessageId: randomUUID(),
        MessageType: 'ua-data',
        PublisherId: this.options.publisherId,
        WriterGroupName: this.options.writerGroupName,
        Messages: [dataSetMessage],
      }),
    };
  }

  /** ua-keepalive DataSetMessages for writers that sent nothing for the keep-alive time (§7.2.5.4.1). */
  keepAlives(): PubSubMessage[] {
    const keepAliveMs = this.options.keepAliveMs ?? 10_000;
    const now = this.now();
    const out: PubSubMessage[] = [];
    for (const writer of this.writers.values()) {
      if (now - writer.lastSentAt >= keepAliveMs) out.push(this.data(writer, 'ua-keepalive', now));
    }
    return out;
  }

  /** Every writer's metadata (after a reconnect: retained messages may have been lost with a broker). */
  allMetadata(): PubSubMessage[] {
    return [...this.writers.values()].map((w) => this.metadata(w));
  }
}
