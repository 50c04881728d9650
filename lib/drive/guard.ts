/**
 * Command guard: what may be written to a drive, and when.
 *
 * - Limits: a setpoint must lie within guards.setpointMin..setpointMax; a parameter write within
 *   the parameter's min..max. The raw control word is not writable through the guard: commands
 *   (startForward, stop, …) go through the profile's sequences.
 * - Ramp rate: a setpoint may change by at most maxRampPerSecond × the time since the previous
 *   accepted setpoint, and by at most one second's worth in one step. The first step is measured
 *   from the drive's current setpoint. Start, stop and reverse are not rate-limited (the drive's
 *   own ramps apply); they are what the arm step is for.
 * - On a violation the guard rejects with the reason (default) or, with onViolation 'clamp', moves
 *   the value to the nearest allowed one and says so.
 * - Arm/execute: with armRequired, a command is first armed, then executed by its ticket within
 *   armTimeoutMs. One command is armed at a time; arming another cancels the first. Expiry is
 *   checked when the ticket is used, so the guard holds no timers.
 * - Time: elapsed times (ramp, arm timeout) come from a monotonic, sub-millisecond clock
 *   (guardClock), not from the wall clock.
 *
 * The profile's guards are defaults; a node may set its own, within what the drive accepts
 * (setpoint.min..max of the profile).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ControlCommand, describeCommand, DriveCommand, isControlCommand } from './commands';
import { DriveProfile, GuardPolicy, parameterNamed } from './profile';

export class GuardRejection extends Error {
  /** `command` is absent when an execute names no armed command. */
  constructor(readonly command: DriveCommand | undefined, readonly reason: string) {
    super(`${command ? describeCommand(command) : 'execute'} rejected: ${reason}`);
    this.name = 'GuardRejection';
    Object.setPrototypeOf(this, GuardRejection.prototype);
  }
}

export type GuardDecision =
  | { ok: true; command: DriveCommand; adjusted?: string }
  | { ok: false; command: DriveCommand; reason: string };

export interface ArmTicket {
  id: string;
  command: DriveCommand;
  who: string;
  armedAt: number;
  expiresAt: number;
}

/** What the guard knows of the drive now: its setpoint in engineering units, if read. */
export interface GuardContext { setpoint?: number }

const EPSILON = 1e-9;

/**
 * The guard's default clock: milliseconds on the epoch scale (ticket times read as dates) that
 * advance like performance.now(), monotonic and sub-millisecond. Date.now() would make the ramp
 * wrong both ways: it counts whole milliseconds (two setpoints 0.2 ms apart measured 0 ms apart are
 * refused any change; 0.01 ms apart across a millisecond boundary are allowed a whole millisecond's
 * worth), and a wall-clock step (NTP, an operator setting the time) forward would allow a full
 * second's change at once, back would freeze every setpoint until the clock caught up.
 */
