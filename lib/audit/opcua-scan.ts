/**
 * OPC UA part of the scan, per listed endpoint URL (opc.tcp://host:port):
 *
 * - GetEndpoints (OPC 10000-4 §5.4.4) through lib/opcua/discovery.ts: security modes and policies
 *   offered, user token types, the server certificate (subject, issuer, validity);
 * - FindServers (§5.4.2): the application descriptions (application and product URI, name, type);
 * - software and build info from the server object (Server_ServerStatus_BuildInfo, OPC 10000-5
 *   §6.3.1): read only when the server itself offers an anonymous session over security None — the
 *   scanner never logs in with credentials and never asks to be trusted. Otherwise the product URI
 *   and name of the application description stand in, and the inventory says why.
 *
 * Discovery runs on an unsecured channel, which Part 4 allows for exactly these services. Each step
 * waits for the pacer; a server that does not answer, answers garbage or resets the connection ends
 * up as `reachable: false` with the reason.
 */
import { describeCertificate } from '../opcua/certificates';
import { discoverEndpoints } from '../opcua/discovery';
import { opcua } from '../opcua/load';
import type { ApplicationPki } from '../opcua/pki';
import type { CertificateSummary, OpcUaServer } from './inventory';
import type { ProbePacer } from './pacer';
import type { ScanTarget } from './targets';

export interface OpcUaScanOptions {
  pki: () => Promise<ApplicationPki>;
  timeoutMs: number;
  pacer: ProbePacer;
  signal?: AbortSignal;
}

export function certificateSummary(info: { subject: string; issuer: string; validFrom: string; validTo: string; selfSigned: boolean; thumbprint: string }): CertificateSummary {
  const { subject, issuer, validFrom, validTo, selfSigned, thumbprint } = info;
  return { subject, issuer, validFrom, validTo, selfSigned, thumbprint };
}

/** `promise`, or a rejection after `ms` (node-opcua's own timeouts do not cover every stall). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function urlOf(target: ScanTarget): string {
  return `opc.tcp://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
}

export async function scanOpcUaServer(target: ScanTarget, options: OpcUaScanOptions): Promise<OpcUaServer> {
  const url = urlOf(target);
  const result: OpcUaServer = { url, host: target.host, port: target.port, reachable: false, applications: [], endpoints: [] };
  const limit = options.timeoutMs * 3;
  try {
    const pki = await options.pki();
    await options.pacer.next(options.signal);
    const endpoints = await within(discoverEndpoints(url, pki, options.timeoutMs), limit, `GetEndpoints ${url}`);
    result.reachable = true;
    result.endpoints = endpoints.map((e) => ({
      endpointUrl: e.endpointUrl,
      securityMode: e.securityMode,
      securityPolicy: e.securityPolicy,
      userTokenTypes: e.userTokenTypes,
      ...(e.serverCertificateDer ? { certificate: certificateSummary(describeCertificate(Buffer.from(e.serverCertificateDer, 'base64'))) } : {}),
    }));
    await options.pacer.next(options.signal);
    const discovery = await within(findServersAndBuildInfo(url, pki, options.timeoutMs, result.endpoints.some(isAnonymousNone)), limit, `FindServers ${url}`);
    result.applications = discovery.applications;
    if (discovery.buildInfo) result.buildInfo = { source: 'server-object', ...discovery.buildInfo };
    else {
      const app = discovery.applications[0];
      if (app) result.buildInfo = { source: 'application-description', productUri: app.productUri, productName: app.applicationName };
      result.buildInfoProblem = discovery.buildInfoProblem;
    }
  } catch (error) {
    if (options.signal?.aborted) throw error;
    result.problem = (error as Error).message;
  }
  return result;
}

function isAnonymousNone(e: { securityMode: string; userTokenTypes: string[] }): boolean {
  return e.securityMode === 'None' && e.userTokenTypes.includes('Anonymous');
}

interface Discovery {
  applications: OpcUaServer['applications'];
  buildInfo?: Omit<NonNullable<OpcUaServer['buildInfo']>, 'source'>;
  buildInfoProblem?: string;
}

/** FindServers on a None channel; with an anonymous None endpoint also a session that reads BuildInfo. */
async function findServersAndBuildInfo(url: string, pki: ApplicationPki, timeoutMs: number, anonymousNone: boolean): Promise<Discovery> {
  const o = opcua();
  const client = o.OPCUAClient.create({
    applicationName: 'uns-edge asset scan',
    applicationUri: pki.applicationUri,
    clientCertificateManager: pki.certificateManager,
    certificateFile: pki.certificateFile,
    privateKeyFile: pki.privateKeyFile,
    securityMode: o.MessageSecurityMode.None,
    securityPolicy: o.SecurityPolicy.None,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    defaultTransactionTimeout: timeoutMs,
    transportTimeout: timeoutMs,
  });
  try {
    await client.connect(url);
    const servers = await client.findServers();
    const discovery: Discovery = {
      applications: servers.map((s) => ({
        applicationUri: s.applicationUri ?? '',
        productUri: s.productUri ?? '',
        applicationName: s.applicationName?.text ?? '',
        applicationType: o.ApplicationType[s.applicationType] ?? String(s.applicationType),
        discoveryUrls: (s.discoveryUrls ?? []).filter((u): u is string => typeof u === 'string'),
      })),
    };
    if (!anonymousNone) {
      discovery.buildInfoProblem = 'not read: the server offers no anonymous session over security None, and the scanner does not log in';
      return discovery;
    }
    const session = await client.createSession();
    try {
      const ids = o.VariableIds;
      const fields = {
        productName: ids.Server_ServerStatus_BuildInfo_ProductName,
        productUri: ids.Server_ServerStatus_BuildInfo_ProductUri,
        manufacturerName: ids.Server_ServerStatus_BuildInfo_ManufacturerName,
        softwareVersion: ids.Server_ServerStatus_BuildInfo_SoftwareVersion,
        buildNumber: ids.Server_ServerStatus_BuildInfo_BuildNumber,
        buildDate: ids.Server_ServerStatus_BuildInfo_BuildDate,
      };
      const values = await session.read(Object.values(fields).map((id) => ({ nodeId: o.makeNodeId(id, 0), attributeId: o.AttributeIds.Value })));
      const buildInfo: Record<string, string> = {};
      Object.keys(fields).forEach((name, i) => {
        const value: unknown = values[i]?.value?.value;
        if (value instanceof Date) buildInfo[name] = Number.isNaN(value.getTime()) ? '' : value.toISOString();
        else if (value !== null && value !== undefined) buildInfo[name] = String(value).slice(0, 256);
      });
      discovery.buildInfo = buildInfo;
    } finally {
      await session.close().catch(() => undefined);
    }
    return discovery;
  } finally {
    await client.disconnect().catch(() => undefined);
  }
}
