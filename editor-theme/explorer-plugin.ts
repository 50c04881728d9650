/**
 * The UNS explorer in Node-RED (issue 14 item 3, docs/explorer.md), a plugin of the uns-edge package
 * (package.json node-red.plugins). Runtime side: one read-only UnsExplorer (lib/explorer/) per
 * deployed uns-broker that the editor asks about, with its own MQTT connection built from that
 * broker's settings (nodes/common/broker-settings.ts) and its own client id; the editor side (the
 * "UNS" sidebar) is explorer-plugin.html beside it.
 *
 * Admin endpoints, all behind the permission `uns-explorer.read` (granted by the `read` and `*`
 * scopes of adminAuth):
 * - GET <admin>/uns-edge/explorer/brokers: the deployed uns-broker nodes, and each explorer's state.
 * - GET <admin>/uns-edge/explorer/brokers/:id/level?path=&offset=&limit=&filter=: one level of the tree.
 * - GET <admin>/uns-edge/explorer/brokers/:id/search?q=&limit=: topics whose path contains q.
 * An explorer starts with the first request for its broker, closes when no request came for
 * IDLE_MS, and is closed when a deploy changes or removes its broker.
 */
import { randomBytes } from 'node:crypto';
import { UnsExplorer } from '../lib/explorer/explorer';
import type { BirthLookup } from '../lib/explorer/sparkplug';
import type { TreeLimits } from '../lib/explorer/tree';
import { mqttOptions, type BrokerConfig, type BrokerCredentials } from '../nodes/common/broker-settings';

type Handler = (req: ExplorerRequest, res: ExplorerResponse) => void;
interface ExplorerRequest { params: Record<string, string>; query: Record<string, unknown> }
interface ExplorerResponse {
  status(code: number): ExplorerResponse;
  json(body: unknown): void;
}
interface FlowNodeConfig extends Partial<BrokerConfig> { id: string; type: string; name?: string; d?: boolean }
/** A deployed node: uns-sparkplug-host nodes offer `birthMetric` (best effort: absent on older versions). */
interface DeployedNode { credentials?: BrokerCredentials; birthMetric?: BirthLookup }
interface ExplorerRuntime {
  plugins: { registerPlugin(id: string, definition: Record<string, unknown>): void };
  settings: { unsEdgeExplorer?: Partial<TreeLimits> & { idleMinutes?: number } };
  log: { info(message: string): void; warn(message: string): void };
  events: { on(event: string, listener: () => void): void };
  nodes: {
    eachNode(callback: (config: FlowNodeConfig) => void): void;
    getNode(id: string): DeployedNode | null;
    getCredentials(id: string): BrokerCredentials | undefined;
  };
  util: { evaluateNodeProperty(value: string, type: 'env', node: unknown, msg: null): unknown };
  httpAdmin?: { get(path: string, ...handlers: Handler[]): void };
  auth?: { needsPermission(permission: string): Handler };
}

const BASE = '/uns-edge/explorer/brokers';
const PERMISSION = 'uns-explorer.read';
const DEFAULT_IDLE_MS = 5 * 60 * 1000;
const BROKER_FIELDS: Array<keyof BrokerConfig> = ['host', 'port', 'protocolVersion', 'clientId', 'keepalive', 'usetls', 'tlsCa', 'tlsCert', 'tlsKey', 'tlsServername', 'tlsRejectUnauthorized', 'reconnectMin', 'reconnectMax', 'servers', 'serverOrder'];

interface Running {
  explorer: UnsExplorer;
  /** The resolved broker settings it was built from: a deploy that changes them replaces it. */
  key: string;
  lastUsed: number;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function integer(value: unknown): number | undefined {
  const parsed = Number(text(value));
  return text(value) !== undefined && text(value) !== '' && Number.isFinite(parsed) ? parsed : undefined;
}

export = function registerExplorer(RED: ExplorerRuntime): void {
  RED.plugins.registerPlugin('uns-edge-explorer', { type: 'uns-edge-explorer' });
  const app = RED.httpAdmin;
  if (!app || !RED.auth) return; // headless: no editor, no explorer

  const { idleMinutes, ...limits } = RED.settings.unsEdgeExplorer ?? {};
  const idleMs = typeof idleMinutes === 'number' && idleMinutes > 0 ? idleMinutes * 60000 : DEFAULT_IDLE_MS;
  const running = new Map<string, Running>();

  /** The broker fields of a deployed node as the running node sees them (${VAR} resolved). */
  function resolvedBrokerConfig(config: FlowNodeConfig, node: DeployedNode): BrokerConfig {
    const resolved = { ...config } as unknown as Record<string, unknown>;
    for (const field of BROKER_FIELDS) {
      const value = resolved[field];
      if (typeof value === 'string' && /\$\{[^}]+\}/.test(value)) resolved[field] = RED.util.evaluateNodeProperty(value, 'env', node, null);
    }
    return resolved as unknown as BrokerConfig;
  }