export function guardClock(): number {
  return performance.timeOrigin + performance.now();
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

export class CommandGuard {
  readonly policy: GuardPolicy;
  private lastSetpoint?: { value: number; at: number };
  private armed?: ArmTicket;

  constructor(
    private readonly profile: DriveProfile,
    overrides: Partial<Omit<GuardPolicy, 'basis'>> = {},
    private readonly clock: () => number = guardClock,
  ) {
    this.policy = { ...profile.guards, ...overrides, basis: Object.keys(overrides).length ? `${profile.guards.basis}; overridden by the node: ${Object.keys(overrides).join(', ')}` : profile.guards.basis };
    const { setpointMin, setpointMax, maxRampPerSecond, armTimeoutMs } = this.policy;
    const { min, max } = profile.setpoint;
    if (!(setpointMin >= min && setpointMax <= max && setpointMin <= setpointMax)) {
      throw new RangeError(`${profile.id}: guard setpoint range ${setpointMin}..${setpointMax} must lie within what the drive accepts, ${min}..${max}`);
    }
    if (maxRampPerSecond !== null && !(maxRampPerSecond > 0)) throw new RangeError(`${profile.id}: maxRampPerSecond must be > 0 or null, got ${maxRampPerSecond}`);
    if (!(Number.isInteger(armTimeoutMs) && armTimeoutMs >= 100)) throw new RangeError(`${profile.id}: armTimeoutMs must be an integer ≥ 100, got ${armTimeoutMs}`);
  }

  private get unit(): string {
    const unit = parameterNamed(this.profile, this.profile.setpoint.parameter).unit;
    return unit ? ` ${unit}` : '';
  }

  /** Whether `command` may run now; with onViolation 'clamp', possibly an adjusted command. */
  check(command: DriveCommand, context: GuardContext = {}): GuardDecision {
    if (isControlCommand(command)) return this.checkDirection(command, context);
    if (command.kind === 'write') {
      if (command.parameter === this.profile.setpoint.parameter) return this.checkSetpoint({ kind: 'setpoint', value: command.value }, context);
      if (command.parameter === this.profile.controlWord.parameter) {
        return { ok: false, command, reason: `the control word is written only through the profile's commands (${Object.keys(this.profile.controlWord.commands).join(', ')})` };
      }
      return this.checkParameter(command);
    }
    return this.checkSetpoint(command, context);
  }

  /**
   * A drive that reverses by the sign of its setpoint (direction signedSetpoint) starts in reverse
   * by writing −|setpoint|: that value must lie within the guard limits too, so the default
   * "forward only" policy (setpointMin ≥ 0) refuses reverse. Not clamped: a direction is not a
   * number to move. Other start/stop commands pass (the drive's own ramps apply).
   */
  private checkDirection(command: ControlCommand, context: GuardContext): GuardDecision {
    if (this.profile.controlWord.direction !== 'signedSetpoint' || (command.kind !== 'startReverse' && command.kind !== 'startForward')) return { ok: true, command };
    const { setpointMin: min, setpointMax: max } = this.policy;
    const unit = this.unit;
    if (command.kind === 'startReverse' && min >= 0) {
      return { ok: false, command, reason: `reverse needs a negative setpoint, and the guard limits are ${min}..${max}${unit} (forward only; set a negative setpoint minimum to allow reverse)` };
    }
    if (context.setpoint === undefined) return { ok: true, command };
    const magnitude = Math.abs(context.setpoint);
    const signed = command.kind === 'startReverse' ? -magnitude : magnitude;
    if (signed >= min - EPSILON && signed <= max + EPSILON) return { ok: true, command };
    return { ok: false, command, reason: `${command.kind} writes the setpoint ${signed}${unit} (the current ${context.setpoint}${unit} with the sign of the direction), outside the guard limits ${min}..${max}${unit}` };
  }

  private violation(command: DriveCommand, reason: string, clamped: DriveCommand): GuardDecision {
    return this.policy.onViolation === 'clamp' ? { ok: true, command: clamped, adjusted: `${reason}; clamped to ${describeCommand(clamped)}` } : { ok: false, command, reason };
  }

  private checkParameter(command: { kind: 'write'; parameter: string; value: number }): GuardDecision {
    const p = this.profile.parameters.find((q) => q.name === command.parameter);
    if (!p) return { ok: false, command, reason: `${this.profile.id} has no parameter named "${command.parameter}"` };
    if (p.access !== 'RW') return { ok: false, command, reason: `${p.name} is read-only` };
    if (!Number.isFinite(command.value)) return { ok: false, command, reason: `${p.name} needs a finite number, got ${command.value}` };
    const min = p.min as number;
    const max = p.max as number;
    if (command.value >= min - EPSILON && command.value <= max + EPSILON) return { ok: true, command };
    const unit = p.unit ? ` ${p.unit}` : '';
    return this.violation(command, `${p.name} ${command.value}${unit} is outside ${min}..${max}${unit}`, { ...command, value: Math.min(max, Math.max(min, command.value)) });
  }

  private checkSetpoint(command: { kind: 'setpoint'; value: number }, context: GuardContext): GuardDecision {
    const { setpointMin: min, setpointMax: max } = this.policy;
    if (!Number.isFinite(command.value)) return { ok: false, command, reason: `the setpoint needs a finite number, got ${command.value}` };
    let limited: GuardDecision = { ok: true, command };
    if (command.value < min - EPSILON || command.value > max + EPSILON) {
      const unit = this.unit;
      limited = this.violation(command, `setpoint ${command.value}${unit} is outside the guard limits ${min}..${max}${unit}`, { kind: 'setpoint', value: Math.min(max, Math.max(min, command.value)) });
      if (!limited.ok) return limited;
    }
    const ramped = this.checkRamp(limited.command as typeof command, context);
    if (!ramped.ok) return ramped;
    const notes = [limited.adjusted, ramped.adjusted].filter((n): n is string => n !== undefined);
    return notes.length ? { ok: true, command: ramped.command, adjusted: notes.join('; ') } : { ok: true, command: ramped.command };
  }

  private checkRamp(command: { kind: 'setpoint'; value: number }, context: GuardContext): GuardDecision {
    const rate = this.policy.maxRampPerSecond;
    if (rate === null) return { ok: true, command };
    const now = this.clock();
    const reference = this.lastSetpoint ?? (context.setpoint !== undefined ? { value: context.setpoint, at: now - 1000 } : undefined);
    if (!reference) return { ok: false, command, reason: 'the ramp rate cannot be checked: the current setpoint is unknown (read it first)' };
    const seconds = Math.min(1, Math.max(0, (now - reference.at) / 1000));
    const allowed = rate * seconds;
    const change = command.value - reference.value;
    if (Math.abs(change) <= allowed + EPSILON) return { ok: true, command };
    const unit = this.unit;
    const reason = `setpoint ${command.value}${unit} changes the setpoint by ${round(Math.abs(change))}${unit} from ${round(reference.value)}${unit}; `
      + `the ramp limit ${rate}${unit}/s allows ${round(allowed)}${unit} now (${round(seconds)} s since the previous setpoint, at most 1 s counts)`;
    return this.violation(command, reason, { kind: 'setpoint', value: round(reference.value + Math.sign(change) * allowed) });
  }

  /** Record a setpoint that was written, as the reference for the next ramp check. */
  accepted(setpoint: number): void {
    this.lastSetpoint = { value: setpoint, at: this.clock() };
  }

  /** Arm a command (it must pass check() now). Cancels a command armed before. */
  arm(command: DriveCommand, who: string, context: GuardContext = {}): { ticket: ArmTicket; cancelled?: ArmTicket } {
    const decision = this.check(command, context);
    if (!decision.ok) throw new GuardRejection(command, decision.reason);
    const cancelled = this.cancel();
    const armedAt = Math.floor(this.clock()); // whole ms in the ticket; flooring never lengthens the arm
    this.armed = { id: randomUUID(), command: decision.command, who, armedAt, expiresAt: armedAt + this.policy.armTimeoutMs };
    return { ticket: this.armed, cancelled };
  }

  /** The armed command, expired or not (pending is the one still executable). */
  get armedTicket(): ArmTicket | undefined {
    return this.armed;
  }

  /** The armed command, unless it has expired. */
  get pending(): ArmTicket | undefined {
    return this.armed && this.clock() <= this.armed.expiresAt ? this.armed : undefined;
  }

  /**
   * Take the armed command for execution (the one with this ticket; without a ticket, whichever is
   * armed); throws when there is none, it is another, or it expired.
   */
  take(ticketId?: string): ArmTicket {
    const ticket = this.armed;
    if (!ticket || (ticketId !== undefined && ticket.id !== ticketId)) {
      const none = ticketId === undefined ? 'no command is armed' : `no command is armed (ticket ${ticketId})`;
      throw new GuardRejection(undefined, ticket ? `ticket ${ticketId} is not the armed command (${describeCommand(ticket.command)} is)` : none);
    }
    this.armed = undefined;
    const late = this.clock() - ticket.expiresAt;
    if (late > 0) throw new GuardRejection(ticket.command, `the arm expired ${this.policy.armTimeoutMs} ms after it was armed by ${ticket.who} (${Math.ceil(late)} ms ago); arm again`);
    return ticket;
  }

  /** Drop the armed command, returning it. */
  cancel(): ArmTicket | undefined {
    const ticket = this.armed;
    this.armed = undefined;
    return ticket;
  }
}
