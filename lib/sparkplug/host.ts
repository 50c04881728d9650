/**
 * A Sparkplug B 3.0 Host Application (Sparkplug 3.0 §5.4–5.6, §5.9): it bridges edge nodes into the
 * plain UNS as tag batches (docs/tag-batch.md), keeps their online state, and sends NCMD/DCMD writes.
 *
 *   connecting ─CONNACK─▶ subscribing ─SUBACKs─▶ online (STATE birth published)
 *       (Will: retained STATE     (own STATE and the
 *        online:false, ts T)       chosen groups, QoS 1)   STATE {online:true, timestamp: T}
 *   close(): STATE {online:false, timestamp: now} (retained), then DISCONNECT
 *
 * Per edge node it keeps the NBIRTH/DBIRTH alias and datatype maps, checks seq (0…255, one counter
 * per node), and asks for a rebirth (NCMD `Node Control/Rebirth`) when it cannot make sense of what
 * arrives: DATA or DBIRTH before an NBIRTH, an unknown alias, an undecodable payload, a seq gap not
 * filled within the reorder timeout — at most once per node per `rebirthIntervalMs`.
 */
import { EventEmitter } from 'node:events';
import { MqttConnection, type MqttConnectionOptions, type WillMessage } from '../mqtt/connection';
import type { MetricMeta, MetricValue as TagValue, Quality, TagBatch } from '../uns/tag-batch';
import { DataType, dataTypeName, isArrayType, type Uint64 } from './datatypes';
import { decodePayload, encodePayload, metricValue, type DecodedMetric, type DecodedPayload, type Metric } from './payload';
import { ThrottledWarning } from './throttled-warning';
import { NAMESPACE, checkSparkplugId, deviceTopic, nodeTopic, parseTopic, stateTopic } from './topics';

export type HostState = 'idle' | 'connecting' | 'subscribing' | 'online' | 'closing' | 'closed';

export interface HostOptions {
  hostId: string;
  /** Sparkplug groups to subscribe to; empty: all (`spBv1.0/#`). */
  groups: string[];
  mqtt: Omit<MqttConnectionOptions, 'clean' | 'sessionExpirySec' | 'will'>;
  /** UNS path of a node's or device's metrics; see `pathTemplate()`. */
  assetPath: (groupId: string, edgeNodeId: string, deviceId: string | undefined) => string;
  /** How long a seq gap may stay open before a rebirth is requested (ms). Default 2000. */
  reorderTimeoutMs?: number;
  /** Shortest time between two rebirth requests to the same edge node (ms). Default 5000. */
  rebirthIntervalMs?: number;
  warn: (message: string) => void;
  info: (message: string) => void;
  now?: () => number;
}

/** Online state of an edge node or one of its devices, as the host sees it. */
export interface NodeStateChange {
  groupId: string;
  edgeNodeId: string;
  deviceId?: string;
  /** UNS path of the node or device. */
  topic: string;
  online: boolean;
  /** When it changed: BIRTH/DDEATH payload time, or the host's receipt time of an NDEATH. */
  timestamp: number;
}

export interface HostEvents {
  state: [state: HostState, detail: string | undefined];
  /** A tag batch; `historical` when its metrics had is_historical set (values for history, not current). */
  batch: [batch: TagBatch & { historical?: boolean }];
  /** An edge node or device went online or offline. */
  online: [change: NodeStateChange];
}

interface BirthMetric {
  name: string;
  datatype: number;
}

interface DeviceRecord {
  online: boolean;
  byAlias: Map<string, BirthMetric>;
  byName: Map<string, { alias?: Uint64; datatype: number }>;
}

interface EdgeRecord {
  groupId: string;
  edgeNodeId: string;
  online: boolean;
  bdSeq: string | undefined;
  lastSeq: number | undefined;
  /** Messages that arrived ahead of a seq gap, by seq. */
  held: Map<number, () => void>;
  gapTimer: NodeJS.Timeout | undefined;
  /** Waiting for an NBIRTH after a rebirth request: DATA is ignored until then. */
  awaitingBirth: boolean;
  lastRebirthRequest: number;
  node: DeviceRecord;
  devices: Map<string, DeviceRecord>;
}

