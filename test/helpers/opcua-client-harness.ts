/**
 * Test harness for lib/opcua/connection.ts: a connection with its own PKI folder, and waits for its
 * states; certificates made with node-opcua-pki for the certificate cases.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opcua from 'node-opcua';
import { describeCertificate, toDer } from '../../lib/opcua/certificates';
import { ConnectionFailure, ConnectionState, OpcUaConnection } from '../../lib/opcua/connection';
import { applicationPki, ApplicationPki } from '../../lib/opcua/pki';
import { EndpointSettings, settingsFrom } from '../../lib/opcua/settings';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function newConnection(config: Record<string, unknown>, credentials: Record<string, unknown> = {}, pkiRoot = join(tempDir('uns-opcua-client-'), 'pki')):
  { connection: OpcUaConnection; pki: () => Promise<ApplicationPki>; settings: EndpointSettings } {
  const settings = settingsFrom({ maxBackoff: 1000, ...config }, credentials);
  const pki = () => applicationPki(pkiRoot);
  return { connection: new OpcUaConnection({ settings, pki }), pki, settings };
}

/** Resolve at the first state that satisfies `pred` (the current one included). */
export function waitForState(connection: OpcUaConnection, pred: (s: ConnectionState, f: ConnectionFailure | undefined) => boolean, ms = 20_000): Promise<ConnectionFailure | undefined> {
  if (pred(connection.state, connection.failure)) return Promise.resolve(connection.failure);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off('state', on);
      reject(new Error(`state not reached; last ${connection.state}: ${connection.failure?.explanation}`));
    }, ms);
    const on = (s: ConnectionState, f: ConnectionFailure | undefined) => {
      if (!pred(s, f)) return;
      clearTimeout(timer);
      connection.off('state', on);
      resolve(f);
    };
    connection.on('state', on);
  });
}

export const settled = (s: ConnectionState) => s === 'connected' || s === 'refused';

/** Trust our application certificate on the server and the server's on our side. */
export async function trustBothWays(pki: ApplicationPki, server: { serverCertificateManager: opcua.OPCUACertificateManager; server: opcua.OPCUAServer }): Promise<void> {
  await server.serverCertificateManager.trustCertificate(pki.ownCertificate().der);
  await pki.certificateManager.trustCertificate(toDer(readFileSync(server.server.certificateFile)));
}

export interface MadeCertificate {
  certificateFile: string;
  privateKeyFile: string;
  der: Buffer;
  pem: string;
  keyPem: string;
  thumbprint: string;
  validFrom: string;
  validTo: string;
}

/** A self-signed certificate (for a server or an X.509 user) with the given URI, hosts and validity. */
export async function makeCertificate(options: { applicationUri: string; dns?: string[]; startDate?: Date; validityDays?: number; subject?: string }): Promise<MadeCertificate> {
  const root = join(tempDir('uns-opcua-cert-'), 'pki');
  const cm = new opcua.OPCUACertificateManager({ rootFolder: root, automaticallyAcceptUnknownCertificate: false });
  await cm.initialize();
  const certificateFile = join(root, 'own', 'certs', 'made.pem');
  await cm.createSelfSignedCertificate({
    applicationUri: options.applicationUri,
    subject: options.subject ?? '/CN=made-for-test',
    dns: options.dns ?? ['localhost'],
    startDate: options.startDate ?? new Date(Date.now() - 3600_000),
    validity: options.validityDays ?? 365,
    outputFile: certificateFile,
  });
  const pem = readFileSync(certificateFile, 'utf8');
  await cm.dispose();
  const der = toDer(readFileSync(certificateFile));
  const { thumbprint, validFrom, validTo } = describeCertificate(der);
  return { certificateFile, privateKeyFile: cm.privateKey, der, pem, keyPem: readFileSync(cm.privateKey, 'utf8'), thumbprint, validFrom, validTo };
}
