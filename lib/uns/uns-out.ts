/**
 * The uns-out controller: a tag batch in, UNS topics out (docs/uns-topics.md). No Node-RED here;
 * nodes/uns/uns.ts adapts it. The whole batch is validated before the first publish, so a bad
 * batch publishes nothing.
 */
import { ReportByException, type DeadbandOptions } from './deadband';
import { normalizePrefix } from './topics';
import type { MetricMeta, MetricValue, Quality } from './tag-batch';
import { DEFAULT_LIMITS, MIN_TIMESTAMP, TagBatchError, TagBatchValidator, type BatchShape } from './validate';
import { AssetPayloadBuilder, assetMemberKey, encodeMetricPayloadWithTail, metricPayloadTail } from './wire';
import type { QoS } from '../mqtt/connection';

export type UnsOutFormat = 'metric' | 'asset' | 'both';

/**
 * What uns-out does with a source timestamp outside 2000-01-01 … now + 1 day (docs/tag-batch.md § "Limits"):
 * reject the batch (default), or publish the metric with the receive time, quality "uncertain" and a
 * reason naming the timestamp it got (for devices whose clock is known to be wrong).
 */
export type TimestampPolicy = 'reject' | 'receive-time';

export interface UnsOutOptions {
  /** Base topic put in front of every asset path ('' = none). */
  topicPrefix: string;
  qos: QoS;
  retain: boolean;
  /** metric: one topic per metric; asset: one JSON topic per asset; both. */
  format: UnsOutFormat;
  deadband: DeadbandOptions;
  /** Metrics per batch (default 5,000). */
  maxMetrics?: number;
  /** UTF-8 bytes of one string value, unit or reason (default 64 KiB). */
  maxStringBytes?: number;
  timestamps?: TimestampPolicy;
}

export type Publish = (topic: string, payload: string, qos: QoS, retain: boolean) => void;

export interface UnsOutResult {
  /** Metrics whose value was published (passed report-by-exception). */
  reported: number;
  /** Metrics held back by the deadband. */
  suppressed: number;
}

/** A metric's payload tail (wire.ts metricPayloadTail) and what it was made from. */
interface PayloadTail {
  quality: Quality;
  unit: string | undefined;
  type: string | undefined;
  reason: string | undefined;
  text: string;
}

/**
 * What the batches of one shape (validate.ts BatchShape: asset path, metric names in order) share,
 * built on the shape's first batch: the asset topic, every metric's topic, and every metric's payload
 * tail while its quality, unit, type and reason do not change. So a batch of a known shape builds no
 * topic string and encodes only its values and timestamps.
 */
class ShapePlan {
  readonly assetTopic: string;
  /** Index-aligned with shape.names. */
  readonly topics: readonly string[];
  /** Each metric's member key in the asset payload, index-aligned with shape.names; empty when no asset payload is made. */
  readonly memberKeys: readonly string[];
  private readonly tails: (PayloadTail | undefined)[];

  constructor(prefix: string, shape: BatchShape, perAsset: boolean) {
    this.assetTopic = prefix + shape.topic;
    this.topics = shape.names.map((name) => flat(this.assetTopic + '/' + name));
    this.memberKeys = perAsset ? shape.names.map((name) => flat(assetMemberKey(name))) : [];
    this.tails = new Array<PayloadTail | undefined>(shape.names.length).fill(undefined);
  }

  /** The payload tail of metric `i`, made again only when what it is made from changed. */
  tail(i: number, quality: Quality, meta: MetricMeta | undefined): string {
    const unit = meta?.unit;
    const type = meta?.type;
    const reason = meta?.reason;
    const last = this.tails[i];
    if (last !== undefined && last.quality === quality && last.unit === unit && last.type === type && last.reason === reason) return last.text;
    const text = flat(metricPayloadTail(quality, meta));
    this.tails[i] = { quality, unit, type, reason, text };
    return text;
  }
}

