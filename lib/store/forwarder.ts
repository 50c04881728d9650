/**
 * Store-and-forward between the UNS sinks and the broker connection (docs/store-and-forward.md).
 *
 * - Connected, backlog empty: publish straight on the connection (the hot path: no disk, no
 *   closure per message; one shared callback).
 * - Not connected: append to the DiskQueue (or, with no store, drop and count; one warning per outage).
 * - Connection lost: the unacknowledged publishes that MqttConnection hands back are appended to
 *   the queue (live ones) or re-read from the queue's cursor (backlog ones).
 * - Connected with a backlog: it drains in order with at most `windowSize` QoS ≥ 1 publishes in
 *   flight. Live values go behind it into the queue (default, 'behind-backlog'): per-topic order
 *   holds across an outage and a broker failover. With 'beside-backlog' they go out directly
 *   instead, never waiting; a backlog message whose topic already got a live value during this
 *   drain is then published with retain = false: subscribers still receive the history in order,
 *   but the broker's retained value (MQTT v5.0 §3.3.1.3) stays the newest one.
 * - Connected but congested (a producer faster than the broker: `liveMaxUnacknowledged` QoS ≥ 1
 *   publishes unacknowledged, or `liveMaxBufferedBytes` in the socket's write buffer): live values
 *   go into the queue as during an outage, so memory stays bounded and the disk queue's own bound
 *   and drop-oldest policy apply; with no store they are dropped and counted ('congested', one
 *   warning per episode). The backlog pump also waits for the socket buffer to drain. A backlog that
 *   congestion made (not an outage) drains with up to `liveMaxUnacknowledged` publishes unacknowledged
 *   in all, as the live path had a moment before: with the outage window (`windowSize`, default 20)
 *   the drain rate fell to windowSize per round trip, below what the broker was taking, and the
 *   gateway never caught up (bench/pipeline.ts QoS 1: 8–15k messages/s against ~25k for the peer).
 */
import type { IConnackPacket, IPublishPacket, Packet } from 'mqtt';
import type { MqttConnection, QoS } from '../mqtt/connection';
import type { DiskQueue, DropReason } from './disk-queue';
import { counter, gauge } from '../runtime/metrics';

/**
 * Where a live value goes while a backlog is queued (docs/store-and-forward.md):
 * - 'behind-backlog' (default): into the queue, behind the stored messages — per-topic order
 *   (MQTT v5.0 §4.6) holds across an outage; live data waits for the drain.
 * - 'beside-backlog': straight out, beside the draining backlog — the freshest value first; a
 *   topic's live values overtake its stored ones (each stream stays in order).
 */
export type LiveDuringDrain = 'behind-backlog' | 'beside-backlog';

export interface ForwarderOptions {
  /** Label for metrics and messages (the config node id). */
  name: string;
  /** Most backlog publishes in flight at once (QoS ≥ 1). */
  windowSize: number;
  /** Default 'behind-backlog'. */
  liveDuringDrain?: LiveDuringDrain;
  /** Live QoS ≥ 1 publishes unacknowledged at most (lowered to the broker's Receive Maximum); default 10,000. */
  liveMaxUnacknowledged?: number;
  /** Bytes in the socket's write buffer at most before live values are held; default 8 MiB. */
  liveMaxBufferedBytes?: number;
  warn: (message: string) => void;
}

export type ForwardDropReason = DropReason | 'offline' | 'rejected' | 'congested';

const DEFAULT_LIVE_MAX_UNACKNOWLEDGED = 10_000;
const DEFAULT_LIVE_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** What a forwarder has done since it was created (read by metrics and node status). */
export interface ForwarderCounts {
  live: number;
  backlog: number;
  dropped: Record<ForwardDropReason, number>;
}

const forwarders = new Set<StoreAndForward>();

