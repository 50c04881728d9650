/**
 * The conduit policy: what may cross between two IEC 62443 zones (docs/zones.md § "Rule reference").
 * A policy is plain JSON, validated strictly here (unknown fields, wrong types and impossible
 * bounds are errors that name the rule and the field) and hashed canonically for export (SR 7.6).
 * An empty rule list is valid and denies everything (SR 5.2 RE1: deny by default).
 *
 * The field set follows the common OT firewall fields of reference/security.md §2.10 (zone pair and
 * direction, identity, operation with Modbus FC / address range, Sparkplug message type and OPC UA
 * service, asset and metric, value bounds, rate, time window, action).
 */
import { canonicalJson, sha256Hex } from './canonical';
import { topicPatternProblem } from './patterns';
import { JsonDuplicateKeyError, parseJsonStrict } from '../json-strict';

export type Direction = 'it->ot' | 'ot->it' | 'lateral';
export type Operation = 'read' | 'write' | 'command';
export type Action = 'allow' | 'deny' | 'allow-and-alert';
export type ValueType = 'number' | 'integer' | 'boolean' | 'string' | 'any';
export type Weekday = 'sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat';

export const DIRECTIONS: readonly Direction[] = ['it->ot', 'ot->it', 'lateral'];
export const OPERATIONS: readonly Operation[] = ['read', 'write', 'command'];
export const ACTIONS: readonly Action[] = ['allow', 'deny', 'allow-and-alert'];
export const VALUE_TYPES: readonly ValueType[] = ['number', 'integer', 'boolean', 'string', 'any'];
export const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
export const SPARKPLUG_MESSAGE_TYPES = ['NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH', 'NDATA', 'DDATA', 'NCMD', 'DCMD', 'STATE'] as const;
/** OPC UA services a conduit can name (OPC 10000-4 service names). */
export const OPCUA_SERVICES = ['Browse', 'Read', 'Write', 'Call', 'HistoryRead', 'HistoryUpdate', 'CreateMonitoredItems', 'AddNodes', 'DeleteNodes'] as const;

export interface PrincipalSelector {
  /** Principal id patterns (`*` = any run of characters), e.g. "mqtt:mes-01*". */
  id?: string[];
  via?: Array<'mqtt' | 'sparkplug' | 'opcua' | 'dashboard' | 'flow'>;
  user?: string[];
  clientId?: string[];
  hostId?: string[];
  certificateCN?: string[];
}

/** An inclusive address range, 0-based protocol addresses (docs/zones.md § "modbus"). */
export interface AddressRange { from: number; to: number }

export interface ModbusSelector {
  fc?: number[];
  unit?: number[];
  /** Inclusive ranges, written "100-199", "500" or a list of them; the whole span of a request must lie in one. */
  address?: AddressRange[];
}

export interface ValueBounds {
  type: ValueType;
  /** Always true: non-finite numbers never cross a conduit. Accepted for explicitness. */
  finite?: true;
  min?: number;
  max?: number;
  /** Largest allowed change from the last allowed value of the same asset/metric. */
  maxStep?: number;
  /** Strings: most UTF-16 code units. Default 256. */
  maxLength?: number;
  /** Allowed values (strings, numbers, booleans): exact match. */
  enum?: Array<string | number | boolean>;
}

export interface RateLimit {
  /** Messages per window; also the burst size. */
  count: number;
  perSeconds: number;
  /** One bucket for the rule, or one per principal. */
  per: 'rule' | 'principal';
}

export interface TimeWindow {
  /** Days on which the window starts (an overnight window ends the next morning). */
  days: Weekday[];
  /** Plant local time "HH:MM", 24 h. */
  from: string;
  to: string;
}

export interface Rule {
  id: string;
  description?: string;
  direction?: Direction[];
  sourceZone?: string[];
  destinationZone?: string[];
  principal?: PrincipalSelector;
  operation?: Operation[];
  modbus?: ModbusSelector;
  sparkplug?: { messageType: string[] };
  opcua?: { service: string[] };
  asset?: string[];
  metric?: string[];
  value?: ValueBounds;
  rate?: RateLimit;
  window?: TimeWindow;
  action: Action;
}

