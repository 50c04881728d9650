/**
 * The drive twin (lib/twin/twin.ts) fed tag batches as uns-vfd sends them: integration over
 * monotonic time (a wall-clock jump ages nothing), holding on stale input (no extrapolation, outputs
 * uncertain with the reason), absurd values refused per metric with a reason and one log line per
 * outage, alerts on a threshold and on a vibration zone change (once, also across a restart),
 * reset of a replaced component, batches built in a function node's realm, settings checks, and the
 * atomic state file.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriveTwin, newTwinState, TwinAlert, TwinSettings, twinSettings, TwinSettingsError, TwinStateFile, TwinUpdate } from '../../lib/twin';
import type { MetricMeta, MetricValue, TagBatch } from '../../lib/uns/tag-batch';
import { fromFunctionNode } from '../helpers/function-node-realm';

const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const WALL = Date.UTC(2026, 5, 1);
const HOUR_MS = 3_600_000;

/** One second of real time is one twin hour; inputs stale after 60 s. */
function settings(overrides: Record<string, unknown> = {}): TwinSettings {
  return twinSettings({ timeScale: 3600, staleAfter: 60, publishInterval: 0, machineGroup: 'group2', foundation: 'rigid', ...overrides });
}

function drive(payload: Record<string, MetricValue>, meta?: Record<string, MetricMeta>): Pick<TagBatch, 'topic' | 'payload' | 'meta'> {
  return { topic: ASSET, payload: { motorCurrent: 12, actualSpeed: 1460, motorTemperature: 165, heatsinkTemperature: 65, vibration: 2.0, ...payload }, meta };
}

/** Feed `count` batches one second apart from mono `start`; returns every update. */
function run(twin: DriveTwin, count: number, payload: Record<string, MetricValue> = {}, start = 0, meta?: Record<string, MetricMeta>): TwinUpdate[] {
  const updates: TwinUpdate[] = [];
  for (let i = 0; i < count; i++) updates.push(twin.update(drive(payload, meta), start + i * 1000, WALL + i * 1000));
  return updates;
}
const alerts = (updates: TwinUpdate[]): TwinAlert[] => updates.flatMap((u) => u.alerts);
const lastBatch = (updates: TwinUpdate[]): TagBatch => updates.filter((u) => u.batch).at(-1)!.batch!;

