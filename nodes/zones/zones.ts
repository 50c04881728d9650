/**
 * Node-RED adapter of the zones node set (docs/zones.md): `uns-zone` (config: an IEC 62443 zone with
 * its Purdue level and SL-T vector) and `uns-conduit` (the only sanctioned path between two zones).
 * The conduit reads its config, validates the policy (lib/zones/policy), builds a ConduitController
 * (lib/zones/controller) on the shared audit log of its folder, and maps decisions to outputs:
 * output 1 what passes, output 2 the decision of every denial and alert. Island switch from the
 * dialog, the input topic `uns-edge/conduit/island` and the admin API; counters to /metrics.
 */
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { AuditLog } from '../../lib/zones/audit-log';
import { AuditRefusal, ConduitController } from '../../lib/zones/controller';
import { IslandStateFile, islandStateFile } from '../../lib/zones/island-state';
import type { Decision } from '../../lib/zones/conduit';
import { parsePolicy, PolicyError, type Policy } from '../../lib/zones/policy';
import { senderOf } from '../../lib/principal';
import { isPlainObject } from '../../lib/values';
import { counter, gauge } from '../../lib/runtime/metrics';

/** The topic of an island switch message: `{topic: ISLAND_TOPIC, payload: {island: true}}`. */
const ISLAND_TOPIC = 'uns-edge/conduit/island';

type ZoneDef = NodeDef & { level: string; slt: string; description: string; colour: string };
type ConduitDef = NodeDef & {
  sourceZone: string; destinationZone: string; traffic: 'auto' | 'read' | 'write'; policy: string;
  island?: unknown; islandOffByMessage: boolean; auditDir: string;
};

interface ZoneNode extends Node {
  zoneName: string;
  level: number;
  slt: number[];
}

interface ConduitNode extends Node {
  controller?: ConduitController;
  policyProblem?: string;
  /** The island switch of the input and the admin API; throws AuditRefusal when off cannot be audited. */
  switchIsland?: (on: boolean, by: string) => void;
}

interface SharedAudit { log: AuditLog; users: number }

/** One audit log per folder, shared by the conduits that write to it (one hash chain). */
const auditLogs = new Map<string, SharedAudit>();
const liveConduits = new Set<ConduitNode>();

function acquireAudit(dir: string): AuditLog {
  const shared = auditLogs.get(dir) ?? { log: new AuditLog({ dir }), users: 0 };
  shared.users++;
  auditLogs.set(dir, shared);
  return shared.log;
}

function releaseAudit(dir: string): void {
  const shared = auditLogs.get(dir);
  if (!shared) return;
  if (--shared.users === 0) {
    shared.log.close();
    auditLogs.delete(dir);
  }
}

const PURDUE_LEVELS = new Set([0, 1, 2, 3, 3.5, 4]);

/** Prometheus metrics read from the live conduits at scrape time (no hot-path cost). */
function registerMetrics(): void {
  counter({
    name: 'uns_edge_conduit_decisions_total',
    help: 'Messages decided by each uns-conduit, by result (allow, partial, deny) plus alerts and evaluator errors',
    labelNames: ['conduit', 'result'],
    collect() {
      this.reset();
      for (const node of liveConduits) {
        const c = node.controller?.counters;
        if (!c) continue;
        const conduit = node.name || node.id;
        for (const [result, value] of Object.entries(c)) this.inc({ conduit, result }, value);
      }
    },
  });
  gauge({
    name: 'uns_edge_conduit_island',
    help: 'Island mode of each uns-conduit: 1 = nothing crosses (SR 5.2 RE2)',
    labelNames: ['conduit'],
    collect() {
      this.reset();
      for (const node of liveConduits) this.set({ conduit: node.name || node.id }, node.controller?.island ? 1 : 0);
    },
  });
  gauge({
    name: 'uns_edge_audit_fill_ratio',
    help: 'Fill level of each conduit audit folder, 0..1 of maxFiles x maxFileBytes (SR 2.9)',
    labelNames: ['dir'],
    collect() {
      this.reset();
      for (const [dir, shared] of auditLogs) this.set({ dir }, shared.log.fillLevel());
    },
  });
  gauge({
    name: 'uns_edge_audit_writable',
    help: 'Whether each conduit audit folder is writable: 0 = failed, writes through its conduits are refused (T-POL-03)',
    labelNames: ['dir'],
    collect() {
      this.reset();
      for (const [dir, shared] of auditLogs) this.set({ dir }, shared.log.writable ? 1 : 0);
    },
  });
}

/** Output 2: the decision without the values that were refused (SR 3.7: detail stays in the audit). */
function decisionMessage(msg: NodeMessageInFlow, conduit: string, decision: Decision): NodeMessageInFlow {
  const { payload: _values, ...rest } = decision;
  return { _msgid: msg._msgid, topic: msg.topic, payload: { conduit, ...rest } } as NodeMessageInFlow;
}

