/**
 * The conduit evaluator: one decision per message crossing from one zone to another
 * (docs/zones.md § "How a message is decided"). Default deny (SR 5.2 RE1), first matching rule
 * wins, island mode stops everything (SR 5.2 RE2), and any error while deciding denies (SR 5.2
 * RE3: fail close). Rules are compiled once per policy; a reload swaps the compiled set in one
 * assignment, so no message is ever decided by half of one policy and half of another (T-POL-02).
 *
 * A tag batch (read) passes the metrics its rules allow and drops the others, listing them in the
 * decision. A write or command is all-or-nothing (SR 3.6: no partial writes). Writes that are
 * retained, too old, in the future or seen before are refused (T-RPL-01…03). What passes is a
 * fresh payload holding exactly the values that were checked, so a getter or a later edit of the
 * input object cannot change a value after its check.
 */
import { principalOf, type Principal } from '../principal';
import { isPlainObject } from '../values';
import { nameMatcher, topicMatcher, type Matcher } from './patterns';
import { PlantClock, inWindow, WEEKDAY_NAMES } from './plant-time';
import { minutesOfClock, policyHash, DEFAULT_STRING_MAX_LENGTH, type Action, type Direction, type Operation, type Policy, type Rule, type ValueBounds } from './policy';
import { RateLimiter, DEFAULT_MAX_RATE_KEYS, type Bucket } from './rate-limiter';

/** A zone as a conduit sees it: its name and Purdue level (0…4, 3.5 = DMZ). */
export interface ZoneInfo {
  name: string;
  level: number;
}

/** A message moving to a lower Purdue level goes toward the process (IT→OT), to a higher one away from it. */
export function directionBetween(source: ZoneInfo, destination: ZoneInfo): Direction {
  if (destination.level < source.level) return 'it->ot';
  if (destination.level > source.level) return 'ot->it';
  return 'lateral';
}

export interface ConduitClock {
  /** Monotonic ms, for rate limits (never steps). */
  monotonicMs(): number;
  /** Wall-clock ms since the epoch, for time windows and write timestamps. */
  wallMs(): number;
}

export const systemClock: ConduitClock = { monotonicMs: () => performance.now(), wallMs: () => Date.now() };

export interface ConduitOptions {
  source: ZoneInfo;
  destination: ZoneInfo;
  /** How messages are classed before their own shape raises it: auto = write when IT→OT, else read. */
  traffic?: 'auto' | 'read' | 'write';
  clock?: ConduitClock;
  maxRateKeys?: number;
  /** Asset/metric pairs whose last allowed value is kept for maxStep; full → new pairs refused. */
  maxStepKeys?: number;
  /** Write timestamps remembered for replay detection; full of unexpired entries → writes refused. */
  maxReplayKeys?: number;
  /** Called when the wall clock moves against the monotonic clock by more than a second (SR 2.11, T-CLK-01). */
  onClockStep?: (stepMs: number) => void;
}

export interface DroppedMetric {
  metric: string;
  /** The rule that decided, or null when no rule matched (default deny). */
  ruleId: string | null;
  reason: string;
}

export type DecisionResult = 'allow' | 'partial' | 'deny';

export interface Decision {
  result: DecisionResult;
  /** An allow-and-alert rule allowed something. */
  alert: boolean;
  /**
   * access-control: decided by the policy; island: island mode; engine-error: the evaluator failed
   * (denied); audit: held because the audit does not yet say which policy decides (denied).
   */
  category: 'access-control' | 'island' | 'engine-error' | 'audit';
  operation: Operation;
  direction: Direction;
  asset: string | null;
  principal: string | null;
  /** Rules that allowed a metric, or the rule that denied; in rule order of first use. */
  ruleIds: string[];
  allowed: string[];
  dropped: DroppedMetric[];
  /** Why the message was denied as a whole. */
  reason?: string;
  /** What passes: a fresh object with the allowed metrics (the command object for commands). */
  payload?: unknown;
}

