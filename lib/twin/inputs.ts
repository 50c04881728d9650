/**
 * Telemetry the twin reads from a tag batch: which metric plays which role, its unit, and whether
 * its value is believable. A value is refused per metric, with a reason, never clamped or guessed:
 * quality "bad", not a finite number, a unit the twin cannot convert, or outside the physically
 * possible range of its role (a winding at 10,000 °C is a broken sensor or a scaling error).
 */
import type { MetricMeta, MetricValue, Quality } from '../uns/tag-batch';

export type InputRole = 'current' | 'speed' | 'windingTemperature' | 'heatsinkTemperature' | 'ambientTemperature' | 'vibration' | 'torque';
export const INPUT_ROLES: readonly InputRole[] = ['current', 'speed', 'windingTemperature', 'heatsinkTemperature', 'ambientTemperature', 'vibration', 'torque'];

/** A value accepted for a role, in the role's canonical unit. */
export interface Sample {
  value: number;
  /** Monotonic receive time, ms. */
  at: number;
  quality: Exclude<Quality, 'bad'>;
  /** The source's reason for an uncertain value. */
  reason?: string;
}

export type Reading = { ok: true; sample: Sample } | { ok: false; reason: string };

/**
 * Canonical unit per role and the units converted to it (factor, offset: canonical = v · factor + offset):
 * symbols as sources write them, and the UNECE Recommendation 20 common codes an OPC UA server's
 * EUInformation carries (CEL, KEL, FAH, RPM, AMP, C16, NU).
 */
interface RoleSpec {
  unit: string;
  units: Readonly<Record<string, readonly [number, number]>>;
  /** Believable range in the canonical unit (inclusive). */
  min: number;
  max: number;
}

const CELSIUS: Readonly<Record<string, readonly [number, number]>> = {
  degC: [1, 0], '°C': [1, 0], C: [1, 0], Cel: [1, 0], celsius: [1, 0], CEL: [1, 0],
  K: [1, -273.15], KEL: [1, -273.15],
  degF: [5 / 9, -32 * 5 / 9], '°F': [5 / 9, -32 * 5 / 9], F: [5 / 9, -32 * 5 / 9], FAH: [5 / 9, -32 * 5 / 9],
};
/** Temperatures a drive or motor can have: below −50 °C nothing runs, above 300 °C class H insulation is long gone. */
const TEMPERATURE = { unit: 'degC', units: CELSIUS, min: -50, max: 300 };

export const ROLE_SPECS: Readonly<Record<InputRole, RoleSpec>> = Object.freeze({
  current: { unit: 'A', units: { A: [1, 0], AMP: [1, 0], mA: [1e-3, 0] }, min: 0, max: 100_000 },
  speed: { unit: 'rpm', units: { rpm: [1, 0], RPM: [1, 0], 'r/min': [1, 0], '1/min': [1, 0], 'rev/min': [1, 0], 'min-1': [1, 0], 'r/s': [60, 0], rps: [60, 0] }, min: -100_000, max: 100_000 },
  windingTemperature: TEMPERATURE,
  heatsinkTemperature: TEMPERATURE,
  ambientTemperature: TEMPERATURE,
  // ISO 10816 zone D starts at 4.5 … 11 mm/s; 1,000 mm/s would shake a machine apart.
  vibration: { unit: 'mm/s', units: { 'mm/s': [1, 0], C16: [1, 0], 'in/s': [25.4, 0], 'm/s': [1000, 0] }, min: 0, max: 1000 },
  // Torque in N·m, or in % of rated torque (the twin converts with the rated torque).
  torque: { unit: 'Nm', units: { Nm: [1, 0], NU: [1, 0], 'N·m': [1, 0], 'N.m': [1, 0], 'N m': [1, 0], '%': [1, 0] }, min: -1e6, max: 1e6 },
});

function describe(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value)}`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  return value === null ? 'null' : typeof value;
}

/**
 * Read one metric for a role. `extraRange` narrows the believable range with nameplate knowledge
 * (e.g. current ≤ 10 × rated). The caller has already found the metric in the batch.
 */
export function readMetric(role: InputRole, metric: string, value: MetricValue | undefined, meta: MetricMeta | undefined, at: number,
  extraRange?: { min?: number; max?: number; why: string }): Reading {
  const spec = ROLE_SPECS[role];
  if (meta?.quality === 'bad') return { ok: false, reason: `${metric}: quality bad${meta.reason ? ` (${meta.reason})` : ''}` };
  let number: number;
  if (typeof value === 'number') number = value;
  else if (typeof value === 'bigint' && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) number = Number(value);
  else return { ok: false, reason: `${metric}: ${describe(value)} is not a number` };
  if (!Number.isFinite(number)) return { ok: false, reason: `${metric}: ${number} is not a finite number` };
  const unit = meta?.unit?.trim();
  let canonical = number;
  if (unit !== undefined && unit !== '') {
    const conversion = Object.hasOwn(spec.units, unit) ? spec.units[unit] : undefined;
    if (!conversion) return { ok: false, reason: `${metric}: unit ${JSON.stringify(unit)} is not a unit of ${role} (${Object.keys(spec.units).join(', ')})` };
    canonical = number * conversion[0] + conversion[1];
  }
  const min = Math.max(spec.min, extraRange?.min ?? -Infinity);
  const max = Math.min(spec.max, extraRange?.max ?? Infinity);
  if (canonical < min || canonical > max) {
    const why = (extraRange?.min ?? -Infinity) > spec.min || (extraRange?.max ?? Infinity) < spec.max ? ` (${extraRange?.why})` : '';
    return { ok: false, reason: `${metric}: ${number}${unit ? ` ${unit}` : ''} is outside ${min} … ${max} ${spec.unit}${why}` };
  }
  const quality = meta?.quality === 'uncertain' ? 'uncertain' : 'good';
  return { ok: true, sample: { value: canonical, at, quality, ...(quality === 'uncertain' && meta?.reason ? { reason: meta.reason } : {}) } };
}
