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
 * filled within the reorder timeout — at most once per node per `rebirthIntervalMs`; a request the
 * limit holds back is sent when the limit allows, and an NBIRTH that answers a request resets it.
 *
 * Any client of the broker can publish on spBv1.0/#, so what a host keeps is bounded
 * (`HostLimits`, docs/sparkplug.md "Limits"): a payload's size and metric count are checked before
 * it is decoded (the count by walking protobuf field tags, stopping at the limit), a large payload
 * is decoded a slice per event-loop turn, and edge nodes, devices and known metrics are capped.
 * What is over a limit is refused whole, kept nowhere, with one warning per edge node per interval.
 */
import { EventEmitter } from 'node:events';
import { MqttConnection, type MqttConnectionOptions, type WillMessage } from '../mqtt/connection';
import type { MetricMeta, MetricValue as TagValue, Quality, TagBatch } from '../uns/tag-batch';
import { DataType, dataTypeName, isArrayType, type Uint64 } from './datatypes';
import { PayloadDecoder, countMetrics, encodePayload, metricValue, type DecodedMetric, type DecodedPayload, type Metric } from './payload';
import { ThrottledWarning } from './throttled-warning';
import { NAMESPACE, checkSparkplugId, deviceTopic, nodeTopic, parseTopic, stateTopic, type ParsedTopic } from './topics';

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
  /** Bounds on what the host keeps and decodes; each missing one has its DEFAULT_HOST_LIMITS value. */
  limits?: Partial<HostLimits>;
  /** Bad input of one edge node is warned about at most once per this interval (ms), the rest counted. Default 10000. */
  warningIntervalMs?: number;
  /** Every write asked of the host (sent or refused), with who asked: the audit trail. */
  audit?: (record: HostWriteRecord) => void;
  warn: (message: string) => void;
  info: (message: string) => void;
  now?: () => number;
}

/**
 * What one host keeps at most. Over a limit, a BIRTH (or a DATA message) is refused whole and
 * nothing of it is kept; the edge node gets a warning (one per warningIntervalMs).
 */
export interface HostLimits {
  /** Largest Sparkplug payload decoded (bytes); checked before decoding. */
  maxPayloadBytes: number;
  /** Most metrics in one BIRTH or DATA message, Template members included; counted before decoding. */
  maxMetricsPerMessage: number;
  /** Most edge nodes known at once; an offline one makes room for a new one. */
  maxEdgeNodes: number;
  /** Most devices known at once, over all edge nodes. */
  maxDevices: number;
  /** Most metrics known at once (from BIRTHs), over all edge nodes and devices. */
  maxMetrics: number;
}

/**
 * Defaults for a gateway (docs/sparkplug.md "Limits"): a BIRTH of 10,000 metrics is a very large PLC
 * and about 0.5–1 MB on the wire; 1,000 edge nodes and 10,000 devices are more than a site sends
 * to one gateway; 200,000 known metrics take about 60 MB of heap, inside the gateway's RSS budget.
 */
export const DEFAULT_HOST_LIMITS: Readonly<HostLimits> = {
  maxPayloadBytes: 4 * 1024 * 1024,
  maxMetricsPerMessage: 10000,
  maxEdgeNodes: 1000,
  maxDevices: 10000,
  maxMetrics: 200000,
};

/**
 * A payload of more metrics than this is decoded and turned into a tag batch in steps of this many
 * metrics, spread over event-loop turns so that one turn does at most SLICE_MS of such work.
 */
const METRICS_PER_STEP = 250;
const SLICE_MS = 8;
/** Messages held while a large payload is being decoded; beyond it they are dropped (warned, counted). */
const INBOX_LIMIT = 10000;

/** One write asked of the host, for the audit trail. */
export interface HostWriteRecord {
  /** Who asked (senderOf(msg) of the write command). */
  who: string;
  /** The UNS path the write named, or group/edge[/device]. */
  target: string;
  metrics: Record<string, TagValue>;
  outcome: 'sent' | 'refused';
  reason?: string;
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

/** A BIRTH that cannot be taken: why, and whether a new BIRTH could cure it (then a rebirth is asked for). */
class BirthRefused extends Error {
  constructor(message: string, readonly askRebirth: boolean) {
    super(message);
  }
}

/** The alias and name maps of a BIRTH, built a step at a time; a duplicate alias or name refuses it. */
class BirthBuilder {
  readonly record: DeviceRecord = { online: true, byAlias: new Map(), byName: new Map() };
  refusal: BirthRefused | undefined;
  private next = 0;

