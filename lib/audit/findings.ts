/**
 * Findings: what the inventory means for security, each mapped to the IEC 62443-3-3 system
 * requirements (SRs) it touches, with a severity and what to do (docs/asset-scan.md § "Findings").
 *
 * SR facts from reference/security.md §1 (secondary sources; verify against a licensed copy before
 * claiming compliance). Severity is ours: critical (anyone on the network can change the process
 * without credentials), high (anyone can read or impersonate; cryptography off), medium (weakened
 * cryptography, expiring trust), low (information that helps an attacker), info.
 */
import type { CertificateSummary, Inventory } from './inventory';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** The SRs the findings cite, with their names (IEC 62443-3-3). */
export const SECURITY_REQUIREMENTS: Readonly<Record<string, string>> = {
  'SR 1.1': 'Human user identification and authentication',
  'SR 1.2': 'Software process and device identification and authentication',
  'SR 1.8': 'Public key infrastructure certificates',
  'SR 2.1': 'Authorization enforcement',
  'SR 3.1': 'Communication integrity',
  'SR 4.1': 'Information confidentiality',
  'SR 4.3': 'Use of cryptography',
  'SR 5.1': 'Network segmentation',
  'SR 7.7': 'Least functionality',
};

export interface Finding {
  /** Stable over scans of the same target: rule and target. */
  id: string;
  rule: string;
  severity: Severity;
  sr: string[];
  title: string;
  /** host:port, endpoint URL or listener. */
  target: string;
  evidence: string;
  remediation: string;
}

/** Certificates expiring within this many days are a finding (as lib/opcua/certificates.ts warns). */
export const CERTIFICATE_WARNING_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;
const DEPRECATED_POLICIES = new Set(['Basic128Rsa15', 'Basic256']);

function finding(rule: string, target: string, fields: Omit<Finding, 'id' | 'rule' | 'target'>): Finding {
  return { id: `${rule}@${target}`, rule, target, ...fields };
}

function certificateFindings(prefix: string, target: string, certificate: CertificateSummary, now: number): Finding[] {
  const out: Finding[] = [];
  const validTo = Date.parse(certificate.validTo);
  const days = Math.floor((validTo - now) / DAY_MS);
  const who = `certificate "${certificate.subject}" (thumbprint ${certificate.thumbprint})`;
  if (validTo <= now) {
    out.push(finding(`${prefix}-certificate-expired`, target, { severity: 'high', sr: ['SR 1.8'], title: 'Server certificate expired', evidence: `${who} expired ${certificate.validTo}`, remediation: 'Renew the certificate; clients that accept an expired certificate accept any.' }));
  } else if (days < CERTIFICATE_WARNING_DAYS) {
    out.push(finding(`${prefix}-certificate-expiring`, target, { severity: 'medium', sr: ['SR 1.8'], title: `Server certificate expires in ${days} days`, evidence: `${who} valid to ${certificate.validTo}`, remediation: 'Renew the certificate before it expires and distribute it to the clients\' trust lists.' }));
  }
  if (Date.parse(certificate.validFrom) > now) {
    out.push(finding(`${prefix}-certificate-not-yet-valid`, target, { severity: 'medium', sr: ['SR 1.8'], title: 'Server certificate not yet valid', evidence: `${who} valid from ${certificate.validFrom}`, remediation: 'Check the server clock and the certificate.' }));
  }
  if (certificate.selfSigned) {
    out.push(finding(`${prefix}-certificate-self-signed`, target, { severity: 'low', sr: ['SR 1.8'], title: 'Self-signed server certificate', evidence: who, remediation: 'Trust it explicitly by thumbprint, or issue it from the plant\'s CA so clients can check the chain and revocation.' }));
  }
  return out;
}

