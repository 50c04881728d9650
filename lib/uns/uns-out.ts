/**
 * The uns-out controller: a tag batch in, UNS topics out (docs/uns-topics.md). No Node-RED here;
 * nodes/uns/uns.ts adapts it. The whole batch is validated before the first publish, so a bad
 * batch publishes nothing.
 */
import { ReportByException, type DeadbandOptions } from './deadband';
import { normalizePrefix } from './topics';
import { assertTagBatch } from './validate';
import { AssetPayloadBuilder, encodeMetricPayload } from './wire';
import type { QoS } from '../mqtt/connection';

export type UnsOutFormat = 'metric' | 'asset' | 'both';

export interface UnsOutOptions {
  /** Base topic put in front of every asset path ('' = none). */
  topicPrefix: string;
  qos: QoS;
  retain: boolean;
  /** metric: one topic per metric; asset: one JSON topic per asset; both. */
  format: UnsOutFormat;
  deadband: DeadbandOptions;
}

export type Publish = (topic: string, payload: string, qos: QoS, retain: boolean) => void;

export interface UnsOutResult {
  /** Metrics whose value was published (passed report-by-exception). */
  reported: number;
  /** Metrics held back by the deadband. */
  suppressed: number;
}

export class UnsOut {
  private readonly prefix: string;
  private readonly prefixBytes: number;
  private readonly perMetric: boolean;
  private readonly perAsset: boolean;
  private readonly rbe: ReportByException | undefined;
  private readonly asset = new AssetPayloadBuilder();
  /** Reused result object: the caller reads it before the next call. */
  private readonly result: UnsOutResult = { reported: 0, suppressed: 0 };

  constructor(private readonly options: UnsOutOptions, private readonly publish: Publish) {
    this.prefix = normalizePrefix(options.topicPrefix);
    this.prefixBytes = Buffer.byteLength(this.prefix);
    this.perMetric = options.format !== 'asset';
    this.perAsset = options.format !== 'metric';
    this.rbe = options.deadband.mode === 'off' ? undefined : new ReportByException(options.deadband);
  }

  /** Publish one tag batch; throws TagBatchError (naming every problem) before publishing anything. */
  handle(msg: unknown, now = Date.now()): UnsOutResult {
    const batch = assertTagBatch(msg, this.prefixBytes);
    const { qos, retain } = this.options;
    const rbe = this.rbe;
    const perMetric = this.perMetric;
    const perAsset = this.perAsset;
    const base = this.prefix + batch.topic;
    const batchTime = batch.timestamp ?? now;
    const payload = batch.payload;
    const meta = batch.meta;
    const asset = this.asset;
    let reported = 0;
    let suppressed = 0;
    if (perAsset) asset.reset();
    for (const name in payload) {
      const value = payload[name];
      const metricMeta = meta?.[name];
      const quality = metricMeta?.quality ?? 'good';
      const topic = base + '/' + name;
      const report = rbe === undefined || rbe.shouldReport(topic, value, quality, now);
      if (report) reported++;
      else suppressed++;
      if (!report && !perAsset) continue;
      const text = encodeMetricPayload(value, metricMeta?.timestamp ?? batchTime, quality, metricMeta);
      if (report && perMetric) this.publish(topic, text, qos, retain);
      if (perAsset) asset.add(name, text);
    }
    // The asset topic carries the whole batch (a late subscriber gets every metric), and is sent
    // when at least one metric passed report-by-exception.
    if (perAsset && reported > 0) this.publish(base, asset.finish(batchTime), qos, retain);
    this.result.reported = reported;
    this.result.suppressed = suppressed;
    return this.result;
  }

  /** Forget report-by-exception state (e.g. after a reconnect, to republish everything). */
  resetDeadband(): void {
    this.rbe?.clear();
  }
}
