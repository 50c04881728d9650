/**
 * Node-RED adapter of `uns-opcua-server` (docs/opcua-server.md): reads the config, builds the
 * UnsOpcUaServer controller of lib/opcua/server-runtime.ts and maps it:
 *   input  tag batch                     → address space (validated first; a bad batch is refused whole)
 *   input  msg with opcuaWriteId          → the result of a write command (Complete/Catch node, uns-modbus-write)
 *   output write command                  ← an OPC UA client's write that passed every check
 *   status listening, variables, sessions; a yellow ring when None is offered; red on failure
 * Admin endpoints: the server's trust list (rejected client certificates, trust/reject/remove) and
 * its certificate (DER) for the clients' side of the trust exchange.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { counter, gauge } from '../../lib/runtime/metrics';
import { parseServerModel, ServerModelError } from '../../lib/opcua/server-model';
import { defaultServerIdentity, serverPki } from '../../lib/opcua/server-pki';
import { SERVER_POLICIES, UnsOpcUaServer, type ServerPolicy } from '../../lib/opcua/server-runtime';
import { usersFrom, WritePolicy } from '../../lib/opcua/server-writes';
import { tagBatchProblems } from '../../lib/uns/validate';

interface ServerDef extends NodeDef {
  /** Where the server listens (named so, not host/port: those name where a peer is, in templates). */
  listenPort: string | number;
  listenHost: string;
  hostname: string;
  policies: string;
  allowNone: boolean;
  users: string;
  model: string;
  maxSessions: string | number;
  maxConnections: string | number;
  maxWritesPerSecond: string | number;
  writeTimeout: string | number;
  maxVariables: string | number;
}

interface ServerCredentials {
  /** JSON {"<user name>": "<password>"} of the password users. */
  passwords?: string;
}

/** How often one warning key may be logged again (a flapping source must not flood the log). */
const WARNING_DAMPING_MS = 60_000;
const STATUS_REFRESH_MS = 1000;

const writesTotal = counter({ name: 'uns_edge_opcua_server_writes_total', help: 'OPC UA client writes to uns-opcua-server by outcome', labelNames: ['node', 'outcome'] });
const sessionsGauge = gauge({ name: 'uns_edge_opcua_server_sessions', help: 'Open OPC UA sessions of uns-opcua-server', labelNames: ['node'] });
const refusedTotal = counter({ name: 'uns_edge_opcua_server_refused_total', help: 'Connections and secure channels uns-opcua-server refused', labelNames: ['node', 'kind'] });

function integer(value: unknown, fallback: number, min: number, max: number, what: string, problems: string[]): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) problems.push(`${what} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`);
  return n;
}

