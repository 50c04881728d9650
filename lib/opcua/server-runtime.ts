/**
 * uns-opcua-server's controller (no Node-RED import): a node-opcua server whose address space is
 * built from tag batches (server-address-space.ts), whose writes become write commands
 * (server-writes.ts), secured by default (docs/opcua-server.md § Security):
 *
 * - endpoints SignAndEncrypt with Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss;
 *   None only when `allowNone` is set (the caller shows a warning);
 * - no anonymous sessions; users by username/password or X.509 user certificate, each with a read
 *   or write role. An X.509 user's certificate must pass the user PKI folder's trust list (node-opcua)
 *   AND be the certificate of a configured user by SHA-1 thumbprint (here, at ActivateSession: else
 *   BadIdentityTokenRejected, OPC 10000-4 §5.6.3) — the trust list also admits any certificate of a
 *   CA in it, whatever its CN;
 * - client application certificates are never trusted automatically: a refused one lands in the
 *   server PKI's rejected/ folder and in the trust list;
 * - limits: sessions (CreateSession beyond → BadTooManySessions, OPC 10000-4 §5.6.2) and TCP
 *   connections per endpoint (refused at connect), writes per second per session; every refusal counted.
 */
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { hostname as machineName } from 'node:os';
import type { OPCUAServer } from 'node-opcua';
import type { TagBatch } from '../uns/tag-batch';
import { describeCertificate } from './certificates';
import { opcua } from './load';
import { UnsAddressSpace, type AddressSpaceWarning } from './server-address-space';
import type { ServerModel } from './server-model';
import { serverPki, defaultServerIdentity, type ServerPki } from './server-pki';
import { userCertificateOf, WritePolicy, type ServerUser, type WriteCommand } from './server-writes';

export type ServerPolicy = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
export const SERVER_POLICIES: readonly ServerPolicy[] = ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'];

export interface UnsOpcUaServerOptions {
  port: number;
  /** Address to listen on; default 0.0.0.0. */
  host?: string;
  /** Host name in the endpoint URLs (and in the certificate); default the machine's name. */
  hostname?: string;
  pkiFolder: string;
  userPkiFolder: string;
  /** Told when the PKI folder is locked by another process and the start waits for it (lib/opcua/pki.ts heldPkiLock). */
  notice?: (message: string) => void;
  policies?: readonly ServerPolicy[];
  /** Offer a None endpoint too (unencrypted, unsigned): only when ticked. */
  allowNone?: boolean;
  users: readonly ServerUser[];
  model: ServerModel;
  maxSessions?: number;
  maxConnections?: number;
  maxWritesPerSecond?: number;
  writeTimeoutMs?: number;
  maxPendingWrites?: number;
  maxVariables?: number;
  /** Correlation id prefix of write commands (the node id). */
  id: string;
}

export interface ServerCounters {
  batches: number;
  refusedConnections: number;
  refusedChannels: number;
  sessions: number;
}

interface Events {
  command: [WriteCommand];
  warning: [AddressSpaceWarning];
  /** A secure channel refused (e.g. an untrusted client certificate): for the status and the log. */
  refused: [string];
}

async function checkPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE'
      ? new Error(`port ${port} on ${host} is already in use`) : error));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

type IsUserAuthorized = OPCUAServer['isUserAuthorized'];
type IsValidUserIdentityToken = OPCUAServer['isValidUserIdentityToken'];

/**
 * node-opcua's server with the X.509 user mapping of OPC 10000-4 §5.6.3 ActivateSession: after
 * node-opcua has checked the X509IdentityToken (proof of possession, user trust list), a session is
 * activated only for a certificate whose thumbprint a configured user has; any other one is refused
 * with BadIdentityTokenRejected ("the user identity token is valid but the server has rejected it").
 * Both refusals are told (`refused`) with the certificate's subject and SHA-1, the thumbprint an
 * administrator puts into the user row.
 */
function userMappingServer(users: readonly ServerUser[], refused: (text: string) => void): typeof OPCUAServer {
  const { OPCUAServer: Base, X509IdentityToken, StatusCodes } = opcua();
  const thumbprints = new Set(users.flatMap((u) => (u.kind === 'certificate' && u.thumbprint ? [u.thumbprint] : [])));
  const describe = (token: InstanceType<typeof X509IdentityToken>) => {
    const certificate = userCertificateOf(token.certificateData);
    return certificate ? `user certificate ${certificate.subject} (SHA-1 ${certificate.thumbprint})` : 'a user certificate that does not parse';
  };
  return class extends Base {
    protected override isValidUserIdentityToken(...[channel, session, token, signature, endpoint, callback]: Parameters<IsValidUserIdentityToken>): void {
      super.isValidUserIdentityToken(channel, session, token, signature, endpoint, (error, statusCode) => {
        if (!error && token instanceof X509IdentityToken && statusCode?.isNotGood()) {
          refused(`${describe(token)} refused: ${statusCode.name}; trust it (or its CA) in the server's user PKI trusted/certs`);
        }
        callback(error, statusCode);
      });
    }

    protected override isUserAuthorized(...[channel, session, token, callback]: Parameters<IsUserAuthorized>): void {
      if (!(token instanceof X509IdentityToken)) {
        super.isUserAuthorized(channel, session, token, callback);
        return;
      }
      const certificate = userCertificateOf(token.certificateData);
      if (certificate && thumbprints.has(certificate.thumbprint)) {
        callback(null, true);
        return;
      }
      refused(`${describe(token)} is no configured X.509 user: session refused; give its thumbprint in a user row to let it log in`);
      callback(null, false, StatusCodes.BadIdentityTokenRejected);
    }
  };
}

