/**
 * Writes commands to one unit through a ModbusClient: checks the whole command first
 * (write-plan.ts: nothing goes on the wire unless every value passed), optionally reads the old
 * values, then sends the writes one after another in the command's order and reports a result per
 * metric.
 *
 * - Commands run one at a time, in arrival order. At most `queueLimit` (default 100) wait; overflow
 *   policy: **reject the newest** (its result says "write queue full"); nothing queued is dropped.
 * - A write that fails (exception, timeout, link down) stops the command: the metrics after it are
 *   "not-sent", so a drive never gets a start bit after its setpoint write failed. What was
 *   written before the failure stays written; the result says exactly which metrics those are.
 * - Every write attempt emits one 'written' event (the node logs one line each: unit, metric,
 *   address, old → new when read, outcome, who sent the command).
 * - A write is never kept for later: while the link is down the client rejects it at once
 *   ('not-connected'), so a stale command cannot fire minutes later when the link comes back.
 */
import { EventEmitter } from 'node:events';
import { ModbusClient } from './client';
import { RawValue } from './datatypes';
import { describeReadError } from './poller';
import { ModbusRequest, ModbusResponse } from './pdu';
import { applyReadResponse, buildReadPlan, newTagBatch, ReadPlan } from './read-plan';
import { CommandProblem, PreparedWrite, prepareCommand, WritePlan } from './write-plan';
import { MetricValue } from '../uns/tag-batch';

/**
 * ok: written and confirmed by the device's echo. exception: the device answered a Modbus exception.
 * timeout: no answer in time (the write may or may not have taken effect). failed: not sent or lost
 * on the link (not connected, unit suspended, queue full, connection lost). invalid: the value did
 * not pass the checks. not-sent: another value of the command was invalid or failed before it.
 */
export type WriteStatus = 'ok' | 'exception' | 'timeout' | 'failed' | 'invalid' | 'not-sent';

export interface MetricWriteResult {
  status: WriteStatus;
  /** The value asked for. */
  value?: unknown;
  /** The engineering value the registers hold (rounded to the register's resolution). */
  written?: RawValue;
  /** The value read just before writing (readBefore), engineering units; null if the read failed. */
  old?: MetricValue;
  /** Modbus exception code (status 'exception'). */
  exceptionCode?: number;
  /** Why a write failed (status 'failed'): not-connected, unit-suspended, queue-full, connection-lost, … */
  code?: string;
  /** Why it is not ok. */
  error?: string;
}

export interface WriteOutcome {
  ok: boolean;
  unitId: number;
  results: Record<string, MetricWriteResult>;
  /** From the start of this command's turn to its last answer, ms. */
  durationMs: number;
  /** Why a command was refused before anything was sent (status 'invalid' / 'not-sent'). */
  problems?: CommandProblem[];
}

/** One write attempt, for the log. */
export interface WriteLogEntry {
  unitId: number;
  name: string;
  table: string;
  address: number;
  fc: number;
  old?: MetricValue;
  written: RawValue;
  status: WriteStatus;
  error?: string;
  /** Who sent the command (lib/principal.ts senderOf: msg.principal, msg.user, else the msg id), for the audit line. */
  who?: string;
}

export interface ModbusWriterOptions {
  client: ModbusClient;
  unitId: number;
  plan: WritePlan;
  /** Read the current values before writing (one merged read per block; for the log and the result). Default false. */
  readBefore?: boolean;
  /** Commands waiting for their turn; default 100. */
  queueLimit?: number;
}

export interface ModbusWriterEvents {
  written: [entry: WriteLogEntry];
}

export class ModbusWriter extends EventEmitter<ModbusWriterEvents> {
  readonly stats = { commands: 0, rejected: 0, writes: 0, failedWrites: 0, queueFull: 0 };
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private closed = false;
  private readonly queueLimit: number;

  constructor(private readonly options: ModbusWriterOptions) {
    super();
    this.queueLimit = Math.max(1, options.queueLimit ?? 100);
  }

  /** Commands waiting or running. */
  get pending(): number {
    return this.waiting;
  }

