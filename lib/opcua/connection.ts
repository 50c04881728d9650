/**
 * One OPC UA connection (client + one session) shared by every node that uses an endpoint, as an
 * explicit state machine:
 *
 *   idle → connecting → connected ⇄ reconnecting
 *              ↓  ↑          ↓ (session lost for good)
 *        backoff / refused ← ┘          any → closed
 *
 * - connecting: a fresh OPCUAClient (node-opcua #625 in the peer: a failed connect poisons the client)
 *   opens the secure channel; our own certificate checks run (application URI, host name, expiry:
 *   node-opcua does not make them, reference/opcua.md); then CreateSession/ActivateSession.
 * - connected: node-opcua's reconnection (connectionStrategy maxRetry -1, bounded backoff) repairs the
 *   channel, the session and its subscriptions (TransferSubscriptions, else re-creation); session
 *   keep-alive (keepSessionAlive, ~2 s) detects a dead or blackholed server even when no value changes.
 *   Every new channel node-opcua opens is checked as at first connect before it repairs the session on
 *   it (the server behind the address may have been replaced); a certificate refusal during its
 *   retries ends the repair too: both end in refused. A session the server drops while the channel
 *   stays up is rebuilt by node-opcua and reported ('session-closed').
 * - backoff: transient failure (server down, timeout), retried with a doubling delay up to maxBackoffMs.
 * - refused: a failure a person must fix (certificates, identity, policy); retried with the same backoff
 *   so that trusting a certificate connects without a redeploy (`retryNow()` after a trust action).
 *
 * Events: 'state' (ConnectionState, ConnectionFailure | undefined), 'outage' (reason), 'restored'
 * (downMs), 'session' (a new session: users (re)create what they hold on it), 'session-closed'
 * (SessionClosedReport: the server dropped the session, node-opcua rebuilt it), 'warning' (text).
 */
import { EventEmitter } from 'node:events';
import type { ClientSession, ClientSubscription, OPCUAClient, UserIdentityInfo } from 'node-opcua';
import { checkServerCertificate, describeCertificate, EXPIRY_WARNING_MS, parseCertificate } from './certificates';
import { discoverEndpoints } from './discovery';
import { ClassifiedFailure, classifyFailure, needsAction } from './errors';
import { opcua } from './load';
import type { ApplicationPki } from './pki';
import { describeEndpoint, EndpointSettings } from './settings';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'backoff' | 'refused' | 'closed';

export interface ConnectionFailure extends ClassifiedFailure {
  /** Thumbprint of the server certificate (when the failure is about it). */
  serverThumbprint?: string;
  /** Thumbprint of our application certificate (when the server refused it: trust it there). */
  ownThumbprint?: string;
  /** Validity period of the server certificate (when it was refused for its time). */
  serverValidity?: { validFrom: string; validTo: string };
  /** One sentence for the log: what happened, which side refused, what to do. */
  explanation: string;
}

/** The server dropped our session while the channel stayed up; node-opcua has rebuilt it and its subscriptions. */
export interface SessionClosedReport {
  /** The status code the server answered the dropped session with. */
  code: string;
  /** One sentence for the log. */
  reason: string;
}

const INITIAL_BACKOFF_MS = 500;

/**
 * node-opcua 2.182.2 rebuilds a session on a live channel only when a request on it is answered with
 * BadSessionIdInvalid (Part 4 §7.38.2: the server closed the session or let it time out, §5.6.2), in
 * ClientSessionImpl#reprocessRequest, which emits 'session_repaired' when done: the code is that one.
 */
const SESSION_DROPPED_CODE = 'BadSessionIdInvalid';

/** node-opcua's own wording of a server certificate its PKI refuses (classifyFailure reads it). */
const verificationFailed = (status: string) => new Error(`server Certificate verification failed with err ${status}`);

type ReconnectingClient = OPCUAClient & {
  /** node-opcua's step between a repaired channel and the repair of its sessions (ClientBaseImpl / OPCUAClientImpl, 2.182.2). */
  _on_connection_reestablished(callback: (err?: Error) => void): void;
};

