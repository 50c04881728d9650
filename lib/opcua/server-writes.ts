/**
 * What uns-opcua-server does with an OPC UA client's write (docs/opcua-server.md § Writes). Fail
 * closed, checked in this order, nothing sent unless every check passes:
 *
 * 1. the metric is writable (AccessLevel CurrentWrite, only from the model) — else BadNotWritable;
 * 2. the session's user has the write role — else BadUserAccessDenied (Part 4 §7.39);
 * 3. the session's write rate (token bucket) — else BadTooManyOperations, counted;
 * 4. the Variant's type is the variable's DataType, a scalar — else BadTypeMismatch;
 * 5. the value lies in EURange (OPC 10000-8 §5.3.2.1) — else BadOutOfRange;
 * 6. pending writes below the bound — else BadTooManyOperations;
 * then a write command `{topic, payload: {metric: value}, principal, opcuaWriteId}` goes out and the
 * OPC UA write completes when its result comes back (Good, or the Bad code of the failure), or
 * BadTimeout. The value shown by the variable stays what the asset reports next.
 */
import { X509Certificate } from 'node:crypto';
import type { DataValue } from 'node-opcua';
import type { Principal } from '../principal';
import type { MetricValue } from '../uns/tag-batch';
import { isPlainObject } from '../values';
import { opcua } from './load';
import type { MetricNode } from './server-address-space';
import { fromVariant } from './values';

export type Role = 'read' | 'write';

/**
 * A user of the server: username/password, or an X.509 user certificate. A certificate user is the
 * certificate with the configured SHA-1 thumbprint (the identity of OPC 10000-18 §4.4.3
 * IdentityCriteriaType Thumbprint); its name is only the display name audit records carry. Matching
 * by the subject's CN would let any certificate the user trust list admits act as the user: node-opcua
 * accepts every certificate issued by a CA in that list (docs/opcua-server.md § X.509 users).
 */
export interface ServerUser {
  kind: 'password' | 'certificate';
  /** Username, or the display name of a certificate user. */
  name: string;
  password?: string;
  /** Certificate users: SHA-1 of the certificate's DER, 40 lower-case hex digits. */
  thumbprint?: string;
  role: Role;
}

export interface WriteCommand {
  topic: string;
  payload: Record<string, MetricValue>;
  principal: Principal;
  /** Correlates the result that comes back on the node's input. */
  opcuaWriteId: string;
}

export interface WriteCounters {
  requested: number;
  good: number;
  failed: number;
  timeout: number;
  refusedAccess: number;
  refusedRate: number;
  refusedType: number;
  refusedRange: number;
  refusedPending: number;
}

export interface WritePolicyOptions {
  users: readonly ServerUser[];
  /** Writes per second per session (token bucket, burst = rate). */
  maxWritesPerSecond: number;
  timeoutMs: number;
  maxPending: number;
  /** Prefix of the correlation ids (the node's id), so two servers' results never mix. */
  idPrefix: string;
  send(command: WriteCommand): void;
  now?: () => number;
}

const S = {
  Good: 0, BadNotWritable: 0x803b0000, BadUserAccessDenied: 0x801f0000, BadTooManyOperations: 0x80100000,
  BadTypeMismatch: 0x80740000, BadOutOfRange: 0x803c0000, BadTimeout: 0x800a0000, BadRequestNotAllowed: 0x80e40000,
  BadCommunicationError: 0x80050000, BadServerHalted: 0x800e0000,
} as const;
export const WriteStatus = S;

interface Pending {
  resolve: (code: number) => void;
  timer: NodeJS.Timeout;
  metric: string;
}

/** The identity of a session, read from its ActivateSession token (Part 4 §7.41). */
export interface SessionIdentity {
  kind: 'password' | 'certificate' | 'anonymous';
  /** The username of a password session. */
  name?: string;
  /** X509IdentityToken (Part 4 §7.41.5): the thumbprint and subject CN of the user certificate. */
  thumbprint?: string;
  certificateCN?: string;
  sessionId: string;
}