  /** Check and write a command. Never rejects: every outcome, also a refusal, is a WriteOutcome. */
  write(payload: unknown, who?: string): Promise<WriteOutcome> {
    const prepared = prepareCommand(this.options.plan, payload);
    if (!prepared.ok) {
      this.stats.rejected++;
      const results: Record<string, MetricWriteResult> = {};
      const general = prepared.problems.filter((p) => p.name === undefined).map((p) => p.problem);
      for (const { name, value } of prepared.asked) {
        const own = prepared.problems.filter((p) => p.name === name).map((p) => p.problem);
        results[name] = own.length
          ? { status: 'invalid', value, error: own.join('; ') }
          : { status: 'not-sent', value, error: general.join('; ') || 'another value of the command was invalid' };
      }
      return Promise.resolve({ ok: false, unitId: this.options.unitId, results, durationMs: 0, problems: prepared.problems });
    }
    if (this.closed || this.waiting >= this.queueLimit) {
      if (!this.closed) this.stats.queueFull++;
      const error = this.closed ? 'writer closed' : `write queue full (${this.queueLimit} commands); newest command rejected`;
      return Promise.resolve(this.unsent(prepared.writes, error, 'failed'));
    }
    this.waiting++;
    const run = this.tail.then(() => this.run(prepared.writes, who));
    this.tail = run.catch(() => undefined); // one failed command never stalls the ones behind it
    return run.then(
      (outcome) => outcome,
      (error: Error) => this.unsent(prepared.writes, `internal error: ${error.message}`, 'failed'),
    ).finally(() => {
      this.waiting--;
    });
  }

  /** Commands that have not started yet are answered 'failed: writer closed'. */
  close(): void {
    this.closed = true;
  }

  private async run(writes: PreparedWrite[], who: string | undefined): Promise<WriteOutcome> {
    if (this.closed) return this.unsent(writes, 'writer closed', 'failed');
    this.stats.commands++;
    const started = performance.now();
    const { client, unitId } = this.options;
    const old = this.options.readBefore ? await this.readOld(writes) : undefined;
    const results: Record<string, MetricWriteResult> = {};
    let failure: string | undefined;
    for (const w of writes) {
      const result: MetricWriteResult = { status: 'ok', value: w.value, written: w.written };
      if (old) result.old = old[w.name] ?? null;
      results[w.name] = result;
      if (failure !== undefined) {
        Object.assign(result, { status: 'not-sent', error: `not sent: ${failure}` });
        continue;
      }
      const error = await submit(client, unitId, w.request);
      this.stats.writes++;
      if (error) {
        this.stats.failedWrites++;
        const d = describeReadError(error);
        result.status = d.kind === 'exception' ? 'exception' : d.kind === 'timeout' ? 'timeout' : 'failed';
        if (d.exceptionCode !== undefined) result.exceptionCode = d.exceptionCode;
        if (result.status === 'failed') result.code = d.kind;
        result.error = d.reason;
        failure = `the write of ${w.name} failed before it (${d.short})`;
      }
      this.emit('written', {
        unitId, name: w.name, table: w.def.table, address: w.def.address, fc: w.request.fc, old: result.old,
        written: w.written, status: result.status, error: result.error, who,
      });
    }
    return { ok: failure === undefined, unitId, results, durationMs: performance.now() - started };
  }

  /** The current values of the metrics about to be written (merged reads, no gap bridging). */
  private async readOld(writes: PreparedWrite[]): Promise<Record<string, MetricValue>> {
    const { client, unitId } = this.options;
    let plan: ReadPlan;
    try {
      plan = buildReadPlan(writes.map((w) => w.def), { maxRegisters: client.maxRegistersPerRequest, mergeGap: 0 });
    } catch {
      return {}; // e.g. a string longer than the link's max registers per read: old values unknown
    }
    const batch = newTagBatch('', Date.now());
    await Promise.all(plan.requests.map(async (read) => {
      const response = await new Promise<ModbusResponse | undefined>((resolve) => {
        client.submit(unitId, { fc: read.fc, address: read.address, quantity: read.quantity }, (_e, r) => resolve(r));
      });
      if (response && 'data' in response) applyReadResponse(read, response.data, Date.now(), batch);
    }));
    return batch.payload;
  }

  private unsent(writes: PreparedWrite[], error: string, status: WriteStatus): WriteOutcome {
    const results: Record<string, MetricWriteResult> = {};
    for (const w of writes) results[w.name] = { status, value: w.value, written: w.written, error };
    return { ok: false, unitId: this.options.unitId, results, durationMs: 0 };
  }
}

/** Send one write; resolves with the error, or undefined when the device confirmed it. */
function submit(client: ModbusClient, unitId: number, request: ModbusRequest): Promise<Error | undefined> {
  return new Promise((resolve) => {
    client.submit(unitId, request, (error) => resolve(error ?? undefined));
  });
}
