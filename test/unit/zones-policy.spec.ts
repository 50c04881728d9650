import { strict as assert } from 'node:assert';
import { runInNewContext } from 'node:vm';
import { Conduit, type ConduitClock, type ZoneInfo } from '../../lib/zones/conduit';
import { parsePolicy, policyHash, exportPolicy, PolicyError } from '../../lib/zones/policy';
import { PlantClock, inWindow } from '../../lib/zones/plant-time';

const IT: ZoneInfo = { name: 'enterprise', level: 4 };
const DMZ: ZoneInfo = { name: 'dmz', level: 3.5 };
const OT: ZoneInfo = { name: 'ot-cell-1', level: 1 };
const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const MES = { via: 'mqtt', id: 'mqtt:mes-01 (user mes)', clientId: 'mes-01', user: 'mes' };

class FakeClock implements ConduitClock {
  mono = 1_000;
  wall = Date.UTC(2024, 5, 12, 10, 0, 0); // Wednesday 10:00 UTC
  monotonicMs(): number { return this.mono; }
  wallMs(): number { return this.wall; }
  advance(ms: number): void { this.mono += ms; this.wall += ms; }
}

const setpointRule = {
  id: 'r-setpoint', operation: ['write'], principal: { id: ['mqtt:mes-01*'] }, asset: [ASSET], metric: ['speedSetpoint'],
  value: { type: 'number', min: 0, max: 1500, maxStep: 100 }, action: 'allow',
};
const telemetryRule = { id: 'r-telemetry', operation: ['read'], asset: ['acme/plant1/#'], metric: ['Current', 'Speed', 'Motor/*'], action: 'allow' };

function conduit(rules: unknown[], source = IT, destination = OT, extra: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const steps: number[] = [];
  const c = new Conduit(parsePolicy({ rules, ...extra }), { source, destination, clock, onClockStep: (s) => steps.push(s) });
  return { c, clock, steps };
}

const write = (payload: unknown, more: Record<string, unknown> = {}) => ({ topic: ASSET, payload, principal: MES, ...more });

describe('zones: policy validation', () => {
  it('T-POL-01: a malformed policy is refused with the rule (index and id) and the field named', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ rules: [{ id: 'a', action: 'allow', operation: ['read'] }, { id: 'r-2', action: 'permit' }] }, /rule 2 \(r-2\) field action: must be one of allow, deny, allow-and-alert/],
      [{ rules: [{ id: 'w', action: 'allow', operation: ['write'] }] }, /rule 1 \(w\) field value: an allow rule that can match writes must set value bounds/],
      [{ rules: [{ id: 'v', action: 'allow', operation: ['write'], value: { type: 'number', min: 5, max: 1 } }] }, /rule 1 \(v\) field value.max: 1 is below value.min 5/],
      [{ rules: [{ id: 'x', action: 'deny', asset: ['a/#/b'] }] }, /rule 1 \(x\) field asset: "a\/#\/b" "#" must be a whole level and the last one/],
      [{ rules: [{ id: 'x', action: 'deny', colour: 'red' }] }, /rule 1 \(x\) field colour: unknown field/],
      [{ rules: [{ id: 'x', action: 'deny' }, { id: 'x', action: 'deny' }] }, /rule 2 \(x\) field id: "x" is used by an earlier rule/],
      [{ rules: [{ id: 'x', action: 'deny', rate: { count: 0, perSeconds: 1 } }] }, /rule 1 \(x\) field rate.count: must be an integer ≥ 1/],
      [{ rules: [{ id: 'x', action: 'deny', window: { from: '25:00', to: '06:00' } }] }, /rule 1 \(x\) field window.from/],
      [{ rules: [{ id: 'x', action: 'allow', operation: 'write', value: { type: 'number', finite: false } }] }, /value.finite: can only be true/],
      [{ rules: [{ id: 'x', action: 'deny', modbus: { address: '200-100' } }] }, /rule 1 \(x\) field modbus.address/],
      [{ timeZone: 'Mars/Olympus', rules: [] }, /policy field timeZone/],
      ['{"rules": [', /policy is not JSON/],
    ];
    for (const [raw, expected] of cases) {
      assert.throws(() => parsePolicy(raw), (error: unknown) => error instanceof PolicyError && expected.test(error.message), `expected ${expected}`);
    }
  });

  it('T-POL-01: an empty policy denies everything, reads and writes', () => {
    for (const rules of [[], undefined]) {
      const c = new Conduit(parsePolicy(rules === undefined ? {} : { rules }), { source: OT, destination: IT, clock: new FakeClock() });
      assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'deny');
      assert.equal(c.decide(write({ speedSetpoint: 1 }, { operation: 'write' })).result, 'deny');
      assert.equal(c.decide({ topic: ASSET, payload: 'start' }).result, 'deny');
    }
  });

  it('T-POL-02: the policy hash ignores key order and changes with the content (SR 7.6)', () => {
    const a = parsePolicy({ rules: [telemetryRule] });
    const b = parsePolicy(JSON.parse(JSON.stringify({ rules: [{ action: 'allow', metric: telemetryRule.metric, asset: telemetryRule.asset, operation: ['read'], id: 'r-telemetry' }] })));
    assert.equal(policyHash(a), policyHash(b));
    assert.match(exportPolicy(a).hash, /^[0-9a-f]{64}$/);
    assert.notEqual(policyHash(a), policyHash(parsePolicy({ rules: [{ ...telemetryRule, metric: ['Current'] }] })));
  });
});