export = function (RED: NodeAPI): void {
  registerMetrics();

  function ZoneNodeCtor(this: ZoneNode, config: ZoneDef): void {
    RED.nodes.createNode(this, config);
    this.zoneName = config.name;
    this.level = Number(config.level);
    this.slt = String(config.slt ?? '').split(',').map(Number);
  }
  RED.nodes.registerType('uns-zone', ZoneNodeCtor as unknown as Parameters<typeof RED.nodes.registerType>[1]);

  function ConduitNodeCtor(this: ConduitNode, config: ConduitDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const name = config.name || node.id;
    const refuse = (text: string, detail: string) => {
      node.policyProblem = detail;
      node.status({ fill: 'red', shape: 'ring', text });
      node.error(`${RED._('zones.errors.not-started')}: ${detail}`);
      // Fail closed: nothing crosses a conduit that could not start.
      node.on('input', (_msg: NodeMessageInFlow, _send: unknown, done: (e?: Error) => void) => done());
    };
    const source = RED.nodes.getNode(config.sourceZone) as ZoneNode | null;
    const destination = RED.nodes.getNode(config.destinationZone) as ZoneNode | null;
    if (!source || !destination) return refuse(RED._('zones.status.no-zone'), RED._('zones.errors.no-zone'));
    for (const zone of [source, destination]) {
      if (!PURDUE_LEVELS.has(zone.level)) return refuse(RED._('zones.status.no-zone'), `zone ${zone.zoneName} has no Purdue level 0–4 or 3.5`);
    }
    // A hand-written flows file may say "island": "true": neither on nor off, so the conduit does not start.
    if (config.island !== undefined && typeof config.island !== 'boolean') {
      return refuse(RED._('zones.status.bad-island'), RED._('zones.errors.bad-island', { value: JSON.stringify(config.island) ?? String(config.island) }));
    }
    let policy: Policy;
    try {
      policy = parsePolicy(config.policy || '{"rules":[]}');
    } catch (error) {
      const detail = error instanceof PolicyError ? error.problems.join('; ') : (error as Error).message;
      return refuse(RED._('zones.status.bad-policy'), detail);
    }
    const userDir = RED.settings.userDir ?? process.cwd();
    const configuredDir = (RED.settings as unknown as { unsEdge?: { auditDir?: string } }).unsEdge?.auditDir;
    const auditDir = config.auditDir?.trim() || configuredDir || join(userDir, 'uns-edge-audit');
    const audit = acquireAudit(auditDir);
    const controller = new ConduitController(policy, {
      name, audit, traffic: config.traffic || 'auto',
      source: { name: source.zoneName, level: source.level },
      destination: { name: destination.zoneName, level: destination.level },
      island: config.island === true,
      islandState: new IslandStateFile(islandStateFile(auditDir, node.id)), conduitId: node.id,
    });
    node.controller = controller;
    liveConduits.add(node);
    if (controller.islandProblem) node.error(`${RED._('zones.errors.island-state')}: ${controller.islandProblem}`);
    if (controller.islandSaveProblem) node.error(`${RED._('zones.errors.island-first-not-saved')}: ${controller.islandSaveProblem}`);
    node.switchIsland = (on, by) => {
      try {
        controller.setIsland(on, by);
      } finally {
        showStatus();
      }
      if (controller.islandSaveProblem) node.error(`${RED._('zones.errors.island-first-not-saved')}: ${controller.islandSaveProblem}`);
    };

    let alarmed = false;
    const onAlarm = (reason: string) => {
      if (alarmed) return;
      alarmed = true; // one log line per outage
      node.error(`${RED._(controller.held ? 'zones.errors.audit-held' : 'zones.errors.audit-failed')}: ${reason}`);
    };
    const onRecovered = (lost: number) => {
      alarmed = false;
      node.warn(RED._('zones.errors.audit-recovered', { lost: String(lost) }));
    };
    const onFilling = (percent: number) => node.warn(RED._('zones.errors.audit-filling', { percent: percent.toFixed(0) }));
    audit.on('alarm', onAlarm);
    audit.on('recovered', onRecovered);
    audit.on('warning', onFilling);
    if (!audit.writable) onAlarm(audit.failureReason ?? '');

    let shown = '';
    const showStatus = () => {
      const c = controller.counters;
      const counts = RED._('zones.status.counts', { allowed: String(c.allowed + c.partial), denied: String(c.denied) });
      const island = controller.islandProblem ? RED._('zones.status.island-state-corrupt') : RED._('zones.status.island');
      const status = controller.island ? { fill: 'red', shape: 'dot', text: `${island} · ${counts}` }
        : controller.held ? { fill: 'red', shape: 'ring', text: `${RED._('zones.status.audit-held')} · ${counts}` }
          : !audit.writable ? { fill: 'red', shape: 'ring', text: `${RED._('zones.status.audit-failed')} · ${counts}` }
          : { fill: 'green', shape: 'dot', text: counts };
      const key = JSON.stringify(status);
      if (key === shown) return;
      shown = key;
      node.status(status as Parameters<Node['status']>[0]);
    };
    showStatus();
    // The counts change per message; the status is refreshed at most twice a second.
    const statusTimer = setInterval(showStatus, 500);

    node.on('input', (msg: NodeMessageInFlow & { meta?: unknown }, send, done) => {
      if (msg.topic === ISLAND_TOPIC && isPlainObject(msg.payload) && typeof msg.payload.island === 'boolean') {
        const on = msg.payload.island;
        // Stopping traffic is always allowed; restarting it by message only when the dialog allows it.
        if (!on && config.islandOffByMessage !== true) {
          node.warn(RED._('zones.errors.island-off-refused'));
          return done();
        }
        try {
          node.switchIsland?.(on, senderOf(msg));
          return done();
        } catch (error) {
          return done(error as Error); // AuditRefusal: island off not audited, so not done
        }
      }
      const decision = controller.decide(msg);
      if (decision.result === 'deny') {
        send([null, decisionMessage(msg, name, decision)]);
        return done();
      }
      msg.payload = decision.payload;
      if (decision.result === 'partial' && isPlainObject(msg.meta)) {
        const meta: Record<string, unknown> = {};
        for (const metric of decision.allowed) if (Object.hasOwn(msg.meta, metric)) meta[metric] = msg.meta[metric];
        msg.meta = meta;
      }
      send([msg, decision.alert || decision.result === 'partial' ? decisionMessage(msg, name, decision) : null]);
      done();
    });

    node.on('close', (done: () => void) => {
      clearInterval(statusTimer);
      audit.off('alarm', onAlarm);
      audit.off('recovered', onRecovered);
      audit.off('warning', onFilling);
      controller.close();
      liveConduits.delete(node);
      releaseAudit(auditDir);
      done();
    });
  }
  RED.nodes.registerType('uns-conduit', ConduitNodeCtor as unknown as Parameters<typeof RED.nodes.registerType>[1]);

  const conduitOf = (id: string): ConduitNode | undefined => {
    const node = RED.nodes.getNode(id) as ConduitNode | null;
    return node && liveConduits.has(node) ? node : undefined;
  };
  const whoAsked = (req: { user?: unknown }) => {
    const user = req.user as { username?: unknown } | undefined;
    return `admin:${typeof user?.username === 'string' ? user.username : '(no adminAuth)'}`;
  };

  // SR 7.6: the active policy and its hash.
  RED.httpAdmin.get('/uns-edge/conduits/:id/policy', RED.auth.needsPermission('uns-conduit.read'), (req, res) => {
    const node = conduitOf(String(req.params.id));
    if (!node?.controller) return void res.status(404).json({ error: node?.policyProblem ?? 'no running conduit with this id' });
    res.json({ ...node.controller.exportPolicy(), island: node.controller.island });
  });
  // SR 5.2 RE2: island switch; T-POL-02: atomic hot reload (runtime only: the next deploy sets the dialog's policy again).
  RED.httpAdmin.post('/uns-edge/conduits/:id/island', RED.auth.needsPermission('uns-conduit.write'), (req, res) => {
    const node = conduitOf(String(req.params.id));
    const island = (req.body as { island?: unknown } | undefined)?.island;
    if (!node?.controller || !node.switchIsland) return void res.status(404).json({ error: 'no running conduit with this id' });
    if (typeof island !== 'boolean') return void res.status(400).json({ error: 'body must be {"island": true|false}' });
    try {
      node.switchIsland(island, whoAsked(req));
    } catch (error) {
      if (!(error instanceof AuditRefusal)) throw error;
      return void res.status(503).json({ error: error.message, island: node.controller.island });
    }
    res.json({ island: node.controller.island });
  });
  RED.httpAdmin.post('/uns-edge/conduits/:id/policy', RED.auth.needsPermission('uns-conduit.write'), (req, res) => {
    const node = conduitOf(String(req.params.id));
    if (!node?.controller) return void res.status(404).json({ error: 'no running conduit with this id' });
    try {
      node.controller.setPolicy(parsePolicy(req.body), whoAsked(req));
      res.json(node.controller.exportPolicy());
    } catch (error) {
      if (error instanceof AuditRefusal) return void res.status(503).json({ error: error.message });
      res.status(400).json({ error: (error as Error).message, problems: error instanceof PolicyError ? error.problems : undefined });
    }
  });
  // The dialog checks a policy before it is deployed (rule and field named).
  RED.httpAdmin.post('/uns-edge/conduit-policy/check', RED.auth.needsPermission('uns-conduit.read'), (req, res) => {
    try {
      const policy = parsePolicy(req.body);
      res.json({ ok: true, rules: policy.rules.length });
    } catch (error) {
      res.json({ ok: false, problems: error instanceof PolicyError ? error.problems : [(error as Error).message] });
    }
  });
};
