/**
 * The digital twin of one drive: reads its telemetry (tag batches), integrates the wear models over
 * monotonic time, classifies vibration, and says what is used up, what remains and when to act.
 *
 * Time. Wear is integrated over a monotonic clock given by the caller (performance.now() in the node),
 * never over source timestamps or the wall clock, so a device clock that jumps, or an NTP step on the
 * gateway, neither ages nor rejuvenates anything. Wall time only stamps the outputs.
 *
 * Holding. Each input keeps its last accepted value for at most `staleAfterMs`. An interval is
 * integrated with the values held at its start (zero-order hold) up to the moment the first of the
 * component's inputs goes stale; after that the component is held: nothing is integrated, its
 * outputs turn uncertain with the reason, and it resumes with the next fresh value. A gap is never
 * filled by extrapolation. Time while the node is not running (restart) is not observed either.
 *
 * Models: insulation.ts, bearing.ts, capacitor.ts, vibration.ts, rul.ts; the long form: docs/twin.md.
 */
import type { MetricMeta, MetricValue, Quality, TagBatch } from '../uns/tag-batch';
import { bearingDamage, equivalentLoadKn, ratingLifeHours, torqueFractionFromCurrent } from './bearing';
import { capacitorLifeHours, fanLifeHours } from './capacitor';
import { INPUT_ROLES, InputRole, readMetric, Sample } from './inputs';
import { insulationAgeingFactor, INSULATION_CLASS_TEMPERATURE_C, INSULATION_REFERENCE_LIFE_H } from './insulation';
import { COMPONENTS, ComponentName, MIN_HISTORY_HOURS, RemainingLife, remainingLife, RUL_BAND } from './rul';
import type { TwinSettings } from './settings';
import { Zone, ZONES, zoneRange, zoneWithHysteresis } from './vibration';

export type Severity = 'info' | 'warning' | 'alarm';

/** A maintenance event: a threshold crossed, a vibration zone changed, a component replaced. */
export interface TwinAlert {
  kind: 'threshold' | 'zone' | 'reset';
  component: ComponentName | 'vibration' | 'all';
  severity: Severity;
  /** The twin metric the event is about. */
  metric: string;
  value: number | string | null;
  threshold?: number;
  from?: Zone | null;
  to?: Zone;
  reason: string;
  /** Wall time, ms since the epoch. */
  timestamp: number;
  who?: string;
}

export interface ComponentState {
  /** Life consumed, fraction of the rated life (1 = rated life reached). */
  consumed: number;
  /** Twin hours integrated into `consumed`. */
  observedHours: number;
  /** Wall time the count started (new twin or replacement), ms. */
  since: number;
  /** Why the count may be short (e.g. a state file that could not be read), until the next reset. */
  incomplete?: string;
}

/** What persists across restarts (lib/twin/state-file.ts). */
export interface TwinState {
  version: 1;
  /** The asset the twin follows (from the settings or the first batch). */
  asset: string;
  components: Record<ComponentName, ComponentState>;
  fanRunHours: number;
  zone: Zone | null;
  /** Alerts raised and not cleared, by key `<component>:<rule>`, so a restart does not raise them again. */
  activeAlerts: string[];
}

export interface TwinUpdate {
  /** The twin batch to publish, when one is due. */
  batch?: TagBatch;
  alerts: TwinAlert[];
  /** Log lines (an input refused or stale), one per outage, damped. */
  notices: string[];
  /** The state changed (persist it). */
  changed: boolean;
}

/** The status of the twin in one glance (the node's status dot). */
export interface TwinView {
  severity: 'ok' | Severity;
  /** The component that is closest to its end (highest life consumed), or null before any data. */
  worst: { component: ComponentName; consumedPercent: number; rulHours: number | null } | null;
  zone: Zone | null;
  /** Some input is missing, stale or refused: the twin is holding. */
  held: boolean;
  /** Inputs ever seen (false until the first accepted value). */
  started: boolean;
}

export class TwinInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TwinInputError';
  }
}