const publishedTotal = counter({
  name: 'uns_edge_mqtt_published_total',
  help: 'Messages published to the UNS broker, by path: live (directly) or backlog (from store-and-forward)',
  labelNames: ['broker', 'path'],
});
const droppedTotal = counter({
  name: 'uns_edge_mqtt_dropped_total',
  help: 'Messages not delivered to the UNS broker, by reason: offline (no store), congested (no store, broker slower than the producer), overflow, expired, corrupt, rejected (by the broker)',
  labelNames: ['broker', 'reason'],
});
gauge({
  name: 'uns_edge_store_queued_messages',
  help: 'Messages waiting in the store-and-forward queue on disk',
  labelNames: ['broker'],
  collect() {
    this.reset();
    for (const forwarder of forwarders) this.set({ broker: forwarder.name }, forwarder.queuedMessages);
  },
});
gauge({
  name: 'uns_edge_store_queued_bytes',
  help: 'Bytes of the messages waiting in the store-and-forward queue on disk',
  labelNames: ['broker'],
  collect() {
    this.reset();
    for (const forwarder of forwarders) this.set({ broker: forwarder.name }, forwarder.queuedBytes);
  },
});

export class StoreAndForward {
  readonly name: string;
  readonly counts: ForwarderCounts = {
    live: 0,
    backlog: 0,
    dropped: { offline: 0, overflow: 0, expired: 0, corrupt: 0, rejected: 0, congested: 0 },
  };
  private readonly windowSize: number;
  private readonly liveBesideBacklog: boolean;
  /** windowSize, lowered to the broker's Receive Maximum (MQTT v5.0 §3.2.2.3.3) when it announces one. */
  private window: number;
  private readonly warn: (message: string) => void;
  private readonly liveMaxUnacknowledgedSetting: number;
  /** liveMaxUnacknowledged, lowered to the broker's Receive Maximum (MQTT v5.0 §4.9: never more in flight). */
  private liveMaxUnacknowledged: number;
  private readonly liveMaxBufferedBytes: number;
  /** Packet identifier → queue sequence number of backlog publishes in flight. */
  private readonly backlogInFlight = new Map<number, number>();
  /** 'beside-backlog': topics that got a live retained value while the backlog drains. */
  private readonly liveTopics = new Set<string>();
  private pumpScheduled: NodeJS.Immediate | undefined;
  private warnedOffline = false;
  private warnedRejected = false;
  private warnedCongested = false;
  /** The queue holds values congestion diverted while connected, and no outage happened since: drain with the live bound. */
  private congestionBacklog = false;
  private closed = false;
  private readonly settledBound = (error?: Error, packet?: Packet): void => this.settled(error, packet);
  private readonly onConnectedBound = (connack: IConnackPacket): void => this.onConnected(connack);
  private readonly onLostBound = (packets: IPublishPacket[]): void => this.onLost(packets);
  private readonly schedulePumpBound = (): void => this.schedulePump();
  /** Counts already added to the Prometheus counters. */
  private readonly exported: ForwarderCounts = {
    live: 0,
    backlog: 0,
    dropped: { offline: 0, overflow: 0, expired: 0, corrupt: 0, rejected: 0, congested: 0 },
  };

  constructor(private readonly connection: MqttConnection, private readonly queue: DiskQueue | undefined, options: ForwarderOptions) {
    this.name = options.name;
    this.windowSize = Math.max(1, options.windowSize);
    this.window = this.windowSize;
    this.liveBesideBacklog = options.liveDuringDrain === 'beside-backlog';
    this.warn = options.warn;
    this.liveMaxUnacknowledgedSetting = Math.max(1, options.liveMaxUnacknowledged ?? DEFAULT_LIVE_MAX_UNACKNOWLEDGED);
    this.liveMaxUnacknowledged = this.liveMaxUnacknowledgedSetting;
    this.liveMaxBufferedBytes = Math.max(1, options.liveMaxBufferedBytes ?? DEFAULT_LIVE_MAX_BUFFERED_BYTES);
    connection.on('connected', this.onConnectedBound);
    connection.on('lost', this.onLostBound);
    connection.on('drain', this.schedulePumpBound);
    forwarders.add(this);
  }

