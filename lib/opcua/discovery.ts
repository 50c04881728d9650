/**
 * GetEndpoints (OPC 10000-4 §5.4.4) for the endpoint dialog's Discover button and for naming the
 * certificate of a server we refused: a short-lived client on a security-None discovery channel
 * (what GetEndpoints is for, Part 4 §5.4.4 "can be called without a secure channel"), closed again.
 */
import { CertificateInfo, describeCertificate, parseCertificate } from './certificates';
import { opcua } from './load';
import type { ApplicationPki } from './pki';

export interface DiscoveredEndpoint {
  endpointUrl: string;
  securityMode: string;
  /** Short policy name, e.g. "Basic256Sha256" (the URI's fragment). */
  securityPolicy: string;
  securityLevel: number;
  /** "Anonymous", "UserName", "Certificate", "IssuedToken". */
  userTokenTypes: string[];
  serverApplicationUri?: string;
  serverCertificate?: CertificateInfo;
  /** DER, base64: the trust tab can offer it before any connect. */
  serverCertificateDer?: string;
}

export async function discoverEndpoints(endpointUrl: string, pki: ApplicationPki, timeoutMs = 5000): Promise<DiscoveredEndpoint[]> {
  const o = opcua();
  const client = o.OPCUAClient.create({
    applicationName: 'uns-edge',
    applicationUri: pki.applicationUri,
    clientCertificateManager: pki.certificateManager,
    certificateFile: pki.certificateFile,
    privateKeyFile: pki.privateKeyFile,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    defaultTransactionTimeout: timeoutMs,
    transportTimeout: timeoutMs,
  });
  try {
    await client.connect(endpointUrl);
    const endpoints = await client.getEndpoints();
    return endpoints.map((e) => {
      let certificate: CertificateInfo | undefined;
      let der: Buffer | undefined;
      try {
        if (e.serverCertificate && e.serverCertificate.length) {
          der = parseCertificate(e.serverCertificate).raw;
          certificate = describeCertificate(der);
        }
      } catch {
        certificate = undefined;
      }
      return {
        endpointUrl: e.endpointUrl ?? endpointUrl,
        securityMode: o.MessageSecurityMode[e.securityMode],
        securityPolicy: (e.securityPolicyUri ?? '').split('#').pop() ?? '',
        securityLevel: e.securityLevel,
        userTokenTypes: (e.userIdentityTokens ?? []).map((t) => o.UserTokenType[t.tokenType]),
        ...(e.server?.applicationUri ? { serverApplicationUri: e.server.applicationUri } : {}),
        ...(certificate ? { serverCertificate: certificate, serverCertificateDer: der!.toString('base64') } : {}),
      };
    });
  } finally {
    await client.disconnect().catch(() => undefined);
  }
}