describe('zones: conduit decisions', () => {
  it('derives the direction from the Purdue levels and classes IT→OT traffic as writes', () => {
    assert.equal(conduit([]).c.direction, 'it->ot');
    assert.equal(conduit([], OT, DMZ).c.direction, 'ot->it');
    // Telemetry rules (read) do not open an IT→OT conduit for writes.
    const { c } = conduit([telemetryRule]);
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'deny');
  });

  it('first matching rule wins: a deny before an allow denies', () => {
    const { c } = conduit([{ id: 'no-temp', metric: ['Motor/Temp'], operation: ['read'], action: 'deny' }, telemetryRule], OT, DMZ);
    const d = c.decide({ topic: ASSET, payload: { 'Motor/Temp': 40, Current: 2 } });
    assert.equal(d.result, 'partial');
    assert.deepEqual(d.allowed, ['Current']);
    assert.deepEqual(d.dropped, [{ metric: 'Motor/Temp', ruleId: 'no-temp', reason: 'denied by rule' }]);
  });

  it('passes only the allowed metrics of a tag batch, as a fresh object, and lists the dropped ones', () => {
    const { c } = conduit([telemetryRule], OT, DMZ);
    const payload = { Current: 12.5, Secret: 'x', 'Motor/Temp': 41.5 };
    const d = c.decide({ topic: ASSET, payload });
    assert.equal(d.result, 'partial');
    assert.deepEqual(d.payload, { Current: 12.5, 'Motor/Temp': 41.5 });
    assert.notEqual(d.payload, payload);
    assert.deepEqual(d.dropped, [{ metric: 'Secret', ruleId: null, reason: 'no rule allows it (default deny)' }]);
  });

  it('a write command is all-or-nothing', () => {
    const { c } = conduit([setpointRule]);
    const d = c.decide(write({ speedSetpoint: 50, accelRate: 10 }));
    assert.equal(d.result, 'deny');
    assert.match(d.reason ?? '', /whole or not at all; "accelRate": no rule allows it/);
    assert.equal(c.decide(write({ speedSetpoint: 50 })).result, 'allow');
  });

  it('reads batches built in a function node (another realm)', () => {
    const { c } = conduit([telemetryRule], OT, DMZ);
    const msg = runInNewContext(`({ topic: ${JSON.stringify(ASSET)}, payload: { Current: 1, Other: 2 } })`);
    const d = c.decide(msg);
    assert.deepEqual(d.allowed, ['Current']);
  });

  it('matches MQTT-style asset patterns (+ one level, # the rest) and glob metrics', () => {
    const { c } = conduit([{ id: 'r', operation: ['read'], asset: ['acme/+/press/#'], metric: ['Motor/*'], action: 'allow' }], OT, DMZ);
    assert.equal(c.decide({ topic: 'acme/plant1/press/line2/cell1/drive7', payload: { 'Motor/Temp': 1 } }).result, 'allow');
    assert.equal(c.decide({ topic: 'acme/plant1/press', payload: { 'Motor/Temp': 1 } }).result, 'allow');
    assert.equal(c.decide({ topic: 'acme/plant1/paint/line2', payload: { 'Motor/Temp': 1 } }).result, 'deny');
    assert.equal(c.decide({ topic: ASSET, payload: { 'Motor/Temp/Raw': 1 } }).result, 'deny');
  });

  it('matches Modbus FC, unit and the whole address span; Sparkplug message type; OPC UA service', () => {
    const { c } = conduit([
      { id: 'mb', operation: ['write'], modbus: { fc: [6, 16], unit: [1], address: '100-199' }, value: { type: 'integer', min: 0, max: 65535 }, action: 'allow' },
      { id: 'sp', sparkplug: { messageType: ['DCMD'] }, operation: ['write'], value: { type: 'number' }, action: 'allow' },
      { id: 'ua', opcua: { service: ['Write'] }, operation: ['write'], value: { type: 'boolean' }, action: 'allow' },
    ]);
    const mb = (address: number, quantity: number, fc = 16, unit = 1) => c.decide(write({ r: 1 }, { modbus: { fc, unit, address, quantity } })).result;
    assert.equal(mb(100, 100), 'allow');
    assert.equal(mb(150, 51), 'deny', 'T-VAL-04 / T-MB-08: span straddling out of the range');
    assert.equal(mb(100, 1, 5), 'deny', 'FC 5 not listed');
    assert.equal(mb(100, 1, 16, 0), 'deny', 'T-MB-09: broadcast unit');
    assert.equal(c.decide(write({ r: 1 }, { modbus: { fc: 16, unit: undefined, address: 100 } })).result, 'deny', 'T-MB-10: undefined unit');
    // A Modbus read context through an IT→OT conduit: FC 3 is a read, but the conduit classes the traffic as writes.
    assert.equal(c.decide({ topic: 'spBv1.0/g1/DCMD/edge1/drive7', payload: { s: 1 }, principal: MES }).result, 'allow');
    assert.equal(c.decide({ topic: 'spBv1.0/g1/NCMD/edge1', payload: { s: 1 } }).result, 'deny');
    assert.equal(c.decide(write({ on: true }, { opcua: { service: 'Write' } })).result, 'allow');
    assert.equal(c.decide(write({ on: true }, { opcua: { service: 'Call' } })).result, 'deny');
  });

  it('a message cannot lower its own operation: msg.operation "read" on an IT→OT conduit is still a write', () => {
    const { c } = conduit([{ id: 'read-all', operation: ['read'], action: 'allow' }]);
    assert.equal(c.decide({ topic: ASSET, payload: { speedSetpoint: 1 }, operation: 'read' }).result, 'deny');
    const ot = conduit([{ id: 'read-all', operation: ['read'], action: 'allow' }], OT, DMZ).c;
    assert.equal(ot.decide({ topic: ASSET, payload: { x: 1 }, operation: 'write' }).result, 'deny');
    assert.equal(ot.decide({ topic: ASSET, payload: { x: 1 }, modbus: { fc: 6, unit: 1, address: 1 } }).result, 'deny', 'FC 6 is a write');
    assert.equal(ot.decide({ topic: ASSET, payload: { command: 'start' } }).result, 'deny', 'a command shape is a command');
  });

  it('commands: the command word (and arm action) is the metric name; the value is checked', () => {
    const { c } = conduit([
      { id: 'cmd', operation: ['command'], metric: ['start', 'stop', 'arm/start'], principal: { via: ['mqtt'] }, action: 'allow' },
      { id: 'sp', operation: ['command'], metric: ['setpoint'], value: { type: 'number', min: 0, max: 50 }, action: 'allow' },
    ]);
    assert.equal(c.decide(write('start')).result, 'allow');
    assert.equal(c.decide(write('start')).payload, 'start');
    assert.equal(c.decide(write({ command: 'arm', action: 'start' })).result, 'allow');
    assert.equal(c.decide(write({ command: 'arm', action: 'reverse' })).result, 'deny');
    assert.equal(c.decide(write({ command: 'faultReset' })).result, 'deny');
    assert.equal(c.decide(write({ command: 'setpoint', value: 40 })).result, 'allow');
    assert.equal(c.decide(write({ command: 'setpoint', value: 60 })).result, 'deny');
    assert.equal(c.decide({ topic: ASSET, payload: 'start' }).result, 'deny', 'no principal');
  });
});

