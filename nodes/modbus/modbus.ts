/**
 * Node-RED adapter of the Modbus node set: `uns-modbus-link` (config node owning one Modbus
 * client), `uns-modbus-read` (polls one unit, emits one tag batch per poll) and `uns-modbus-write`
 * (writes commands to one unit). All protocol work is in lib/modbus/; this file reads config, maps
 * events to status()/send() and logs one line per outage (damped while a device flaps: one summary
 * a minute) and one per write, with who sent it. Config property names are documented in docs/modbus.md.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { ConnectionState, ModbusClient } from '../../lib/modbus/client';
import type { ModbusTable } from '../../lib/modbus/data-model';
import { configNumber, createModbusClient, describeLink, linkSettingsFrom, substituteEnvironment, validateLinkSettings } from '../../lib/modbus/link-config';
import { OutageLine, OutageLog } from '../../lib/modbus/outage-log';
import { ModbusPoller, PollStatus, formatRate } from '../../lib/modbus/poller';
import { buildReadPlan, MetricDefinition, ReadPlan, MetricDefinitionError } from '../../lib/modbus/read-plan';
import { probeLink } from '../../lib/modbus/probe';
import { batchReporter, sendSettingsFrom, SendSettings } from '../../lib/modbus/report-by-exception';
import { listSerialPorts, RtuTransport } from '../../lib/modbus/rtu';
import { buildWritePlan, WriteMetricDefinition, WritePlan } from '../../lib/modbus/write-plan';
import { ModbusWriter, WriteLogEntry, WriteOutcome } from '../../lib/modbus/writer';
import { senderOf } from '../../lib/principal';
import { forgetConnection, reportConnection } from '../../lib/runtime/connection-registry';
import { counter, gauge } from '../../lib/runtime/metrics';

/** Raw config of uns-modbus-link (docs/modbus.md); lib/modbus/link-config.ts reads it. */
type LinkDef = NodeDef & Record<string, unknown>;

interface UnitNodeDef extends NodeDef {
  link: string;
  unitId: number | string;
}

interface ReadDef extends UnitNodeDef {
  interval: number | string;
  topic: string;
  mergeGap: number | string;
  metrics: MetricDefinition[] | string;
  /** Report by exception (lib/modbus/report-by-exception.ts): 'every' (default) or 'changes'. */
  send?: string;
  deadbands?: string | Record<string, number>;
  /** Seconds; empty = 60, 0 = never. */
  refresh?: number | string;
}

interface WriteDef extends UnitNodeDef {
  metrics: WriteMetricDefinition[] | string;
  multipleOnly: boolean;
  readBefore: boolean;
  allowRaw: boolean;
  unknownMetrics: 'reject' | 'ignore';
}

/** What a user of the link is told: connection state changes. */
interface LinkUser {
  onLinkState(state: ConnectionState): void;
}

interface LinkNode extends Node {
  readonly maxRegisters: number;
  /** The client, created by the first user and closed after the last. */
  client: ModbusClient | undefined;
  register(user: LinkUser): ModbusClient;
  deregister(user: LinkUser): Promise<void>;
}

const liveLinks = new Set<LinkNode>();

const STATE_VALUE: Record<ConnectionState, number> = { idle: 0, connecting: 1, connected: 2, backoff: 3, closed: 4 };