  constructor(private readonly metrics: DecodedMetric[]) {}

  get done(): boolean {
    return this.refusal !== undefined || this.next >= this.metrics.length;
  }

  /** Take up to `count` more metrics; true when done. */
  step(count: number): boolean {
    const { byAlias, byName } = this.record;
    const end = Math.min(this.metrics.length, this.next + count);
    for (; this.next < end && this.refusal === undefined; this.next++) {
      const metric = this.metrics[this.next];
      if (metric.name === undefined || metric.datatype === undefined) continue;
      if (byName.has(metric.name)) {
        this.refusal = new BirthRefused(`metric "${metric.name}" appears twice`, true);
        break;
      }
      if (metric.alias !== undefined) {
        const alias = String(metric.alias);
        const other = byAlias.get(alias);
        if (other !== undefined) {
          this.refusal = new BirthRefused(`alias ${alias} names both "${other.name}" and "${metric.name}"`, true);
          break;
        }
        byAlias.set(alias, { name: metric.name, datatype: metric.datatype });
      }
      byName.set(metric.name, { alias: metric.alias, datatype: metric.datatype });
    }
    return this.done;
  }
}

/**
 * The tag batches of a message's metrics, built a step at a time: one with the current values, one
 * with the historical ones. Each value is read with its BIRTH's datatype; one that does not fit it (a
 * String in a Double metric, a DATA metric that names another datatype) becomes null with quality
 * bad and the reason (listed in `problems`). A metric the BIRTH does not name stops it (`unknown`).
 */
class BatchBuilder {
  readonly live: TagBatch;
  readonly history: TagBatch & { historical: true };
  readonly problems: [name: string, problem: string][] = [];
  unknown: string | undefined;
  private next = 0;

  constructor(topic: string, readonly record: DeviceRecord, private readonly metrics: DecodedMetric[], payload: DecodedPayload) {
    this.live = { topic, payload: {}, meta: {} };
    this.history = { topic, payload: {}, meta: {}, historical: true };
    if (typeof payload.timestamp === 'number') this.live.timestamp = this.history.timestamp = payload.timestamp;
  }

  /** Take up to `count` more metrics; true when done. */
  step(count: number): boolean {
    const end = Math.min(this.metrics.length, this.next + count);
    for (; this.next < end && this.unknown === undefined; this.next++) this.add(this.metrics[this.next]);
    return this.unknown !== undefined || this.next >= this.metrics.length;
  }

  private add(metric: DecodedMetric): void {
    const birth = metric.alias !== undefined ? this.record.byAlias.get(String(metric.alias)) : metric.name !== undefined ? birthByName(this.record, metric.name) : undefined;
    if (birth === undefined) {
      this.unknown = metric.alias !== undefined ? `unknown alias ${String(metric.alias)}` : `metric "${metric.name ?? '(no name, no alias)'}" not in its BIRTH`;
      return;
    }
    let value: TagValue;
    let problem: string | undefined;
    if (metric.datatype !== undefined && metric.datatype !== birth.datatype) {
      problem = `it says ${dataTypeName(metric.datatype)}, its BIRTH ${dataTypeName(birth.datatype)}`;
      value = null;
    } else {
      try {
        const read = metricValue(metric, birth.datatype);
        if (read !== null && typeof read === 'object' && !(read instanceof Uint8Array)) return; // arrays, DataSets, Templates: no tag value form
        value = read instanceof Uint8Array ? Buffer.from(read).toString('base64') : read as TagValue;
      } catch (error) {
        problem = (error as Error).message;
        value = null;
      }
    }
    const target = metric.isHistorical ? this.history : this.live;
    target.payload[birth.name] = value;
    const meta: MetricMeta = {};
    if (typeof metric.timestamp === 'number') meta.timestamp = metric.timestamp;
    const type = dataTypeName(birth.datatype);
    if (TAG_TYPES.has(type) && !isArrayType(birth.datatype)) meta.type = type as MetricMeta['type'];
    const quality = qualityOf(metric);
    if (quality !== undefined) meta.quality = quality;
    const unit = unitOf(metric);
    if (unit !== undefined) meta.unit = unit;
    if (problem !== undefined) {
      meta.quality = 'bad';
      meta.reason = `value does not fit its datatype: ${problem}`;
      this.problems.push([birth.name, problem]);
    }
    target.meta![birth.name] = meta;
  }
}

/** What prepare() computed for a message, stepped before it is handled. */
interface Prepared {
  birth?: BirthBuilder;
  readonly batch?: BatchBuilder;
  /** Up to `count` more metrics of work; true when done. */
  step(count: number): boolean;
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
  /** A rebirth request the rate limit holds back, sent when it allows. */
  rebirthTimer: NodeJS.Timeout | undefined;
  /** Why its last NBIRTH was refused (over a limit): its messages are dropped, without rebirth requests, until a new NBIRTH. */
  refused: string | undefined;
  /** A DBIRTH of this session was refused: DDATA of devices without a DBIRTH is dropped, not answered with a rebirth request. */
  devicesRefused: boolean;
  node: DeviceRecord;
  devices: Map<string, DeviceRecord>;
  /** Bad input from this edge node: one warning per interval. */
  warning: ThrottledWarning;
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
  readonly limits: Readonly<HostLimits>;
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
  private readonly warningIntervalMs: number;
  /** Bad input that belongs to no known edge node (over the edge node limit, a full inbox). */
  private readonly badInput: ThrottledWarning;
  private readonly ownState: string;
  /** Devices and BIRTH metrics kept, over all edge nodes (the limits count them). */
  private deviceCount = 0;
  private metricCount = 0;
  /** Messages that arrived while a large payload was being decoded, in arrival order. */
  private readonly inbox: { topic: string; bytes: Buffer }[] = [];
  /** The next slice of a large payload being decoded. */
  private slice: NodeJS.Immediate | undefined;

