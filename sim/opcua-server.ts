/**
 * The simulated plant over OPC UA: a node-opcua server exposing the same drives the Modbus server
 * serves (sim/plant.ts), as a drive's OPC UA option board would (address space: sim/opcua-address-space.ts,
 * docs/opcua.md "Simulated OPC UA drive").
 *
 * Secure by default: SignAndEncrypt only, with Basic256Sha256, Aes128_Sha256_RsaOaep and
 * Aes256_Sha256_RsaPss; no anonymous login; client certificates must be trusted (copied into
 * `<pkiDir>/trusted/certs`, or moved there from `<pkiDir>/rejected`, where a refused client's
 * certificate lands). `autoAcceptClientCertificates` trusts every client: for a demo on one's own
 * machine only, never on a network. The application certificate is created on first start
 * (node-opcua-pki, no openssl, no network) into `<pkiDir>/own` and kept for later starts.
 *
 * For recovery tests the handle can stop and start the server on the same port and PKI, change the
 * address space, close every session server-side and count monitored items server-side.
 */
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import {
  MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy,
  type UserManagerOptions,
} from 'node-opcua';
import { packageInfo } from '../lib/runtime/package-info';
import { browseNameOf, ROLE_NODE_IDS, SimDriveAddressSpace, simNodeId, SIM_OPCUA_NAMESPACE_URI } from './opcua-address-space';
import type { SimulatedPlant } from './plant';

export { browseNameOf, simNodeId, SIM_OPCUA_NAMESPACE_URI };

/** Environment variable that picks the OPC UA port when the port option is not given. */
export const OPCUA_SIM_PORT_ENV = 'UNS_EDGE_OPCUA_SIM_PORT';
/**
 * Default port: 4850, not the IANA port 4840 of opc.tcp, so the simulator never hides (or is
 * hidden by) a real server or another simulator (open62541's default) on the same machine.
 */
export const DEFAULT_OPCUA_SIM_PORT = 4850;
export const DEFAULT_OPCUA_SIM_APPLICATION_URI = 'urn:uns-edge:simulated-plant:opcua-server';

export type SimSecurityMode = 'None' | 'Sign' | 'SignAndEncrypt';
export type SimSecurityPolicy = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
export const SIM_SECURITY_POLICIES: readonly SimSecurityPolicy[] = ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'];

/**
 * A user of the simulated server. With a password: username/password login. Without: an X.509
 * user whose certificate's subject CN is `username` (the certificate must be trusted in `userPkiDir`).
 * 'read' users (role Observer) read and browse; 'write' users (role Operator) also write and call.
 */
export interface SimOpcUaUser {
  username: string;
  password?: string;
  role: 'read' | 'write';
}

