/**
 * Node-RED adapters of the Sparkplug node set: `uns-sparkplug-edge` (config: one Edge Node = one
 * MQTT session), `uns-sparkplug-device` (a device under it) and `uns-sparkplug-host` (a host
 * application with its own MQTT session). They only adapt: read config → lib/sparkplug controllers →
 * status()/send(). Design: docs/sparkplug.md.
 */
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { forgetConnection, reportConnection } from '../../lib/runtime/connection-registry';
import { packageInfo } from '../../lib/runtime/package-info';
import { SparkplugDevice, type DeviceState } from '../../lib/sparkplug/device';
import { SparkplugEdgeNode, type EdgeNodeState } from '../../lib/sparkplug/edge-node';
import { senderOf } from '../../lib/principal';
import { SparkplugHost, pathTemplate, type HostLimits, type HostState, type HostWriteRecord } from '../../lib/sparkplug/host';
import { bdSeqFile, fileSafeName } from '../../lib/sparkplug/sequence';
import { TagBatchError } from '../../lib/uns/validate';
import { BROKER_CREDENTIALS, mqttOptions, num, type BrokerConfig, type BrokerCredentials } from '../common/broker-settings';

// ---- configuration as saved in the flow (property names are part of the flow format) ----

interface EdgeConfig extends NodeDef, BrokerConfig {
  groupId: string;
  edgeNodeId: string;
  primaryHostId: string;
  bdSeqDir: string;
  storeEnabled: boolean;
  storeDir: string;
  storeMaxMB: string | number;
  storeMaxAgeDays: string | number;
}

interface HostConfig extends NodeDef, BrokerConfig {
  hostId: string;
  groups: string;
  devicePath: string;
  nodePath: string;
  reorderTimeout: string | number;
  /** Limits (empty: the default of lib/sparkplug/host.ts DEFAULT_HOST_LIMITS). */
  maxPayloadMB: string | number;
  maxMetricsPerMessage: string | number;
  maxEdgeNodes: string | number;
  maxDevices: string | number;
  maxMetrics: string | number;
}

interface DeviceConfig extends NodeDef {
  edge: string;
  deviceId: string;
  assetPath: string;
  deathOnBadQuality: boolean;
  period: string | number;
  missedPeriods: string | number;
  writable: boolean;
}

/** The API uns-sparkplug-device uses on its uns-sparkplug-edge. */
interface EdgeConfigNode extends Node<BrokerCredentials> {
  /**
   * The edge node controller, started with the first user; undefined after a configuration error.
   * `onEdgeStatus` is called whenever edgeStatus() changes.
   */
  register(user: Node, onEdgeStatus: () => void): SparkplugEdgeNode | undefined;
  deregister(user: Node): Promise<void>;
  /** The edge node's part of every user's status. */
  edgeStatus(): NodeStatus;
}

type RegisterType = Parameters<NodeAPI['nodes']['registerType']>[1];

/** True when the config lists more servers than host:port (the status then names the one in use). */
function hasServerList(config: BrokerConfig): boolean {
  return (config.servers ?? '').trim() !== '';
}

/** The host's limits from its dialog; an empty field keeps the library default. */
function hostLimits(config: HostConfig): Partial<HostLimits> {
  const field = (value: string | number | undefined, scale = 1): number | undefined => {
    const parsed = num(value, Number.NaN);
    return Number.isNaN(parsed) ? undefined : parsed * scale;
  };
  return {
    maxPayloadBytes: field(config.maxPayloadMB, 1024 * 1024),
    maxMetricsPerMessage: field(config.maxMetricsPerMessage),
    maxEdgeNodes: field(config.maxEdgeNodes),
    maxDevices: field(config.maxDevices),
    maxMetrics: field(config.maxMetrics),
  };
}

