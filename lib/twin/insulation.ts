/**
 * Thermal ageing of a motor winding's insulation: the 10 K halving rule (Montsinger).
 *
 *   L(T) = L_ref · 2^((T_class − T) / 10 K)        life at a constant winding temperature T
 *   dD/dt = 2^((T − T_class) / 10 K) / L_ref        life consumed per hour (D = 1: end of life)
 *
 * Constants:
 * - T_class, the thermal class of the insulation system (IEC 60085:2007, Table 1): B 130 °C, F 155 °C,
 *   H 180 °C. IEC 60034-18-21/-31 evaluate a motor's insulation system against these classes.
 * - L_ref = 20,000 h: the time to end point that defines a temperature index (IEC 60216-1 §3: the
 *   temperature, in °C, at which the thermal endurance graph reaches 20,000 h), so a class-F system
 *   lasts 20,000 h at a constant 155 °C.
 * - 10 K halving interval: the rule of thumb that insulation life halves for every 10 K above, and
 *   doubles for every 10 K below, the rated temperature (quoted by motor makers, e.g. "each 10 °C rise
 *   above the rating may reduce the motor lifetime by one half"; the IEC 60216 "halving interval"
 *   HIC is this number measured for one material).
 *
 * One model only: the 10 K rule. Pure Arrhenius with Ea = 0.9 eV would give ×1.745 per 10 K at
 * 155 → 165 °C (a true halving there needs Ea ≈ 1.12 eV); docs/twin.md says why the rule was chosen.
 * Valid where thermal stress dominates ageing (IEC 60085 §1), roughly T_class − 60 K … T_class + 30 K;
 * voltage stress from inverter pulses (IEC 60034-18-41), moisture and contamination are not modelled.
 */

export type InsulationClass = 'B' | 'F' | 'H';
export const INSULATION_CLASSES: readonly InsulationClass[] = ['B', 'F', 'H'];

/** Thermal class temperatures, °C (IEC 60085:2007 Table 1). */
export const INSULATION_CLASS_TEMPERATURE_C: Readonly<Record<InsulationClass, number>> = Object.freeze({ B: 130, F: 155, H: 180 });

/** Life at the class temperature, h: the 20,000 h of a temperature index (IEC 60216-1). */
export const INSULATION_REFERENCE_LIFE_H = 20_000;

/** Temperature rise that halves the life, K (10 K rule). */
export const INSULATION_HALVING_INTERVAL_K = 10;

/** Relative ageing rate at a winding temperature: 1 at the class temperature, 2 at 10 K above it. */
export function insulationAgeingFactor(insulationClass: InsulationClass, windingTemperatureC: number): number {
  return 2 ** ((windingTemperatureC - INSULATION_CLASS_TEMPERATURE_C[insulationClass]) / INSULATION_HALVING_INTERVAL_K);
}

/** Insulation life at a constant winding temperature, h. */
export function insulationLifeHours(insulationClass: InsulationClass, windingTemperatureC: number): number {
  return INSULATION_REFERENCE_LIFE_H / insulationAgeingFactor(insulationClass, windingTemperatureC);
}

/** Fraction of the insulation's life consumed by `hours` at a winding temperature. */
export function insulationLifeConsumed(insulationClass: InsulationClass, windingTemperatureC: number, hours: number): number {
  return (hours * insulationAgeingFactor(insulationClass, windingTemperatureC)) / INSULATION_REFERENCE_LIFE_H;
}
