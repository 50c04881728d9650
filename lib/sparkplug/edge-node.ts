/**
 * A Sparkplug B 3.0 Edge Node: one MQTT session (lib/mqtt/connection.ts) that carries the node's
 * and its devices' births, data and deaths. Session establishment after every CONNECT
 * (Sparkplug 3.0 §5.7, §5.8):
 *
 *   idle ─start()─▶ connecting ─CONNACK─▶ subscribing ─SUBACKs─▶ [waiting-for-host] ─▶ online
 *                     ▲      (bdSeq b+1,      (NCMD, DCMD/+,        (primary host       (NBIRTH seq 0,
 *                     │       Will = NDEATH)   STATE: QoS 1)         STATE online)        all DBIRTHs, data)
 *                     └──── connection lost / primary host offline (NDEATH, DISCONNECT) ◀──┘
 *   any ─close()─▶ closing (NDEATH, DISCONNECT 0x04) ─▶ closed
 *
 * - The Will of every CONNECT is the NDEATH with that CONNECT's bdSeq, QoS 1, not retained
 *   [tck-id-message-flow-edge-node-birth-publish-will-message-qos] [tck-id-payloads-ndeath-will-message-retain].
 *   bdSeq is persisted (lib/sparkplug/sequence.ts) and advances per accepted CONNECT.
 * - NCMD and DCMD are subscribed at QoS 1 and their SUBACKs awaited before the NBIRTH
 *   [tck-id-message-flow-edge-node-ncmd-subscribe] [tck-id-message-flow-device-dcmd-subscribe].
 * - One seq counter for the node and all devices; NBIRTH has seq 0 [tck-id-topics-nbirth-seq-num].
 * - NBIRTH and all DBIRTHs go out in one synchronous step, so no DATA can come between them
 *   [tck-id-payloads-dbirth-order] [tck-id-payloads-ndata-order].
 * - `Node Control/Rebirth` = true in an NCMD: stop data, NBIRTH (same bdSeq) and all DBIRTHs, no
 *   NDEATH and no new CONNECT [tck-id-operational-behavior-data-commands-rebirth-action-1..3].
 * - With a primary host id: births only after its STATE says online; an offline STATE newer than the
 *   last online one ends the session (NDEATH, DISCONNECT) and starts a new one (Sparkplug 3.0 §5.9).
 * - Store-and-forward (lib/sparkplug/history.ts): DDATA that cannot go out while the node is not
 *   online is kept on disk and sent after the next births with is_historical = true, in order.
 */
import { EventEmitter } from 'node:events';
import { MqttConnection, type MqttConnectionOptions, type WillMessage } from '../mqtt/connection';
import { DataType } from './datatypes';
import { SparkplugDecodeError, decodePayload, encodePayload, metricValue, type DecodedPayload, type Metric, type Payload } from './payload';
import { BdSeqStore, SequenceCounter } from './sequence';
import { checkSparkplugId, deviceTopic, nodeTopic, parseTopic, stateTopic, type DeviceMessageType } from './topics';
import { ThrottledWarning } from './throttled-warning';
import { SparkplugHistory } from './history';
import { sparkplugPrincipal, type Principal } from '../principal';

export type EdgeNodeState = 'idle' | 'connecting' | 'subscribing' | 'waiting-for-host' | 'online' | 'closing' | 'closed';

/** What an edge node needs from each of its devices (lib/sparkplug/device.ts implements it). */
export interface EdgeNodeDevice {
  readonly deviceId: string;
  /** The node's NBIRTH is out: publish the DBIRTH now if the device has data. */
  nodeBorn(): void;
  /** The node's session ended (or it is rebirthing): nothing of this device is born any more. */
  nodeDied(): void;
  /** A DCMD arrived for this device. */
  command(payload: DecodedPayload): void;
  /** The alias of a metric in the device's current DBIRTH, or undefined (not born, or no such metric). */
  birthAlias(metricName: string): number | undefined;
  /** Whether its DBIRTH is out in the current session (for the node's "Devices Online" metric). */
  readonly born: boolean;
  /** Whether nodeBorn() will publish its DBIRTH (it has current data): counted in the NBIRTH's "Devices Online". */
  readonly readyToBirth: boolean;
}

