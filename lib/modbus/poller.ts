/**
 * Periodic reads of one unit through a ModbusClient: runs a ReadPlan every intervalMs (or on
 * demand) and emits one tag batch per poll. The periods are ticks of a PollClock shared by every
 * poller with the same period (poll-clock.ts), so the units of a link are polled in one turn. A
 * poll never overlaps the previous one: a tick that finds a poll still running is skipped and
 * counted (stats.skipped), and an on-demand trigger during a poll is coalesced into one follow-up
 * poll, so nothing piles up in the client queue.
 */
import { EventEmitter } from 'node:events';
import { ModbusException } from './data-model';
import { ModbusClient, ModbusClientError } from './client';
import { PollClock, processPollClock } from './poll-clock';
import { describeException, ModbusResponse } from './pdu';
import { applyReadFailure, applyReadResponse, newTagBatch, PlannedRead, ReadPlan } from './read-plan';
import { MetricMeta, TagBatch } from '../uns/tag-batch';

/** Why the last poll failed: 'exception' (see exceptionCode) or a ModbusClientErrorCode. */
export interface ReadErrorDescription {
  kind: string;
  exceptionCode?: number;
  /** What a status dot shows: "timeout", "exception 2", "not connected", … */
  short: string;
  /** What meta.reason says: "Modbus exception 2 (illegal data address)", … */
  reason: string;
}

export type PollStatus =
  | { ok: true; pollsPerSecond: number }
  | ({ ok: false } & ReadErrorDescription);

export interface ModbusPollerOptions {
  client: ModbusClient;
  unitId: number;
  plan: ReadPlan;
  /** msg.topic of each batch: the asset's UNS path. */
  topic: string;
  /** Poll period, ms; 0 = only on demand (pollNow()). */
  intervalMs: number;
  /** Whose ticks the periodic polls follow (default: processPollClock, shared by every poller of the process). */
  clock?: PollClock;
}

export interface ModbusPollerEvents {
  batch: [batch: TagBatch];
  /** Emitted when the status text changes, not per poll. */
  status: [status: PollStatus];
}

/** The short text and the meta reason for an error from the client. */
export function describeReadError(error: Error): ReadErrorDescription {
  if (error instanceof ModbusException) {
    return { kind: 'exception', exceptionCode: error.code, short: `exception ${error.code}`, reason: describeException(error.code) };
  }
  if (error instanceof ModbusClientError) return { kind: error.code, short: error.code.replace(/-/g, ' '), reason: error.message };
  return { kind: 'error', short: 'error', reason: error.message };
}

const RATE_WINDOW_MS = 1000;

export class ModbusPoller extends EventEmitter<ModbusPollerEvents> {
  readonly stats = { polls: 0, skipped: 0, failedReads: 0 };
  private leaveClock: (() => void) | undefined;
  private firstPollAt = 0;
  private busy = false;
  private triggered = false;
  private stopped = false;
  private lastStatusText = '';
  private windowStart = performance.now();
  private windowPolls = 0;
  private pollsPerSecond = 0;

  constructor(private readonly options: ModbusPollerOptions) {
    super();
  }

  start(): void {
    this.stopped = false;
    const { intervalMs } = this.options;
    if (intervalMs > 0 && !this.leaveClock) {
      // The first poll at once. The shared clock's next tick may follow it within a few ms: it is
      // not a poll unless half a period has passed, nor a skipped one while that first poll runs
      // within its period.
      this.firstPollAt = performance.now();
      this.leaveClock = (this.options.clock ?? processPollClock).join(intervalMs, () => {
        const sinceFirstPoll = performance.now() - this.firstPollAt;
        if (sinceFirstPoll < intervalMs / 2 || (sinceFirstPoll < intervalMs && this.busy)) return;
        this.tick();
      });
      this.tick();
    }
  }

  stop(): void {
    this.stopped = true;
    this.leaveClock?.();
    this.leaveClock = undefined;
  }

  /** Poll now; if a poll is running, one more follows it (coalesced). */
  pollNow(): void {
    if (this.stopped) return;
    if (this.busy) this.triggered = true;
    else this.poll();
  }

  private tick(): void {
    if (this.busy) {
      this.stats.skipped++;
      return;
    }
    this.poll();
  }

  private poll(): void {
    this.busy = true;
    const { client, unitId, plan, topic } = this.options;
    const batch = newTagBatch(topic, Date.now(), plan.layout);
    let remaining = plan.requests.length;
    let firstError: Error | undefined;
    const done = (read: PlannedRead, error: Error | null, response: ModbusResponse | undefined) => {
      const timestamp = Date.now();
      if (error || !response || !('data' in response)) {
        const failure = error ?? new Error('unexpected response');
        firstError ??= failure;
        this.stats.failedReads++;
        applyReadFailure(read, describeReadError(failure).reason, timestamp, batch);
      } else {
        applyReadResponse(read, response.data, timestamp, batch);
        batch.timestamp = timestamp;
      }
      if (--remaining === 0) this.finish(batch, firstError);
    };
    for (const read of plan.requests) {
      client.submit(unitId, { fc: read.fc, address: read.address, quantity: read.quantity }, (e, r) => done(read, e, r));
    }
  }

  private finish(batch: TagBatch & { meta: Record<string, MetricMeta> }, error: Error | undefined): void {
    this.busy = false;
    this.stats.polls++;
    if (this.stopped) return;
    this.emit('batch', batch);
    this.updateStatus(error);
    if (this.triggered) {
      this.triggered = false;
      this.poll();
    }
  }

  private updateStatus(error: Error | undefined): void {
    this.windowPolls++;
    const t = performance.now();
    if (t - this.windowStart >= RATE_WINDOW_MS) {
      this.pollsPerSecond = (this.windowPolls * 1000) / (t - this.windowStart);
      this.windowStart = t;
      this.windowPolls = 0;
    }
    let status: PollStatus;
    let text: string;
    if (error) {
      const d = describeReadError(error);
      status = { ok: false, ...d };
      text = d.short;
    } else {
      status = { ok: true, pollsPerSecond: this.pollsPerSecond };
      text = `ok ${formatRate(this.pollsPerSecond)}`;
    }
    if (text === this.lastStatusText) return;
    this.lastStatusText = text;
    this.emit('status', status);
  }
}

/** "10/s", "0.2/s": polls per second for a status dot. */
export function formatRate(perSecond: number): string {
  if (perSecond >= 10) return `${Math.round(perSecond)}/s`;
  return `${Math.round(perSecond * 10) / 10}/s`;
}