class CertificateCheckError extends Error {
  constructor(readonly kind: 'server-certificate-uri' | 'server-certificate-hostname' | 'server-certificate-time', message: string) {
    super(message);
  }
}

function firstCertificate(certificate: unknown): Buffer | undefined {
  const candidate = Array.isArray(certificate) ? certificate[0] : certificate;
  if (!Buffer.isBuffer(candidate) || candidate.length === 0) return undefined;
  try {
    return parseCertificate(candidate).raw;
  } catch {
    return undefined;
  }
}

/** Part 4 §6.1.3 Table 106 "Validity Period": expired and not yet valid are both BadCertificateTimeInvalid; say which, and what to do. */
function explainTime(failure: Pick<ConnectionFailure, 'code' | 'message' | 'serverValidity'>, server: string, now = Date.now()): string {
  const code = failure.code ?? 'BadCertificateTimeInvalid';
  const validity = failure.serverValidity;
  if (validity && now < Date.parse(validity.validFrom)) {
    return `we refused the server: its certificate${server} is not valid before ${validity.validFrom} (${code}): check the clocks of the server and of this gateway`;
  }
  if (validity && now > Date.parse(validity.validTo)) return `we refused the server: its certificate${server} expired on ${validity.validTo} (${code}): the server needs a new certificate`;
  return `we refused the server: its certificate${server} is expired or not yet valid (${failure.message})`;
}

export function explain(failure: ClassifiedFailure & Pick<ConnectionFailure, 'serverThumbprint' | 'ownThumbprint' | 'serverValidity'>, endpoint: string): string {
  const server = failure.serverThumbprint ? ` ${failure.serverThumbprint}` : '';
  switch (failure.kind) {
    case 'server-certificate-untrusted':
      return `we refused the server: its certificate${server} is not trusted (BadCertificateUntrusted). Trust it in the endpoint's Trust tab if it is the server you expect`;
    case 'server-certificate-time': return explainTime(failure, server);
    case 'server-certificate-revoked': return `we refused the server: its certificate${server} is revoked (${failure.code ?? failure.message})`;
    case 'server-certificate-uri': return `we refused the server: ${failure.message}`;
    case 'server-certificate-hostname': return `we refused the server: ${failure.message}`;
    case 'server-certificate-invalid': return `we refused the server: its certificate${server} is invalid (${failure.message})`;
    case 'client-certificate-rejected':
      return `the server refused us (${failure.code ?? 'BadSecurityChecksFailed'}): trust our application certificate ${failure.ownThumbprint ?? ''} on the server (download it from the endpoint's Trust tab)`;
    case 'security-mode-rejected': return `the server refused the security mode/policy (${failure.code})`;
    case 'endpoint-not-offered': return `${endpoint}: the server offers no endpoint with this security mode and policy (use Discover)`;
    case 'identity-rejected': return `the user identity was refused (${failure.code ?? failure.message}): the server does not accept this kind of login`;
    case 'access-denied': return 'the server refused the login: wrong user name or password (BadUserAccessDenied)';
    case 'user-certificate-rejected': return 'the server refused our X.509 user certificate (BadIdentityTokenRejected): trust it in the server\'s user certificate store';
    case 'unreachable': return `cannot reach ${endpoint} (${failure.message})`;
    case 'timeout': return `${endpoint} did not answer in time (${failure.message})`;
    case 'connection-closed': return `${endpoint} closed the connection (${failure.message})`;
    default: return failure.message;
  }
}

export interface OpcUaConnectionOptions {
  settings: EndpointSettings;
  pki: () => Promise<ApplicationPki>;
  /** Time source for backoff (tests). */
  random?: () => number;
}

interface SharedSubscription {
  subscription: Promise<ClientSubscription>;
  users: number;
}

