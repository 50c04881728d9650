/**
 * Who asked for a write: the principal a message carries into audit records (and, later, into
 * conduit rules). Sources that know an authenticated identity set `msg.principal`; sinks that
 * write (uns-vfd, uns-modbus-write, uns-sparkplug-device's DCMD output, OPC UA writes) read it
 * with `senderOf(msg)`. Contract: docs/tag-batch.md § "Who sent a write".
 *
 * `msg.principal` may come from another JS realm (a function node's sandbox) or from a user's
 * change node, so it is read field by field and never trusted for its prototype.
 */

/** How the identity was established. */
export type PrincipalVia = 'mqtt' | 'sparkplug' | 'opcua' | 'dashboard' | 'flow';

export interface Principal {
  via: PrincipalVia;
  /** The name used in audit records and conduit rules, e.g. "mqtt:gw-line2 (user alice)". */
  id: string;
  /** MQTT username / OPC UA user name / dashboard user. */
  user?: string;
  /** MQTT client identifier of the connection the message came in on. */
  clientId?: string;
  /** Sparkplug host application id (the primary host that owns the session). */
  hostId?: string;
  /** Common name of an X.509 client or user certificate. */
  certificateCN?: string;
}

const VIAS: readonly PrincipalVia[] = ['mqtt', 'sparkplug', 'opcua', 'dashboard', 'flow'];
const MAX_FIELD_LENGTH = 256;

function text(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed.slice(0, MAX_FIELD_LENGTH);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The principal of an MQTT subscription (uns-in): the connection's client id and username. */
export function mqttPrincipal(clientId: string, user?: string): Principal {
  const name = text(user);
  return { via: 'mqtt', id: `mqtt:${clientId}${name ? ` (user ${name})` : ''}`, clientId, ...(name ? { user: name } : {}) };
}

/** The principal of a Sparkplug command: the host application that owns the edge node's session. */
export function sparkplugPrincipal(hostId: string | undefined, edgeClientId: string): Principal {
  const host = text(hostId);
  return host
    ? { via: 'sparkplug', id: `sparkplug-host:${host}`, hostId: host, clientId: edgeClientId }
    : { via: 'sparkplug', id: `sparkplug:${edgeClientId} (no primary host)`, clientId: edgeClientId };
}

/** `msg.principal` read defensively; undefined when absent or unusable. */
export function principalOf(msg: { principal?: unknown }): Principal | undefined {
  const raw = msg.principal;
  if (!isObject(raw)) return undefined;
  const id = text(raw.id);
  if (!id) return undefined;
  const via = VIAS.find((v) => v === raw.via) ?? 'flow';
  const principal: Principal = { via, id };
  for (const key of ['user', 'clientId', 'hostId', 'certificateCN'] as const) {
    const value = text(raw[key]);
    if (value) principal[key] = value;
  }
  return principal;
}

/**
 * Who sent a message, for the audit trail: msg.principal (set by uns-in, uns-sparkplug-device,
 * later uns-opcua-server), else msg.user (a name, or an object with username, name or id), else
 * the user of a dashboard client (msg._client.user), else the message id.
 */
export function senderOf(msg: { principal?: unknown; user?: unknown; _client?: unknown; _msgid?: unknown }): string {
  const principal = principalOf(msg);
  if (principal) return principal.id;
  const named = (value: unknown): string | undefined => {
    const direct = text(value);
    if (direct) return direct;
    if (!isObject(value)) return undefined;
    for (const key of ['username', 'name', 'id', 'userId']) {
      const v = text(value[key]);
      if (v) return v;
    }
    return undefined;
  };
  return named(msg.user) ?? (isObject(msg._client) ? named(msg._client.user) : undefined) ?? `msg ${String(msg._msgid ?? '(no id)')}`;
}
