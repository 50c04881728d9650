/**
 * The configuration of a drive twin, read from the node's properties (strings from the edit dialog,
 * numbers from a flow file, `${ENV}` already substituted by Node-RED). Every problem is collected
 * and reported at once; nothing falls back silently to a default when a field holds garbage.
 * Property names and defaults: docs/twin.md § Properties.
 */
import { topicLevelsProblem } from '../uns/topics';
import { metricNameProblem } from '../uns/validate';
import { BEARING_TYPES, BearingType } from './bearing';
import { INPUT_ROLES, InputRole } from './inputs';
import { INSULATION_CLASSES, InsulationClass } from './insulation';
import { FOUNDATIONS, Foundation, MACHINE_GROUPS, MachineGroup, ZONE_TABLES, ZoneBoundaries } from './vibration';

export type LoadSource = 'auto' | 'current' | 'torque' | 'rated';
export type CapacitorSource = 'heatsink' | 'ambient';

export interface TwinSettings {
  /** Asset path; '' = the msg.topic of the incoming batch. The twin publishes at `<asset>/twin`. */
  topic: string;
  /** Metric name per role; '' = not mapped. */
  metrics: Readonly<Record<InputRole, string>>;
  /** Unit of a torque metric that carries none. */
  torqueUnit: 'Nm' | '%';
  loadFrom: LoadSource;
  ratedCurrentA: number;
  magnetisingCurrentA: number;
  ratedTorqueNm: number;
  ratedSpeedRpm: number;
  insulationClass: InsulationClass;
  bearingType: BearingType;
  bearingCKn: number;
  bearingLoadNoLoadKn: number;
  bearingLoadRatedKn: number;
  capacitorLifeH: number;
  capacitorTemperatureC: number;
  capacitorSource: CapacitorSource;
  capacitorRiseK: number;
  fanLifeH: number;
  fanTemperatureC: number;
  machineGroup: MachineGroup;
  foundation: Foundation;
  zoneBoundaries: ZoneBoundaries;
  zoneSource: string;
  /** Alert when a component's life consumed reaches this, %. */
  alertConsumedPercent: number;
  /** Alert when a component's remaining useful life falls below this, h; 0 = off. */
  alertRulHours: number;
  /** An input older than this is stale: held, not integrated beyond, outputs uncertain. */
  staleAfterMs: number;
  /** Twin batches at most this often (alerts and quality changes at once); 0 = after every input batch. */
  publishIntervalMs: number;
  /** Twin hours per real hour: 1 in service; > 1 for tests and demos only. */
  timeScale: number;
}

/** The node's properties as stored in the flow. */
export type TwinNodeConfig = Partial<Record<string, unknown>>;

export class TwinSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'TwinSettingsError';
  }
}

/**
 * Defaults: a 7.5 kW 4-pole motor on a drive, as the simulated plant has (profiles/simulated-drive.json):
 * 14.8 A rated, 5.2 A magnetising, 49 N·m and 1460 r/min rated, class F; drive-end bearing a deep
 * groove ball bearing 6308 (C = 42.3 kN) at 1.0 kN with no torque and 3.0 kN at rated torque;
 * DC-link capacitors 5,000 h at 105 °C; fan L10 40,000 h at 40 °C; ISO 10816-1 class I (< 15 kW).
 */
export const TWIN_DEFAULTS = Object.freeze({
  metrics: Object.freeze({
    current: 'motorCurrent', speed: 'actualSpeed', windingTemperature: 'motorTemperature', heatsinkTemperature: 'heatsinkTemperature',
    ambientTemperature: '', vibration: 'vibration', torque: '',
  } satisfies Record<InputRole, string>),
  torqueUnit: 'Nm', loadFrom: 'auto', ratedCurrentA: 14.8, magnetisingCurrentA: 5.2, ratedTorqueNm: 49, ratedSpeedRpm: 1460,
  insulationClass: 'F', bearingType: 'ball', bearingCKn: 42.3, bearingLoadNoLoadKn: 1.0, bearingLoadRatedKn: 3.0,
  capacitorLifeH: 5000, capacitorTemperatureC: 105, capacitorSource: 'heatsink', capacitorRiseK: 0, fanLifeH: 40_000, fanTemperatureC: 40,
  machineGroup: 'class1', foundation: 'rigid', alertConsumedPercent: 80, alertRulHours: 720, staleAfterS: 60, publishIntervalS: 10, timeScale: 1,
});

