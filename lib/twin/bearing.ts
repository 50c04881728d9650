/**
 * Rolling bearing fatigue: ISO 281:2007 basic rating life, accumulated over variable speed and load
 * with the Palmgren–Miner rule.
 *
 *   L10  = (C / P)^p                       million revolutions, 90 % reliability (ISO 281 §6.2)
 *   L10h = 10^6 / (60 · n) · L10           hours at a constant speed n (r/min)
 *   p    = 3 for ball bearings, 10/3 for roller bearings
 *   Palmgren–Miner: damage D = Σ t_i / L10h,i; the life under the duty cycle is T / D
 *   (SKF "Basic rating life" after ISO 281:2007; ISO 281 §6.3 for variable operating conditions.)
 *
 * Equivalent load P. A drive does not measure bearing forces, so the twin estimates P from the shaft
 * torque: P = P_0 + (P_rated − P_0) · τ, with τ the torque as a fraction of rated torque, P_0 the
 * bearing load at no torque (rotor weight, belt or coupling preload) and P_rated the load at rated
 * torque (from the machine designer or the bearing calculation of the motor maker). τ comes from a
 * torque metric, or from the motor current: the torque-producing current of an induction motor is
 * I_q = √(I² − I_mag²), so τ ≈ I_q / √(I_rated² − I_mag²) (with I_mag = 0 this is I / I_rated, which
 * overestimates the load at light load: on the safe side). Linear in τ: belt pull and gear forces grow
 * with the transmitted torque; the rotor weight does not.
 *
 * Limits: basic rating life only (a_ISO = 1: lubrication and contamination not modelled), fatigue
 * only (no wear, false brinelling, electrical erosion from inverter bearing currents), P ≤ 0.5 C
 * (ISO 281 §1: above it the life equation overestimates), speed below the bearing's limiting speed.
 */

export type BearingType = 'ball' | 'roller';
export const BEARING_TYPES: readonly BearingType[] = ['ball', 'roller'];

/** Life exponent p of ISO 281 §6.2. */
export const BEARING_LIFE_EXPONENT: Readonly<Record<BearingType, number>> = Object.freeze({ ball: 3, roller: 10 / 3 });

/** Basic rating life L10, million revolutions. */
export function basicRatingLifeMrev(dynamicLoadRatingKn: number, equivalentLoadKn: number, type: BearingType): number {
  return (dynamicLoadRatingKn / equivalentLoadKn) ** BEARING_LIFE_EXPONENT[type];
}

/** Basic rating life L10h in operating hours at a constant speed; Infinity at standstill. */
export function ratingLifeHours(dynamicLoadRatingKn: number, equivalentLoadKn: number, type: BearingType, speedRpm: number): number {
  const n = Math.abs(speedRpm);
  if (n === 0) return Infinity;
  return (1e6 / (60 * n)) * basicRatingLifeMrev(dynamicLoadRatingKn, equivalentLoadKn, type);
}

/** Miner damage (fraction of L10 consumed) of `hours` at a speed and load. */
export function bearingDamage(dynamicLoadRatingKn: number, equivalentLoadKn: number, type: BearingType, speedRpm: number, hours: number): number {
  const life = ratingLifeHours(dynamicLoadRatingKn, equivalentLoadKn, type, speedRpm);
  return life === Infinity ? 0 : hours / life;
}

/** One part of a duty cycle: a time at a speed and load. */
export interface DutySegment {
  hours: number;
  speedRpm: number;
  loadKn: number;
}

/** Rating life under a duty cycle (Palmgren–Miner): total time / Σ damage, h. */
export function dutyCycleLifeHours(dynamicLoadRatingKn: number, type: BearingType, segments: readonly DutySegment[]): number {
  let hours = 0;
  let damage = 0;
  for (const s of segments) {
    hours += s.hours;
    damage += bearingDamage(dynamicLoadRatingKn, s.loadKn, type, s.speedRpm, s.hours);
  }
  return damage === 0 ? Infinity : hours / damage;
}

/** Torque as a fraction of rated torque from the motor current (torque-producing component). */
export function torqueFractionFromCurrent(currentA: number, ratedCurrentA: number, magnetisingCurrentA: number): number {
  const ratedTorqueCurrent = Math.sqrt(ratedCurrentA ** 2 - magnetisingCurrentA ** 2);
  return Math.sqrt(Math.max(0, currentA ** 2 - magnetisingCurrentA ** 2)) / ratedTorqueCurrent;
}

/** Equivalent dynamic bearing load from the torque fraction (linear between no-load and rated load), kN. */
export function equivalentLoadKn(torqueFraction: number, noLoadKn: number, ratedLoadKn: number): number {
  return noLoadKn + (ratedLoadKn - noLoadKn) * Math.abs(torqueFraction);
}

/**
 * ISO 281:2007 §6.2 life modification factor for reliability: a1 = 0.95 · (ln(100/R) / ln(100/90))^(2/3) + 0.05
 * (a Weibull distribution of slope 1.5 with a minimum life of 0.05 · L10). The table of ISO 281 covers
 * R = 90 … 99.95 %; the twin also evaluates it at R = 50 % for the upper end of its uncertainty band.
 */
export function reliabilityFactor(reliabilityPercent: number): number {
  return 0.95 * (Math.log(100 / reliabilityPercent) / Math.log(100 / 90)) ** (2 / 3) + 0.05;
}
