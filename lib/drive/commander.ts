/**
 * Carries out guarded drive commands over any Modbus register access: read what the plan needs
 * (status word, current setpoint), let the guard decide, write the planned words step by step
 * (waiting for status or hold times where the profile says), and audit every write with the
 * register's value before and after. Commands run one at a time, in the order submitted, so two
 * sequences never interleave on one drive. close() aborts a command that is waiting and refuses
 * new ones; no timer outlives it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AuditRecord, AuditTrail, AuditValue } from './audit';
import { describeCommand, DriveCommand, planCommand, PlannedWrite } from './commands';
import { ArmTicket, CommandGuard, GuardRejection } from './guard';
import { DriveProfile, formatWord, parameterNamed, RegisterTable } from './profile';
import { DecodedStatus, decodeStatusWord, statusMatches } from './status';
import { decodeParameter, EngineeringValue, parameterSize } from './values';

/** Register access to one drive (one unit id). The Modbus client behind it is the caller's. */
export interface RegisterAccess {
  read(table: RegisterTable, address: number, count: number): Promise<number[]>;
  /** Write holding registers from `address`. */
  write(address: number, words: number[]): Promise<void>;
}

export interface DriveCommanderOptions {
  profile: DriveProfile;
  access: RegisterAccess;
  /** Label of the drive in audit records (asset path, unit id). */
  drive: string;
  guard?: CommandGuard;
  audit?: AuditTrail;
  /** Status polling period while a step awaits a status (default 50 ms). */
  pollIntervalMs?: number;
}

/** A write or status wait failed part-way; `completed` lists the writes that did happen. */
export class DriveCommandFailed extends Error {
  constructor(message: string, readonly completed: readonly AuditRecord[]) {
    super(message);
    this.name = 'DriveCommandFailed';
    Object.setPrototypeOf(this, DriveCommandFailed.prototype);
  }
}

export type CommandOutcome =
  | { status: 'armed'; ticket: ArmTicket }
  | { status: 'done'; writes: AuditRecord[]; adjusted?: string };

