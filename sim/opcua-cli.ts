/**
 * The simulated OPC UA server as `uns-edge simulate` and `uns-edge demo` start it (docs/opcua.md,
 * "Simulated OPC UA drive"): state kept in one folder (`simulate --state-dir`, default ./.uns-edge/opcua-sim) so the server
 * certificate and the trust list survive restarts, two users with passwords generated on first start
 * (kept in users.json, mode 0600, printed in the banner), SignAndEncrypt only.
 *
 * The trust exchange works offline because both sides are folders on this machine:
 * - `simulate`: the server refuses an unknown client (BadSecurityChecksFailed) and keeps its
 *   certificate in `<state>/pki/rejected`; trusting it is moving that file into `<state>/pki/trusted/certs`.
 *   The gateway trusts the server by its own trust assistant (the server's certificate is
 *   `<state>/pki/own/certs/certificate.pem`, thumbprint in the banner).
 * - `demo`: the demo does both steps itself: it copies the server certificate into the demo
 *   gateway's trust list (`<userDir>/uns-edge/opcua/pki/trusted/certs`) when it starts this server, and the
 *   server trusts every client certificate (autoAcceptClientCertificates): acceptable only because the
 *   demo listens on loopback, and said with a WARNING in the banner.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { noticeHeldLock } from '../lib/opcua/pki';
import { startSimulatedOpcUaServer, type SimOpcUaUser, type SimulatedOpcUaServer } from './opcua-server';
import type { SimulatedPlant } from './plant';

export interface CliOpcUaServerOptions {
  plant: SimulatedPlant;
  host: string;
  port: number;
  /** Folder of the PKI and users.json. */
  stateDir: string;
  /** Demo only: trust every client, and put the server certificate into this gateway PKI's trust list. */
  demoGatewayPkiDir?: string;
  /** Told when the start has to wait (the PKI folder locked by another process). */
  notice?: (line: string) => void;
}

export interface CliOpcUaServer {
  readonly server: SimulatedOpcUaServer;
  readonly users: readonly SimOpcUaUser[];
  /** Banner lines: endpoint, users and passwords, how to trust. */
  describe(): string;
}

/** users.json of the state folder; created with random passwords on first start. */
function loadUsers(stateDir: string): SimOpcUaUser[] {
  const file = join(stateDir, 'users.json');
  if (!existsSync(file)) {
    const password = (): string => randomBytes(12).toString('base64url');
    const users: SimOpcUaUser[] = [
      { username: 'operator', password: password(), role: 'write' },
      { username: 'viewer', password: password(), role: 'read' },
    ];
    writeFileSync(file, JSON.stringify(users, null, 2) + '\n', { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return JSON.parse(readFileSync(file, 'utf8')) as SimOpcUaUser[];
}

export async function startCliOpcUaServer(options: CliOpcUaServerOptions): Promise<CliOpcUaServer> {
  mkdirSync(options.stateDir, { recursive: true });
  const users = loadUsers(options.stateDir);
  const demo = options.demoGatewayPkiDir !== undefined;
  noticeHeldLock(join(options.stateDir, 'pki'), options.notice);
  const server = await startSimulatedOpcUaServer({
    plant: options.plant,
    host: options.host,
    port: options.port,
    pkiDir: join(options.stateDir, 'pki'),
    users,
    autoAcceptClientCertificates: demo,
  });
  if (options.demoGatewayPkiDir) {
    const trusted = join(options.demoGatewayPkiDir, 'trusted', 'certs');
    mkdirSync(trusted, { recursive: true });
    const pem = new X509Certificate(server.certificate()).toString();
    writeFileSync(join(trusted, `uns-edge-simulated-plant[${server.certificateThumbprint()}].pem`), pem);
  }
  return {
    server,
    users,
    describe() {
      const lines = [server.describe()];
      lines.push(`  users     ${users.map((u) => `${u.username} / ${u.password} (${u.role === 'write' ? 'read, write, call' : 'read'})`).join('; ')}`);
      lines.push(`            (from ${join(options.stateDir, 'users.json')})`);
      if (demo) {
        lines.push(`  the demo gateway trusts this server already (its certificate is in ${join(options.demoGatewayPkiDir!, 'trusted', 'certs')})`);
      }
      return lines.join('\n');
    },
  };
}
