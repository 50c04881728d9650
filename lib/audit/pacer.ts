/**
 * The scan's rate limit: every probe (a TCP connection, a Modbus request, an OPC UA or MQTT
 * exchange) waits for its slot, at most `ratePerSecond` slots per second with no burst, on the
 * monotonic clock (a wall-clock step neither speeds nor stalls a scan). OT devices fall over under
 * scans (a PLC's Ethernet module serves a handful of connections and requests per second), so the
 * default is gentle: DEFAULT_PROBES_PER_SECOND, one target at a time (docs/asset-scan.md § "Rate").
 */
import { setTimeout as sleep } from 'node:timers/promises';

export const DEFAULT_PROBES_PER_SECOND = 5;
export const MIN_PROBES_PER_SECOND = 0.1;
export const MAX_PROBES_PER_SECOND = 100;

export class ProbePacer {
  readonly intervalMs: number;
  private nextSlot = -Infinity;
  /** Probes paced so far. */
  probes = 0;

  constructor(ratePerSecond = DEFAULT_PROBES_PER_SECOND, private readonly now: () => number = () => performance.now()) {
    if (!(ratePerSecond >= MIN_PROBES_PER_SECOND && ratePerSecond <= MAX_PROBES_PER_SECOND)) {
      throw new RangeError(`probe rate must be ${MIN_PROBES_PER_SECOND}..${MAX_PROBES_PER_SECOND} per second, got ${ratePerSecond}`);
    }
    this.intervalMs = 1000 / ratePerSecond;
  }

  /** Resolves when the next probe may go; rejects when `signal` aborts while waiting. */
  async next(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.now();
    const slot = Math.max(now, this.nextSlot);
    this.nextSlot = slot + this.intervalMs;
    this.probes++;
    if (slot > now) await sleep(slot - now, undefined, { signal });
  }
}
