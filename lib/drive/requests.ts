/**
 * What a message asks a drive to do, checked before anything goes on the wire. Two shapes:
 *
 * - a command: `{ command: 'start' | 'stop' | 'reverse' | 'faultReset' | 'setpoint' | …, value? }`;
 *   `{ command: 'arm', action: 'start', value? }` arms one (for channels that carry only a payload,
 *   e.g. MQTT or a Sparkplug DCMD); `{ command: 'execute', ticket? }` executes the armed command;
 *   `{ command: 'cancel' }` drops it;
 * - a write in tag batch form, as uns-in or a Sparkplug DCMD produce it: `{ speedSetpoint: 1200 }`
 *   (the setpoint register is a setpoint command; other writable parameters are parameter writes).
 *
 * A message that names an unknown command or parameter, a read-only register, the raw control
 * word or a non-numeric value is refused as a whole with the reason: nothing of it is written.
 *
 * A value is a finite JS number, or a plain decimal string ("1200", "-12.5": from a text field).
 * Nothing else is coerced: Number() would read "0x3E8" as 1000, "1e3" as 1000, " 12 " as 12, ""
 * as 0 and true as 1 — a hex string in a setpoint must be refused, not written (docs/uns-vfd.md).
 */
import { DriveCommand } from './commands';
import { CommandName, DriveProfile } from './profile';

export class DriveRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriveRequestError';
    Object.setPrototypeOf(this, DriveRequestError.prototype);
  }
}

export type DriveRequest =
  | { kind: 'commands'; commands: DriveCommand[]; arm: boolean }
  | { kind: 'execute'; ticket?: string }
  | { kind: 'cancel' };

/** Command words a message may use, and the profile command each means. */
const CONTROL_ALIASES: Readonly<Record<string, CommandName>> = {
  start: 'startForward',
  startForward: 'startForward',
  forward: 'startForward',
  reverse: 'startReverse',
  startReverse: 'startReverse',
  stop: 'stop',
  coastStop: 'coastStop',
  quickStop: 'quickStop',
  faultReset: 'faultReset',
  reset: 'faultReset',
};