const MS_PER_HOUR = 3_600_000;
/** Vibration hysteresis: a zone is left downward only 5 % below its boundary. */
export const ZONE_HYSTERESIS = 0.05;
/** The motor turns (fan running, vibration meaningful) above this share of rated speed. */
export const RUNNING_SPEED_FRACTION = 0.1;
/** A remaining-life alert clears when the remaining life is back above threshold × this. */
const RUL_ALERT_CLEAR_FACTOR = 1.1;
/** The same input problem is logged again at most this often when it flaps. */
const NOTICE_DAMPING_MS = 60_000;

const UNIT_OF = { percent: '%', hours: 'h' } as const;

export function newTwinState(asset: string, wallMs: number): TwinState {
  const fresh = (): ComponentState => ({ consumed: 0, observedHours: 0, since: wallMs });
  return {
    version: 1, asset, components: { insulation: fresh(), bearing: fresh(), capacitor: fresh(), fan: fresh() }, fanRunHours: 0, zone: null, activeAlerts: [],
  };
}

/** A persisted state checked field by field; a string says what is wrong with it. */
export function checkTwinState(raw: unknown): TwinState | string {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const r = raw as Record<string, unknown>;
  if (r.version !== 1) return `version ${JSON.stringify(r.version)} is not 1`;
  if (typeof r.asset !== 'string') return 'asset is not a string';
  const nonNegative = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (!nonNegative(r.fanRunHours)) return 'fanRunHours is not a number ≥ 0';
  if (!(r.zone === null || (typeof r.zone === 'string' && (ZONES as readonly string[]).includes(r.zone)))) return 'zone is not A, B, C, D or null';
  if (!Array.isArray(r.activeAlerts) || !r.activeAlerts.every((a) => typeof a === 'string')) return 'activeAlerts is not a list of strings';
  const components = r.components as Record<string, unknown> | undefined;
  if (typeof components !== 'object' || components === null) return 'components missing';
  for (const name of COMPONENTS) {
    const c = components[name] as Record<string, unknown> | undefined;
    if (typeof c !== 'object' || c === null) return `component ${name} missing`;
    if (!nonNegative(c.consumed) || !nonNegative(c.observedHours) || !nonNegative(c.since)) return `component ${name}: consumed, observedHours and since must be numbers ≥ 0`;
    if (c.incomplete !== undefined && typeof c.incomplete !== 'string') return `component ${name}: incomplete is not a string`;
  }
  return raw as TwinState;
}

function finite(value: number | null | undefined): number | null {
  return value === null || value === undefined || !Number.isFinite(value) ? null : value;
}

function hoursText(hours: number): string {
  if (hours >= 2 * 8760) return `${(hours / 8760).toFixed(1)} years`;
  if (hours >= 72) return `${Math.round(hours / 24)} days`;
  return `${hours.toFixed(1)} h`;
}

interface RoleStatus {
  sample?: Sample;
  /** The reason the latest reading was refused, until a reading is accepted again. */
  refused?: string;
  /** Last time a notice about this role was logged (damping). */
  noticedAt?: number;
  /** A notice is out for the present outage. */
  noticed: boolean;
}

export class DriveTwin {
  private readonly roles = new Map<InputRole, RoleStatus>();
  private lastIntegration: number | undefined;
  private lastPublish: number | undefined;
  private lastHeldKey = '';
  /** Why each component cannot be modelled with the mapping (null = it can). */
  private readonly unavailable: Readonly<Record<ComponentName, string | null>>;

  constructor(readonly settings: TwinSettings, private current: TwinState) {
    for (const role of INPUT_ROLES) this.roles.set(role, { noticed: false });
    const m = settings.metrics;
    const none = (role: InputRole) => `not modelled: no ${role} metric mapped`;
    const capacitorRole = settings.capacitorSource === 'heatsink' ? 'heatsinkTemperature' : 'ambientTemperature';
    this.unavailable = {
      insulation: m.windingTemperature === '' ? none('windingTemperature') : null,
      bearing: m.speed === '' ? none('speed') : null,
      capacitor: m[capacitorRole] === '' ? none(capacitorRole) : null,
      fan: m.speed === '' ? none('speed') : null,
    };
  }

  /** A copy of the state to persist. */
  get state(): TwinState {
    return structuredClone(this.current);
  }

