/**
 * Commands → the holding-register writes that carry them out, from the profile: control-word
 * sequences (e.g. the PROFIdrive-style 0x047E then 0x047F of ABB and Siemens drives), setpoint
 * and parameter writes encoded as the register's type and scale say. Pure: the guard
 * (guard.ts) decides whether a command may run, the commander (commander.ts) performs the plan.
 */
import { CommandName, COMMAND_NAMES, CommandStep, DriveParameter, DriveProfile, parameterNamed, StatusCondition } from './profile';
import { decodeStatusWord, statusMatches } from './status';
import { decodeParameter, encodeParameter } from './values';

export type ControlCommand = { kind: CommandName };
export type DriveCommand =
  | ControlCommand
  | { kind: 'setpoint'; value: number }
  | { kind: 'write'; parameter: string; value: number };

export class DriveCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriveCommandError';
    Object.setPrototypeOf(this, DriveCommandError.prototype);
  }
}

export interface PlannedWrite {
  parameter: string;
  table: 'holding';
  address: number;
  /** The engineering value the words carry (rounded to the register's resolution). */
  value: number;
  words: number[];
  /** Wait at least this long after the write. */
  holdMs: number;
  /** Poll the status word after the write until it matches, or fail. */
  awaitStatus?: { when: StatusCondition; timeoutMs: number };
  note?: string;
}

/** What the plan may depend on: the drive's current status word and setpoint (engineering units). */
export interface CommandContext { status?: number; setpoint?: number }

export function isControlCommand(command: DriveCommand): command is ControlCommand {
  return (COMMAND_NAMES as readonly string[]).includes(command.kind);
}

/** A short text for logs and audit records. */
export function describeCommand(command: DriveCommand): string {
  switch (command.kind) {
    case 'setpoint': return `setpoint ${command.value}`;
    case 'write': return `write ${command.parameter} = ${command.value}`;
    default: return command.kind;
  }
}

function writeOf(p: DriveParameter, value: number, extra: Partial<PlannedWrite> = {}): PlannedWrite {
  if (p.access !== 'RW' || p.table !== 'holding') throw new DriveCommandError(`${p.name} is not writable`);
  let words: number[];
  try {
    words = encodeParameter(p, value);
  } catch (error) {
    throw new DriveCommandError((error as Error).message);
  }
  return { parameter: p.name, table: 'holding', address: p.address, value: Number(decodeParameter(p, words)), words, holdMs: 0, ...extra };
}

function controlWrites(profile: DriveProfile, steps: readonly CommandStep[], status: number | undefined): PlannedWrite[] {
  const control = parameterNamed(profile, profile.controlWord.parameter);
  const bits = status === undefined ? undefined : decodeStatusWord(profile, status).bits;
  return steps
    .filter((step) => !(bits && step.skipIf && statusMatches(bits, step.skipIf)))
    .map((step) => writeOf(control, step.controlWord, { holdMs: step.holdMs ?? 0, awaitStatus: step.awaitStatus, note: step.note }));
}

/**
 * The writes for a start on a drive that takes its direction from the setpoint sign: the setpoint
 * with the wanted sign (when the current setpoint is known), then the start sequence.
 */
function signedStart(profile: DriveProfile, reverse: boolean, context: CommandContext): PlannedWrite[] {
  const steps = controlWrites(profile, profile.controlWord.commands.startForward.steps, context.status);
  if (context.setpoint === undefined) {
    if (reverse) throw new DriveCommandError(`${profile.id} reverses by the sign of the setpoint: the current setpoint is needed to start in reverse`);
    return steps;
  }
  const magnitude = Math.abs(context.setpoint);
  const signed = reverse ? -magnitude : magnitude;
  if (signed === context.setpoint) return steps;
  const setpoint = parameterNamed(profile, profile.setpoint.parameter);
  return [writeOf(setpoint, signed, { note: reverse ? 'negative setpoint = reverse' : 'positive setpoint = forward' }), ...steps];
}

/** The writes that carry out `command` on a drive with this profile. */
export function planCommand(profile: DriveProfile, command: DriveCommand, context: CommandContext = {}): PlannedWrite[] {
  switch (command.kind) {
    case 'setpoint':
      return [writeOf(parameterNamed(profile, profile.setpoint.parameter), command.value)];
    case 'write': {
      const p = profile.parameters.find((q) => q.name === command.parameter);
      if (!p) throw new DriveCommandError(`${profile.id} has no parameter named "${command.parameter}"`);
      return [writeOf(p, command.value)];
    }
    default: {
      const direction = profile.controlWord.direction;
      if (direction === 'signedSetpoint' && (command.kind === 'startForward' || command.kind === 'startReverse')) {
        return signedStart(profile, command.kind === 'startReverse', context);
      }
      const definition = profile.controlWord.commands[command.kind];
      if (!definition) {
        const why = command.kind === 'startReverse' && direction === 'none' ? 'this drive cannot be reversed over this interface' : 'the profile does not define it';
        throw new DriveCommandError(`${profile.id} has no ${command.kind} command: ${why}`);
      }
      return controlWrites(profile, definition.steps, context.status);
    }
  }
}
