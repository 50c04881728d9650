/**
 * One drive on a shared Modbus link, as the uns-vfd node needs it (no Node-RED here):
 *
 * - telemetry: the profile's parameters polled through the read plan and poller of lib/modbus,
 *   each batch completed with the derived status signals, state and fault text (telemetry.ts);
 * - commands: requests (requests.ts) carried out by the DriveCommander — guarded, armed when asked,
 *   one at a time, every write audited — followed by an immediate poll, so the confirming data
 *   comes without waiting for the next period;
 * - a status view (what the node's status dot shows), emitted when it changes; while a command is
 *   armed it counts down the seconds left, with one 1 s timer that stops when the arm ends.
 *
 * close() stops the poller, aborts a command that is waiting and clears the countdown timer.
 */
import { EventEmitter } from 'node:events';
import { ConnectionState, ModbusClient } from '../modbus/client';
import { ModbusPoller, PollStatus } from '../modbus/poller';
import { buildReadPlan, MetricDefinitionError } from '../modbus/read-plan';
import { BatchReportByException, batchReporter, SendSettings } from '../modbus/report-by-exception';
import { MetricValue, TagBatch } from '../uns/tag-batch';
import { modbusRegisterAccess } from './access';
import { AuditRecord, AuditTrail } from './audit';
import { CommandOutcome, DriveCommander } from './commander';
import { describeCommand } from './commands';
import { ArmTicket, CommandGuard, GuardRejection } from './guard';
import { DriveProfile, GuardPolicy, parameterNamed } from './profile';
import { DriveRequest, DriveRequestError, parseDriveRequest, requestSummary } from './requests';
import { addDerivedMetrics, derivedMetricNames, derivedNameClashes, DriveBatch, DriveSnapshot, profileMetricDefinitions } from './telemetry';

/**
 * A message the broker delivered from its retained store (uns-in sets msg.retain, as core mqtt in
 * does) is a stale state, replayed at every restart or new subscription: never a command (T-RPL-02).
 */
export const RETAINED_COMMAND = 'a retained MQTT message is state, not a command: publish commands without the retain flag';

export type GuardOverrides = Partial<Omit<GuardPolicy, 'basis'>>;

export interface DriveControllerOptions {
  /** The link's client; the controller never closes it (the link owns it). */
  client: ModbusClient;
  unitId: number;
  profile: DriveProfile;
  /** msg.topic of the telemetry: the drive's asset path. */
  topic: string;
  /** Poll period, ms; 0 = poll only after commands and on pollNow(). */
  intervalMs: number;
  /** Largest register count per read request (the link's setting). */
  maxRegisters?: number;
  guard?: GuardOverrides;
  /** The parameter whose value the running status shows; default the setpoint register. */
  statusParameter?: string;
  /** Status polling period while a command step awaits a status (default 50 ms). */
  commandPollMs?: number;
  /** Audit records kept in memory (default 1000). */
  auditCapacity?: number;
  /** Every poll (default) or only changed values (lib/modbus/report-by-exception.ts). */
  send?: SendSettings;
}

/** What the status dot shows. */
export type DriveStatusView =
  | { kind: 'connecting' }
  | { kind: 'disconnected' }
  /** The link is up but the last poll of this unit failed ("timeout", "exception 2", "unit suspended"). */
  | { kind: 'comms'; short: string; reason: string }
  /** Connected, no reading yet. */
  | { kind: 'waiting' }
  | { kind: 'armed'; command: string; seconds: number }
  | { kind: 'fault'; code: number | null; name: string | null; state: string | null }
  | { kind: 'running'; value: string; unit: string; reverse: boolean }
  | { kind: 'stopped'; state: string | null };

export interface DriveControllerEvents {
  batch: [batch: TagBatch];
  audit: [record: AuditRecord];
  view: [view: DriveStatusView];
}

export type RequestResult = CommandOutcome | { status: 'cancelled'; ticket?: ArmTicket } | { status: 'done'; outcomes: CommandOutcome[] };