  /** The asset path the twin batch is published under (`<asset>/twin`). */
  get asset(): string {
    return this.settings.topic || this.current.asset;
  }

  /** Read a tag batch of the drive at monotonic time `mono` (ms) and wall time `wall` (ms). */
  update(batch: Pick<TagBatch, 'topic' | 'payload' | 'meta'>, mono: number, wall: number): TwinUpdate {
    const topic = typeof batch.topic === 'string' ? batch.topic : '';
    if (this.settings.topic === '') {
      if (topic === '') throw new TwinInputError('no asset path: the batch has no msg.topic and the node none configured');
      if (this.current.asset !== '' && topic !== this.current.asset) {
        throw new TwinInputError(`batch of ${topic} refused: this twin follows ${this.current.asset} (one twin per drive; set the asset path to choose)`);
      }
    }
    const result: TwinUpdate = { alerts: [], notices: [], changed: false };
    if (this.current.asset === '' && this.settings.topic === '') {
      this.current.asset = topic;
      result.changed = true;
    }
    result.changed = this.integrate(mono) || result.changed;
    this.readInputs(batch.payload, batch.meta ?? {}, mono, result);
    this.classifyVibration(mono, wall, result);
    this.finish(mono, wall, result, false);
    return result;
  }

  /** Periodic check without new data: integrate up to now, notice inputs that went stale. */
  tick(mono: number, wall: number): TwinUpdate {
    const result: TwinUpdate = { alerts: [], notices: [], changed: false };
    if (this.asset === '') return result;
    result.changed = this.integrate(mono);
    for (const [role, status] of this.roles) {
      const sample = status.sample;
      if (this.settings.metrics[role] === '' || !sample || status.refused) continue;
      if (mono - sample.at > this.settings.staleAfterMs) this.notice(role, `${this.settings.metrics[role]}: no value for ${Math.round((mono - sample.at) / 1000)} s (stale after ${this.settings.staleAfterMs / 1000} s): held`, mono, result);
    }
    this.finish(mono, wall, result, true);
    return result;
  }

  /** A component was replaced (or rewound): its count starts again at zero. `component` 'all' resets every one. */
  reset(component: string, who: string, mono: number, wall: number): TwinUpdate {
    const names: ComponentName[] = component === 'all' ? [...COMPONENTS] : (COMPONENTS as readonly string[]).includes(component) ? [component as ComponentName] : [];
    if (names.length === 0) throw new TwinInputError(`reset ${JSON.stringify(component)}: not a component (${COMPONENTS.join(', ')} or all)`);
    const result: TwinUpdate = { alerts: [], notices: [], changed: true };
    this.integrate(mono);
    const before = names.map((name) => `${name} ${(this.current.components[name].consumed * 100).toFixed(1)} %`).join(', ');
    for (const name of names) {
      this.current.components[name] = { consumed: 0, observedHours: 0, since: wall };
      if (name === 'fan') this.current.fanRunHours = 0;
      this.current.activeAlerts = this.current.activeAlerts.filter((key) => !key.startsWith(`${name}:`));
    }
    const what = component === 'all' ? 'all' : names[0];
    result.alerts.push({
      kind: 'reset', component: what, severity: 'info', metric: component === 'all' ? 'lifeConsumed' : `${what}/lifeConsumed`, value: 0,
      reason: `${what} replaced: life consumed ${before} → 0 % (reset by ${who})`, timestamp: wall, who,
    });
    this.finish(mono, wall, result, false);
    return result;
  }

  view(mono: number): TwinView {
    let worst: TwinView['worst'] = null;
    let severity: TwinView['severity'] = 'ok';
    const rank = { ok: 0, info: 0, warning: 1, alarm: 2 };
    const raise = (s: Severity) => { if (rank[s] > rank[severity]) severity = s; };
    for (const name of COMPONENTS) {
      if (this.unavailable[name]) continue;
      const c = this.current.components[name];
      const rul = remainingLife(c.consumed, c.observedHours, RUL_BAND[name]);
      const percent = c.consumed * 100;
      if (percent >= 100) raise('alarm');
      else if (percent >= this.settings.alertConsumedPercent || this.current.activeAlerts.includes(`${name}:rul`)) raise('warning');
      if (!worst || percent > worst.consumedPercent) worst = { component: name, consumedPercent: percent, rulHours: rul ? rul.nominal : null };
    }
    if (this.current.zone === 'D') raise('alarm');
    else if (this.current.zone === 'C') raise('warning');
    const held = this.heldReasons(mono).length > 0;
    const started = [...this.roles.values()].some((s) => s.sample !== undefined);
    return { severity, worst, zone: this.current.zone, held, started };
  }