/** Prometheus metrics of every live link, read from the clients at scrape time (no hot-path cost). */
function registerLinkMetrics(): void {
  gauge({
    name: 'uns_edge_modbus_queue_depth',
    help: 'Modbus requests waiting to be sent, per uns-modbus-link',
    labelNames: ['link'],
    collect() {
      this.reset();
      for (const link of liveLinks) if (link.client) this.set({ link: link.name || link.id }, link.client.queueDepth);
    },
  });
  gauge({
    name: 'uns_edge_modbus_connection_state',
    help: 'Modbus link state: 0 idle, 1 connecting, 2 connected, 3 backoff, 4 closed',
    labelNames: ['link'],
    collect() {
      this.reset();
      for (const link of liveLinks) if (link.client) this.set({ link: link.name || link.id }, STATE_VALUE[link.client.state]);
    },
  });
  counter({
    name: 'uns_edge_modbus_transactions_total',
    help: 'Modbus transactions per uns-modbus-link and outcome (counts restart when a link is redeployed)',
    labelNames: ['link', 'outcome'],
    collect() {
      this.reset();
      for (const link of liveLinks) {
        const s = link.client?.stats;
        if (!s) continue;
        const l = link.name || link.id;
        const outcomes: Record<string, number> = {
          response: s.responses, exception: s.exceptions, timeout: s.timeouts, queue_full: s.rejectedQueueFull,
          unit_suspended: s.rejectedSuspended, malformed: s.malformed,
          discarded: s.discardedTransaction + s.discardedUnit + s.discardedFunction,
        };
        for (const [outcome, value] of Object.entries(outcomes)) this.inc({ link: l, outcome }, value);
      }
    },
  });
  counter({
    name: 'uns_edge_modbus_rtu_discarded_total',
    help: 'Modbus RTU links: response candidates with a bad CRC (kind crc) and bytes dropped as noise (kind bytes)',
    labelNames: ['link', 'kind'],
    collect() {
      this.reset();
      for (const link of liveLinks) {
        const transport = link.client?.transport;
        if (!(transport instanceof RtuTransport)) continue;
        this.inc({ link: link.name || link.id, kind: 'crc' }, transport.stats.crcErrors);
        this.inc({ link: link.name || link.id, kind: 'bytes' }, transport.stats.discardedBytes);
      }
    },
  });
}

/** Probes ("test connection") at once; more get 429. Each holds a connection or a serial port for a moment. */
const MAX_PROBES = 2;