export class OpcUaConnection extends EventEmitter {
  readonly settings: EndpointSettings;
  private readonly pki: () => Promise<ApplicationPki>;
  private readonly random: () => number;
  private _state: ConnectionState = 'idle';
  private _failure: ConnectionFailure | undefined;
  private client: OPCUAClient | undefined;
  private _session: ClientSession | undefined;
  private generation = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  private outageSince: number | undefined;
  /** The current outage has been reported as a refusal. */
  private outageRefused = false;
  private readonly subscriptions = new Map<number, SharedSubscription>();
  private warnedExpiry = new Set<string>();
  /** Thumbprint of the certificate of the server the current session runs with. */
  private serverThumbprint: string | undefined;

  constructor(options: OpcUaConnectionOptions) {
    super();
    this.settings = options.settings;
    this.pki = options.pki;
    this.random = options.random ?? Math.random;
  }

  get state(): ConnectionState {
    return this._state;
  }

  get failure(): ConnectionFailure | undefined {
    return this._failure;
  }

  /** The live session, undefined unless connected. */
  get session(): ClientSession | undefined {
    return this._state === 'connected' ? this._session : undefined;
  }

  get description(): string {
    return describeEndpoint(this.settings);
  }

  start(): void {
    if (this._state !== 'idle') return;
    void this.attempt();
  }

  /**
   * The trust list changed (trust tab): a refused connection tries again now; a connection whose server
   * certificate was just rejected or removed (`withdrawn`) ends its session and connects anew, so the
   * certificate's new status applies at once (fail closed: no session goes on with a server nobody trusts).
   */
  trustChanged(withdrawn?: string): void {
    if (withdrawn === undefined || withdrawn !== this.serverThumbprint || (this._state !== 'connected' && this._state !== 'reconnecting')) {
      this.retryNow();
      return;
    }
    void this.abandon();
    void this.attempt();
  }

  /**
   * Stop using the current client and session: a new generation (their events are ignored from now
   * on), the session closed (node-opcua does not rebuild a session closed by us) and the client disconnected.
   */
  private async abandon(): Promise<void> {
    const client = this.client;
    const session = this._session;
    this.generation++;
    this.client = undefined;
    this._session = undefined;
    this.serverThumbprint = undefined;
    this.subscriptions.clear();
    await session?.close(true).catch(() => undefined);
    await client?.disconnect().catch(() => undefined);
  }

  /** Try again now (after a trust change): only from backoff/refused. */
  retryNow(): void {
    if (this._state !== 'backoff' && this._state !== 'refused') return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    void this.attempt();
  }

  private setState(state: ConnectionState, failure?: ConnectionFailure): void {
    const changed = state !== this._state || failure?.explanation !== this._failure?.explanation;
    this._state = state;
    this._failure = failure;
    if (changed) this.emit('state', state, failure);
  }

  /**
   * One 'outage' per outage, and one more if it turns into a refusal a person must act on (a server
   * refused after a reconnection: the line about the lost connection does not say so).
   */
  private beginOutage(reason: string, refused = false): void {
    if (this.outageSince !== undefined && (!refused || this.outageRefused)) return;
    this.outageSince ??= Date.now();
    this.outageRefused = refused;
    this.emit('outage', reason);
  }

  private endOutage(): void {
    if (this.outageSince === undefined) return;
    const downMs = Date.now() - this.outageSince;
    this.outageSince = undefined;
    this.outageRefused = false;
    this.emit('restored', downMs);
  }

  private identity(): UserIdentityInfo {
    const o = opcua();
    const id = this.settings.identity;
    if (id.type === 'username') return { type: o.UserTokenType.UserName, userName: id.userName, password: id.password };
    if (id.type === 'certificate') {
      return { type: o.UserTokenType.Certificate, certificateData: parseCertificate(id.certificatePem).raw, privateKey: id.privateKeyPem } as UserIdentityInfo;
    }
    return { type: o.UserTokenType.Anonymous };
  }