/** The command words, for error messages and help. */
export const REQUEST_COMMANDS: readonly string[] = [...Object.keys(CONTROL_ALIASES), 'setpoint', 'arm', 'execute', 'cancel'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text from a message in an error or audit record: quoted, at most this many characters of it. */
const QUOTED_TEXT_LIMIT = 64;

/** `text` in quotes, cut to QUOTED_TEXT_LIMIT characters, so a huge string makes no huge log line. */
export function quoted(text: string): string {
  return text.length > QUOTED_TEXT_LIMIT ? `${JSON.stringify(text.slice(0, QUOTED_TEXT_LIMIT))}…` : JSON.stringify(text);
}

/** A plain decimal number as text: digits, an optional minus sign and fraction; no exponent, hex, sign + or blanks. */
const DECIMAL = /^-?\d+(\.\d+)?$/;

function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${quoted(value)}`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'bigint') return `the bigint ${value}`;
  if (value === null || value === undefined) return String(value);
  return typeof value === 'object' ? (Array.isArray(value) ? 'an array' : 'an object') : `${typeof value} ${String(value)}`;
}

/** A finite JS number, or a plain decimal string ("1200" from a text field); nothing else is coerced. */
export function numberFrom(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && DECIMAL.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new DriveRequestError(`${what} needs a finite number or a plain decimal string such as "1200", got ${describeValue(value)}`);
  return n;
}

function controlCommand(profile: DriveProfile, word: string, value: unknown): DriveCommand {
  if (word === 'setpoint') return { kind: 'setpoint', value: numberFrom(value, 'setpoint') };
  const kind = Object.hasOwn(CONTROL_ALIASES, word) ? CONTROL_ALIASES[word] : undefined;
  if (!kind) throw new DriveRequestError(`unknown command ${quoted(word)}; use one of ${REQUEST_COMMANDS.join(', ')}`);
  if (kind !== 'startReverse' && !profile.controlWord.commands[kind]) {
    throw new DriveRequestError(`${profile.id} has no ${kind} command (it has ${Object.keys(profile.controlWord.commands).join(', ')})`);
  }
  if (kind === 'startReverse' && profile.controlWord.direction === 'none') throw new DriveRequestError(`${profile.id} cannot be reversed over this interface`);
  return { kind };
}

function writeCommands(profile: DriveProfile, payload: Record<string, unknown>): DriveCommand[] {
  const entries = Object.entries(payload);
  if (entries.length === 0) throw new DriveRequestError('the payload names no command and no parameter to write');
  const writable = profile.parameters.filter((p) => p.access === 'RW' && p.name !== profile.controlWord.parameter).map((p) => p.name);
  return entries.map(([name, value]) => {
    const p = profile.parameters.find((q) => q.name === name);
    if (!p) throw new DriveRequestError(`${profile.id} has no parameter ${quoted(name)} (writable: ${writable.join(', ')})`);
    if (name === profile.controlWord.parameter) throw new DriveRequestError(`${name} is written only through commands (${Object.keys(profile.controlWord.commands).join(', ')})`);
    if (p.access !== 'RW') throw new DriveRequestError(`${name} is read-only (writable: ${writable.join(', ')})`);
    const number = numberFrom(value, name);
    return name === profile.setpoint.parameter ? { kind: 'setpoint', value: number } : { kind: 'write', parameter: name, value: number };
  });
}

/**
 * The request in `payload`; `arm` is msg.arm === true (arm instead of run). Throws
 * DriveRequestError with the reason.
 */
export function parseDriveRequest(profile: DriveProfile, payload: unknown, arm = false): DriveRequest {
  if (typeof payload === 'string') payload = { command: payload };
  if (!isRecord(payload)) throw new DriveRequestError(`msg.payload must be an object such as {"command":"start"} or {"${profile.setpoint.parameter}":…}, got ${Array.isArray(payload) ? 'an array' : typeof payload}`);
  if (!('command' in payload)) {
    const commands = writeCommands(profile, payload);
    if (arm && commands.length > 1) throw new DriveRequestError('arm one write at a time (the payload names several parameters)');
    return { kind: 'commands', commands, arm };
  }
  const { command } = payload;
  if (typeof command !== 'string') throw new DriveRequestError(`command must be a string, got ${typeof command}`);
  switch (command) {
    case 'execute':
      if (payload.ticket !== undefined && typeof payload.ticket !== 'string') throw new DriveRequestError('ticket must be a string (from the armed audit record)');
      return payload.ticket === undefined ? { kind: 'execute' } : { kind: 'execute', ticket: payload.ticket };
    case 'cancel':
      return { kind: 'cancel' };
    case 'arm':
      if (typeof payload.action !== 'string' || ['arm', 'execute', 'cancel'].includes(payload.action)) {
        throw new DriveRequestError('arm needs an action to arm, e.g. {"command":"arm","action":"start"}');
      }
      return { kind: 'commands', commands: [controlCommand(profile, payload.action, payload.value)], arm: true };
    default:
      return { kind: 'commands', commands: [controlCommand(profile, command, payload.value)], arm };
  }
}

/** Parameter names listed in requestSummary at most. */
const SUMMARY_NAMES_LIMIT = 5;

/**
 * What a message asked for, for the audit record of a request refused before it could be parsed:
 * `"jump"`, `setpoint "0x3E8"`, `write "speedSetpoint", "__proto__"`, `msg.payload (number)`.
 * Message text is quoted and cut (quoted()), so it cannot forge a log line or make a huge one.
 */
export function requestSummary(payload: unknown): string {
  if (typeof payload === 'string') return quoted(payload);
  if (!isRecord(payload)) return `msg.payload (${Array.isArray(payload) ? 'array' : payload === null ? 'null' : typeof payload})`;
  if ('command' in payload) {
    const { command } = payload;
    if (typeof command !== 'string') return `command (${typeof command})`;
    if (command === 'setpoint' && typeof payload.value === 'string') return `setpoint ${quoted(payload.value)}`;
    if (command === 'setpoint' && typeof payload.value === 'number') return `setpoint ${payload.value}`;
    return quoted(command);
  }
  const names = Object.keys(payload);
  const more = names.length > SUMMARY_NAMES_LIMIT ? ` and ${names.length - SUMMARY_NAMES_LIMIT} more` : '';
  return `write ${names.slice(0, SUMMARY_NAMES_LIMIT).map(quoted).join(', ')}${more}`;
}
