/**
 * Flows of bench/opcua-subscribe.ts: the same N monitored items through node-red-contrib-opcua and
 * through uns-edge's uns-opcua-subscribe, and what each delivers, reduced to (notifications, the tick
 * each carried) so both are counted the same way.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_USER, type BenchSecurityMode, type OpcUaBenchServer } from './opcua-bench-server';
import { REPO_ROOT } from './node-red';

export const TAB = 'bench-opcua';
export const tab = (): object => ({ id: TAB, type: 'tab', label: 'opcua bench' });

/** One delivered message, reduced: how many notifications it carried and their values (ticks). */
export interface Delivered {
  notifications: number;
  values: number[];
}

export interface Side {
  id: 'contrib' | 'uns';
  label: string;
  /** The node whose send() is counted. */
  outputId: string;
  flow(server: OpcUaBenchServer, security: BenchSecurityMode): object[];
  /** Runs after the flow started (e.g. the message that starts a subscription). */
  afterDeploy(receive: (nodeId: string, msg: object) => void, server: OpcUaBenchServer): void;
  /** Runs before the flow is deployed, with the runtime's user dir (e.g. trusting the server). */
  prepare(userDir: string, server: OpcUaBenchServer): void;
  reduce(msg: unknown): Delivered;
}

/**
 * node-red-contrib-opcua 0.2.354 at its best for many items: one OpcUa-Client with action
 * "subscribe" given ONE message with topic "multiple" and the node list in the payload, which it
 * creates as one monitored-item group (one CreateMonitoredItems call; queue size 1, discard oldest).
 * Its time setting is both the publishing and the sampling interval; time 0 gives sampling
 * interval 0 (every change reported, OPC 10000-4 §5.12.1.2) with its fallback publishing interval of
 * 100 ms (opcua-basics.js getSubscriptionParameters: `timeMilliseconds || 100`), which is the
 * setting that can lose nothing. It sends one message per notification: topic = NodeId,
 * payload = the DataValue.
 */
export const CONTRIB_SIDE: Side = {
  id: 'contrib',
  label: 'node-red-contrib-opcua OpcUa-Client, action subscribe, topic "multiple" (one monitored-item group)',
  outputId: 'contrib-client',
  flow: (server, security) => [tab(), {
    id: 'contrib-endpoint', type: 'OpcUa-Endpoint', name: 'bench', endpoint: server.endpointUrl,
    secpol: security === 'None' ? 'None' : 'Basic256Sha256', secmode: security, none: false, login: true, usercert: false,
    usercertificate: '', userprivatekey: '', credentials: { user: BENCH_USER.username, password: BENCH_USER.password },
  }, {
    id: 'contrib-client', type: 'OpcUa-Client', z: TAB, name: 'bench', endpoint: 'contrib-endpoint', action: 'subscribe',
    deadbandtype: 'a', deadbandvalue: 0, time: 0, timeUnit: 'ms', certificate: 'n', localfile: '', localkeyfile: '',
    securitymode: security, securitypolicy: security === 'None' ? 'None' : 'Basic256Sha256', useTransport: false,
    maxChunkCount: 1, maxMessageSize: 8192, receiveBufferSize: 8192, sendBufferSize: 8192, setstatusandtime: false,
    keepsessionalive: true, applicationName: '', applicationUri: '', x: 200, y: 100, wires: [[], [], []],
  }],
  prepare: () => undefined,
  afterDeploy(receive, server) {
    const payload = Array.from({ length: server.items }, (_, i) => ({ nodeId: server.nodeId(i) }));
    receive('contrib-client', { topic: 'multiple', payload });
  },
  reduce(msg) {
    // Outputs [data, status, …]; the subscriptionId message has no DataValue.
    const data = (msg as Array<{ payload?: { value?: { value?: unknown } } } | null>)[0];
    const value = data?.payload?.value?.value;
    return typeof value === 'number' ? { notifications: 1, values: [value] } : { notifications: 0, values: [] };
  },
};

/** Whether this checkout has uns-edge's OPC UA nodes built (dist/nodes/opcua, registered in package.json). */
export function unsOpcUaNodesBuilt(): boolean {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { 'node-red'?: { nodes?: Record<string, string> } };
  const file = manifest['node-red']?.nodes?.opcua;
  return file !== undefined && existsSync(join(REPO_ROOT, file));
}

/**
 * uns-edge: uns-opcua-endpoint + uns-opcua-subscribe with the N items as metrics, as its editor sets
 * them: sampling interval 0, publishing interval 100 ms, queue size 10 and discard oldest (the editor's
 * defaults): one tag batch per Publish response, one metric per item.
 * The server certificate is put into the gateway's trust list first (our client never trusts on
 * its own). Property names follow nodes/opcua/opcua.html (docs/opcua.md § Settings).
 */
export const UNS_SIDE: Side = {
  id: 'uns',
  label: 'uns-edge uns-opcua-subscribe (tag batch per Publish response)',
  outputId: 'uns-subscribe',
  flow: (server, security) => [tab(), {
    id: 'uns-endpoint', type: 'uns-opcua-endpoint', name: 'bench', endpointUrl: server.endpointUrl, securityMode: security,
    securityPolicy: security === 'None' ? 'None' : 'Basic256Sha256', allowDeprecated: false, userIdentity: 'username',
    trustOnFirstUse: false, ignoreHostname: false, keepAliveInterval: 2000, requestTimeout: 5000, maxBackoff: 10000,
    credentials: { user: BENCH_USER.username, password: BENCH_USER.password },
  }, {
    id: 'uns-subscribe', type: 'uns-opcua-subscribe', z: TAB, name: 'bench', endpoint: 'uns-endpoint',
    topic: 'bench/site/area/line/cell/opcua', publishingInterval: 100, samplingInterval: 0, queueSize: 10, discardOldest: true, staleAfter: 3,
    metrics: Array.from({ length: server.items }, (_, i) => ({ name: `v${i}`, nodeId: server.nodeId(i), samplingInterval: 0 })),
    x: 200, y: 100, wires: [[]],
  }],
  prepare(userDir, server) {
    const trusted = join(userDir, 'uns-edge', 'opcua', 'pki', 'trusted', 'certs');
    mkdirSync(trusted, { recursive: true });
    copyFileSync(server.certificateFile, join(trusted, 'opcua-bench-server.pem'));
  },
  afterDeploy: () => undefined,
  reduce(msg) {
    const payload = (msg as { payload?: Record<string, unknown> } | undefined)?.payload ?? {};
    const values = Object.values(payload).filter((v): v is number => typeof v === 'number');
    return { notifications: values.length, values };
  },
};