  private async attempt(): Promise<void> {
    const generation = ++this.generation;
    this.setState('connecting', this._failure);
    const o = opcua();
    const { settings } = this;
    let pki: ApplicationPki | undefined;
    let client: OPCUAClient | undefined;
    try {
      pki = await this.pki();
      this.checkOwnCertificate(pki);
      if (generation !== this.generation) return;
      client = o.OPCUAClient.create({
        applicationName: 'uns-edge',
        applicationUri: pki.applicationUri,
        clientCertificateManager: pki.certificateManager,
        certificateFile: pki.certificateFile,
        privateKeyFile: pki.privateKeyFile,
        securityMode: o.MessageSecurityMode[settings.securityMode],
        securityPolicy: o.SecurityPolicy[settings.securityPolicy],
        endpointMustExist: false,
        keepSessionAlive: true,
        keepAliveInterval: settings.keepAliveIntervalMs,
        defaultTransactionTimeout: settings.requestTimeoutMs,
        // Socket-level timeout: node-opcua breaks an idle socket after half of it and gives up a HEL/ACK
        // that gets no answer after all of it. Its default (60 s) left a reconnect attempt made during a
        // blackhole hanging for a minute after the path came back; 4 keep-alive periods never idle out
        // a live connection (keep-alive traffic at least every period).
        transportTimeout: Math.max(4 * settings.keepAliveIntervalMs, settings.requestTimeoutMs),
        requestedSessionTimeout: Math.max(60_000, settings.keepAliveIntervalMs * 10),
        connectionStrategy: { maxRetry: -1, initialDelay: INITIAL_BACKOFF_MS, maxDelay: settings.maxBackoffMs, randomisationFactor: 0.1 },
        clientName: `uns-edge ${settings.endpointUrl}`,
      });
      this.client = client;
      // The first connect: node-opcua retries unreachable servers itself (maxRetry -1); it gives up
      // at once on certificate and security refusals, which we retry in backoff().
      client.on('backoff', (count: number) => {
        if (generation !== this.generation) return;
        if (count === 0) this.beginOutage(`cannot reach ${settings.endpointUrl}`);
        this.setState('backoff', this.failureFor(classifyFailure(new Error('ECONNREFUSED: no answer from the server')), pki));
      });
      await client.connect(settings.endpointUrl);
      if (generation !== this.generation) throw new Error('superseded');
      const der = await this.checkServer(client, pki);
      const session = await client.createSession(this.identity());
      if (generation !== this.generation) {
        await session.close().catch(() => undefined);
        throw new Error('superseded');
      }
      this.serverThumbprint = der ? describeCertificate(der).thumbprint : undefined;
      this.attachSession(client, session, generation, pki);
    } catch (error) {
      // node-opcua sets client.serverCertificate only once it trusts it (failed() reads a refused one from GetEndpoints).
      const serverDer = client ? firstCertificate(client.serverCertificate) : undefined;
      if (client) await client.disconnect().catch(() => undefined);
      if (generation !== this.generation || this._state === 'closed') return;
      this.client = undefined;
      await this.failed(error, pki, serverDer);
    }
  }

  /**
   * Our checks of the server on a secure channel node-opcua has just opened (first connect and every
   * reconnection), before any credential is sent on it; returns its certificate. The trust list
   * (node-opcua's PKI: trusted/, issuers/, CRLs), then Part 4 §6.1.3 Table 106 checks node-opcua leaves
   * to us (checkServerCertificate). The server's endpoints over this channel are matched by mode and
   * policy, not by URL: behind NAT, a proxy or a port forward the server advertises its own address
   * (so endpointMustExist is off and this check replaces it).
   */
  private async checkServer(client: OPCUAClient, pki: ApplicationPki): Promise<Buffer | undefined> {
    const o = opcua();
    const { settings } = this;
    const der = firstCertificate(client.serverCertificate);
    if (der && client.serverCertificate && settings.securityMode !== 'None') {
      // node-opcua checked it (with the chain the server sent) when it fetched it; a reconnection with the same certificate does not check again.
      const status = await pki.certificateManager.checkCertificate(client.serverCertificate);
      if (!status.isGood()) throw verificationFailed(status.toString());
    }
    const endpoints = await client.getEndpoints();
    const policyUri = o.SecurityPolicy[settings.securityPolicy];
    const chosen = endpoints.find((e) => e.securityMode === o.MessageSecurityMode[settings.securityMode] && e.securityPolicyUri === policyUri);
    if (!chosen) throw new Error(`cannot find endpoint for securityMode=${settings.securityMode} policy=${settings.securityPolicy}`);
    if (der && settings.securityMode !== 'None') this.checkServerCertificate(der, chosen.server?.applicationUri ?? undefined);
    return der;
  }

