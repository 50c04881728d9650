/**
 * The wear models of lib/twin, each against a worked example of its cited source (docs/twin.md),
 * with exact numbers: the 10 K rule of insulation classes (IEC 60085 / IEC 60216 20,000 h), ISO 281
 * L10/L10h and Palmgren–Miner, the capacitor makers' 10 °C rule, ISO 10816-3 zones, and the ISO 281
 * reliability factor a1 against its table.
 */
import { strict as assert } from 'node:assert';
import {
  basicRatingLifeMrev, capacitorLifeHours, dutyCycleLifeHours, equivalentLoadKn, fanLifeHours, insulationAgeingFactor, insulationLifeConsumed,
  insulationLifeHours, ratingLifeHours, reliabilityFactor, remainingLife, RUL_BAND, torqueFractionFromCurrent, vibrationZone, ZONE_TABLES,
  zoneWithHysteresis,
} from '../../lib/twin';

const near = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not ${expected} ± ${tolerance}`);

describe('twin models: worked examples of the cited sources', () => {
  describe('insulation, 10 K rule (IEC 60085 classes, 20,000 h temperature index of IEC 60216-1)', () => {
    it('class F: 20,000 h at 155 °C, halved 10 K above (165 °C → 10,000 h), 125 °C → 160,000 h', () => {
      assert.equal(insulationLifeHours('F', 155), 20_000);
      assert.equal(insulationLifeHours('F', 165), 10_000);
      assert.equal(insulationLifeHours('F', 125), 160_000);
      assert.equal(insulationAgeingFactor('F', 165), 2);
    });
    it('classes B and H are 130 °C and 180 °C', () => {
      assert.equal(insulationLifeHours('B', 130), 20_000);
      assert.equal(insulationLifeHours('H', 190), 10_000);
    });
    it('life consumed: 1,000 h at 165 °C use 10 % of a class F winding', () => {
      near(insulationLifeConsumed('F', 165, 1000), 0.1, 1e-12, 'consumed');
    });
  });

  describe('bearing, ISO 281 basic rating life', () => {
    it('C = 33.2 kN, P = 3 kN, ball: L10 = 1,355 Mrev, at 1480 r/min L10h = 15,263 h', () => {
      near(basicRatingLifeMrev(33.2, 3, 'ball'), 1355.3, 0.05, 'L10 (Mrev)');
      assert.equal(Math.round(ratingLifeHours(33.2, 3, 'ball', 1480)), 15_263);
    });
    it('roller bearings use p = 10/3 (machinecalcs example: C/P = 6 → 392 Mrev)', () => {
      assert.equal(Math.round(basicRatingLifeMrev(30, 5, 'roller')), 392);
      assert.equal(Math.round(basicRatingLifeMrev(30, 5, 'ball')), 216);
    });
    it('Palmgren–Miner: half the time at 1480 r/min / 3 kN, half at 740 r/min / 2 kN → 26,587 h', () => {
      const life = dutyCycleLifeHours(33.2, 'ball', [{ hours: 0.5, speedRpm: 1480, loadKn: 3 }, { hours: 0.5, speedRpm: 740, loadKn: 2 }]);
      assert.equal(Math.round(life), 26_587);
    });
    it('standstill does not fatigue a bearing', () => {
      assert.equal(ratingLifeHours(33.2, 3, 'ball', 0), Infinity);
    });
    it('load estimate: rated current gives rated torque, the magnetising current alone none', () => {
      near(torqueFractionFromCurrent(14.8, 14.8, 5.2), 1, 1e-12, 'rated');
      assert.equal(torqueFractionFromCurrent(5.2, 14.8, 5.2), 0);
      near(equivalentLoadKn(0.5, 1, 3), 2, 1e-12, 'half torque');
    });
    it('reliability factor a1 reproduces the ISO 281:2007 table (95 % 0.64, 99 % 0.25) and 1 at 90 %', () => {
      assert.equal(reliabilityFactor(90), 1);
      assert.equal(reliabilityFactor(95).toFixed(2), '0.64');
      assert.equal(reliabilityFactor(99).toFixed(2), '0.25');
    });
  });

  describe('DC-link electrolytic capacitor, 10 °C rule (makers\' application notes)', () => {
    it('5,000 h / 105 °C at a 65 °C core: 80,000 h (≈ 9.1 years)', () => {
      assert.equal(capacitorLifeHours(5000, 105, 65), 80_000);
      assert.equal((80_000 / 8760).toFixed(1), '9.1');
    });
    it('a 2,000 h / 105 °C part: 85 °C → 8,000 h, 65 °C → 32,000 h', () => {
      assert.equal(capacitorLifeHours(2000, 105, 85), 8000);
      assert.equal(capacitorLifeHours(2000, 105, 65), 32_000);
    });
  });

  describe('cooling fan', () => {
    it('Sanyo Denki\'s example: 60,000 h at 60 °C is 18,900 h at 85 °C (halving per 15 K)', () => {
      near(fanLifeHours(60_000, 60, 85), 18_900, 5, 'L10 at 85 °C');
    });
    it('below its reference temperature the rating is not extended', () => {
      assert.equal(fanLifeHours(40_000, 40, 20), 40_000);
    });
  });

  describe('vibration severity, ISO 10816-3', () => {
    it('a 37 kW motor (group 2) on a rigid foundation at 3.2 mm/s is in zone C', () => {
      assert.equal(vibrationZone(3.2, ZONE_TABLES.group2.rigid.boundaries), 'C');
    });
    it('boundaries as data: group 1 rigid 2.3/4.5/7.1, flexible 3.5/7.1/11; group 2 flexible 2.3/4.5/7.1', () => {
      assert.deepEqual(ZONE_TABLES.group1.rigid.boundaries, [2.3, 4.5, 7.1]);
      assert.deepEqual(ZONE_TABLES.group1.flexible.boundaries, [3.5, 7.1, 11.0]);
      assert.deepEqual(ZONE_TABLES.group2.flexible.boundaries, [2.3, 4.5, 7.1]);
      assert.equal(vibrationZone(3.2, ZONE_TABLES.group2.flexible.boundaries), 'B');
    });
    it('a value on a boundary belongs to the higher zone; zone D has no top', () => {
      const b = ZONE_TABLES.group2.rigid.boundaries;
      assert.deepEqual([0, 1.4, 2.8, 4.5, 400].map((v) => vibrationZone(v, b)), ['A', 'B', 'C', 'D', 'D']);
    });
    it('hysteresis: C is left for B only 5 % below 2.8 mm/s', () => {
      const b = ZONE_TABLES.group2.rigid.boundaries;
      assert.equal(zoneWithHysteresis(2.7, b, 'C', 0.05), 'C');
      assert.equal(zoneWithHysteresis(2.65, b, 'C', 0.05), 'B');
      assert.equal(zoneWithHysteresis(1.0, b, 'D', 0.05), 'A');
      assert.equal(zoneWithHysteresis(2.8, b, 'B', 0.05), 'C');
    });
  });

  describe('remaining useful life', () => {
    it('40 % used in 4,000 h: 6,000 h remain at that duty; the L10 band runs from a1(99 %) to a1(50 %)', () => {
      const rul = remainingLife(0.4, 4000, RUL_BAND.bearing)!;
      near(rul.nominal, 6000, 1e-9, 'nominal');
      near(rul.low, 0, 1e-9, 'low: 25 % of L10 already passed');
      near(rul.high, (reliabilityFactor(50) - 0.4) * 10_000, 1e-6, 'high');
    });
    it('nothing consumed: no duty to extrapolate (null, never a guess)', () => {
      assert.equal(remainingLife(0, 100, RUL_BAND.insulation), null);
    });
  });
});
