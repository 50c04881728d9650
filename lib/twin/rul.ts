/**
 * Remaining useful life from life consumed, with an uncertainty band.
 *
 * A component has consumed the fraction D of its rated life in H hours of observed operation. If the
 * duty seen so far continues (the only assumption, stated with every figure), the rated life at this
 * duty is H / D and the remaining life is (1 − D) · H / D. The band replaces the rated life by k times
 * it, k from the scatter of the model: remaining(k) = max(0, k − D) · H / D.
 *
 * - Bearings and fans (rated as L10): k from ISO 281:2007's reliability factor a1, low = a1(99 %) = 0.25
 *   (the life 99 % of bearings reach), high = a1(50 %) ≈ 3.4 (the median life; a1's formula taken
 *   beyond its table, see bearing.ts).
 * - Insulation and capacitor (10 K rules): the temperature the model reads is uncertain by ±5 K
 *   (sensor and hot-spot position; IEC 60085 designs allow 5–15 K between average and hot spot), which
 *   scales the life by 2^(∓5/10): low = 0.71, high = 1.41.
 * The drive's band is the minimum over its components of each bound (the first component to wear out ends it).
 */
import { reliabilityFactor } from './bearing';

export type ComponentName = 'insulation' | 'bearing' | 'capacitor' | 'fan';
export const COMPONENTS: readonly ComponentName[] = ['insulation', 'bearing', 'capacitor', 'fan'];

/** Temperature uncertainty of the 10 K models, K. */
export const TEMPERATURE_UNCERTAINTY_K = 5;

const temperatureBand = { low: 2 ** (-TEMPERATURE_UNCERTAINTY_K / 10), high: 2 ** (TEMPERATURE_UNCERTAINTY_K / 10) };
const l10Band = { low: reliabilityFactor(99), high: reliabilityFactor(50) };

/** Life scale factors k of the band's ends, per component. */
export const RUL_BAND: Readonly<Record<ComponentName, { low: number; high: number }>> = Object.freeze({
  insulation: temperatureBand,
  bearing: l10Band,
  capacitor: temperatureBand,
  fan: l10Band,
});

/** Hours of observed operation below which a remaining life is marked uncertain (too little history to know the duty). */
export const MIN_HISTORY_HOURS = 1;

export interface RemainingLife {
  nominal: number;
  low: number;
  high: number;
}

/** Remaining life in hours at the duty seen so far; null while nothing was consumed (no duty to extrapolate). */
export function remainingLife(consumed: number, observedHours: number, band: { low: number; high: number }): RemainingLife | null {
  if (!(consumed > 0) || !(observedHours > 0)) return null;
  const ratedAtDuty = observedHours / consumed;
  const remaining = (k: number) => Math.max(0, k - consumed) * ratedAtDuty;
  return { nominal: remaining(1), low: remaining(band.low), high: remaining(band.high) };
}