export interface StartSimulatedOpcUaServerOptions {
  /** The drives to serve: the same plant object the Modbus server serves, so the values agree. */
  plant: SimulatedPlant;
  /** The server's PKI folder (own/, trusted/, rejected/, issuers/); created on first start. */
  pkiDir: string;
  /** PKI folder of trusted X.509 user certificates; default `<pkiDir>-users`. */
  userPkiDir?: string;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Host name in the endpoint URLs and the certificate; default localhost (127.0.0.1 and the machine's name are in the certificate too). */
  hostname?: string;
  /** TCP port; default $UNS_EDGE_OPCUA_SIM_PORT, else 4850; 0 picks a free port (kept across stop/start). */
  port?: number;
  /** Default ['SignAndEncrypt']; 'None' only when listed. */
  securityModes?: SimSecurityMode[];
  /** Default all three of SIM_SECURITY_POLICIES. */
  securityPolicies?: SimSecurityPolicy[];
  users?: SimOpcUaUser[];
  /** Default false. */
  allowAnonymous?: boolean;
  /** Trust every client certificate. Demo on one's own machine only; default false. */
  autoAcceptClientCertificates?: boolean;
  /** No hidden None endpoint for discovery (clients then need the server certificate beforehand); default false. */
  disableDiscovery?: boolean;
  applicationUri?: string;
}

export interface SimulatedOpcUaServer {
  /** opc.tcp://<hostname>:<port> */
  readonly endpointUrl: string;
  readonly port: number;
  readonly applicationUri: string;
  readonly pkiDir: string;
  readonly userPkiDir: string;
  /** The server's application certificate (PEM file). */
  readonly certificateFile: string;
  readonly running: boolean;
  /** The running node-opcua server (undefined while stopped), for what the handle does not offer. */
  readonly server: OPCUAServer | undefined;
  /** The application certificate, DER. */
  certificate(): Buffer;
  /** SHA-1 thumbprint of the application certificate, lower-case hex (what OPC UA tools show). */
  certificateThumbprint(): string;
  /** NodeId string of a drive node, e.g. nodeId(1, 'ActualSpeed') → ns=2;s=Drive1.ActualSpeed. */
  nodeId(unitId: number, ...path: string[]): string;
  /** Trust a client application certificate (DER). */
  trustClientCertificate(der: Buffer): Promise<void>;
  /** Trust an X.509 user certificate (DER). */
  trustUserCertificate(der: Buffer): Promise<void>;
  /**
   * Files of the client certificates refused so far (`<pkiDir>/rejected`), complete ones only:
   * node-opcua-pki writes the file after the refusal, and one still being written is not listed yet.
   */
  rejectedClientCertificates(): string[];
  /** Trust every refused client certificate (they move from rejected/ to trusted/); returns how many. */
  trustRejectedClientCertificates(): Promise<number>;
  /** Stop listening (sessions end); the PKI, the port and the address-space edits are kept. */
  stop(): Promise<void>;
  /** Start again on the same port and PKI (a fresh server: no sessions, no subscriptions). */
  start(): Promise<void>;
  /** Delete a parameter's variable (e.g. 'actualSpeed'): live when running, and in every later start. */
  removeVariable(unitId: number, parameter: string): void;
  /** Add a removed variable back (same NodeId). */
  addVariable(unitId: number, parameter: string): void;
  /** Close every session server-side, keeping their subscriptions for a TransferSubscriptions; returns how many. */
  closeAllSessions(): number;
  sessionCount(): number;
  /** Monitored items of every subscription on the server, sessions' and orphaned ones. */
  monitoredItemCount(): number;
  /** Lines for a console banner. */
  describe(): string;
  close(): Promise<void>;
}

/** The port to use: the option, else $UNS_EDGE_OPCUA_SIM_PORT, else 4850. Throws on an invalid value. */
export function resolveOpcUaSimPort(port: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env[OPCUA_SIM_PORT_ENV];
  const value = port ?? (fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : DEFAULT_OPCUA_SIM_PORT);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    const source = port !== undefined ? 'the port option' : OPCUA_SIM_PORT_ENV;
    throw new RangeError(`simulated OPC UA server: ${source} must be an integer in 0..65535 (0 picks a free port), got ${port ?? fromEnv}`);
  }
  return value;
}

/** A free TCP port on `host` (node-opcua needs the number before it listens: it is in the endpoint URL). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** A free port is checked first, so a taken one gives a clear message instead of node-opcua's. */
async function checkPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const howToChoose = `choose another with the port option or ${OPCUA_SIM_PORT_ENV} (0 picks a free port)`;
      if (error.code === 'EADDRINUSE') reject(new Error(`simulated OPC UA server: port ${port} on ${host} is already in use; ${howToChoose}`));
      else if (error.code === 'EACCES') reject(new Error(`simulated OPC UA server: no permission to listen on ${host}:${port}; ${howToChoose}`));
      else reject(error);
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

const MODES: Record<SimSecurityMode, MessageSecurityMode> = {
  None: MessageSecurityMode.None, Sign: MessageSecurityMode.Sign, SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
};

function userManager(users: readonly SimOpcUaUser[]): UserManagerOptions {
  const byName = new Map(users.map((u) => [u.username, u]));
  return {
    isValidUser: (username: string, password: string) => {
      const user = byName.get(username);
      return user?.password !== undefined && user.password === password;
    },
    getUserRoles: (username: string) => {
      const user = byName.get(username);
      return user ? [...ROLE_NODE_IDS[user.role]] : [];
    },
  };
}