export interface EdgeNodeOptions {
  groupId: string;
  edgeNodeId: string;
  /** Primary host application id: wait for its STATE online before births. */
  primaryHostId?: string;
  /** Broker settings. Clean session, session expiry and the Will are set by the edge node. */
  mqtt: Omit<MqttConnectionOptions, 'clean' | 'sessionExpirySec' | 'will'>;
  /** The file that keeps bdSeq across restarts (lib/sparkplug/sequence.ts bdSeqFile()). */
  bdSeqFile: string;
  /** Value of the node metric "Node Info/Software". */
  software: string;
  warn: (message: string) => void;
  info: (message: string) => void;
  /** Longest wait for the NDEATH's PUBACK before disconnecting (ms). Default 2000. */
  deathTimeoutMs?: number;
  /** Shortest time between two NDATA of the node's own metrics (ms). Default 1000. */
  nodeMetricsIntervalMs?: number;
  /** Bad commands and STATEs are warned about at most once per this interval (ms), the rest counted. Default 10000. */
  warningIntervalMs?: number;
  /** Store-and-forward of DDATA while not online; undefined: such data is dropped (and counted). */
  store?: { dir: string; maxBytes?: number; maxAgeMs?: number };
  /**
   * Bytes waiting in the socket's write buffer beyond which live DDATA is held like data while not online
   * (to the store, else dropped and counted): QoS 0 has no flow control, so a broker slower than the
   * devices would otherwise grow memory without bound. Default 8 MiB.
   */
  liveMaxBufferedBytes?: number;
  now?: () => number;
}

export interface EdgeNodeEvents {
  /** Every state change; `detail` says why (a disconnect reason, the host being waited for). */
  state: [state: EdgeNodeState, detail: string | undefined];
}

/** Counters behind the node's own metrics (also read by Node-RED status and Prometheus). */
export interface EdgeNodeCounts {
  /** MQTT sessions established since start. */
  sessions: number;
  /** NCMD/DCMD refused: undecodable, unknown metric, wrong type, not writable. */
  rejectedCommands: number;
  /** DATA lost: not online without a store, store overflow or expiry, history of a device that is not born. */
  droppedData: number;
  /** DATA sent from the store after a birth (is_historical). */
  replayedData: number;
}

const REBIRTH = 'Node Control/Rebirth';
const BDSEQ = 'bdSeq';
const SOFTWARE = 'Node Info/Software';
const DEVICES_ONLINE = 'Node Info/Devices Online';
const SESSIONS = 'Node Info/Sessions';
const REJECTED_COMMANDS = 'Node Info/Rejected Commands';
const DROPPED_DATA = 'Node Info/Dropped Data';
const STORED_DATA = 'Node Info/Stored Data';
/** Stored messages sent per turn of the event loop, and the socket backlog at which sending pauses. */
const REPLAY_BATCH = 50;
/** Socket backlog beyond which live DDATA is held (EdgeNodeOptions.liveMaxBufferedBytes). */
const LIVE_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const REPLAY_PAUSE_BYTES = 1024 * 1024;
/** MQTT v5.0 §3.14.2.1: Disconnect with Will Message [tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt50]. */
const DISCONNECT_WITH_WILL = 0x04;

interface HostState {
  online: boolean;
  timestamp: number;
}