  // ---- integration ------------------------------------------------------------------------------

  private fresh(sample: Sample | undefined, mono: number): sample is Sample {
    return sample !== undefined && mono - sample.at <= this.settings.staleAfterMs;
  }

  private sample(role: InputRole): Sample | undefined {
    return this.settings.metrics[role] === '' ? undefined : this.roles.get(role)?.sample;
  }

  /** The role the bearing load comes from (undefined: the rated load). */
  private loadRole(): InputRole | undefined {
    const { loadFrom, metrics } = this.settings;
    if (loadFrom === 'rated') return undefined;
    if (loadFrom === 'auto') return metrics.torque !== '' ? 'torque' : metrics.current !== '' ? 'current' : undefined;
    return loadFrom;
  }

  private requiredRoles(component: ComponentName): InputRole[] {
    const s = this.settings;
    switch (component) {
      case 'insulation': return ['windingTemperature'];
      case 'bearing': { const load = this.loadRole(); return load ? ['speed', load] : ['speed']; }
      case 'capacitor': return [s.capacitorSource === 'heatsink' ? 'heatsinkTemperature' : 'ambientTemperature'];
      case 'fan': return s.metrics.ambientTemperature !== '' ? ['speed', 'ambientTemperature'] : ['speed'];
    }
  }

  /** Torque as a fraction of rated torque from the load role's held value. */
  private torqueFraction(): number {
    const role = this.loadRole();
    const sample = role ? this.sample(role) : undefined;
    if (!role || !sample) return 1;
    if (role === 'current') return torqueFractionFromCurrent(sample.value, this.settings.ratedCurrentA, this.settings.magnetisingCurrentA);
    return this.torqueIsPercent ? Math.abs(sample.value) / 100 : Math.abs(sample.value) / this.settings.ratedTorqueNm;
  }

  private torqueIsPercent = false;

  private bearingLoadKn(): number {
    return equivalentLoadKn(this.torqueFraction(), this.settings.bearingLoadNoLoadKn, this.settings.bearingLoadRatedKn);
  }

  private capacitorTemperatureC(): number | undefined {
    const role = this.settings.capacitorSource === 'heatsink' ? 'heatsinkTemperature' : 'ambientTemperature';
    const sample = this.sample(role);
    return sample ? sample.value + this.settings.capacitorRiseK : undefined;
  }

  private running(): boolean {
    const speed = this.sample('speed');
    return speed !== undefined && Math.abs(speed.value) >= RUNNING_SPEED_FRACTION * this.settings.ratedSpeedRpm;
  }

  /** Integrate every component from the last integration to `mono` with the held values; true if anything was added. */
  private integrate(mono: number): boolean {
    const from = this.lastIntegration;
    this.lastIntegration = mono;
    if (from === undefined || mono <= from) return false;
    let changed = false;
    const s = this.settings;
    for (const name of COMPONENTS) {
      if (this.unavailable[name]) continue;
      let end = mono;
      for (const role of this.requiredRoles(name)) {
        const sample = this.sample(role);
        end = sample ? Math.min(end, sample.at + s.staleAfterMs) : -Infinity;
      }
      if (end <= from) continue;
      const hours = ((end - from) / MS_PER_HOUR) * s.timeScale;
      const c = this.current.components[name];
      switch (name) {
        case 'insulation':
          c.consumed += (hours * insulationAgeingFactor(s.insulationClass, this.sample('windingTemperature')!.value)) / INSULATION_REFERENCE_LIFE_H;
          break;
        case 'bearing':
          c.consumed += bearingDamage(s.bearingCKn, this.bearingLoadKn(), s.bearingType, this.sample('speed')!.value, hours);
          break;
        case 'capacitor':
          c.consumed += hours / capacitorLifeHours(s.capacitorLifeH, s.capacitorTemperatureC, this.capacitorTemperatureC()!);
          break;
        case 'fan':
          if (this.running()) {
            const air = this.sample('ambientTemperature')?.value ?? s.fanTemperatureC;
            c.consumed += hours / fanLifeHours(s.fanLifeH, s.fanTemperatureC, air);
            this.current.fanRunHours += hours;
          }
          break;
      }
      c.observedHours += hours;
      changed = true;
    }
    return changed;
  }

