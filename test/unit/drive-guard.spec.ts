import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandGuard, GuardDecision, GuardRejection } from '../../lib/drive/guard';
import { DriveProfile, loadDriveProfile, packagedProfilesDir } from '../../lib/drive/profile';

const load = (id: string): DriveProfile => loadDriveProfile(join(packagedProfilesDir(), `${id}.json`));
const danfoss = load('danfoss-vlt-fc');
const sim = load('simulated-drive');

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

function reason(decision: GuardDecision): string {
  assert.equal(decision.ok, false, `expected a rejection, got ${JSON.stringify(decision)}`);
  return (decision as { reason: string }).reason;
}

describe('drive command guard: limits and ramp rate', () => {
  it('rejects setpoints outside the guard limits, with the limits in the reason', () => {
    const guard = new CommandGuard(danfoss);
    assert.match(reason(guard.check({ kind: 'setpoint', value: 101 }, { setpoint: 100 })), /^setpoint 101 % is outside the guard limits 0\.\.100 %$/);
    assert.match(reason(guard.check({ kind: 'setpoint', value: -5 }, { setpoint: 0 })), /outside the guard limits 0\.\.100 %/);
    assert.match(reason(guard.check({ kind: 'setpoint', value: Number.NaN }, { setpoint: 0 })), /needs a finite number/);
    assert.deepEqual(guard.check({ kind: 'setpoint', value: 5 }, { setpoint: 0 }), { ok: true, command: { kind: 'setpoint', value: 5 } });
  });

  it('rejects a setpoint that moves faster than maxRampPerSecond, counting at most one second', () => {
    const clock = manualClock();
    const guard = new CommandGuard(danfoss, {}, clock.now); // 10 %/s
    assert.match(reason(guard.check({ kind: 'setpoint', value: 35 }, { setpoint: 20 })),
      /setpoint 35 % changes the setpoint by 15 % from 20 %; the ramp limit 10 %\/s allows 10 % now \(1 s since the previous setpoint, at most 1 s counts\)/);
    assert.equal(guard.check({ kind: 'setpoint', value: 28 }, { setpoint: 20 }).ok, true);
    guard.accepted(28);
    clock.advance(500);
    assert.equal(guard.check({ kind: 'setpoint', value: 33 }, { setpoint: 28 }).ok, true, '5 % in 0.5 s');
    assert.match(reason(guard.check({ kind: 'setpoint', value: 34 }, { setpoint: 28 })), /allows 5 % now \(0\.5 s since/);
    clock.advance(60_000);
    assert.equal(guard.check({ kind: 'setpoint', value: 38 }, { setpoint: 28 }).ok, true, 'a minute later: still one second worth');
    assert.equal(guard.check({ kind: 'setpoint', value: 39 }, { setpoint: 28 }).ok, false);
    assert.match(reason(new CommandGuard(danfoss, {}, clock.now).check({ kind: 'setpoint', value: 5 })), /the current setpoint is unknown/);
  });

  it('clamps instead of rejecting when the policy says so, and says what it did', () => {
    const clock = manualClock();
    const guard = new CommandGuard(danfoss, { onViolation: 'clamp' }, clock.now);
    const clamped = guard.check({ kind: 'setpoint', value: 130 }, { setpoint: 95 });
    assert.deepEqual(clamped.command, { kind: 'setpoint', value: 100 });
    assert.ok(clamped.ok && /outside the guard limits 0\.\.100 %; clamped to setpoint 100/.test(clamped.adjusted ?? ''), JSON.stringify(clamped));
    const ramped = guard.check({ kind: 'setpoint', value: 80 }, { setpoint: 20 });
    assert.deepEqual(ramped.command, { kind: 'setpoint', value: 30 });
  });

  it('checks parameter writes against the parameter limits; the control word only through commands', () => {
    const guard = new CommandGuard(sim);
    assert.equal(guard.check({ kind: 'write', parameter: 'accelRate', value: 600 }).ok, true);
    assert.match(reason(guard.check({ kind: 'write', parameter: 'accelRate', value: 20000 })), /accelRate 20000 rpm\/s is outside 1\.\.10000 rpm\/s/);
    assert.match(reason(guard.check({ kind: 'write', parameter: 'actualSpeed', value: 1 })), /actualSpeed is read-only/);
    assert.match(reason(guard.check({ kind: 'write', parameter: 'controlWord', value: 1 })), /the control word is written only through the profile's commands \(stop, startForward/);
    assert.match(reason(guard.check({ kind: 'write', parameter: 'speedSetpoint', value: 1900 }, { setpoint: 1800 })), /setpoint 1900 rpm is outside the guard limits 0\.\.1800 rpm/, 'the setpoint register is guarded like a setpoint');
    assert.equal(guard.check({ kind: 'startReverse' }).ok, true);
  });

  it('lets a node choose its own limits, within what the drive accepts', () => {
    const reverse = new CommandGuard(danfoss, { setpointMin: -100, maxRampPerSecond: null });
    assert.equal(reverse.check({ kind: 'setpoint', value: -80 }, { setpoint: 90 }).ok, true, 'no rate limit, reverse allowed');
    assert.match(reverse.policy.basis, /overridden by the node: setpointMin, maxRampPerSecond/);
    assert.throws(() => new CommandGuard(danfoss, { setpointMax: 150 }), /guard setpoint range 0\.\.150 must lie within what the drive accepts, -100\.\.100/);
    assert.throws(() => new CommandGuard(danfoss, { maxRampPerSecond: 0 }), /maxRampPerSecond must be > 0 or null/);
    assert.throws(() => new CommandGuard(danfoss, { armTimeoutMs: 5 }), /armTimeoutMs must be an integer ≥ 100/);
  });
});

/**
 * The wall clock (Date.now()) with a step the test sets, as NTP or an operator setting the time does;
 * in place for the whole test, so that whatever clock the guard takes sees it.
 */
function steppableWallClock(): { step: (ms: number) => void; restore: () => void } {
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;
  return { step: (ms) => { offset += ms; }, restore: () => { Date.now = realNow; } };
}

describe('drive command guard: the ramp measures real elapsed time (default clock)', () => {
  let wallClock: ReturnType<typeof steppableWallClock>;
  beforeEach(() => { wallClock = steppableWallClock(); });
  afterEach(() => wallClock.restore());

  it('a wall-clock step forward does not widen the ramp: a second\'s worth is not allowed microseconds later', () => {
    const guard = new CommandGuard(sim); // 300 rpm/s
    guard.accepted(1000);
    wallClock.step(3_600_000);
    assert.match(reason(guard.check({ kind: 'setpoint', value: 1300 }, { setpoint: 1000 })),
      /changes the setpoint by 300 rpm from 1000 rpm; the ramp limit 300 rpm\/s allows 0(\.\d+)? rpm now/);
  });

  it('a wall-clock step back does not freeze the ramp: 100 ms later, 100 ms worth is allowed', async () => {
    const guard = new CommandGuard(sim); // 300 rpm/s: 30 rpm in 100 ms
    guard.accepted(1000);
    wallClock.step(-60_000);
    await sleep(100);
    assert.deepEqual(guard.check({ kind: 'setpoint', value: 1020 }, { setpoint: 1000 }), { ok: true, command: { kind: 'setpoint', value: 1020 } });
  });

  it('a setpoint less than a millisecond after the previous one is allowed what that fraction of a millisecond allows', () => {
    // The bench's command path (issue 12) sends setpoints < 1 ms apart at 1,000,000 rpm/s: 0.2 ms allows 200 rpm.
    const guard = new CommandGuard(sim, { maxRampPerSecond: 1_000_000 });
    const tick = Date.now();
    while (Date.now() === tick); // start at the beginning of a wall-clock millisecond
    guard.accepted(1108);
    const acceptedAt = performance.now();
    while (performance.now() - acceptedAt < 0.2); // 0.2 ms later, within the same wall-clock millisecond
    assert.deepEqual(guard.check({ kind: 'setpoint', value: 1109 }, { setpoint: 1108 }), { ok: true, command: { kind: 'setpoint', value: 1109 } });
  });
});

describe('drive command guard: arm then execute', () => {
  it('executes an armed command by its ticket, once', () => {
    const clock = manualClock();
    const guard = new CommandGuard(danfoss, {}, clock.now);
    const { ticket } = guard.arm({ kind: 'startForward' }, 'operator-1');
    assert.equal(ticket.expiresAt - ticket.armedAt, 10_000);
    assert.equal(guard.pending?.id, ticket.id);
    clock.advance(9_999);
    assert.deepEqual(guard.take(ticket.id).command, { kind: 'startForward' });
    assert.throws(() => guard.take(ticket.id), (e: unknown) => e instanceof GuardRejection && /no command is armed/.test(e.message));
  });

  it('an arm times out: execute after armTimeoutMs is refused and says so', () => {
    const clock = manualClock();
    const guard = new CommandGuard(danfoss, {}, clock.now);
    const { ticket } = guard.arm({ kind: 'setpoint', value: 5 }, 'operator-1', { setpoint: 0 });
    clock.advance(10_001);
    assert.equal(guard.pending, undefined, 'no longer pending');
    assert.throws(() => guard.take(ticket.id), (e: unknown) => e instanceof GuardRejection
      && e.message === 'setpoint 5 rejected: the arm expired 10000 ms after it was armed by operator-1 (1 ms ago); arm again');
  });

  it('times out on the real clock too', async () => {
    const guard = new CommandGuard(danfoss, { armTimeoutMs: 100 });
    const { ticket } = guard.arm({ kind: 'stop' }, 'operator-1');
    await sleep(150);
    assert.throws(() => guard.take(ticket.id), /the arm expired 100 ms after it was armed/);
  });

  it('arming another command cancels the first; a command the guard refuses is never armed', () => {
    const guard = new CommandGuard(danfoss);
    const first = guard.arm({ kind: 'startForward' }, 'a').ticket;
    const { ticket: second, cancelled } = guard.arm({ kind: 'stop' }, 'b');
    assert.equal(cancelled?.id, first.id);
    assert.throws(() => guard.take(first.id), /ticket .* is not the armed command \(stop is\)/);
    assert.throws(() => guard.arm({ kind: 'setpoint', value: 250 }, 'c', { setpoint: 0 }), (e: unknown) => e instanceof GuardRejection && /outside the guard limits/.test(e.reason));
    assert.equal(guard.pending?.id, second.id, 'the refused command did not replace the armed one');
    assert.equal(guard.cancel()?.id, second.id);
    assert.equal(guard.pending, undefined);
  });
});