  /** Called by DiskQueue when it drops records (wired by whoever builds both). */
  countDropped(reason: ForwardDropReason, count: number): void {
    this.counts.dropped[reason] += count;
  }

  get queuedMessages(): number {
    return this.queue?.count ?? 0;
  }

  get queuedBytes(): number {
    return this.queue?.bytes ?? 0;
  }

  /** True while a backlog is waiting or in flight. */
  get draining(): boolean {
    return this.queuedMessages > 0;
  }

  /**
   * Publish now if connected and nothing is queued, else keep it on disk (or count it as dropped
   * without a store). With 'beside-backlog', publish now whenever connected.
   */
  publish(topic: string, payload: string | Buffer, qos: QoS, retain: boolean): void {
    const queue = this.queue;
    const connected = this.connection.connected;
    const congested = connected && this.congested();
    if (connected && !congested && (queue === undefined || queue.count === 0 || this.liveBesideBacklog)) {
      if (retain && queue !== undefined && queue.count > 0) this.liveTopics.add(topic);
      this.connection.publish(topic, payload, qos, retain, this.settledBound);
      this.counts.live++;
      // Hysteresis: the episode ends once the broker is down to half the limits, so a flapping limit warns once.
      if (this.warnedCongested && this.connection.unacknowledged < this.liveMaxUnacknowledged / 2 && this.connection.bufferedBytes < this.liveMaxBufferedBytes / 2) this.warnedCongested = false;
      return;
    }
    if (congested && queue === undefined) {
      this.counts.dropped.congested++;
      if (!this.warnedCongested) {
        this.warnedCongested = true;
        this.warn(`broker ${this.connection.description} takes messages slower than they come (${this.connection.unacknowledged} unacknowledged, ${this.connection.bufferedBytes} bytes waiting in the socket) and store-and-forward is off: messages are dropped until it catches up`);
      }
      return;
    }
    if (congested) this.congestionBacklog = true;
    // Behind the backlog: the queue is FIFO, so no stored message of any topic is overtaken.
    this.keep(topic, payload, qos, retain);
    if (connected) this.schedulePump();
  }

  /** The broker takes messages slower than they come: too many unacknowledged, or the socket backed up. */
  private congested(): boolean {
    return this.connection.unacknowledged >= this.liveMaxUnacknowledged || this.connection.bufferedBytes >= this.liveMaxBufferedBytes;
  }

  /** Stop forwarding; the queue stays on disk for the next start. Call before closing the connection's queue. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pumpScheduled !== undefined) clearImmediate(this.pumpScheduled);
    this.pumpScheduled = undefined;
    this.connection.off('connected', this.onConnectedBound);
    this.connection.off('lost', this.onLostBound);
    this.connection.off('drain', this.schedulePumpBound);
    this.exportMetrics();
    forwarders.delete(this);
    for (const path of ['live', 'backlog']) publishedTotal.remove({ broker: this.name, path });
    for (const reason of Object.keys(this.counts.dropped)) droppedTotal.remove({ broker: this.name, reason });
  }

  /** Add what happened since the last call to the shared Prometheus counters. */
  exportMetrics(): void {
    const c = this.counts;
    const e = this.exported;
    if (c.live > e.live) publishedTotal.inc({ broker: this.name, path: 'live' }, c.live - e.live);
    if (c.backlog > e.backlog) publishedTotal.inc({ broker: this.name, path: 'backlog' }, c.backlog - e.backlog);
    e.live = c.live;
    e.backlog = c.backlog;
    for (const reason of Object.keys(c.dropped) as ForwardDropReason[]) {
      const delta = c.dropped[reason] - e.dropped[reason];
      if (delta > 0) droppedTotal.inc({ broker: this.name, reason }, delta);
      e.dropped[reason] = c.dropped[reason];
    }
  }