interface ContextLike {
  session?: { userIdentityToken?: unknown; sessionName?: string; nodeId?: { toString(): string } };
}

/**
 * The user certificate of an X509IdentityToken's certificateData: its SHA-1 thumbprint and subject
 * CN. A chain's first certificate is the user's own (node:crypto parses the first and ignores the
 * rest); undefined when it is not a certificate.
 */
export function userCertificateOf(certificateData: Buffer): { thumbprint: string; cn?: string; subject: string } | undefined {
  try {
    const x509 = new X509Certificate(certificateData);
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1];
    return { thumbprint: x509.fingerprint.replace(/:/g, '').toLowerCase(), subject: x509.subject.split('\n').filter(Boolean).join(', '), ...(cn ? { cn } : {}) };
  } catch {
    return undefined;
  }
}

export function identityOf(context: unknown): SessionIdentity {
  const session = (context as ContextLike | undefined)?.session;
  const sessionId = session?.nodeId?.toString() ?? '?';
  const token = session?.userIdentityToken as { userName?: string; certificateData?: Buffer } | undefined;
  if (token && typeof token.userName === 'string') return { kind: 'password', name: token.userName, sessionId };
  if (token && Buffer.isBuffer(token.certificateData) && token.certificateData.length) {
    const certificate = userCertificateOf(token.certificateData);
    return { kind: 'certificate', ...(certificate ? { thumbprint: certificate.thumbprint } : {}), ...(certificate?.cn ? { certificateCN: certificate.cn } : {}), sessionId };
  }
  return { kind: 'anonymous', sessionId };
}

/** The configured user a session's identity is: a password user by name, a certificate user by thumbprint only. */
export function userOfIdentity(users: readonly ServerUser[], identity: SessionIdentity): ServerUser | undefined {
  if (identity.kind === 'password') return users.find((u) => u.kind === 'password' && u.name === identity.name);
  if (identity.kind === 'certificate' && identity.thumbprint !== undefined) return users.find((u) => u.kind === 'certificate' && u.thumbprint === identity.thumbprint);
  return undefined;
}

/** Who wrote, for the write command's audit record: the configured user, and for a certificate its CN and thumbprint. */
export function principalOfUser(user: ServerUser, identity: SessionIdentity): Principal {
  return user.kind === 'certificate'
    ? { via: 'opcua', id: `opcua:certificate ${user.name} (SHA-1 ${user.thumbprint})`, user: user.name, ...(identity.certificateCN ? { certificateCN: identity.certificateCN } : {}) }
    : { via: 'opcua', id: `opcua:${user.name}`, user: user.name };
}

/** The Bad code of a failed command result (a Catch node's msg.error, or msg.ok false). */
export function failureCode(text: string): number {
  const named = /\b(Bad[A-Z][A-Za-z]+)\b/.exec(text)?.[1];
  const code = named === undefined ? undefined : (opcua().StatusCodes as unknown as Record<string, { value: number } | undefined>)[named]?.value;
  if (code !== undefined && code >>> 30 >= 2) return code;
  return /reject|refus|not allowed|guard|limit|out of range|armed/i.test(text) ? S.BadRequestNotAllowed : S.BadCommunicationError;
}

export class WritePolicy {
  readonly counters: WriteCounters = { requested: 0, good: 0, failed: 0, timeout: 0, refusedAccess: 0, refusedRate: 0, refusedType: 0, refusedRange: 0, refusedPending: 0 };
  private readonly pending = new Map<string, Pending>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private sequence = 0;
  private readonly now: () => number;

