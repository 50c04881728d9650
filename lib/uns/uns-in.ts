/**
 * The uns-in controller: UNS topics in, tag batches out (docs/uns-topics.md). No Node-RED here.
 *
 * `<prefix/><asset path>/<metric>` is split with the asset path depth; metrics of one asset that
 * arrive within the merge window (0 = the same event-loop turn) become one tag batch. A topic with
 * exactly `depth` levels is the asset-level JSON topic. A payload that is not the UNS shape is
 * skipped with one warning per topic (bounded), not one per message.
 */
import type { MetricMeta, MetricValue, TagBatch } from './tag-batch';
import type { Principal } from '../principal';
import { splitUnsTopic, normalizePrefix } from './topics';
import { metricNameProblem } from './validate';
import { decodeAssetPayload, decodeMetricPayload, metricFromObject } from './wire';

export interface UnsInOptions {
  topicPrefix: string;
  /** Levels of the asset path (ISA-95: 6). */
  assetDepth: number;
  /** Merge metrics of one asset arriving within this many ms into one batch; 0 = same event-loop turn. */
  mergeWindowMs: number;
  /**
   * The subscribing connection (mqttPrincipal(client id, username)), put on every batch as
   * msg.principal: MQTT does not say who published, so the identity is the authenticated connection
   * the message came in on (docs/tag-batch.md § "Who sent a write").
   */
  principal?: Principal;
}

/** Topics warned about are remembered up to this many; past it, one last warning says so. */
const MAX_WARNED_TOPICS = 1000;

interface PendingBatch {
  topic: string;
  payload: Record<string, MetricValue>;
  meta: Record<string, MetricMeta>;
  principal?: Principal;
  /**
   * The broker delivered these values from its retained store (MQTT v5.0 §3.3.1.3: RETAIN set on a
   * message sent because of a new subscription), not as they were published. Core `mqtt in` sets
   * msg.retain the same way. A retained value is state, never a command: uns-conduit refuses it as a
   * write (T-RPL-02) and uns-vfd / uns-modbus-write refuse it as a write command.
   */
  retain?: true;
}

export class UnsIn {
  private readonly prefix: string;
  private pending = new Map<string, PendingBatch>();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly warnedTopics = new Set<string>();
  private warnedTooMany = false;
  private readonly flushBound = (): void => this.flush();
  /** Messages skipped because they were not UNS payloads (for status and metrics). */
  ignored = 0;

  constructor(
    private readonly options: UnsInOptions,
    private readonly emit: (batch: TagBatch) => void,
    private readonly warn: (message: string) => void,
  ) {
    if (!Number.isInteger(options.assetDepth) || options.assetDepth < 1) throw new Error(`asset path depth must be an integer ≥ 1, got ${options.assetDepth}`);
    if (!(options.mergeWindowMs >= 0)) throw new Error(`merge window must be ≥ 0 ms, got ${options.mergeWindowMs}`);
    this.prefix = normalizePrefix(options.topicPrefix);
  }

  /** One received MQTT message; `retained`: the broker sent it from its retained store. */
  handleMessage(topic: string, payload: Buffer, retained = false): void {
    const parts = splitUnsTopic(topic, this.prefix, this.options.assetDepth);
    if (parts === undefined) {
      this.skip(topic, `does not have ${this.options.assetDepth} asset path levels after the base topic "${this.prefix}"`);
      return;
    }
    const text = payload.toString('utf8');
    if (parts.metric === undefined) {
      this.handleAssetPayload(topic, parts.assetPath, text, retained);
      return;
    }
    const nameProblem = metricNameProblem(parts.metric);
    if (nameProblem) {
      this.skip(topic, `metric name ${nameProblem}`);
      return;
    }
    const decoded = decodeMetricPayload(text);
    if (typeof decoded === 'string') {
      this.skip(topic, `payload ${decoded}; expected {"value":…,"timestamp":…,"quality":…}`);
      return;
    }
    addMetric(this.batchFor(parts.assetPath, [parts.metric], retained), parts.metric, decoded.value, decoded.meta);
  }

  /** Emit every pending batch now. */
  flush(): void {
    this.cancelTimers();
    if (this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    for (const batch of pending.values()) this.emit(batch);
  }

  /** Drop pending batches and timers (node closing). */
  close(): void {
    this.cancelTimers();
    this.pending.clear();
  }

  private handleAssetPayload(topic: string, assetPath: string, text: string, retained: boolean): void {
    const decoded = decodeAssetPayload(text);
    if (typeof decoded === 'string') {
      this.skip(topic, `asset payload ${decoded}; expected {"timestamp":…,"metrics":{…}}`);
      return;
    }
    const names = Object.keys(decoded.metrics);
    const batch = this.batchFor(assetPath, names, retained);
    for (const name of names) {
      const metric = metricFromObject(decoded.metrics[name]);
      const nameProblem = metricNameProblem(name);
      if (typeof metric === 'string' || nameProblem) {
        this.skip(topic, `asset payload metric "${name}" ${nameProblem ?? metric}`);
        continue;
      }
      if (metric.meta.timestamp === undefined && decoded.timestamp !== undefined) metric.meta.timestamp = decoded.timestamp;
      addMetric(batch, name, metric.value, metric.meta);
    }
  }

  /**
   * The pending batch of an asset, flushed first if it already holds one of `names` (no value is
   * overwritten). Retained and live values of one asset never share a batch, so msg.retain is exact.
   */
  private batchFor(assetPath: string, names: string[], retained: boolean): PendingBatch {
    const key = retained ? `retained\u0000${assetPath}` : assetPath;
    let batch = this.pending.get(key);
    if (batch !== undefined && holdsAny(batch, names)) {
      this.pending.delete(key);
      this.emit(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { topic: assetPath, payload: {}, meta: {} };
      if (retained) batch.retain = true;
      // A copy per batch: a flow that edits one message's principal must not change the next one's.
      if (this.options.principal !== undefined) batch.principal = { ...this.options.principal };
      this.pending.set(key, batch);
      this.scheduleFlush();
    }
    return batch;
  }

  private scheduleFlush(): void {
    if (this.timer !== undefined || this.immediate !== undefined) return;
    if (this.options.mergeWindowMs === 0) this.immediate = setImmediate(this.flushBound);
    else this.timer = setTimeout(this.flushBound, this.options.mergeWindowMs);
  }

  private cancelTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private skip(topic: string, why: string): void {
    this.ignored++;
    if (this.warnedTopics.has(topic)) return;
    if (this.warnedTopics.size >= MAX_WARNED_TOPICS) {
      if (!this.warnedTooMany) {
        this.warnedTooMany = true;
        this.warn(`more than ${MAX_WARNED_TOPICS} topics with non-UNS messages; no more warnings (they are still skipped and counted)`);
      }
      return;
    }
    this.warnedTopics.add(topic);
    this.warn(`skipping messages on "${topic}": ${why} (warned once per topic)`);
  }
}

function holdsAny(batch: PendingBatch, names: string[]): boolean {
  for (let i = 0; i < names.length; i++) if (names[i] in batch.payload) return true;
  return false;
}

function addMetric(batch: PendingBatch, name: string, value: MetricValue, meta: MetricMeta): void {
  batch.payload[name] = value;
  batch.meta[name] = meta;
}