/** Sparkplug Quality property → tag batch quality (192 good, 0 bad, 500 stale → uncertain). */
function qualityOf(metric: DecodedMetric): Quality | undefined {
  const properties = metric.properties;
  if (!properties) return undefined;
  const i = properties.keys.indexOf('Quality');
  if (i < 0) return undefined;
  const code = Number(properties.values[i]?.value);
  return code === 192 ? 'good' : code === 0 ? 'bad' : 'uncertain';
}

function unitOf(metric: DecodedMetric): string | undefined {
  const properties = metric.properties;
  const i = properties ? properties.keys.indexOf('engUnit') : -1;
  const value = i >= 0 ? properties!.values[i]?.value : undefined;
  return typeof value === 'string' ? value : undefined;
}

const TAG_TYPES = new Set(['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float', 'Double', 'Boolean', 'String', 'DateTime', 'Text', 'Bytes']);

/**
 * An asset path function from a template with {group}, {edge} and {device}; a node's own metrics
 * (no device) use `nodeTemplate`. Levels that come out empty are left out.
 */
export function pathTemplate(deviceTemplate: string, nodeTemplate: string): HostOptions['assetPath'] {
  return (groupId, edgeNodeId, deviceId) => (deviceId === undefined ? nodeTemplate : deviceTemplate)
    .replace(/\{group\}/g, groupId).replace(/\{edge\}/g, edgeNodeId).replace(/\{device\}/g, deviceId ?? '')
    .split('/').filter((level) => level !== '').join('/');
}

export class SparkplugHost extends EventEmitter<HostEvents> {
  readonly hostId: string;
  private stateValue: HostState = 'idle';
  private readonly connection: MqttConnection;
  private readonly edges = new Map<string, EdgeRecord>();
  private readonly filters: string[];
  private pending = new Set<string>();
  /** The timestamp of the Will of the CONNECT in flight; the STATE birth repeats it. */
  private connectTimestamp = 0;
  private closing: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly reorderTimeoutMs: number;
  private readonly rebirthIntervalMs: number;
  private readonly badInput: ThrottledWarning;
  private readonly ownState: string;

  /** Throws SparkplugIdError for an invalid host id or group. */
  constructor(private readonly options: HostOptions) {
    super();
    this.hostId = checkSparkplugId('host id', options.hostId);
    for (const group of options.groups) checkSparkplugId('group id', group);
    this.now = options.now ?? Date.now;
    this.reorderTimeoutMs = options.reorderTimeoutMs ?? 2000;
    this.rebirthIntervalMs = options.rebirthIntervalMs ?? 5000;
    this.badInput = new ThrottledWarning(options.warn, 10000, this.now);
    this.ownState = stateTopic(this.hostId);
    this.filters = options.groups.length === 0 ? [`${NAMESPACE}/#`] : options.groups.map((group) => `${NAMESPACE}/${group}/#`);
    this.connection = new MqttConnection({
      ...options.mqtt,
      // [tck-id-message-flow-phid-sparkplug-clean-session-311] [tck-id-message-flow-phid-sparkplug-clean-session-50]
      clean: true,
      sessionExpirySec: 0,
      will: () => this.will(),
    });
    this.connection.on('state', (state, detail) => {
      if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
      if (state === 'connecting' || state === 'backoff') this.setState('connecting', detail);
    });
    this.connection.on('connected', () => {
      this.pending = new Set([this.ownState, ...this.filters]);
      this.setState('subscribing', undefined);
    });
    this.connection.on('subscribed', (filter) => this.onSubscribed(filter));
    this.connection.on('subscribeFailed', (filter, reason) => {
      options.warn(`broker refused the subscription to ${filter} (${reason})`);
      this.onSubscribed(filter);
    });
    this.connection.on('down', (reason) => options.warn(`Sparkplug host ${this.hostId} lost ${this.connection.description}: ${reason}`));
    this.connection.on('up', (ms) => options.info(`Sparkplug host ${this.hostId} reconnected after ${(ms / 1000).toFixed(1)} s`));
    // [tck-id-host-topic-phid-birth-sub-required]: its own STATE and the Sparkplug topics, QoS 1.
    this.connection.subscribe(this.ownState, 1, (_topic, payload) => this.onOwnState(payload));
    for (const filter of this.filters) this.connection.subscribe(filter, 1, (topic, payload) => this.onMessage(topic, payload));
  }

