/**
 * lib/advice/advisor.ts on its own: the bounded queue (newest refused), expiry, future timestamps,
 * advice bounds, a conduit's denial read back as the outcome, an outcome that never comes, and
 * messages built in another JS realm (a function node's sandbox).
 */
import { strict as assert } from 'node:assert';
import { runInNewContext } from 'node:vm';
import { type AdviceEvent, AdviceRefusal, Advisor, type AdviceWrite, principalMatches } from '../../lib/advice/advisor';

const ASSET = 'acme/plant1/area/line/cell/drive1';
const agent = { via: 'mqtt', id: 'mqtt:agent' } as const;
const lead = { via: 'mqtt', id: 'mqtt:console (user lead)' } as const;

function setup(options: Partial<ConstructorParameters<typeof Advisor>[0]> = {}) {
  const events: AdviceEvent[] = [];
  const writes: AdviceWrite[] = [];
  const advisor = new Advisor({ mode: 'approval', approvers: ['mqtt:console*'], audit: (e) => { events.push(e); return true; }, write: (w) => writes.push(w), ...options });
  const propose = (id: string, setpoint = 1000, extra: Record<string, unknown> = {}) =>
    advisor.propose({ topic: ASSET, principal: agent, payload: { id, setpoint, reason: 'why', timestamp: Date.now(), ...extra } });
  return { advisor, events, writes, propose };
}

describe('advice advisor', () => {
  it('matches approver patterns literally except *', () => {
    assert.ok(principalMatches(['mqtt:console*'], 'mqtt:console (user lead)'));
    assert.ok(!principalMatches(['mqtt:console*'], 'mqtt:consolE'));
    assert.ok(!principalMatches(['mqtt:c.nsole'], 'mqtt:console'), 'a dot is a dot');
  });

  it('sends no write whose forwarding could not be audited; approval mode without approvers does not start', () => {
    let recording = true;
    const { advisor, writes, events, propose } = setup({ audit: (e) => { if (recording) events.push(e); return recording; } });
    propose('p-1');
    recording = false; // the audit store fails while the proposal waits
    advisor.decide('approve', 'p-1', lead);
    assert.equal(writes.length, 0, 'nothing is written without its record');
    recording = true;
    propose('p-2');
    advisor.decide('approve', 'p-2', lead);
    assert.equal(writes.length, 1, 'the next write goes out once the store records again');
    advisor.close();
    assert.throws(() => setup({ approvers: [] }), /approval mode needs at least one approver/);
  });

  it('refuses the newest proposal when the queue is full, a future timestamp and values outside the advice bounds', () => {
    const { advisor, events, propose } = setup({ maxPending: 2, min: 0, max: 1500 });
    propose('a');
    propose('b');
    assert.throws(() => propose('c'), /2 proposals are waiting for approval: the newest is refused/);
    assert.throws(() => propose('d', 1000, { timestamp: Date.now() + 60_000 }), /future/);
    assert.throws(() => propose('e', 1600), /above the advice maximum 1500/);
    assert.throws(() => propose('f', Number.NaN), AdviceRefusal);
    assert.deepEqual(advisor.list().map((p) => p.id), ['a', 'b']);
    assert.equal(events.filter((e) => e.step === 'refused').length, 4);
    advisor.close();
  });

  it('expires a proposal nobody approves, and an approval after that is refused', async () => {
    const { advisor, events, writes, propose } = setup({ approvalTimeoutMs: 1000 });
    propose('slow');
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(events.map((e) => e.step), ['proposed', 'expired']);
    assert.throws(() => advisor.decide('approve', 'slow', lead), /no pending proposal slow/);
    assert.equal(writes.length, 0);
    advisor.close();
  });

  it('reads a conduit denial as the outcome; a write without any outcome is reported unconfirmed and the next goes out', async () => {
    const { advisor, events, writes, propose } = setup({ outcomeTimeoutMs: 200 });
    propose('x');
    propose('y');
    advisor.decide('approve', 'x', lead);
    advisor.decide('approve', 'y', lead);
    assert.equal(writes.length, 1, 'one write in flight at a time');
    assert.equal(advisor.outcome({ conduit: 'c', result: 'deny', asset: ASSET, principal: 'mqtt:someone-else' }), false, 'another writer\'s decision');
    assert.equal(advisor.outcome({ conduit: 'c', result: 'deny', asset: ASSET, principal: 'mqtt:agent', reason: 'above 900' }), true);
    assert.equal(writes.length, 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(events.filter((e) => e.proposalId === 'y').map((e) => e.step), ['proposed', 'approved', 'forwarded', 'unconfirmed']);
    assert.equal(events.find((e) => e.step === 'refused-by-conduit')?.reason, 'above 900');
    advisor.close();
  });

  it('takes proposals and approvals built in a function node\'s sandbox (another realm)', () => {
    const { advisor, events, writes } = setup();
    const msg = runInNewContext(`({ topic: '${ASSET}', principal: { via: 'mqtt', id: 'mqtt:agent' }, payload: { id: 'v1', setpoint: 900, reason: 'forecast', timestamp: ${Date.now()} } })`);
    advisor.propose(msg);
    const approval = runInNewContext(`({ via: 'mqtt', id: 'mqtt:console-2' })`);
    advisor.decide('approve', 'v1', approval);
    assert.deepEqual(writes[0].payload, { command: 'setpoint', value: 900 });
    assert.equal(writes[0].principal.id, 'mqtt:agent');
    assert.equal(writes[0].advice.approvedBy, 'mqtt:console-2');
    assert.deepEqual(events.map((e) => e.step), ['proposed', 'approved', 'forwarded']);
    advisor.close();
  });
});
