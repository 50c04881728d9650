/**
 * Node-RED adapter of the Modbus node set: `uns-modbus-link` (config node owning one Modbus TCP
 * client) and `uns-modbus-read` (polls one unit, emits one tag batch per poll). All protocol work is
 * in lib/modbus/; this file reads config, maps events to status()/send() and logs one line per
 * outage. Config property names are documented in docs/modbus.md.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { ConnectionState, createModbusTcpClient, ModbusClient } from '../../lib/modbus/client';
import { ModbusPoller, PollStatus, formatRate } from '../../lib/modbus/poller';
import { buildReadPlan, MetricDefinition, ReadPlan, ReadPlanError } from '../../lib/modbus/read-plan';
import { forgetConnection, reportConnection } from '../../lib/runtime/connection-registry';
import { counter, gauge } from '../../lib/runtime/metrics';

interface LinkDef extends NodeDef {
  host: string;
  port: number | string;
  timeout: number | string;
  reconnect: number | string;
  gap: number | string;
  connectPause: number | string;
  maxRegisters: number | string;
  queueLimit: number | string;
}

interface ReadDef extends NodeDef {
  link: string;
  unitId: number | string;
  interval: number | string;
  topic: string;
  mergeGap: number | string;
  metrics: MetricDefinition[] | string;
}

/** What a user of the link is told: connection state changes. */
interface LinkUser {
  onLinkState(state: ConnectionState): void;
}

interface LinkNode extends Node {
  readonly address: string;
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
}

/** A number from a config field, or the default when empty/invalid. */
function num(value: unknown, fallback: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : fallback;
}

export = function (RED: NodeAPI): void {
  registerLinkMetrics();

  function ModbusLinkNode(this: LinkNode, config: LinkDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const host = (config.host || '').trim();
    const port = num(config.port, 502);
    const options = {
      host,
      port,
      timeoutMs: num(config.timeout, 1000),
      reconnectMinMs: num(config.reconnect, 1000),
      gapMs: num(config.gap, 0),
      pauseAfterConnectMs: num(config.connectPause, 0),
      maxRegistersPerRequest: Math.min(125, Math.max(1, num(config.maxRegisters, 125))),
      queueLimit: Math.max(1, num(config.queueLimit, 1000)),
    };
    const users = new Set<LinkUser>();
    Object.defineProperty(node, 'address', { value: `${host}:${port}` });
    Object.defineProperty(node, 'maxRegisters', { value: options.maxRegistersPerRequest });
    node.client = undefined;
    liveLinks.add(node);

    let lastOutage: string | undefined;
    const fanOut = (state: ConnectionState) => {
      // /healthz and uns_edge_connection_up read this registry (docs/gateway.md).
      const connected = state === 'connected';
      if (connected) lastOutage = undefined;
      reportConnection({ id: node.id, type: 'uns-modbus-link', name: node.name || `modbus://${host}:${port}`, state, connected, detail: lastOutage });
      for (const user of users) user.onLinkState(state);
    };

    node.register = (user) => {
      users.add(user);
      if (!node.client) {
        const client = createModbusTcpClient(options);
        // 'outage' comes before the 'backoff' state change, so the registry gets the reason with it.
        client.on('outage', (e) => {
          lastOutage = e.reason;
          // One log line per outage and one when it ends; never one per request (peers.md §2, MB#89).
          node.warn(RED._('modbus.log.outage', { address: e.address, reason: e.reason }));
        });
        client.on('state', fanOut);
        client.on('restored', (e) => node.log(RED._('modbus.log.restored', { address: e.address, seconds: (e.downMs / 1000).toFixed(1) })));
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

  function ModbusReadNode(this: Node & LinkUser, config: ReadDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const link = RED.nodes.getNode(config.link) as LinkNode | null;
    let linkState: ConnectionState = 'idle';
    let lastPoll: PollStatus | undefined;

    const showStatus = () => {
      if (linkState === 'connecting' || linkState === 'idle') {
        node.status({ fill: 'yellow', shape: 'ring', text: RED._('modbus.status.connecting') });
      } else if (linkState === 'backoff' || linkState === 'closed') {
        node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.disconnected') });
      } else if (!lastPoll) {
        node.status({ fill: 'green', shape: 'ring', text: RED._('modbus.status.connected') });
      } else if (lastPoll.ok) {
        node.status({ fill: 'green', shape: 'dot', text: RED._('modbus.status.polling', { rate: formatRate(lastPoll.pollsPerSecond) }) });
      } else {
        const text = lastPoll.kind === 'exception'
          ? RED._('modbus.status.exception', { code: String(lastPoll.exceptionCode) })
          : RED._(`modbus.status.${lastPoll.kind}`);
        node.status({ fill: 'red', shape: 'dot', text });
      }
    };
    node.onLinkState = (state) => {
      linkState = state;
      if (state !== 'connected') lastPoll = undefined;
      showStatus();
    };

    if (!link) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.no-link') });
      node.error(RED._('modbus.errors.no-link'));
      return;
    }
    const unitId = num(config.unitId, 1);
    if (!Number.isInteger(unitId) || unitId < 0 || unitId > 255) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.invalid') });
      node.error(RED._('modbus.errors.invalid-unit', { unit: String(config.unitId) }));
      return;
    }
    let plan: ReadPlan;
    try {
      const metrics = typeof config.metrics === 'string' ? JSON.parse(config.metrics || '[]') : config.metrics;
      plan = buildReadPlan(metrics ?? [], { maxRegisters: link.maxRegisters, mergeGap: num(config.mergeGap, 8) });
    } catch (error) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('modbus.status.invalid') });
      const detail = error instanceof ReadPlanError ? error.problems.join('; ') : (error as Error).message;
      node.error(RED._('modbus.errors.invalid-metrics', { detail }));
      return;
    }

    const client = link.register(node);
    const poller = new ModbusPoller({ client, unitId, plan, topic: config.topic || '', intervalMs: Math.max(0, num(config.interval, 1000)) });
    poller.on('batch', (batch) => node.send(batch as unknown as Parameters<typeof node.send>[0]));
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

  RED.nodes.registerType('uns-modbus-link', ModbusLinkNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
  RED.nodes.registerType('uns-modbus-read', ModbusReadNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};
