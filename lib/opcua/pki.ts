/**
 * The gateway's OPC UA application identity and trust list: one PKI folder per Node-RED user dir
 * (`<userDir>/uns-edge/opcua/pki`, node-opcua's layout: own/, trusted/certs, rejected/, issuers/).
 *
 * - The application instance certificate is created on first use (RSA-2048/SHA-256, 10 years,
 *   node-opcua-pki, no openssl) with subjectAltName URI = our applicationUri; an existing certificate
 *   is read and its URI is used, so the URI sent in CreateSession always matches the certificate
 *   (OPC 10000-4 §5.6.2: the server checks it).
 * - Unknown server certificates are NEVER trusted automatically (automaticallyAcceptUnknownCertificate
 *   false): node-opcua puts them in rejected/, and a person trusts them (trust tab / admin API).
 * - Trust on first use is a per-endpoint, explicitly enabled and logged exception, remembered in
 *   tofu.json so that it happens once per endpoint and never for a changed certificate.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { OPCUACertificateManager } from 'node-opcua';
import { CertificateInfo, describeCertificate, parseCertificate } from './certificates';
import { opcua } from './load';

export const APPLICATION_NAME = 'uns-edge';

export interface TrustListEntry extends CertificateInfo {
  status: 'trusted' | 'rejected';
  /** The endpoint URLs that offered this certificate since start (rejected ones). */
  offeredBy: string[];
  file: string;
}

export class ApplicationPki {
  readonly rootFolder: string;
  readonly certificateManager: OPCUACertificateManager;
  readonly certificateFile: string;
  applicationUri = '';
  private readonly offered = new Map<string, Set<string>>();
  private readonly tofuFile: string;

  constructor(rootFolder: string) {
    this.rootFolder = rootFolder;
    mkdirSync(rootFolder, { recursive: true });
    this.certificateManager = new (opcua().OPCUACertificateManager)({ rootFolder, automaticallyAcceptUnknownCertificate: false, keySize: 2048 });
    this.certificateFile = join(rootFolder, 'own', 'certs', 'client_certificate.pem');
    this.tofuFile = join(rootFolder, 'tofu.json');
  }

  get privateKeyFile(): string {
    return this.certificateManager.privateKey;
  }

  /** Create the folders, the key and (first use) the application certificate. */
  async initialize(): Promise<void> {
    await this.certificateManager.initialize();
    if (!existsSync(this.certificateFile)) {
      const host = hostname();
      const applicationUri = `urn:${host}:${APPLICATION_NAME}`;
      await this.certificateManager.createSelfSignedCertificate({
        applicationUri,
        subject: `/CN=${APPLICATION_NAME}@${host}/O=uns-edge`,
        dns: [host, 'localhost'].filter((h, i, all) => all.indexOf(h) === i),
        startDate: new Date(Date.now() - 24 * 3600 * 1000),
        validity: 3650,
        outputFile: this.certificateFile,
      });
    }
    const own = describeCertificate(parseCertificate(readFileSync(this.certificateFile)));
    if (!own.applicationUri) throw new Error(`application certificate ${this.certificateFile} has no application URI in subjectAltName`);
    this.applicationUri = own.applicationUri;
  }

  ownCertificate(): { der: Buffer; info: CertificateInfo } {
    const x509 = parseCertificate(readFileSync(this.certificateFile));
    return { der: x509.raw, info: describeCertificate(x509) };
  }

  /** Remember which endpoint offered a (rejected) certificate, for the trust tab. */
  noteOffered(thumbprint: string, endpointUrl: string): void {
    let urls = this.offered.get(thumbprint);
    if (!urls) this.offered.set(thumbprint, (urls = new Set()));
    urls.add(endpointUrl);
  }

  private read(folder: string, status: TrustListEntry['status']): TrustListEntry[] {
    if (!existsSync(folder)) return [];
    const entries: TrustListEntry[] = [];
    for (const file of readdirSync(folder)) {
      if (!/\.(pem|der|crt|cer)$/i.test(file)) continue;
      try {
        const info = describeCertificate(parseCertificate(readFileSync(join(folder, file))));
        entries.push({ ...info, status, offeredBy: [...(this.offered.get(info.thumbprint) ?? [])], file: join(folder, file) });
      } catch {
        // not a certificate: not listed (node-opcua ignores it too)
      }
    }
    return entries;
  }

  trustList(): TrustListEntry[] {
    return [...this.read(this.certificateManager.trustedFolder, 'trusted'), ...this.read(this.certificateManager.rejectedFolder, 'rejected')];
  }

