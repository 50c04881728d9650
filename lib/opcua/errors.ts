/**
 * node-opcua failures → what the user must be told: which side refused, and what to do.
 * The trust exchange is two-sided (reference/opcua.md): BadCertificateUntrusted on our side means
 * WE refused the server's certificate; BadSecurityChecksFailed from the server means THE SERVER
 * refused ours. Messages are matched on the StatusCode name node-opcua puts in the error text
 * (OPC 10000-4 §7.39 / 10000-6 Annex A status codes) and on node-opcua's own client-side refusals.
 */

/** Who stopped the connection. */
export type RefusingSide = 'client' | 'server' | 'network' | 'configuration';

export type FailureKind =
  | 'server-certificate-untrusted' | 'server-certificate-time' | 'server-certificate-revoked' | 'server-certificate-uri'
  | 'server-certificate-hostname' | 'server-certificate-invalid'
  | 'client-certificate-rejected' | 'security-mode-rejected' | 'endpoint-not-offered'
  | 'identity-rejected' | 'access-denied' | 'user-certificate-rejected'
  | 'unreachable' | 'timeout' | 'connection-closed' | 'other';

export interface ClassifiedFailure {
  kind: FailureKind;
  side: RefusingSide;
  /** The OPC UA status code name when one was found, e.g. "BadCertificateUntrusted". */
  code?: string;
  /** The original message, for the log. */
  message: string;
}

const RULES: Array<{ test: RegExp; kind: FailureKind; side: RefusingSide }> = [
  // node-opcua client: "server Certificate verification failed with err BadCertificateUntrusted"
  { test: /server certificate verification failed.*BadCertificate(Time|Validity)Invalid/i, kind: 'server-certificate-time', side: 'client' },
  { test: /server certificate verification failed.*BadCertificate(Issuer)?Revo/i, kind: 'server-certificate-revoked', side: 'client' },
  { test: /server certificate verification failed.*BadCertificateUntrusted/i, kind: 'server-certificate-untrusted', side: 'client' },
  { test: /server certificate verification failed/i, kind: 'server-certificate-invalid', side: 'client' },
  // the server closed the secure channel: "The connection has been rejected by server: BadSecurityChecksFailed"
  { test: /BadSecurityChecksFailed|rejected by server.*BadCertificate/i, kind: 'client-certificate-rejected', side: 'server' },
  { test: /BadSecurityModeRejected|BadSecurityPolicyRejected/i, kind: 'security-mode-rejected', side: 'server' },
  // node-opcua refuses before asking: "End point must exist", "Cannot find an Endpoint matching"
  { test: /end ?point must exist|cannot find (an )?endpoint|endpoint.*not found/i, kind: 'endpoint-not-offered', side: 'configuration' },
  { test: /cannot find (ANONYMOUS|USERNAME|CERTIFICATE) user token policy/i, kind: 'identity-rejected', side: 'configuration' },
  { test: /BadUserAccessDenied/i, kind: 'access-denied', side: 'server' },
  { test: /BadIdentityTokenRejected/i, kind: 'user-certificate-rejected', side: 'server' },
  { test: /BadIdentityTokenInvalid|BadUserSignatureInvalid/i, kind: 'identity-rejected', side: 'server' },
  { test: /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|getaddrinfo/i, kind: 'unreachable', side: 'network' },
  { test: /timeout|timed out|BadTimeout|BadRequestTimeout/i, kind: 'timeout', side: 'network' },
  { test: /BadConnectionClosed|BadSecureChannelClosed|ECONNRESET|premature|socket has been disconnected|EPIPE/i, kind: 'connection-closed', side: 'network' },
];

export function classifyFailure(error: unknown): ClassifiedFailure {
  const message = error instanceof Error ? error.message : String(error);
  const code = /\b(Bad[A-Za-z]+)\b/.exec(message)?.[1];
  for (const rule of RULES) {
    if (rule.test.test(message)) return { kind: rule.kind, side: rule.side, message, ...(code ? { code } : {}) };
  }
  return { kind: 'other', side: 'network', message, ...(code ? { code } : {}) };
}

/** A failure the user must act on (certificates, identity, configuration): retrying alone will not fix it. */
export function needsAction(failure: ClassifiedFailure): boolean {
  return failure.side === 'client' || failure.side === 'configuration' || failure.kind === 'client-certificate-rejected'
    || failure.kind === 'access-denied' || failure.kind === 'identity-rejected' || failure.kind === 'user-certificate-rejected'
    || failure.kind === 'security-mode-rejected';
}