  // ---- inputs -----------------------------------------------------------------------------------

  private readInputs(payload: Record<string, MetricValue>, meta: Record<string, MetricMeta>, mono: number, result: TwinUpdate): void {
    const s = this.settings;
    for (const role of INPUT_ROLES) {
      const metric = s.metrics[role];
      if (metric === '' || !Object.hasOwn(payload, metric)) continue;
      const metricMeta = Object.hasOwn(meta, metric) ? meta[metric] : undefined;
      const status = this.roles.get(role)!;
      let extra: { min?: number; max?: number; why: string } | undefined;
      if (role === 'current') extra = { max: 20 * s.ratedCurrentA, why: `20 × rated current ${s.ratedCurrentA} A` };
      if (role === 'speed') extra = { min: -5 * s.ratedSpeedRpm, max: 5 * s.ratedSpeedRpm, why: `5 × rated speed ${s.ratedSpeedRpm} r/min` };
      if (role === 'torque') {
        const unit = metricMeta?.unit?.trim();
        this.torqueIsPercent = unit === undefined || unit === '' ? s.torqueUnit === '%' : unit === '%';
        extra = this.torqueIsPercent ? { min: -1000, max: 1000, why: '10 × rated torque' } : { min: -10 * s.ratedTorqueNm, max: 10 * s.ratedTorqueNm, why: `10 × rated torque ${s.ratedTorqueNm} N·m` };
      }
      const reading = readMetric(role, metric, payload[metric], metricMeta, mono, extra);
      if (reading.ok) {
        status.sample = reading.sample;
        if (status.refused || status.noticed) result.notices.push(`${metric}: accepted again`);
        status.refused = undefined;
        status.noticed = false;
      } else {
        const again = status.refused === reading.reason;
        status.refused = reading.reason;
        if (!again) this.notice(role, `${reading.reason}: refused, ${this.componentsUsing(role).join(', ') || 'nothing'} held`, mono, result, true);
      }
    }
  }

  private componentsUsing(role: InputRole): string[] {
    const users: string[] = COMPONENTS.filter((name) => !this.unavailable[name] && this.requiredRoles(name).includes(role));
    if (role === 'vibration' || (role === 'speed' && this.settings.metrics.vibration !== '')) users.push('vibration zone');
    return users;
  }

  /** Log an input problem once per outage, and a flapping one at most once a minute. */
  private notice(role: InputRole, line: string, mono: number, result: TwinUpdate, newReason = false): void {
    const status = this.roles.get(role)!;
    if (status.noticed && !newReason) return;
    status.noticed = true;
    if (status.noticedAt !== undefined && mono - status.noticedAt < NOTICE_DAMPING_MS) return;
    status.noticedAt = mono;
    result.notices.push(line);
  }

  // ---- vibration ----------------------------------------------------------------------------------

  private classifyVibration(mono: number, wall: number, result: TwinUpdate): void {
    const vibration = this.sample('vibration');
    if (!this.fresh(vibration, mono) || vibration.at !== mono) return;
    // ISO 10816-3 §5: evaluate under steady operating conditions; a standing machine says nothing.
    if (this.settings.metrics.speed !== '' && !(this.fresh(this.sample('speed'), mono) && this.running())) return;
    const before = this.current.zone;
    const zone = zoneWithHysteresis(vibration.value, this.settings.zoneBoundaries, before, ZONE_HYSTERESIS);
    if (zone === before) return;
    this.current.zone = zone;
    result.changed = true;
    // The first classification of a new twin is news only when it already asks for action.
    if (before === null && (zone === 'A' || zone === 'B')) return;
    const [low, high] = zoneRange(zone, this.settings.zoneBoundaries);
    const range = high === Infinity ? `≥ ${low} mm/s` : `${low} … ${high} mm/s`;
    const meaning = { A: 'as newly commissioned', B: 'acceptable for long-term operation', C: 'not for long-term operation: plan maintenance', D: 'severe enough to cause damage' }[zone];
    result.alerts.push({
      kind: 'zone', component: 'vibration', severity: zone === 'D' ? 'alarm' : zone === 'C' ? 'warning' : 'info', metric: 'vibration/zone', value: zone,
      from: before, to: zone, timestamp: wall,
      reason: `vibration ${vibration.value.toFixed(2)} mm/s RMS ${before ? `moved from zone ${before} to` : 'is in'} zone ${zone} (${range}, ${this.settings.zoneSource}): ${meaning}`,
    });
  }

