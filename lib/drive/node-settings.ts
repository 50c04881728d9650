/**
 * The uns-vfd node's configuration (strings from the editor, numbers from hand-written flows) →
 * checked settings for the DriveController. An empty guard field means "the profile's value";
 * whether a filled one lies within what the drive accepts is checked by CommandGuard against the
 * profile once it is loaded. Property names are documented in docs/uns-vfd.md.
 */
import { topicLevelsProblem } from '../uns/topics';
import { sendSettingsFrom, SendSettings } from '../modbus/report-by-exception';
import { GuardOverrides } from './controller';

/** The node properties, as the editor stores them. */
export interface DriveNodeConfig {
  unitId?: number | string;
  profile?: string;
  interval?: number | string;
  topic?: string;
  statusParameter?: string;
  setpointMin?: number | string;
  setpointMax?: number | string;
  maxRamp?: number | string;
  onViolation?: string;
  /** 'profile' (default), 'on' or 'off'. */
  arm?: string;
  armTimeout?: number | string;
  /** Report by exception (lib/modbus/report-by-exception.ts): 'every' (default) or 'changes'. */
  send?: string;
  deadbands?: string | Record<string, number>;
  /** Seconds; empty = 60, 0 = never. */
  refresh?: number | string;
}

export interface DriveNodeSettings {
  unitId: number;
  profileId: string;
  intervalMs: number;
  topic: string;
  statusParameter?: string;
  guard: GuardOverrides;
  /** Present when the user picked "only changed values" (report by exception). */
  send?: SendSettings;
}

export class DriveSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'DriveSettingsError';
    Object.setPrototypeOf(this, DriveSettingsError.prototype);
  }
}

export const DEFAULT_PROFILE_ID = 'uns-edge-simulated-drive';
export const DEFAULT_INTERVAL_MS = 1000;

const isEmpty = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

/** A number from a field, undefined when empty, NaN when not a number. */
function fieldNumber(v: unknown): number | undefined {
  if (isEmpty(v)) return undefined;
  return typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
}

export function driveNodeSettings(config: DriveNodeConfig): DriveNodeSettings {
  const problems: string[] = [];
  const integer = (v: unknown, name: string, min: number, max: number, fallback: number): number => {
    const n = fieldNumber(v) ?? fallback;
    if (!(Number.isInteger(n) && n >= min && n <= max)) problems.push(`${name} must be an integer ${min}..${max}, got ${String(v)}`);
    return n;
  };
  const optional = (v: unknown, name: string): number | undefined => {
    const n = fieldNumber(v);
    if (n !== undefined && !Number.isFinite(n)) problems.push(`${name} must be a number or empty (the profile's value), got ${String(v)}`);
    return n;
  };

  // Modbus over Serial Line v1.02 §2.2: 1..247 address devices; Modbus TCP gateways also use 0 and 255.
  const unitId = integer(config.unitId, 'unit id', 0, 255, 1);
  const intervalMs = integer(config.interval, 'poll interval', 0, 86_400_000, DEFAULT_INTERVAL_MS);
  const topic = (config.topic ?? '').trim();
  const topicProblem = topic === '' ? undefined : topicLevelsProblem(topic);
  if (topicProblem) problems.push(`asset path ${topicProblem}`);
  const profileId = (config.profile ?? '').trim() || DEFAULT_PROFILE_ID;

  const guard: GuardOverrides = {};
  const setpointMin = optional(config.setpointMin, 'setpoint minimum');
  const setpointMax = optional(config.setpointMax, 'setpoint maximum');
  const maxRamp = optional(config.maxRamp, 'maximum ramp');
  if (setpointMin !== undefined) guard.setpointMin = setpointMin;
  if (setpointMax !== undefined) guard.setpointMax = setpointMax;
  if (maxRamp !== undefined) guard.maxRampPerSecond = maxRamp;
  if (!isEmpty(config.onViolation) && config.onViolation !== 'profile') {
    if (config.onViolation === 'reject' || config.onViolation === 'clamp') guard.onViolation = config.onViolation;
    else problems.push(`on violation must be reject, clamp or empty, got ${String(config.onViolation)}`);
  }
  if (config.arm === 'on' || config.arm === 'off') guard.armRequired = config.arm === 'on';
  else if (!isEmpty(config.arm) && config.arm !== 'profile') problems.push(`arm must be profile, on or off, got ${String(config.arm)}`);
  const armTimeout = fieldNumber(config.armTimeout);
  if (armTimeout !== undefined) guard.armTimeoutMs = integer(armTimeout, 'arm timeout (ms)', 100, 600_000, armTimeout);

  let send: SendSettings = { send: 'every' };
  try {
    send = sendSettingsFrom(config);
  } catch (error) {
    problems.push((error as Error).message);
  }

  if (problems.length) throw new DriveSettingsError(problems);
  const settings: DriveNodeSettings = { unitId, profileId, intervalMs, topic, guard };
  if (send.send === 'changes') settings.send = send;
  const statusParameter = (config.statusParameter ?? '').trim();
  if (statusParameter) settings.statusParameter = statusParameter;
  return settings;
}