export class SparkplugEdgeNode extends EventEmitter<EdgeNodeEvents> {
  readonly groupId: string;
  readonly edgeNodeId: string;
  readonly primaryHostId: string | undefined;
  readonly counts: EdgeNodeCounts = { sessions: 0, rejectedCommands: 0, droppedData: 0, replayedData: 0 };
  private stateValue: EdgeNodeState = 'idle';
  private readonly connection: MqttConnection;
  private readonly bdSeq: BdSeqStore;
  private readonly seq = new SequenceCounter();
  private readonly devices = new Map<string, EdgeNodeDevice>();
  /** Aliases by "<device id>\u0000<metric name>" ("" for node metrics): stable for the process, never reused. */
  private readonly aliases = new Map<string, number>();
  /** Metric name by alias (the way back, to store DATA by name). */
  private readonly aliasNames = new Map<number, string>();
  private readonly history: SparkplugHistory | undefined;
  /** DDATA dropped because the socket is backed up (no store): one warning a minute, the rest counted. */
  private readonly congestionWarning: ThrottledWarning;
  private replayTimer: NodeJS.Timeout | undefined;
  private replayImmediate: NodeJS.Immediate | undefined;
  private nextAlias = 1;
  /** bdSeq in the Will of the CONNECT in flight, and of the established session. */
  private attemptBdSeq = 0;
  private sessionBdSeq = 0;
  private pendingSubscriptions = new Set<string>();
  private hostOnline = false;
  /**
   * The last valid STATE seen from the primary host, per MQTT server (kept across sessions): each
   * server has its own host session and timestamps (Sparkplug 3.0 §5.9, multiple MQTT servers).
   */
  private readonly hostStates = new Map<string, HostState>();
  private nodeMetricsTimer: NodeJS.Timeout | undefined;
  private readonly reportedNodeMetrics = new Map<string, number>();
  private closing: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly deathTimeoutMs: number;
  private readonly nodeMetricsIntervalMs: number;
  private readonly ncmdTopic: string;
  private readonly dcmdFilter: string;
  private readonly commandWarning: ThrottledWarning;
  private readonly onNodeCommand = (_topic: string, payload: Buffer): void => this.handleNodeCommand(payload);
  private readonly onDeviceCommand = (topic: string, payload: Buffer): void => this.handleDeviceCommand(topic, payload);
  private readonly onState = (_topic: string, payload: Buffer): void => this.handleHostState(payload);

  /** Throws SparkplugIdError when an id is not valid ([tck-id-intro-group-id-chars] …). */
  constructor(private readonly options: EdgeNodeOptions) {
    super();
    this.groupId = checkSparkplugId('group id', options.groupId);
    this.edgeNodeId = checkSparkplugId('edge node id', options.edgeNodeId);
    this.primaryHostId = options.primaryHostId ? checkSparkplugId('host id', options.primaryHostId) : undefined;
    this.now = options.now ?? Date.now;
    this.deathTimeoutMs = options.deathTimeoutMs ?? 2000;
    this.nodeMetricsIntervalMs = options.nodeMetricsIntervalMs ?? 1000;
    this.commandWarning = new ThrottledWarning(options.warn, options.warningIntervalMs ?? 10000, this.now);
    this.congestionWarning = new ThrottledWarning(options.warn, 60_000, this.now);
    this.bdSeq = new BdSeqStore(options.bdSeqFile, options.warn);
    this.history = options.store === undefined ? undefined : new SparkplugHistory({
      ...options.store,
      warn: options.warn,
      dropped: (records) => this.dataDropped(records),
    });
    this.ncmdTopic = nodeTopic(this.groupId, 'NCMD', this.edgeNodeId);
    this.dcmdFilter = `${deviceTopic(this.groupId, 'DCMD', this.edgeNodeId, '+')}`;
    this.connection = new MqttConnection({
      ...options.mqtt,
      // [tck-id-principles-persistence-clean-session-311] [tck-id-principles-persistence-clean-session-50]:
      // Clean Session / Clean Start = 1, Session Expiry Interval 0 (absent).
      clean: true,
      sessionExpirySec: 0,
      will: () => this.willForNextConnect(),
    });
    this.connection.on('state', (state, detail) => this.onConnectionState(state, detail));
    this.connection.on('connected', () => this.onConnected());
    this.connection.on('subscribed', (filter) => this.onSubscribed(filter));
    this.connection.on('subscribeFailed', (filter, reason) => {
      options.warn(`broker refused the subscription to ${filter} (${reason}): commands on it will not arrive`);
      this.onSubscribed(filter);
    });
    this.connection.on('down', (reason) => options.warn(`Sparkplug edge node ${this.descriptor} lost ${this.connection.description}: ${reason}`));
    this.connection.on('up', (outageMs) => options.info(`Sparkplug edge node ${this.descriptor} reconnected to ${this.connection.description} after ${(outageMs / 1000).toFixed(1)} s`));
    // [tck-id-message-flow-edge-node-ncmd-subscribe] [tck-id-message-flow-device-dcmd-subscribe]: QoS 1.
    this.connection.subscribe(this.ncmdTopic, 1, this.onNodeCommand);
    this.connection.subscribe(this.dcmdFilter, 1, this.onDeviceCommand);
    // [tck-id-message-flow-edge-node-birth-publish-phid-wait]: the primary host's STATE.
    if (this.primaryHostId !== undefined) this.connection.subscribe(stateTopic(this.primaryHostId), 1, this.onState);
  }