describe('zones: bad input (reference/security.md §6)', () => {
  it('T-VAL-01: NaN, ±Infinity, -0, 1e309, numeric and hex strings, booleans, arrays, objects, null, __proto__ never pass a number rule', () => {
    const { c } = conduit([{ ...setpointRule, value: { type: 'number', min: -10, max: 1500 } }]);
    const bad = [NaN, Infinity, -Infinity, 1e309, '1500', '0x5DC', '1e3', '', true, [], {}, null, undefined, 10n];
    for (const value of bad) {
      const d = c.decide(write({ speedSetpoint: value }));
      assert.equal(d.result, 'deny', `${String(value)} passed`);
      assert.equal(d.payload, undefined);
    }
    const proto = JSON.parse('{"__proto__": {"polluted": 1}, "speedSetpoint": 5}');
    assert.equal(c.decide(write(proto)).result, 'deny', 'a __proto__ key refuses the write');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(c.decide(write({ speedSetpoint: -0 })).result, 'allow', '-0 is 0, inside [-10, 1500]');
    assert.equal(c.decide(write({ speedSetpoint: 5 }, { principal: { ...MES }, extra: 'x' })).result, 'allow', 'extra message fields are ignored');
    const huge = 'x'.repeat(10_000_000);
    assert.equal(c.decide(write({ [huge.slice(0, 2000)]: 1 })).result, 'deny');
    assert.equal(c.decide(write({ speedSetpoint: huge })).result, 'deny');
  });

  it('T-VAL-02: min−ε, min, max, max+ε; integer and string bounds', () => {
    const { c } = conduit([{ id: 'r', operation: ['write'], metric: ['a'], value: { type: 'number', min: 0, max: 1500 }, action: 'allow' },
      { id: 'i', operation: ['write'], metric: ['i'], value: { type: 'integer', min: -32768, max: 32767 }, action: 'allow' },
      { id: 's', operation: ['write'], metric: ['s'], value: { type: 'string', maxLength: 4, enum: ['auto', 'man'] }, action: 'allow' }]);
    const ok = (payload: unknown) => c.decide({ topic: ASSET, payload }).result;
    assert.equal(ok({ a: -Number.EPSILON }), 'deny');
    assert.equal(ok({ a: 0 }), 'allow');
    assert.equal(ok({ a: 1500 }), 'allow');
    assert.equal(ok({ a: 1500.0000001 }), 'deny');
    assert.equal(ok({ i: 32767 }), 'allow');
    assert.equal(ok({ i: 32768 }), 'deny');
    assert.equal(ok({ i: -32769 }), 'deny');
    assert.equal(ok({ i: 1.5 }), 'deny');
    assert.equal(ok({ s: 'auto' }), 'allow');
    assert.equal(ok({ s: 'remote' }), 'deny');
  });

  it('T-VAL-03: max step from the last allowed value; alternating bursts are held by the rate limit', () => {
    const { c, clock } = conduit([{ ...setpointRule, rate: { count: 3, perSeconds: 10, per: 'principal' } }]);
    assert.equal(c.decide(write({ speedSetpoint: 1000 })).result, 'allow');
    clock.advance(5_000);
    assert.equal(c.decide(write({ speedSetpoint: 1200 })).result, 'deny', 'a step of 200 > 100');
    assert.equal(c.decide(write({ speedSetpoint: 1100 })).result, 'allow');
    const burst = [1000, 1100, 1000, 1100, 1000].map((v) => c.decide(write({ speedSetpoint: v })).result);
    // 3 tokens, one taken at 1000, refilled at 0.3/s, one taken at 1100: two left for the burst.
    assert.deepEqual(burst, ['allow', 'allow', 'deny', 'deny', 'deny']);
  });

  it('T-VAL-04: a Modbus write span straddling into another range is refused', () => {
    const { c } = conduit([{ id: 'mb', operation: ['write'], modbus: { fc: [16], address: ['100-101', '200-201'] }, value: { type: 'integer' }, action: 'allow' }]);
    assert.equal(c.decide(write({ r: 1 }, { modbus: { fc: 16, unit: 1, address: 100, quantity: 2 } })).result, 'allow');
    assert.equal(c.decide(write({ r: 1 }, { modbus: { fc: 16, unit: 1, address: 101, quantity: 2 } })).result, 'deny');
  });

  it('T-VAL-05: a valid value from an unauthorised identity, without identity or outside the time window is refused', () => {
    const { c, clock } = conduit([{ ...setpointRule, window: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '06:00', to: '22:00' } }], IT, OT, { timeZone: 'Europe/Berlin' });
    assert.equal(c.decide(write({ speedSetpoint: 10 })).result, 'allow');
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { principal: { via: 'mqtt', id: 'mqtt:intruder' } })).result, 'deny');
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { principal: undefined })).result, 'deny');
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { principal: { via: 'mqtt', id: 'mqtt:mes-01-evil', extra: {} } })).result, 'allow', 'the pattern mes-01* is the policy author’s choice');
    clock.wall = Date.UTC(2024, 5, 12, 21, 0, 0); // 23:00 in Berlin (CEST)
    assert.equal(c.decide(write({ speedSetpoint: 10 })).result, 'deny');
    clock.wall = Date.UTC(2024, 5, 15, 10, 0, 0); // Saturday
    assert.equal(c.decide(write({ speedSetpoint: 10 })).result, 'deny');
  });

  it('T-TOP-03: a principal id of "#" or "+" is matched literally', () => {
    const { c } = conduit([{ ...setpointRule, principal: { clientId: ['mes-01'] } }]);
    for (const clientId of ['#', '+', '*', 'mes-01/x']) {
      assert.equal(c.decide(write({ speedSetpoint: 1 }, { principal: { via: 'mqtt', id: `mqtt:${clientId}`, clientId } })).result, 'deny', clientId);
    }
  });

  it('T-RPL-01: a replayed write (same principal, asset, timestamp) is refused', () => {
    const { c, clock } = conduit([setpointRule]);
    const msg = write({ speedSetpoint: 10 }, { timestamp: clock.wall - 100 });
    assert.equal(c.decide(msg).result, 'allow');
    const again = c.decide({ ...msg });
    assert.equal(again.result, 'deny');
    assert.match(again.reason ?? '', /replay/);
  });

  it('T-RPL-02: a retained write is never passed', () => {
    const { c } = conduit([setpointRule]);
    const d = c.decide(write({ speedSetpoint: 10 }, { retain: true }));
    assert.equal(d.result, 'deny');
    assert.match(d.reason ?? '', /retained/);
  });

  it('T-RPL-03: a write queued during an outage (older than maxWriteAgeMs) is dropped; future ones too', () => {
    const { c, clock } = conduit([setpointRule], IT, OT, { maxWriteAgeMs: 5_000 });
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { timestamp: clock.wall - 5_001 })).result, 'deny');
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { timestamp: clock.wall + 60_000 })).result, 'deny');
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { timestamp: 'yesterday' })).result, 'deny');
    assert.equal(c.decide(write({ speedSetpoint: 10 }, { timestamp: clock.wall - 4_000 })).result, 'allow');
    const strict = conduit([setpointRule], IT, OT, { requireWriteTimestamp: true }).c;
    assert.equal(strict.decide(write({ speedSetpoint: 10 })).result, 'deny');
  });

  it('T-DOS-01: a flood at 10× the allowed rate passes exactly the allowed rate', () => {
    const { c, clock } = conduit([{ ...telemetryRule, rate: { count: 10, perSeconds: 1, per: 'rule' } }], OT, DMZ);
    let passed = 0;
    for (let second = 0; second < 5; second++) {
      for (let i = 0; i < 100; i++) {
        if (c.decide({ topic: ASSET, payload: { Current: i } }).result === 'allow') passed++;
        clock.advance(10);
      }
    }
    assert.ok(passed >= 50 && passed <= 60, `passed ${passed} of 500 at 10/s over 5 s (burst 10)`);
  });

  it('T-DOS-02: many distinct principals keep the rate key table bounded; new keys are refused when it is full of draining buckets', () => {
    const clock = new FakeClock();
    const c = new Conduit(parsePolicy({ rules: [{ ...telemetryRule, rate: { count: 1, perSeconds: 60, per: 'principal' } }] }), { source: OT, destination: DMZ, clock, maxRateKeys: 100 });
    let allowed = 0;
    for (let i = 0; i < 1_000; i++) {
      if (c.decide({ topic: ASSET, payload: { Current: 1 }, principal: { via: 'mqtt', id: `mqtt:c${i}` } }).result === 'allow') allowed++;
      clock.advance(1);
    }
    assert.ok(c.rateKeys <= 100, `keys ${c.rateKeys}`);
    assert.equal(allowed, 100);
    clock.advance(61_000); // every bucket has refilled: swept, new keys accepted
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 }, principal: { via: 'mqtt', id: 'mqtt:late' } }).result, 'allow');
  });

  it('T-CLK-01: a wall-clock step neither refills nor drains a rate bucket, and is reported', () => {
    const { c, clock, steps } = conduit([{ ...telemetryRule, rate: { count: 2, perSeconds: 3600, per: 'rule' } }], OT, DMZ);
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'allow');
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'allow');
    clock.wall += 3_600_000; // +1 h step, monotonic unchanged
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'deny');
    clock.wall -= 7_200_000; // −2 h
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'deny');
    assert.deepEqual(steps, [3_600_000, -7_200_000]);
  });

  it('T-CLK-02: time windows follow the plant time zone across DST changes', () => {
    const berlin = new PlantClock('Europe/Berlin');
    // 2024-03-31: 02:00 CET → 03:00 CEST. 00:30 UTC = 01:30 local; 01:30 UTC = 03:30 local.
    assert.deepEqual(berlin.at(Date.UTC(2024, 2, 31, 0, 30)), { weekday: 0, minute: 90 });
    assert.deepEqual(berlin.at(Date.UTC(2024, 2, 31, 1, 30)), { weekday: 0, minute: 210 });
    // 2024-10-27: 01:30 local happens at 23:30 and 00:30 UTC... and 02:30 twice (00:30 and 01:30 UTC).
    assert.deepEqual(berlin.at(Date.UTC(2024, 9, 27, 0, 30)), { weekday: 0, minute: 150 });
    assert.deepEqual(berlin.at(Date.UTC(2024, 9, 27, 1, 30)), { weekday: 0, minute: 150 });
    const all = 0b1111111;
    // A window 02:15–02:45 does not exist on the spring-forward day and occurs twice on the fall-back day.
    const at = (ms: number) => inWindow(berlin.at(ms), all, 135, 165);
    assert.equal([0, 15, 30, 45, 60, 75, 90].some((m) => at(Date.UTC(2024, 2, 31, 0, m))), false);
    assert.equal(at(Date.UTC(2024, 9, 27, 0, 30)) && at(Date.UTC(2024, 9, 27, 1, 30)), true);
    // Overnight window 22:00–06:00 starting Friday covers Saturday 05:00, not Saturday 07:00 nor Friday 05:00.
    const fri = 1 << 5;
    assert.equal(inWindow({ weekday: 6, minute: 300 }, fri, 1320, 360), true);
    assert.equal(inWindow({ weekday: 6, minute: 420 }, fri, 1320, 360), false);
    assert.equal(inWindow({ weekday: 5, minute: 300 }, fri, 1320, 360), false);
  });

  it('T-POL-01: island mode stops everything; turning it off restores the prior state', () => {
    const { c } = conduit([telemetryRule], OT, DMZ);
    c.island = true;
    const d = c.decide({ topic: ASSET, payload: { Current: 1 } });
    assert.equal(d.result, 'deny');
    assert.equal(d.category, 'island');
    c.island = false;
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'allow');
  });

  it('T-POL-01: an error inside the evaluator denies (fail close, SR 5.2 RE3)', () => {
    const { c } = conduit([telemetryRule, setpointRule], OT, DMZ);
    const payload = runInNewContext('({ get Current() { throw new Error("boom") } })');
    const d = c.decide({ topic: ASSET, payload });
    assert.equal(d.result, 'deny');
    assert.equal(d.category, 'engine-error');
    assert.match(d.reason ?? '', /evaluator error: boom/);
    const proxy = new Proxy({}, { ownKeys() { throw new Error('trap'); } });
    assert.equal(conduit([telemetryRule], OT, DMZ).c.decide({ topic: ASSET, payload: proxy }).category, 'engine-error');
  });

  it('T-POL-02: a hot reload is atomic: an invalid policy leaves the old one active; a valid one replaces it whole', () => {
    const { c } = conduit([telemetryRule], OT, DMZ);
    const before = c.policyHash;
    assert.throws(() => c.setPolicy(parsePolicy({ rules: [{ id: 'bad', action: 'nope' }] })), PolicyError);
    assert.equal(c.policyHash, before);
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'allow');
    c.setPolicy(parsePolicy({ rules: [] }));
    assert.notEqual(c.policyHash, before);
    assert.equal(c.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'deny');
  });
});
