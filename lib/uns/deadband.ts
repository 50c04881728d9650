/**
 * Report by exception with a deadband and a max-silence heartbeat (docs/uns-topics.md).
 *
 * A metric is reported when (mode 'change' is a deadband of 0)
 *   - it was never reported (or its cache entry was evicted), or
 *   - its quality changed, or its value changed type, or a non-numeric value changed, or
 *   - a numeric value moved by more than the deadband since the last REPORTED value
 *     (absolute: |Δ| > band; percent: |Δ| > |last| · band / 100, any change when last = 0), or
 *   - the last report is at least `maxSilenceMs` old (heartbeat; 0 = off).
 * Comparing with the last reported value (not the last seen one) keeps a slow drift from hiding
 * under the band forever. The heartbeat is driven by arriving data, not by a timer: a source that
 * stops sending must not have its last value republished as if it were fresh.
 *
 * The cache is bounded: past `maxEntries` keys the oldest-inserted key is evicted, which only
 * means that key is reported on its next value.
 */
import type { MetricValue, Quality } from './tag-batch';

/** 'off' is handled by the caller (every value is published, no cache): not a mode of this class. */
export type DeadbandMode = 'off' | 'change' | 'absolute' | 'percent';

export interface DeadbandOptions {
  mode: DeadbandMode;
  /** Absolute units, or percent of the last reported value. */
  band: number;
  /** Republish an unchanged value when its last report is this old (ms); 0 = never. */
  maxSilenceMs: number;
  maxEntries: number;
}

interface Reported {
  value: MetricValue;
  quality: Quality;
  at: number;
}

export class ReportByException {
  private readonly cache = new Map<string, Reported>();

  constructor(private readonly options: DeadbandOptions) {
    if (!(options.band >= 0)) throw new Error(`deadband must be a number ≥ 0, got ${options.band}`);
    if (!(options.maxSilenceMs >= 0)) throw new Error(`max silence must be ≥ 0, got ${options.maxSilenceMs}`);
    if (!(options.maxEntries >= 1)) throw new Error(`deadband cache size must be ≥ 1, got ${options.maxEntries}`);
  }

  get size(): number {
    return this.cache.size;
  }

  /** Whether to publish this value now; when true, the value is recorded as reported at `now`. */
  shouldReport(key: string, value: MetricValue, quality: Quality, now: number): boolean {
    const last = this.cache.get(key);
    if (last === undefined) {
      if (this.cache.size >= this.options.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, { value, quality, at: now });
      return true;
    }
    if (!this.changed(last, value, quality) &&
        !(this.options.maxSilenceMs > 0 && now - last.at >= this.options.maxSilenceMs)) {
      return false;
    }
    last.value = value;
    last.quality = quality;
    last.at = now;
    return true;
  }

  /** Forget a key, e.g. after its publish failed for good. */
  forget(key: string): void {
    this.cache.delete(key);
  }

  clear(): void {
    this.cache.clear();
  }

  private changed(last: Reported, value: MetricValue, quality: Quality): boolean {
    if (last.quality !== quality) return true;
    const previous = last.value;
    if (typeof value !== 'number' || typeof previous !== 'number') return value !== previous;
    if (value === previous) return false; // also ±Infinity, whose difference is NaN
    // NaN (e.g. a float register holding a NaN pattern) equals NaN and differs from every number.
    if (Number.isNaN(value) || Number.isNaN(previous)) return !(Number.isNaN(value) && Number.isNaN(previous));
    const delta = Math.abs(value - previous);
    switch (this.options.mode) {
      case 'absolute': return delta > this.options.band;
      case 'percent': return previous === 0 ? delta !== 0 : delta > Math.abs(previous) * this.options.band / 100;
      default: return delta !== 0;
    }
  }
}