  /** "group/edge node", for messages. */
  get descriptor(): string {
    return `${this.groupId}/${this.edgeNodeId}`;
  }

  get state(): EdgeNodeState {
    return this.stateValue;
  }

  /** NBIRTH is out in the current session: device births and data may be published. */
  get online(): boolean {
    return this.stateValue === 'online';
  }

  get brokerDescription(): string {
    return this.connection.description;
  }

  /**
   * Who sends this node's NCMDs and DCMDs: the primary host when one is configured (only it may
   * command a node that waits for it), with the node's own MQTT client id (lib/principal.ts).
   */
  get commandPrincipal(): Principal {
    return sparkplugPrincipal(this.primaryHostId, this.options.mqtt.clientId);
  }

  start(): void {
    if (this.stateValue !== 'idle') return;
    this.connection.start();
  }

  // ---------------------------------------------------------------- devices

  /**
   * Add a device. Throws when another device of this node has the same id; warns when one differs
   * only in case ([tck-id-case-sensitivity-sparkplug-ids] SHOULD NOT). Its DBIRTH follows its first data.
   */
  addDevice(device: EdgeNodeDevice): void {
    checkSparkplugId('device id', device.deviceId);
    if (this.devices.has(device.deviceId)) {
      throw new Error(`Sparkplug device id "${device.deviceId}" is already used by another device of edge node ${this.descriptor}`);
    }
    const lower = device.deviceId.toLowerCase();
    for (const id of this.devices.keys()) {
      if (id.toLowerCase() === lower) this.options.warn(`Sparkplug device ids "${id}" and "${device.deviceId}" of edge node ${this.descriptor} differ only in case; some host applications cannot tell them apart`);
    }
    this.devices.set(device.deviceId, device);
  }

  /** Remove a device; publishes its DDEATH when it was born ([tck-id-operational-behavior-device-ddeath]). */
  removeDevice(device: EdgeNodeDevice): void {
    if (this.devices.get(device.deviceId) !== device) return;
    if (device.born) this.publishDevice('DDEATH', device.deviceId, []);
    this.devices.delete(device.deviceId);
    device.nodeDied();
    this.deviceChanged();
  }

  /** The alias of a device's metric: unique across the node's whole metric set [tck-id-payloads-alias-uniqueness]. */
  aliasFor(deviceId: string, metricName: string): number {
    const key = `${deviceId}\u0000${metricName}`;
    let alias = this.aliases.get(key);
    if (alias === undefined) {
      alias = this.nextAlias++;
      this.aliases.set(key, alias);
      this.aliasNames.set(alias, metricName);
    }
    return alias;
  }

  /**
   * Publish a device message with the next seq. Returns false when the node is not online: DDATA is
   * then kept for store-and-forward (or counted as dropped without a store). DDATA goes without
   * datatypes [tck-id-payloads-metric-datatype-not-req].
   */
  publishDevice(type: Exclude<DeviceMessageType, 'DCMD'>, deviceId: string, metrics: Metric[]): boolean {
    if (!this.online) {
      if (type === 'DDATA') this.keep(deviceId, metrics);
      return false;
    }
    if (type === 'DDATA' && this.connection.bufferedBytes > (this.options.liveMaxBufferedBytes ?? LIVE_MAX_BUFFERED_BYTES)) {
      // The broker takes data slower than it comes: kept (replayed as is_historical once the socket drains).
      this.keep(deviceId, metrics);
      if (this.history !== undefined && this.replayTimer === undefined && this.replayImmediate === undefined) this.replayTimer = setTimeout(() => this.replayHistory(), 10);
      if (this.history === undefined) this.congestionWarning.warn(`Sparkplug edge node ${this.descriptor}: the broker takes data slower than it comes (${this.connection.bufferedBytes} bytes waiting in the socket) and store-and-forward is off: DDATA is dropped (Node Info/Dropped Data) until it catches up`);
      return true;
    }
    const payload: Payload = { timestamp: this.now(), metrics, seq: this.seq.next() };
    this.send(deviceTopic(this.groupId, type, this.edgeNodeId, deviceId), payload, type === 'DDATA');
    return true;
  }

