/**
 * The latency histogram of the fast poller: 16 log-linear sub-buckets per power of two of
 * nanoseconds (≤ 6.25 % relative error), the exact maximum kept aside. native/src/histogram.h has
 * the same layout; the fallback records with LatencyHistogram, and summarize() computes the
 * percentiles of both.
 */
import { RawHistogram } from './types';

const SUB_BUCKET_BITS = 4;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
export const HISTOGRAM_BUCKETS = 640;

export function bucketOf(ns: number): number {
  const v = Math.max(0, Math.floor(ns));
  if (v < SUB_BUCKETS) return v;
  let exponent = Math.floor(Math.log2(v));
  if (2 ** exponent > v) exponent--; // guard against rounding of log2 near powers of two
  else if (2 ** (exponent + 1) <= v) exponent++;
  const mantissa = Math.floor(v / 2 ** (exponent - SUB_BUCKET_BITS)) & (SUB_BUCKETS - 1);
  return Math.min(HISTOGRAM_BUCKETS - 1, SUB_BUCKETS + (exponent - SUB_BUCKET_BITS) * SUB_BUCKETS + mantissa);
}

/** Upper bound (exclusive) of bucket `index`, ns. */
export function bucketUpperNs(index: number): number {
  if (index < SUB_BUCKETS) return index + 1;
  const exponent = Math.floor((index - SUB_BUCKETS) / SUB_BUCKETS) + SUB_BUCKET_BITS;
  const mantissa = (index - SUB_BUCKETS) % SUB_BUCKETS;
  return (SUB_BUCKETS + mantissa + 1) * 2 ** (exponent - SUB_BUCKET_BITS);
}

/** A histogram over a (possibly shared) Float64Array: counts, then total, max and sum. */
export class LatencyHistogram {
  static readonly SLOTS = HISTOGRAM_BUCKETS + 3;
  constructor(private readonly slots: Float64Array = new Float64Array(LatencyHistogram.SLOTS)) {}
  add(ns: number): void {
    const s = this.slots;
    s[bucketOf(ns)]++;
    s[HISTOGRAM_BUCKETS]++;
    if (ns > s[HISTOGRAM_BUCKETS + 1]) s[HISTOGRAM_BUCKETS + 1] = ns;
    s[HISTOGRAM_BUCKETS + 2] += ns;
  }
  raw(): RawHistogram {
    const s = this.slots;
    return { counts: s.slice(0, HISTOGRAM_BUCKETS), total: s[HISTOGRAM_BUCKETS], maxNs: s[HISTOGRAM_BUCKETS + 1], sumNs: s[HISTOGRAM_BUCKETS + 2] };
  }
}

export interface LatencySummary {
  count: number;
  /** Microseconds; percentiles are bucket upper bounds, capped at the exact maximum. */
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
}

export function summarize(h: RawHistogram): LatencySummary {
  const quantile = (q: number): number => {
    if (h.total === 0) return 0;
    const rank = Math.ceil(q * h.total);
    let seen = 0;
    for (let i = 0; i < h.counts.length; i++) {
      seen += h.counts[i];
      if (seen >= rank) return Math.min(bucketUpperNs(i), h.maxNs) / 1000;
    }
    return h.maxNs / 1000;
  };
  const round = (us: number) => Math.round(us * 10) / 10;
  return {
    count: h.total,
    p50Us: round(quantile(0.5)),
    p99Us: round(quantile(0.99)),
    p999Us: round(quantile(0.999)),
    maxUs: round(h.maxNs / 1000),
    meanUs: round(h.total ? h.sumNs / h.total / 1000 : 0),
  };
}