  // ---- alerts and output --------------------------------------------------------------------------

  private finish(mono: number, wall: number, result: TwinUpdate, fromTick: boolean): void {
    this.checkThresholds(wall, result);
    if (result.alerts.length) result.changed = true;
    const heldKey = this.heldKey(mono);
    const heldChanged = heldKey !== this.lastHeldKey;
    this.lastHeldKey = heldKey;
    const interval = this.settings.publishIntervalMs;
    const due = this.lastPublish === undefined || mono - this.lastPublish >= interval;
    // A tick publishes only news (alerts, inputs gone stale); regular batches follow the input.
    if (result.alerts.length > 0 || heldChanged || (!fromTick && due)) {
      result.batch = this.batch(mono, wall);
      this.lastPublish = mono;
    }
  }

  private checkThresholds(wall: number, result: TwinUpdate): void {
    const s = this.settings;
    const active = new Set(this.current.activeAlerts);
    const raise = (key: string, alert: Omit<TwinAlert, 'timestamp'>) => {
      if (active.has(key)) return;
      active.add(key);
      result.alerts.push({ ...alert, timestamp: wall });
    };
    for (const name of COMPONENTS) {
      if (this.unavailable[name]) continue;
      const c = this.current.components[name];
      const percent = c.consumed * 100;
      const basis = `${c.observedHours.toFixed(0)} h observed since ${new Date(c.since).toISOString()}`;
      if (percent >= s.alertConsumedPercent) {
        raise(`${name}:consumed`, {
          kind: 'threshold', component: name, severity: 'warning', metric: `${name}/lifeConsumed`, value: percent, threshold: s.alertConsumedPercent,
          reason: `${name} life consumed ${percent.toFixed(1)} % reached the alert threshold ${s.alertConsumedPercent} % (${this.modelName(name)}; ${basis})`,
        });
      }
      if (percent >= 100) {
        raise(`${name}:end`, {
          kind: 'threshold', component: name, severity: 'alarm', metric: `${name}/lifeConsumed`, value: percent, threshold: 100,
          reason: `${name} reached its rated life: ${percent.toFixed(1)} % consumed (${this.modelName(name)}; ${basis}): replace it, then reset the twin's ${name}`,
        });
      }
      const rul = remainingLife(c.consumed, c.observedHours, RUL_BAND[name]);
      const key = `${name}:rul`;
      if (s.alertRulHours > 0 && rul && c.observedHours >= MIN_HISTORY_HOURS) {
        if (rul.nominal < s.alertRulHours) {
          raise(key, {
            kind: 'threshold', component: name, severity: 'warning', metric: `${name}/rul`, value: rul.nominal, threshold: s.alertRulHours,
            reason: `${name} remaining life ${hoursText(rul.nominal)} (band ${hoursText(rul.low)} … ${hoursText(rul.high)}) is below the alert threshold ${hoursText(s.alertRulHours)} if the duty seen so far continues (${basis})`,
          });
        } else if (rul.nominal > s.alertRulHours * RUL_ALERT_CLEAR_FACTOR) {
          active.delete(key);
        }
      }
    }
    const list = [...active];
    if (list.length !== this.current.activeAlerts.length || list.some((k, i) => k !== this.current.activeAlerts[i])) {
      this.current.activeAlerts = list;
      result.changed = true;
    }
  }

