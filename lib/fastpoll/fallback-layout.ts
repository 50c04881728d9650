/** Shared memory between the fallback's worker (writer) and the main thread (reader). */
import { LatencyHistogram } from './histogram';

/** Int32 control words. */
export const CONTROL = {
  /** 1 = stop requested. */
  stop: 0,
  /** Batches posted by the worker and not yet handled by the main thread (0 or 1: coalescing). */
  pendingBatches: 1,
  /** Word the worker sleeps on with Atomics.wait; stop() notifies it. */
  sleep: 2,
  length: 3,
} as const;

/** Float64 counters, then the three histograms, then the overrun time ring. */
export const COUNTERS = [
  'cycles', 'overruns', 'missedDeadlines', 'droppedChanges', 'droppedEvents', 'reads', 'readErrors', 'connects',
  'trips', 'writes', 'writeErrors', 'notifications', 'connected',
] as const;
export type CounterName = typeof COUNTERS[number];
export const counterIndex = (name: CounterName): number => COUNTERS.indexOf(name);
export const LATENESS_AT = COUNTERS.length;
export const MISSED_LATENESS_AT = LATENESS_AT + LatencyHistogram.SLOTS;
export const CYCLE_TIME_AT = MISSED_LATENESS_AT + LatencyHistogram.SLOTS;
export const OVERRUN_LOG_AT = CYCLE_TIME_AT + LatencyHistogram.SLOTS;
export const OVERRUN_LOG = 64;
export const STATS_SLOTS = OVERRUN_LOG_AT + OVERRUN_LOG;
