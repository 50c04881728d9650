/**
 * uns-conduit with a failing audit store, in a Node-RED runtime with real timing (T-POL-03, SR 2.10):
 * the store is broken in a way that also fails for root (these tests may run as root, where chmod
 * does not stop a write): the audit file is moved aside and a directory put at its path. Decisions
 * are refused with a clear status and one log line; once repaired the store comes back by itself
 * within its 5 s retry, with one recovery line, and the chain verifies across the outage. The
 * admin API answers 503 for what cannot be audited.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zonesNodes = require('../../nodes/zones/zones');
import { verifyAuditDir } from '../../lib/zones/audit-verify';
import { helper, type HelperNode } from '../helpers/node-red-runtime';

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const MES = { via: 'mqtt', id: 'mqtt:mes-01' };
const POLICY = {
  rules: [
    { id: 'telemetry', operation: ['read'], metric: ['Current'], action: 'allow' },
    { id: 'setpoint', operation: ['write'], principal: { id: ['mqtt:mes-*'] }, metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 1500 }, action: 'allow' },
  ],
};
/** The audit log's retry time (lib/zones/audit-log.ts RETRY_MS) and what a loaded machine may add to it. */
const RETRY_MS = 5_000;
const RETRY_SLACK_MS = 3_000;

function lastStatus(node: HelperNode): { fill: string; shape: string; text: string } | undefined {
  return node.status.getCalls().filter((call) => call.thisValue === node).at(-1)?.args[0] as never;
}

function collector(node: HelperNode) {
  const got: any[] = [];
  node.on('input', (msg) => got.push(msg));
  return got;
}

/** Log lines of the conduit at a level (20 error, 30 warn); the helper stubs RED._, so texts are keys. */
function logged(level: number): string[] {
  return helper.log().args.map((a) => a[0]).filter((e) => e.level === level && e.id === 'c').map((e) => String(e.msg));
}

async function until(what: string, check: () => boolean, ms = 5_000): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