/** The findings of an inventory at time `now` (ms), most severe first. */
export function assess(inventory: Inventory, now = Date.now()): Finding[] {
  const findings: Finding[] = [];
  for (const host of inventory.modbus) {
    // Units that answered as Modbus devices do (a normal or an exception response): garbage is no device.
    const answering = host.units.filter((u) => u.functionCodes.some((p) => p.answer === 'answers' || p.answer === 'illegal-function' || p.answer === 'exception'));
    if (answering.length === 0) continue;
    const target = `${host.host}:${host.port}`;
    const units = answering.map((u) => u.unitId).join(', ');
    findings.push(finding('modbus-unauthenticated', target, {
      severity: 'critical', sr: ['SR 1.2', 'SR 2.1', 'SR 5.1'],
      title: 'Modbus TCP answers anyone: no identification, authentication or authorisation',
      evidence: `units ${units} answered requests from the scanner without any credentials; Modbus TCP carries none, so any host that reaches the port can also write (writes are never probed)`,
      remediation: 'Reach the device only from its zone: an OT firewall or uns-conduit that allows only the gateway, the function codes and the registers needed (SR 5.1/5.2); Modbus/TCP Security (TLS, port 802) where the device supports it.',
    }));
    findings.push(finding('modbus-plaintext', target, {
      severity: 'medium', sr: ['SR 3.1', 'SR 4.1'],
      title: 'Modbus TCP in plaintext: no integrity or confidentiality protection',
      evidence: `port ${host.port} speaks Modbus TCP without TLS`,
      remediation: 'Keep the traffic inside the cell\'s zone; carry it across zones only through a conduit that protects it (TLS, VPN), or use Modbus/TCP Security.',
    }));
    const identified = answering.filter((u) => u.identity?.vendorName !== undefined);
    if (identified.length) {
      findings.push(finding('modbus-device-identification', target, {
        severity: 'low', sr: ['SR 7.7'],
        title: 'Device identification (FC 43/14) disclosed to anyone',
        evidence: identified.map((u) => `unit ${u.unitId}: ${[u.identity?.vendorName, u.identity?.productCode, u.identity?.revision].join(' / ')}`).join('; '),
        remediation: 'Vendor, product and firmware revision tell an attacker which exploits apply: block FC 43 at the zone boundary where the device cannot turn it off.',
      }));
    }
  }
  for (const server of inventory.opcua) {
    if (!server.reachable) continue;
    const target = server.url;
    const none = server.endpoints.filter((e) => e.securityMode === 'None');
    if (none.length) {
      findings.push(finding('opcua-security-none', target, {
        severity: 'high', sr: ['SR 3.1', 'SR 4.1'],
        title: 'OPC UA endpoint with security mode None',
        evidence: none.map((e) => `${e.endpointUrl} (${e.securityPolicy})`).join('; '),
        remediation: 'Offer only Sign or SignAndEncrypt with current policies (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss); None is a testing profile (OPC 10000-2 §4.6).',
      }));
    }
    const deprecated = server.endpoints.filter((e) => DEPRECATED_POLICIES.has(e.securityPolicy));
    if (deprecated.length) {
      findings.push(finding('opcua-deprecated-policy', target, {
        severity: 'medium', sr: ['SR 3.1', 'SR 4.3'],
        title: 'OPC UA endpoint with a deprecated security policy (SHA-1)',
        evidence: [...new Set(deprecated.map((e) => `${e.securityPolicy} ${e.securityMode}`))].join('; '),
        remediation: 'Remove Basic128Rsa15 and Basic256 (deprecated by IEC 62541-7:2020).',
      }));
    }
    const anonymous = server.endpoints.filter((e) => e.userTokenTypes.includes('Anonymous'));
    if (anonymous.length) {
      findings.push(finding('opcua-anonymous', target, {
        severity: anonymous.some((e) => e.securityMode === 'None') ? 'critical' : 'high', sr: ['SR 1.1', 'SR 1.2'],
        title: 'OPC UA server accepts anonymous users',
        evidence: anonymous.map((e) => `${e.endpointUrl} ${e.securityMode} ${e.securityPolicy}`).join('; '),
        remediation: 'Disable the Anonymous user token on every endpoint that can write or call methods; require user name/password or X.509 users.',
      }));
    }
    const signOnly = server.endpoints.filter((e) => e.securityMode === 'Sign');
    if (signOnly.length) {
      findings.push(finding('opcua-sign-only', target, {
        severity: 'low', sr: ['SR 4.1'],
        title: 'OPC UA endpoint that signs but does not encrypt',
        evidence: signOnly.map((e) => `${e.endpointUrl} ${e.securityPolicy}`).join('; '),
        remediation: 'Prefer SignAndEncrypt where values or credentials must stay confidential across zones.',
      }));
    }
    const certificates = new Map(server.endpoints.flatMap((e) => (e.certificate ? [[e.certificate.thumbprint, e.certificate] as const] : [])));
    for (const certificate of certificates.values()) findings.push(...certificateFindings('opcua', target, certificate, now));
  }
  for (const listener of inventory.mqtt) {
    if (!listener.open) continue;
    const target = `${listener.tls ? 'mqtts' : 'mqtt'}://${listener.host.includes(':') ? `[${listener.host}]` : listener.host}:${listener.port}`;
    if (!listener.tls && listener.mqtt) {
      findings.push(finding('mqtt-plaintext', target, {
        severity: 'high', sr: ['SR 3.1', 'SR 4.1'],
        title: 'MQTT broker listens in plaintext',
        evidence: `port ${listener.port} accepted an MQTT CONNECT without TLS: user names, passwords and every value cross the network readable and changeable`,
        remediation: 'Listen on TLS (8883) only, or bind the plaintext listener to loopback.',
      }));
    }
    if (listener.anonymousAccepted) {
      findings.push(finding('mqtt-anonymous', target, {
        severity: 'critical', sr: ['SR 1.1', 'SR 1.2', 'SR 2.1'],
        title: 'MQTT broker accepts anonymous clients',
        evidence: `CONNACK 0 (accepted) to a CONNECT without user name or password (source: ${listener.source})`,
        remediation: 'allow_anonymous false (Mosquitto) or authentication on every listener; per-identity ACLs on the command topics (reference: docs/zones.md).',
      }));
    }
    if (listener.certificate) findings.push(...certificateFindings('mqtt', target, listener.certificate, now));
  }
  return findings.sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) || a.id.localeCompare(b.id));
}

/** Findings per severity. */
export function severityCounts(findings: readonly Finding[]): Record<Severity, number> {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) counts[f.severity]++;
  return counts;
}
