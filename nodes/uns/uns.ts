/**
 * Node-RED adapters of the UNS node set: `uns-broker` (config), `uns-out`, `uns-in`.
 * They only adapt: read config → config node → lib controllers (lib/mqtt, lib/store, lib/uns) →
 * status()/send(). Design and decisions: docs/uns-topics.md, docs/store-and-forward.md.
 */
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { MqttConnection, type ConnectionState, type MessageHandler, type QoS } from '../../lib/mqtt/connection';
import { brokerRules, protocolRefusal, qosRefusal, topicRefusal, type BrokerRules } from '../../lib/mqtt/broker-rules';
import { DiskQueue } from '../../lib/store/disk-queue';
import { StoreAndForward } from '../../lib/store/forwarder';
import { ISA95_DEPTH, topicFilterProblem } from '../../lib/uns/topics';
import { UnsIn } from '../../lib/uns/uns-in';
import { UnsOut, type UnsOutFormat } from '../../lib/uns/uns-out';
import { DEFAULT_LIMITS, TagBatchError } from '../../lib/uns/validate';
import { cutDeepNesting } from '../../lib/uns/nesting';
import type { DeadbandMode } from '../../lib/uns/deadband';
import { counter } from '../../lib/runtime/metrics';
import { mqttPrincipal, type Principal } from '../../lib/principal';
import { forgetConnection, reportConnection } from '../../lib/runtime/connection-registry';
import { BROKER_CREDENTIALS, mqttOptions, num, type BrokerConfig, type BrokerCredentials } from '../common/broker-settings';

// ---- configuration as saved in the flow (property names are part of the flow format) ----

interface UnsBrokerConfig extends NodeDef, BrokerConfig {
  /** 'standard' or 'nats': what the broker refuses (lib/mqtt/broker-rules.ts); absent in older flows. */
  brokerProfile?: string;
  cleanSession: boolean;
  sessionExpiry: string | number;
  storeEnabled: boolean;
  storeDir: string;
  storeMaxMB: string | number;
  storeMaxAgeDays: string | number;
  storeWindow: string | number;
}

interface UnsOutConfig extends NodeDef {
  broker: string;
  topicPrefix: string;
  qos: string | number;
  retain: boolean;
  format: UnsOutFormat;
  deadbandMode: DeadbandMode;
  deadband: string | number;
  maxSilence: string | number;
  rbeCacheSize: string | number;
  maxMetrics: string | number;
  maxValueKiB: string | number;
  badTimestamps: string;
}

interface UnsInConfig extends NodeDef {
  broker: string;
  topics: string;
  shareGroup: string;
  qos: string | number;
  topicPrefix: string;
  assetDepth: string | number;
  mergeWindow: string | number;
}

/** The API uns-out and uns-in use on their uns-broker. */
interface UnsBrokerNode extends Node<BrokerCredentials> {
  register(user: Node): void;
  deregister(user: Node): Promise<void>;
  publish(topic: string, payload: string, qos: QoS, retain: boolean): void;
  subscribe(filter: string, qos: QoS, handler: MessageHandler): void;
  unsubscribe(filter: string, handler: MessageHandler): void;
  /** The status every user shows now. */
  currentStatus(): NodeStatus;
  /** The identity of this connection (client id and username) for msg.principal. */
  principal: Principal;
  /** What the broker refuses beyond the MQTT standard (topic characters, QoS). */
  rules: BrokerRules;
}

/**
 * Why the broker would refuse a topic of this tag batch (its base topic, asset path or a metric
 * name has a character the broker does not allow), or undefined. Malformed batches are left to
 * the batch validation.
 */
function batchTopicRefusal(rules: BrokerRules, prefix: string, msg: NodeMessageInFlow): string | undefined {
  if (rules.forbiddenTopicChars.length === 0) return undefined;
  const { topic, payload } = msg as { topic?: unknown; payload?: unknown };
  if (typeof topic !== 'string') return undefined;
  const base = [prefix, topic].filter((part) => part !== '').join('/');
  const refusal = topicRefusal(rules, base);
  if (refusal !== undefined || typeof payload !== 'object' || payload === null) return refusal;
  for (const name of Object.keys(payload)) {
    const metricRefusal = topicRefusal(rules, `${base}/${name}`);
    if (metricRefusal !== undefined) return metricRefusal;
  }
  return undefined;
}

/** A tag batch the broker would refuse (lib/mqtt/broker-rules.ts): nothing of it is published. */
class BrokerRefusalError extends Error {
  override name = 'BrokerRefusalError';
}