/** Limits of one message (T-DOS): past them the message is refused before any per-metric work. */
export const MAX_METRICS_PER_MESSAGE = 5_000;
export const MAX_NAME_LENGTH = 1_024;
export const MAX_ASSET_LENGTH = 4_096;
const ANY_STRING_MAX_LENGTH = 65_536;
export const DEFAULT_MAX_STEP_KEYS = 65_536;
export const DEFAULT_MAX_REPLAY_KEYS = 10_000;
const CLOCK_STEP_THRESHOLD_MS = 1_000;

const OPERATION_RANK: Readonly<Record<Operation, number>> = { read: 0, write: 1, command: 2 };
const OPERATION_BIT: Readonly<Record<Operation, number>> = { read: 1, write: 2, command: 4 };
/** Modbus function codes that change a device (reference/security.md §2.3: FC 23 included). */
const MODBUS_WRITE_FCS = new Set([5, 6, 15, 16, 21, 22, 23]);
const SPARKPLUG_WRITE_TYPES = new Set(['NCMD', 'DCMD']);
const OPCUA_WRITE_SERVICES: Readonly<Record<string, Operation>> = { Write: 'write', HistoryUpdate: 'write', AddNodes: 'write', DeleteNodes: 'write', Call: 'command' };

interface ModbusContext { fc: number; unit: number; address: number; quantity: number }

interface CompiledRule {
  readonly rule: Rule;
  readonly id: string;
  readonly allows: boolean;
  readonly alert: boolean;
  readonly operations: number;
  readonly principal?: (p: Principal | undefined) => boolean;
  readonly modbus?: (m: ModbusContext | undefined) => boolean;
  readonly sparkplug?: ReadonlySet<string>;
  readonly opcua?: ReadonlySet<string>;
  readonly asset?: Matcher;
  readonly metric?: Matcher;
  readonly value?: ValueBounds;
  readonly window?: { days: number; from: number; to: number };
}

interface CompiledPolicy {
  readonly policy: Policy;
  readonly hash: string;
  readonly rules: readonly CompiledRule[];
  readonly clock: PlantClock;
  /**
   * Rules whose message-level fields (operation, principal, protocol, asset) match, by those fields:
   * the same sender writing to the same asset is matched against the rule list once. Part of the
   * compiled policy, so a reload replaces it with the rules. Bounded: cleared when it reaches
   * SELECTION_CACHE_SIZE entries (a flood of distinct senders or assets only costs the full scan).
   */
  readonly selections: Map<string, readonly CompiledRule[]>;
}

const SELECTION_CACHE_SIZE = 4_096;

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 32 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return typeof value;
}

