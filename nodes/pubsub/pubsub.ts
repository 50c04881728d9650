/**
 * Node-RED adapters of OPC UA PubSub JSON over MQTT (docs/pubsub.md):
 *   uns-pubsub-connection (config)  a PubSubConnection: broker, PublisherId, WriterGroup, topic prefix;
 *                                   owns the MQTT connection (reference-counted) whose Will is ua-status Error
 *   uns-pubsub-out                  tag batches → ua-metadata + ua-data (validated first, refused whole)
 *   uns-pubsub-in                   ua-metadata + ua-data → tag batches (refusals warned, damped)
 * The work is in lib/opcua/pubsub-*.ts; these only adapt.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import type { ConnectionState } from '../../lib/mqtt/connection';
import { PubSubConnection } from '../../lib/opcua/pubsub-mqtt';
import { topicLevelProblem } from '../../lib/opcua/pubsub-encoder';
import { mqttPrincipal, type Principal } from '../../lib/principal';
import { tagBatchProblems } from '../../lib/uns/validate';
import { BROKER_CREDENTIALS, mqttOptions, num, type BrokerConfig, type BrokerCredentials } from '../common/broker-settings';

interface ConnectionDef extends NodeDef, BrokerConfig {
  publisherId: string;
  writerGroup: string;
  prefix: string;
  keyFrameCount: string | number;
  keepAlive: string | number;
}

interface ConnectionNode extends Node<BrokerCredentials> {
  /** Undefined when the configuration is invalid (the users show it). */
  pubsub?: PubSubConnection;
  problem?: string;
  principal: Principal;
  prefix: string;
  register(user: Node): void;
  deregister(user: Node): Promise<void>;
  currentStatus(): NodeStatus;
}

interface InDef extends NodeDef {
  connection: string;
  publisherFilter: string;
  maxFields: string | number;
  maxKiB: string | number;
}

/** One log line per distinct problem per minute: a flapping publisher must not flood the log. */
const DAMPING_MS = 60_000;
function damper(node: Node): (key: string, text: string) => void {
  const seen = new Map<string, number>();
  return (key, text) => {
    const now = Date.now();
    const last = seen.get(key);
    if (last !== undefined && now - last < DAMPING_MS) return;
    if (seen.size > 1000) seen.clear();
    seen.set(key, now);
    node.warn(text);
  };
}