/** A value for a log line: strings quoted, BigInt exact, unknown as "?". */
function logValue(v: unknown): string {
  if (v === undefined) return '?';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export = function (RED: NodeAPI): void {
  registerLinkMetrics();

  function ModbusLinkNode(this: LinkNode, config: LinkDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const settings = linkSettingsFrom(config);
    const problems = validateLinkSettings(settings);
    if (problems.length) node.error(RED._('modbus.errors.invalid-link', { detail: problems.join('; ') }));
    const users = new Set<LinkUser>();
    Object.defineProperty(node, 'maxRegisters', { value: settings.maxRegistersPerRequest });
    node.client = undefined;
    liveLinks.add(node);

    let lastOutage: string | undefined;
    const fanOut = (state: ConnectionState) => {
      // /healthz and uns_edge_connection_up read this registry (docs/gateway.md).
      const connected = state === 'connected';
      if (connected) lastOutage = undefined;
      reportConnection({ id: node.id, type: 'uns-modbus-link', name: node.name || `modbus ${describeLink(settings)}`, state, connected, detail: lastOutage });
      for (const user of users) user.onLinkState(state);
    };

    // One log line per outage and one when it ends, damped to one summary a minute while the
    // device flaps; never one per request (peers.md §2, MB#89).
    const outageLog = new OutageLog({
      write(line: OutageLine) {
        if (line.kind === 'outage') node.warn(RED._('modbus.log.outage', { address: line.address, reason: line.reason }));
        else if (line.kind === 'restored') node.log(RED._('modbus.log.restored', { address: line.address, seconds: (line.downMs / 1000).toFixed(1) }));
        else {
          node.warn(RED._(line.connected ? 'modbus.log.flapping-up' : 'modbus.log.flapping-down', {
            address: line.address, outages: line.outages, seconds: line.windowMs / 1000, reason: line.lastReason,
          }));
        }
      },
    });

    node.register = (user) => {
      users.add(user);
      if (!node.client) {
        const client = createModbusClient(settings);
        // 'outage' comes before the 'backoff' state change, so the registry gets the reason with it.
        client.on('outage', (e) => {
          lastOutage = e.reason;
          outageLog.outage(e);
        });
        client.on('state', fanOut);
        client.on('restored', (e) => outageLog.restored(e));
        client.on('unitSuspended', (e) => {
          if (!e.repeat) node.warn(RED._('modbus.log.unit-suspended', { unit: e.unitId, timeouts: e.timeouts, seconds: e.forMs / 1000 }));
        });
        client.on('unitRestored', (e) => node.log(RED._('modbus.log.unit-restored', { unit: e.unitId })));
        node.client = client;
      }
      user.onLinkState(node.client.state);
      return node.client;
    };

    node.deregister = async (user) => {
      users.delete(user);
      if (users.size === 0 && node.client) {
        const client = node.client;
        node.client = undefined;
        client.removeAllListeners(); // before close(): its 'closed' state must not re-report the link
        await client.close();
        forgetConnection(node.id);
      }
    };

    node.on('close', (done: () => void) => {
      liveLinks.delete(node);
      outageLog.close();
      users.clear();
      const client = node.client;
      node.client = undefined;
      client?.removeAllListeners(); // before close(): its 'closed' state must not re-report the link
      forgetConnection(node.id);
      if (!client) {
        done();
        return;
      }
      client.close().then(() => done(), () => done());
    });
  }

  /** The status of a node that uses a link: the link's state first, then the node's last result. */
  function unitNodeStatus(linkState: ConnectionState, result: NodeStatus | undefined): NodeStatus {
    if (linkState === 'connecting' || linkState === 'idle') return { fill: 'yellow', shape: 'ring', text: RED._('modbus.status.connecting') };
    if (linkState === 'backoff' || linkState === 'closed') return { fill: 'red', shape: 'ring', text: RED._('modbus.status.disconnected') };
    return result ?? { fill: 'green', shape: 'ring', text: RED._('modbus.status.connected') };
  }

  /** Status text of a failure kind: "exception 2", "timeout", "unit suspended", … */
  function failureText(kind: string, exceptionCode: number | undefined): string {
    return kind === 'exception' ? RED._('modbus.status.exception', { code: String(exceptionCode) }) : RED._(`modbus.status.${kind}`);
  }

  /**
   * The link and unit id of a read or write node, and its metric definitions through `build`; on
   * any problem the node shows a red ring, logs a clear error and returns undefined (it then does nothing).
   */
  function setUpUnitNode<Plan>(node: Node, config: UnitNodeDef & { metrics: unknown }, build: (metrics: never[], link: LinkNode) => Plan):
    { link: LinkNode; unitId: number; plan: Plan } | undefined {
    const invalid = (message: string) => {
      node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.invalid') });
      node.error(message);
      return undefined;
    };
    const link = RED.nodes.getNode(config.link) as LinkNode | null;
    if (!link) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.no-link') });
      node.error(RED._('modbus.errors.no-link'));
      return undefined;
    }
    const unitId = configNumber(config.unitId, 1);
    if (!Number.isInteger(unitId) || unitId < 0 || unitId > 255) return invalid(RED._('modbus.errors.invalid-unit', { unit: String(config.unitId) }));
    try {
      const metrics = typeof config.metrics === 'string' ? JSON.parse(config.metrics || '[]') : config.metrics;
      return { link, unitId, plan: build(metrics ?? [], link) };
    } catch (error) {
      const detail = error instanceof MetricDefinitionError ? error.problems.join('; ') : (error as Error).message;
      return invalid(RED._('modbus.errors.invalid-metrics', { detail }));
    }
  }

  function ModbusReadNode(this: Node & LinkUser, config: ReadDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let linkState: ConnectionState = 'idle';
    let lastPoll: PollStatus | undefined;

    const showStatus = () => {
      let result: NodeStatus | undefined;
      if (lastPoll?.ok) result = { fill: 'green', shape: 'dot', text: RED._('modbus.status.polling', { rate: formatRate(lastPoll.pollsPerSecond) }) };
      else if (lastPoll) result = { fill: 'red', shape: 'dot', text: failureText(lastPoll.kind, lastPoll.exceptionCode) };
      node.status(unitNodeStatus(linkState, result));
    };
    let sendSettings: SendSettings;
    try {
      sendSettings = sendSettingsFrom(config);
    } catch (error) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.invalid') });
      node.error(RED._('modbus.errors.invalid-send', { detail: (error as Error).message }));
      return;
    }
    const report = batchReporter(sendSettings);
    node.onLinkState = (state) => {
      // The first poll after a (re)connect sends every value.
      if (state === 'connected' && linkState !== 'connected') report?.reset();
      linkState = state;
      if (state !== 'connected') lastPoll = undefined;
      showStatus();
    };

    const setUp = setUpUnitNode<ReadPlan>(node, config, (metrics, link) =>
      buildReadPlan(metrics, { maxRegisters: link.maxRegisters, mergeGap: configNumber(config.mergeGap, 8) }));
    if (!setUp) return;
    const { link, unitId, plan } = setUp;

    const client = link.register(node);
    const poller = new ModbusPoller({ client, unitId, plan, topic: config.topic || '', intervalMs: Math.max(0, configNumber(config.interval, 1000)) });
    poller.on('batch', (batch) => {
      const changed = report ? report.filter(batch, Date.now()) : batch;
      if (changed) node.send(changed as unknown as Parameters<typeof node.send>[0]);
    });
    poller.on('status', (status) => {
      lastPoll = status;
      showStatus();
    });
    poller.start();

    node.on('input', (_msg: NodeMessageInFlow, _send, done) => {
      poller.pollNow();
      done();
    });

    node.on('close', (done: () => void) => {
      poller.stop();
      poller.removeAllListeners();
      link.deregister(node).then(() => done(), () => done());
    });
  }

  /** What went wrong with a command, for node.error (Catch nodes) and the status. */
  function describeFailure(outcome: WriteOutcome, who: string): { error: string; status: NodeStatus } {
    if (outcome.problems) {
      const detail = outcome.problems.map((p) => (p.name ? `${p.name}: ${p.problem}` : p.problem)).join('; ');
      return { error: RED._('modbus.errors.write-refused', { detail, who }), status: { fill: 'red', shape: 'dot', text: RED._('modbus.status.refused') } };
    }
    const failed = Object.entries(outcome.results).filter(([, r]) => r.status !== 'ok' && r.status !== 'not-sent');
    const notSent = Object.entries(outcome.results).filter(([, r]) => r.status === 'not-sent').map(([name]) => name);
    const detail = failed.map(([name, r]) => `${name}: ${r.error}`).join('; ');
    const [, first] = failed[0];
    const kind = first.status === 'failed' ? first.code ?? 'error' : first.status;
    return {
      error: RED._('modbus.errors.write-failed', { detail, notSent: notSent.length ? notSent.join(', ') : '-' }),
      status: { fill: 'red', shape: 'dot', text: failureText(kind, first.exceptionCode) },
    };
  }

  function ModbusWriteNode(this: Node & LinkUser, config: WriteDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let linkState: ConnectionState = 'idle';
    let lastResult: NodeStatus | undefined;
    const showStatus = () => node.status(unitNodeStatus(linkState, lastResult));
    node.onLinkState = (state) => {
      linkState = state;
      showStatus();
    };

    const setUp = setUpUnitNode<WritePlan>(node, config, (metrics) => buildWritePlan(metrics, {
      multipleOnly: config.multipleOnly === true,
      allowRaw: config.allowRaw === true,
      unknownMetrics: config.unknownMetrics,
    }));
    if (!setUp) return;
    const { link, unitId, plan } = setUp;

    const client = link.register(node);
    const writer = new ModbusWriter({ client, unitId, plan, readBefore: config.readBefore === true });
    writer.on('written', (e: WriteLogEntry) => {
      // One line per write (audit): unit, metric, address, old → new, outcome, who sent it.
      const line = RED._('modbus.log.write', {
        unit: e.unitId, metric: e.name, table: e.table, address: e.address, fc: e.fc, old: logValue(e.old), value: logValue(e.written),
        outcome: e.status === 'ok' ? 'ok' : `${e.status}: ${e.error}`, who: e.who ?? '-',
      });
      if (e.status === 'ok') node.log(line);
      else node.warn(line);
    });

    node.on('input', (msg: NodeMessageInFlow & { command?: unknown; ok?: boolean; retain?: unknown }, send, done) => {
      const who = senderOf(msg);
      if (msg.retain === true) {
        // A value the broker replayed from its retained store is state, never a command (T-RPL-02).
        node.warn(RED._('modbus.log.retained', { who }));
        done(new Error(RED._('modbus.errors.retained')));
        return;
      }
      writer.write(msg.payload, who).then((outcome) => {
        const count = Object.values(outcome.results).filter((r) => r.status === 'ok').length;
        // A command refused before anything was sent (not a number, unknown metric, out of range)
        // is logged too, with who sent it: done(error) below writes it (and Catch nodes get it).
        const failure = outcome.ok ? undefined : describeFailure(outcome, who);
        lastResult = failure?.status ?? { fill: 'green', shape: 'dot', text: RED._('modbus.status.written', { count }) };
        showStatus();
        msg.command = msg.payload;
        msg.payload = outcome.results;
        msg.ok = outcome.ok;
        send(msg);
        if (failure) done(new Error(failure.error));
        else done();
      }, (error: Error) => done(error));
    });

    node.on('close', (done: () => void) => {
      writer.close();
      writer.removeAllListeners();
      link.deregister(node).then(() => done(), () => done());
    });
  }

  // "Test connection / read once" of the link dialog: the dialog's unsaved settings, one read, a
  // temporary client that is closed again (lib/modbus/probe.ts). Editing a link needs write permission.
  // `${NAME}` values are substituted as the runtime does at deploy: from the deployed link's flow
  // (its Environment Variables, then the process's) when the dialog names a deployed link, else
  // from the process's environment.
  let probesRunning = 0;
  RED.httpAdmin.post('/uns-modbus-link/test', RED.auth.needsPermission('uns-modbus-link.write'), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (probesRunning >= MAX_PROBES) {
      res.status(429).json({ ok: false, kind: 'busy', error: RED._('modbus.errors.probe-busy', { max: MAX_PROBES }) });
      return;
    }
    probesRunning++;
    const target = {
      unitId: configNumber(body.unitId, 1),
      table: (typeof body.table === 'string' && body.table ? body.table : 'holding') as ModbusTable,
      address: configNumber(body.address, 0),
    };
    const deployed = typeof body.id === 'string' ? RED.nodes.getNode(body.id) : null;
    const settings = linkSettingsFrom(substituteEnvironment(body, (name) => RED.util.getSetting(deployed as Node, name)));
    probeLink(settings, target).then(
      (result) => res.status(!result.ok && result.kind === 'invalid' ? 400 : 200).json(result),
      (error: Error) => res.status(500).json({ ok: false, kind: 'error', error: error.message }),
    ).finally(() => {
      probesRunning--;
    });
  });
  RED.httpAdmin.get('/uns-modbus-link/serial-ports', RED.auth.needsPermission('uns-modbus-link.read'), (_req, res) => {
    listSerialPorts().then(
      (ports) => res.json({ ok: true, ports }),
      (error: Error) => res.status(500).json({ ok: false, error: error.message }),
    );
  });

  RED.nodes.registerType('uns-modbus-link', ModbusLinkNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
  RED.nodes.registerType('uns-modbus-read', ModbusReadNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
  RED.nodes.registerType('uns-modbus-write', ModbusWriteNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};
