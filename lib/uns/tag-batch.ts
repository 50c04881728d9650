/**
 * The tag batch: the one message contract between every uns-edge source and sink
 * (see docs/tag-batch.md for the prose and the JSON schema).
 *
 * One message carries all metrics of one asset read at one instant:
 *   msg.topic   – the asset's UNS path, ISA-95 levels enterprise/site/area/line/cell/asset
 *   msg.payload – { "<metric>": value, ... } plain values, so core nodes work on them
 *   msg.meta    – { "<metric>": MetricMeta, ... } per-metric metadata (optional per metric)
 *   msg.principal – who sent it, when a source knows (lib/principal.ts; docs/tag-batch.md § "Who sent a write")
 */
import type { Principal } from '../principal';

/** OPC UA-style quality, reduced to the three classes every protocol can map to. */
export type Quality = 'good' | 'uncertain' | 'bad';

/** Data types, named as Sparkplug B 3.0 names them (§6.4.16) so the Sparkplug mapping is 1:1. */
export type MetricDataType =
  | 'Int8' | 'Int16' | 'Int32' | 'Int64'
  | 'UInt8' | 'UInt16' | 'UInt32' | 'UInt64'
  | 'Float' | 'Double' | 'Boolean' | 'String' | 'DateTime' | 'Text' | 'Bytes';

/**
 * A metric value. Int64/UInt64 values outside ±2^53−1 are BigInt so that no precision is lost;
 * sinks serialise them as exact JSON number literals.
 */
export type MetricValue = number | bigint | boolean | string | null;

export interface MetricMeta {
  /** Source timestamp, ms since the Unix epoch. */
  timestamp?: number;
  quality?: Quality;
  /** Engineering unit, e.g. "A", "Hz", "degC", "rpm". */
  unit?: string;
  type?: MetricDataType;
  /** Free text, e.g. why quality is bad ("Modbus exception 2: illegal data address"). */
  reason?: string;
}

export interface TagBatch {
  topic: string;
  payload: Record<string, MetricValue>;
  meta?: Record<string, MetricMeta>;
  /** Batch timestamp (ms since epoch); the default for metrics that carry none. */
  timestamp?: number;
  /** The connection or session the batch came in through (set by uns-in, uns-sparkplug-device). */
  principal?: Principal;
  /** Set by uns-in when the broker sent the values from its retained store: state, never a command. */
  retain?: boolean;
}