  /** Throws SparkplugIdError for an invalid host id or group, RangeError for a limit that is not a positive number. */
  constructor(private readonly options: HostOptions) {
    super();
    this.hostId = checkSparkplugId('host id', options.hostId);
    for (const group of options.groups) checkSparkplugId('group id', group);
    this.limits = { ...DEFAULT_HOST_LIMITS, ...definedOnly(options.limits ?? {}) };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!(typeof value === 'number' && value >= 1)) throw new RangeError(`Sparkplug host limit ${name} must be a number ≥ 1, got ${String(value)}`);
    }
    this.now = options.now ?? Date.now;
    this.reorderTimeoutMs = options.reorderTimeoutMs ?? 2000;
    this.rebirthIntervalMs = options.rebirthIntervalMs ?? 5000;
    this.warningIntervalMs = options.warningIntervalMs ?? 10000;
    this.badInput = new ThrottledWarning(options.warn, this.warningIntervalMs, this.now);
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

  /** What the host keeps now: the quantities HostLimits bound. */
  census(): { edgeNodes: number; devices: number; metrics: number } {
    return { edgeNodes: this.edges.size, devices: this.deviceCount, metrics: this.metricCount };
  }

  start(): void {
    this.connection.start();
  }

  /**
   * The BIRTH name and datatype of a metric alias of an edge node (deviceId undefined) or device, as
   * this host knows it now; for read-only viewers (the UNS explorer, docs/explorer.md).
   */
  birthMetric(groupId: string, edgeNodeId: string, deviceId: string | undefined, alias: string): { name: string; datatype: number } | undefined {
    const edge = this.edges.get(`${groupId}/${edgeNodeId}`);
    const metric = (deviceId === undefined ? edge?.node : edge?.devices.get(deviceId))?.byAlias.get(alias);
    return metric === undefined ? undefined : { name: metric.name, datatype: metric.datatype };
  }

  /**
   * Write metrics of a node (deviceId undefined) or device: an NCMD/DCMD by alias when the BIRTH
   * gave aliases, with the BIRTH's datatype. Throws when the node/device or a metric is not known.
   * `who` (senderOf the write command) goes into the audit record, sent or refused.
   */
  write(groupId: string, edgeNodeId: string, deviceId: string | undefined, values: Record<string, TagValue>, who = 'unknown'): void {
    const label = deviceId === undefined ? `${groupId}/${edgeNodeId}` : `${groupId}/${edgeNodeId}/${deviceId}`;
    this.audited(who, label, values, () => this.send(groupId, edgeNodeId, deviceId, values));
  }