  /**
   * A connection attempt failed, or node-opcua's repair of a connection (its client already given
   * up): say why, once per streak, and retry after a backoff. `serverDer`: the certificate the failure
   * is about, when known.
   */
  private async failed(error: unknown, pki: ApplicationPki | undefined, serverDer: Buffer | undefined): Promise<void> {
    const { settings } = this;
    const generation = this.generation;
    const classified = error instanceof CertificateCheckError ? { kind: error.kind, side: 'client' as const, message: error.message } : classifyFailure(error);
    // node-opcua keeps a refused server certificate to itself: name it from GetEndpoints (once per streak).
    if (!serverDer && classified.side === 'client' && pki) serverDer = await this.offeredCertificate(pki, classified.kind);
    if (generation !== this.generation || this._state === 'closed') return;
    const failure = this.failureFor(classified, pki, serverDer);
    if (failure.kind === 'server-certificate-untrusted' && settings.trustOnFirstUse && pki) {
      const der = serverDer;
      if (der && (await pki.trustOnFirstUse(settings.endpointUrl, der))) {
        this.emit('warning', `trust on first use: trusted the server certificate ${describeCertificate(der).thumbprint} of ${settings.endpointUrl} without checking it`);
        void this.attempt();
        return;
      }
    }
    this.backoff(failure);
  }

  private offeredCache: { kind: string; der: Buffer } | undefined;

  private async offeredCertificate(pki: ApplicationPki, kind: string): Promise<Buffer | undefined> {
    if (this.offeredCache?.kind === kind) return this.offeredCache.der;
    try {
      const endpoints = await discoverEndpoints(this.settings.endpointUrl, pki, this.settings.requestTimeoutMs);
      const match = endpoints.find((e) => e.securityMode === this.settings.securityMode && e.securityPolicy === this.settings.securityPolicy && e.serverCertificateDer)
        ?? endpoints.find((e) => e.serverCertificateDer);
      if (!match?.serverCertificateDer) return undefined;
      this.offeredCache = { kind, der: Buffer.from(match.serverCertificateDer, 'base64') };
      return this.offeredCache.der;
    } catch {
      return undefined;
    }
  }

  private failureFor(classified: ClassifiedFailure, pki: ApplicationPki | undefined, serverDer?: Buffer): ConnectionFailure {
    const failure: ConnectionFailure = { ...classified, explanation: '' };
    if (serverDer) {
      const { thumbprint, validFrom, validTo } = describeCertificate(serverDer);
      failure.serverThumbprint = thumbprint;
      if (classified.kind === 'server-certificate-time') failure.serverValidity = { validFrom, validTo };
    }
    if (pki && classified.kind === 'client-certificate-rejected') failure.ownThumbprint = pki.ownCertificate().info.thumbprint;
    if (pki && serverDer && classified.side === 'client') pki.noteOffered(failure.serverThumbprint!, this.settings.endpointUrl);
    failure.explanation = explain(failure, this.settings.endpointUrl);
    return failure;
  }

