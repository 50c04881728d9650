/**
 * Sparkplug B 3.0 topic namespace (§4.1): `spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]`
 * and the host application's `spBv1.0/STATE/<host_id>` (§4.1.2), with the identifier rules.
 */

/** [tck-id-topic-structure-namespace-a] */
export const NAMESPACE = 'spBv1.0';

export const NODE_MESSAGE_TYPES = ['NBIRTH', 'NDEATH', 'NDATA', 'NCMD'] as const;
export const DEVICE_MESSAGE_TYPES = ['DBIRTH', 'DDEATH', 'DDATA', 'DCMD'] as const;
export type NodeMessageType = (typeof NODE_MESSAGE_TYPES)[number];
export type DeviceMessageType = (typeof DEVICE_MESSAGE_TYPES)[number];

export type IdKind = 'group id' | 'edge node id' | 'device id' | 'host id';

export class SparkplugIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SparkplugIdError';
    Object.setPrototypeOf(this, SparkplugIdError.prototype);
  }
}

/**
 * Why `id` is not a valid Sparkplug identifier, or undefined when it is. [tck-id-intro-group-id-chars]
 * [tck-id-intro-edge-node-id-chars] [tck-id-intro-device-id-chars]: valid UTF-8 without `+`, `/`, `#`
 * (they are MQTT topic separators and wildcards, MQTT v5.0 §4.7). Also refused: U+0000 (MQTT v5.0
 * §1.5.4 [MQTT-1.5.4-2]) and the other control characters, which MQTT says SHOULD NOT appear.
 */
export function sparkplugIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string';
  if (id.length === 0) return 'is empty';
  const bad = /[+/#]/.exec(id);
  if (bad) return `contains "${bad[0]}" (not allowed: + / #)`;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) return 'contains a control character';
  // A lone UTF-16 surrogate has no UTF-8 form.
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(id)) return 'is not valid UTF-8 (lone surrogate)';
  return undefined;
}

/** The id, or a SparkplugIdError that says which id and what is wrong with it. */
export function checkSparkplugId(kind: IdKind, id: unknown): string {
  const problem = sparkplugIdProblem(id);
  if (problem !== undefined) {
    const shown = typeof id === 'string' ? `"${id}"` : String(id);
    throw new SparkplugIdError(`Sparkplug ${kind} ${shown} ${problem}`);
  }
  return id as string;
}

/** [tck-id-topic-structure] without a device: NBIRTH, NDEATH, NDATA, NCMD. */
export function nodeTopic(groupId: string, type: NodeMessageType, edgeNodeId: string): string {
  return `${NAMESPACE}/${groupId}/${type}/${edgeNodeId}`;
}

/** [tck-id-topic-structure-namespace-device-id-associated-message-types]: DBIRTH, DDEATH, DDATA, DCMD. */
export function deviceTopic(groupId: string, type: DeviceMessageType, edgeNodeId: string, deviceId: string): string {
  return `${NAMESPACE}/${groupId}/${type}/${edgeNodeId}/${deviceId}`;
}

/** The host application's STATE topic (Sparkplug 3.0 §4.1.2; not the pre-3.0 `STATE/<host_id>`). */
export function stateTopic(hostId: string): string {
  return `${NAMESPACE}/STATE/${hostId}`;
}

export type ParsedTopic =
  | { kind: 'node'; groupId: string; type: NodeMessageType; edgeNodeId: string }
  | { kind: 'device'; groupId: string; type: DeviceMessageType; edgeNodeId: string; deviceId: string }
  | { kind: 'state'; hostId: string };

/** A Sparkplug topic's parts, or undefined when the topic is not one. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const levels = topic.split('/');
  if (levels[0] !== NAMESPACE) return undefined;
  if (levels.length === 3 && levels[1] === 'STATE') return levels[2] === '' ? undefined : { kind: 'state', hostId: levels[2] };
  if (levels.some((level) => level === '')) return undefined;
  const type = levels[2];
  if (levels.length === 4 && (NODE_MESSAGE_TYPES as readonly string[]).includes(type)) {
    return { kind: 'node', groupId: levels[1], type: type as NodeMessageType, edgeNodeId: levels[3] };
  }
  if (levels.length === 5 && (DEVICE_MESSAGE_TYPES as readonly string[]).includes(type)) {
    return { kind: 'device', groupId: levels[1], type: type as DeviceMessageType, edgeNodeId: levels[3], deviceId: levels[4] };
  }
  return undefined;
}