  /**
   * Write by UNS path (the write command shape of uns-modbus-write: `{topic, payload: {metric: value}}`,
   * as it comes in a message): the node or device whose asset path is `topic`. Throws when the
   * command is malformed or none is known (no BIRTH seen); either way it is audited.
   */
  writeAsset(topic: unknown, payload: unknown, who = 'unknown'): void {
    const values = isRecord(payload) ? payload as Record<string, TagValue> : {};
    this.audited(who, typeof topic === 'string' ? topic : '(no topic)', values, () => {
      if (typeof topic !== 'string' || !isRecord(payload)) throw new Error('a write needs msg.topic (the asset path) and msg.payload {metric: value}');
      for (const edge of this.edges.values()) {
        if (this.options.assetPath(edge.groupId, edge.edgeNodeId, undefined) === topic) return this.send(edge.groupId, edge.edgeNodeId, undefined, values);
        for (const deviceId of edge.devices.keys()) {
          if (this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId) === topic) return this.send(edge.groupId, edge.edgeNodeId, deviceId, values);
        }
      }
      throw new Error(`no Sparkplug edge node or device with the asset path "${topic}" has been born`);
    });
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
      for (const edge of this.edges.values()) this.clearTimers(edge);
      if (this.slice !== undefined) clearImmediate(this.slice);
      this.slice = undefined;
      this.inbox.length = 0;
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

  // ---------------------------------------------------------------- writes

  private audited(who: string, target: string, values: Record<string, TagValue>, write: () => void): void {
    try {
      write();
    } catch (error) {
      this.options.audit?.({ who, target, metrics: values, outcome: 'refused', reason: (error as Error).message });
      throw error;
    }
    this.options.audit?.({ who, target, metrics: values, outcome: 'sent' });
  }

  private send(groupId: string, edgeNodeId: string, deviceId: string | undefined, values: Record<string, TagValue>): void {
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

  /** Messages are handled in arrival order; while a large payload is decoded slice by slice, the rest wait in the inbox. */
  private onMessage(topic: string, bytes: Buffer): void {
    if (this.slice !== undefined || this.inbox.length > 0) {
      if (this.inbox.length >= INBOX_LIMIT) {
        this.badInput.warn(`Sparkplug host ${this.hostId}: ${INBOX_LIMIT} messages waiting behind a large payload; ${topic} dropped`);
        return;
      }
      this.inbox.push({ topic, bytes });
      return;
    }
    this.receive(topic, bytes);
  }

  /** Handle inbox messages until one starts a sliced decode (it resumes the inbox when done). */
  private drainInbox(): void {
    while (this.slice === undefined && this.inbox.length > 0) {
      const next = this.inbox.shift()!;
      this.receive(next.topic, next.bytes);
    }
  }

  private receive(topic: string, bytes: Buffer): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    const parsed = parseTopic(topic);
    if (parsed === undefined || parsed.kind === 'state') return;
    if (parsed.type === 'NCMD' || parsed.type === 'DCMD') return; // commands of hosts, ours included
    const edge = this.edgeFor(parsed.groupId, parsed.edgeNodeId);
    if (edge === undefined) return;
    if (edge.refused !== undefined && parsed.type !== 'NBIRTH') return; // until a BIRTH within the limits
    if (bytes.length > this.limits.maxPayloadBytes) {
      this.refuse(edge, parsed, `${bytes.length} bytes, more than the limit of ${this.limits.maxPayloadBytes}`);
      return;
    }
    let metrics: number;
    try {
      metrics = countMetrics(bytes, this.limits.maxMetricsPerMessage);
    } catch (error) {
      this.undecodable(edge, topic, parsed, error as Error);
      return;
    }
    if (metrics > this.limits.maxMetricsPerMessage) {
      this.refuse(edge, parsed, `more than the limit of ${this.limits.maxMetricsPerMessage} metrics`);
      return;
    }
    // Decode, then build the BIRTH's maps and the tag batch, a step at a time; then handle it at once.
    const decoder = new PayloadDecoder(bytes);
    let prepared: Prepared | undefined;
    const step = (): boolean => {
      if (prepared === undefined) {
        if (!decoder.next(METRICS_PER_STEP)) return false;
        prepared = this.prepare(edge, parsed, decoder.payload);
      }
      return prepared.step(METRICS_PER_STEP);
    };
    const finish = (): void => {
      // The edge node may have been dropped for room while the payload was prepared over several turns.
      if (this.edges.get(edgeKey(edge)) === edge) this.handle(edge, parsed, decoder.payload, prepared!);
    };
    this.sliced(step, finish, (error) => this.undecodable(edge, topic, parsed, error), metrics <= METRICS_PER_STEP);
  }

