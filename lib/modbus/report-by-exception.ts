/**
 * Report by exception at the source (docs/modbus.md § "Send: report by exception"): of each polled
 * tag batch, only the metrics that changed since they were last sent go out; a poll where nothing
 * changed sends nothing. Shared by uns-modbus-read and uns-vfd (lib/drive/controller.ts).
 *
 * The per-metric decision is lib/uns/deadband.ts (the one report-by-exception of uns-edge, also used
 * by uns-out), with an absolute deadband per data type (the batch's meta.type: Float, Int16, …; a type
 * without one: any change). On top of it, per batch:
 *   - a changed quality, and a changed reason (a bad value that fails differently), is a change;
 *   - the whole batch is sent at the first poll, after reset() (the node calls it when its link goes
 *     down, so the first poll after a reconnect sends everything) and whenever the last whole batch is
 *     `refreshMs` old (a consumer that starts late or a retained topic is never stale for longer); the
 *     refresh is driven by polls, not by a timer: a source that stops polling republishes nothing.
 * Every send records what it sent as the new reference of each metric it carries.
 */
import { ReportByException } from '../uns/deadband';
import { MetricDataType, MetricMeta, TagBatch } from '../uns/tag-batch';

/** 'every': every poll sends the whole batch (no filter); 'changes': report by exception. */
export type SendMode = 'every' | 'changes';

export interface ReportByExceptionOptions {
  /** Absolute deadband per data type, in engineering units (after scaling); an absent type: any change. */
  deadbands: Partial<Record<MetricDataType, number>>;
  /** Send the whole batch when the last whole one is at least this old (ms); 0 = never. */
  refreshMs: number;
}

/** What a node's configuration says: `every` needs no filter. */
export type SendSettings = { send: 'every' } | ({ send: 'changes' } & ReportByExceptionOptions);

export const DEFAULT_REFRESH_S = 60;

/** The data types a deadband may name: those whose values are numbers. */
export const DEADBAND_TYPES: readonly MetricDataType[] = ['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float', 'Double'];

/** Metric names of one batch are bounded by the node's plan; this only guards against a runaway. */
const MAX_METRICS = 100_000;


export class BatchReportByException {
  /** One deadband cache per distinct band (ReportByException has one band); band 0 = any change. */
  private readonly caches = new Map<number, ReportByException>();
  /** meta.reason last sent per metric (undefined when it had none). */
  private readonly reasons = new Map<string, string | undefined>();
  private lastWholeAt: number | undefined;

  constructor(private readonly options: ReportByExceptionOptions) {
    for (const [type, band] of Object.entries(options.deadbands)) {
      if (!(typeof band === 'number' && band >= 0 && Number.isFinite(band))) throw new RangeError(`deadband of ${type} must be a finite number ≥ 0, got ${String(band)}`);
    }
    if (!(options.refreshMs >= 0)) throw new RangeError(`refresh must be ≥ 0, got ${options.refreshMs}`);
  }

  /** Forget what was sent: the next batch goes out whole (first poll after a reconnect). */
  reset(): void {
    this.lastWholeAt = undefined;
  }

  /**
   * The part of `batch` to send at `now` (ms): the batch itself when it goes out whole, a new batch
   * with only the changed metrics (same topic, timestamp and other properties), or undefined when
   * nothing changed.
   */
  filter<Batch extends TagBatch>(batch: Batch, now: number): Batch | undefined {
    const whole = this.lastWholeAt === undefined || (this.options.refreshMs > 0 && now - this.lastWholeAt >= this.options.refreshMs);
    if (whole) {
      for (const cache of this.caches.values()) cache.clear();
      this.reasons.clear();
      this.lastWholeAt = now;
    }
    const changed: string[] = [];
    const names = Object.keys(batch.payload);
    for (const name of names) {
      const meta = batch.meta?.[name];
      const reason = meta?.reason;
      const cache = this.cacheOf(meta?.type);
      // A new reason is a change: forgetting the metric makes the deadband report it.
      if (this.reasons.has(name) && this.reasons.get(name) !== reason) cache.forget(name);
      if (!cache.shouldReport(name, batch.payload[name], meta?.quality ?? 'good', now)) continue;
      this.reasons.set(name, reason);
      changed.push(name);
    }
    if (changed.length === names.length) return batch;
    if (changed.length === 0) return undefined;
    const payload: TagBatch['payload'] = {};
    const meta: Record<string, MetricMeta> = {};
    for (const name of changed) {
      payload[name] = batch.payload[name];
      const m = batch.meta?.[name];
      if (m !== undefined) meta[name] = m;
    }
    return batch.meta ? { ...batch, payload, meta } : { ...batch, payload };
  }