/** A number for a status text: integers as they are, others to four significant digits. */
export function formatStatusValue(value: MetricValue | undefined): string {
  if (typeof value === 'number') return Number.isInteger(value) || Math.abs(value) >= 1000 ? String(Math.round(value)) : String(Number(value.toPrecision(4)));
  if (value === null || value === undefined) return '?';
  return String(value);
}

/** Views are flat: the same kind and the same field values (every poll asks, so no JSON text). */
function sameView(a: DriveStatusView, b: DriveStatusView): boolean {
  const fieldsA = a as Record<string, unknown>;
  const fieldsB = b as Record<string, unknown>;
  let count = 0;
  for (const field in fieldsA) {
    if (fieldsA[field] !== fieldsB[field]) return false;
    count++;
  }
  for (const _ in fieldsB) count--;
  return count === 0;
}

export class DriveController extends EventEmitter<DriveControllerEvents> {
  readonly profile: DriveProfile;
  readonly commander: DriveCommander;
  private readonly poller: ModbusPoller;
  /** Report by exception of the telemetry output; the status view always sees every poll. */
  private readonly report: BatchReportByException | undefined;
  private readonly statusParameter: string;
  private readonly statusUnit: string;
  private linkState: ConnectionState = 'idle';
  private lastPoll: PollStatus | undefined;
  private snapshot: DriveSnapshot | undefined;
  private statusValue: MetricValue | undefined;
  private lastView: DriveStatusView | undefined;
  private countdown: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: DriveControllerOptions) {
    super();
    const { profile } = options;
    this.profile = profile;
    const clashes = derivedNameClashes(profile);
    if (clashes.length) throw new RangeError(`${profile.id}: parameter name(s) ${clashes.join(', ')} clash with the derived telemetry metrics of the same name`);
    const statusParameter = parameterNamed(profile, options.statusParameter || profile.setpoint.parameter);
    this.statusParameter = statusParameter.name;
    this.statusUnit = statusParameter.unit;
    // mergeGap 0: a profile lists documented registers; some drives answer exception 2 for the holes between them.
    let plan;
    try {
      plan = buildReadPlan(profileMetricDefinitions(profile), { maxRegisters: options.maxRegisters, mergeGap: 0, addedNames: derivedMetricNames(profile) });
    } catch (error) {
      if (error instanceof MetricDefinitionError) throw new RangeError(`${profile.id}: its parameters cannot be read: ${error.problems.join('; ')}`);
      throw error;
    }
    this.poller = new ModbusPoller({ client: options.client, unitId: options.unitId, plan, topic: options.topic, intervalMs: options.intervalMs });
    this.report = options.send ? batchReporter(options.send) : undefined;
    this.poller.on('batch', (batch) => this.onBatch(batch as DriveBatch));
    this.poller.on('status', (status) => {
      this.lastPoll = status;
      this.showView();
    });
    const audit = new AuditTrail({ capacity: options.auditCapacity, sink: (record) => this.emit('audit', record) });
    this.commander = new DriveCommander({
      profile,
      access: modbusRegisterAccess(options.client, options.unitId),
      drive: options.topic || `unit ${options.unitId}`,
      guard: new CommandGuard(profile, options.guard),
      audit,
      pollIntervalMs: options.commandPollMs,
    });
  }

  get guardPolicy(): GuardPolicy {
    return this.commander.guard.policy;
  }

  start(): void {
    this.poller.start();
    this.showView();
  }

  /** Poll now (coalesced with a poll in progress). */
  pollNow(): void {
    this.poller.pollNow();
  }

  setLinkState(state: ConnectionState): void {
    // The first poll after a (re)connect sends every value.
    if (state === 'connected' && this.linkState !== 'connected') this.report?.reset();
    this.linkState = state;
    if (state !== 'connected') {
      this.lastPoll = undefined;
      this.snapshot = undefined;
    }
    this.showView();
  }

  /**
   * Parse a message's payload (`arm`: msg.arm === true; `retained`: msg.retain === true) and carry
   * it out as `who`. A payload refused
   * by the parser is audited as rejected (who, what, reason) before the DriveRequestError is rethrown,
   * so every refusal is in the audit trail, not only those of the guard.
   */
  async request(payload: unknown, arm: boolean, who: string, retained = false): Promise<RequestResult> {
    let request: DriveRequest;
    try {
      if (retained) throw new DriveRequestError(RETAINED_COMMAND);
      request = parseDriveRequest(this.profile, payload, arm);
    } catch (error) {
      if (error instanceof DriveRequestError) this.commander.refuse(requestSummary(payload), who, error.message);
      throw error;
    }
    return this.handle(request, who);
  }

  /** Carry out a parsed request as `who`. Rejects with GuardRejection, DriveCommandFailed or DriveCommandError. */
  async handle(request: DriveRequest, who: string): Promise<RequestResult> {
    try {
      const result = await this.perform(request, who);
      if (request.kind !== 'cancel' && !this.closed) this.poller.pollNow();
      return result;
    } finally {
      this.updateCountdown();
    }
  }

  private async perform(request: DriveRequest, who: string): Promise<RequestResult> {
    switch (request.kind) {
      case 'cancel': {
        const ticket = this.commander.cancel(who);
        return ticket ? { status: 'cancelled', ticket } : { status: 'cancelled' };
      }
      case 'execute':
        return this.commander.execute(request.ticket, who);
      case 'commands':
        if (request.arm) {
          if (request.commands.length !== 1) throw new GuardRejection(request.commands[0], 'arm one command at a time');
          return { status: 'armed', ticket: await this.commander.arm(request.commands[0], who) };
        }
        if (request.commands.length === 1) return this.commander.run(request.commands[0], who);
        return { status: 'done', outcomes: await this.commander.runAll(request.commands, who) };
    }
  }

  close(): void {
    this.closed = true;
    this.poller.stop();
    this.poller.removeAllListeners();
    this.commander.close();
    clearInterval(this.countdown);
    this.countdown = undefined;
  }

  private onBatch(batch: DriveBatch): void {
    this.snapshot = addDerivedMetrics(this.profile, batch);
    this.statusValue = batch.payload[this.statusParameter];
    const changed = this.report ? this.report.filter(batch, Date.now()) : batch;
    if (changed) this.emit('batch', changed);
    this.showView();
  }

  /** Start or stop the 1 s countdown of an armed command. */
  private updateCountdown(): void {
    if (this.closed) return;
    const armed = this.commander.guard.pending;
    if (armed && !this.countdown) {
      this.countdown = setInterval(() => {
        if (!this.commander.guard.pending) {
          clearInterval(this.countdown);
          this.countdown = undefined;
        }
        this.showView();
      }, 1000);
    } else if (!armed && this.countdown) {
      clearInterval(this.countdown);
      this.countdown = undefined;
    }
    this.showView();
  }

  /** The status view now. */
  view(): DriveStatusView {
    if (this.linkState === 'idle' || this.linkState === 'connecting') return { kind: 'connecting' };
    if (this.linkState !== 'connected') return { kind: 'disconnected' };
    if (this.lastPoll && !this.lastPoll.ok) return { kind: 'comms', short: this.lastPoll.short, reason: this.lastPoll.reason };
    const armed = this.commander.guard.pending;
    if (armed) return { kind: 'armed', command: describeCommand(armed.command), seconds: Math.max(0, Math.ceil((armed.expiresAt - Date.now()) / 1000)) };
    const snapshot = this.snapshot;
    if (!snapshot?.signals) return { kind: 'waiting' };
    if (snapshot.signals.fault || snapshot.fault) {
      return { kind: 'fault', code: snapshot.fault?.code ?? null, name: snapshot.fault?.name ?? null, state: snapshot.state };
    }
    if (snapshot.signals.running) {
      return { kind: 'running', value: formatStatusValue(this.statusValue), unit: this.statusUnit, reverse: snapshot.signals.reverse === true };
    }
    return { kind: 'stopped', state: snapshot.state };
  }

  private showView(): void {
    if (this.closed) return;
    const view = this.view();
    if (this.lastView !== undefined && sameView(view, this.lastView)) return;
    this.lastView = view;
    this.emit('view', view);
  }
}
