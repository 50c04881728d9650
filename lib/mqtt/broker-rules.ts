/**
 * What a broker refuses that the MQTT standard allows, so a gateway can refuse it first with an
 * error naming the broker's rule, instead of the broker closing the connection (which loses what
 * follows on the socket and, for a kept QoS 1 message, repeats at every reconnect).
 *
 * Measured (docs/scaling.md, NATS 2.9.10): `characters ' ' and '.' not supported for MQTT topics`
 * (the connection is closed: for a PUBLISH, a SUBSCRIBE after its SUBACK 0x80, a CONNECT whose
 * Will topic has one, before CONNACK); `publish QoS=2 not supported` (closed); a QoS 2
 * subscription is granted QoS 1; MQTT 5 is refused at CONNECT (unacceptable protocol version).
 */
import type { QoS } from './connection';

export type BrokerProfile = 'standard' | 'nats';

export interface BrokerRules {
  /** For messages: "NATS". */
  name: string;
  /** Characters the broker refuses anywhere in a topic name or filter. */
  forbiddenTopicChars: readonly string[];
  /** Highest QoS the broker accepts on a PUBLISH. */
  maxPublishQos: QoS;
  /** MQTT protocol levels it accepts (4 = 3.1.1, 5 = 5.0). */
  protocolVersions: readonly (4 | 5)[];
}

export const BROKER_RULES: Readonly<Record<BrokerProfile, BrokerRules>> = {
  standard: { name: 'an MQTT broker', forbiddenTopicChars: [], maxPublishQos: 2, protocolVersions: [4, 5] },
  nats: { name: 'NATS', forbiddenTopicChars: ['.', ' '], maxPublishQos: 1, protocolVersions: [4] },
};

export function brokerRules(profile: string | undefined): BrokerRules {
  return profile === 'nats' ? BROKER_RULES.nats : BROKER_RULES.standard;
}

/** Why the broker would refuse this topic (name or filter), or undefined. */
export function topicRefusal(rules: BrokerRules, topic: string): string | undefined {
  const found = rules.forbiddenTopicChars.filter((char) => topic.includes(char));
  if (found.length === 0) return undefined;
  const list = rules.forbiddenTopicChars.map((char) => (char === ' ' ? 'space' : `"${char}"`)).join(' and ');
  return `${rules.name} does not allow ${list} in MQTT topics: "${topic}"`;
}

/** Why the broker would refuse a PUBLISH at this QoS, or undefined. */
export function qosRefusal(rules: BrokerRules, qos: QoS): string | undefined {
  return qos > rules.maxPublishQos ? `${rules.name} does not support QoS ${qos} (at most QoS ${rules.maxPublishQos})` : undefined;
}

/** Why the broker would refuse this protocol level, or undefined. */
export function protocolRefusal(rules: BrokerRules, protocolVersion: 4 | 5): string | undefined {
  return rules.protocolVersions.includes(protocolVersion) ? undefined : `${rules.name} does not accept MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}`;
}

/** MQTT v5.0 §2.4 reason codes a broker sends in DISCONNECT/PUBACK when it refuses something. */
const REASON_NAMES: Record<number, string> = {
  0x80: 'Unspecified error',
  0x81: 'Malformed Packet',
  0x82: 'Protocol Error',
  0x83: 'Implementation specific error',
  0x87: 'Not authorized',
  0x89: 'Server busy',
  0x8b: 'Server shutting down',
  0x8d: 'Keep Alive timeout',
  0x8e: 'Session taken over',
  0x90: 'Topic Name invalid',
  0x93: 'Receive Maximum exceeded',
  0x94: 'Topic Alias invalid',
  0x95: 'Packet too large',
  0x97: 'Quota exceeded',
  0x99: 'Payload format invalid',
  0x9a: 'Retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'Use another server',
  0x9d: 'Server moved',
  0x9f: 'Connection rate exceeded',
};

/** "reason code 0x90 (Topic Name invalid)". */
export function reasonText(code: number): string {
  const name = REASON_NAMES[code];
  return `reason code 0x${code.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}`;
}
