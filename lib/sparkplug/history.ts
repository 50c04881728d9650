/**
 * Store-and-forward of Sparkplug DATA (docs/sparkplug.md "Store and forward"): while the edge node
 * is not online (broker unreachable, or the primary host offline), the DDATA a device would have
 * published is kept on disk in order, and sent after the next births as DDATA whose metrics have
 * `is_historical = true` (Sparkplug 3.0 §6.4.4), so host applications file the values in their
 * history without taking them as the current ones.
 *
 * The queue is lib/store/disk-queue.ts (bounded, drop-oldest, max age, crash-safe appends). A record
 * is one DDATA: topic `<device id>`, payload a Sparkplug payload whose metrics carry *names* and
 * datatypes, no aliases and no seq: aliases and seq belong to the session that sends them, which may
 * be a later process.
 */
import { DiskQueue } from '../store/disk-queue';
import { SparkplugDecodeError, decodePayload, encodePayload, type DecodedMetric, type Metric } from './payload';

export interface HistoryOptions {
  dir: string;
  /** Bound of the queue on disk; when full the oldest records go. Default 100 MB. */
  maxBytes?: number;
  /** Records older than this are dropped. Default 7 days. */
  maxAgeMs?: number;
  warn: (message: string) => void;
  /** Records lost (overflow, expiry, damage), for "Node Info/Dropped Data". */
  dropped: (records: number) => void;
}

export interface HistoryRecord {
  /** For done(). */
  seq: number;
  deviceId: string;
  /** Named metrics with datatype, timestamp, value (wire form) and properties, as kept. */
  metrics: DecodedMetric[];
}

export class SparkplugHistory {
  private readonly queue: DiskQueue;

  constructor(private readonly options: HistoryOptions) {
    this.queue = new DiskQueue({
      dir: options.dir,
      maxBytes: options.maxBytes,
      maxAgeMs: options.maxAgeMs,
      warn: (message) => options.warn(`Sparkplug store-and-forward: ${message}`),
      dropped: (_reason, count) => options.dropped(count),
    });
  }

  /** Messages waiting. */
  get count(): number {
    return this.queue.count;
  }

  /** Keep one DATA message of `deviceId`: every metric must have a name and a datatype. */
  keep(deviceId: string, metrics: Metric[]): void {
    this.queue.append(deviceId, encodePayload({ metrics }), 0, false);
  }

  /** Up to `max` kept messages, oldest first; hand each to done() once sent. Undecodable ones are dropped with a warning. */
  next(max: number): HistoryRecord[] {
    const out: HistoryRecord[] = [];
    for (const record of this.queue.readNext(max)) {
      try {
        out.push({ seq: record.seq, deviceId: record.topic, metrics: decodePayload(record.payload).metrics });
      } catch (error) {
        this.queue.ack(record.seq);
        this.options.dropped(1);
        this.options.warn(`Sparkplug store-and-forward: a stored message of "${record.topic}" is unreadable (${(error as SparkplugDecodeError).message}); dropped`);
      }
    }
    return out;
  }

  /** Whether next() has more right now. */
  get hasMore(): boolean {
    return this.queue.hasUnread;
  }

  done(seq: number): void {
    this.queue.ack(seq);
  }

  /** The session ended while sending: next() starts again at the first message not done. */
  rewind(): void {
    this.queue.rewind();
  }

  close(): void {
    this.queue.close();
  }
}