  private modelName(name: ComponentName): string {
    const s = this.settings;
    switch (name) {
      case 'insulation': return `class ${s.insulationClass} insulation, 20,000 h at ${INSULATION_CLASS_TEMPERATURE_C[s.insulationClass]} °C, halving per 10 K`;
      case 'bearing': return `ISO 281 L10 of a ${s.bearingType} bearing, C = ${s.bearingCKn} kN, Palmgren–Miner`;
      case 'capacitor': return `electrolytic capacitor ${s.capacitorLifeH} h at ${s.capacitorTemperatureC} °C, doubling per 10 K`;
      case 'fan': return `fan L10 ${s.fanLifeH} h at ${s.fanTemperatureC} °C`;
    }
  }

  /** Why the twin is holding: each required input that is missing, stale, refused or uncertain. */
  private heldReasons(mono: number): string[] {
    const reasons: string[] = [];
    for (const role of INPUT_ROLES) {
      const metric = this.settings.metrics[role];
      if (metric === '') continue;
      const reason = this.inputProblem(role, mono);
      if (reason) reasons.push(reason);
    }
    return reasons;
  }

  /**
   * Which inputs are held and why, without the ages in seconds: a change of it is news (published at
   * once), a stale input growing older is not.
   */
  private heldKey(mono: number): string {
    return INPUT_ROLES.filter((role) => this.settings.metrics[role] !== '').map((role) => {
      const problem = this.inputProblem(role, mono);
      return problem === undefined ? '' : `${role}:${problem.replace(/no value for \d+ s/, 'stale')}`;
    }).join('\n');
  }

  private inputProblem(role: InputRole, mono: number): string | undefined {
    const metric = this.settings.metrics[role];
    const status = this.roles.get(role)!;
    if (status.refused) return `${status.refused} (refused)`;
    const sample = status.sample;
    if (!sample) return `no ${metric} received yet`;
    if (mono - sample.at > this.settings.staleAfterMs) return `${metric} stale: no value for ${Math.round((mono - sample.at) / 1000)} s (held)`;
    if (sample.quality === 'uncertain') return `${metric} uncertain${sample.reason ? `: ${sample.reason}` : ''}`;
    return undefined;
  }

