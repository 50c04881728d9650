/**
 * Token buckets of the conduit's rate limits (SR 7.1 RE1: manage communication loads), on a
 * monotonic clock (T-CLK-01: a wall-clock step neither refills nor drains a bucket).
 *
 * The key table is bounded (T-DOS-02). When it is full and a new key arrives, every bucket that has
 * refilled completely is removed first: a full bucket is indistinguishable from a new one, so this
 * loses nothing. If none has refilled, the new key is refused (fail closed) until one has; the
 * caller treats that as "rate exceeded". The sweep runs at most once per SWEEP_INTERVAL_MS, so a
 * flood of new keys against a full table costs one Map lookup each.
 */

export interface Bucket {
  tokens: number;
  /** Monotonic ms of the last refill. */
  at: number;
  readonly capacity: number;
  /** Tokens per ms. */
  readonly refill: number;
}

export const DEFAULT_MAX_RATE_KEYS = 10_000;
const SWEEP_INTERVAL_MS = 100;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = -Infinity;

  constructor(readonly maxKeys = DEFAULT_MAX_RATE_KEYS) {}

  get size(): number {
    return this.buckets.size;
  }

  private refilled(bucket: Bucket, now: number): Bucket {
    if (now > bucket.at) {
      bucket.tokens = Math.min(bucket.capacity, bucket.tokens + (now - bucket.at) * bucket.refill);
      bucket.at = now;
    }
    return bucket;
  }

  /**
   * The bucket of `key` refilled to `now`, created full if absent; undefined when the table is
   * full of buckets still refilling (the caller refuses).
   */
  bucket(key: string, count: number, perSeconds: number, now: number): Bucket | undefined {
    const existing = this.buckets.get(key);
    if (existing) return this.refilled(existing, now);
    if (this.buckets.size >= this.maxKeys) {
      if (now - this.lastSweep < SWEEP_INTERVAL_MS) return undefined;
      this.lastSweep = now;
      for (const [k, b] of this.buckets) if (this.refilled(b, now).tokens >= b.capacity) this.buckets.delete(k);
      if (this.buckets.size >= this.maxKeys) return undefined;
    }
    const bucket: Bucket = { tokens: count, at: now, capacity: count, refill: count / (perSeconds * 1000) };
    this.buckets.set(key, bucket);
    return bucket;
  }

  clear(): void {
    this.buckets.clear();
  }
}