  private keep(topic: string, payload: string | Buffer, qos: QoS, retain: boolean): void {
    if (this.queue !== undefined && !this.closed) {
      this.queue.append(topic, payload, qos, retain);
      return;
    }
    this.counts.dropped.offline++;
    if (!this.warnedOffline) {
      this.warnedOffline = true;
      this.warn(`broker ${this.connection.description} not connected and store-and-forward is off: messages are dropped until it reconnects`);
    }
  }

  private onConnected(connack: IConnackPacket): void {
    this.warnedOffline = false;
    this.window = Math.max(1, Math.min(this.windowSize, connack.properties?.receiveMaximum ?? this.windowSize));
    this.liveMaxUnacknowledged = Math.max(1, Math.min(this.liveMaxUnacknowledgedSetting, connack.properties?.receiveMaximum ?? this.liveMaxUnacknowledgedSetting));
    this.schedulePump();
  }

  private onLost(packets: IPublishPacket[]): void {
    this.congestionBacklog = false;
    for (const packet of packets) {
      if (this.backlogInFlight.has(packet.messageId ?? 0)) continue;
      this.counts.live--;
      this.keep(packet.topic, packet.payload, packet.qos, packet.retain);
    }
    this.backlogInFlight.clear();
    this.queue?.rewind();
  }

  /** The one callback for every publish: a broker acknowledgement, a write (QoS 0), or an error. */
  private settled(error: Error | undefined, packet: Packet | undefined): void {
    if (packet === undefined) return; // the connection closed: 'lost' handles that
    const messageId = (packet as { messageId?: number }).messageId ?? 0;
    if (error !== undefined) {
      // MQTT v5.0 §3.4.2.1: a PUBACK reason code ≥ 0x80 — the broker refused this message; retrying cannot help.
      this.counts.dropped.rejected++;
      if (!this.warnedRejected) {
        this.warnedRejected = true;
        this.warn(`broker ${this.connection.description} refused a publish to "${(packet as IPublishPacket).topic ?? '?'}": ${error.message} (further refusals are only counted)`);
      }
    }
    const seq = this.backlogInFlight.get(messageId);
    if (seq === undefined) {
      // A live publish acknowledged: room for a congestion backlog, whose bound counts every publish in flight.
      if (this.congestionBacklog) this.schedulePump();
      return;
    }
    this.backlogInFlight.delete(messageId);
    this.queue?.ack(seq);
    if (error === undefined) this.counts.backlog++;
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled !== undefined || this.closed || this.queue === undefined) return;
    // setImmediate: let queued input events (live values) run between drain steps.
    this.pumpScheduled = setImmediate(() => {
      this.pumpScheduled = undefined;
      this.pump();
    });
  }

  /** Send backlog records while connected and the window has room. */
  private pump(): void {
    const queue = this.queue;
    if (queue === undefined || this.closed) return;
    // The socket's buffer bounds QoS 0 records (acknowledged at once); 'drain' wakes the pump again.
    while (this.connection.connected && this.connection.bufferedBytes < this.liveMaxBufferedBytes) {
      const room = this.congestionBacklog
        ? this.liveMaxUnacknowledged - this.connection.unacknowledged
        : this.window - this.backlogInFlight.size;
      if (room <= 0) break;
      const records = queue.readNext(room);
      if (records.length === 0) break;
      for (const record of records) {
        const retain = record.retain && !this.liveTopics.has(record.topic);
        const messageId = this.connection.publish(record.topic, record.payload, record.qos, retain, this.settledBound);
        if (messageId === 0) {
          queue.ack(record.seq); // QoS 0: nothing to wait for (MQTT v5.0 §4.3.1)
          this.counts.backlog++;
        } else {
          this.backlogInFlight.set(messageId, record.seq);
        }
        if (!this.connection.connected) return; // the publish itself found the socket gone
      }
    }
    if (queue.count === 0) {
      this.liveTopics.clear();
      this.congestionBacklog = false;
    }
  }
}
