/**
 * The broker settings that uns-broker, uns-sparkplug-edge and uns-sparkplug-host share (the same
 * editor fields, the same credentials), mapped to lib/mqtt's connection options in one place.
 */
import { readFileSync } from 'node:fs';
import type { MqttConnectionOptions, TlsOptions } from '../../lib/mqtt/connection';
import { parseServerList } from '../../lib/mqtt/server-list';

/** Broker fields as saved in the flow (property names are part of the flow format). */
export interface BrokerConfig {
  host: string;
  port: string | number;
  protocolVersion: string | number;
  clientId: string;
  keepalive: string | number;
  usetls: boolean;
  tlsCa: string;
  tlsCert: string;
  tlsKey: string;
  tlsServername: string;
  tlsRejectUnauthorized: boolean;
  reconnectMin: string | number;
  reconnectMax: string | number;
  /** More servers after host:port, one per line (docs/scaling.md); absent in flows made before server lists. */
  servers?: string;
  /** 'ordered' (default) or 'random'. */
  serverOrder?: string;
}

/** Kept in Node-RED's credential store, never in the flow. */
export interface BrokerCredentials {
  user?: string;
  password?: string;
  passphrase?: string;
}

/** The credentials definition for RED.nodes.registerType. */
export const BROKER_CREDENTIALS = {
  user: { type: 'text' },
  password: { type: 'password' },
  passphrase: { type: 'password' },
} as const;

/** A number from the editor (strings in older flows); `fallback` when empty or not a number. */
export function num(value: string | number | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : fallback;
}

/** MQTT connection options from a node's broker fields; throws when a TLS file is unreadable or a server entry is bad. */
export function mqttOptions(config: BrokerConfig, credentials: BrokerCredentials, defaultClientId: string): Omit<MqttConnectionOptions, 'clean' | 'sessionExpirySec' | 'will'> {
  let tls: TlsOptions | undefined;
  if (config.usetls) {
    const read = (path: string): Buffer | undefined => (path?.trim() ? readFileSync(path.trim()) : undefined);
    tls = {
      ca: read(config.tlsCa),
      cert: read(config.tlsCert),
      key: read(config.tlsKey),
      passphrase: credentials.passphrase || undefined,
      servername: config.tlsServername?.trim() || undefined,
      rejectUnauthorized: config.tlsRejectUnauthorized !== false,
    };
  }
  const minSec = Math.max(0.1, num(config.reconnectMin, 1));
  const defaultPort = tls ? 8883 : 1883;
  const first = { host: config.host?.trim() || '127.0.0.1', port: num(config.port, defaultPort) };
  return {
    ...first,
    servers: [first, ...parseServerList(config.servers, defaultPort, tls !== undefined)],
    serverOrder: config.serverOrder === 'random' ? 'random' : 'ordered',
    tls,
    protocolVersion: num(config.protocolVersion, 4) === 5 ? 5 : 4,
    // Stable per node: brokers and Sparkplug hosts recognise a client by it.
    clientId: config.clientId?.trim() || defaultClientId,
    username: credentials.user || undefined,
    password: credentials.password || undefined,
    keepaliveSec: num(config.keepalive, 60),
    connectTimeoutMs: 10000,
    backoff: { initialMs: minSec * 1000, maxMs: Math.max(minSec, num(config.reconnectMax, 60)) * 1000, jitter: 0.5 },
  };
}