export class DriveCommander {
  readonly profile: DriveProfile;
  readonly guard: CommandGuard;
  readonly audit: AuditTrail;
  private readonly access: RegisterAccess;
  private readonly drive: string;
  private readonly pollIntervalMs: number;
  private readonly abort = new AbortController();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: DriveCommanderOptions) {
    this.profile = options.profile;
    this.access = options.access;
    this.drive = options.drive;
    this.guard = options.guard ?? new CommandGuard(options.profile);
    this.audit = options.audit ?? new AuditTrail();
    this.pollIntervalMs = options.pollIntervalMs ?? 50;
  }

  /** Run `task` after the commands before it; refuse once closed. */
  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.abort.signal.aborted) throw new Error(`drive ${this.drive}: commander is closed`);
      return task();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The engineering value of a parameter, read now. */
  async readParameter(name: string): Promise<AuditValue> {
    const p = parameterNamed(this.profile, name);
    const words = await this.access.read(p.table, p.address, parameterSize(p));
    return { words, value: decodeParameter(p, words) };
  }

  async readStatus(): Promise<DecodedStatus> {
    const { value } = await this.readParameter(this.profile.statusWord.parameter);
    return decodeStatusWord(this.profile, Number(value));
  }

  /**
   * The status word and setpoint a command is planned and checked with; a failed read writes nothing.
   * Both requests are submitted together (one socket write when the link allows two in flight), and
   * the setpoint as read is kept: it is the audit's old value of a first write to the setpoint.
   */
  private async context(command: DriveCommand): Promise<{ status: number; setpoint: number; setpointRead: AuditValue }> {
    try {
      const [statusRead, setpointRead] = await Promise.all([
        this.readParameter(this.profile.statusWord.parameter),
        this.readParameter(this.profile.setpoint.parameter),
      ]);
      return { status: Number(statusRead.value), setpoint: Number(setpointRead.value), setpointRead };
    } catch (error) {
      throw new DriveCommandFailed(`${describeCommand(command)} on ${this.drive}: the status word and setpoint could not be read first (${(error as Error).message}); nothing written`, []);
    }
  }

  /** Submit a command: armed when the guard requires arming, else run at once. */
  submit(command: DriveCommand, who: string): Promise<CommandOutcome> {
    return this.guard.policy.armRequired ? this.arm(command, who).then((ticket) => ({ status: 'armed', ticket })) : this.run(command, who);
  }

  /** Arm a command for a later execute(); it must pass the guard now. */
  arm(command: DriveCommand, who: string): Promise<ArmTicket> {
    return this.serialised(async () => {
      const { setpoint } = await this.context(command);
      try {
        const { ticket, cancelled } = this.guard.arm(command, who, { setpoint });
        if (cancelled) this.note(cancelled.command, who, 'cancelled', { ticket: cancelled.id, reason: `replaced by ${describeCommand(command)}` });
        this.note(ticket.command, who, 'armed', { ticket: ticket.id, reason: `execute within ${this.guard.policy.armTimeoutMs} ms` });
        return ticket;
      } catch (error) {
        if (error instanceof GuardRejection) this.note(command, who, 'rejected', { reason: error.reason });
        throw error;
      }
    });
  }

  /** Execute the armed command with this ticket (without one: the command armed now). */
  execute(ticketId: string | undefined, who: string): Promise<CommandOutcome> {
    return this.serialised(async () => {
      let ticket: ArmTicket;
      const id = ticketId ?? this.guard.armedTicket?.id;
      try {
        ticket = this.guard.take(ticketId);
      } catch (error) {
        if (error instanceof GuardRejection) this.note(error.command, who, error.command ? 'expired' : 'rejected', { ticket: id, reason: error.reason });
        throw error;
      }
      return this.perform(ticket.command, who, ticket.id);
    });
  }

  /** Run a command now; refused when the guard requires arming. */
  run(command: DriveCommand, who: string): Promise<CommandOutcome> {
    return this.runAll([command], who).then(([outcome]) => outcome);
  }

  /**
   * Run several commands as one message (e.g. a tag batch writing two parameters): every one must
   * pass the guard first, else none is written; then they run in order, with no other command
   * in between.
   */
  runAll(commands: readonly DriveCommand[], who: string): Promise<CommandOutcome[]> {
    return this.serialised(async () => {
      if (commands.length === 0) return [];
      if (this.guard.policy.armRequired) {
        const reason = 'this drive requires arm, then execute';
        this.note(commands[0], who, 'rejected', { reason });
        throw new GuardRejection(commands[0], reason);
      }
      if (commands.length > 1) {
        const { setpoint } = await this.context(commands[0]);
        for (const command of commands) {
          const decision = this.guard.check(command, { setpoint });
          if (decision.ok) continue;
          const reason = `${decision.reason} (nothing of this message was written)`;
          this.note(command, who, 'rejected', { reason });
          throw new GuardRejection(command, reason);
        }
      }
      const outcomes: CommandOutcome[] = [];
      for (const command of commands) outcomes.push(await this.perform(command, who));
      return outcomes;
    });
  }

  /**
   * Audit a request refused before it became a command (lib/drive/requests.ts: unknown command,
   * not a number, a hex string …): `request` says what was asked (requestSummary), `reason` why not.
   */
  refuse(request: string, who: string, reason: string): AuditRecord {
    return this.audit.record({ who, drive: this.drive, command: request, outcome: 'rejected', reason });
  }

  /** Drop an armed command. */
  cancel(who: string): ArmTicket | undefined {
    const ticket = this.guard.cancel();
    if (ticket) this.note(ticket.command, who, 'cancelled', { ticket: ticket.id, reason: 'cancelled' });
    return ticket;
  }

  close(): void {
    this.abort.abort();
  }

  private note(command: DriveCommand | undefined, who: string, outcome: AuditRecord['outcome'], extra: Partial<AuditRecord>): AuditRecord {
    return this.audit.record({ who, drive: this.drive, command: command ? describeCommand(command) : 'execute', outcome, ...extra });
  }

  private async perform(command: DriveCommand, who: string, ticket?: string): Promise<CommandOutcome> {
    const context = await this.context(command);
    const decision = this.guard.check(command, { setpoint: context.setpoint });
    if (!decision.ok) {
      this.note(command, who, 'rejected', { ticket, reason: decision.reason });
      throw new GuardRejection(command, decision.reason);
    }
    const plan = planCommand(this.profile, decision.command, context);
    const writes: AuditRecord[] = [];
    for (const [step, write] of plan.entries()) {
      // The setpoint read for the guard, in this same serialised command with nothing written since, is the
      // first write's old value; any later step reads its register again, as an earlier step may have changed it.
      const oldRead = step === 0 && write.parameter === this.profile.setpoint.parameter ? context.setpointRead : undefined;
      writes.push(await this.writeStep(decision.command, who, write, step, writes, oldRead, ticket));
      if (write.parameter === this.profile.setpoint.parameter) this.guard.accepted(write.value);
      if (write.awaitStatus) await this.awaitStatus(decision.command, who, write, writes, ticket);
      if (write.holdMs > 0) await this.wait(write.holdMs);
    }
    return decision.adjusted ? { status: 'done', writes, adjusted: decision.adjusted } : { status: 'done', writes };
  }

  private async writeStep(command: DriveCommand, who: string, write: PlannedWrite, step: number, done: AuditRecord[], oldRead: AuditValue | undefined, ticket?: string): Promise<AuditRecord> {
    const where = { parameter: write.parameter, table: write.table, address: write.address, step, ticket };
    let old: AuditValue | null = oldRead ?? null;
    let oldProblem: string | undefined;
    if (oldRead === undefined) {
      try {
        old = await this.readParameter(write.parameter);
      } catch (error) {
        oldProblem = `old value unreadable: ${(error as Error).message}`;
      }
    }
    const next = { words: write.words, value: write.value as EngineeringValue };
    try {
      await this.access.write(write.address, write.words);
    } catch (error) {
      const reason = `write of ${write.parameter} (holding ${write.address}) failed: ${(error as Error).message}`;
      this.note(command, who, 'failed', { ...where, old, new: next, reason: oldProblem ? `${reason}; ${oldProblem}` : reason });
      throw new DriveCommandFailed(`${describeCommand(command)} on ${this.drive}: ${reason}`, done);
    }
    return this.note(command, who, 'written', { ...where, old, new: next, ...(oldProblem ? { reason: oldProblem } : {}) });
  }

  private async awaitStatus(command: DriveCommand, who: string, write: PlannedWrite, done: AuditRecord[], ticket?: string): Promise<void> {
    const { when, timeoutMs } = write.awaitStatus as NonNullable<PlannedWrite['awaitStatus']>;
    const deadline = Date.now() + timeoutMs;
    let last: DecodedStatus | undefined;
    for (;;) {
      try {
        last = await this.readStatus();
      } catch (error) {
        const reason = `after writing ${formatWord(write.words[0])} the status word could not be read: ${(error as Error).message}`;
        this.note(command, who, 'failed', { parameter: this.profile.statusWord.parameter, ticket, reason });
        throw new DriveCommandFailed(`${describeCommand(command)} on ${this.drive}: ${reason}`, done);
      }
      if (statusMatches(last.bits, when)) return;
      if (Date.now() >= deadline) break;
      await this.wait(Math.min(this.pollIntervalMs, Math.max(1, deadline - Date.now())));
    }
    const wanted = Object.entries(when).map(([bit, value]) => `${bit}=${value ? 1 : 0}`).join(', ');
    const reason = `after writing ${formatWord(write.words[0])} the status word did not reach ${wanted} within ${timeoutMs} ms (last ${formatWord(last.word)}, ${last.state})`;
    this.note(command, who, 'failed', { parameter: this.profile.statusWord.parameter, ticket, reason });
    throw new DriveCommandFailed(`${describeCommand(command)} on ${this.drive}: ${reason}`, done);
  }

  private async wait(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.abort.signal });
    } catch {
      throw new Error(`drive ${this.drive}: commander closed while a command was waiting`);
    }
  }
}