  /** A device was born or died: "Node Info/Devices Online" changes. */
  deviceChanged(): void {
    this.scheduleNodeMetrics();
  }

  /** A device refused a DCMD: counted in "Node Info/Rejected Commands", one warning per 10 s. */
  commandRejected(message: string): void {
    this.counts.rejectedCommands++;
    this.commandWarning.warn(message);
    this.scheduleNodeMetrics();
  }

  /** Publish NBIRTH and every DBIRTH again, with the same bdSeq (as for a Rebirth request). */
  rebirth(): void {
    if (!this.online) return;
    this.publishBirths();
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Graceful shutdown: NDEATH first (QoS 1, PUBACK awaited up to deathTimeoutMs), then DISCONNECT,
   * with reason code 0x04 on MQTT 5 [tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath]
   * [tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt311]. Clears every timer.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasSession = this.connection.connected;
      this.clearNodeMetricsTimer();
      this.stopReplay();
      this.setState('closing', undefined);
      for (const device of this.devices.values()) device.nodeDied();
      if (wasSession) await this.publishDeath();
      await this.connection.close({ reasonCode: DISCONNECT_WITH_WILL });
      this.connection.removeAllListeners();
      this.history?.close();
      this.setState('closed', undefined);
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- session establishment

  private willForNextConnect(): WillMessage {
    this.attemptBdSeq = this.bdSeq.next;
    return { topic: nodeTopic(this.groupId, 'NDEATH', this.edgeNodeId), payload: this.deathPayload(this.attemptBdSeq), qos: 1, retain: false };
  }

  /**
   * [tck-id-topics-ndeath-payload] [tck-id-payloads-ndeath-seq]: the bdSeq metric only (Int64,
   * [tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq]) and no seq.
   */
  private deathPayload(bdSeq: number): Buffer {
    return encodePayload({ timestamp: this.now(), metrics: [{ name: BDSEQ, datatype: DataType.Int64, value: bdSeq }] });
  }

  private onConnectionState(state: string, detail: string | undefined): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    if (state === 'connecting' || state === 'backoff') {
      if (this.stateValue === 'online' || this.stateValue === 'subscribing' || this.stateValue === 'waiting-for-host') this.sessionEnded();
      this.setState('connecting', detail);
    }
  }