describe('drive twin (lib/twin)', () => {
  it('integrates insulation ageing over monotonic time: 1,000 h at 165 °C use 10 % of a class F winding', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    const updates = run(twin, 1001);
    const state = twin.state;
    assert.ok(Math.abs(state.components.insulation.consumed - 0.1) < 1e-9, String(state.components.insulation.consumed));
    assert.ok(Math.abs(state.components.insulation.observedHours - 1000) < 1e-9);
    const batch = lastBatch(updates);
    assert.equal(batch.topic, `${ASSET}/twin`);
    assert.ok(Math.abs((batch.payload['insulation/lifeConsumed'] as number) - 10) < 1e-6);
    assert.equal(batch.meta!['insulation/lifeConsumed'].unit, '%');
    assert.equal(batch.meta!['insulation/lifeConsumed'].quality, 'good');
    assert.equal(batch.payload['insulation/agingFactor'], 2);
    // 10 % in 1,000 h at this duty: 9,000 h remain.
    assert.ok(Math.abs((batch.payload['insulation/rul'] as number) - 9000) < 1e-6);
    assert.equal(batch.meta!['insulation/rul'].quality, 'good');
    assert.ok((batch.payload['insulation/rulLow'] as number) < 9000 && (batch.payload['insulation/rulHigh'] as number) > 9000);
    assert.equal(typeof batch.payload['drive/rul'], 'number');
    assert.equal(batch.payload['vibration/zone'], 'B');
  });

  it('a wall-clock or source-timestamp jump ages nothing: only monotonic time counts', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    // Wall time jumps a year forward, then a day back, and the source timestamps are nonsense.
    const walls = [WALL, WALL + 365 * 24 * HOUR_MS, WALL - 24 * HOUR_MS, WALL + 1];
    walls.forEach((wall, i) => twin.update(drive({}, { motorTemperature: { timestamp: wall * 7 } }), i * 1000, wall));
    assert.ok(Math.abs(twin.state.components.insulation.observedHours - 3) < 1e-9, String(twin.state.components.insulation.observedHours));
  });

  it('stale input: the component is held after staleAfter (no extrapolation), outputs uncertain with the reason, one notice', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    run(twin, 11); // 10 h
    // The winding temperature stops coming; the other metrics keep arriving.
    const updates: TwinUpdate[] = [];
    for (let i = 11; i < 300; i++) {
      updates.push(twin.update({ topic: ASSET, payload: { motorCurrent: 12, actualSpeed: 1460, heatsinkTemperature: 65, vibration: 2 } }, i * 1000, WALL + i * 1000));
      updates.push(twin.tick(i * 1000 + 500, WALL + i * 1000 + 500));
    }
    const insulation = twin.state.components.insulation;
    // Held for 60 s after the last value (at 10 s), then nothing: 10 h + 60 h.
    assert.ok(Math.abs(insulation.observedHours - 70) < 1e-9, String(insulation.observedHours));
    assert.ok(twin.state.components.bearing.observedHours > 290, 'the bearing keeps counting on its own inputs');
    const batch = lastBatch(updates);
    assert.equal(batch.meta!['insulation/lifeConsumed'].quality, 'uncertain');
    assert.match(batch.meta!['insulation/lifeConsumed'].reason!, /motorTemperature stale: no value for \d+ s \(held\)/);
    assert.equal(batch.payload['insulation/agingFactor'], null);
    assert.equal(batch.meta!['bearing/lifeConsumed'].quality, 'good');
    // Published when the input went stale, then not again on every tick of its growing age.
    const tickBatches = updates.filter((u, i) => i % 2 === 1 && u.batch).length;
    assert.equal(tickBatches, 1, `ticks that published: ${tickBatches}`);
    const notices = updates.flatMap((u) => u.notices);
    assert.deepEqual(notices.filter((n) => n.startsWith('motorTemperature')).length, 1, notices.join('\n'));
    // Data back: counting resumes, quality good again, and the log says so.
    const back = twin.update(drive({}), 300_000, WALL + 300_000);
    assert.ok(back.batch, 'the quality change is published at once');
    assert.equal(back.batch!.meta!['insulation/lifeConsumed'].quality, 'good');
    assert.deepEqual(back.notices, ['motorTemperature: accepted again']);
  });

  it('absurd values are refused per metric with a reason; the last good value is held, never the absurd one', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    run(twin, 2);
    const before = twin.state.components.insulation.consumed;
    const u = twin.update(drive({ motorTemperature: 10_000, actualSpeed: Number.NaN, vibration: -3, motorCurrent: '12' }), 2000, WALL + 2000);
    const text = u.notices.join('\n');
    assert.match(text, /motorTemperature: 10000 is outside -50 … 300 degC: refused, insulation held/);
    assert.match(text, /actualSpeed: NaN is not a finite number: refused, bearing, fan, vibration zone held/);
    assert.match(text, /vibration: -3 is outside 0 … 1000 mm\/s/);
    assert.match(text, /motorCurrent: the string "12" is not a number/);
    // The interval 1 s → 2 s was integrated with the held 165 °C (1 twin hour), not with 10,000 °C.
    assert.ok(Math.abs(twin.state.components.insulation.consumed - before - 2 / 20_000) < 1e-12);
    assert.match(u.batch!.meta!['insulation/lifeConsumed'].reason!, /motorTemperature: 10000 is outside/);
    // The same refusal again is not logged again.
    const again = twin.update(drive({ motorTemperature: 10_000 }), 3000, WALL + 3000).notices;
    assert.deepEqual(again.filter((n) => n.startsWith('motorTemperature')), [], again.join('\n'));
    // Units: 438.15 K is 165 °C (also as the UNECE code an OPC UA server sends); an unknown unit is refused.
    const unece = twin.update(drive({ motorTemperature: 165 }, { motorTemperature: { unit: 'CEL' } }), 3500, WALL + 3500);
    assert.equal(unece.batch!.payload['insulation/agingFactor'], 2);
    const kelvin = twin.update(drive({ motorTemperature: 438.15 }, { motorTemperature: { unit: 'K' } }), 4000, WALL + 4000);
    assert.ok(Math.abs((kelvin.batch!.payload['insulation/agingFactor'] as number) - 2) < 1e-9);
    // (a minute later: a problem that comes back within a minute is not logged again, it flaps)
    const furlong = twin.update(drive({ vibration: 2 }, { vibration: { unit: 'furlong/fortnight' } }), 70_000, WALL + 70_000);
    assert.match(furlong.notices.join(), /vibration: unit "furlong\/fortnight" is not a unit of vibration/);
    // Quality bad from the source is refused too, with the source's reason.
    const bad = twin.update(drive({ motorTemperature: 100 }, { motorTemperature: { quality: 'bad', reason: 'Modbus exception 2' } }), 140_000, WALL + 140_000);
    assert.match(bad.notices.join(), /motorTemperature: quality bad \(Modbus exception 2\)/);
  });

  it('current beyond 20 × rated and speed beyond 5 × rated are refused (nameplate ranges)', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    const u = twin.update(drive({ motorCurrent: 400, actualSpeed: 9000 }), 0, WALL);
    assert.match(u.notices.join('\n'), /motorCurrent: 400 is outside 0 … 296 A \(20 × rated current 14.8 A\)/);
    assert.match(u.notices.join('\n'), /actualSpeed: 9000 is outside -7300 … 7300 rpm/);
  });

  it('threshold alert once with its reason; a restored state does not raise it again; a reset clears it', () => {
    const s = settings({ alertConsumed: 5 });
    const twin = new DriveTwin(s, newTwinState('', WALL));
    const first = alerts(run(twin, 600));
    const insulation = first.filter((a) => a.component === 'insulation');
    assert.equal(insulation.length, 1, JSON.stringify(first));
    assert.equal(insulation[0].kind, 'threshold');
    assert.equal(insulation[0].severity, 'warning');
    assert.match(insulation[0].reason, /insulation life consumed 5\.0 % reached the alert threshold 5 % \(class F insulation, 20,000 h at 155 °C, halving per 10 K; 500 h observed/);
    // A restart: the same state in a new twin; nothing raised again.
    const restored = new DriveTwin(s, twin.state);
    assert.deepEqual(alerts(run(restored, 10)).filter((a) => a.component === 'insulation'), []);
    // The winding is rewound: count from zero, alert cleared and announced.
    const reset = restored.reset('insulation', 'alice', 20_000, WALL + 20_000);
    assert.equal(reset.alerts[0].kind, 'reset');
    assert.match(reset.alerts[0].reason, /insulation replaced: life consumed insulation \d+\.\d % → 0 % \(reset by alice\)/);
    assert.equal(restored.state.components.insulation.consumed, 0);
    assert.ok(!restored.state.activeAlerts.some((k) => k.startsWith('insulation:')));
    assert.throws(() => restored.reset('gearbox', 'alice', 21_000, WALL), /reset "gearbox": not a component/);
  });

  it('a vibration zone change is an event with its reason; no zone while the motor stands', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    run(twin, 3, { vibration: 2.0 });
    const up = alerts(run(twin, 1, { vibration: 3.2 }, 3000));
    assert.equal(up.length, 1);
    assert.deepEqual({ kind: up[0].kind, from: up[0].from, to: up[0].to, severity: up[0].severity }, { kind: 'zone', from: 'B', to: 'C', severity: 'warning' });
    assert.match(up[0].reason, /vibration 3\.20 mm\/s RMS moved from zone B to zone C \(2\.8 … 4\.5 mm\/s, ISO 10816-3:2009 Table A\.2, group 2, rigid\)/);
    // Noise just under the boundary does not flap back (5 % hysteresis).
    assert.deepEqual(alerts(run(twin, 1, { vibration: 2.7 }, 4000)), []);
    // Standing still: vibration says nothing about the machine, the zone stays.
    assert.deepEqual(alerts(run(twin, 1, { vibration: 0.1, actualSpeed: 0, motorCurrent: 0 }, 5000)), []);
    assert.equal(twin.state.zone, 'C');
  });

  it('reads batches built in a function node (another realm)', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    for (let i = 0; i < 3; i++) twin.update(fromFunctionNode(drive({})), i * 1000, WALL);
    assert.ok(Math.abs(twin.state.components.insulation.observedHours - 2) < 1e-9);
  });

  it('one twin per drive: a batch of another asset is refused', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    twin.update(drive({}), 0, WALL);
    assert.throws(() => twin.update({ topic: 'acme/plant1/packaging/line1/cell1/drive2', payload: { motorTemperature: 50 } }, 1000, WALL),
      /batch of acme\/plant1\/packaging\/line1\/cell1\/drive2 refused: this twin follows acme\/plant1\/packaging\/line1\/cell1\/drive1/);
  });

  it('bearing: the load comes from the torque-producing current and counts only while turning', () => {
    const twin = new DriveTwin(settings(), newTwinState('', WALL));
    // Rated current → rated torque → 3 kN; L10h at 1460 r/min for C = 42.3 kN: 1e6/(60·1460)·(42.3/3)³.
    const updates = run(twin, 11, { motorCurrent: 14.8 });
    const l10h = (1e6 / (60 * 1460)) * (42.3 / 3) ** 3;
    assert.ok(Math.abs(twin.state.components.bearing.consumed - 10 / l10h) < 1e-12);
    assert.equal(lastBatch(updates).payload['bearing/load'], 3);
    run(twin, 10, { motorCurrent: 0, actualSpeed: 0 }, 11_000);
    const fan = twin.state.fanRunHours;
    run(twin, 10, { motorCurrent: 0, actualSpeed: 0 }, 21_000);
    assert.equal(twin.state.fanRunHours, fan, 'the fan does not run while the motor stands');
  });

  it('settings: every problem at once, nothing silently defaulted', () => {
    assert.throws(() => twinSettings({ ratedCurrent: 'abc', insulationClass: 'Z', zoneBoundaries: '4, 2, 1', bearingLoad: 30, timeScale: 0, topic: 'a/+/b' }), (error: unknown) => {
      assert.ok(error instanceof TwinSettingsError);
      const text = error.problems.join('\n');
      for (const part of ['rated current (A)', 'insulation class must be one of B, F, H', 'zone boundaries must be three increasing numbers', 'above 0.5 C', 'time scale', 'asset path level 2']) {
        assert.ok(text.includes(part), `${part} in\n${text}`);
      }
      return true;
    });
    const d = twinSettings({});
    assert.equal(d.timeScale, 1, 'the time scale is off by default');
    assert.equal(d.metrics.windingTemperature, 'motorTemperature');
  });

  describe('state file', () => {
    let dir: string;
    beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'twin-state-')); });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('writes atomically (no temporary file left) and reads back what it wrote', async () => {
      const file = new TwinStateFile(dir, 'a1b2c3.d4');
      assert.deepEqual(file.load(), { kind: 'none' });
      const state = newTwinState(ASSET, WALL);
      state.components.bearing.consumed = 0.25;
      await Promise.all([file.save(newTwinState(ASSET, WALL)), file.save(state)]);
      assert.deepEqual(readdirSync(dir), ['a1b2c3.d4.json']);
      assert.deepEqual(file.load(), { kind: 'ok', state });
    });

    it('an unreadable or tampered file is moved aside and reported, never half-used', () => {
      const file = new TwinStateFile(dir, 'n1');
      writeFileSync(file.path, '{"version":1,"asset":"x","components":{}');
      const broken = file.load();
      assert.equal(broken.kind, 'unreadable');
      assert.match((broken as { problem: string }).problem, /not JSON/);
      const state = newTwinState(ASSET, WALL) as unknown as { components: { fan: { consumed: number } } };
      state.components.fan.consumed = -1;
      writeFileSync(file.path, JSON.stringify(state));
      const negative = file.load();
      assert.match((negative as { problem: string }).problem, /component fan: consumed, observedHours and since must be numbers ≥ 0/);
      assert.equal(readdirSync(dir).filter((f) => f.includes('.unreadable-')).length, 2);
      assert.equal(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8').length > 0, true);
    });

    it('a node id that is not a plain file name cannot leave the folder', () => {
      const file = new TwinStateFile(dir, '../../etc/x');
      assert.equal(join(file.path, '..'), dir);
    });
  });
});
