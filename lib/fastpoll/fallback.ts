/**
 * The TypeScript fallback of the fast poller: the poll loop runs in a worker_thread
 * (fallback-worker.ts) on absolute deadlines, sleeping with Atomics.wait, so a blocked main
 * thread does not delay it; it talks Modbus through lib/modbus's client and codec. Same contract
 * as the addon (types.ts): batches are posted only when the main thread has taken the previous
 * one, so a slow main thread gets coalesced batches; statistics live in shared memory.
 */
import { Worker } from 'node:worker_threads';
import { LatencyHistogram } from './histogram';
import { CONTROL, COUNTERS, CYCLE_TIME_AT, LATENESS_AT, MISSED_LATENESS_AT, OVERRUN_LOG, OVERRUN_LOG_AT, STATS_SLOTS, counterIndex } from './fallback-layout';
import { checkPollerOptions, checkWrite } from './options';
import { BatchCallback, PollerBinding, PollerEvent, PollerOptions, RawPollerStats } from './types';

export interface WorkerInit {
  options: PollerOptions;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}
export type ToWorker = { type: 'write'; id: number; fc: 5 | 6 | 15 | 16; address: number; values: number[] };
export type FromWorker = { type: 'batch'; changes: Float64Array; events: PollerEvent[] } | { type: 'stopped' };

const WORKER_TS = `${__dirname}/fallback-worker.ts`;
const WORKER_JS = `${__dirname}/fallback-worker.js`;

function startWorker(init: WorkerInit): Worker {
  if (__filename.endsWith('.ts')) {
    // Running from source (tests, tsx): load the worker through tsx.
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(WORKER_TS)});`, { eval: true, workerData: init });
  }
  return new Worker(WORKER_JS, { workerData: init });
}

export class FallbackPoller implements PollerBinding {
  private readonly options: PollerOptions;
  private readonly onBatch: BatchCallback;
  private worker: Worker | undefined;
  private control: Int32Array | undefined;
  private stats_: Float64Array | undefined;
  private stopping: Promise<void> | undefined;
  private queuedWrites = 0;

  constructor(options: PollerOptions, onBatch: BatchCallback) {
    checkPollerOptions(options, onBatch);
    this.options = options;
    this.onBatch = onBatch;
  }

  get running(): boolean {
    return this.worker !== undefined && this.stopping === undefined;
  }

  start(): void {
    if (this.worker) return;
    const control = new SharedArrayBuffer(CONTROL.length * 4);
    const stats = new SharedArrayBuffer(STATS_SLOTS * 8);
    this.control = new Int32Array(control);
    this.stats_ = new Float64Array(stats);
    this.stopping = undefined;
    const worker = startWorker({ options: this.options, control, stats });
    this.worker = worker;
    worker.on('message', (message: FromWorker) => {
      // The worker has closed its link and handed over its last batch: end the thread.
      if (message.type === 'stopped') { void worker.terminate(); return; }
      Atomics.sub(this.control as Int32Array, CONTROL.pendingBatches, 1);
      for (const e of message.events) if (e.type === 'write') this.queuedWrites--;
      this.onBatch(message.changes, message.events);
    });
    worker.on('error', (error) => {
      // A crash of the worker is an event like any other failure: reported, never thrown into the flow.
      this.onBatch(new Float64Array(0), [{ type: 'disconnected', cycle: 0, time: Date.now(), kind: 'closed', message: `fallback worker failed: ${error.message}` }]);
    });
  }

  stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      worker.once('exit', () => {
        this.worker = undefined;
        resolve();
      });
      const control = this.control as Int32Array;
      Atomics.store(control, CONTROL.stop, 1);
      Atomics.notify(control, CONTROL.sleep);
    });
    return this.stopping;
  }

  write(id: number, fc: 5 | 6 | 15 | 16, address: number, values: number[]): boolean {
    checkWrite(id, fc, address, values);
    if (!this.worker) throw new Error('the poller is not running');
    if (this.queuedWrites >= 64) return false;
    this.queuedWrites++;
    const message: ToWorker = { type: 'write', id, fc, address, values };
    this.worker.postMessage(message);
    return true;
  }

  stats(): RawPollerStats | null {
    const s = this.stats_;
    if (!this.worker || !s) return null;
    const counter = (name: typeof COUNTERS[number]) => s[counterIndex(name)];
    const overruns = counter('overruns');
    const logged = Math.min(overruns, OVERRUN_LOG);
    const overrunTimes: number[] = [];
    for (let i = overruns - logged; i < overruns; i++) overrunTimes.push(s[OVERRUN_LOG_AT + (i % OVERRUN_LOG)]);
    return {
      implementation: 'fallback',
      cycles: counter('cycles'),
      overruns,
      missedDeadlines: counter('missedDeadlines'),
      droppedChanges: counter('droppedChanges'),
      droppedEvents: counter('droppedEvents'),
      reads: counter('reads'),
      readErrors: counter('readErrors'),
      connects: counter('connects'),
      trips: counter('trips'),
      writes: counter('writes'),
      writeErrors: counter('writeErrors'),
      notifications: counter('notifications'),
      connected: counter('connected') === 1,
      lateness: new LatencyHistogram(s.subarray(LATENESS_AT, LATENESS_AT + LatencyHistogram.SLOTS)).raw(),
      missedLateness: new LatencyHistogram(s.subarray(MISSED_LATENESS_AT, MISSED_LATENESS_AT + LatencyHistogram.SLOTS)).raw(),
      cycleTime: new LatencyHistogram(s.subarray(CYCLE_TIME_AT, CYCLE_TIME_AT + LatencyHistogram.SLOTS)).raw(),
      overrunTimes,
      // A worker thread cannot change its scheduling from JS: it runs as the process does.
      realtime: { policy: 'other', priority: 0, cpu: -1, memoryLocked: false, notes: this.options.realtime ? ['the TypeScript fallback cannot set scheduling, affinity or memory locking'] : [] },
    };
  }
}