  get state(): HostState {
    return this.stateValue;
  }

  get brokerDescription(): string {
    return this.connection.description;
  }

  start(): void {
    this.connection.start();
  }

  /**
   * Write metrics of a node (deviceId undefined) or device: an NCMD/DCMD by alias when the BIRTH
   * gave aliases, with the BIRTH's datatype. Throws when the node/device or a metric is not known.
   */
  write(groupId: string, edgeNodeId: string, deviceId: string | undefined, values: Record<string, TagValue>): void {
    const edge = this.edges.get(`${groupId}/${edgeNodeId}`);
    const record = deviceId === undefined ? edge?.node : edge?.devices.get(deviceId);
    const label = deviceId === undefined ? `edge node ${groupId}/${edgeNodeId}` : `device ${groupId}/${edgeNodeId}/${deviceId}`;
    if (!edge || !record || !record.online) throw new Error(`${label} is not online`);
    const metrics: Metric[] = [];
    const timestamp = this.now();
    for (const name of Object.keys(values)) {
      const known = record.byName.get(name);
      if (!known) throw new Error(`${label} has no metric "${name}" in its BIRTH`);
      const value = known.datatype === DataType.Bytes && typeof values[name] === 'string' ? Buffer.from(values[name] as string, 'base64') : values[name];
      // [tck-id-payloads-alias-data-cmd-requirement]: the alias when there is one, else the name.
      metrics.push({ ...(known.alias !== undefined ? { alias: known.alias } : { name }), timestamp, datatype: known.datatype, value });
    }
    const topic = deviceId === undefined ? nodeTopic(groupId, 'NCMD', edgeNodeId) : deviceTopic(groupId, 'DCMD', edgeNodeId, deviceId);
    // [tck-id-topics-ncmd-mqtt] QoS 0, not retained; [tck-id-payloads-ncmd-seq] no seq; datatype left out like DATA.
    this.publish(topic, encodePayload({ timestamp, metrics }, { omitDatatypes: true }));
  }

