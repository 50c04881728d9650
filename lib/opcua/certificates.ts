/**
 * X.509 certificate facts and the checks node-opcua does not make (reference/opcua.md: a trusted
 * server certificate with the wrong application URI or host name is accepted without complaint).
 * Uses node:crypto only, so the trust list and the editor's trust tab never load node-opcua.
 *
 * OPC 10000-4 §6.1.3 Table 106 (certificate validation): "Host Name: the HostName in the URL used
 * to connect to the Server shall be the same as one of the HostNames specified in the Certificate";
 * "URI: the URI specified in the ApplicationDescription shall match the URI in the Certificate";
 * "Validity Period: the current time shall be after the start of the validity period and before the
 * end".
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

/** Warn this long before a certificate expires (issue 9: expiry warnings 30 days ahead). */
export const EXPIRY_WARNING_MS = 30 * 24 * 3600 * 1000;

export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** SHA-1 of the DER, lower-case hex without separators: OPC UA's certificate thumbprint (Part 6 §6.2.3), node-opcua's file names. */
  thumbprint: string;
  validFrom: string;
  validTo: string;
  /** The URI in subjectAltName: the application instance URI (Part 6 §6.2.2). */
  applicationUri?: string;
  dnsNames: string[];
  ipAddresses: string[];
  selfSigned: boolean;
}

/** Split "DNS:a, IP Address:1.2.3.4, URI:urn:x" (node:crypto's subjectAltName format). */
function altNames(x509: X509Certificate): { uri?: string; dns: string[]; ip: string[] } {
  const result: { uri?: string; dns: string[]; ip: string[] } = { dns: [], ip: [] };
  for (const part of (x509.subjectAltName ?? '').split(/,\s*/)) {
    const colon = part.indexOf(':');
    if (colon < 0) continue;
    const kind = part.slice(0, colon);
    const value = part.slice(colon + 1);
    if (kind === 'URI') result.uri ??= value;
    else if (kind === 'DNS') result.dns.push(value);
    else if (kind === 'IP Address') result.ip.push(value);
  }
  return result;
}

export function parseCertificate(derOrPem: Buffer | string): X509Certificate {
  return new X509Certificate(derOrPem);
}

export function describeCertificate(certificate: Buffer | X509Certificate): CertificateInfo {
  const x509 = certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate);
  const names = altNames(x509);
  const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');
  return {
    subject: oneLine(x509.subject),
    issuer: oneLine(x509.issuer),
    thumbprint: x509.fingerprint.replace(/:/g, '').toLowerCase(),
    validFrom: new Date(x509.validFrom).toISOString(),
    validTo: new Date(x509.validTo).toISOString(),
    ...(names.uri ? { applicationUri: names.uri } : {}),
    dnsNames: names.dns,
    ipAddresses: names.ip,
    selfSigned: x509.subject === x509.issuer,
  };
}

export type CertificateProblemKind = 'expired' | 'not-yet-valid' | 'uri-mismatch' | 'hostname-mismatch';

export interface CertificateCheck {
  /** Refusals: the connection must not be used (unless the user explicitly waived that kind). */
  problems: Array<{ kind: CertificateProblemKind; text: string }>;
  /** Expires within EXPIRY_WARNING_MS. */
  expiresSoon?: { validTo: string; days: number };
}

export interface ServerCertificateExpectation {
  /** The host name or IP address of the endpoint URL used to connect. */
  host: string;
  /** The server's ApplicationDescription.applicationUri (GetEndpoints). */
  applicationUri?: string;
  now?: number;
}

/** The checks of Part 4 §6.1.3 Table 106 that node-opcua leaves to the application. */
export function checkServerCertificate(certificate: Buffer | X509Certificate, expect: ServerCertificateExpectation): CertificateCheck {
  const x509 = certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate);
  const now = expect.now ?? Date.now();
  const info = describeCertificate(x509);
  const check: CertificateCheck = { problems: [] };
  const from = Date.parse(info.validFrom);
  const to = Date.parse(info.validTo);
  if (now > to) check.problems.push({ kind: 'expired', text: `server certificate ${info.thumbprint} expired on ${info.validTo}` });
  else if (now < from) check.problems.push({ kind: 'not-yet-valid', text: `server certificate ${info.thumbprint} is not valid before ${info.validFrom}` });
  else if (to - now <= EXPIRY_WARNING_MS) check.expiresSoon = { validTo: info.validTo, days: Math.floor((to - now) / 86_400_000) };
  if (expect.applicationUri !== undefined && info.applicationUri !== expect.applicationUri) {
    check.problems.push({
      kind: 'uri-mismatch',
      text: `server certificate ${info.thumbprint} names application URI "${info.applicationUri ?? '(none)'}" but the server says "${expect.applicationUri}"`,
    });
  }
  const host = expect.host.replace(/^\[|\]$/g, '');
  const hostMatches = isIP(host) ? x509.checkIP(host) !== undefined : x509.checkHost(host, { subject: 'never' }) !== undefined;
  if (!hostMatches) {
    const names = [...info.dnsNames, ...info.ipAddresses];
    check.problems.push({
      kind: 'hostname-mismatch',
      text: `server certificate ${info.thumbprint} does not name host "${host}" (it names ${names.length ? names.join(', ') : 'no host'})`,
    });
  }
  return check;
}

/** DER of a PEM or DER file's content (the first certificate). */
export function toDer(content: Buffer): Buffer {
  return new X509Certificate(content).raw;
}