/**
 * `text` as one piece. V8 keeps a string built with + as a tree of its pieces (a cons string) until
 * something reads its characters; reading one flattens it in place. A string reused for every
 * batch is flattened once here, so each payload built from it (and MQTT.js's byte count and write
 * of it) copies one piece instead of walking the tree again. In a harness feeding UnsOut.handle
 * simulated-drive batches, the shape plans cut its CPU per metric 1.33×; without flattening, 1.05×.
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

export class UnsOut {
  private readonly prefix: string;
  private readonly prefixBytes: number;
  private readonly perMetric: boolean;
  private readonly perAsset: boolean;
  private readonly rbe: ReportByException | undefined;
  private readonly maxMetrics: number;
  private readonly maxStringBytes: number;
  private readonly replaceBadTimestamps: boolean;
  /** The contract checks; those that depend only on a batch's shape run once per shape and asset. */
  private readonly validator: TagBatchValidator;
  private readonly asset = new AssetPayloadBuilder();
  /**
   * The plan of each batch shape seen; bounded by the validator, which remembers at most
   * MAX_REMEMBERED_SHAPES shapes: a shape it forgets is collected with its plan.
   */
  private readonly plans = new WeakMap<BatchShape, ShapePlan>();
  /** Reused result object: the caller reads it before the next call. */
  private readonly result: UnsOutResult = { reported: 0, suppressed: 0 };

  constructor(private readonly options: UnsOutOptions, private readonly publish: Publish) {
    this.prefix = normalizePrefix(options.topicPrefix);
    this.prefixBytes = Buffer.byteLength(this.prefix);
    this.perMetric = options.format !== 'asset';
    this.perAsset = options.format !== 'metric';
    this.rbe = options.deadband.mode === 'off' ? undefined : new ReportByException(options.deadband);
    this.maxMetrics = options.maxMetrics ?? DEFAULT_LIMITS.maxMetrics;
    this.maxStringBytes = options.maxStringBytes ?? DEFAULT_LIMITS.maxStringBytes;
    if (!Number.isInteger(this.maxMetrics) || this.maxMetrics < 1) throw new Error(`max metrics per batch must be an integer ≥ 1, got ${this.maxMetrics}`);
    if (!Number.isInteger(this.maxStringBytes) || this.maxStringBytes < 1) throw new Error(`max string size must be an integer ≥ 1 byte, got ${this.maxStringBytes}`);
    this.replaceBadTimestamps = options.timestamps === 'receive-time';
    this.validator = new TagBatchValidator({
      prefixBytes: this.prefixBytes, maxMetrics: this.maxMetrics, maxStringBytes: this.maxStringBytes,
      checkTimestampRange: !this.replaceBadTimestamps,
    });
  }

  /** Publish one tag batch; throws TagBatchError (naming every problem) before publishing anything. */
  handle(msg: unknown, now = Date.now()): UnsOutResult {
    const validator = this.validator;
    const problems = validator.problems(msg, now);
    if (problems.length > 0) throw new TagBatchError(problems);
    // A valid batch: its metric names, values and meta entries, index-aligned, without enumerating it again.
    const shape = validator.shape!;
    const names = shape.names;
    let plan = this.plans.get(shape);
    if (plan === undefined) {
      plan = new ShapePlan(this.prefix, shape, this.perAsset);
      this.plans.set(shape, plan);
    }
    const topics = plan.topics;
    const values = validator.values as readonly MetricValue[];
    const entries = validator.entries as readonly (MetricMeta | undefined)[];
    const batchTimestamp = (msg as { timestamp?: number }).timestamp;
    const { qos, retain } = this.options;
    const latest = now + DEFAULT_LIMITS.maxFutureMs;
    const outOfRange = (t: number): boolean => this.replaceBadTimestamps && (t < MIN_TIMESTAMP || t > latest);
    const rbe = this.rbe;
    const perMetric = this.perMetric;
    const perAsset = this.perAsset;
    const batchTime = batchTimestamp === undefined || outOfRange(batchTimestamp) ? now : batchTimestamp;
    const asset = this.asset;
    let reported = 0;
    let suppressed = 0;
    if (perAsset) asset.reset();
    for (let i = 0; i < names.length; i++) {
      const value = values[i];
      let metricMeta = entries[i];
      let timestamp = metricMeta?.timestamp ?? batchTimestamp ?? now;
      if (outOfRange(timestamp)) {
        metricMeta = {
          ...metricMeta,
          quality: metricMeta?.quality === 'bad' ? 'bad' : 'uncertain',
          reason: `source timestamp ${timestamp} out of range, receive time used${metricMeta?.reason ? `; ${metricMeta.reason}` : ''}`,
        };
        timestamp = now;
      }
      const quality = metricMeta?.quality ?? 'good';
      const topic = topics[i];
      const report = rbe === undefined || rbe.shouldReport(topic, value, quality, now);
      if (report) reported++;
      else suppressed++;
      if (!report && !perAsset) continue;
      const text = encodeMetricPayloadWithTail(value, timestamp, plan.tail(i, quality, metricMeta));
      if (report && perMetric) this.publish(topic, text, qos, retain);
      if (perAsset) asset.addMember(plan.memberKeys[i], text);
    }
    // The asset topic carries the whole batch (a late subscriber gets every metric), and is sent
    // when at least one metric passed report-by-exception.
    if (perAsset && reported > 0) this.publish(plan.assetTopic, asset.finish(batchTime), qos, retain);
    this.result.reported = reported;
    this.result.suppressed = suppressed;
    return this.result;
  }

  /** Forget report-by-exception state (e.g. after a reconnect, to republish everything). */
  resetDeadband(): void {
    this.rbe?.clear();
  }
}