function qosOf(value: string | number | undefined): QoS {
  const qos = num(value, 1);
  return qos === 0 || qos === 2 ? qos : 1;
}

const STATUS_REFRESH_MS = 1000;
const REJECTED_STATUS_MS = 3000;

const rejectedBatches = counter({
  name: 'uns_edge_uns_rejected_batches_total',
  help: 'Tag batches that uns-out rejected as malformed (nothing of them was published)',
  labelNames: ['node'],
});

export = function register(RED: NodeAPI): void {
  // ---------------------------------------------------------------- uns-broker
  function UnsBroker(this: UnsBrokerNode, config: UnsBrokerConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const users = new Set<Node>();
    let connection: MqttConnection | undefined;
    let queue: DiskQueue | undefined;
    let forwarder: StoreAndForward | undefined;
    let refreshTimer: NodeJS.Timeout | undefined;
    let status: NodeStatus = {};
    let lastStatusText = '';
    let lastReason = '';
    const credentials = node.credentials ?? {};
    const defaultClientId = `uns-edge-${node.id}`;
    // mqttOptions() uses the same client id and username for the connection.
    node.principal = mqttPrincipal(config.clientId?.trim() || defaultClientId, credentials.user);
    node.rules = brokerRules(config.brokerProfile);
    const storeDir = config.storeDir?.trim() ||
      join(RED.settings.userDir ?? process.cwd(), 'uns-edge', 'store', node.id.replace(/[^A-Za-z0-9_.-]/g, '_'));

    function setStatus(next: NodeStatus): void {
      const text = `${next.fill}|${next.shape}|${next.text}`;
      if (text === lastStatusText) return;
      lastStatusText = text;
      status = next;
      for (const user of users) user.status(next);
    }

    function refreshStatus(): void {
      forwarder?.exportMetrics();
      const state: ConnectionState = connection?.state ?? 'idle';
      const queued = forwarder?.queuedMessages ?? 0;
      if (state === 'connected') {
        // With a server list, which of its servers is in use.
        const server = connection !== undefined && connection.serverDescriptions.length > 1 ? connection.description : undefined;
        setStatus(queued > 0
          ? { fill: 'green', shape: 'ring', text: RED._('uns.status.draining', { count: queued }) + (server ? ` (${server})` : '') }
          : { fill: 'green', shape: 'dot', text: server ? RED._('uns.status.connected-to', { server }) : RED._('uns.status.connected') });
      } else if (state === 'connecting' && lastReason === '') {
        setStatus({ fill: 'yellow', shape: 'ring', text: RED._('uns.status.connecting') });
      } else if (state === 'connecting' || state === 'backoff') {
        // Retries after an outage keep showing the outage and what is buffered.
        setStatus(queue !== undefined
          ? { fill: 'yellow', shape: 'dot', text: RED._('uns.status.buffering', { count: queued, reason: lastReason }) }
          : { fill: 'red', shape: 'ring', text: RED._('uns.status.disconnected', { reason: lastReason }) });
      } else {
        setStatus({});
      }
    }

    function start(): void {
      let options: ReturnType<typeof mqttOptions>;
      try {
        options = mqttOptions(config, credentials, defaultClientId);
        const refusal = protocolRefusal(node.rules, options.protocolVersion);
        if (refusal !== undefined) throw new Error(refusal);
      } catch (error) {
        node.error(RED._('uns.errors.config', { error: (error as Error).message }));
        setStatus({ fill: 'red', shape: 'ring', text: RED._('uns.status.config-error') });
        return;
      }
      connection = new MqttConnection({
        ...options,
        name: node.id,
        clean: config.cleanSession !== false,
        sessionExpirySec: num(config.sessionExpiry, 0),
      });
      if (config.storeEnabled !== false) {
        try {
          queue = new DiskQueue({
            dir: storeDir,
            maxBytes: Math.max(1, num(config.storeMaxMB, 100)) * 1024 * 1024,
            maxAgeMs: Math.max(0.001, num(config.storeMaxAgeDays, 7)) * 24 * 3600 * 1000,
            warn: (message) => node.warn(message),
            dropped: (reason, count) => forwarder?.countDropped(reason, count),
          });
        } catch (error) {
          node.error(RED._('uns.errors.store', { dir: storeDir, error: (error as Error).message }));
          queue = undefined;
        }
      }
      forwarder = new StoreAndForward(connection, queue, {
        name: node.id,
        windowSize: num(config.storeWindow, 20),
        warn: (message) => node.warn(message),
      });
      const description = connection.description;
      connection.on('state', (state, detail) => {
        if (detail !== undefined) lastReason = detail;
        reportConnection({ id: node.id, type: 'uns-broker', name: node.name || description, state, connected: state === 'connected', detail });
        refreshStatus();
      });
      connection.on('connected', () => {
        lastReason = '';
        refreshStatus();
      });
      connection.on('down', (reason) => {
        node.warn(RED._('uns.log.down', { broker: connection?.description ?? '', reason, store: queue ? RED._('uns.log.buffering') : RED._('uns.log.dropping') }));
      });
      connection.on('up', (outageMs) => {
        node.log(RED._('uns.log.up', { broker: connection?.description ?? '', seconds: (outageMs / 1000).toFixed(1), count: forwarder?.queuedMessages ?? 0 }));
      });
      connection.on('subscribeFailed', (filter, reason) => node.error(RED._('uns.errors.subscribe', { filter, reason })));
      connection.on('subscribed', (filter, granted, afterFailure) => {
        if (afterFailure) node.log(RED._('uns.log.subscribed', { filter }));
        else node.trace(RED._('uns.log.granted', { filter, granted }));
      });
      connection.on('downgraded', (filter, requested, granted) => node.warn(RED._('uns.errors.downgraded', { filter, requested, granted })));
      connection.on('failover', (from, to) => node.log(RED._('uns.log.failover', { from, to, count: forwarder?.queuedMessages ?? 0 })));
      refreshTimer = setInterval(refreshStatus, STATUS_REFRESH_MS);
      connection.start();
    }

    async function stop(): Promise<void> {
      if (refreshTimer !== undefined) clearInterval(refreshTimer);
      refreshTimer = undefined;
      const closing = connection?.close(); // hands unacknowledged publishes to the forwarder first
      forwarder?.close();
      queue?.close();
      connection?.removeAllListeners();
      forgetConnection(node.id);
      connection = undefined;
      forwarder = undefined;
      queue = undefined;
      lastReason = '';
      lastStatusText = '';
      await closing;
    }

    node.register = (user: Node): void => {
      users.add(user);
      if (users.size === 1) start();
      else user.status(status);
    };

    node.deregister = async (user: Node): Promise<void> => {
      users.delete(user);
      if (users.size === 0) await stop();
    };

    node.publish = (topic, payload, qos, retain): void => {
      if (forwarder === undefined) throw new Error(RED._('uns.errors.not-started'));
      forwarder.publish(topic, payload, qos, retain);
    };

    node.subscribe = (filter, qos, handler): void => connection?.subscribe(filter, qos, handler);
    node.unsubscribe = (filter, handler): void => connection?.unsubscribe(filter, handler);
    node.currentStatus = (): NodeStatus => status;

    node.on('close', (_removed: boolean, done: () => void) => {
      users.clear();
      stop().then(done, (error: Error) => {
        node.error(error.message);
        done();
      });
    });
  }

  RED.nodes.registerType('uns-broker', UnsBroker as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: BROKER_CREDENTIALS,
  });

  /** The uns-broker a flow node points at, or undefined (after reporting it). */
  function brokerOf(node: Node, id: string): UnsBrokerNode | undefined {
    const broker = RED.nodes.getNode(id) as UnsBrokerNode | null;
    if (broker === null || typeof broker.register !== 'function') {
      node.error(RED._('uns.errors.no-broker'));
      node.status({ fill: 'red', shape: 'ring', text: RED._('uns.status.no-broker') });
      return undefined;
    }
    return broker;
  }

  // ---------------------------------------------------------------- uns-out
  function UnsOutNode(this: Node, config: UnsOutConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const broker = brokerOf(node, config.broker);
    if (broker === undefined) return;
    let controller: UnsOut;
    try {
      controller = new UnsOut({
        topicPrefix: config.topicPrefix ?? '',
        qos: qosOf(config.qos),
        retain: config.retain !== false,
        format: config.format === 'asset' || config.format === 'both' ? config.format : 'metric',
        deadband: {
          mode: (['change', 'absolute', 'percent'] as const).find((mode) => mode === config.deadbandMode) ?? 'off',
          band: Math.max(0, num(config.deadband, 0)),
          maxSilenceMs: Math.max(0, num(config.maxSilence, 0)) * 1000,
          maxEntries: Math.max(1, num(config.rbeCacheSize, 100000)),
        },
        maxMetrics: num(config.maxMetrics, DEFAULT_LIMITS.maxMetrics),
        maxStringBytes: Math.round(num(config.maxValueKiB, DEFAULT_LIMITS.maxStringBytes / 1024) * 1024),
        timestamps: config.badTimestamps === 'receive-time' ? 'receive-time' : 'reject',
      }, broker.publish);
    } catch (error) {
      node.error(RED._('uns.errors.config', { error: (error as Error).message }));
      node.status({ fill: 'red', shape: 'ring', text: RED._('uns.status.config-error') });
      return;
    }
    const qosProblem = qosRefusal(broker.rules, qosOf(config.qos));
    if (qosProblem !== undefined) {
      node.error(RED._('uns.errors.config', { error: qosProblem }));
      node.status({ fill: 'red', shape: 'ring', text: RED._('uns.status.config-error') });
      return;
    }
    const prefix = (config.topicPrefix ?? '').trim().replace(/^\/+|\/+$/g, '');
    let rejectedTimer: NodeJS.Timeout | undefined;
    const restoreStatus = (): void => {
      rejectedTimer = undefined;
      node.status(broker.currentStatus());
    };
    broker.register(node);

    node.on('input', (msg: NodeMessageInFlow, _send: unknown, done: (error?: Error) => void) => {
      try {
        // Refused before anything is published: the broker would close the connection on it.
        const refusal = batchTopicRefusal(broker.rules, prefix, msg);
        if (refusal !== undefined) throw new BrokerRefusalError(refusal);
        controller.handle(msg);
        done();
      } catch (error) {
        if (error instanceof TagBatchError || error instanceof BrokerRefusalError) {
          rejectedBatches.inc({ node: node.id });
          node.status({ fill: 'red', shape: 'ring', text: RED._('uns.status.rejected') });
          if (rejectedTimer !== undefined) clearTimeout(rejectedTimer);
          rejectedTimer = setTimeout(restoreStatus, REJECTED_STATUS_MS);
          // Catch nodes get a deep copy of msg; a copy of a message nested thousands of levels deep
          // would overflow the stack instead (lib/uns/nesting.ts). The batch is refused and ends here.
          cutDeepNesting(msg);
        }
        done(error as Error); // Node-RED reports it with node.error(error, msg): Catch nodes see it
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      if (rejectedTimer !== undefined) clearTimeout(rejectedTimer);
      rejectedTimer = undefined;
      rejectedBatches.remove({ node: node.id });
      broker.deregister(node).then(done, done);
    });
  }
  RED.nodes.registerType('uns-out', UnsOutNode as unknown as Parameters<NodeAPI['nodes']['registerType']>[1]);

  // ---------------------------------------------------------------- uns-in
  function UnsInNode(this: Node, config: UnsInConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const broker = brokerOf(node, config.broker);
    if (broker === undefined) return;
    const group = config.shareGroup?.trim() ?? '';
    const filters = (config.topics ?? '').split(/[\n,]/).map((line) => line.trim()).filter((line) => line !== '')
      .map((filter) => (group !== '' && !filter.startsWith('$share/') ? `$share/${group}/${filter}` : filter));
    const problems = filters.map((filter) => [filter, topicFilterProblem(filter) ?? topicRefusal(broker.rules, filter)]).filter(([, problem]) => problem !== undefined);
    let controller: UnsIn;
    try {
      if (filters.length === 0) throw new Error(RED._('uns.errors.no-topics'));
      if (problems.length > 0) throw new Error(problems.map(([filter, problem]) => `"${filter}" ${problem}`).join('; '));
      controller = new UnsIn({
        topicPrefix: config.topicPrefix ?? '',
        assetDepth: num(config.assetDepth, ISA95_DEPTH),
        mergeWindowMs: Math.max(0, num(config.mergeWindow, 0)),
        principal: broker.principal,
      }, (batch) => node.send(batch as unknown as NodeMessageInFlow), (message) => node.warn(message));
    } catch (error) {
      node.error(RED._('uns.errors.config', { error: (error as Error).message }));
      node.status({ fill: 'red', shape: 'ring', text: RED._('uns.status.config-error') });
      return;
    }
    const qos = qosOf(config.qos);
    const handler: MessageHandler = (topic, payload, packet) => {
      try {
        controller.handleMessage(topic, payload, packet.retain === true);
      } catch (error) {
        node.error(RED._('uns.errors.receive', { topic, error: (error as Error).message }));
      }
    };
    broker.register(node);
    for (const filter of filters) broker.subscribe(filter, qos, handler);

    node.on('close', (_removed: boolean, done: () => void) => {
      for (const filter of filters) broker.unsubscribe(filter, handler);
      controller.close();
      broker.deregister(node).then(done, done);
    });
  }
  RED.nodes.registerType('uns-in', UnsInNode as unknown as Parameters<NodeAPI['nodes']['registerType']>[1]);
};