  /**
   * Write by UNS path (the write command shape of uns-modbus-write: `{topic, payload: {metric: value}}`):
   * the node or device whose asset path is `topic`. Throws when none is known (no BIRTH seen).
   */
  writeAsset(topic: string, values: Record<string, TagValue>): void {
    for (const edge of this.edges.values()) {
      if (this.options.assetPath(edge.groupId, edge.edgeNodeId, undefined) === topic) return this.write(edge.groupId, edge.edgeNodeId, undefined, values);
      for (const deviceId of edge.devices.keys()) {
        if (this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId) === topic) return this.write(edge.groupId, edge.edgeNodeId, deviceId, values);
      }
    }
    throw new Error(`no Sparkplug edge node or device with the asset path "${topic}" has been born`);
  }

  /** Ask an edge node for all its births again (NCMD `Node Control/Rebirth`, by name). */
  requestRebirth(groupId: string, edgeNodeId: string): void {
    this.publish(nodeTopic(groupId, 'NCMD', edgeNodeId), encodePayload({
      timestamp: this.now(),
      // [tck-id-operational-behavior-data-commands-ncmd-rebirth-name] [tck-id-operational-behavior-data-commands-ncmd-rebirth-value]
      metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }],
    }));
  }

  /** STATE offline (retained, QoS 1, timestamp now) before the DISCONNECT; clears every timer. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasOnline = this.connection.connected;
      this.setState('closing', undefined);
      for (const edge of this.edges.values()) this.clearGap(edge);
      if (wasOnline) {
        // [tck-id-operational-behavior-host-application-termination]
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          this.connection.publish(this.ownState, JSON.stringify({ online: false, timestamp: this.now() }), 1, true, () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      await this.connection.close();
      this.connection.removeAllListeners();
      this.setState('closed', undefined);
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- STATE

  /** [tck-id-host-topic-phid-death-payload]: retained JSON {online:false, timestamp: CONNECT time}, QoS 1. */
  private will(): WillMessage {
    this.connectTimestamp = this.now();
    return { topic: this.ownState, payload: Buffer.from(JSON.stringify({ online: false, timestamp: this.connectTimestamp })), qos: 1, retain: true };
  }

  private onSubscribed(filter: string): void {
    if (this.stateValue !== 'subscribing' || !this.pending.delete(filter) || this.pending.size > 0) return;
    this.publishBirth();
  }

  /** [tck-id-host-topic-phid-birth-message]: online, with the Will's timestamp [tck-id-host-topic-phid-birth-payload-timestamp]. */
  private publishBirth(): void {
    this.setState('online', undefined);
    this.connection.publish(this.ownState, JSON.stringify({ online: true, timestamp: this.connectTimestamp }), 1, true, noop);
  }

  /** [tck-id-message-flow-hid-sparkplug-state-message-delivered]: someone says we are offline; we are not. */
  private onOwnState(payload: Buffer): void {
    if (this.stateValue !== 'online') return;
    try {
      const state = JSON.parse(payload.toString()) as { online?: unknown };
      if (state.online === false) this.publishBirth();
    } catch {
      // not a 3.0 STATE; nothing to correct
    }
  }

  // ---------------------------------------------------------------- Sparkplug messages

  private onMessage(topic: string, bytes: Buffer): void {
    const parsed = parseTopic(topic);
    if (parsed === undefined || parsed.kind === 'state') return;
    if (parsed.type === 'NCMD' || parsed.type === 'DCMD') return; // commands of hosts, ours included
    const key = `${parsed.groupId}/${parsed.edgeNodeId}`;
    let edge = this.edges.get(key);
    if (edge === undefined) {
      edge = { groupId: parsed.groupId, edgeNodeId: parsed.edgeNodeId, online: false, bdSeq: undefined, lastSeq: undefined, held: new Map(), gapTimer: undefined, awaitingBirth: false, lastRebirthRequest: Number.NEGATIVE_INFINITY, node: newDevice(), devices: new Map() };
      this.edges.set(key, edge);
    }
    let payload: DecodedPayload;
    try {
      payload = decodePayload(bytes);
    } catch (error) {
      this.badInput.warn(`${topic}: not a Sparkplug B payload (${(error as Error).message})`);
      if (parsed.type !== 'NDEATH') this.rebirth(edge, 'an undecodable message');
      return;
    }
    const deviceId = parsed.kind === 'device' ? parsed.deviceId : undefined;
    switch (parsed.type) {
      case 'NBIRTH': this.onNodeBirth(edge, payload); return;
      case 'NDEATH': this.onNodeDeath(edge, payload); return;
      default: this.sequenced(edge, payload, () => this.onSequenced(edge, parsed.type, deviceId!, payload));
    }
  }

  private onNodeBirth(edge: EdgeRecord, payload: DecodedPayload): void {
    this.clearGap(edge);
    edge.awaitingBirth = false;
    edge.bdSeq = String(payload.metrics.find((m) => m.name === 'bdSeq')?.value ?? '');
    edge.lastSeq = payload.seq === undefined ? undefined : Number(payload.seq);
    edge.node = birthRecord(payload);
    for (const device of edge.devices.values()) device.online = false;
    edge.online = true;
    this.emitOnline(edge, undefined, true, Number(payload.timestamp ?? this.now()));
    this.emitBatch(edge, undefined, edge.node, payload.metrics.filter((m) => m.name !== 'bdSeq' && m.name !== 'Node Control/Rebirth'), payload);
  }

  /**
   * [tck-id-operational-behavior-edge-node-termination-host-action-ndeath-node-offline]: only an NDEATH
   * whose bdSeq matches the NBIRTH's ends the node (a late Will of an older session is ignored); its
   * devices go offline with it, at the host's receipt time.
   */
  private onNodeDeath(edge: EdgeRecord, payload: DecodedPayload): void {
    const bdSeq = String(payload.metrics.find((m) => m.name === 'bdSeq')?.value ?? '');
    if (!edge.online || bdSeq !== edge.bdSeq) return;
    this.clearGap(edge);
    edge.online = false;
    const at = this.now();
    for (const [deviceId, device] of edge.devices) {
      if (!device.online) continue;
      device.online = false;
      this.emitOnline(edge, deviceId, false, at);
    }
    this.emitOnline(edge, undefined, false, at);
  }

  /**
   * seq check (one counter per edge node): a message ahead of the expected seq is held, and the gap
   * gets reorderTimeoutMs to fill [tck-id-operational-behavior-host-reordering-start]; when it fills,
   * the held messages run in order [tck-id-operational-behavior-host-reordering-success]; if not, a
   * rebirth is requested [tck-id-operational-behavior-host-reordering-rebirth].
   */
  private sequenced(edge: EdgeRecord, payload: DecodedPayload, handle: () => void): void {
    if (!edge.online || edge.awaitingBirth) {
      this.rebirth(edge, 'DATA or a DBIRTH without a current NBIRTH');
      return;
    }
    const seq = payload.seq === undefined ? undefined : Number(payload.seq);
    const expected = edge.lastSeq === undefined ? undefined : (edge.lastSeq + 1) % 256;
    if (seq === undefined || expected === undefined || seq === expected) {
      edge.lastSeq = seq;
      handle();
      this.drainHeld(edge);
      return;
    }
    if (edge.held.size >= 255 || edge.held.has(seq)) {
      this.rebirth(edge, `seq ${seq} again while waiting for ${expected}`);
      return;
    }
    edge.held.set(seq, handle);
    edge.gapTimer ??= setTimeout(() => {
      edge.gapTimer = undefined;
      edge.held.clear();
      this.rebirth(edge, `seq gap: ${expected} did not arrive within ${this.reorderTimeoutMs} ms`);
    }, this.reorderTimeoutMs);
  }

  private drainHeld(edge: EdgeRecord): void {
    for (;;) {
      const next = (edge.lastSeq! + 1) % 256;
      const handle = edge.held.get(next);
      if (handle === undefined) break;
      edge.held.delete(next);
      edge.lastSeq = next;
      handle();
    }
    if (edge.held.size === 0) this.clearGap(edge);
  }

  private clearGap(edge: EdgeRecord): void {
    if (edge.gapTimer !== undefined) clearTimeout(edge.gapTimer);
    edge.gapTimer = undefined;
    edge.held.clear();
  }

  private onSequenced(edge: EdgeRecord, type: string, deviceId: string, payload: DecodedPayload): void {
    switch (type) {
      case 'DBIRTH': {
        const device = birthRecord(payload);
        edge.devices.set(deviceId, device);
        this.emitOnline(edge, deviceId, true, Number(payload.timestamp ?? this.now()));
        this.emitBatch(edge, deviceId, device, payload.metrics, payload);
        return;
      }
      case 'DDEATH': {
        const device = edge.devices.get(deviceId);
        if (!device?.online) return;
        device.online = false;
        // [tck-id-operational-behavior-edge-node-termination-host-action-ddeath-devices-offline]: at the DDEATH's timestamp.
        this.emitOnline(edge, deviceId, false, Number(payload.timestamp ?? this.now()));
        return;
      }
      case 'NDATA':
        this.emitBatch(edge, undefined, edge.node, payload.metrics, payload);
        return;
      default: { // DDATA
        const device = edge.devices.get(deviceId);
        if (!device?.online) {
          this.rebirth(edge, `DDATA of device "${deviceId}" without its DBIRTH`);
          return;
        }
        this.emitBatch(edge, deviceId, device, payload.metrics, payload);
      }
    }
  }

  /** Tag batches of the metrics: one with the current values, one with the historical ones. */
  private emitBatch(edge: EdgeRecord, deviceId: string | undefined, record: DeviceRecord, metrics: DecodedMetric[], payload: DecodedPayload): void {
    const live: TagBatch = { topic: this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId), payload: {}, meta: {} };
    const history: TagBatch & { historical: true } = { topic: live.topic, payload: {}, meta: {}, historical: true };
    if (typeof payload.timestamp === 'number') live.timestamp = history.timestamp = payload.timestamp;
    for (const metric of metrics) {
      const birth = metric.alias !== undefined ? record.byAlias.get(String(metric.alias)) : metric.name !== undefined ? { name: metric.name, datatype: record.byName.get(metric.name)?.datatype ?? metric.datatype ?? DataType.Unknown } : undefined;
      if (birth === undefined) {
        this.rebirth(edge, `unknown alias ${String(metric.alias)}`);
        return;
      }
      let value: TagValue;
      try {
        const read = metricValue(metric, metric.datatype ?? birth.datatype);
        if (read !== null && typeof read === 'object' && !(read instanceof Uint8Array)) continue; // arrays, DataSets, Templates: no tag value form
        value = read instanceof Uint8Array ? Buffer.from(read).toString('base64') : read as TagValue;
      } catch (error) {
        this.badInput.warn(`${edge.groupId}/${edge.edgeNodeId}${deviceId ? `/${deviceId}` : ''}: metric "${birth.name}" skipped: ${(error as Error).message}`);
        continue;
      }
      const target = metric.isHistorical ? history : live;
      target.payload[birth.name] = value;
      const meta: MetricMeta = {};
      if (typeof metric.timestamp === 'number') meta.timestamp = metric.timestamp;
      const type = dataTypeName(birth.datatype);
      if (TAG_TYPES.has(type) && !isArrayType(birth.datatype)) meta.type = type as MetricMeta['type'];
      const quality = qualityOf(metric);
      if (quality !== undefined) meta.quality = quality;
      const unit = unitOf(metric);
      if (unit !== undefined) meta.unit = unit;
      target.meta![birth.name] = meta;
    }
    if (Object.keys(history.payload).length > 0) this.emit('batch', history);
    if (Object.keys(live.payload).length > 0) this.emit('batch', live);
  }

  private emitOnline(edge: EdgeRecord, deviceId: string | undefined, online: boolean, timestamp: number): void {
    this.emit('online', {
      groupId: edge.groupId, edgeNodeId: edge.edgeNodeId, deviceId,
      topic: this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId), online, timestamp,
    });
  }

  /** Ask for a rebirth, at most once per rebirthIntervalMs per edge node; DATA is ignored until the NBIRTH. */
  private rebirth(edge: EdgeRecord, why: string): void {
    this.clearGap(edge);
    edge.awaitingBirth = true;
    const now = this.now();
    if (now - edge.lastRebirthRequest < this.rebirthIntervalMs || !this.connection.connected) return;
    edge.lastRebirthRequest = now;
    this.options.info(`Sparkplug host ${this.hostId}: rebirth requested from ${edge.groupId}/${edge.edgeNodeId} (${why})`);
    this.requestRebirth(edge.groupId, edge.edgeNodeId);
  }

  private publish(topic: string, payload: Buffer): void {
    if (!this.connection.connected) throw new Error(`Sparkplug host ${this.hostId} is not connected`);
    this.connection.publish(topic, payload, 0, false, noop);
  }

  private setState(state: HostState, detail: string | undefined): void {
    if (this.stateValue === state && detail === undefined) return;
    this.stateValue = state;
    this.emit('state', state, detail);
  }
}

function newDevice(): DeviceRecord {
  return { online: false, byAlias: new Map(), byName: new Map() };
}

function birthRecord(payload: DecodedPayload): DeviceRecord {
  const record: DeviceRecord = { online: true, byAlias: new Map(), byName: new Map() };
  for (const metric of payload.metrics) {
    if (metric.name === undefined || metric.datatype === undefined) continue;
    if (metric.alias !== undefined) record.byAlias.set(String(metric.alias), { name: metric.name, datatype: metric.datatype });
    record.byName.set(metric.name, { alias: metric.alias, datatype: metric.datatype });
  }
  return record;
}

function noop(): void {
  // QoS 0 publishes and the STATE birth: nothing to wait for.
}
