/**
 * uns-opcua-server's application identity and client trust list: the client side's ApplicationPki
 * (pki.ts: node-opcua's folder layout, trust/reject/remove, nothing trusted automatically) in a
 * folder of its own, with a server certificate made offline on first start (node-opcua-pki, no
 * openssl, no network) that names the host names and IP addresses clients connect to — OPC
 * 10000-4 §6.1.3 Table 106: a client checks the host name of the endpoint URL against the
 * certificate, and the application URI against the ApplicationDescription.
 *
 * A client certificate the server does not trust is refused (BadSecurityChecksFailed on the client's
 * side) and lands in rejected/, where the trust list shows it until someone trusts it.
 */
import { existsSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { isIP } from 'node:net';
import { ApplicationPki, noticeHeldLock } from './pki';

export interface ServerIdentity {
  applicationUri: string;
  /** Host names and IP addresses the certificate names (the endpoint URL's host among them). */
  hosts: string[];
}

export function defaultServerIdentity(extraHosts: string[] = []): ServerIdentity {
  const host = osHostname();
  return { applicationUri: `urn:${host}:uns-edge:opcua-server`, hosts: [...new Set([host, 'localhost', '127.0.0.1', ...extraHosts])] };
}

export class ServerPki extends ApplicationPki {
  constructor(rootFolder: string, private readonly identity: ServerIdentity) {
    super(rootFolder);
  }

  /** The server certificate first (the base class then only reads it and takes its URI). */
  override async initialize(): Promise<void> {
    await this.certificateManager.initialize();
    if (!existsSync(this.certificateFile)) {
      const hosts = this.identity.hosts.filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::');
      await this.certificateManager.createSelfSignedCertificate({
        applicationUri: this.identity.applicationUri,
        subject: `/CN=uns-edge OPC UA server@${osHostname()}/O=uns-edge`,
        dns: hosts.filter((h) => isIP(h) === 0),
        ip: hosts.filter((h) => isIP(h) !== 0),
        startDate: new Date(Date.now() - 24 * 3600 * 1000),
        validity: 3650,
        outputFile: this.certificateFile,
      });
    }
    await super.initialize();
  }
}

const serverPkis = new Map<string, Promise<ServerPki>>();

/**
 * The one ServerPki of a folder in this process (a redeploy reuses it and its certificate manager).
 * `notice`: as for applicationPki, a lock that makes the first initialisation wait.
 */
export function serverPki(rootFolder: string, identity: ServerIdentity, notice?: (message: string) => void): Promise<ServerPki> {
  let pki = serverPkis.get(rootFolder);
  if (!pki) {
    noticeHeldLock(rootFolder, notice);
    const created = new ServerPki(rootFolder, identity);
    pki = created.initialize().then(() => created);
    pki.catch(() => serverPkis.delete(rootFolder));
    serverPkis.set(rootFolder, pki);
  }
  return pki;
}