export = function (RED: NodeAPI): void {
  function statusOf(state: ConnectionState, detail: string | undefined): NodeStatus {
    switch (state) {
      case 'connected': return { fill: 'green', shape: 'dot', text: RED._('pubsub.status.connected') };
      case 'connecting': return { fill: 'yellow', shape: 'ring', text: RED._('pubsub.status.connecting') };
      case 'backoff': return { fill: 'red', shape: 'ring', text: RED._('pubsub.status.disconnected', { reason: (detail ?? '').slice(0, 60) }) };
      default: return { fill: 'grey', shape: 'ring', text: state };
    }
  }

  // ------------------------------------------------------------ uns-pubsub-connection
  function ConnectionConfig(this: ConnectionNode, config: ConnectionDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const users = new Set<Node>();
    let status: NodeStatus = { fill: 'yellow', shape: 'ring', text: RED._('pubsub.status.connecting') };
    const defaultClientId = `uns-edge-pubsub-${node.id}`;
    const credentials = node.credentials ?? {};
    node.principal = mqttPrincipal(config.clientId?.trim() || defaultClientId, credentials.user);
    node.prefix = config.prefix?.trim() || 'opcua';
    const problems: string[] = [];
    for (const [what, value] of [['PublisherId', config.publisherId ?? ''], ['WriterGroup', config.writerGroup ?? '']] as const) {
      const problem = topicLevelProblem(value.trim());
      if (problem) problems.push(`${what} "${value}" ${problem}`);
    }
    if (node.prefix.split('/').some((l) => topicLevelProblem(l))) problems.push(`topic prefix "${node.prefix}" has an empty level or a wildcard`);
    if (problems.length) {
      node.problem = problems.join('; ');
      node.error(RED._('pubsub.errors.config', { error: node.problem }));
    } else {
      try {
        node.pubsub = new PubSubConnection({
          mqtt: mqttOptions(config, credentials, defaultClientId),
          publisher: {
            publisherId: config.publisherId.trim(),
            writerGroupName: config.writerGroup.trim(),
            prefix: node.prefix,
            keyFrameCount: Math.max(1, Math.round(num(config.keyFrameCount, 10))),
            keepAliveMs: Math.max(1, num(config.keepAlive, 10)) * 1000,
          },
        });
      } catch (error) {
        node.problem = (error as Error).message;
        node.error(RED._('pubsub.errors.config', { error: node.problem }));
      }
    }
    const warn = damper(node);
    node.pubsub?.on('state', (state, detail) => {
      status = statusOf(state, detail);
      for (const user of users) user.status(status);
      if (state === 'backoff' && detail) warn(`down:${detail}`, RED._('pubsub.errors.down', { reason: detail }));
    });
    node.pubsub?.on('warning', (text) => warn(text.slice(0, 80), text));
    node.currentStatus = () => status;
    node.register = (user) => {
      users.add(user);
      user.status(node.problem ? { fill: 'red', shape: 'ring', text: RED._('pubsub.status.invalid') } : status);
      if (users.size === 1) node.pubsub?.start();
    };
    node.deregister = async (user) => {
      users.delete(user);
    };
    node.on('close', (done: () => void) => {
      (node.pubsub?.close() ?? Promise.resolve()).then(() => done(), () => done());
    });
  }
  RED.nodes.registerType('uns-pubsub-connection', ConnectionConfig as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: BROKER_CREDENTIALS,
  });

  function connectionOf(node: Node, id: string): ConnectionNode | undefined {
    const connection = RED.nodes.getNode(id) as ConnectionNode | null;
    if (!connection || typeof connection.register !== 'function') {
      node.status({ fill: 'red', shape: 'ring', text: RED._('pubsub.status.no-connection') });
      node.error(RED._('pubsub.errors.no-connection'));
      return undefined;
    }
    return connection;
  }

  // ------------------------------------------------------------ uns-pubsub-out
  function PubSubOut(this: Node, config: NodeDef & { connection: string }): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const connection = connectionOf(node, config.connection);
    if (!connection) return;
    connection.register(node);
    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      const pubsub = connection.pubsub;
      if (!pubsub) {
        done(new Error(RED._('pubsub.errors.config', { error: connection.problem ?? '' })));
        return;
      }
      const problems = tagBatchProblems(msg);
      if (problems.length) {
        done(new Error(RED._('pubsub.errors.batch', { detail: problems.slice(0, 10).join('; ') })));
        return;
      }
      try {
        if (!pubsub.publish(msg as unknown as Parameters<PubSubConnection['publish']>[0])) node.status({ fill: 'red', shape: 'ring', text: RED._('pubsub.status.dropped', { count: String(pubsub.counters.dropped) }) });
        done();
      } catch (error) {
        done(error as Error); // e.g. more than 65535 assets
      }
    });
    node.on('close', (done: () => void) => {
      connection.deregister(node).then(() => done(), () => done());
    });
  }
  RED.nodes.registerType('uns-pubsub-out', PubSubOut as unknown as Parameters<NodeAPI['nodes']['registerType']>[1]);

  // ------------------------------------------------------------ uns-pubsub-in
  function PubSubIn(this: Node, config: InDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const connection = connectionOf(node, config.connection);
    if (!connection) return;
    const publisher = config.publisherFilter?.trim() || '+';
    if (publisher !== '+' && topicLevelProblem(publisher)) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('pubsub.status.invalid') });
      node.error(RED._('pubsub.errors.config', { error: `publisher "${publisher}" ${topicLevelProblem(publisher)}` }));
      return;
    }
    connection.register(node);
    const pubsub = connection.pubsub;
    if (!pubsub) return;
    const warn = damper(node);
    const limits = { maxFields: Math.max(1, Math.round(num(config.maxFields, 10_000))), maxBytes: Math.max(1, num(config.maxKiB, 1024)) * 1024 };
    const onBatch = (batch: Parameters<Parameters<PubSubConnection['subscribe']>[1]>[0]) => {
      const problems = tagBatchProblems(batch);
      if (problems.length) {
        warn(`batch:${batch.topic}`, RED._('pubsub.errors.refused', { topic: batch.topic, detail: problems.slice(0, 5).join('; ') }));
        return;
      }
      // Who sent it: the identity this connection vouches for (as uns-in does), never one from the message.
      node.send({ ...batch, principal: { ...connection.principal } } as unknown as NodeMessageInFlow);
    };
    const onProblem = (problem: string, topic: string) => warn(`${topic}:${problem.slice(0, 60)}`, RED._('pubsub.errors.refused', { topic, detail: problem }));
    const unsubscribe = pubsub.subscribe(['metadata', 'data'].map((kind) => `${connection.prefix}/json/${kind}/${publisher}/#`), onBatch, onProblem, limits);
    node.on('close', (done: () => void) => {
      unsubscribe();
      connection.deregister(node).then(() => done(), () => done());
    });
  }
  RED.nodes.registerType('uns-pubsub-in', PubSubIn as unknown as Parameters<NodeAPI['nodes']['registerType']>[1]);
};
