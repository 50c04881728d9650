/**
 * Zero-trust gaps at zone boundaries (issue 10 item 4, docs/zones.md § "Zone lint"): a connection
 * into a zone whose target security level asks for more than the connection gives.
 *
 * Which FR of the zone's SL-T vector asks for what (reference/security.md §1):
 * - authentication (user, client certificate, OPC UA user identity): SL-T(IAC, FR1) ≥ 2, where
 *   SR 1.2 (identification and authentication of software processes and devices) starts;
 * - an encrypted, server-verified channel (TLS, OPC UA Sign/SignAndEncrypt): SL-T(SI, FR3) ≥ 2 or
 *   SL-T(DC, FR4) ≥ 2 (SR 3.1 communication integrity, SR 4.1 confidentiality in transit);
 * - an editor (the admin API) with adminAuth: any zone in use with SL-T(IAC) ≥ 2 (SR 1.1, 2.1).
 * Modbus TCP/RTU has neither authentication nor encryption: a Modbus link is not flagged; its
 * zone relies on network segmentation (SR 5.1) and on the conduit.
 */
import type { FlowEntry } from './lint-flows';
import type { Zone } from './lint-zone-model';

export type Severity = 'error' | 'warning';

export interface GapFinding {
  code: 'no-tls' | 'tls-unverified' | 'no-authentication' | 'authentication-unknown' | 'opcua-security-none' | 'editor-without-admin-auth';
  severity: Severity;
  message: string;
}

/** Settings of the Node-RED the flows run in, when known (the admin endpoint, a --settings file). */
export interface LintSettings {
  adminAuth?: unknown;
  httpAdminRoot?: string | false;
  uiHost?: string;
}

/** Decrypted credentials by node id (flows_cred.json), when known. */
export type CredentialsById = Record<string, Record<string, unknown> | undefined>;

const MQTT_TYPES = ['uns-broker', 'uns-sparkplug-edge', 'uns-sparkplug-host', 'uns-pubsub-connection'];
const OPCUA_ENDPOINT_TYPE = 'uns-opcua-endpoint';
const OPCUA_SERVER_TYPE = 'uns-opcua-server';

function needsChannelSecurity(zone: Zone): boolean {
  return zone.slt.SI >= 2 || zone.slt.DC >= 2;
}

function needsAuthentication(zone: Zone): boolean {
  return zone.slt.IAC >= 2;
}

function hasText(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

function slt(zone: Zone, ...frs: Array<keyof Zone['slt']>): string {
  return frs.map((fr) => `SL-T(${fr}) ${zone.slt[fr]}`).join(', ');
}

function mqttGaps(connection: FlowEntry, zone: Zone, credentials: CredentialsById | undefined): GapFinding[] {
  const gaps: GapFinding[] = [];
  const tls = connection.usetls === true;
  if (needsChannelSecurity(zone)) {
    if (!tls) gaps.push({ code: 'no-tls', severity: 'error', message: `connects without TLS, but zone "${zone.name}" has ${slt(zone, 'SI', 'DC')}` });
    else if (connection.tlsRejectUnauthorized === false) gaps.push({ code: 'tls-unverified', severity: 'error', message: `uses TLS without verifying the broker's certificate, but zone "${zone.name}" has ${slt(zone, 'SI', 'DC')}` });
  }
  if (needsAuthentication(zone) && !(tls && hasText(connection.tlsCert))) {
    const known = credentials?.[connection.id];
    if (credentials === undefined) {
      gaps.push({ code: 'authentication-unknown', severity: 'warning', message: `has no client certificate and its user name is in the credentials, which the lint was not given; zone "${zone.name}" has ${slt(zone, 'IAC')}` });
    } else if (!hasText(known?.user)) {
      gaps.push({ code: 'no-authentication', severity: 'error', message: `connects without a user or client certificate, but zone "${zone.name}" has ${slt(zone, 'IAC')}` });
    }
  }
  return gaps;
}

function opcuaGaps(endpoint: FlowEntry, zone: Zone): GapFinding[] {
  const gaps: GapFinding[] = [];
  if (endpoint.securityMode === 'None') {
    const required = needsChannelSecurity(zone);
    gaps.push({ code: 'opcua-security-none', severity: required ? 'error' : 'warning', message: `uses OPC UA security mode None (no signing, no encryption)${required ? `, but zone "${zone.name}" has ${slt(zone, 'SI', 'DC')}` : ''}` });
  }
  if (needsAuthentication(zone) && (endpoint.userIdentity ?? 'anonymous') === 'anonymous') {
    gaps.push({ code: 'no-authentication', severity: 'error', message: `logs in as the anonymous user, but zone "${zone.name}" has ${slt(zone, 'IAC')}` });
  }
  return gaps;
}

/**
 * The OPC UA server toward SCADA/MES: it never admits anonymous sessions (lib/opcua/server-runtime.ts),
 * so only the extra endpoint with security None (`allowNone`) is a gap.
 */
function opcuaServerGaps(server: FlowEntry, zone: Zone): GapFinding[] {
  if (server.allowNone !== true) return [];
  const required = needsChannelSecurity(zone);
  return [{ code: 'opcua-security-none', severity: required ? 'error' : 'warning', message: `also offers OPC UA security mode None (no signing, no encryption)${required ? `, but zone "${zone.name}" has ${slt(zone, 'SI', 'DC')}` : ''}` }];
}

/** The gaps of one connection (config node, or a node that owns its connection) in its zone. */
export function connectionGaps(connection: FlowEntry, zone: Zone, credentials: CredentialsById | undefined): GapFinding[] {
  if (MQTT_TYPES.includes(connection.type)) return mqttGaps(connection, zone, credentials);
  if (connection.type === OPCUA_ENDPOINT_TYPE) return opcuaGaps(connection, zone);
  if (connection.type === OPCUA_SERVER_TYPE) return opcuaServerGaps(connection, zone);
  return [];
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '::1'];

/** An editor without adminAuth while the flows reach a zone that asks for authentication. */
export function editorGap(settings: LintSettings, zones: Zone[]): GapFinding | undefined {
  if (settings.httpAdminRoot === false || settings.adminAuth) return undefined;
  const strict = zones.filter(needsAuthentication);
  if (strict.length === 0) return undefined;
  const loopback = typeof settings.uiHost === 'string' && LOOPBACK_HOSTS.includes(settings.uiHost);
  return {
    code: 'editor-without-admin-auth',
    severity: loopback ? 'warning' : 'error',
    message: `the editor has no adminAuth${loopback ? ' (it listens on loopback only)' : ''}, but the flows reach ${strict.map((zone) => `zone "${zone.name}" with ${slt(zone, 'IAC')}`).join(', ')}: anyone who reaches the editor can rewire them`,
  };
}
