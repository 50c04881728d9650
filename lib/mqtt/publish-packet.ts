/**
 * One QoS 0 PUBLISH packet as one Buffer, for the publish hot path (lib/mqtt/connection.ts).
 *
 * mqtt-packet writes a PUBLISH to the socket as five or six chunks (fixed header, remaining length,
 * topic length, topic, MQTT 5 property length, payload), each a Buffer or a string the stream turns
 * into one: at 100,000 publishes per second that is half a million small writes for the socket's
 * writev to gather. This encodes the same bytes in one allocation.
 *
 * Layout (MQTT v3.1.1 §3.3, v5.0 §3.3):
 *   fixed header   0x30 | RETAIN (QoS 0, DUP 0: v3.1.1 §3.3.1.1–3.3.1.3, v5.0 §3.3.1.1–3.3.1.3)
 *                  Remaining Length, a Variable Byte Integer (v3.1.1 §2.2.3, v5.0 §1.5.5)
 *   variable header  Topic Name, a UTF-8 Encoded String: two-byte length then the bytes (v3.1.1 §1.5.3,
 *                  v5.0 §1.5.4); no Packet Identifier at QoS 0 (v3.1.1 §3.3.2.2, v5.0 §3.3.2.2);
 *                  MQTT 5 only: Property Length 0, no properties (v5.0 §3.3.2.3.1)
 *   payload        the application message as it is (v3.1.1 §3.3.3, v5.0 §3.3.3)
 */

/** Largest Remaining Length a Variable Byte Integer can carry (v3.1.1 §2.2.3, v5.0 §1.5.5). */
export const MAX_REMAINING_LENGTH = 268_435_455;
/** Longest UTF-8 Encoded String in bytes (v3.1.1 §1.5.3, v5.0 §1.5.4). */
export const MAX_TOPIC_BYTES = 65_535;

const PUBLISH_QOS0 = 0x30;
const RETAIN = 0x01;

/** Bytes of `length` as a Variable Byte Integer. */
function variableByteIntegerLength(length: number): number {
  if (length < 128) return 1;
  if (length < 16_384) return 2;
  if (length < 2_097_152) return 3;
  return 4;
}

/**
 * The QoS 0 PUBLISH packet of `topic` and `payload` (a string is sent as UTF-8). Throws a RangeError
 * for a topic or packet the protocol cannot carry; the topic's syntax (no wildcards, not empty) is the
 * caller's to check, as MQTT.js leaves it too.
 */
export function encodeQos0Publish(topic: string, payload: string | Buffer, retain: boolean, protocolVersion: 4 | 5): Buffer {
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes > MAX_TOPIC_BYTES) throw new RangeError(`MQTT topic of ${topicBytes} bytes: a topic name is at most ${MAX_TOPIC_BYTES} bytes (MQTT §1.5.3)`);
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const remaining = 2 + topicBytes + (protocolVersion === 5 ? 1 : 0) + payloadBytes;
  if (remaining > MAX_REMAINING_LENGTH) throw new RangeError(`MQTT PUBLISH of ${remaining} bytes: a packet carries at most ${MAX_REMAINING_LENGTH} (MQTT §2.2.3)`);
  const packet = Buffer.allocUnsafe(1 + variableByteIntegerLength(remaining) + remaining);
  packet[0] = retain ? PUBLISH_QOS0 | RETAIN : PUBLISH_QOS0;
  let offset = 1;
  let rest = remaining;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    packet[offset++] = byte;
  } while (rest > 0);
  packet[offset++] = topicBytes >> 8;
  packet[offset++] = topicBytes & 0xff;
  offset += packet.write(topic, offset, topicBytes, 'utf8');
  if (protocolVersion === 5) packet[offset++] = 0;
  if (typeof payload === 'string') packet.write(payload, offset, payloadBytes, 'utf8');
  else payload.copy(packet, offset);
  return packet;
}