  private cacheOf(type: MetricDataType | undefined): ReportByException {
    const band = type !== undefined && DEADBAND_TYPES.includes(type) ? this.options.deadbands[type] ?? 0 : 0;
    let cache = this.caches.get(band);
    if (!cache) {
      cache = new ReportByException({ mode: band > 0 ? 'absolute' : 'change', band, maxSilenceMs: 0, maxEntries: MAX_METRICS });
      this.caches.set(band, cache);
    }
    return cache;
  }
}

/** The filter for `settings`, undefined when every poll is sent whole. */
export function batchReporter(settings: SendSettings): BatchReportByException | undefined {
  return settings.send === 'changes' ? new BatchReportByException(settings) : undefined;
}

/**
 * The send settings of a node's configuration: `send` ('every' | 'changes'; default every),
 * `deadbands` ("Float=0.5, Int16=2" from the editor, or an object { Float: 0.5 } from a hand-written
 * flow; empty = any change), `refresh` (seconds; empty = 60, 0 = never). Throws a RangeError that
 * lists every problem.
 */
export function sendSettingsFrom(config: { send?: unknown; deadbands?: unknown; refresh?: unknown }): SendSettings {
  const problems: string[] = [];
  const send = config.send === undefined || config.send === '' ? 'every' : config.send;
  if (send !== 'every' && send !== 'changes') problems.push(`send must be every or changes, got ${String(send)}`);
  const deadbands: Partial<Record<MetricDataType, number>> = {};
  let entries: [string, unknown][] = [];
  if (typeof config.deadbands === 'string') {
    for (const part of config.deadbands.split(/[,;\n]/).map((p) => p.trim()).filter((p) => p !== '')) {
      const eq = part.indexOf('=');
      if (eq < 0) problems.push(`deadband "${part}" is not TYPE=NUMBER`);
      else entries.push([part.slice(0, eq).trim(), Number(part.slice(eq + 1).trim() || NaN)]);
    }
  } else if (config.deadbands !== undefined && config.deadbands !== null) {
    if (typeof config.deadbands === 'object' && !Array.isArray(config.deadbands)) entries = Object.entries(config.deadbands);
    else problems.push('deadbands must be a text "TYPE=NUMBER, …" or an object');
  }
  for (const [type, band] of entries) {
    if (!(DEADBAND_TYPES as readonly string[]).includes(type)) problems.push(`deadband type ${type} is not one of ${DEADBAND_TYPES.join(', ')}`);
    else if (!(typeof band === 'number' && Number.isFinite(band) && band >= 0)) problems.push(`deadband of ${type} must be a number ≥ 0, got ${String(band)}`);
    else deadbands[type as MetricDataType] = band;
  }
  const refreshText = config.refresh === undefined || config.refresh === null || config.refresh === '' ? DEFAULT_REFRESH_S : config.refresh;
  const refresh = typeof refreshText === 'number' ? refreshText : Number(refreshText);
  if (!(Number.isFinite(refresh) && refresh >= 0)) problems.push(`refresh must be a number of seconds ≥ 0, got ${String(config.refresh)}`);
  if (problems.length) throw new RangeError(problems.join('; '));
  return send === 'changes' ? { send, deadbands, refreshMs: Math.round(refresh * 1000) } : { send: 'every' };
}