  constructor(private readonly options: WritePolicyOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** One token per write; the bucket refills at the configured rate (burst = one second's worth). */
  private takeToken(session: string): boolean {
    const rate = this.options.maxWritesPerSecond;
    const now = this.now();
    let bucket = this.buckets.get(session);
    if (!bucket) {
      if (this.buckets.size >= 10_000) this.buckets.clear(); // bound: sessions are limited far below this
      this.buckets.set(session, (bucket = { tokens: rate, at: now }));
    }
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** A session ended: its rate bucket goes. */
  forgetSession(sessionId: string): void {
    this.buckets.delete(sessionId);
  }

  async write(metric: MetricNode, context: unknown, dataValue: DataValue): Promise<number> {
    this.counters.requested++;
    if (!metric.writable) return S.BadNotWritable;
    const identity = identityOf(context);
    const user = userOfIdentity(this.options.users, identity);
    if (user?.role !== 'write') {
      this.counters.refusedAccess++;
      return S.BadUserAccessDenied;
    }
    if (!this.takeToken(identity.sessionId)) {
      this.counters.refusedRate++;
      return S.BadTooManyOperations;
    }
    const variant = dataValue.value;
    if (!variant || variant.dataType !== metric.builtIn || (variant.arrayType !== undefined && variant.arrayType !== 0)) {
      this.counters.refusedType++;
      return S.BadTypeMismatch;
    }
    const converted = fromVariant(variant as unknown as Parameters<typeof fromVariant>[0]);
    if (!converted.ok || converted.value === null) {
      this.counters.refusedType++;
      return S.BadTypeMismatch;
    }
    const value = converted.value;
    if (metric.range && (typeof value === 'number' || typeof value === 'bigint')) {
      // Compared as they are: a bigint against the bounds exactly (Number() would round an Int64
      // past 2^53 onto the bound and let it through).
      if (!(value >= metric.range.low && value <= metric.range.high)) {
        this.counters.refusedRange++;
        return S.BadOutOfRange;
      }
    }
    if (this.pending.size >= this.options.maxPending) {
      this.counters.refusedPending++;
      return S.BadTooManyOperations;
    }
    const id = `${this.options.idPrefix}:${++this.sequence}`;
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.counters.timeout++;
        resolve(S.BadTimeout);
      }, this.options.timeoutMs);
      this.pending.set(id, { resolve, timer, metric: metric.metric });
      this.options.send({ topic: metric.asset, payload: { [metric.metric]: value }, principal: principalOfUser(user, identity), opcuaWriteId: id });
    });
  }

  /**
   * A message on the node's input that answers a write command: true when it was one of ours.
   * Good only on an unambiguous success: `ok === true` (uns-modbus-write, uns-opcua-write), or
   * neither `error` nor `ok` (the command echoed by a Complete node after uns-vfd). Anything else
   * fails closed: `msg.error` (a Catch node), `ok: false`, and `ok: 0`, `"false"`, `"true"`, null
   * from a function node.
   */
  settle(msg: { opcuaWriteId?: unknown; error?: unknown; ok?: unknown; problems?: unknown; payload?: unknown }): boolean {
    if (typeof msg.opcuaWriteId !== 'string') return false;
    const pending = this.pending.get(msg.opcuaWriteId);
    if (!pending) return msg.opcuaWriteId.startsWith(`${this.options.idPrefix}:`);
    this.pending.delete(msg.opcuaWriteId);
    clearTimeout(pending.timer);
    let code: number = S.Good;
    if (msg.error !== undefined && msg.error !== null) {
      const text = isPlainObject(msg.error) || msg.error instanceof Error ? String((msg.error as { message?: unknown }).message ?? '') : String(msg.error);
      code = failureCode(text);
    } else if (msg.ok !== true && msg.ok !== undefined) {
      code = failureCode(JSON.stringify(msg.problems ?? msg.payload ?? '') ?? '');
    }
    if (code === S.Good) this.counters.good++;
    else this.counters.failed++;
    pending.resolve(code);
    return true;
  }

  /** Complete every pending write with BadServerHalted (the node is closing). */
  close(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve(S.BadServerHalted);
      this.pending.delete(id);
    }
  }

  static describe(code: number): string {
    const entry = Object.entries(S).find(([, v]) => v === code);
    return entry ? entry[0] : `0x${code.toString(16)}`;
  }
}

