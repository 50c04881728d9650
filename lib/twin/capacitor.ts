/**
 * DC-link aluminium electrolytic capacitor and cooling fan of the drive.
 *
 * Capacitor (makers' application notes: Nippon Chemi-Con "Lifetime of aluminum electrolytic
 * capacitors", equation (8); TDK, Illinois Capacitor, Würth Elektronik SN008 — life doubles for every
 * 10 °C below the rated temperature, the Arrhenius law of electrolyte loss through the seal):
 *
 *   L_x = L_0 · 2^((T_0 − T_x) / 10 K)
 *
 * L_0 the endurance (e.g. 5,000 h) at the upper category temperature T_0 (e.g. 105 °C), T_x the core
 * (hot-spot) temperature. The core temperature is estimated as a measured temperature near the DC
 * link (the drive's heatsink, or its internal ambient) plus a configurable rise; with the heatsink
 * and a rise of 0 K the estimate is on the safe side for most drives, whose capacitors sit below the
 * heatsink temperature. Limits: makers state the rule within their category temperature range
 * (typically 40 °C … T_0); voltage derating and ripple current beyond what heats the core are not modelled.
 *
 * Cooling fan: life = hours run against the maker's L10 life at a reference air temperature, derated
 * with the fan makers' grease-life rule (Sanyo Denki, quoted by EAO: L10 halves for every 15 K above
 * the reference temperature) when an ambient temperature is known.
 */

/** Temperature change that doubles/halves an electrolytic capacitor's life, K. */
export const CAPACITOR_DOUBLING_INTERVAL_K = 10;

/** Temperature change that halves a fan's L10 (grease) life, K. */
export const FAN_HALVING_INTERVAL_K = 15;

/** Expected life of an electrolytic capacitor at a core temperature, h. */
export function capacitorLifeHours(ratedLifeH: number, ratedTemperatureC: number, coreTemperatureC: number): number {
  return ratedLifeH * 2 ** ((ratedTemperatureC - coreTemperatureC) / CAPACITOR_DOUBLING_INTERVAL_K);
}

/** Expected L10 life of a fan at an air temperature, h (never longer than the rating below the reference temperature). */
export function fanLifeHours(ratedLifeH: number, ratedTemperatureC: number, airTemperatureC: number): number {
  return ratedLifeH * 2 ** (Math.min(0, ratedTemperatureC - airTemperatureC) / FAN_HALVING_INTERVAL_K);
}