export = function (RED: NodeAPI): void {
  const base = () => join((RED.settings as { userDir?: string }).userDir ?? join(homedir(), '.node-red'), 'uns-edge', 'opcua');
  const pkiFolder = () => join(base(), 'server-pki');
  const userPkiFolder = () => join(base(), 'server-user-pki');

  function OpcUaServerNode(this: Node<ServerCredentials>, config: ServerDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const problems: string[] = [];
    const port = integer(config.listenPort, 4840, 1, 65535, 'port', problems);
    const policies = (config.policies ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    for (const p of policies) if (!SERVER_POLICIES.includes(p as ServerPolicy)) problems.push(`unknown security policy ${p}`);
    if (policies.length === 0 && !config.allowNone) problems.push('no security policy and None not allowed: no endpoint');
    const users = usersFrom(config.users ?? '', node.credentials?.passwords, problems);
    let model;
    try {
      model = parseServerModel(config.model ?? '');
    } catch (error) {
      problems.push(error instanceof ServerModelError ? error.message : String(error));
    }
    const options = {
      maxSessions: integer(config.maxSessions, 50, 1, 1000, 'max sessions', problems),
      maxConnections: integer(config.maxConnections, 60, 1, 1000, 'max connections', problems),
      maxWritesPerSecond: integer(config.maxWritesPerSecond, 10, 1, 10_000, 'writes per second', problems),
      writeTimeoutMs: integer(config.writeTimeout, 5000, 100, 600_000, 'write timeout', problems),
      maxVariables: integer(config.maxVariables, 50_000, 1, 1_000_000, 'max variables', problems),
    };
    if (problems.length || !model) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('opcua-server.status.invalid') });
      node.error(`${RED._('opcua-server.errors.invalid')}: ${problems.join('; ')}`);
      return;
    }
    const server = new UnsOpcUaServer({
      id: node.id, port, ...(config.listenHost?.trim() ? { host: config.listenHost.trim() } : {}), ...(config.hostname?.trim() ? { hostname: config.hostname.trim() } : {}),
      pkiFolder: pkiFolder(), userPkiFolder: userPkiFolder(), policies: policies as ServerPolicy[], allowNone: config.allowNone === true,
      users, model, notice: (message) => node.warn(message), ...options,
    });
    let running = false;
    let failed: string | undefined;
    let lastStatus = '';
    const warnedAt = new Map<string, number>();
    const damped = (key: string, text: string) => {
      const now = Date.now();
      const last = warnedAt.get(key);
      if (last !== undefined && now - last < WARNING_DAMPING_MS) return;
      if (warnedAt.size > 10_000) warnedAt.clear();
      warnedAt.set(key, now);
      node.warn(text);
    };
    const showStatus = () => {
      let status: NodeStatus;
      if (failed) status = { fill: 'red', shape: 'ring', text: failed.slice(0, 100) };
      else if (!running) status = { fill: 'yellow', shape: 'ring', text: RED._('opcua-server.status.starting') };
      else {
        const text = RED._('opcua-server.status.listening', { port: String(port), variables: String(server.addressSpace?.variableCount ?? 0), sessions: String(server.sessionCount) });
        status = config.allowNone ? { fill: 'yellow', shape: 'ring', text: `${text} ${RED._('opcua-server.status.none')}` } : { fill: 'green', shape: 'dot', text };
      }
      sessionsGauge.set({ node: node.id }, server.sessionCount);
      const key = JSON.stringify(status);
      if (key !== lastStatus) node.status(status);
      lastStatus = key;
    };
    showStatus();
    const refresh = setInterval(showStatus, STATUS_REFRESH_MS);

    server.on('command', (command) => node.send(command as unknown as NodeMessageInFlow));
    server.on('warning', (w) => damped(w.key, w.text));
    server.on('refused', (text) => {
      refusedTotal.inc({ node: node.id, kind: /certificate/.test(text) ? 'certificate' : 'connection' });
      damped(`refused:${text}`, text);
    });
    if (config.allowNone) node.warn(RED._('opcua-server.log.none'));
    server.start().then(() => {
      running = true;
      node.log(RED._('opcua-server.log.started', { url: server.endpointUrl, certificate: server.certificateFile ?? '' }));
      showStatus();
    }, (error: Error) => {
      failed = RED._('opcua-server.status.failed', { reason: error.message });
      node.error(`${RED._('opcua-server.errors.start')}: ${error.message}`);
      showStatus();
    });

    const before = { ...server.writes.counters };
    node.on('input', (msg: NodeMessageInFlow & { opcuaWriteId?: unknown }, _send, done) => {
      if (msg.opcuaWriteId !== undefined) {
        // The result of one of our write commands (or of an older deployment's: ignored).
        server.writes.settle(msg as Parameters<WritePolicy['settle']>[0]);
        for (const key of Object.keys(before) as (keyof typeof before)[]) {
          const delta = server.writes.counters[key] - before[key];
          if (delta > 0) writesTotal.inc({ node: node.id, outcome: key }, delta);
          before[key] = server.writes.counters[key];
        }
        done();
        return;
      }
      const batchProblems = tagBatchProblems(msg);
      if (batchProblems.length) {
        done(new Error(`${RED._('opcua-server.errors.batch')}: ${batchProblems.slice(0, 10).join('; ')}`));
        return;
      }
      server.apply(msg as unknown as Parameters<UnsOpcUaServer['apply']>[0]);
      done();
    });

    node.on('close', (done: () => void) => {
      clearInterval(refresh);
      server.removeAllListeners();
      server.stop().then(() => done(), () => done());
    });
  }

  RED.nodes.registerType('uns-opcua-server', OpcUaServerNode as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: { passwords: { type: 'password' } },
  });

  // The server's trust list: client application certificates it refused (rejected) and trusts.
  const pki = () => serverPki(pkiFolder(), defaultServerIdentity());
  RED.httpAdmin.get('/uns-opcua-server/trust', RED.auth.needsPermission('uns-opcua-server.read'), (_req, res) => {
    pki().then((p) => res.json({ entries: p.trustList().map(({ file: _file, ...entry }) => entry), own: p.ownCertificate().info }), (e: Error) => res.status(500).json({ error: e.message }));
  });
  RED.httpAdmin.get('/uns-opcua-server/certificate.der', RED.auth.needsPermission('uns-opcua-server.read'), (_req, res) => {
    pki().then((p) => {
      res.set('Content-Type', 'application/pkix-cert');
      res.set('Content-Disposition', 'attachment; filename="uns-edge-opcua-server.der"');
      res.send(p.ownCertificate().der);
    }, (e: Error) => res.status(500).json({ error: e.message }));
  });
  RED.httpAdmin.post('/uns-opcua-server/trust/:thumbprint/:action', RED.auth.needsPermission('uns-opcua-server.write'), (req, res) => {
    const action = String(req.params.action);
    if (!['trust', 'reject', 'remove'].includes(action)) {
      res.status(400).json({ error: 'action must be trust, reject or remove' });
      return;
    }
    pki().then(async (p) => {
      const thumbprint = String(req.params.thumbprint);
      const entry = action === 'trust' ? await p.trust(thumbprint) : action === 'reject' ? await p.reject(thumbprint) : await p.remove(thumbprint);
      if (!entry) res.status(404).json({ error: `no certificate ${thumbprint}` });
      else res.json({ ok: true });
    }).catch((e: Error) => res.status(500).json({ error: e.message }));
  });
};