export interface Policy {
  /** IANA time zone of the plant, for time windows; default "UTC". */
  timeZone: string;
  /** A write or command whose timestamp is older than this (or as far in the future) is refused (T-RPL-01/03). */
  maxWriteAgeMs: number;
  /** Refuse writes and commands that carry no timestamp (then every write can be checked for age and replay). */
  requireWriteTimestamp: boolean;
  rules: Rule[];
}

export const DEFAULT_MAX_WRITE_AGE_MS = 10_000;
export const DEFAULT_STRING_MAX_LENGTH = 256;

export class PolicyError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid conduit policy: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
    this.name = 'PolicyError';
    Object.setPrototypeOf(this, PolicyError.prototype);
  }
}

// ------------------------------------------------------------------------------- validation

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects problems with the place they were found: "rule 3 (r-speed) field value.min: …". */
class Problems {
  readonly list: string[] = [];
  constructor(private readonly where: string) {}
  add(field: string, text: string): void {
    this.list.push(`${this.where} field ${field}: ${text}`);
  }
  at(where: string): Problems {
    const child = new Problems(where);
    (child as { list: string[] }).list = this.list;
    return child;
  }
}

function onlyKnownKeys(raw: Raw, known: readonly string[], problems: Problems, prefix: string): void {
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) problems.add(`${prefix}${key}`, `unknown field (known: ${known.join(', ')})`);
  }
}

/** A string or a non-empty list of strings, each accepted by `check` (which returns a problem or undefined). */
function stringList(raw: unknown, field: string, problems: Problems, check?: (s: string) => string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) {
    problems.add(field, 'must be a non-empty string or a non-empty list of non-empty strings');
    return undefined;
  }
  for (const s of list as string[]) {
    const problem = check?.(s);
    if (problem) problems.add(field, `${JSON.stringify(s)} ${problem}`);
  }
  return list as string[];
}

function oneOf<T extends string>(allowed: readonly T[]): (s: string) => string | undefined {
  return (s) => (allowed.includes(s as T) ? undefined : `is not one of ${allowed.join(', ')}`);
}

function finiteNumber(raw: unknown, field: string, problems: Problems, check?: (n: number) => string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'number' || !Number.isFinite(raw)) {
    problems.add(field, `must be a finite number, got ${JSON.stringify(raw) ?? String(raw)}`);
    return undefined;
  }
  const problem = check?.(raw);
  if (problem) {
    problems.add(field, problem);
    return undefined;
  }
  return raw;
}

function integerList(raw: unknown, field: string, problems: Problems, min: number, max: number): number[] | undefined {
  if (raw === undefined) return undefined;
  const list = typeof raw === 'number' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((n) => Number.isInteger(n) && n >= min && n <= max)) {
    problems.add(field, `must be an integer ${min}…${max} or a non-empty list of them`);
    return undefined;
  }
  return list as number[];
}

const RANGE = /^(\d+)(?:-(\d+))?$/;