  private find(thumbprint: string): TrustListEntry | undefined {
    const wanted = thumbprint.replace(/:/g, '').toLowerCase();
    return this.trustList().find((e) => e.thumbprint === wanted);
  }

  /** Move a certificate to trusted/ (node-opcua sees it at the next connection attempt). */
  async trust(thumbprint: string): Promise<TrustListEntry | undefined> {
    const entry = this.find(thumbprint);
    if (!entry) return undefined;
    await this.certificateManager.trustCertificate(parseCertificate(readFileSync(entry.file)).raw);
    if (entry.status === 'rejected' && existsSync(entry.file)) unlinkSync(entry.file);
    return entry;
  }

  /** Move a certificate to rejected/. */
  async reject(thumbprint: string): Promise<TrustListEntry | undefined> {
    const entry = this.find(thumbprint);
    if (!entry) return undefined;
    await this.certificateManager.rejectCertificate(parseCertificate(readFileSync(entry.file)).raw);
    if (entry.status === 'trusted' && existsSync(entry.file)) unlinkSync(entry.file);
    return entry;
  }

  /** Delete a certificate from trusted/ or rejected/ (a rejected one comes back if the server offers it again). */
  async remove(thumbprint: string): Promise<TrustListEntry | undefined> {
    const entry = this.find(thumbprint);
    if (!entry) return undefined;
    if (entry.status === 'trusted') await this.certificateManager.removeTrustedCertificate(entry.thumbprint);
    if (existsSync(entry.file)) unlinkSync(entry.file);
    return entry;
  }

  /**
   * Trust on first use: trust `der` if (and only if) no certificate was ever trusted this way for
   * `endpointUrl`. Returns whether it was trusted.
   */
  async trustOnFirstUse(endpointUrl: string, der: Buffer): Promise<boolean> {
    const seen = existsSync(this.tofuFile) ? (JSON.parse(readFileSync(this.tofuFile, 'utf8')) as Record<string, string>) : {};
    if (seen[endpointUrl] !== undefined) return false;
    await this.certificateManager.trustCertificate(der);
    seen[endpointUrl] = describeCertificate(der).thumbprint;
    writeFileSync(this.tofuFile, JSON.stringify(seen, null, 2));
    return true;
  }

  async dispose(): Promise<void> {
    await this.certificateManager.dispose();
  }
}

/** Tell `notice` about a lock held on `rootFolder` now, before an initialisation waits for it. */
export function noticeHeldLock(rootFolder: string, notice: ((message: string) => void) | undefined): void {
  if (notice === undefined) return;
  const lock = heldPkiLock(rootFolder);
  if (lock !== undefined) notice(lock.message);
}

/** Age at which node-opcua-pki takes over a lock whose holder stopped refreshing it (@ster5/global-mutex's default stale time). */
const PKI_LOCK_STALE_SECONDS = 120;

/**
 * node-opcua-pki's lock on a PKI folder (@ster5/global-mutex: the directory `<root>/mutex.lock`),
 * if one is there now. Its holder refreshes it every minute while alive; a lock left by a process
 * killed while holding it is taken over only once it is 2 minutes old, and until then every start
 * that initialises this folder waits without a word. This says so, for a log line before waiting.
 */
export function heldPkiLock(rootFolder: string, now = Date.now()): { path: string; ageSeconds: number; message: string } | undefined {
  const path = join(rootFolder, 'mutex.lock');
  let modified: number;
  try {
    modified = statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
  const ageSeconds = Math.max(0, Math.round((now - modified) / 1000));
  const waitSeconds = Math.max(0, PKI_LOCK_STALE_SECONDS - ageSeconds);
  return {
    path, ageSeconds,
    message: `the PKI folder ${rootFolder} is locked (${path}, refreshed ${ageSeconds} s ago): waiting for the process that holds it, ` +
      `at most ~${waitSeconds} s more if that process was killed; remove the lock to go on at once if nothing else uses this folder`,
  };
}

const pkis = new Map<string, Promise<ApplicationPki>>();

/**
 * The one ApplicationPki of a folder in this process (every endpoint of a Node-RED shares it).
 * `notice` hears, once when the folder is first initialised, that a lock makes it wait (heldPkiLock).
 */
export function applicationPki(rootFolder: string, notice?: (message: string) => void): Promise<ApplicationPki> {
  let pki = pkis.get(rootFolder);
  if (!pki) {
    noticeHeldLock(rootFolder, notice);
    const created = new ApplicationPki(rootFolder);
    pki = created.initialize().then(() => created);
    pki.catch(() => pkis.delete(rootFolder));
    pkis.set(rootFolder, pki);
  }
  return pki;
}
