/**
 * The contract both fast-poller implementations keep (the native addon in native/ and the
 * TypeScript worker in fallback.ts). test/integration/fastpoll-contract.spec.ts runs one suite over
 * both. docs/fast-poll.md describes it.
 */

/** One read request, polled every cycle (Modbus App Protocol v1.1b3 §6.1–§6.4). */
export interface PollBlock {
  fc: 1 | 2 | 3 | 4;
  address: number;
  quantity: number;
  /** Per item: a change is reported when |value − last reported| > deadband (raw units); default 0. */
  deadbands?: number[];
  /** Per item: compare (and evaluate trip limits) as int16; default false. */
  signed?: boolean[];
}

/** "Item `offset` of block `block` above/below `limit` for `cycles` consecutive cycles → write `writeValue` to `writeAddress`." */
export interface TripRuleSpec {
  block: number;
  offset: number;
  when: 'above' | 'below';
  limit: number;
  /** Consecutive cycles the condition must hold; default 1. */
  cycles?: number;
  /** FC5 (coil) or FC6 (register); default 6. */
  writeFc?: 5 | 6;
  writeAddress: number;
  writeValue: number;
}

export interface RealtimeRequest {
  /** SCHED_FIFO priority 1..99 (needs CAP_SYS_NICE or an rtprio limit); 0 = normal scheduling. */
  priority?: number;
  /** CPU to pin the poll thread to; −1 = any. */
  cpu?: number;
  /** mlockall() the process (needs CAP_IPC_LOCK or a memlock limit). */
  lockMemory?: boolean;
  /** Wake this many µs (0..1000) before the deadline and busy-wait to it: hides the VM's wake-up latency at the cost of CPU. Default 0. */
  spinUs?: number;
}

export interface PollerOptions {
  host: string;
  port: number;
  unitId?: number;
  /** Cycle period in ms (fractions allowed; the node enforces ≥ 1). */
  periodMs?: number;
  /** Response timeout per transaction; default 100 ms. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Changes held for JS (bounded ring); default 65536. */
  ringCapacity?: number;
  blocks: PollBlock[];
  trips?: TripRuleSpec[];
  realtime?: RealtimeRequest;
}

/** What went wrong in a transaction: a Modbus exception, no answer, a wrong answer, or no link. */
export type FailureKind = 'exception' | 'timeout' | 'garbage' | 'closed' | 'refused' | 'connect';

export type PollerEvent =
  | { type: 'connected'; cycle: number; time: number; kind: 'ok'; message?: string }
  | { type: 'disconnected'; cycle: number; time: number; kind: FailureKind; message?: string }
  | { type: 'read-error'; cycle: number; time: number; kind: FailureKind; block: number; code?: number; message?: string }
  | { type: 'read-recovered'; cycle: number; time: number; kind: 'ok'; block: number }
  | {
    type: 'trip'; cycle: number; time: number; kind: 'ok' | FailureKind; rule: number; value: number; code?: number;
    /** First cycle (and its time) of the consecutive crossing that tripped. */
    crossingCycle: number; crossingTime: number;
    sentTime: number; ackedTime?: number;
  }
  | { type: 'write'; cycle: number; time: number; kind: 'ok' | FailureKind; id: number; code?: number };

/** Changes as [cycle, time ms, block, offset, value] records. */
export const CHANGE_RECORD_LENGTH = 5;
export type BatchCallback = (changes: Float64Array, events: PollerEvent[]) => void;

export interface RawHistogram {
  counts: Float64Array;
  total: number;
  maxNs: number;
  sumNs: number;
}

export interface RawPollerStats {
  implementation: 'native' | 'fallback';
  cycles: number;
  overruns: number;
  missedDeadlines: number;
  droppedChanges: number;
  droppedEvents: number;
  reads: number;
  readErrors: number;
  connects: number;
  trips: number;
  writes: number;
  writeErrors: number;
  notifications: number;
  connected: boolean;
  lateness: RawHistogram;
  /** Lateness of the deadlines overruns skipped, each until the next cycle actually ran (with `lateness`: every deadline). */
  missedLateness: RawHistogram;
  cycleTime: RawHistogram;
  /** Times (ms since the epoch) of the most recent overruns, oldest first (at most 64). */
  overrunTimes: number[];
  realtime: { policy: 'fifo' | 'other'; priority: number; cpu: number; memoryLocked: boolean; notes: string[] };
}

/** One running poller: the poll loop on its own thread. */
export interface PollerBinding {
  start(): void;
  /** Stop the thread (joined / terminated) and hand over what it produced; idempotent. */
  stop(): Promise<void>;
  /** Queue a write (FC5/6/15/16) done between cycles; false when the queue is full. The result comes as a 'write' event. */
  write(id: number, fc: 5 | 6 | 15 | 16, address: number, values: number[]): boolean;
  /** null when not running. */
  stats(): RawPollerStats | null;
  readonly running: boolean;
}

export type PollerFactory = (options: PollerOptions, onBatch: BatchCallback) => PollerBinding;
