/**
 * Settings of one OPC UA endpoint (the uns-opcua-endpoint config node) and their validation.
 * Names are node-opcua's / the specification's (OPC 10000-7 security policy URIs end in these names).
 *
 * Policies (reference/security.md §4, IEC 62541-7:2020): Basic256Sha256, Aes128_Sha256_RsaOaep and
 * Aes256_Sha256_RsaPss are current; Basic128Rsa15 and Basic256 are deprecated (SHA-1) and accepted
 * only with `allowDeprecated`. Policy None goes only with mode None, and mode None must be chosen
 * explicitly (it is a testing profile: Part 2 §4.6).
 */

export type SecurityModeName = 'None' | 'Sign' | 'SignAndEncrypt';
export const CURRENT_POLICIES = ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'] as const;
export const DEPRECATED_POLICIES = ['Basic128Rsa15', 'Basic256'] as const;
export type SecurityPolicyName = typeof CURRENT_POLICIES[number] | typeof DEPRECATED_POLICIES[number] | 'None';

export type UserIdentitySettings =
  | { type: 'anonymous' }
  | { type: 'username'; userName: string; password: string }
  /** An X.509 user certificate and its private key, both PEM (kept in Node-RED credentials). */
  | { type: 'certificate'; certificatePem: string; privateKeyPem: string };

export interface EndpointSettings {
  endpointUrl: string;
  securityMode: SecurityModeName;
  securityPolicy: SecurityPolicyName;
  allowDeprecated: boolean;
  identity: UserIdentitySettings;
  /** Trust an unknown server certificate on the FIRST connect only (warned; never afterwards). */
  trustOnFirstUse: boolean;
  /** Accept a server certificate that does not name the endpoint's host (warned). */
  ignoreHostname: boolean;
  /** Session keep-alive period (ms): detects a dead or blackholed server when no value changes. */
  keepAliveIntervalMs: number;
  /** Timeout of every service request (ms). */
  requestTimeoutMs: number;
  /** Longest wait between two connection attempts (ms); the delay doubles from 500 ms up to it. */
  maxBackoffMs: number;
}

export const DEFAULT_SETTINGS: Omit<EndpointSettings, 'endpointUrl'> = {
  securityMode: 'SignAndEncrypt',
  securityPolicy: 'Basic256Sha256',
  allowDeprecated: false,
  identity: { type: 'anonymous' },
  trustOnFirstUse: false,
  ignoreHostname: false,
  keepAliveIntervalMs: 2000,
  requestTimeoutMs: 5000,
  maxBackoffMs: 10_000,
};

const MODES: readonly SecurityModeName[] = ['None', 'Sign', 'SignAndEncrypt'];
const POLICIES: readonly SecurityPolicyName[] = ['None', ...CURRENT_POLICIES, ...DEPRECATED_POLICIES];

function number(value: unknown, fallback: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : fallback;
}

/**
 * Settings from a config node's properties and credentials (docs/opcua.md § Settings).
 * Unknown strings are kept as they are so validateSettings() can name them.
 */
export function settingsFrom(config: Record<string, unknown>, credentials: Record<string, unknown> = {}): EndpointSettings {
  const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  const identityType = text(config.userIdentity) || 'anonymous';
  let identity: UserIdentitySettings;
  if (identityType === 'username') identity = { type: 'username', userName: text(credentials.user), password: typeof credentials.password === 'string' ? credentials.password : '' };
  else if (identityType === 'certificate') identity = { type: 'certificate', certificatePem: text(credentials.userCertificate), privateKeyPem: text(credentials.userPrivateKey) };
  else identity = { type: identityType as 'anonymous' };
  return {
    endpointUrl: text(config.endpointUrl),
    securityMode: (text(config.securityMode) || DEFAULT_SETTINGS.securityMode) as SecurityModeName,
    securityPolicy: (text(config.securityPolicy) || DEFAULT_SETTINGS.securityPolicy) as SecurityPolicyName,
    allowDeprecated: config.allowDeprecated === true || config.allowDeprecated === 'true',
    identity,
    trustOnFirstUse: config.trustOnFirstUse === true || config.trustOnFirstUse === 'true',
    ignoreHostname: config.ignoreHostname === true || config.ignoreHostname === 'true',
    keepAliveIntervalMs: number(config.keepAliveInterval, DEFAULT_SETTINGS.keepAliveIntervalMs),
    requestTimeoutMs: number(config.requestTimeout, DEFAULT_SETTINGS.requestTimeoutMs),
    maxBackoffMs: number(config.maxBackoff, DEFAULT_SETTINGS.maxBackoffMs),
  };
}