  private checkServerCertificate(der: Buffer, applicationUri: string | undefined): void {
    const host = new URL(this.settings.endpointUrl).hostname;
    const check = checkServerCertificate(der, { host, applicationUri });
    for (const problem of check.problems) {
      if (problem.kind === 'hostname-mismatch' && this.settings.ignoreHostname) continue;
      const kind = problem.kind === 'uri-mismatch' ? 'server-certificate-uri' : problem.kind === 'hostname-mismatch' ? 'server-certificate-hostname' : 'server-certificate-time';
      throw new CertificateCheckError(kind, problem.text);
    }
    if (check.expiresSoon) this.warnExpiry('server', describeCertificate(der).thumbprint, check.expiresSoon.validTo, check.expiresSoon.days);
  }

  private checkOwnCertificate(pki: ApplicationPki): void {
    const { info } = pki.ownCertificate();
    const left = Date.parse(info.validTo) - Date.now();
    if (left <= EXPIRY_WARNING_MS) this.warnExpiry('our application', info.thumbprint, info.validTo, Math.floor(left / 86_400_000));
  }

  /** The soonest certificate expiry within EXPIRY_WARNING_MS seen on this connection (status texts). */
  expiring: { whose: string; thumbprint: string; validTo: string; days: number } | undefined;

  private warnExpiry(whose: string, thumbprint: string, validTo: string, days: number): void {
    if (!this.expiring || days < this.expiring.days) this.expiring = { whose, thumbprint, validTo, days };
    this.emit('expiry', { whose, thumbprint, validTo, days });
    if (this.warnedExpiry.has(thumbprint)) return;
    this.warnedExpiry.add(thumbprint);
    this.emit('warning', `${whose} certificate ${thumbprint} ${days < 0 ? 'has expired' : `expires in ${days} days`} (${validTo})`);
  }

