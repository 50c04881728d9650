/**
 * An independent Sparkplug B decoder for tests: protobufjs on lib/sparkplug/sparkplug_b.proto,
 * with 64-bit fields as decimal strings (reference/sparkplug.md §0 "DEC"). The unit tests check
 * uns-edge's own codec against it, and the conformance suite reads everything it observes on the
 * broker with it, so no test judges uns-edge's codec with uns-edge's codec.
 */
import { join } from 'node:path';
import * as protobuf from 'protobufjs';

const root = new protobuf.Root().loadSync(join(__dirname, '..', '..', 'lib', 'sparkplug', 'sparkplug_b.proto'), { keepCase: true });
export const OraclePayload = root.lookupType('org.eclipse.tahu.protobuf.Payload');

/** Field names as in the .proto (snake_case); uint64 as strings; oneof name in e.g. `value`. */
export interface OracleMetric {
  name?: string;
  alias?: string;
  timestamp?: string;
  datatype?: number;
  is_historical?: boolean;
  is_transient?: boolean;
  is_null?: boolean;
  properties?: { keys?: string[]; values?: Record<string, unknown>[] };
  int_value?: number;
  long_value?: string;
  float_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
  bytes_value?: Buffer;
  dataset_value?: Record<string, unknown>;
  template_value?: Record<string, unknown>;
  /** Which oneof field is set. */
  value?: string;
  [key: string]: unknown;
}

export interface OracleDecoded {
  timestamp?: string;
  seq?: string;
  uuid?: string;
  metrics: OracleMetric[];
}

/** Decode with protobufjs; throws on bytes that are not a valid Payload. */
export function oracleDecode(bytes: Uint8Array): OracleDecoded {
  const message = OraclePayload.decode(bytes);
  const object = OraclePayload.toObject(message, { longs: String, bytes: Buffer, oneofs: true, arrays: true }) as OracleDecoded;
  object.metrics ??= [];
  return object;
}

/** Encode a plain object (snake_case fields) with protobufjs. */
export function oracleEncode(object: Record<string, unknown>): Buffer {
  return Buffer.from(OraclePayload.encode(OraclePayload.fromObject(object)).finish());
}