/** Users from the config rows and the passwords credential; every problem named. */
export function usersFrom(rows: string, passwordsJson: string | undefined, problems: string[]): ServerUser[] {
  let list: unknown = [];
  let passwords: unknown = {};
  try {
    list = rows.trim() === '' ? [] : JSON.parse(rows);
  } catch {
    problems.push('users is not JSON');
  }
  try {
    passwords = passwordsJson?.trim() ? JSON.parse(passwordsJson) : {};
  } catch {
    problems.push('the passwords credential is not JSON');
  }
  if (!Array.isArray(list)) {
    problems.push('users must be a list');
    return [];
  }
  const users: ServerUser[] = [];
  for (const [i, row] of list.entries()) {
    if (!isPlainObject(row) || typeof row.name !== 'string' || row.name.trim() === '') {
      problems.push(`user ${i + 1} has no name`);
      continue;
    }
    // Fail closed and say so: no role is read; a role or kind that is not one of ours (a typo such
    // as "Write" or "cert") refuses the configuration instead of quietly meaning something else.
    if (row.kind !== undefined && row.kind !== 'password' && row.kind !== 'certificate') problems.push(`user "${row.name}": kind must be password or certificate, got ${JSON.stringify(row.kind)}`);
    if (row.role !== undefined && row.role !== 'read' && row.role !== 'write') problems.push(`user "${row.name}": role must be read or write, got ${JSON.stringify(row.role)}`);
    const kind = row.kind === 'certificate' ? 'certificate' : 'password';
    const role: Role = row.role === 'write' ? 'write' : 'read';
    const name = row.name.trim();
    if (users.some((u) => u.kind === kind && u.name === name)) problems.push(`user "${name}" is listed twice`);
    if (kind === 'certificate') {
      const thumbprint = certificateThumbprint(name, row.thumbprint, problems);
      const holder = thumbprint === undefined ? undefined : users.find((u) => u.thumbprint === thumbprint);
      if (holder) problems.push(`user "${name}": the certificate ${thumbprint} is already user "${holder.name}"`);
      users.push({ kind, name, role, ...(thumbprint ? { thumbprint } : {}) });
      continue;
    }
    if (row.thumbprint !== undefined) problems.push(`user "${name}": a thumbprint is only for kind certificate (a password user logs in with its password)`);
    const password = isPlainObject(passwords) && typeof passwords[row.name] === 'string' ? (passwords[row.name] as string) : undefined;
    if (!password) problems.push(`user "${row.name}" has no password`);
    users.push({ kind, name, role, ...(password ? { password } : {}) });
  }
  return users;
}

/**
 * The SHA-1 thumbprint of a certificate user's row, as lower-case hex (how node-opcua's trust lists
 * name certificates); the separators of openssl's and UaExpert's notation ("5E:DD:…", spaces) are
 * dropped. A row without one is refused, not matched by its CN.
 */
function certificateThumbprint(name: string, given: unknown, problems: string[]): string | undefined {
  if (given === undefined || (typeof given === 'string' && given.trim() === '')) {
    problems.push(`user "${name}": an X.509 user needs the SHA-1 thumbprint of its certificate ("thumbprint", 40 hex digits: the SHA-1 the server logs when that certificate tries to log in, or what openssl x509 -noout -fingerprint -sha1 -in user.pem prints); a CN alone is refused, any certificate the user trust list admits could carry it`);
    return undefined;
  }
  const thumbprint = typeof given === 'string' ? given.replace(/[\s:]/g, '').toLowerCase() : '';
  if (!/^[0-9a-f]{40}$/.test(thumbprint)) {
    problems.push(`user "${name}": thumbprint must be 40 hex digits (the certificate's SHA-1), got ${JSON.stringify(given)}`);
    return undefined;
  }
  return thumbprint;
}
