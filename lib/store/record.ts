/**
 * On-disk framing of one queued MQTT publish (docs/store-and-forward.md).
 *
 *   offset size  field
 *   0      2     magic 0x554E ("UN"), to find the next record after a damaged one
 *   2      4     body length (big-endian)
 *   6      4     CRC-32 of the body (zlib.crc32, ISO-HDLC polynomial)
 *   10     1     flags: bits 0–1 QoS, bit 2 retain
 *   11     8     enqueue time, ms since the epoch (float64 BE)
 *   19     2     topic length in bytes
 *   21     n     topic (UTF-8), then the payload bytes to the end of the body
 */
import { crc32 } from 'node:zlib';

export const RECORD_MAGIC = 0x554e;
export const HEADER_BYTES = 10;
const FIXED_BODY_BYTES = 11;

export type QoS = 0 | 1 | 2;

export interface StoredPublish {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  enqueuedAt: number;
}

export function encodeRecord(topic: string, payload: string | Buffer, qos: QoS, retain: boolean, enqueuedAt: number): Buffer {
  const topicBytes = Buffer.byteLength(topic);
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const bodyLength = FIXED_BODY_BYTES + topicBytes + payloadBytes;
  const record = Buffer.allocUnsafe(HEADER_BYTES + bodyLength);
  record.writeUInt16BE(RECORD_MAGIC, 0);
  record.writeUInt32BE(bodyLength, 2);
  record.writeUInt8(qos | (retain ? 4 : 0), 10);
  record.writeDoubleBE(enqueuedAt, 11);
  record.writeUInt16BE(topicBytes, 19);
  record.write(topic, 21, topicBytes, 'utf8');
  if (typeof payload === 'string') record.write(payload, 21 + topicBytes, payloadBytes, 'utf8');
  else payload.copy(record, 21 + topicBytes);
  record.writeUInt32BE(crc32(record.subarray(HEADER_BYTES)), 6);
  return record;
}

/** Length of the whole record (header + body) at `offset`, or 0 when no valid record starts there. */
export function validRecordLength(buffer: Buffer, offset: number, end: number): number {
  if (end - offset < HEADER_BYTES + FIXED_BODY_BYTES) return 0;
  if (buffer.readUInt16BE(offset) !== RECORD_MAGIC) return 0;
  const bodyLength = buffer.readUInt32BE(offset + 2);
  if (bodyLength < FIXED_BODY_BYTES || offset + HEADER_BYTES + bodyLength > end) return 0;
  const body = buffer.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + bodyLength);
  if (crc32(body) !== buffer.readUInt32BE(offset + 6)) return 0;
  if (body.readUInt16BE(9) > bodyLength - FIXED_BODY_BYTES) return 0;
  return HEADER_BYTES + bodyLength;
}

/** Decode a record that validRecordLength() accepted. The payload is a copy (it outlives the read buffer). */
export function decodeRecord(buffer: Buffer, offset: number, length: number): StoredPublish {
  const flags = buffer.readUInt8(offset + 10);
  const topicBytes = buffer.readUInt16BE(offset + 19);
  const topicStart = offset + 21;
  return {
    qos: (flags & 3) as QoS,
    retain: (flags & 4) !== 0,
    enqueuedAt: buffer.readDoubleBE(offset + 11),
    topic: buffer.toString('utf8', topicStart, topicStart + topicBytes),
    payload: Buffer.from(buffer.subarray(topicStart + topicBytes, offset + length)),
  };
}

/** Enqueue time of a valid record, without decoding the rest. */
export function recordTime(buffer: Buffer, offset: number): number {
  return buffer.readDoubleBE(offset + 11);
}

/**
 * Offset of the next valid record at or after `from`, or `end` when there is none. Used to step
 * over a damaged region: a record whose magic, length or CRC does not check out.
 */
export function nextValidRecord(buffer: Buffer, from: number, end: number): number {
  for (let offset = buffer.indexOf(0x55, from); offset !== -1 && offset < end; offset = buffer.indexOf(0x55, offset + 1)) {
    if (validRecordLength(buffer, offset, end) > 0) return offset;
  }
  return end;
}