  private batch(mono: number, wall: number): TagBatch {
    const s = this.settings;
    const payload: Record<string, MetricValue> = {};
    const meta: Record<string, MetricMeta> = {};
    const put = (name: string, value: number | string | null, unit: string, quality: Quality, reason?: string) => {
      const v = typeof value === 'number' ? finite(value) : value;
      payload[name] = v;
      meta[name] = { timestamp: wall, quality, type: typeof value === 'string' ? 'String' : 'Double', ...(unit ? { unit } : {}), ...(reason ? { reason } : {}) };
    };
    const componentReasons = (name: ComponentName): string[] => {
      const reasons = this.requiredRoles(name).map((role) => this.inputProblem(role, mono)).filter((r): r is string => r !== undefined);
      const incomplete = this.current.components[name].incomplete;
      return incomplete ? [...reasons, incomplete] : reasons;
    };
    const drive: { rul: RemainingLife; name: ComponentName }[] = [];
    const driveReasons: string[] = [];
    for (const name of COMPONENTS) {
      const c = this.current.components[name];
      const unavailable = this.unavailable[name];
      if (unavailable) {
        put(`${name}/lifeConsumed`, null, UNIT_OF.percent, 'bad', unavailable);
        continue;
      }
      const reasons = componentReasons(name);
      const quality: Quality = reasons.length ? 'uncertain' : 'good';
      const reason = reasons.join('; ') || undefined;
      put(`${name}/lifeConsumed`, c.consumed * 100, UNIT_OF.percent, quality, reason);
      put(`${name}/observedHours`, c.observedHours, UNIT_OF.hours, quality, reason);
      const rul = remainingLife(c.consumed, c.observedHours, RUL_BAND[name]);
      const rulReasons = [...reasons];
      if (!rul) rulReasons.push('no life consumed yet: no duty to extrapolate');
      else if (c.observedHours < MIN_HISTORY_HOURS) rulReasons.push(`only ${c.observedHours.toFixed(2)} h of history`);
      const rulQuality: Quality = rulReasons.length ? 'uncertain' : 'good';
      const rulReason = rulReasons.join('; ') || 'if the duty seen so far continues';
      put(`${name}/rul`, rul?.nominal ?? null, UNIT_OF.hours, rulQuality, rulReason);
      put(`${name}/rulLow`, rul?.low ?? null, UNIT_OF.hours, rulQuality, rulReason);
      put(`${name}/rulHigh`, rul?.high ?? null, UNIT_OF.hours, rulQuality, rulReason);
      if (rul) drive.push({ rul, name });
      if (rulQuality !== 'good') driveReasons.push(`${name}: ${rulReasons.join('; ')}`);
    }
    // Present conditions: what the models read now (null while the input is not fresh).
    const now = (role: InputRole) => (this.fresh(this.sample(role), mono) ? this.sample(role) : undefined);
    if (!this.unavailable.insulation) {
      const t = now('windingTemperature');
      put('insulation/agingFactor', t ? insulationAgeingFactor(s.insulationClass, t.value) : null, '', t ? 'good' : 'uncertain', t ? `relative to ${INSULATION_CLASS_TEMPERATURE_C[s.insulationClass]} °C` : this.inputProblem('windingTemperature', mono));
    }
    if (!this.unavailable.bearing) {
      const speed = now('speed');
      const loadRole = this.loadRole();
      const loadFresh = !loadRole || now(loadRole) !== undefined;
      const load = loadFresh ? this.bearingLoadKn() : null;
      put('bearing/load', load, 'kN', loadFresh ? 'good' : 'uncertain', loadRole ? `estimated from ${loadRole}` : 'rated load (no current or torque metric)');
      const l10h = speed && load !== null ? ratingLifeHours(s.bearingCKn, load, s.bearingType, speed.value) : null;
      put('bearing/l10h', l10h, UNIT_OF.hours, speed && load !== null ? 'good' : 'uncertain', l10h === Infinity ? 'standstill' : 'L10h at the present speed and load');
    }
    if (!this.unavailable.capacitor) {
      const role = s.capacitorSource === 'heatsink' ? 'heatsinkTemperature' : 'ambientTemperature';
      const t = now(role) ? this.capacitorTemperatureC()! : null;
      put('capacitor/temperature', t, 'degC', t !== null ? 'good' : 'uncertain', `${s.capacitorSource} + ${s.capacitorRiseK} K`);
      put('capacitor/lifeAtTemperature', t !== null ? capacitorLifeHours(s.capacitorLifeH, s.capacitorTemperatureC, t) : null, UNIT_OF.hours, t !== null ? 'good' : 'uncertain');
    }
    if (!this.unavailable.fan) put('fan/runHours', this.current.fanRunHours, UNIT_OF.hours, componentReasons('fan').length ? 'uncertain' : 'good');
    if (s.metrics.vibration !== '') {
      const v = now('vibration');
      put('vibration/velocity', v ? v.value : null, 'mm/s', v ? v.quality : 'uncertain', v ? undefined : this.inputProblem('vibration', mono));
      put('vibration/zone', this.current.zone, '', v ? 'good' : 'uncertain', `${s.zoneSource}: ${s.zoneBoundaries.join(' / ')} mm/s`);
    }
    if (drive.length) {
      const min = (pick: (r: RemainingLife) => number) => Math.min(...drive.map((d) => pick(d.rul)));
      const limit = drive.reduce((a, b) => (b.rul.nominal < a.rul.nominal ? b : a));
      const quality: Quality = driveReasons.length ? 'uncertain' : 'good';
      const reason = driveReasons.join('; ') || `limited by ${limit.name}, if the duty seen so far continues`;
      put('drive/rul', min((r) => r.nominal), UNIT_OF.hours, quality, reason);
      put('drive/rulLow', min((r) => r.low), UNIT_OF.hours, quality, reason);
      put('drive/rulHigh', min((r) => r.high), UNIT_OF.hours, quality, reason);
      put('drive/limitedBy', limit.name, '', quality);
    } else {
      put('drive/rul', null, UNIT_OF.hours, 'uncertain', 'no component has consumed life yet');
    }
    return { topic: `${this.asset}/twin`, payload, meta, timestamp: wall };
  }
}