  /** The deployed (running), enabled nodes of a type, with their resolved broker fields. */
  function deployed(type: string): Array<{ id: string; name: string; node: DeployedNode; config: BrokerConfig }> {
    const found: Array<{ id: string; name: string; node: DeployedNode; config: BrokerConfig }> = [];
    RED.nodes.eachNode((config) => {
      if (config.type !== type || config.d === true) return;
      const node = RED.nodes.getNode(config.id);
      if (node === null) return;
      const resolved = resolvedBrokerConfig(config, node);
      found.push({ id: config.id, name: config.name || `${String(resolved.host)}:${String(resolved.port)}`, node, config: resolved });
    });
    return found;
  }

  function deployedBrokers(): Array<{ id: string; name: string; config: BrokerConfig; credentials: BrokerCredentials }> {
    return deployed('uns-broker').map(({ id, name, node, config }) => ({ id, name, config, credentials: RED.nodes.getCredentials(id) ?? node.credentials ?? {} }));
  }

  const endpointOf = (config: BrokerConfig): string => `${String(config.host).trim()}:${String(config.port).trim()}`;

  /**
   * The birth cache of a deployed uns-sparkplug-host on the same broker (host and port as
   * configured): one on another broker knows other edge nodes, which may have the same ids.
   */
  function hostBirthLookup(broker: BrokerConfig): BirthLookup | undefined {
    const host = deployed('uns-sparkplug-host').find(({ node, config }) => typeof node.birthMetric === 'function' && endpointOf(config) === endpointOf(broker));
    return host?.node.birthMetric?.bind(host.node);
  }

  /** hostBirthLookup() found once per broker and start of the flows: explorers ask it for every DATA alias. */
  const hostLookups = new Map<string, { lookup: BirthLookup | undefined }>();
  const currentHostLookup = (broker: BrokerConfig) => (): BirthLookup | undefined => {
    const key = endpointOf(broker);
    let entry = hostLookups.get(key);
    if (entry === undefined) hostLookups.set(key, entry = { lookup: hostBirthLookup(broker) });
    return entry.lookup;
  };

  function settingsKey(broker: { config: BrokerConfig; credentials: BrokerCredentials }): string {
    return JSON.stringify([BROKER_FIELDS.map((field) => broker.config[field]), broker.credentials.user ?? '', broker.credentials.password ?? '']);
  }

  function close(id: string): void {
    const entry = running.get(id);
    if (entry === undefined) return;
    running.delete(id);
    entry.explorer.close().catch((error: Error) => RED.log.warn(`[uns explorer] closing ${id}: ${error.message}`));
  }

  /** The explorer of a deployed broker, started on first use; undefined when no such broker is deployed. */
  function explorerOf(id: string): UnsExplorer | undefined {
    const entry = running.get(id);
    if (entry !== undefined) {
      entry.lastUsed = Date.now();
      return entry.explorer;
    }
    const broker = deployedBrokers().find((b) => b.id === id);
    if (broker === undefined) return undefined;
    const options = mqttOptions(broker.config, broker.credentials, '');
    // Its own client id, never the broker node's: a second connection with the same id would take over its session.
    const explorer = new UnsExplorer({ mqtt: { ...options, clientId: `uns-edge-explorer-${randomBytes(4).toString('hex')}` }, limits, birthLookup: currentHostLookup(broker.config) });
    explorer.start();
    running.set(id, { explorer, key: settingsKey(broker), lastUsed: Date.now() });
    RED.log.info(`[uns explorer] browsing ${explorer.status().broker} (uns-broker ${broker.name})`);
    return explorer;
  }

  const idleTimer = setInterval(() => {
    for (const [id, entry] of running) if (Date.now() - entry.lastUsed > idleMs) close(id);
  }, Math.min(idleMs, 60000));
  idleTimer.unref();

  RED.events.on('flows:started', () => {
    hostLookups.clear();
    const brokers = new Map(deployedBrokers().map((broker) => [broker.id, settingsKey(broker)]));
    for (const [id, entry] of running) if (brokers.get(id) !== entry.key) close(id);
  });

  const guard = RED.auth.needsPermission(PERMISSION);
  const handle = (answer: (req: ExplorerRequest, explorer: UnsExplorer) => unknown): Handler => (req, res) => {
    let explorer: UnsExplorer | undefined;
    try {
      explorer = explorerOf(req.params.id ?? '');
    } catch (error) {
      res.status(400).json({ code: 'invalid_broker_settings', message: (error as Error).message });
      return;
    }
    if (explorer === undefined) {
      res.status(404).json({ code: 'not_found', message: `no deployed uns-broker ${req.params.id}` });
      return;
    }
    res.json({ now: Date.now(), status: explorer.status(), ...answer(req, explorer) as object });
  };

  app.get(BASE, guard, (_req, res) => {
    res.json({ brokers: deployedBrokers().map(({ id, name, config }) => ({ id, name, url: `${config.usetls ? 'mqtts' : 'mqtt'}://${config.host}:${config.port}`, exploring: running.has(id) })) });
  });
  app.get(`${BASE}/:id/level`, guard, handle((req, explorer) => {
    const path = text(req.query.path) ?? '';
    return { level: explorer.tree.level(path, { offset: integer(req.query.offset), limit: integer(req.query.limit), filter: text(req.query.filter) }) ?? null };
  }));
  app.get(`${BASE}/:id/search`, guard, handle((req, explorer) => ({ search: explorer.tree.search(text(req.query.q) ?? '', integer(req.query.limit)) })));
};