function addressRanges(raw: unknown, field: string, problems: Problems): AddressRange[] | undefined {
  if (raw === undefined) return undefined;
  const list = Array.isArray(raw) ? raw : [raw];
  const ranges: AddressRange[] = [];
  for (const item of list) {
    const match = typeof item === 'number' ? [String(item), String(item)] : typeof item === 'string' ? RANGE.exec(item.trim())?.slice(1) : undefined;
    const from = match ? Number(match[0]) : NaN;
    const to = match ? Number(match[1] ?? match[0]) : NaN;
    if (!Number.isInteger(from) || !Number.isInteger(to) || from > to || to > 65535) {
      problems.add(field, `${JSON.stringify(item)} is not an address range such as "100-199" or 500 (0…65535, from ≤ to)`);
      return undefined;
    }
    ranges.push({ from, to });
  }
  if (ranges.length === 0) problems.add(field, 'must name at least one range');
  return ranges;
}

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes after local midnight of "HH:MM". */
export function minutesOfClock(text: string): number {
  const match = CLOCK.exec(text);
  if (!match) throw new RangeError(`not a clock time HH:MM: ${text}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function parsePrincipal(raw: unknown, problems: Problems): PrincipalSelector | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) {
    problems.add('principal', 'must be an object such as {"id": ["mqtt:mes-01*"]}');
    return undefined;
  }
  onlyKnownKeys(raw, ['id', 'via', 'user', 'clientId', 'hostId', 'certificateCN'], problems, 'principal.');
  const selector: PrincipalSelector = {
    id: stringList(raw.id, 'principal.id', problems),
    via: stringList(raw.via, 'principal.via', problems, oneOf(['mqtt', 'sparkplug', 'opcua', 'dashboard', 'flow'])) as PrincipalSelector['via'],
    user: stringList(raw.user, 'principal.user', problems),
    clientId: stringList(raw.clientId, 'principal.clientId', problems),
    hostId: stringList(raw.hostId, 'principal.hostId', problems),
    certificateCN: stringList(raw.certificateCN, 'principal.certificateCN', problems),
  };
  if (Object.values(selector).every((v) => v === undefined)) problems.add('principal', 'names no field to match (id, via, user, clientId, hostId, certificateCN)');
  return selector;
}

function parseValue(raw: unknown, problems: Problems): ValueBounds | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) {
    problems.add('value', 'must be an object such as {"type": "number", "min": 0, "max": 1500}');
    return undefined;
  }
  onlyKnownKeys(raw, ['type', 'finite', 'min', 'max', 'maxStep', 'maxLength', 'enum'], problems, 'value.');
  const type = raw.type as ValueType;
  if (!VALUE_TYPES.includes(type)) problems.add('value.type', `must be one of ${VALUE_TYPES.join(', ')}`);
  if (raw.finite !== undefined && raw.finite !== true) problems.add('value.finite', 'can only be true: NaN and ±Infinity never cross a conduit');
  const numeric = type === 'number' || type === 'integer';
  for (const key of ['min', 'max', 'maxStep'] as const) {
    if (raw[key] !== undefined && !numeric) problems.add(`value.${key}`, `applies to type number or integer, not ${String(type)}`);
  }
  const min = finiteNumber(raw.min, 'value.min', problems);
  const max = finiteNumber(raw.max, 'value.max', problems);
  if (min !== undefined && max !== undefined && min > max) problems.add('value.max', `${max} is below value.min ${min}`);
  const maxStep = finiteNumber(raw.maxStep, 'value.maxStep', problems, (n) => (n > 0 ? undefined : `must be > 0, got ${n}`));
  if (raw.maxLength !== undefined && type !== 'string') problems.add('value.maxLength', `applies to type string, not ${String(type)}`);
  const maxLength = finiteNumber(raw.maxLength, 'value.maxLength', problems, (n) => (Number.isInteger(n) && n >= 0 ? undefined : `must be an integer ≥ 0, got ${n}`));
  let allowed: ValueBounds['enum'];
  if (raw.enum !== undefined) {
    if (!Array.isArray(raw.enum) || raw.enum.length === 0 || !raw.enum.every((v) => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))) {
      problems.add('value.enum', 'must be a non-empty list of strings, finite numbers or booleans');
    } else {
      allowed = raw.enum as ValueBounds['enum'];
    }
  }
  return { type, ...(raw.finite === true ? { finite: true } : {}), min, max, maxStep, maxLength, enum: allowed };
}

function parseRate(raw: unknown, problems: Problems): RateLimit | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) {
    problems.add('rate', 'must be an object such as {"count": 10, "perSeconds": 60, "per": "principal"}');
    return undefined;
  }
  onlyKnownKeys(raw, ['count', 'perSeconds', 'per'], problems, 'rate.');
  const count = finiteNumber(raw.count, 'rate.count', problems, (n) => (Number.isInteger(n) && n >= 1 ? undefined : `must be an integer ≥ 1, got ${n}`));
  const perSeconds = finiteNumber(raw.perSeconds, 'rate.perSeconds', problems, (n) => (n > 0 && n <= 86_400 ? undefined : `must be > 0 and ≤ 86400, got ${n}`));
  if (raw.count === undefined) problems.add('rate.count', 'is required');
  if (raw.perSeconds === undefined) problems.add('rate.perSeconds', 'is required');
  const per = raw.per ?? 'rule';
  if (per !== 'rule' && per !== 'principal') problems.add('rate.per', 'must be "rule" or "principal"');
  return count !== undefined && perSeconds !== undefined ? { count, perSeconds, per: per as RateLimit['per'] } : undefined;
}

function parseWindow(raw: unknown, problems: Problems): TimeWindow | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) {
    problems.add('window', 'must be an object such as {"days": ["mon","tue"], "from": "06:00", "to": "22:00"}');
    return undefined;
  }
  onlyKnownKeys(raw, ['days', 'from', 'to'], problems, 'window.');
  const days = raw.days === undefined ? [...WEEKDAYS] : stringList(raw.days, 'window.days', problems, oneOf(WEEKDAYS));
  for (const key of ['from', 'to'] as const) {
    if (typeof raw[key] !== 'string' || !CLOCK.test(raw[key] as string)) problems.add(`window.${key}`, `must be a clock time "HH:MM" (00:00…23:59), got ${JSON.stringify(raw[key]) ?? 'nothing'}`);
  }
  if (raw.from === raw.to && typeof raw.from === 'string') problems.add('window.to', 'equals window.from: the window would be empty');
  return days ? { days: days as Weekday[], from: String(raw.from), to: String(raw.to) } : undefined;
}

const RULE_FIELDS = ['id', 'description', 'direction', 'sourceZone', 'destinationZone', 'principal', 'operation', 'modbus', 'sparkplug', 'opcua', 'asset', 'metric', 'value', 'rate', 'window', 'action'] as const;

function parseRule(raw: unknown, index: number, seen: Set<string>, problems: Problems): Rule | undefined {
  const idText = isRecord(raw) && typeof raw.id === 'string' ? ` (${raw.id})` : '';
  const p = problems.at(`rule ${index + 1}${idText}`);
  if (!isRecord(raw)) {
    p.add('(rule)', 'must be an object');
    return undefined;
  }
  onlyKnownKeys(raw, RULE_FIELDS, p, '');
  if (typeof raw.id !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(raw.id)) p.add('id', 'must be 1–64 characters of A–Z a–z 0–9 _ . : -');
  else if (seen.has(raw.id)) p.add('id', `"${raw.id}" is used by an earlier rule`);
  else seen.add(raw.id);
  if (raw.description !== undefined && typeof raw.description !== 'string') p.add('description', 'must be a string');
  const action = raw.action as Action;
  if (!ACTIONS.includes(action)) p.add('action', `must be one of ${ACTIONS.join(', ')}`);
  const operation = stringList(raw.operation, 'operation', p, oneOf(OPERATIONS)) as Operation[] | undefined;

  let modbus: ModbusSelector | undefined;
  if (raw.modbus !== undefined) {
    if (!isRecord(raw.modbus)) p.add('modbus', 'must be an object such as {"fc": [6, 16], "address": "100-199"}');
    else {
      onlyKnownKeys(raw.modbus, ['fc', 'unit', 'address'], p, 'modbus.');
      modbus = { fc: integerList(raw.modbus.fc, 'modbus.fc', p, 1, 127), unit: integerList(raw.modbus.unit, 'modbus.unit', p, 0, 255), address: addressRanges(raw.modbus.address, 'modbus.address', p) };
    }
  }
  const protocolList = (field: 'sparkplug' | 'opcua', key: string, allowed: readonly string[]) => {
    const value = raw[field];
    if (value === undefined) return undefined;
    if (!isRecord(value)) {
      p.add(field, `must be an object such as {"${key}": ["${allowed[0]}"]}`);
      return undefined;
    }
    onlyKnownKeys(value, [key], p, `${field}.`);
    return stringList(value[key], `${field}.${key}`, p, oneOf(allowed));
  };
  const messageType = protocolList('sparkplug', 'messageType', SPARKPLUG_MESSAGE_TYPES);
  const service = protocolList('opcua', 'service', OPCUA_SERVICES);

  const value = parseValue(raw.value, p);
  const allows = action === 'allow' || action === 'allow-and-alert';
  const mayWrite = operation === undefined || operation.includes('write');
  // SR 3.5: every value written across a boundary is checked; an allow rule for writes states its bounds.
  if (allows && mayWrite && value === undefined) {
    p.add('value', `an allow rule that can match writes${operation === undefined ? ' (no operation given: it matches every operation)' : ''} must set value bounds, at least {"type": …}`);
  }
  const rule: Rule = {
    id: String(raw.id),
    description: typeof raw.description === 'string' ? raw.description : undefined,
    direction: stringList(raw.direction, 'direction', p, oneOf(DIRECTIONS)) as Direction[] | undefined,
    sourceZone: stringList(raw.sourceZone, 'sourceZone', p),
    destinationZone: stringList(raw.destinationZone, 'destinationZone', p),
    principal: parsePrincipal(raw.principal, p),
    operation,
    modbus,
    sparkplug: messageType ? { messageType } : undefined,
    opcua: service ? { service } : undefined,
    asset: stringList(raw.asset, 'asset', p, topicPatternProblem),
    metric: stringList(raw.metric, 'metric', p, (s) => (s === '__proto__' ? 'is never a metric' : topicPatternProblem(s))),
    value,
    rate: parseRate(raw.rate, p),
    window: parseWindow(raw.window, p),
    action,
  };
  return rule;
}

/** Drops undefined fields, so an exported policy reads like the one written. */
function compact<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * The policy in `raw` (an object, or JSON text), or a PolicyError listing every problem with the
 * rule (1-based index and id) and the field. Nothing of an invalid policy is ever used.
 */
export function parsePolicy(raw: unknown): Policy {
  if (typeof raw === 'string') {
    try {
      raw = parseJsonStrict(raw);
    } catch (error) {
      if (error instanceof JsonDuplicateKeyError) throw new PolicyError([`policy: ${error.message}`]);
      throw new PolicyError([`policy is not JSON: ${(error as Error).message.slice(0, 200)}`]);
    }
  }
  const problems = new Problems('policy');
  if (!isRecord(raw)) throw new PolicyError(['policy must be an object such as {"rules": []}']);
  onlyKnownKeys(raw, ['timeZone', 'maxWriteAgeMs', 'requireWriteTimestamp', 'rules'], problems, '');
  const timeZone = raw.timeZone ?? 'UTC';
  if (typeof timeZone !== 'string' || !validTimeZone(timeZone)) problems.add('timeZone', `must be an IANA time zone such as "Europe/Berlin", got ${JSON.stringify(timeZone)}`);
  const maxWriteAgeMs = raw.maxWriteAgeMs === undefined ? DEFAULT_MAX_WRITE_AGE_MS
    : finiteNumber(raw.maxWriteAgeMs, 'maxWriteAgeMs', problems, (n) => (n >= 1 && n <= 3_600_000 ? undefined : `must be 1…3600000 ms, got ${n}`));
  if (raw.requireWriteTimestamp !== undefined && typeof raw.requireWriteTimestamp !== 'boolean') problems.add('requireWriteTimestamp', 'must be true or false');
  const rulesRaw = raw.rules ?? [];
  if (!Array.isArray(rulesRaw)) problems.add('rules', 'must be a list');
  const seen = new Set<string>();
  const rules = Array.isArray(rulesRaw) ? rulesRaw.map((r, i) => parseRule(r, i, seen, problems)) : [];
  if (problems.list.length > 0) throw new PolicyError(problems.list);
  return compact({
    timeZone: timeZone as string,
    maxWriteAgeMs: maxWriteAgeMs ?? DEFAULT_MAX_WRITE_AGE_MS,
    requireWriteTimestamp: raw.requireWriteTimestamp === true,
    rules: rules as Rule[],
  });
}

/** SHA-256 of the canonical JSON of a validated policy: the same policy has the same hash whatever its key order (SR 7.6). */
export function policyHash(policy: Policy): string {
  return sha256Hex(canonicalJson(policy));
}

/** The active policy as a machine-readable report (SR 7.6 RE1): the policy and its hash. */
export function exportPolicy(policy: Policy): { policy: Policy; hash: string } {
  return { policy, hash: policyHash(policy) };
}