/** Longest time scale: one real second is then 116 days of twin time. */
export const MAX_TIME_SCALE = 1e7;

const isEmpty = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

export function twinSettings(config: TwinNodeConfig): TwinSettings {
  const problems: string[] = [];
  const number = (key: string, what: string, fallback: number, min: number, max: number, minExclusive = false): number => {
    const raw = config[key];
    if (isEmpty(raw)) return fallback;
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(n) || (minExclusive ? n <= min : n < min) || n > max) {
      problems.push(`${what} must be a number ${minExclusive ? '>' : '≥'} ${min} and ≤ ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  };
  const choice = <T extends string>(key: string, what: string, options: readonly T[], fallback: T): T => {
    const raw = config[key];
    if (isEmpty(raw)) return fallback;
    if (typeof raw === 'string' && (options as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${what} must be one of ${options.join(', ')}, got ${JSON.stringify(raw)}`);
    return fallback;
  };

  const topic = typeof config.topic === 'string' ? config.topic.trim() : '';
  const topicProblem = topic === '' ? undefined : topicLevelsProblem(topic);
  if (topicProblem) problems.push(`asset path ${topicProblem}`);

  const metrics = {} as Record<InputRole, string>;
  for (const role of INPUT_ROLES) {
    const raw = config[`${role}Metric`];
    const name = raw === undefined ? TWIN_DEFAULTS.metrics[role] : typeof raw === 'string' ? raw.trim() : '';
    if (raw !== undefined && typeof raw !== 'string') problems.push(`${role} metric must be a metric name or empty, got ${JSON.stringify(raw)}`);
    const problem = name === '' ? undefined : metricNameProblem(name);
    if (problem) problems.push(`${role} metric ${problem}`);
    metrics[role] = name;
  }
  const d = TWIN_DEFAULTS;
  const ratedCurrentA = number('ratedCurrent', 'rated current (A)', d.ratedCurrentA, 0, 1e5, true);
  const magnetisingCurrentA = number('magnetisingCurrent', 'magnetising current (A)', d.magnetisingCurrentA, 0, 1e5);
  if (magnetisingCurrentA >= ratedCurrentA) problems.push(`magnetising current ${magnetisingCurrentA} A must be below the rated current ${ratedCurrentA} A`);
  const bearingCKn = number('bearingC', 'bearing dynamic load rating C (kN)', d.bearingCKn, 0, 1e5, true);
  const bearingLoadNoLoadKn = number('bearingLoad0', 'bearing load at no torque (kN)', d.bearingLoadNoLoadKn, 0, 1e5, true);
  const bearingLoadRatedKn = number('bearingLoad', 'bearing load at rated torque (kN)', d.bearingLoadRatedKn, 0, 1e5, true);
  if (bearingLoadRatedKn < bearingLoadNoLoadKn) problems.push(`bearing load at rated torque ${bearingLoadRatedKn} kN must not be below the load at no torque ${bearingLoadNoLoadKn} kN`);
  // ISO 281 §1: the life equation is not valid for P > 0.5 C.
  if (bearingLoadRatedKn > 0.5 * bearingCKn) problems.push(`bearing load at rated torque ${bearingLoadRatedKn} kN is above 0.5 C = ${0.5 * bearingCKn} kN, where ISO 281's life equation does not hold`);

  const machineGroup = choice('machineGroup', 'machine group', MACHINE_GROUPS, d.machineGroup as MachineGroup);
  const foundation = choice('foundation', 'foundation', FOUNDATIONS, d.foundation as Foundation);
  let zoneBoundaries: ZoneBoundaries = ZONE_TABLES[machineGroup][foundation].boundaries;
  let zoneSource = ZONE_TABLES[machineGroup][foundation].source;
  if (!isEmpty(config.zoneBoundaries)) {
    const parts = String(config.zoneBoundaries).split(',').map((p) => p.trim());
    const values = parts.map((p) => (/^\d+(\.\d+)?$/.test(p) ? Number(p) : NaN));
    if (values.length !== 3 || values.some((v) => !(v > 0)) || !(values[0] < values[1] && values[1] < values[2])) {
      problems.push(`zone boundaries must be three increasing numbers in mm/s, A/B, B/C, C/D (e.g. "1.4, 2.8, 4.5"), got ${JSON.stringify(config.zoneBoundaries)}`);
    } else {
      zoneBoundaries = values as unknown as ZoneBoundaries;
      zoneSource = 'custom boundaries';
    }
  }

  const settings: TwinSettings = {
    topic,
    metrics,
    torqueUnit: choice('torqueUnit', 'torque unit', ['Nm', '%'] as const, d.torqueUnit as 'Nm'),
    loadFrom: choice('loadFrom', 'bearing load from', ['auto', 'current', 'torque', 'rated'] as const, d.loadFrom as LoadSource),
    ratedCurrentA,
    magnetisingCurrentA,
    ratedTorqueNm: number('ratedTorque', 'rated torque (N·m)', d.ratedTorqueNm, 0, 1e7, true),
    ratedSpeedRpm: number('ratedSpeed', 'rated speed (r/min)', d.ratedSpeedRpm, 0, 1e5, true),
    insulationClass: choice('insulationClass', 'insulation class', INSULATION_CLASSES, d.insulationClass as InsulationClass),
    bearingType: choice('bearingType', 'bearing type', BEARING_TYPES, d.bearingType as BearingType),
    bearingCKn,
    bearingLoadNoLoadKn,
    bearingLoadRatedKn,
    capacitorLifeH: number('capacitorLife', 'capacitor rated life (h)', d.capacitorLifeH, 0, 1e7, true),
    capacitorTemperatureC: number('capacitorTemperature', 'capacitor rated temperature (°C)', d.capacitorTemperatureC, 40, 150),
    capacitorSource: choice('capacitorSource', 'capacitor temperature from', ['heatsink', 'ambient'] as const, d.capacitorSource as CapacitorSource),
    capacitorRiseK: number('capacitorRise', 'capacitor core rise (K)', d.capacitorRiseK, -50, 100),
    fanLifeH: number('fanLife', 'fan rated life (h)', d.fanLifeH, 0, 1e7, true),
    fanTemperatureC: number('fanTemperature', 'fan rated temperature (°C)', d.fanTemperatureC, -20, 120),
    machineGroup,
    foundation,
    zoneBoundaries,
    zoneSource,
    alertConsumedPercent: number('alertConsumed', 'alert at life consumed (%)', d.alertConsumedPercent, 0, 100, true),
    alertRulHours: number('alertRul', 'alert at remaining life (h)', d.alertRulHours, 0, 1e7),
    staleAfterMs: number('staleAfter', 'stale after (s)', d.staleAfterS, 0.1, 86_400) * 1000,
    publishIntervalMs: number('publishInterval', 'publish interval (s)', d.publishIntervalS, 0, 86_400) * 1000,
    timeScale: number('timeScale', 'time scale', d.timeScale, 1, MAX_TIME_SCALE),
  };
  if (settings.loadFrom === 'current' && metrics.current === '') problems.push('bearing load from current needs a current metric');
  if (settings.loadFrom === 'torque' && metrics.torque === '') problems.push('bearing load from torque needs a torque metric');
  if (problems.length) throw new TwinSettingsError(problems);
  return settings;
}