/** Every problem with the settings (empty: usable). */
export function validateSettings(s: EndpointSettings): string[] {
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(s.endpointUrl);
  } catch {
    problems.push(`endpoint URL "${s.endpointUrl}" is not a URL (expected opc.tcp://host:port[/path])`);
  }
  if (url && url.protocol !== 'opc.tcp:') problems.push(`endpoint URL must start with opc.tcp:// (got ${url.protocol}//)`);
  if (!MODES.includes(s.securityMode)) problems.push(`unknown security mode "${s.securityMode}" (None, Sign, SignAndEncrypt)`);
  if (!POLICIES.includes(s.securityPolicy)) problems.push(`unknown security policy "${s.securityPolicy}"`);
  if ((s.securityMode === 'None') !== (s.securityPolicy === 'None')) {
    problems.push('security policy None goes with security mode None only, and mode Sign/SignAndEncrypt needs a policy other than None');
  }
  if ((DEPRECATED_POLICIES as readonly string[]).includes(s.securityPolicy) && !s.allowDeprecated) {
    problems.push(`security policy ${s.securityPolicy} is deprecated (SHA-1, IEC 62541-7:2020): tick "allow deprecated policy" to use it anyway`);
  }
  if (s.identity.type === 'username' && !s.identity.userName) problems.push('user name is empty');
  if (s.identity.type === 'certificate' && (!s.identity.certificatePem || !s.identity.privateKeyPem)) problems.push('X.509 user identity needs a certificate and a private key (PEM)');
  if (!['anonymous', 'username', 'certificate'].includes(s.identity.type)) problems.push(`unknown user identity "${(s.identity as { type: string }).type}"`);
  if (!(s.keepAliveIntervalMs >= 500 && s.keepAliveIntervalMs <= 60_000)) problems.push('keep-alive interval must be 500..60000 ms');
  if (!(s.requestTimeoutMs >= 500 && s.requestTimeoutMs <= 600_000)) problems.push('request timeout must be 500..600000 ms');
  if (!(s.maxBackoffMs >= 1000 && s.maxBackoffMs <= 300_000)) problems.push('maximum reconnect delay must be 1000..300000 ms');
  return problems;
}

/** Warnings to log once at start: weakened security that the user chose. */
export function securityWarnings(s: EndpointSettings): string[] {
  const warnings: string[] = [];
  if (s.securityMode === 'None') warnings.push('security mode None: messages are neither signed nor encrypted (a testing profile, OPC 10000-2 §4.6)');
  if ((DEPRECATED_POLICIES as readonly string[]).includes(s.securityPolicy)) warnings.push(`deprecated security policy ${s.securityPolicy} (SHA-1) in use`);
  if (s.trustOnFirstUse) warnings.push('trust on first use is on: an unknown server certificate is trusted on the first connect without checking it');
  if (s.ignoreHostname) warnings.push('host name check of the server certificate is off');
  if (s.securityMode !== 'None' && s.identity.type === 'username' && s.securityMode === 'Sign') warnings.push('the password is sent over a signed but not encrypted channel (encrypted by the user token policy only)');
  return warnings;
}

/** "opc.tcp://plc:4840 (SignAndEncrypt/Basic256Sha256)" for status texts and logs. */
export function describeEndpoint(s: Pick<EndpointSettings, 'endpointUrl' | 'securityMode' | 'securityPolicy'>): string {
  return `${s.endpointUrl} (${s.securityMode}${s.securityMode === 'None' ? '' : `/${s.securityPolicy}`})`;
}