/** One log line per write asked of the host: who, what, sent or refused (the audit trail). */
function auditLine(record: HostWriteRecord): string {
  const metrics = Object.keys(record.metrics).join(', ');
  const outcome = record.outcome === 'sent' ? 'sent' : `refused (${record.reason ?? ''})`;
  return `write by ${record.who} to ${record.target} [${metrics}]: ${outcome}`;
}

export = function register(RED: NodeAPI): void {
  // ---------------------------------------------------------------- uns-sparkplug-edge
  function SparkplugEdgeConfig(this: EdgeConfigNode, config: EdgeConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    /** "online", or with a server list "online on mqtt://…" (`key` + "-on"). */
    const onServer = (key: string, server: string | undefined): string =>
      (hasServerList(config) && server !== undefined ? RED._(`${key}-on`, { server }) : RED._(key));
    const users = new Map<Node, () => void>();
    const credentials = node.credentials ?? {};
    let edge: SparkplugEdgeNode | undefined;
    let stopping: Promise<void> | undefined;
    let configError: string | undefined;
    let status: NodeStatus = {};

    function edgeStatusOf(state: EdgeNodeState, detail: string | undefined): NodeStatus {
      switch (state) {
        case 'online': return { fill: 'green', shape: 'dot', text: onServer('sparkplug.status.online', edge?.brokerDescription) };
        case 'subscribing': return { fill: 'yellow', shape: 'ring', text: RED._('sparkplug.status.subscribing') };
        case 'waiting-for-host': return { fill: 'yellow', shape: 'dot', text: RED._('sparkplug.status.waiting-for-host', { host: detail ?? '' }) };
        case 'connecting':
          return detail ? { fill: 'red', shape: 'ring', text: RED._('sparkplug.status.disconnected', { reason: detail }) } : { fill: 'yellow', shape: 'ring', text: RED._('sparkplug.status.connecting') };
        default: return {};
      }
    }

    function start(): void {
      try {
        const groupId = config.groupId ?? '';
        const edgeNodeId = config.edgeNodeId ?? '';
        const userDir = RED.settings.userDir ?? process.cwd();
        edge = new SparkplugEdgeNode({
          groupId,
          edgeNodeId,
          primaryHostId: config.primaryHostId?.trim() || undefined,
          // Named for /metrics (uns_edge_mqtt_server_connected, _failovers_total), as uns-broker is.
          mqtt: { ...mqttOptions(config, credentials, `uns-edge-${node.id}`), name: node.id },
          bdSeqFile: bdSeqFile(config.bdSeqDir?.trim() || join(userDir, 'uns-edge', 'sparkplug'), groupId, edgeNodeId),
          store: config.storeEnabled === false ? undefined : {
            // Per edge node descriptor, so a re-created config node finds what its predecessor kept.
            dir: config.storeDir?.trim() || join(userDir, 'uns-edge', 'sparkplug-store', fileSafeName(groupId), fileSafeName(edgeNodeId)),
            maxBytes: Math.max(1, num(config.storeMaxMB, 100)) * 1024 * 1024,
            maxAgeMs: Math.max(0.001, num(config.storeMaxAgeDays, 7)) * 24 * 3600 * 1000,
          },
          software: `uns-edge ${packageInfo().version}`,
          warn: (message) => node.warn(message),
          info: (message) => node.log(message),
        });
      } catch (error) {
        edge = undefined;
        configError = (error as Error).message;
        node.error(`${RED._('sparkplug.errors.config')}: ${configError}`);
        status = { fill: 'red', shape: 'ring', text: RED._('sparkplug.status.config-error') };
        for (const refresh of users.values()) refresh();
        return;
      }
      const name = node.name || `${edge.descriptor} @ ${edge.brokerDescription}`;
      edge.on('state', (state, detail) => {
        status = edgeStatusOf(state, detail);
        reportConnection({ id: node.id, type: 'uns-sparkplug-edge', name, state, connected: state === 'online', detail });
        for (const refresh of users.values()) refresh();
      });
      // A previous session of this edge node may still be saying goodbye (NDEATH, DISCONNECT): the
      // same client id must not connect before it has, or the broker would cut it off mid-way.
      const started = edge;
      if (stopping === undefined) started.start();
      else void stopping.then(() => { if (edge === started) started.start(); });
    }

    /** NDEATH, DISCONNECT; every caller (last user leaving, the config node closing) waits for the same end. */
    function stop(): Promise<void> {
      if (edge !== undefined) {
        stopping = edge.close();
        edge = undefined;
        forgetConnection(node.id);
      }
      return stopping ?? Promise.resolve();
    }

    node.register = (user: Node, onEdgeStatus: () => void): SparkplugEdgeNode | undefined => {
      users.set(user, onEdgeStatus);
      if (edge === undefined && configError === undefined) start();
      return edge;
    };

    node.deregister = async (user: Node): Promise<void> => {
      users.delete(user);
      if (users.size === 0) await stop();
    };

    node.edgeStatus = (): NodeStatus => status;

    node.on('close', (_removed: boolean, done: () => void) => {
      users.clear();
      stop().then(done, (error: Error) => {
        node.error(error.message);
        done();
      });
    });
  }

  RED.nodes.registerType('uns-sparkplug-edge', SparkplugEdgeConfig as unknown as RegisterType, { credentials: BROKER_CREDENTIALS });

  // ---------------------------------------------------------------- uns-sparkplug-device
  function SparkplugDeviceNode(this: Node, config: DeviceConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const edgeConfig = RED.nodes.getNode(config.edge) as EdgeConfigNode | null;
    if (edgeConfig === null || typeof edgeConfig.register !== 'function') {
      node.error(RED._('sparkplug.errors.no-edge'));
      node.status({ fill: 'red', shape: 'ring', text: RED._('sparkplug.status.no-edge') });
      return;
    }
    let refreshStatus = (): void => node.status(edgeConfig.edgeStatus());
    const edge = edgeConfig.register(node, () => refreshStatus());
    if (edge === undefined) {
      node.status(edgeConfig.edgeStatus());
      node.on('close', (_removed: boolean, done: () => void) => {
        edgeConfig.deregister(node).then(done, done);
      });
      return;
    }
    let device: SparkplugDevice;
    try {
      device = new SparkplugDevice(edge, {
        deviceId: config.deviceId ?? '',
        assetPath: config.assetPath?.trim() || undefined,
        deathOnBadQuality: config.deathOnBadQuality !== false,
        staleAfterMs: Math.max(0, num(config.period, 1)) * Math.max(0, num(config.missedPeriods, 0)) * 1000,
        writable: config.writable !== false,
        warn: (message) => node.warn(message),
      });
    } catch (error) {
      node.error(`${RED._('sparkplug.errors.config')}: ${(error as Error).message}`);
      node.status({ fill: 'red', shape: 'ring', text: RED._('sparkplug.status.config-error') });
      node.on('close', (_removed: boolean, done: () => void) => {
        edgeConfig.deregister(node).then(done, done);
      });
      return;
    }

    let deviceState: DeviceState = 'no-data';
    let deviceDetail: string | undefined;
    let rejectedShown = false;
    refreshStatus = (): void => {
      rejectedShown = false;
      if (!edge.online) {
        node.status(edgeConfig.edgeStatus());
        return;
      }
      switch (deviceState) {
        case 'born': node.status({ fill: 'green', shape: 'dot', text: RED._('sparkplug.status.born', { count: device.metricCount }) }); break;
        case 'dead': node.status({ fill: 'red', shape: 'ring', text: RED._('sparkplug.status.dead', { reason: deviceDetail ?? '' }) }); break;
        default: node.status({ fill: 'grey', shape: 'ring', text: RED._('sparkplug.status.no-data') });
      }
    };
    device.on('state', (state, detail) => {
      deviceState = state;
      deviceDetail = detail;
      refreshStatus();
    });
    device.on('write', (command) => node.send(command as unknown as NodeMessageInFlow));
    refreshStatus();

    node.on('input', (msg: NodeMessageInFlow, _send: unknown, done: (error?: Error) => void) => {
      try {
        device.handleBatch(msg);
        if (rejectedShown) refreshStatus();
        done();
      } catch (error) {
        if (error instanceof TagBatchError) {
          node.status({ fill: 'red', shape: 'ring', text: RED._('sparkplug.status.rejected') });
          rejectedShown = true;
        }
        done(error as Error); // reported with node.error(error, msg): Catch nodes see it
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      device.close();
      edgeConfig.deregister(node).then(done, done);
    });
  }
  RED.nodes.registerType('uns-sparkplug-device', SparkplugDeviceNode as unknown as RegisterType);

  // ---------------------------------------------------------------- uns-sparkplug-host
  function SparkplugHostNode(this: Node<BrokerCredentials>, config: HostConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let host: SparkplugHost;
    try {
      host = new SparkplugHost({
        hostId: config.hostId ?? '',
        groups: (config.groups ?? '').split(',').map((group) => group.trim()).filter((group) => group !== ''),
        mqtt: { ...mqttOptions(config, node.credentials ?? {}, `uns-edge-host-${node.id}`), name: node.id },
        assetPath: pathTemplate(config.devicePath?.trim() || '{group}/{edge}/{device}', config.nodePath?.trim() || '{group}/{edge}'),
        reorderTimeoutMs: Math.max(0, num(config.reorderTimeout, 2)) * 1000,
        limits: hostLimits(config),
        audit: (record) => node.log(auditLine(record)),
        warn: (message) => node.warn(message),
        info: (message) => node.log(message),
      });
    } catch (error) {
      node.error(`${RED._('sparkplug.errors.config')}: ${(error as Error).message}`);
      node.status({ fill: 'red', shape: 'ring', text: RED._('sparkplug.status.config-error') });
      return;
    }
    const name = node.name || `${host.hostId} @ ${host.brokerDescription}`;
    host.on('state', (state: HostState, detail) => {
      reportConnection({ id: node.id, type: 'uns-sparkplug-host', name, state, connected: state === 'online', detail });
      switch (state) {
        case 'online': node.status({ fill: 'green', shape: 'dot', text: hasServerList(config) ? RED._('sparkplug.status.host-online-on', { server: host.brokerDescription }) : RED._('sparkplug.status.host-online') }); break;
        case 'subscribing': node.status({ fill: 'yellow', shape: 'ring', text: RED._('sparkplug.status.subscribing') }); break;
        case 'connecting': node.status(detail
          ? { fill: 'red', shape: 'ring', text: RED._('sparkplug.status.disconnected', { reason: detail }) }
          : { fill: 'yellow', shape: 'ring', text: RED._('sparkplug.status.connecting') }); break;
        default: node.status({});
      }
    });
    // Its birth cache, for the UNS explorer (editor-theme/explorer-plugin.ts) to name DATA aliases.
    (node as Node<BrokerCredentials> & { birthMetric?: SparkplugHost['birthMetric'] }).birthMetric = host.birthMetric.bind(host);
    host.on('batch', (batch) => node.send([batch as unknown as NodeMessageInFlow, null]));
    host.on('online', (change) => node.send([null, {
      topic: change.topic,
      payload: { online: change.online, timestamp: change.timestamp },
      sparkplug: { groupId: change.groupId, edgeNodeId: change.edgeNodeId, deviceId: change.deviceId },
    } as unknown as NodeMessageInFlow]));
    host.start();

    node.on('input', (msg: NodeMessageInFlow, _send: unknown, done: (error?: Error) => void) => {
      try {
        host.writeAsset(msg.topic, msg.payload, senderOf(msg));
        done();
      } catch (error) {
        done(error as Error);
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      forgetConnection(node.id);
      host.close().then(done, done);
    });
  }
  RED.nodes.registerType('uns-sparkplug-host', SparkplugHostNode as unknown as RegisterType, { credentials: BROKER_CREDENTIALS });
};
