/**
 * Node-RED adapter of the OPC UA client node set: `uns-opcua-endpoint` (config node owning one
 * reference-counted connection and session, lib/opcua/connection.ts), `uns-opcua-subscribe`,
 * `uns-opcua-read`, `uns-opcua-write`, `uns-opcua-browse`, `uns-opcua-method`, and the admin
 * endpoints of the editor (Discover, trust list, our certificate, address-space browser).
 *
 * node-opcua is loaded on first use (lib/opcua/load.ts): this file and the lib modules it imports
 * use node-opcua for types only, so a Node-RED whose flows hold no OPC UA node does not load it.
 * Config property names: docs/opcua.md § Settings.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { ConnectionFailure, ConnectionState, OpcUaConnection, SessionClosedReport } from '../../lib/opcua/connection';
import { discoverEndpoints } from '../../lib/opcua/discovery';
import type { NodeFacts } from '../../lib/opcua/nodes';
import { browseTree, callMethod, MetricNode, readMetrics, searchTree, writeCommand } from '../../lib/opcua/operations';
import { applicationPki, heldPkiLock } from '../../lib/opcua/pki';
import { describeEndpoint, securityWarnings, settingsFrom, validateSettings } from '../../lib/opcua/settings';
import { DEFAULT_QUEUE_SIZE, MonitoredMetricDefinition, monitoredMetricProblems, OpcUaSubscriber, queueSizeProblem } from '../../lib/opcua/subscriber';
import { senderOf } from '../../lib/principal';
import { forgetConnection, reportConnection } from '../../lib/runtime/connection-registry';
import { gauge } from '../../lib/runtime/metrics';

type EndpointDef = NodeDef & Record<string, unknown>;

interface UserNodeDef extends NodeDef {
  endpoint: string;
}

/** What a node that uses an endpoint is told. */
interface EndpointUser {
  onEndpointState(state: ConnectionState, failure: ConnectionFailure | undefined): void;
}

interface EndpointNode extends Node {
  connection: OpcUaConnection | undefined;
  register(user: EndpointUser): OpcUaConnection;
  deregister(user: EndpointUser): Promise<void>;
  /** The live connection for admin browse (only while some node uses the endpoint). */
}

const liveEndpoints = new Set<EndpointNode>();
/** Certificate expiry per endpoint, for /metrics (issue 9: expiry warnings in the status, the log and /metrics). */
const expiryDays = new Map<string, { endpoint: string; whose: string; days: number }>();

const STATE_VALUE: Record<ConnectionState, number> = { idle: 0, connecting: 1, connected: 2, reconnecting: 3, backoff: 4, refused: 5, closed: 6 };

function registerMetrics(): void {
  gauge({
    name: 'uns_edge_opcua_connection_state',
    help: 'OPC UA endpoint state: 0 idle, 1 connecting, 2 connected, 3 reconnecting, 4 backoff, 5 refused (certificate/identity: needs a person), 6 closed',
    labelNames: ['endpoint'],
    collect() {
      this.reset();
      for (const e of liveEndpoints) if (e.connection) this.set({ endpoint: e.name || e.connection.settings.endpointUrl }, STATE_VALUE[e.connection.state]);
    },
  });
  gauge({
    name: 'uns_edge_opcua_certificate_expiry_days',
    help: 'Days until a certificate in use expires (whose: server or our application); warned 30 days ahead',
    labelNames: ['endpoint', 'whose'],
    collect() {
      this.reset();
      for (const e of expiryDays.values()) this.set({ endpoint: e.endpoint, whose: e.whose }, e.days);
    },
  });
}

const MAX_DISCOVERIES = 2;
const BROWSE_MAX_NODES = 2000;

function shortThumbprint(t: string | undefined): string {
  return t ? `${t.slice(0, 8)}…` : '';
}

function parseJsonList<T>(value: unknown): T[] {
  if (Array.isArray(value)) return value as T[];
  if (typeof value === 'string' && value.trim()) return JSON.parse(value) as T[];
  return [];
}

function positive(value: unknown, fallback: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : fallback;
}