/** The problem with `value` under `bounds`, or undefined. `previous`: last allowed value of this asset/metric. */
export function valueProblem(bounds: ValueBounds, value: unknown, previous: number | undefined): string | undefined {
  switch (bounds.type) {
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${describe(value)} is not a finite number`;
      break;
    case 'integer':
      if (!(typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value)))) return `${describe(value)} is not an integer`;
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return `${describe(value)} is not a boolean`;
      break;
    case 'string':
      if (typeof value !== 'string') return `${describe(value)} is not a string`;
      if (value.length > (bounds.maxLength ?? DEFAULT_STRING_MAX_LENGTH)) return `a string of ${value.length} characters is longer than ${bounds.maxLength ?? DEFAULT_STRING_MAX_LENGTH}`;
      break;
    case 'any':
      if (typeof value === 'number' ? !Number.isFinite(value) : !(typeof value === 'bigint' || typeof value === 'boolean' || typeof value === 'string' || value === null)) {
        return `${describe(value)} is not a tag value (finite number, bigint, boolean, string, null)`;
      }
      if (typeof value === 'string' && value.length > ANY_STRING_MAX_LENGTH) return `a string of ${value.length} characters is longer than ${ANY_STRING_MAX_LENGTH}`;
      break;
  }
  if (bounds.enum && !bounds.enum.includes(value as string | number | boolean)) return `${describe(value)} is not one of the allowed values`;
  if (typeof value === 'number' || typeof value === 'bigint') {
    const n = Number(value);
    if (bounds.min !== undefined && n < bounds.min) return `${describe(value)} is below the minimum ${bounds.min}`;
    if (bounds.max !== undefined && n > bounds.max) return `${describe(value)} is above the maximum ${bounds.max}`;
    if (bounds.maxStep !== undefined && previous !== undefined && Math.abs(n - previous) > bounds.maxStep) {
      return `a step from ${previous} to ${describe(value)} is larger than ${bounds.maxStep}`;
    }
  }
  return undefined;
}

function principalSelector(rule: Rule): CompiledRule['principal'] {
  const selector = rule.principal;
  if (!selector) return undefined;
  const checks: Array<(p: Principal) => boolean> = [];
  if (selector.via) {
    const via = new Set<string>(selector.via);
    checks.push((p) => via.has(p.via));
  }
  for (const field of ['id', 'user', 'clientId', 'hostId', 'certificateCN'] as const) {
    const patterns = selector[field];
    if (!patterns) continue;
    const match = nameMatcher(patterns);
    checks.push((p) => p[field] !== undefined && match(p[field] as string));
  }
  return (p) => p !== undefined && checks.every((check) => check(p));
}

function modbusSelector(rule: Rule): CompiledRule['modbus'] {
  const selector = rule.modbus;
  if (!selector) return undefined;
  const fcs = selector.fc ? new Set(selector.fc) : undefined;
  const units = selector.unit ? new Set(selector.unit) : undefined;
  const ranges = selector.address;
  return (m) => {
    if (!m) return false;
    if (fcs && !fcs.has(m.fc)) return false;
    if (units && !units.has(m.unit)) return false;
    if (!ranges) return true;
    const last = m.address + m.quantity - 1;
    // The whole span in one range (T-MB-08: a span straddling the boundary is not allowed).
    return ranges.some((r) => m.address >= r.from && last <= r.to);
  };
}

/** Compiles the rules of `policy` that can ever match on this conduit (its zones and direction). */
function compile(policy: Policy, source: ZoneInfo, destination: ZoneInfo, direction: Direction): CompiledPolicy {
  const rules: CompiledRule[] = [];
  for (const rule of policy.rules) {
    if (rule.direction && !rule.direction.includes(direction)) continue;
    if (rule.sourceZone && !rule.sourceZone.includes(source.name)) continue;
    if (rule.destinationZone && !rule.destinationZone.includes(destination.name)) continue;
    const action: Action = rule.action;
    rules.push({
      rule,
      id: rule.id,
      allows: action !== 'deny',
      alert: action === 'allow-and-alert',
      operations: (rule.operation ?? ['read', 'write', 'command']).reduce((bits, op) => bits | OPERATION_BIT[op], 0),
      principal: principalSelector(rule),
      modbus: modbusSelector(rule),
      sparkplug: rule.sparkplug ? new Set(rule.sparkplug.messageType) : undefined,
      opcua: rule.opcua ? new Set(rule.opcua.service) : undefined,
      asset: rule.asset ? topicMatcher(rule.asset) : undefined,
      metric: rule.metric ? topicMatcher(rule.metric) : undefined,
      value: rule.value,
      window: rule.window ? {
        days: rule.window.days.reduce((mask, day) => mask | (1 << WEEKDAY_NAMES.indexOf(day)), 0),
        from: minutesOfClock(rule.window.from),
        to: minutesOfClock(rule.window.to),
      } : undefined,
    });
  }
  return { policy, hash: policyHash(policy), rules, clock: new PlantClock(policy.timeZone), selections: new Map() };
}

/** Thrown inside decide() for a message that is refused as a whole; caught there. */
class Refusal {
  constructor(readonly reason: string) {}
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function modbusContext(raw: unknown): ModbusContext | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) throw new Refusal('msg.modbus must be an object {fc, unit, address, quantity}');
  const { fc, unit, address } = raw;
  const quantity = raw.quantity ?? 1;
  const integer = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (!integer(fc, 1, 127) || !integer(unit, 0, 255) || !integer(address, 0, 65535) || !integer(quantity, 1, 2000) || address + quantity - 1 > 65535) {
    throw new Refusal('msg.modbus needs integers fc 1…127, unit 0…255, address 0…65535 and quantity 1…2000 within the address space');
  }
  return { fc, unit, address, quantity };
}

function sparkplugType(msg: Record<string, unknown>, topic: string): string | undefined {
  const sparkplug = msg.sparkplug;
  if (isRecord(sparkplug) && typeof sparkplug.messageType === 'string') return sparkplug.messageType;
  if (topic.startsWith('spBv1.0/')) return topic.split('/', 3)[2];
  return undefined;
}

function opcuaService(msg: Record<string, unknown>): string | undefined {
  const opcua = msg.opcua;
  return isRecord(opcua) && typeof opcua.service === 'string' ? opcua.service : undefined;
}

function higher(a: Operation, b: Operation | undefined): Operation {
  return b !== undefined && OPERATION_RANK[b] > OPERATION_RANK[a] ? b : a;
}

interface Selected {
  metric: string;
  value: unknown;
  rule: CompiledRule;
  stepKey?: string;
}

export class Conduit {
  private compiled: CompiledPolicy;
  private readonly clock: ConduitClock;
  private readonly limiter: RateLimiter;
  private readonly lastValues = new Map<string, number>();
  /** The last values the latest decision replaced (key → value before; undefined = none): revokeLatest() puts them back. */
  private latestStepChanges: Array<[string, number | undefined]> = [];
  private readonly seenWrites = new Map<string, number>();
  private lastReplaySweep = -Infinity;
  private clockOffset: number;
  /** SR 5.2 RE2: while true nothing crosses. */
  island = false;
  /** While set nothing crosses either, with this reason (the controller holds a conduit whose policy is not audited yet). */
  held: string | undefined;
  readonly direction: Direction;
  private readonly baseOperation: Operation;

  constructor(policy: Policy, private readonly options: ConduitOptions) {
    this.clock = options.clock ?? systemClock;
    this.limiter = new RateLimiter(options.maxRateKeys ?? DEFAULT_MAX_RATE_KEYS);
    this.direction = directionBetween(options.source, options.destination);
    const traffic = options.traffic ?? 'auto';
    this.baseOperation = traffic === 'write' || (traffic === 'auto' && this.direction === 'it->ot') ? 'write' : 'read';
    this.compiled = compile(policy, options.source, options.destination, this.direction);
    this.clockOffset = this.clock.wallMs() - this.clock.monotonicMs();
  }

  get policy(): Policy {
    return this.compiled.policy;
  }

  get policyHash(): string {
    return this.compiled.hash;
  }

  /** Rate-limit buckets in use (bounded by maxRateKeys). */
  get rateKeys(): number {
    return this.limiter.size;
  }

  /**
   * Replaces the policy atomically: the new one is compiled completely first, then swapped in with
   * one assignment; a policy that fails to compile leaves the old one active. Rate buckets are kept
   * by rule id; last values (maxStep) are kept, since they describe the process, not the policy.
   */
  setPolicy(policy: Policy): void {
    const next = compile(policy, this.options.source, this.options.destination, this.direction);
    this.compiled = next;
  }

  /**
   * The latest decision's values did not pass after all (its audit record could not be written): maxStep
   * measures the next step from the values before it again, never from values that never reached the
   * device (which would let two steps pass as one). Rate tokens and replay marks it used stay used (tighter).
   */
  revokeLatest(): void {
    for (const [key, before] of this.latestStepChanges.reverse()) {
      if (before === undefined) this.lastValues.delete(key);
      else this.lastValues.set(key, before);
    }
    this.latestStepChanges = [];
  }

  /** The decision for one message. Never throws: an error inside is a denial (SR 5.2 RE3). */
  decide(msg: unknown): Decision {
    this.latestStepChanges = [];
    const compiled = this.compiled;
    let operation: Operation = this.baseOperation;
    let asset: string | null = null;
    let principal: string | null = null;
    try {
      this.watchClock();
      if (!isRecord(msg)) throw new Refusal('not a message object');
      const topic = msg.topic;
      const who = principalOf(msg as { principal?: unknown });
      principal = who?.id ?? null;
      if (typeof topic === 'string' && topic !== '' && topic.length <= MAX_ASSET_LENGTH) asset = topic;
      const payload = msg.payload;
      let names: string[];
      let values: unknown[];
      let command: Record<string, unknown> | undefined;
      if (typeof payload === 'string') {
        command = { command: payload };
      } else if (isPlainObject(payload) && Object.hasOwn(payload, 'command')) {
        command = payload;
      }
      if (command) {
        operation = 'command';
        const word = command.command;
        if (typeof word !== 'string' || word === '' || word.length > MAX_NAME_LENGTH) throw new Refusal('a command must be a non-empty string');
        const action = command.action;
        names = [typeof action === 'string' ? `${word}/${action}` : word];
        values = [command.value];
      } else {
        if (!isPlainObject(payload)) throw new Refusal(`msg.payload is ${describe(payload)}, not a tag batch or command`);
        names = Object.keys(payload);
        if (names.length === 0) throw new Refusal('msg.payload has no metrics');
        if (names.length > MAX_METRICS_PER_MESSAGE) throw new Refusal(`msg.payload has ${names.length} metrics, more than ${MAX_METRICS_PER_MESSAGE}`);
        values = new Array(names.length);
        for (let i = 0; i < names.length; i++) values[i] = payload[names[i]];
      }
      if (asset === null) throw new Refusal('msg.topic must be the asset path (a non-empty string)');
      if (asset.includes('+') || asset.includes('#') || asset.includes('\u0000')) throw new Refusal('msg.topic contains a wildcard or U+0000');

      const modbus = modbusContext(msg.modbus);
      const spType = sparkplugType(msg, asset);
      const uaService = opcuaService(msg);
      const claimed = msg.operation;
      operation = higher(operation, claimed === 'write' || claimed === 'command' ? claimed : undefined);
      if (modbus && MODBUS_WRITE_FCS.has(modbus.fc)) operation = higher(operation, 'write');
      if (spType && SPARKPLUG_WRITE_TYPES.has(spType)) operation = higher(operation, 'write');
      if (uaService) operation = higher(operation, OPCUA_WRITE_SERVICES[uaService]);

      if (this.island) return this.denied('island', operation, asset, principal, 'island mode: nothing crosses', names);
      if (this.held !== undefined) return this.denied('audit', operation, asset, principal, this.held, names);
      const isWrite = operation !== 'read';
      let replayKey: string | undefined;
      if (isWrite) replayKey = this.replayCheck(msg, compiled.policy, principal, asset);

      // Message-level selection: rules whose message fields match, in policy order; time windows
      // are checked per message on the cached selection.
      const selection = this.selection(compiled, operation, who, modbus, spType, uaService, asset);
      let candidates = selection;
      if (selection.some((r) => r.window)) {
        const local = compiled.clock.at(this.clock.wallMs());
        candidates = selection.filter((r) => !r.window || inWindow(local, r.window.days, r.window.from, r.window.to));
      }

      const selected: Selected[] = [];
      const dropped: DroppedMetric[] = [];
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        if (name === '__proto__' || name === '' || name.length > MAX_NAME_LENGTH) {
          dropped.push({ metric: name.length > 64 ? `${name.slice(0, 64)}…` : name, ruleId: null, reason: 'metric name is never allowed (empty, __proto__ or too long)' });
          continue;
        }
        let rule: CompiledRule | undefined;
        for (const c of candidates) {
          if (!c.metric || c.metric(name)) {
            rule = c;
            break;
          }
        }
        if (!rule) {
          dropped.push({ metric: name, ruleId: null, reason: 'no rule allows it (default deny)' });
          continue;
        }
        if (!rule.allows) {
          dropped.push({ metric: name, ruleId: rule.id, reason: 'denied by rule' });
          continue;
        }
        const value = values[i];
        let stepKey: string | undefined;
        let previous: number | undefined;
        if (rule.value) {
          if (rule.value.maxStep !== undefined) {
            stepKey = `${asset}\u0000${name}`;
            previous = this.lastValues.get(stepKey);
            if (previous === undefined && this.lastValues.size >= (this.options.maxStepKeys ?? DEFAULT_MAX_STEP_KEYS)) {
              dropped.push({ metric: name, ruleId: rule.id, reason: 'last-value table full: a first value cannot be step-checked' });
              continue;
            }
          }
          const problem = valueProblem(rule.value, value, previous);
          if (problem) {
            dropped.push({ metric: name, ruleId: rule.id, reason: problem });
            continue;
          }
        }
        selected.push({ metric: name, value, rule, stepKey });
      }
      if (isWrite && dropped.length > 0) {
        const first = dropped[0];
        return this.denied('access-control', operation, asset, principal, `a ${operation} passes whole or not at all; ${JSON.stringify(first.metric)}: ${first.reason}`, [], dropped, ruleIdsOf(dropped));
      }

      // Rate limits: one token per message from each rule that allowed something in it; tokens are
      // taken only when the message passes (a refused write costs none).
      let exhausted: CompiledRule[] | undefined;
      let takes: Bucket[] | undefined;
      const used: CompiledRule[] = [];
      for (const s of selected) if (!used.includes(s.rule)) used.push(s.rule);
      for (const r of used) {
        const rate = r.rule.rate;
        if (!rate) continue;
        const key = rate.per === 'principal' ? `${r.id}\u0000${principal ?? ''}` : r.id;
        const bucket = this.limiter.bucket(key, rate.count, rate.perSeconds, this.clock.monotonicMs());
        if (!bucket || bucket.tokens < 1) (exhausted ??= []).push(r);
        else (takes ??= []).push(bucket);
      }
      if (exhausted && isWrite) {
        const ruleIds = exhausted.map((r) => r.id);
        return this.denied('access-control', operation, asset, principal, `rate limit of rule ${ruleIds.join(', ')} exceeded`, [], names.map((metric) => ({ metric, ruleId: ruleIds[0], reason: 'rate limit exceeded' })), ruleIds);
      }
      if (takes) for (const bucket of takes) bucket.tokens -= 1;

      const ruleIds: string[] = [];
      const allowed: string[] = [];
      const out: Record<string, unknown> = {};
      let alert = false;
      for (const s of selected) {
        if (exhausted?.includes(s.rule)) {
          dropped.push({ metric: s.metric, ruleId: s.rule.id, reason: 'rate limit exceeded' });
          continue;
        }
        allowed.push(s.metric);
        out[s.metric] = s.value;
        if (!ruleIds.includes(s.rule.id)) ruleIds.push(s.rule.id);
        alert ||= s.rule.alert;
        if (s.stepKey !== undefined) {
          this.latestStepChanges.push([s.stepKey, this.lastValues.get(s.stepKey)]);
          this.lastValues.set(s.stepKey, Number(s.value));
        }
      }
      for (const d of dropped) if (d.ruleId !== null && !ruleIds.includes(d.ruleId)) ruleIds.push(d.ruleId);
      if (allowed.length === 0) {
        return this.denied('access-control', operation, asset, principal, dropped.length === 1 ? dropped[0].reason : 'no metric is allowed', [], dropped, ruleIds);
      }
      if (replayKey !== undefined) this.seenWrites.set(replayKey, Number(msg.timestamp));
      // A command passes as it came (a string stays a string) with the value that was checked.
      const payloadOut = typeof payload === 'string' ? payload : command ? { ...command, ...(Object.hasOwn(command, 'value') ? { value: values[0] } : {}) } : out;
      return { result: dropped.length === 0 ? 'allow' : 'partial', alert, category: 'access-control', operation, direction: this.direction, asset, principal, ruleIds, allowed, dropped, payload: payloadOut };
    } catch (error) {
      if (error instanceof Refusal) return this.denied('access-control', operation, asset, principal, error.reason, []);
      // An error thrown in a function node's realm is not `instanceof Error` here.
      const message = isRecord(error) ? error.message : undefined;
      const text = typeof message === 'string' ? message : String(error);
      return this.denied('engine-error', operation, asset, principal, `evaluator error: ${text.slice(0, 200)}`, []);
    }
  }

  private selection(compiled: CompiledPolicy, operation: Operation, who: Principal | undefined, modbus: ModbusContext | undefined, spType: string | undefined, uaService: string | undefined, asset: string): readonly CompiledRule[] {
    const key = `${operation}\u0001${asset}\u0001${spType ?? ''}\u0001${uaService ?? ''}\u0001${modbus ? `${modbus.fc},${modbus.unit},${modbus.address},${modbus.quantity}` : ''}\u0001${
      who ? `${who.via}\u0002${who.id}\u0002${who.user ?? ''}\u0002${who.clientId ?? ''}\u0002${who.hostId ?? ''}\u0002${who.certificateCN ?? ''}` : ''}`;
    const cached = compiled.selections.get(key);
    if (cached) return cached;
    const opBit = OPERATION_BIT[operation];
    const rules: CompiledRule[] = [];
    for (const r of compiled.rules) {
      if ((r.operations & opBit) === 0) continue;
      if (r.principal && !r.principal(who)) continue;
      if (r.modbus && !r.modbus(modbus)) continue;
      if (r.sparkplug && (spType === undefined || !r.sparkplug.has(spType))) continue;
      if (r.opcua && (uaService === undefined || !r.opcua.has(uaService))) continue;
      if (r.asset && !r.asset(asset)) continue;
      rules.push(r);
    }
    if (compiled.selections.size >= SELECTION_CACHE_SIZE) compiled.selections.clear();
    compiled.selections.set(key, rules);
    return rules;
  }

  private denied(category: Decision['category'], operation: Operation, asset: string | null, principal: string | null, reason: string, names: string[], dropped?: DroppedMetric[], ruleIds: string[] = []): Decision {
    return {
      result: 'deny', alert: false, category, operation, direction: this.direction, asset, principal, ruleIds, allowed: [],
      dropped: dropped ?? names.map((metric) => ({ metric, ruleId: null, reason })), reason,
    };
  }

  /**
   * T-RPL-01…03: a retained write (delivered by a broker at restart or to a new subscription), a
   * write older than maxWriteAgeMs (e.g. queued during an outage) or as far in the future, and a
   * second write with the same principal, asset and timestamp are refused. Returns the replay key.
   */
  private replayCheck(msg: Record<string, unknown>, policy: Policy, principal: string | null, asset: string): string | undefined {
    if (msg.retain === true) throw new Refusal('a retained message is never a write (T-RPL-02)');
    const timestamp = msg.timestamp;
    if (timestamp === undefined) {
      if (policy.requireWriteTimestamp) throw new Refusal('a write must carry msg.timestamp (policy requireWriteTimestamp)');
      return undefined;
    }
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) throw new Refusal('msg.timestamp of a write must be ms since the epoch');
    const wall = this.clock.wallMs();
    const age = wall - timestamp;
    if (age > policy.maxWriteAgeMs) throw new Refusal(`write is ${Math.round(age)} ms old, older than ${policy.maxWriteAgeMs} ms (replayed or queued)`);
    if (-age > policy.maxWriteAgeMs) throw new Refusal(`write timestamp is ${Math.round(-age)} ms in the future`);
    const key = `${principal ?? ''}\u0000${asset}\u0000${timestamp}`;
    if (this.seenWrites.has(key)) throw new Refusal('the same write (principal, asset, timestamp) was seen before: replay');
    if (this.seenWrites.size >= (this.options.maxReplayKeys ?? DEFAULT_MAX_REPLAY_KEYS)) {
      const now = this.clock.monotonicMs();
      if (now - this.lastReplaySweep >= 100) {
        this.lastReplaySweep = now;
        // Entries past the age limit can never match again (their writes are refused as too old).
        for (const [k, t] of this.seenWrites) if (wall - t > policy.maxWriteAgeMs) this.seenWrites.delete(k);
      }
      if (this.seenWrites.size >= (this.options.maxReplayKeys ?? DEFAULT_MAX_REPLAY_KEYS)) throw new Refusal('replay table full: too many writes within the age limit');
    }
    return key;
  }

  /** T-CLK-01 / SR 2.11: report a wall-clock step (the monotonic clock never steps). */
  private watchClock(): void {
    const offset = this.clock.wallMs() - this.clock.monotonicMs();
    const step = offset - this.clockOffset;
    if (step > CLOCK_STEP_THRESHOLD_MS || step < -CLOCK_STEP_THRESHOLD_MS) {
      this.clockOffset = offset;
      this.options.onClockStep?.(step);
    }
  }
}

function ruleIdsOf(dropped: DroppedMetric[]): string[] {
  const ids: string[] = [];
  for (const d of dropped) if (d.ruleId !== null && !ids.includes(d.ruleId)) ids.push(d.ruleId);
  return ids;
}