  private backoff(failure: ConnectionFailure): void {
    const refused = needsAction(failure);
    this.beginOutage(failure.explanation, refused);
    const delay = Math.min(this.settings.maxBackoffMs, INITIAL_BACKOFF_MS * 2 ** Math.min(this.attempts++, 16)) * (0.9 + 0.2 * this.random());
    this.setState(refused ? 'refused' : 'backoff', failure);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attempt();
    }, delay);
  }

  private attachSession(client: OPCUAClient, session: ClientSession, generation: number, pki: ApplicationPki): void {
    const current = () => generation === this.generation && this._state !== 'closed';
    this._session = session;
    this.attempts = 0;
    this.offeredCache = undefined;
    this.subscriptions.clear();
    const lost = (reason: string) => {
      if (!current()) return;
      this.beginOutage(reason);
      this.setState('reconnecting', this.failureFor(classifyFailure(new Error(reason)), undefined));
    };
    const back = () => {
      if (!current() || this._state === 'connected') return;
      this.setState('connected');
      this.endOutage();
    };
    client.on('connection_lost', () => lost('BadConnectionClosed: connection to the server lost'));
    client.on('start_reconnection', () => lost('BadConnectionClosed: connection to the server lost'));
    session.on('keepalive_failure', () => lost('BadTimeout: session keep-alive failed (server dead or network cut)'));
    // Connected again once the session is repaired on the new channel, not when the channel is
    // ('after_reconnection'): the channel is checked first.
    session.on('session_restored', back);
    client.on('connection_reestablished', back);
    // The server dropped the session while the channel stayed up (a channel repair ends in
    // session_repaired too, but while reconnecting): node-opcua has rebuilt it, say so once.
    session.on('session_repaired', () => {
      if (!current() || this._state !== 'connected') return;
      const report: SessionClosedReport = { code: SESSION_DROPPED_CODE, reason: `the server closed our session (${SESSION_DROPPED_CODE}): opened a new one with the same subscriptions` };
      this.emit('session-closed', report);
    });
    // A refusal a person must act on ends node-opcua's repair as it ends a first connect.
    const refuse = (error: unknown, serverDer: Buffer | undefined): Promise<void> => {
      const closed = this.abandon();
      void this.failed(error, pki, serverDer);
      return closed;
    };
    // node-opcua re-opens a broken channel by itself, to whatever server answers at the address now
    // (a changed certificate is fetched and checked against the trust list only): check that server
    // as at first connect before node-opcua repairs the session on it. No public hook lies between
    // the two ('after_reconnection' is emitted synchronously just before), hence this wrap of
    // node-opcua's step that repairs the sessions (2.182.2, pinned; test/integration/opcua-reconnect-checks).
    const reconnecting = client as ReconnectingClient;
    const repairSessions = reconnecting._on_connection_reestablished.bind(client);
    reconnecting._on_connection_reestablished = (callback) => {
      this.checkServer(client, pki).then((der) => {
        if (!current()) return callback(new Error('superseded'));
        this.serverThumbprint = der ? describeCertificate(der).thumbprint : undefined;
        repairSessions(callback);
      }, (error: unknown) => {
        if (!current()) return callback(error as Error);
        const classified = error instanceof CertificateCheckError ? undefined : classifyFailure(error);
        // Anything else (the new channel broke meanwhile): node-opcua tries the repair again.
        if (classified && !needsAction(classified)) return callback(error as Error);
        const serverDer = firstCertificate(client.serverCertificate);
        void refuse(error, serverDer).then(() => callback(error as Error));
      });
    };
    // node-opcua's own check of a changed certificate failed (untrusted, expired, revoked): it would
    // retry forever, saying nothing; our client certificate refused by the server is the same.
    client.on('reconnection_attempt_has_failed', (error: Error) => {
      if (current() && needsAction(classifyFailure(error))) void refuse(error, undefined);
    });
    // The session or the client is gone for good (closed server-side and not repaired, or the
    // client closed): start again with a fresh client; users re-create their items on 'session'.
    const gone = (reason: string) => {
      if (!current()) return;
      void this.abandon();
      this.backoff(this.failureFor(classifyFailure(new Error(reason)), undefined));
    };
    session.on('session_closed', (statusCode: { name?: string }) => gone(`session closed (${statusCode?.name ?? 'unknown'})`));
    client.on('close', (err?: Error | null) => gone(`BadConnectionClosed: client closed${err ? ` (${err.message})` : ''}`));
    this.setState('connected');
    this.endOutage();
    this.emit('session', session);
  }

  /**
   * The shared subscription of a publishing interval on the current session (one per interval,
   * issue 9), created on first use. Call releaseSubscription() once per call.
   */
  subscription(publishingIntervalMs: number): Promise<ClientSubscription> {
    const session = this.session;
    if (!session) return Promise.reject(new Error('not connected'));
    let shared = this.subscriptions.get(publishingIntervalMs);
    if (!shared) {
      const keepAliveCount = Math.max(3, Math.ceil(1000 / publishingIntervalMs));
      const subscription = session.createSubscription2({
        requestedPublishingInterval: publishingIntervalMs,
        requestedMaxKeepAliveCount: keepAliveCount,
        // Lifetime ≥ 3 × keep-alive (Part 4 §5.13.2) and ≥ 60 s, so the server keeps the subscription and its
        // queued values through a short outage and TransferSubscriptions can take it back.
        requestedLifetimeCount: Math.max(keepAliveCount * 3, Math.ceil(60_000 / publishingIntervalMs)),
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
      });
      shared = { subscription, users: 0 };
      this.subscriptions.set(publishingIntervalMs, shared);
      subscription.catch(() => this.subscriptions.delete(publishingIntervalMs));
    }
    shared.users++;
    return shared.subscription;
  }

  async releaseSubscription(publishingIntervalMs: number, subscription: ClientSubscription): Promise<void> {
    const shared = this.subscriptions.get(publishingIntervalMs);
    if (!shared || (await shared.subscription.catch(() => undefined)) !== subscription) return; // from an earlier session
    if (--shared.users > 0) return;
    this.subscriptions.delete(publishingIntervalMs);
    await subscription.terminate().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.generation++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const client = this.client;
    const session = this._session;
    this.client = undefined;
    this._session = undefined;
    this.subscriptions.clear();
    this.setState('closed');
    if (session) await session.close(true).catch(() => undefined);
    if (client) await client.disconnect().catch(() => undefined);
  }
}
