/**
 * Vibration severity zones (broadband RMS velocity, 10–1000 Hz, on the bearing housings).
 *
 * Zone A: newly commissioned machines; B: unrestricted long-term operation; C: not suitable for
 * long-term continuous operation, plan maintenance; D: severe enough to cause damage.
 *
 * Boundaries A/B, B/C, C/D in mm/s, as data:
 * - ISO 10816-3:2009 Annex A, Table A.1 (group 1: > 300 kW, or shaft height ≥ 315 mm) and Table A.2
 *   (group 2: 15 … 300 kW, or shaft height 160 … 315 mm), each for rigid and flexible foundations
 *   (the same values as Beckhoff TF3600's ISO 10816-3 sample: group 1 rigid 2.3 / 4.5 / 7.1).
 * - Machines below 15 kW are outside ISO 10816-3; ISO 10816-1:1995 Annex B, Table B.1 gives class I
 *   (small machines, up to 15 kW): 0.71 / 1.8 / 4.5 mm/s.
 * ISO 20816-3:2022 replaced ISO 10816-3 (merging ISO 7919-3's shaft vibration); its zone values were
 * not checked here, so the tables are named by the edition they come from, and a user can give
 * the boundaries of another edition or of the machine maker as a custom table.
 */

export type Zone = 'A' | 'B' | 'C' | 'D';
export const ZONES: readonly Zone[] = ['A', 'B', 'C', 'D'];

export type MachineGroup = 'group1' | 'group2' | 'class1';
export const MACHINE_GROUPS: readonly MachineGroup[] = ['group1', 'group2', 'class1'];
export type Foundation = 'rigid' | 'flexible';
export const FOUNDATIONS: readonly Foundation[] = ['rigid', 'flexible'];

/** Zone boundaries A/B, B/C, C/D, mm/s RMS, strictly increasing. */
export type ZoneBoundaries = readonly [number, number, number];

export interface ZoneTable {
  boundaries: ZoneBoundaries;
  /** Where the numbers come from, for reasons and docs. */
  source: string;
}

/** Zone boundaries by machine group and foundation. */
export const ZONE_TABLES: Readonly<Record<MachineGroup, Readonly<Record<Foundation, ZoneTable>>>> = Object.freeze({
  group1: {
    rigid: { boundaries: [2.3, 4.5, 7.1], source: 'ISO 10816-3:2009 Table A.1, group 1, rigid' },
    flexible: { boundaries: [3.5, 7.1, 11.0], source: 'ISO 10816-3:2009 Table A.1, group 1, flexible' },
  },
  group2: {
    rigid: { boundaries: [1.4, 2.8, 4.5], source: 'ISO 10816-3:2009 Table A.2, group 2, rigid' },
    flexible: { boundaries: [2.3, 4.5, 7.1], source: 'ISO 10816-3:2009 Table A.2, group 2, flexible' },
  },
  // ISO 10816-1 class I does not distinguish foundations.
  class1: {
    rigid: { boundaries: [0.71, 1.8, 4.5], source: 'ISO 10816-1:1995 Table B.1, class I' },
    flexible: { boundaries: [0.71, 1.8, 4.5], source: 'ISO 10816-1:1995 Table B.1, class I' },
  },
});

/** The zone of an RMS velocity: a value on a boundary belongs to the higher zone. */
export function vibrationZone(velocityMmS: number, boundaries: ZoneBoundaries): Zone {
  const index = boundaries.findIndex((boundary) => velocityMmS < boundary);
  return ZONES[index === -1 ? 3 : index];
}

/**
 * Zone with hysteresis: a rise takes effect at the boundary, a fall only below boundary · (1 − band),
 * so noise around one boundary does not flap the zone (and its alerts).
 */
export function zoneWithHysteresis(velocityMmS: number, boundaries: ZoneBoundaries, previous: Zone | null, band: number): Zone {
  const raw = vibrationZone(velocityMmS, boundaries);
  if (previous === null) return raw;
  const before = ZONES.indexOf(previous);
  const now = ZONES.indexOf(raw);
  if (now >= before) return raw;
  // Falling: the zone the velocity would be in with every boundary lowered by the band.
  const lowered = ZONES.indexOf(vibrationZone(velocityMmS / (1 - band), boundaries));
  return ZONES[Math.min(before, lowered)];
}

/** The lower and upper boundary of a zone (0 and Infinity at the ends). */
export function zoneRange(zone: Zone, boundaries: ZoneBoundaries): [number, number] {
  const i = ZONES.indexOf(zone);
  return [i === 0 ? 0 : boundaries[i - 1], i === 3 ? Infinity : boundaries[i]];
}