  /**
   * Run `step` until it returns true, then `finish`; after SLICE_MS of steps in one turn, go on in the
   * next (`setImmediate`), the inbox holding what arrives meanwhile. `now`: start in this turn.
   */
  private sliced(step: () => boolean, finish: () => void, failed: (error: Error) => void, now: boolean): void {
    const run = (): void => {
      this.slice = undefined;
      const until = performance.now() + SLICE_MS;
      try {
        for (;;) {
          if (step()) break;
          if (performance.now() >= until) {
            this.slice = setImmediate(run);
            return;
          }
        }
      } catch (error) {
        failed(error as Error);
        this.drainInbox();
        return;
      }
      finish();
      this.drainInbox();
    };
    if (now) run();
    else this.slice = setImmediate(run);
  }

  /**
   * What can be computed for a message before it is handled: a BIRTH's alias and name maps, then its
   * tag batch; DATA's tag batch with the BIRTH maps known now (rebuilt at handling time if a BIRTH
   * handled in between replaced them).
   */
  private prepare(edge: EdgeRecord, parsed: MessageTopic, payload: DecodedPayload): Prepared {
    const deviceId = parsed.kind === 'device' ? parsed.deviceId : undefined;
    switch (parsed.type) {
      case 'NBIRTH': case 'DBIRTH': {
        const birth = new BirthBuilder(payload.metrics);
        const metrics = parsed.type === 'NBIRTH' ? payload.metrics.filter((m) => m.name !== 'bdSeq' && m.name !== 'Node Control/Rebirth') : payload.metrics;
        let batch: BatchBuilder | undefined;
        return {
          birth,
          get batch() { return batch; },
          step: (count) => {
            if (!birth.done) return birth.step(count) && birth.refusal !== undefined;
            batch ??= new BatchBuilder(this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId), birth.record, metrics, payload);
            return batch.step(count);
          },
        };
      }
      case 'NDATA': case 'DDATA': {
        const record = deviceId === undefined ? edge.node : edge.devices.get(deviceId);
        const batch = record === undefined ? undefined : new BatchBuilder(this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId), record, payload.metrics, payload);
        return { batch, step: (count) => batch === undefined || batch.step(count) };
      }
      default:
        return { step: () => true };
    }
  }

  /**
   * The record of an edge node; a new one when there is room (an offline edge node makes room for a
   * new one, the longest known first). Undefined, with a warning, when every known edge node is online.
   */
  private edgeFor(groupId: string, edgeNodeId: string): EdgeRecord | undefined {
    const key = `${groupId}/${edgeNodeId}`;
    const known = this.edges.get(key);
    if (known !== undefined) return known;
    if (this.edges.size >= this.limits.maxEdgeNodes) {
      const idle = [...this.edges.values()].find((edge) => !edge.online);
      if (idle === undefined) {
        this.badInput.warn(`Sparkplug host ${this.hostId}: edge node ${key} ignored: ${this.limits.maxEdgeNodes} edge nodes are online, the limit`);
        return undefined;
      }
      this.forget(idle);
    }
    const edge: EdgeRecord = {
      groupId, edgeNodeId, online: false, bdSeq: undefined, lastSeq: undefined, held: new Map(), gapTimer: undefined,
      awaitingBirth: false, lastRebirthRequest: Number.NEGATIVE_INFINITY, rebirthTimer: undefined, refused: undefined, devicesRefused: false,
      node: newDevice(), devices: new Map(), warning: new ThrottledWarning(this.options.warn, this.warningIntervalMs, this.now),
    };
    this.edges.set(key, edge);
    return edge;
  }

  private forget(edge: EdgeRecord): void {
    this.clearTimers(edge);
    this.dropDevices(edge);
    this.metricCount -= edge.node.byName.size;
    this.edges.delete(edgeKey(edge));
  }

  private undecodable(edge: EdgeRecord, topic: string, parsed: MessageTopic, error: Error): void {
    edge.warning.warn(`${topic}: not a Sparkplug B payload (${error.message})`);
    if (parsed.type !== 'NDEATH') this.rebirth(edge, 'an undecodable message');
  }

  /**
   * A message over a limit. A BIRTH over it is refused with the edge node's or device's session (the
   * host keeps nothing of it) and no rebirth is asked for: the edge node would send the same again.
   */
  private refuse(edge: EdgeRecord, parsed: MessageTopic, why: string): void {
    const what = parsed.kind === 'device' ? `${parsed.type} of device ${edgeKey(edge)}/${parsed.deviceId}` : `${parsed.type} of edge node ${edgeKey(edge)}`;
    switch (parsed.type) {
      case 'NBIRTH':
        this.refuseNode(edge, `${what} refused: ${why}`, true);
        return;
      case 'DBIRTH':
        this.refuseDevice(edge, parsed.deviceId, `${what} refused: ${why}`);
        this.resyncSeq(edge, parsed);
        return;
      default:
        edge.warning.warn(`${what} dropped: ${why}`);
        this.resyncSeq(edge, parsed);
    }
  }

  /**
   * A DBIRTH or DATA refused without reading it also leaves its seq unread: the next message's seq
   * is taken as it comes (refusing on purpose is no loss, and a rebirth request would only bring
   * the same message again).
   */
  private resyncSeq(edge: EdgeRecord, parsed: MessageTopic): void {
    if (parsed.type === 'NBIRTH' || parsed.type === 'NDEATH') return;
    this.clearGap(edge);
    edge.lastSeq = undefined;
  }

  /**
   * The node's session ends here: offline, its devices forgotten. Over a limit (`overLimit`) its
   * messages are then dropped until an NBIRTH within the limits; else a rebirth request follows.
   */
  private refuseNode(edge: EdgeRecord, message: string, overLimit: boolean): void {
    edge.warning.warn(overLimit ? `${message}; its data is ignored until an NBIRTH within the host's limits` : `${message}; asking for a rebirth`);
    this.clearTimers(edge);
    const wasOnline = edge.online;
    edge.online = false;
    edge.awaitingBirth = false;
    edge.refused = overLimit ? message : undefined;
    const at = this.now();
    const offline = [...edge.devices].filter(([, device]) => device.online).map(([deviceId]) => deviceId);
    this.dropDevices(edge);
    this.replaceNode(edge, newDevice());
    for (const deviceId of offline) this.emitOnline(edge, deviceId, false, at);
    if (wasOnline) this.emitOnline(edge, undefined, false, at);
  }

  private refuseDevice(edge: EdgeRecord, deviceId: string, message: string): void {
    edge.warning.warn(`${message}; its data is ignored until its next DBIRTH`);
    edge.devicesRefused = true;
    const device = edge.devices.get(deviceId);
    if (device === undefined) return;
    this.dropDevice(edge, deviceId, device);
    if (device.online) this.emitOnline(edge, deviceId, false, this.now());
  }

  private handle(edge: EdgeRecord, parsed: MessageTopic, payload: DecodedPayload, prepared: Prepared): void {
    switch (parsed.type) {
      case 'NBIRTH': this.onNodeBirth(edge, payload, prepared); return;
      case 'NDEATH': this.onNodeDeath(edge, payload); return;
      default: {
        const deviceId = parsed.kind === 'device' ? parsed.deviceId : undefined;
        this.sequenced(edge, payload, () => this.onSequenced(edge, parsed.type, deviceId!, payload, prepared));
      }
    }
  }

  /**
   * An NBIRTH starts a new session of the node: its devices are forgotten until their DBIRTHs. One
   * without bdSeq ([tck-id-topics-nbirth-bdseq-included]; an empty payload, say) is not a birth and
   * changes nothing; one with a duplicate alias or name is refused and a rebirth asked for.
   */
  private onNodeBirth(edge: EdgeRecord, payload: DecodedPayload, prepared: Prepared): void {
    const bdSeq = payload.metrics.find((m) => m.name === 'bdSeq')?.value;
    if (bdSeq === undefined) {
      edge.warning.warn(`NBIRTH of edge node ${edgeKey(edge)} ignored: it has no bdSeq metric (${payload.metrics.length} metrics), so it is not a birth certificate`);
      return;
    }
    const refusal = this.birthRefusal(prepared.birth!, edge.node.byName.size + [...edge.devices.values()].reduce((sum, device) => sum + device.byName.size, 0));
    if (refusal !== undefined) {
      this.refuseNode(edge, `NBIRTH of edge node ${edgeKey(edge)} refused: ${refusal.message}`, !refusal.askRebirth);
      if (refusal.askRebirth) this.rebirth(edge, refusal.message);
      return;
    }
    const node = prepared.birth!.record;
    this.clearGap(edge);
    if (edge.awaitingBirth) {
      // It answers our request: the next request need not wait for the rate limit.
      edge.lastRebirthRequest = Number.NEGATIVE_INFINITY;
      if (edge.rebirthTimer !== undefined) clearTimeout(edge.rebirthTimer);
      edge.rebirthTimer = undefined;
    }
    edge.awaitingBirth = false;
    edge.refused = undefined;
    edge.devicesRefused = false;
    edge.bdSeq = String(bdSeq);
    edge.lastSeq = payload.seq === undefined ? undefined : Number(payload.seq);
    const offline = [...edge.devices].filter(([, device]) => device.online).map(([deviceId]) => deviceId);
    this.dropDevices(edge);
    this.replaceNode(edge, node);
    edge.online = true;
    const at = Number(payload.timestamp ?? this.now());
    for (const deviceId of offline) this.emitOnline(edge, deviceId, false, at);
    this.emitOnline(edge, undefined, true, at);
    this.emitBatch(edge, undefined, prepared.batch!);
  }

  /**
   * Why a BIRTH cannot be taken: a duplicate alias or name found while its maps were built
   * ([tck-id-payloads-alias-uniqueness]: a metric could not be told apart; a rebirth may cure it), or
   * the host's metric limit (`released`: the metrics of what the birth replaces).
   */
  private birthRefusal(birth: BirthBuilder, released: number): BirthRefused | undefined {
    if (birth.refusal !== undefined) return birth.refusal;
    const room = this.limits.maxMetrics - (this.metricCount - released);
    if (birth.record.byName.size <= room) return undefined;
    return new BirthRefused(`${birth.record.byName.size} metrics would pass the host's limit of ${this.limits.maxMetrics} known metrics`, false);
  }

  private replaceNode(edge: EdgeRecord, node: DeviceRecord): void {
    this.metricCount += node.byName.size - edge.node.byName.size;
    edge.node = node;
  }

  private dropDevice(edge: EdgeRecord, deviceId: string, device: DeviceRecord): void {
    edge.devices.delete(deviceId);
    this.deviceCount--;
    this.metricCount -= device.byName.size;
  }

  private dropDevices(edge: EdgeRecord): void {
    for (const [deviceId, device] of edge.devices) this.dropDevice(edge, deviceId, device);
  }

  /**
   * [tck-id-operational-behavior-edge-node-termination-host-action-ndeath-node-offline]: only an NDEATH
   * whose bdSeq matches the NBIRTH's ends the node (a late Will of an older session is ignored); its
   * devices go offline with it, at the host's receipt time.
   */
  private onNodeDeath(edge: EdgeRecord, payload: DecodedPayload): void {
    const bdSeq = String(payload.metrics.find((m) => m.name === 'bdSeq')?.value ?? '');
    if (!edge.online || bdSeq !== edge.bdSeq) return;
    this.clearTimers(edge);
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
      if (edge.lastSeq === undefined || !edge.online || edge.awaitingBirth) break; // a handler may have asked for a rebirth
      const next = (edge.lastSeq + 1) % 256;
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

  private clearTimers(edge: EdgeRecord): void {
    this.clearGap(edge);
    if (edge.rebirthTimer !== undefined) clearTimeout(edge.rebirthTimer);
    edge.rebirthTimer = undefined;
  }

  private onSequenced(edge: EdgeRecord, type: string, deviceId: string, payload: DecodedPayload, prepared: Prepared): void {
    switch (type) {
      case 'DBIRTH': {
        const previous = edge.devices.get(deviceId);
        if (previous === undefined && this.deviceCount >= this.limits.maxDevices) {
          this.refuseDevice(edge, deviceId, `DBIRTH of device ${edgeKey(edge)}/${deviceId} refused: the host knows ${this.limits.maxDevices} devices, the limit`);
          return;
        }
        const refusal = this.birthRefusal(prepared.birth!, previous?.byName.size ?? 0);
        if (refusal !== undefined) {
          this.refuseDevice(edge, deviceId, `DBIRTH of device ${edgeKey(edge)}/${deviceId} refused: ${refusal.message}`);
          if (refusal.askRebirth) this.rebirth(edge, refusal.message);
          return;
        }
        const device = prepared.birth!.record;
        if (previous !== undefined) this.dropDevice(edge, deviceId, previous);
        edge.devices.set(deviceId, device);
        this.deviceCount++;
        this.metricCount += device.byName.size;
        this.emitOnline(edge, deviceId, true, Number(payload.timestamp ?? this.now()));
        this.emitBatch(edge, deviceId, prepared.batch!);
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
        this.emitBatch(edge, undefined, this.current(prepared, edge, undefined, edge.node, payload));
        return;
      default: { // DDATA
        const device = edge.devices.get(deviceId);
        if (!device?.online) {
          if (!edge.devicesRefused) this.rebirth(edge, `DDATA of device "${deviceId}" without its DBIRTH`);
          return;
        }
        this.emitBatch(edge, deviceId, this.current(prepared, edge, deviceId, device, payload));
      }
    }
  }

  /** The prepared batch when it was built with `record`; else built now (a BIRTH handled since replaced the maps). */
  private current(prepared: Prepared, edge: EdgeRecord, deviceId: string | undefined, record: DeviceRecord, payload: DecodedPayload): BatchBuilder {
    if (prepared.batch?.record === record) return prepared.batch;
    const batch = new BatchBuilder(this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId), record, payload.metrics, payload);
    batch.step(Number.POSITIVE_INFINITY);
    return batch;
  }

  /**
   * The tag batches a BatchBuilder made (history first); a metric its BIRTH does not name stops
   * the message and asks for a rebirth; each bad-quality metric is warned about (damped).
   */
  private emitBatch(edge: EdgeRecord, deviceId: string | undefined, batch: BatchBuilder): void {
    if (batch.unknown !== undefined) {
      this.rebirth(edge, batch.unknown);
      return;
    }
    for (const [name, problem] of batch.problems) edge.warning.warn(`${edgeKey(edge)}${deviceId ? `/${deviceId}` : ''}: metric "${name}" is bad quality: ${problem}`);
    if (Object.keys(batch.history.payload).length > 0) this.emit('batch', batch.history);
    if (Object.keys(batch.live.payload).length > 0) this.emit('batch', batch.live);
  }

  private emitOnline(edge: EdgeRecord, deviceId: string | undefined, online: boolean, timestamp: number): void {
    this.emit('online', {
      groupId: edge.groupId, edgeNodeId: edge.edgeNodeId, deviceId,
      topic: this.options.assetPath(edge.groupId, edge.edgeNodeId, deviceId), online, timestamp,
    });
  }

  /**
   * Ask for a rebirth; DATA is ignored until the NBIRTH. At most one request per rebirthIntervalMs
   * per edge node: one the limit holds back is sent as soon as it allows (and logged as waiting).
   */
  private rebirth(edge: EdgeRecord, why: string): void {
    this.clearGap(edge);
    edge.awaitingBirth = true;
    if (edge.rebirthTimer !== undefined || !this.connection.connected) return;
    const wait = edge.lastRebirthRequest + this.rebirthIntervalMs - this.now();
    if (wait > 0) {
      this.options.info(`Sparkplug host ${this.hostId}: rebirth of ${edgeKey(edge)} needed (${why}); waiting ${wait} ms for the rebirth rate limit`);
      edge.rebirthTimer = setTimeout(() => {
        edge.rebirthTimer = undefined;
        if (edge.awaitingBirth && this.edges.get(edgeKey(edge)) === edge) this.rebirth(edge, why);
      }, wait);
      return;
    }
    edge.lastRebirthRequest = this.now();
    this.options.info(`Sparkplug host ${this.hostId}: rebirth requested from ${edgeKey(edge)} (${why})`);
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

/** A node or device message topic (STATE is handled apart). */
type MessageTopic = Exclude<ParsedTopic, { kind: 'state' }>;

function edgeKey(edge: EdgeRecord): string {
  return `${edge.groupId}/${edge.edgeNodeId}`;
}

function birthByName(record: DeviceRecord, name: string): BirthMetric | undefined {
  const known = record.byName.get(name);
  return known === undefined ? undefined : { name, datatype: known.datatype };
}

/** An object of any JS realm (a function node's sandbox too), not an array. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function newDevice(): DeviceRecord {
  return { online: false, byAlias: new Map(), byName: new Map() };
}

/** The entries of a partial options object whose value is not undefined. */
function definedOnly<T extends object>(partial: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(partial).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function noop(): void {
  // QoS 0 publishes and the STATE birth: nothing to wait for.
}