/** Start the simulated drives' OPC UA server. */
export async function startSimulatedOpcUaServer(options: StartSimulatedOpcUaServerOptions): Promise<SimulatedOpcUaServer> {
  const host = options.host ?? '127.0.0.1';
  const hostname = options.hostname ?? 'localhost';
  const requestedPort = resolveOpcUaSimPort(options.port);
  const port = requestedPort === 0 ? await freePort(host) : requestedPort;
  const pkiDir = options.pkiDir;
  const userPkiDir = options.userPkiDir ?? `${pkiDir}-users`;
  const applicationUri = options.applicationUri ?? DEFAULT_OPCUA_SIM_APPLICATION_URI;
  const modes = options.securityModes ?? ['SignAndEncrypt'];
  const policies = options.securityPolicies ?? [...SIM_SECURITY_POLICIES];
  if (modes.length === 0) throw new RangeError('simulated OPC UA server: securityModes is empty');
  const securityPolicies = [...(modes.includes('None') ? [SecurityPolicy.None] : []), ...policies.map((p) => SecurityPolicy[p])];
  const users = options.users ?? [];
  const omitted = new Set<string>();
  const certificateFile = join(pkiDir, 'own', 'certs', 'certificate.pem');

  let server: OPCUAServer | undefined;
  let drives: SimDriveAddressSpace | undefined;
  let certificateManager: OPCUACertificateManager | undefined;
  let userCertificateManager: OPCUACertificateManager | undefined;

  async function managers(): Promise<{ server: OPCUACertificateManager; user: OPCUACertificateManager }> {
    certificateManager ??= new OPCUACertificateManager({
      rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: options.autoAcceptClientCertificates ?? false,
    });
    userCertificateManager ??= new OPCUACertificateManager({ rootFolder: userPkiDir, automaticallyAcceptUnknownCertificate: false });
    await certificateManager.initialize();
    await userCertificateManager.initialize();
    if (!existsSync(certificateFile)) {
      await certificateManager.createSelfSignedCertificate({
        applicationUri,
        subject: `/CN=uns-edge simulated plant/O=uns-edge/L=${hostname}`,
        dns: [...new Set([hostname, 'localhost', osHostname()])],
        ip: [...new Set(['127.0.0.1', ...(host !== '0.0.0.0' && host !== '::' && /^[\d.]+$/.test(host) ? [host] : [])])],
        outputFile: certificateFile,
        startDate: new Date(),
        validity: 365 * 10,
      });
    }
    return { server: certificateManager, user: userCertificateManager };
  }

  async function start(): Promise<void> {
    if (server) return;
    await checkPortFree(host, port);
    const pki = await managers();
    const next = new OPCUAServer({
      host, hostname, port,
      serverCertificateManager: pki.server,
      userCertificateManager: pki.user,
      certificateFile,
      privateKeyFile: pki.server.privateKey,
      securityModes: modes.map((m) => MODES[m]),
      securityPolicies,
      allowAnonymous: options.allowAnonymous ?? false,
      disableDiscovery: options.disableDiscovery ?? false,
      userManager: userManager(users),
      serverInfo: { applicationUri, productUri: 'urn:uns-edge:simulated-plant', applicationName: { text: 'uns-edge simulated plant' } },
      buildInfo: { productName: 'uns-edge simulated plant', manufacturerName: 'uns-edge', softwareVersion: packageInfo().version },
      // node-opcua allows 10 connections per endpoint by default; tests open a client per case and the
      // browser, the nodes and a second gateway may share one simulator.
      maxConnectionsPerEndpoint: 100,
    });
    await next.initialize();
    drives = new SimDriveAddressSpace(next.engine.addressSpace!, options.plant, omitted);
    await next.start();
    server = next;
  }

  async function stop(): Promise<void> {
    const current = server;
    server = undefined;
    drives = undefined;
    await current?.shutdown(0);
  }

  function subscriptions(): { monitoredItemCount: number }[] {
    const engine = server?.engine;
    if (!engine) return [];
    const ofSessions = engine.getSessions().flatMap((s) => s.publishEngine?.subscriptions ?? []);
    const orphans = (engine as unknown as { _orphanPublishEngine?: { subscriptions: { monitoredItemCount: number }[] } })._orphanPublishEngine?.subscriptions ?? [];
    return [...ofSessions, ...orphans];
  }

  function parameterSpec(parameter: string) {
    const spec = options.plant.registerMap.profile.parameters.find((p) => p.name === parameter);
    if (!spec) throw new RangeError(`simulated OPC UA server: no parameter ${parameter} in the drive profile`);
    return spec;
  }

  await start();
  const endpointUrl = `opc.tcp://${hostname}:${port}`;
  const thumbprint = (): string => certificate().fingerprint.replace(/:/g, '').toLowerCase();
  /** The certificate in `file`, or undefined while it is not a whole certificate (still being written). */
  const completeCertificate = (file: string): X509Certificate | undefined => {
    try {
      return new X509Certificate(readFileSync(file));
    } catch {
      return undefined;
    }
  };
  const rejectedClientCertificates = (): string[] => {
    const folder = join(pkiDir, 'rejected');
    if (!existsSync(folder)) return [];
    return readdirSync(folder).filter((f) => /\.(pem|der)$/.test(f)).map((f) => join(folder, f)).filter((file) => completeCertificate(file) !== undefined);
  };
  const certificate = (): X509Certificate => new X509Certificate(readFileSync(certificateFile));

  return {
    endpointUrl,
    port,
    applicationUri,
    pkiDir,
    userPkiDir,
    certificateFile,
    get running() { return server !== undefined; },
    get server() { return server; },
    certificate: () => certificate().raw,
    certificateThumbprint: thumbprint,
    nodeId: (unitId, ...path) => simNodeId(unitId, ...path),
    async trustClientCertificate(der) { await (await managers()).server.trustCertificate(der); },
    async trustUserCertificate(der) { await (await managers()).user.trustCertificate(der); },
    rejectedClientCertificates,
    async trustRejectedClientCertificates() {
      const pki = await managers();
      let trusted = 0;
      // Through the certificate manager, not a file move: it caches what it has seen.
      for (const file of rejectedClientCertificates()) {
        const certificate = completeCertificate(file);
        if (certificate === undefined) continue; // removed or rewritten since it was listed
        await pki.server.trustCertificate(certificate.raw);
        trusted++;
      }
      return trusted;
    },
    stop,
    start,
    removeVariable(unitId, parameter) {
      parameterSpec(parameter);
      drives?.removeParameter(unitId, parameter);
      omitted.add(SimDriveAddressSpace.key(unitId, parameter));
    },
    addVariable(unitId, parameter) {
      const spec = parameterSpec(parameter);
      omitted.delete(SimDriveAddressSpace.key(unitId, parameter));
      drives?.addParameter(unitId, spec);
    },
    closeAllSessions() {
      const engine = server?.engine;
      if (!engine) return 0;
      const sessions = engine.getSessions();
      for (const session of sessions) engine.closeSession(session.authenticationToken, false, 'Forcing');
      return sessions.length;
    },
    sessionCount: () => server?.engine.currentSessionCount ?? 0,
    monitoredItemCount: () => subscriptions().reduce((sum, s) => sum + s.monitoredItemCount, 0),
    describe() {
      const plant = options.plant;
      return [
        `Simulated plant on OPC UA: ${plant.drives.length} drive(s) at ${endpointUrl} (listening on ${host})`,
        `  security ${modes.join(', ')} with ${policies.join(', ')}; anonymous ${options.allowAnonymous ? 'allowed' : 'refused'}`,
        `  drives    Objects/Drives/Drive1..Drive${plant.drives.length}, e.g. ${simNodeId(1, browseNameOf('actualSpeed'))}`,
        `  server certificate ${certificateFile} (SHA-1 ${thumbprint()})`,
        options.autoAcceptClientCertificates
          ? '  WARNING: this OPC UA server trusts EVERY client certificate (demo mode). Never do this on a network.'
          : `  client certificates: trust by moving them from ${join(pkiDir, 'rejected')} to ${join(pkiDir, 'trusted', 'certs')}`,
      ].join('\n');
    },
    close: stop,
  };
}