function records(dir: string): Array<Record<string, any>> {
  return readFileSync(join(dir, 'audit-000001.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

describe('uns-conduit node: audit store outage (real timing)', function () {
  this.timeout(30_000);
  let dir: string;
  let file: string;
  let aside: string;
  before((done) => { helper.startServer(done); });
  after((done) => { helper.stopServer(done); });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-conduit-outage-'));
    file = join(dir, 'audit-000001.jsonl');
    aside = join(dir, 'moved-aside.jsonl');
  });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  function flow(from: 'it' | 'ot', to: 'it' | 'ot') {
    return [
      { id: 'it', type: 'uns-zone', name: 'enterprise', level: '4', slt: '2,2,2,2,2,1,1' },
      { id: 'ot', type: 'uns-zone', name: 'ot-cell-1', level: '1', slt: '3,3,3,2,3,2,3' },
      { id: 'c', type: 'uns-conduit', name: 'conduit', sourceZone: from, destinationZone: to, traffic: 'auto', policy: JSON.stringify(POLICY), auditDir: dir, wires: [['passed'], ['decisions']], z: 'f1' },
      { id: 'passed', type: 'helper', z: 'f1' },
      { id: 'decisions', type: 'helper', z: 'f1' },
      { id: 'f1', type: 'tab' },
    ];
  }

  /** Breaks the store for root too: the file moved aside, a directory at its path. */
  function breakStore(): void {
    renameSync(file, aside);
    mkdirSync(file);
  }
  function repairStore(): void {
    rmdirSync(file);
    renameSync(aside, file);
  }

  it('mid-run: writes refused with a red status and one error line; repaired, it passes again by itself within the retry time, one recovery line, the chain verifies across the outage', async () => {
    await helper.load([zonesNodes], flow('it', 'ot'));
    const conduit = helper.getNode('c');
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    // One MES client per write: each is the first decision of its aggregation key, so written in full
    // (a repeat within the same second would only be counted into a summary).
    const write = (value: number) => conduit.receive({ topic: ASSET, payload: { speedSetpoint: value }, principal: { via: 'mqtt', id: `mqtt:mes-${value}` } });
    write(10);
    await until('first write passed', () => passed.length === 1);

    breakStore();
    for (const value of [11, 12, 13]) write(value);
    await until('three writes refused', () => decisions.length === 3);
    const failedAt = Date.now();
    for (const d of decisions) {
      assert.equal(d.payload.result, 'deny');
      assert.match(d.payload.reason, /audit store failed, writes refused: .*audit-000001\.jsonl was removed or replaced while open/);
    }
    await until('red status', () => lastStatus(conduit)?.text.startsWith('zones.status.audit-failed') === true, 2_000);
    assert.equal(lastStatus(conduit)?.fill, 'red');
    assert.deepEqual(logged(20).filter((m) => m.startsWith('zones.errors.audit')).length, 1, 'one error line per outage');

    repairStore();
    // No message is sent: the store's own retry brings the conduit back.
    await until('green status without traffic', () => lastStatus(conduit)?.fill === 'green', RETRY_MS + RETRY_SLACK_MS);
    const recoveredAfter = Date.now() - failedAt;
    console.log(`      audit store back ${recoveredAfter} ms after the failure (retry ${RETRY_MS} ms)`);
    assert.ok(recoveredAfter >= RETRY_MS - 100, `not before the retry time: ${recoveredAfter} ms`);
    assert.deepEqual(logged(30).filter((m) => m.startsWith('zones.errors.audit-recovered')).length, 1, 'one recovery line');
    write(14);
    await until('write passes again', () => passed.length === 2);
    assert.deepEqual(passed.map((m) => m.payload.speedSetpoint), [10, 14]);
    assert.equal(logged(20).filter((m) => m.startsWith('zones.errors.audit')).length, 1);

    await helper.unload();
    const all = records(dir);
    assert.deepEqual(all.map((r) => r.type), ['policy-loaded', 'decision', 'audit-recovered', 'decision']);
    assert.equal(all[2].lost, 3, 'the three refused writes were not recorded, and the recovery says so');
    const report = verifyAuditDir(dir);
    assert.deepEqual(report.findings, []);
    assert.equal(report.records, 4);
  });

  it('at start: no policy-loaded record, so nothing crosses, reads included; repaired, the policy record is written by itself and reads pass', async () => {
    // A previous run left records; the store is broken before this deploy.
    await helper.load([zonesNodes], flow('ot', 'it'));
    await helper.unload();
    helper.log().args.length = 0;
    breakStore();

    await helper.load([zonesNodes], flow('ot', 'it'));
    const conduit = helper.getNode('c') as HelperNode & { controller: { held?: string } };
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    assert.match(conduit.controller.held ?? '', /the audit does not yet record which policy decides/);
    conduit.receive({ topic: ASSET, payload: { Current: 1 } });
    await until('read refused', () => decisions.length === 1);
    assert.equal(decisions[0].payload.category, 'audit');
    assert.equal(passed.length, 0);
    assert.deepEqual(lastStatus(conduit), { fill: 'red', shape: 'ring', text: 'zones.status.audit-held · zones.status.counts' });
    const errors = logged(20).filter((m) => m.startsWith('zones.errors.audit'));
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^zones\.errors\.audit-held: audit store .* cannot be opened: .*audit-000001\.jsonl is not a regular file/);

    repairStore();
    await until('released without traffic', () => conduit.controller.held === undefined, RETRY_MS + RETRY_SLACK_MS);
    conduit.receive({ topic: ASSET, payload: { Current: 2 } });
    await until('read passes', () => passed.length === 1);
    await until('green', () => lastStatus(conduit)?.fill === 'green', 2_000);
    assert.equal(logged(30).filter((m) => m.startsWith('zones.errors.audit-recovered')).length, 1);

    await helper.unload();
    assert.deepEqual(records(dir).map((r) => r.type), ['policy-loaded', 'audit-recovered', 'policy-loaded', 'decision']);
    assert.deepEqual(verifyAuditDir(dir).findings, []);
  });

  it('admin API while the store is failed: island on works at once; island off and a policy reload answer 503 and change nothing', async () => {
    await helper.load([zonesNodes], flow('it', 'ot'));
    const conduit = helper.getNode('c');
    const passed = collector(helper.getNode('passed'));
    conduit.receive({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES });
    await until('write passed', () => passed.length === 1);
    const before = (await helper.request().get('/uns-edge/conduits/c/policy')).body;

    breakStore();
    const looser = await helper.request().post<{ error: string }>('/uns-edge/conduits/c/policy').send({ rules: [{ id: 'any', operation: ['write'], metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 3000 }, action: 'allow' }] });
    assert.equal(looser.status, 503);
    assert.match(looser.body.error, /policy not reloaded: the reload could not be audited .*removed or replaced while open.*; policy [0-9a-f]{64} stays active/);
    assert.equal((await helper.request().get('/uns-edge/conduits/c/policy')).body.hash, before.hash);

    const on = await helper.request().post('/uns-edge/conduits/c/island').send({ island: true });
    assert.deepEqual([on.status, on.body], [200, { island: true }]);
    const off = await helper.request().post<{ error: string; island: boolean }>('/uns-edge/conduits/c/island').send({ island: false });
    assert.equal(off.status, 503);
    assert.match(off.body.error, /island mode stays on: switching it off could not be audited/);
    assert.equal(off.body.island, true);
    assert.equal((await helper.request().get('/uns-edge/conduits/c/policy')).body.island, true);

    // Repaired: the kept island-on record is written after audit-recovered, and island off works again.
    repairStore();
    await until('store back', () => lastStatus(conduit)?.text.startsWith('zones.status.island') === true
      && logged(30).some((m) => m.startsWith('zones.errors.audit-recovered')), RETRY_MS + RETRY_SLACK_MS);
    const offAgain = await helper.request().post('/uns-edge/conduits/c/island').send({ island: false });
    assert.deepEqual([offAgain.status, offAgain.body], [200, { island: false }]);
    await helper.unload();
    assert.deepEqual(records(dir).map((r) => r.type), ['policy-loaded', 'decision', 'audit-recovered', 'island-on', 'island-off']);
    assert.deepEqual(verifyAuditDir(dir).findings, []);
  });
});