export = function (RED: NodeAPI): void {
  registerMetrics();
  const pkiFolder = () => join((RED.settings as { userDir?: string }).userDir ?? join(homedir(), '.node-red'), 'uns-edge', 'opcua', 'pki');
  /** Set once this runtime's PKI is initialised: only its first initialisation can wait for a lock. */
  let pkiReady = false;
  const pki = () => applicationPki(pkiFolder(), (message) => RED.log.warn(`[uns-opcua-endpoint] ${message}`)).then((ready) => {
    pkiReady = true;
    return ready;
  });

  function EndpointNodeCtor(this: EndpointNode, config: EndpointDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    // Node-RED substitutes a property only when it is one ${VAR} as a whole: the ${VAR}s inside the URL
    // (opc.tcp://${UNS_EDGE_OPCUA_HOST}:${UNS_EDGE_OPCUA_PORT}, flows/opcua-drive.json) are resolved here, tab variables first.
    const endpointUrl = String(config.endpointUrl ?? '').replace(/\$\{(\w+)\}/g, (text, name: string) => String(RED.util.evaluateNodeProperty(name, 'env', node, {}) ?? text));
    const settings = settingsFrom({ ...config, endpointUrl }, (node as unknown as { credentials?: Record<string, unknown> }).credentials ?? {});
    const problems = validateSettings(settings);
    if (problems.length) node.error(RED._('opcua.errors.invalid-endpoint', { detail: problems.join('; ') }));
    for (const w of securityWarnings(settings)) node.warn(RED._('opcua.log.security-warning', { detail: w }));
    const users = new Set<EndpointUser>();
    node.connection = undefined;
    liveEndpoints.add(node);
    const label = node.name || describeEndpoint(settings);

    node.register = (user) => {
      users.add(user);
      if (!node.connection) {
        const connection = new OpcUaConnection({ settings, pki });
        connection.on('state', (state: ConnectionState, failure: ConnectionFailure | undefined) => {
          reportConnection({ id: node.id, type: 'uns-opcua-endpoint', name: label, state, connected: state === 'connected', detail: failure?.explanation });
          for (const u of users) u.onEndpointState(state, failure);
        });
        // One log line per outage and one on recovery (peer #532: floods of BadConnectionClosed).
        connection.on('outage', (reason: string) => node.warn(RED._('opcua.log.outage', { endpoint: settings.endpointUrl, reason })));
        connection.on('restored', (downMs: number) => node.log(RED._('opcua.log.restored', { endpoint: settings.endpointUrl, seconds: (downMs / 1000).toFixed(1) })));
        // One line per session the server closed (node-opcua rebuilt it with its subscriptions: no outage).
        connection.on('session-closed', (report: SessionClosedReport) => node.warn(RED._('opcua.log.session-closed', { endpoint: settings.endpointUrl, reason: report.reason })));
        connection.on('warning', (text: string) => node.warn(text));
        connection.on('expiry', (e: { whose: string; days: number }) => expiryDays.set(`${node.id}/${e.whose}`, { endpoint: label, whose: e.whose, days: e.days }));
        node.connection = connection;
        if (!problems.length) connection.start();
      }
      // Invalid settings: the connection never starts and every user shows why.
      if (problems.length) user.onEndpointState('refused', { kind: 'other', side: 'configuration', message: problems.join('; '), explanation: problems.join('; ') });
      else user.onEndpointState(node.connection.state, node.connection.failure);
      return node.connection;
    };

    const closeConnection = async () => {
      const connection = node.connection;
      node.connection = undefined;
      forgetConnection(node.id);
      for (const key of [...expiryDays.keys()]) if (key.startsWith(`${node.id}/`)) expiryDays.delete(key);
      if (!connection) return;
      connection.removeAllListeners('state');
      await connection.close();
      connection.removeAllListeners();
    };

    node.deregister = async (user) => {
      users.delete(user);
      if (users.size === 0) await closeConnection();
    };

    node.on('close', (done: () => void) => {
      liveEndpoints.delete(node);
      users.clear();
      closeConnection().then(() => done(), () => done());
    });
  }

  /** Status of a node using an endpoint: the connection first, then the node's own result. */
  function endpointStatus(state: ConnectionState, failure: ConnectionFailure | undefined, result: NodeStatus | undefined): NodeStatus {
    switch (state) {
      case 'idle':
      case 'connecting': {
        // A lock left by a process killed while it made this PKI: the first connect waits for it (the log line says how to go on).
        const lock = pkiReady ? undefined : heldPkiLock(pkiFolder());
        return { fill: 'yellow', shape: 'ring', text: lock ? RED._('opcua.status.pki-locked', { age: lock.ageSeconds }) : RED._('opcua.status.connecting') };
      }
      case 'reconnecting': return { fill: 'yellow', shape: 'ring', text: RED._('opcua.status.reconnecting') };
      case 'backoff': return { fill: 'red', shape: 'ring', text: RED._('opcua.status.disconnected', { reason: failure?.code ?? failure?.kind ?? '' }) };
      case 'closed': return { fill: 'grey', shape: 'ring', text: RED._('opcua.status.closed') };
      case 'refused': return { fill: 'red', shape: 'dot', text: refusedText(failure) };
      default: return result ?? { fill: 'green', shape: 'dot', text: RED._('opcua.status.connected') };
    }
  }

  /** Says WHICH side refused, with the thumbprint to act on. */
  function refusedText(failure: ConnectionFailure | undefined): string {
    if (!failure) return RED._('opcua.status.refused');
    if (failure.kind === 'client-certificate-rejected') return RED._('opcua.status.server-refused-us', { thumbprint: shortThumbprint(failure.ownThumbprint) });
    if (failure.side === 'client') return RED._('opcua.status.we-refused-server', { code: failure.code ?? failure.kind, thumbprint: shortThumbprint(failure.serverThumbprint) });
    return RED._('opcua.status.refused-detail', { detail: failure.code ?? failure.kind });
  }

  /** The endpoint of a node, or a red status + error and undefined. */
  function endpointOf(node: Node, config: UserNodeDef): EndpointNode | undefined {
    const endpoint = RED.nodes.getNode(config.endpoint) as EndpointNode | null;
    if (!endpoint) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('opcua.status.no-endpoint') });
      node.error(RED._('opcua.errors.no-endpoint'));
      return undefined;
    }
    return endpoint;
  }

  function invalid(node: Node, detail: string): void {
    node.status({ fill: 'red', shape: 'ring', text: RED._('opcua.status.invalid') });
    node.error(RED._('opcua.errors.invalid-config', { detail }));
  }

  /** The metrics of a read or write node's dialog; undefined, after saying why, when they are invalid. */
  function configuredMetrics(node: Node, config: Record<string, unknown>): MetricNode[] | undefined {
    let metrics: MetricNode[];
    try {
      metrics = parseJsonList<MetricNode>(config.metrics);
    } catch (error) {
      invalid(node, (error as Error).message);
      return undefined;
    }
    const problems = monitoredMetricProblems(metrics);
    if (problems.length) {
      invalid(node, problems.join('; '));
      return undefined;
    }
    return metrics;
  }

  /** Common wiring of a node that uses an endpoint: status handling, register/deregister. */
  function useEndpoint(node: Node & EndpointUser, endpoint: EndpointNode, onState?: (state: ConnectionState) => void) {
    let state: ConnectionState = 'idle';
    let failure: ConnectionFailure | undefined;
    let result: NodeStatus | undefined;
    const show = () => {
      const status = endpointStatus(state, failure, result);
      // A certificate that expires within 30 days turns a connected node's dot yellow and says so.
      const expiring = state === 'connected' ? endpoint.connection?.expiring : undefined;
      node.status(expiring ? { fill: 'yellow', shape: status.shape, text: RED._('opcua.status.expiring', { text: String(status.text ?? ''), whose: expiring.whose, days: expiring.days }) } : status);
    };
    node.onEndpointState = (s, f) => {
      // A refused connection is retried about once a second (so Trust in the assistant works without a
      // redeploy); each retry's "connecting" does not replace the red refused status: only its outcome does.
      if (!(state === 'refused' && s === 'connecting')) {
        state = s;
        failure = f;
      }
      show();
      onState?.(s);
    };
    const connection = endpoint.register(node);
    return {
      connection,
      setResult(status: NodeStatus | undefined) {
        result = status;
        show();
      },
      /** The session, or an Error saying why there is none (nothing is queued for later: T-RPL-03). */
      session() {
        const session = connection.session;
        if (!session) throw new Error(RED._('opcua.errors.not-connected', { state: failure?.explanation ?? state }));
        return session;
      },
      release: () => endpoint.deregister(node),
    };
  }

  function SubscribeNode(this: Node & EndpointUser, config: UserNodeDef & Record<string, unknown>): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let metrics: MonitoredMetricDefinition[];
    try {
      metrics = parseJsonList<MonitoredMetricDefinition>(config.metrics);
    } catch (error) {
      invalid(node, (error as Error).message);
      return;
    }
    // Flows saved before queue size and discard policy existed have neither: the defaults apply.
    const queueSize = config.queueSize === undefined || config.queueSize === '' ? DEFAULT_QUEUE_SIZE : Number(config.queueSize);
    const discardOldest = config.discardOldest !== false && config.discardOldest !== 'false';
    const problems = monitoredMetricProblems(metrics);
    const queueProblem = queueSizeProblem(queueSize);
    if (queueProblem) problems.unshift(queueProblem);
    if (problems.length) return invalid(node, problems.join('; '));
    const endpoint = endpointOf(node, config);
    if (!endpoint) return;
    const publishingInterval = Math.max(10, positive(config.publishingInterval, 1000));
    const use = useEndpoint(node, endpoint);
    const subscriber = new OpcUaSubscriber({
      connection: use.connection,
      topic: typeof config.topic === 'string' ? config.topic : '',
      metrics,
      publishingInterval,
      samplingInterval: positive(config.samplingInterval, publishingInterval),
      queueSize,
      discardOldest,
      staleAfter: Math.max(1, positive(config.staleAfter, 3)),
    });
    const summary = () => {
      const s = subscriber.status;
      if (s.stale) return { fill: 'yellow', shape: 'dot', text: RED._('opcua.status.stale') } as NodeStatus;
      if (s.bad) return { fill: 'yellow', shape: 'dot', text: RED._('opcua.status.items-bad', { ok: s.monitored, bad: s.bad }) } as NodeStatus;
      return { fill: 'green', shape: 'dot', text: RED._('opcua.status.items', { count: s.monitored }) } as NodeStatus;
    };
    let lastText = '';
    subscriber.on('batch', (batch) => {
      node.send(batch);
      const status = summary();
      if (status.text !== lastText) {
        lastText = String(status.text);
        use.setResult(status);
      }
    });
    subscriber.on('warning', (text: string) => node.warn(text));
    subscriber.on('stale', (reason: string) => {
      // A connected server gone silent is news; during an outage the endpoint's one line has said it already.
      if (use.connection.state === 'connected') node.warn(RED._('opcua.log.stale', { reason }));
      use.setResult(summary());
    });
    subscriber.on('fresh', () => use.setResult(summary()));
    subscriber.start();
    node.on('close', (done: () => void) => {
      subscriber.removeAllListeners();
      subscriber.stop().catch(() => undefined).then(() => use.release()).then(() => done(), () => done());
    });
  }

  function ReadNode(this: Node & EndpointUser, config: UserNodeDef & Record<string, unknown>): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const metrics = configuredMetrics(node, config);
    if (!metrics) return;
    const endpoint = endpointOf(node, config);
    if (!endpoint) return;
    const facts = new Map<string, NodeFacts>();
    const use = useEndpoint(node, endpoint, (state) => {
      if (state !== 'connected') facts.clear(); // a restarted server may have another address space
    });
    const topic = typeof config.topic === 'string' ? config.topic : '';
    let busy = false;
    const readOnce = async (msg?: NodeMessageInFlow) => {
      const batches = await readMetrics(use.session(), metrics, topic, facts);
      const bad = batches.reduce((n, b) => n + Object.values(b.meta ?? {}).filter((m) => m.quality === 'bad').length, 0);
      use.setResult(bad
        ? { fill: 'yellow', shape: 'dot', text: RED._('opcua.status.read-bad', { bad }) }
        : { fill: 'green', shape: 'dot', text: RED._('opcua.status.read', { count: metrics.length }) });
      for (const batch of batches) node.send((msg ? { ...msg, ...batch } : batch) as unknown as NodeMessageInFlow);
    };
    const interval = positive(config.interval, 0);
    let timer: NodeJS.Timeout | undefined;
    let lastTimerError = '';
    if (interval > 0) {
      timer = setInterval(() => {
        if (busy || !use.connection.session) return; // the endpoint's status and log say why
        busy = true;
        readOnce().then(() => { lastTimerError = ''; }, (error: Error) => {
          if (error.message !== lastTimerError) node.warn(error.message); // once per kind of failure, not per tick
          lastTimerError = error.message;
        }).finally(() => { busy = false; });
      }, Math.max(50, interval));
    }
    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      readOnce(msg).then(() => done(), (error: Error) => done(error));
    });
    node.on('close', (done: () => void) => {
      clearInterval(timer);
      use.release().then(() => done(), () => done());
    });
  }

  function WriteNode(this: Node & EndpointUser, config: UserNodeDef & Record<string, unknown>): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const list = configuredMetrics(node, config);
    if (!list) return;
    const metrics = new Map(list.map((m) => [m.name, m]));
    const endpoint = endpointOf(node, config);
    if (!endpoint) return;
    const use = useEndpoint(node, endpoint);
    node.on('input', (msg: NodeMessageInFlow & { ok?: boolean; command?: unknown; problems?: string[] }, send, done) => {
      const who = senderOf(msg);
      const command = msg.payload;
      const refuse = (detail: string) => {
        use.setResult({ fill: 'red', shape: 'dot', text: RED._('opcua.status.refused-write') });
        node.warn(RED._('opcua.log.write-refused', { who, detail }));
        msg.command = command;
        msg.problems = detail.split('; ');
        msg.ok = false;
        send(msg);
        done(new Error(RED._('opcua.errors.write-refused', { detail })));
      };
      let session;
      try {
        session = use.session();
      } catch (error) {
        refuse((error as Error).message);
        return;
      }
      writeCommand(session, metrics, command).then((outcome) => {
        if (outcome.problems) {
          refuse(outcome.problems.map((p) => (p.name ? `${p.name}: ${p.problem}` : p.problem)).join('; '));
          return;
        }
        // One audit line per write: metric, node, old → new, result, who asked.
        for (const [name, r] of Object.entries(outcome.results)) {
          const line = RED._('opcua.log.write', { metric: name, nodeId: metrics.get(name)?.nodeId ?? '?', old: JSON.stringify(r.old ?? null), value: r.written ?? '?', outcome: r.status === 'ok' ? 'ok' : r.code ?? r.status, who });
          if (r.status === 'ok') node.log(line);
          else node.warn(line);
        }
        const failed = Object.entries(outcome.results).filter(([, r]) => r.status !== 'ok');
        use.setResult(failed.length
          ? { fill: 'red', shape: 'dot', text: failed[0][1].code ?? 'failed' }
          : { fill: 'green', shape: 'dot', text: RED._('opcua.status.written', { count: Object.keys(outcome.results).length }) });
        msg.command = command;
        msg.payload = outcome.results;
        msg.ok = outcome.ok;
        send(msg);
        if (failed.length) done(new Error(RED._('opcua.errors.write-failed', { detail: failed.map(([n, r]) => `${n}: ${r.code}`).join('; ') })));
        else done();
      }, (error: Error) => refuse(error.message));
    });
    node.on('close', (done: () => void) => {
      use.release().then(() => done(), () => done());
    });
  }

  function BrowseNode(this: Node & EndpointUser, config: UserNodeDef & Record<string, unknown>): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const endpoint = endpointOf(node, config);
    if (!endpoint) return;
    const use = useEndpoint(node, endpoint);
    let busy = false;
    node.on('input', (msg: NodeMessageInFlow & { nodeId?: unknown; truncated?: boolean }, send, done) => {
      if (busy) {
        done(new Error(RED._('opcua.errors.browse-busy')));
        return;
      }
      const start = typeof msg.nodeId === 'string' && msg.nodeId ? msg.nodeId : String(config.nodeId || 'i=85');
      let session;
      try {
        session = use.session();
      } catch (error) {
        done(error as Error);
        return;
      }
      busy = true;
      browseTree(session, start, { depth: Math.min(10, Math.max(1, positive(config.depth, 2))), maxNodes: Math.max(1, positive(config.maxNodes, 1000)), withValues: config.withValues === true })
        .then(({ nodes, truncated }) => {
          use.setResult({ fill: truncated ? 'yellow' : 'green', shape: 'dot', text: RED._(truncated ? 'opcua.status.browse-truncated' : 'opcua.status.browsed', { count: nodes.length }) });
          if (truncated) node.warn(RED._('opcua.log.browse-truncated', { max: positive(config.maxNodes, 1000), start }));
          msg.payload = nodes;
          msg.truncated = truncated;
          send(msg);
          done();
        }, (error: Error) => done(error))
        .finally(() => { busy = false; });
    });
    node.on('close', (done: () => void) => {
      use.release().then(() => done(), () => done());
    });
  }

  function MethodNode(this: Node & EndpointUser, config: UserNodeDef & Record<string, unknown>): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const endpoint = endpointOf(node, config);
    if (!endpoint) return;
    const use = useEndpoint(node, endpoint);
    node.on('input', (msg: NodeMessageInFlow & { ok?: boolean; arguments?: unknown; problems?: string[] }, send, done) => {
      const who = senderOf(msg);
      let session;
      try {
        session = use.session();
      } catch (error) {
        done(error as Error);
        return;
      }
      const args = msg.payload;
      callMethod(session, String(config.objectId ?? ''), String(config.methodId ?? ''), args).then((outcome) => {
        const detail = outcome.problems?.join('; ') ?? outcome.code;
        node.log(RED._('opcua.log.call', { method: String(config.methodId), args: JSON.stringify(args ?? null), outcome: outcome.ok ? 'ok' : detail ?? 'failed', who }));
        use.setResult(outcome.ok ? { fill: 'green', shape: 'dot', text: RED._('opcua.status.called') } : { fill: 'red', shape: 'dot', text: outcome.code ?? RED._('opcua.status.refused-call') });
        msg.arguments = args;
        if (!outcome.ok) msg.problems = outcome.problems ?? [outcome.code ?? 'failed'];
        msg.payload = outcome.outputs ?? null;
        msg.ok = outcome.ok;
        send(msg);
        if (outcome.ok) done();
        else done(new Error(RED._('opcua.errors.call-failed', { detail: detail ?? 'failed' })));
      }, (error: Error) => done(error));
    });
    node.on('close', (done: () => void) => {
      use.release().then(() => done(), () => done());
    });
  }

  // ---- admin endpoints (editor): behind Node-RED's permissions ----
  let discoveries = 0;
  RED.httpAdmin.post('/uns-opcua-endpoint/discover', RED.auth.needsPermission('uns-opcua-endpoint.write'), (req, res) => {
    const url = typeof req.body?.endpointUrl === 'string' ? req.body.endpointUrl.trim() : '';
    if (!/^opc\.tcp:\/\/.+/.test(url)) {
      res.status(400).json({ ok: false, error: RED._('opcua.errors.bad-url') });
      return;
    }
    if (discoveries >= MAX_DISCOVERIES) {
      res.status(429).json({ ok: false, error: RED._('opcua.errors.discover-busy') });
      return;
    }
    discoveries++;
    pki().then((p) => discoverEndpoints(url, p))
      .then((endpoints) => res.json({ ok: true, endpoints: endpoints.map(({ serverCertificateDer: _der, ...e }) => e) }),
        (error: Error) => res.status(502).json({ ok: false, error: error.message }))
      .finally(() => { discoveries--; });
  });

  RED.httpAdmin.get('/uns-opcua-endpoint/trust', RED.auth.needsPermission('uns-opcua-endpoint.read'), (_req, res) => {
    pki().then((p) => res.json({ ok: true, own: { ...p.ownCertificate().info, applicationUri: p.applicationUri }, certificates: p.trustList().map(({ file: _file, ...e }) => e) }),
      (error: Error) => res.status(500).json({ ok: false, error: error.message }));
  });

  RED.httpAdmin.get('/uns-opcua-endpoint/own-certificate.der', RED.auth.needsPermission('uns-opcua-endpoint.read'), (_req, res) => {
    pki().then((p) => {
      const { der } = p.ownCertificate();
      res.setHeader('Content-Type', 'application/pkix-cert');
      res.setHeader('Content-Disposition', 'attachment; filename="uns-edge-opcua.der"');
      res.end(der);
    }, (error: Error) => res.status(500).json({ ok: false, error: error.message }));
  });

  RED.httpAdmin.post('/uns-opcua-endpoint/trust/:thumbprint/:action', RED.auth.needsPermission('uns-opcua-endpoint.write'), (req, res) => {
    const { thumbprint, action } = req.params as { thumbprint: string; action: string };
    if (!/^[0-9a-fA-F:]{40,59}$/.test(thumbprint) || !['trust', 'reject', 'remove'].includes(action)) {
      res.status(400).json({ ok: false, error: RED._('opcua.errors.bad-trust-request') });
      return;
    }
    pki().then(async (p) => {
      const entry = action === 'trust' ? await p.trust(thumbprint) : action === 'reject' ? await p.reject(thumbprint) : await p.remove(thumbprint);
      if (!entry) {
        res.status(404).json({ ok: false, error: RED._('opcua.errors.no-certificate', { thumbprint }) });
        return;
      }
      // Audit line: who changed the trust list (SR 2.8); refused endpoints retry now (no redeploy), and those
      // connected to a server whose certificate was rejected or removed reconnect (and are refused).
      const user = (req as unknown as { user?: { username?: string } }).user?.username ?? 'anonymous admin';
      RED.log.warn(RED._('opcua.log.trust-change', { action, thumbprint: entry.thumbprint, subject: entry.subject, user }));
      for (const e of liveEndpoints) e.connection?.trustChanged(action === 'trust' ? undefined : entry.thumbprint);
      const { file: _file, offeredBy: _offered, status: _previous, ...info } = entry;
      res.json({ ok: true, certificate: { ...info, status: action === 'trust' ? 'trusted' : action === 'reject' ? 'rejected' : 'removed' } });
    }).catch((error: Error) => res.status(500).json({ ok: false, error: error.message }));
  });

  // The browser of the edit dialogs: through the DEPLOYED endpoint's shared session (never one
  // session per click: node-red-contrib-opcua #860).
  RED.httpAdmin.get('/uns-opcua-endpoint/:id/browse', RED.auth.needsPermission('uns-opcua-endpoint.read'), (req, res) => {
    // `?search=a&search=b` or `?search[x]=` parse to an array / object: each parameter once, as text.
    const query: Record<string, unknown> = req.query;
    const repeated = ['nodeId', 'search', 'depth'].filter((name) => query[name] !== undefined && typeof query[name] !== 'string');
    if (repeated.length) {
      res.status(400).json({ ok: false, error: RED._('opcua.errors.bad-browse-query', { names: repeated.join(', ') }) });
      return;
    }
    const { nodeId, search: searchText, depth } = query as { nodeId?: string; search?: string; depth?: string };
    const endpoint = RED.nodes.getNode((req.params as { id: string }).id) as EndpointNode | null;
    const session = endpoint?.connection?.session;
    if (!session) {
      res.status(409).json({ ok: false, error: RED._(endpoint?.connection ? 'opcua.errors.browse-not-connected' : 'opcua.errors.browse-not-deployed') });
      return;
    }
    const search = searchText?.trim();
    browseTree(session, nodeId || 'i=85', { depth: search ? Math.min(4, Number(depth) || 3) : 1, maxNodes: BROWSE_MAX_NODES, withValues: !search })
      .then(({ nodes, truncated }) => res.json({ ok: true, nodes: search ? searchTree(nodes, search) : nodes, truncated }),
        (error: Error) => res.status(502).json({ ok: false, error: error.message }));
  });

  const register = (type: string, ctor: unknown, extra?: object) =>
    RED.nodes.registerType(type, ctor as Parameters<typeof RED.nodes.registerType>[1], extra as Parameters<typeof RED.nodes.registerType>[2]);
  register('uns-opcua-endpoint', EndpointNodeCtor, {
    credentials: { user: { type: 'text' }, password: { type: 'password' }, userCertificate: { type: 'text' }, userPrivateKey: { type: 'password' } },
  });
  register('uns-opcua-subscribe', SubscribeNode);
  register('uns-opcua-read', ReadNode);
  register('uns-opcua-write', WriteNode);
  register('uns-opcua-browse', BrowseNode);
  register('uns-opcua-method', MethodNode);
};