export class UnsOpcUaServer extends EventEmitter<Events> {
  readonly counters: ServerCounters = { batches: 0, refusedConnections: 0, refusedChannels: 0, sessions: 0 };
  readonly writes: WritePolicy;
  private server: OPCUAServer | undefined;
  private space: UnsAddressSpace | undefined;
  private pki: ServerPki | undefined;

  constructor(readonly options: UnsOpcUaServerOptions) {
    super();
    this.writes = new WritePolicy({
      users: options.users,
      maxWritesPerSecond: options.maxWritesPerSecond ?? 10,
      timeoutMs: options.writeTimeoutMs ?? 5000,
      maxPending: options.maxPendingWrites ?? 100,
      idPrefix: options.id,
      send: (command) => this.emit('command', command),
    });
  }

  get endpointUrl(): string {
    return `opc.tcp://${this.options.hostname ?? machineName()}:${this.options.port}`;
  }

  get addressSpace(): UnsAddressSpace | undefined {
    return this.space;
  }

  get applicationPki(): ServerPki | undefined {
    return this.pki;
  }

  get sessionCount(): number {
    return this.server?.engine.currentSessionCount ?? 0;
  }

  get certificateFile(): string | undefined {
    return this.pki?.certificateFile;
  }

  async start(): Promise<void> {
    const o = this.options;
    const { OPCUACertificateManager, MessageSecurityMode, SecurityPolicy } = opcua();
    const host = o.host ?? '0.0.0.0';
    const hostname = o.hostname ?? machineName();
    await checkPortFree(host, o.port);
    this.pki = await serverPki(o.pkiFolder, defaultServerIdentity([hostname, ...(host === '0.0.0.0' ? [] : [host])]), o.notice);
    const userCertificateManager = new OPCUACertificateManager({ rootFolder: o.userPkiFolder, automaticallyAcceptUnknownCertificate: false });
    await userCertificateManager.initialize();
    const policies = o.policies ?? SERVER_POLICIES;
    const passwords = new Map(o.users.filter((u) => u.kind === 'password').map((u) => [u.name, u.password ?? '']));
    const server = new (userMappingServer(o.users, (text) => this.emit('refused', text)))({
      host, hostname, port: o.port,
      serverCertificateManager: this.pki.certificateManager,
      userCertificateManager,
      certificateFile: this.pki.certificateFile,
      privateKeyFile: this.pki.privateKeyFile,
      securityModes: [MessageSecurityMode.SignAndEncrypt, ...(o.allowNone ? [MessageSecurityMode.None] : [])],
      securityPolicies: [...policies.map((p) => SecurityPolicy[p]), ...(o.allowNone ? [SecurityPolicy.None] : [])],
      allowAnonymous: false,
      userManager: {
        // A user without a password entry never logs in by password (X.509 users, unknown names).
        isValidUser: (name: string, password: string) => passwords.has(name) && passwords.get(name) !== '' && passwords.get(name) === password,
      },
      serverInfo: { applicationUri: this.pki.applicationUri, productUri: 'urn:uns-edge:opcua-server', applicationName: { text: 'uns-edge UNS server' } },
      buildInfo: { productName: 'uns-edge UNS server', manufacturerName: 'uns-edge' },
      serverCapabilities: { maxSessions: o.maxSessions ?? 50 } as never,
      maxConnectionsPerEndpoint: o.maxConnections ?? 60,
    });
    await server.initialize();
    this.space = new UnsAddressSpace(server.engine.addressSpace!, {
      model: o.model,
      ...(o.maxVariables !== undefined ? { maxVariables: o.maxVariables } : {}),
      onWrite: (metric, context, dataValue) => this.writes.write(metric, context, dataValue),
    });
    server.on('connectionRefused', () => {
      this.counters.refusedConnections++;
      this.emit('refused', `connection refused: more than ${o.maxConnections ?? 60} connections`);
    });
    // Observe (never relax) node-opcua's verdict on a client certificate: the refusal is told, with
    // the certificate, while node-opcua has put it into rejected/ for the trust list.
    for (const endpoint of server.endpoints) {
      endpoint.onAdjustCertificateStatus = (statusCode, certificate) => {
        this.counters.refusedChannels++;
        let who = 'a client certificate';
        try {
          const info = describeCertificate(certificate);
          who = `client certificate ${info.subject} (SHA-1 ${info.thumbprint})`;
        } catch {
          // not parseable: the generic text
        }
        this.emit('refused', `${who} refused: ${statusCode.name}; trust it in the server's trust list to let it connect`);
        return statusCode;
      };
    }
    server.on('create_session', () => this.counters.sessions++);
    server.on('session_closed', (session: { nodeId?: { toString(): string } }) => this.writes.forgetSession(session.nodeId?.toString() ?? ''));
    await server.start();
    this.server = server;
  }

  /** Put a (validated) tag batch into the address space; warnings are emitted. */
  apply(batch: TagBatch): number {
    if (!this.space) return 0;
    this.counters.batches++;
    const result = this.space.apply(batch);
    for (const warning of result.warnings) this.emit('warning', warning);
    return result.updated;
  }

  async stop(): Promise<void> {
    this.writes.close();
    const server = this.server;
    this.server = undefined;
    this.space = undefined;
    await server?.shutdown(0);
    await (server as unknown as { userCertificateManager?: { dispose(): Promise<void> } } | undefined)?.userCertificateManager?.dispose();
  }
}