  private onConnected(): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    this.sessionBdSeq = this.attemptBdSeq;
    this.bdSeq.accepted(this.sessionBdSeq); // before anything of this session is published
    this.counts.sessions++;
    this.hostOnline = false;
    this.pendingSubscriptions = new Set([this.ncmdTopic, this.dcmdFilter]);
    if (this.primaryHostId !== undefined) this.pendingSubscriptions.add(stateTopic(this.primaryHostId));
    this.setState('subscribing', undefined);
  }

  private onSubscribed(filter: string): void {
    if (this.stateValue !== 'subscribing' || !this.pendingSubscriptions.delete(filter)) return;
    if (this.pendingSubscriptions.size > 0) return;
    if (this.primaryHostId !== undefined && !this.hostOnline) {
      this.setState('waiting-for-host', this.primaryHostId);
      return;
    }
    this.publishBirths();
  }

  /**
   * NBIRTH (seq 0, the session's bdSeq, every node metric) and then every device's DBIRTH, in one
   * synchronous step [tck-id-principles-birth-certificates-order] [tck-id-payloads-dbirth-order].
   */
  private publishBirths(): void {
    this.clearNodeMetricsTimer();
    for (const device of this.devices.values()) device.nodeDied();
    const timestamp = this.now();
    // "Devices Online" counts the DBIRTHs that follow in this step, so the NBIRTH agrees with them.
    let ready = 0;
    for (const device of this.devices.values()) if (device.readyToBirth) ready++;
    const nodeMetrics = this.nodeMetricValues(ready);
    const metrics: Metric[] = [
      // [tck-id-topics-nbirth-bdseq-included] [tck-id-topics-nbirth-bdseq-matching]
      { name: BDSEQ, timestamp, datatype: DataType.Int64, value: this.sessionBdSeq },
      // [tck-id-topics-nbirth-rebirth-metric]: Boolean false, and no alias [tck-id-operational-behavior-data-commands-rebirth-name-aliases].
      { name: REBIRTH, timestamp, datatype: DataType.Boolean, value: false },
      { name: SOFTWARE, alias: this.aliasFor('', SOFTWARE), timestamp, datatype: DataType.String, value: this.options.software },
      ...nodeMetrics.map(([name, datatype, value]) => ({ name, alias: this.aliasFor('', name), timestamp, datatype, value })),
    ];
    for (const [name, , value] of nodeMetrics) this.reportedNodeMetrics.set(name, value);
    this.setState('online', undefined);
    this.send(nodeTopic(this.groupId, 'NBIRTH', this.edgeNodeId), { timestamp, metrics, seq: this.seq.birth() }, false);
    for (const device of this.devices.values()) device.nodeBorn();
    // A DBIRTH that did not go out after all changes "Devices Online": NDATA.
    this.scheduleNodeMetrics();
    // Stored DATA only after every birth ([tck-id-payloads-ddata-order]).
    if (this.history !== undefined && this.history.count > 0) {
      this.stopReplay();
      this.replayImmediate = setImmediate(() => this.replayHistory());
    }
  }

  /** The node's own metrics; `online`: the "Devices Online" count (default: devices whose DBIRTH is out). */
  private nodeMetricValues(online = this.bornDevices()): [string, number, number][] {
    return [
      [DEVICES_ONLINE, DataType.UInt32, online],
      [SESSIONS, DataType.UInt64, this.counts.sessions],
      [REJECTED_COMMANDS, DataType.UInt64, this.counts.rejectedCommands],
      [DROPPED_DATA, DataType.UInt64, this.counts.droppedData],
      [STORED_DATA, DataType.UInt64, this.history?.count ?? 0],
    ];
  }

  private bornDevices(): number {
    let online = 0;
    for (const device of this.devices.values()) if (device.born) online++;
    return online;
  }

  /** NDATA with the node metrics that changed, at most once per nodeMetricsIntervalMs (report by exception). */
  private scheduleNodeMetrics(): void {
    if (!this.online || this.nodeMetricsTimer !== undefined) return;
    this.nodeMetricsTimer = setTimeout(() => {
      this.nodeMetricsTimer = undefined;
      if (!this.online) return;
      const timestamp = this.now();
      const changed: Metric[] = [];
      for (const [name, datatype, value] of this.nodeMetricValues()) {
        if (this.reportedNodeMetrics.get(name) === value) continue;
        this.reportedNodeMetrics.set(name, value);
        changed.push({ alias: this.aliasFor('', name), timestamp, datatype, value });
      }
      if (changed.length > 0) this.send(nodeTopic(this.groupId, 'NDATA', this.edgeNodeId), { timestamp, metrics: changed, seq: this.seq.next() }, true);
    }, this.nodeMetricsIntervalMs);
  }

  private clearNodeMetricsTimer(): void {
    if (this.nodeMetricsTimer !== undefined) clearTimeout(this.nodeMetricsTimer);
    this.nodeMetricsTimer = undefined;
  }

  /** DATA lost: "Node Info/Dropped Data". */
  dataDropped(messages = 1): void {
    this.counts.droppedData += messages;
  }

  /** DDATA that cannot go out now: to the store, by metric name, or counted as dropped. */
  private keep(deviceId: string, metrics: Metric[]): void {
    if (this.history === undefined || this.stateValue === 'closing' || this.stateValue === 'closed') {
      this.dataDropped();
      return;
    }
    this.history.keep(deviceId, metrics.map(({ alias, ...metric }) => ({ ...metric, name: this.aliasNames.get(Number(alias)) })));
  }

  /**
   * Send the stored DATA after the births, oldest first: DDATA with the current aliases and
   * is_historical on every metric, REPLAY_BATCH per event-loop turn, pausing while the socket has
   * more than REPLAY_PAUSE_BYTES waiting (QoS 0 has no flow control of its own). A stored metric that
   * is not in its device's current DBIRTH (device gone or dead, metric removed) cannot be sent under
   * Sparkplug's rules: it is dropped and counted, with one warning per replay.
   */
  private replayHistory(): void {
    this.replayTimer = undefined;
    this.replayImmediate = undefined;
    const history = this.history;
    if (history === undefined || !this.online) return;
    if (this.connection.bufferedBytes > Math.min(REPLAY_PAUSE_BYTES, this.options.liveMaxBufferedBytes ?? LIVE_MAX_BUFFERED_BYTES)) {
      this.replayTimer = setTimeout(() => this.replayHistory(), 10);
      return;
    }
    let orphans = 0;
    for (const record of history.next(REPLAY_BATCH)) {
      const device = this.devices.get(record.deviceId);
      const metrics: Metric[] = [];
      for (const stored of record.metrics) {
        const alias = stored.name === undefined ? undefined : device?.birthAlias(stored.name);
        if (alias === undefined) continue;
        try {
          metrics.push({ alias, timestamp: stored.timestamp, datatype: stored.datatype, value: metricValue(stored), isHistorical: true, properties: stored.properties });
        } catch {
          // a stored value that no longer reads as its datatype: counted below like a lost metric
        }
      }
      if (metrics.length < record.metrics.length) {
        orphans++;
        this.dataDropped();
      }
      if (metrics.length > 0) {
        this.send(deviceTopic(this.groupId, 'DDATA', this.edgeNodeId, record.deviceId), { timestamp: this.now(), metrics, seq: this.seq.next() }, true);
        this.counts.replayedData++;
      }
      history.done(record.seq);
    }
    if (orphans > 0) this.options.warn(`Sparkplug edge node ${this.descriptor}: ${orphans} stored DATA message(s) name metrics of devices not born now; those metrics were dropped`);
    if (history.hasMore) this.replayImmediate = setImmediate(() => this.replayHistory());
    else this.scheduleNodeMetrics();
  }

  private stopReplay(): void {
    if (this.replayTimer !== undefined) clearTimeout(this.replayTimer);
    if (this.replayImmediate !== undefined) clearImmediate(this.replayImmediate);
    this.replayTimer = undefined;
    this.replayImmediate = undefined;
    this.history?.rewind();
  }

  /** QoS 0, not retained: every NBIRTH/DBIRTH/NDATA/DDATA/DDEATH ([tck-id-topics-nbirth-mqtt] …). */
  private send(topic: string, payload: Payload, omitDatatypes: boolean): void {
    let bytes: Buffer;
    try {
      bytes = encodePayload(payload, { omitDatatypes });
    } catch (error) {
      this.options.warn(`Sparkplug message to ${topic} not sent: ${(error as Error).message}`);
      return;
    }
    this.connection.publish(topic, bytes, 0, false, noop);
  }

  private sessionEnded(): void {
    this.clearNodeMetricsTimer();
    this.stopReplay();
    this.hostOnline = false;
    for (const device of this.devices.values()) device.nodeDied();
  }

  /** Publish the NDEATH of this session (QoS 1) and wait for its PUBACK, at most deathTimeoutMs. */
  private publishDeath(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.connection.connected) {
        resolve();
        return;
      }
      const timer = setTimeout(resolve, this.deathTimeoutMs);
      this.connection.publish(nodeTopic(this.groupId, 'NDEATH', this.edgeNodeId), this.deathPayload(this.sessionBdSeq), 1, false, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---------------------------------------------------------------- commands and STATE

  private handleNodeCommand(bytes: Buffer): void {
    let payload: DecodedPayload;
    try {
      payload = decodePayload(bytes);
    } catch (error) {
      this.commandRejected(`NCMD for ${this.descriptor} from ${this.commandPrincipal.id} ignored: not a Sparkplug B payload (${(error as SparkplugDecodeError).message})`);
      return;
    }
    const problems: string[] = [];
    let rebirth = false;
    for (const metric of payload.metrics) {
      // Node Control/Rebirth is addressed by name, never by alias.
      if (metric.name === REBIRTH) {
        try {
          rebirth = metricValue(metric, DataType.Boolean) === true || rebirth;
        } catch (error) {
          problems.push(`"${REBIRTH}" ${(error as Error).message}`);
        }
      } else {
        const label = metric.name !== undefined ? `"${metric.name}"` : `alias ${String(metric.alias)}`;
        problems.push(`metric ${label} cannot be written (only "${REBIRTH}" can)`);
      }
    }
    if (problems.length > 0) this.commandRejected(`NCMD for ${this.descriptor} from ${this.commandPrincipal.id}: ${problems.join('; ')}`);
    // [tck-id-operational-behavior-data-commands-rebirth-action-1..3]
    if (rebirth) {
      this.options.info(`Sparkplug edge node ${this.descriptor}: rebirth requested`);
      this.rebirth();
    }
  }

  private handleDeviceCommand(topic: string, bytes: Buffer): void {
    const parsed = parseTopic(topic);
    const device = parsed?.kind === 'device' ? this.devices.get(parsed.deviceId) : undefined;
    if (device === undefined) {
      this.commandRejected(`DCMD on ${topic} from ${this.commandPrincipal.id} ignored: edge node ${this.descriptor} has no such device`);
      return;
    }
    let payload: DecodedPayload;
    try {
      payload = decodePayload(bytes);
    } catch (error) {
      this.commandRejected(`DCMD for device "${device.deviceId}" from ${this.commandPrincipal.id} ignored: not a Sparkplug B payload (${(error as Error).message})`);
      return;
    }
    device.command(payload);
  }

  /**
   * The primary host's STATE (Sparkplug 3.0 §5.9): `{"online": boolean, "timestamp": ms}`. Only a
   * timestamp at least as new as the last valid one counts
   * [tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp]
   * [tck-id-operational-behavior-edge-node-termination-host-offline-timestamp].
   */
  private handleHostState(bytes: Buffer): void {
    let state: HostState;
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      // [tck-id-message-flow-edge-node-birth-publish-phid-wait-online]: online must be a boolean.
      if (typeof parsed !== 'object' || parsed === null || typeof parsed.online !== 'boolean' || typeof parsed.timestamp !== 'number' || !Number.isFinite(parsed.timestamp)) {
        throw new Error('expected {"online": true|false, "timestamp": <ms>}');
      }
      state = { online: parsed.online, timestamp: parsed.timestamp };
    } catch (error) {
      this.commandWarning.warn(`STATE of primary host "${this.primaryHostId}" ignored: ${(error as Error).message}`);
      return;
    }
    const server = this.connection.description;
    const last = this.hostStates.get(server);
    if (last !== undefined && state.timestamp < last.timestamp) return;
    this.hostStates.set(server, state);
    if (state.online) {
      this.hostOnline = true;
      if (this.stateValue === 'waiting-for-host') this.publishBirths();
      return;
    }
    this.hostOnline = false;
    // Only a born session ends: before the births, the (retained) offline STATE just means "wait".
    if (this.stateValue === 'online') {
      // [tck-id-message-flow-edge-node-birth-publish-phid-offline]: NDEATH, disconnect, new session.
      this.options.warn(`Sparkplug edge node ${this.descriptor}: primary host "${this.primaryHostId}" is offline; ending the session and waiting for it`);
      this.sessionEnded();
      this.setState('connecting', `primary host ${this.primaryHostId} offline`);
      void this.publishDeath().then(() => {
        if (this.stateValue !== 'closing' && this.stateValue !== 'closed') this.leaveServer(`primary host ${this.primaryHostId} offline`, DISCONNECT_WITH_WILL);
      });
    } else if (this.stateValue === 'waiting-for-host' && this.connection.serverDescriptions.length > 1) {
      // Nothing was born on this server: no NDEATH to send; a normal DISCONNECT, then the next server.
      this.setState('connecting', `primary host ${this.primaryHostId} offline on ${server}`);
      this.leaveServer(`primary host ${this.primaryHostId} offline on ${server}`, 0);
    }
  }

  /**
   * End the session on this server: with one server, a new session on it at once; with a list,
   * the next server [tck-id-operational-behavior-edge-node-termination-host-offline-reconnect]
   * [tck-id-operational-behavior-primary-application-state-with-multiple-servers-walk].
   */
  private leaveServer(reason: string, reasonCode: number): void {
    if (this.connection.serverDescriptions.length > 1) this.connection.failover(reason, { reasonCode });
    else this.connection.reconnect({ reasonCode });
  }

  private setState(state: EdgeNodeState, detail: string | undefined): void {
    if (this.stateValue === state && detail === undefined) return;
    this.stateValue = state;
    this.emit('state', state, detail);
  }
}

function noop(): void {
  // QoS 0 publishes: nothing to wait for.
}
