/**
 * uns-conduit in a Node-RED runtime (node-red-node-test-helper): a real core function node builds
 * the messages (another JS realm); partial batches, an all-or-nothing write, island from a message
 * and from the admin API, the policy export with its hash, a hot reload, an invalid policy that
 * lets nothing cross, /metrics, and the audit folder verifying after it all.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zonesNodes = require('../../nodes/zones/zones');
import { metricsRegistry } from '../../lib/runtime/metrics';
import { verifyAuditDir } from '../../lib/zones/audit-verify';
import { helper, type HelperNode } from '../helpers/node-red-runtime';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;

/** The last status `node` showed (its own calls: the spy sits on the prototype, shared by all nodes). */
function lastStatus(node: HelperNode): unknown {
  return node.status.getCalls().filter((call) => call.thisValue === node).at(-1)?.args[0];
}

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const POLICY = {
  rules: [
    { id: 'setpoint', operation: ['write'], principal: { id: ['mqtt:mes-01*'] }, metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 1500, maxStep: 100 }, action: 'allow' },
    { id: 'reset-alert', operation: ['command'], metric: ['faultReset'], action: 'allow-and-alert' },
  ],
};

function collector(node: HelperNode) {
  const got: any[] = [];
  node.on('input', (msg) => got.push(msg));
  return got;
}

async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('uns-conduit node', function () {
  let dir: string;
  before((done) => { helper.startServer(done); });
  after((done) => { helper.stopServer(done); });
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'uns-conduit-node-')); });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  function flow(policy: unknown, extra: Record<string, unknown> = {}, func = 'return msg;') {
    return [
      { id: 'it', type: 'uns-zone', name: 'enterprise', level: '4', slt: '2,2,2,2,2,1,1' },
      { id: 'ot', type: 'uns-zone', name: 'ot-cell-1', level: '1', slt: '3,3,3,2,3,2,3' },
      { id: 'fn', type: 'function', func, outputs: 1, wires: [['c']], x: 100, y: 100, z: 'f1' },
      { id: 'c', type: 'uns-conduit', name: 'it-to-ot', sourceZone: 'it', destinationZone: 'ot', traffic: 'auto', policy: JSON.stringify(policy), auditDir: dir, wires: [['passed'], ['decisions']], x: 300, y: 100, z: 'f1', ...extra },
      { id: 'passed', type: 'helper', z: 'f1' },
      { id: 'decisions', type: 'helper', z: 'f1' },
      { id: 'f1', type: 'tab' },
    ];
  }

  it('passes an allowed write built in a function node, refuses a write with one bad metric as a whole, alerts on allow-and-alert', async () => {
    const func = `msg.payload = msg.payload.kind === 'cmd' ? { command: 'faultReset' } : msg.payload.kind === 'ok'
      ? { speedSetpoint: 100 } : { speedSetpoint: 120, accelRate: 5 };
      msg.principal = { via: 'mqtt', id: 'mqtt:mes-01 (user mes)' }; msg.topic = ${JSON.stringify(ASSET)}; return msg;`;
    await helper.load([zonesNodes, functionNode], flow(POLICY, {}, func));
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    const fn = helper.getNode('fn');
    fn.receive({ payload: { kind: 'ok' } });
    fn.receive({ payload: { kind: 'mixed' } });
    fn.receive({ payload: { kind: 'cmd' } });
    await until('3 outcomes', () => passed.length + decisions.length >= 4);
    assert.deepEqual(passed.map((m) => m.payload), [{ speedSetpoint: 100 }, { command: 'faultReset' }]);
    const refused = decisions.find((m) => m.payload.result === 'deny');
    assert.match(refused.payload.reason, /whole or not at all; "accelRate"/);
    assert.equal(refused.payload.values, undefined);
    assert.equal(decisions.find((m) => m.payload.alert === true)?.payload.ruleIds[0], 'reset-alert');
    const metrics = await metricsRegistry.getSingleMetricAsString('uns_edge_conduit_decisions_total');
    assert.match(metrics, /uns_edge_conduit_decisions_total\{conduit="it-to-ot",result="allowed"\} 2/);
    assert.match(metrics, /uns_edge_conduit_decisions_total\{conduit="it-to-ot",result="denied"\} 1/);
  });

  it('island: a message switches it on; off by message only when allowed; the admin API switches it and exports the policy hash', async () => {
    await helper.load([zonesNodes, functionNode], flow(POLICY));
    const conduit = helper.getNode('c');
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    const write = { topic: ASSET, payload: { speedSetpoint: 10 }, principal: { via: 'mqtt', id: 'mqtt:mes-01' } };
    conduit.receive({ topic: 'uns-edge/conduit/island', payload: { island: true } });
    conduit.receive(write);
    await until('island denial', () => decisions.length === 1);
    assert.equal(decisions[0].payload.category, 'island');
    conduit.receive({ topic: 'uns-edge/conduit/island', payload: { island: false } });
    conduit.receive({ ...write, payload: { speedSetpoint: 11 } });
    await until('still island', () => decisions.length === 2);
    assert.equal(decisions[1].payload.category, 'island');

    const off = await helper.request().post('/uns-edge/conduits/c/island').send({ island: false });
    assert.deepEqual(off.body, { island: false });
    conduit.receive({ ...write, payload: { speedSetpoint: 12 } });
    await until('passed after island off', () => passed.length === 1);

    const exported = await helper.request().get<{ hash: string; policy: { rules: unknown[] } }>('/uns-edge/conduits/c/policy');
    assert.match(exported.body.hash, /^[0-9a-f]{64}$/);
    assert.equal(exported.body.policy.rules.length, 2);
    const reload = await helper.request().post<{ problems: string[] }>('/uns-edge/conduits/c/policy').send({ rules: [{ id: 'bad', action: 'maybe' }] });
    assert.equal(reload.status, 400);
    assert.match(reload.body.problems[0], /rule 1 \(bad\) field action/);
    const emptied = await helper.request().post('/uns-edge/conduits/c/policy').send({ rules: [] });
    assert.notEqual(emptied.body.hash, exported.body.hash);
    conduit.receive({ ...write, payload: { speedSetpoint: 13 } });
    await until('denied after reload', () => decisions.length === 3);
    await helper.unload();
    const report = verifyAuditDir(dir);
    assert.deepEqual(report.findings, []);
    assert.ok(report.records >= 6, `records ${report.records}`);
  });

  it('admin API with malformed bodies: 400 naming the problem, the running policy and island stay as they were; a deep or __proto__ policy is refused, not crashed on', async () => {
    await helper.load([zonesNodes, functionNode], flow(POLICY, {}, `msg.principal = { via: 'mqtt', id: 'mqtt:mes-01' };
      msg.topic = ${JSON.stringify(ASSET)}; msg.payload = { speedSetpoint: msg.payload }; return msg;`));
    const before = (await helper.request().get('/uns-edge/conduits/c/policy')).body;
    // Sent as JSON text: the body parser, not the test's serializer, sees exactly what a client sends.
    const post = (path: string, body: unknown) => helper.request().post<{ error: string; ok?: boolean }>(path).set('Content-Type', 'application/json').send(typeof body === 'string' ? body : JSON.stringify(body));
    for (const body of [{ island: 'true' }, { island: 1 }, [true], { island: [true] }, {}]) {
      const r = await post('/uns-edge/conduits/c/island', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.error, /island/);
    }
    const deep = `{"rules":[${'{"value":'.repeat(5_000)}{"id":"x","action":"allow"}${'}'.repeat(5_000)}]}`;
    const hostile: unknown[] = [
      [], { rules: 'all' }, { rules: [null] }, { rules: [{ id: 'x', action: 'allow', __proto__: { action: 'allow' } }] },
      JSON.parse('{"rules":[{"id":"p","operation":["write"],"metric":["speedSetpoint"],"__proto__":{"action":"allow"}}]}'),
      deep, { rules: [{ id: 'x'.repeat(100_000), operation: ['write'], action: 'allow' }] },
    ];
    for (const body of hostile) {
      const r = await post('/uns-edge/conduits/c/policy', body);
      assert.equal(r.status, 400, String(typeof body === 'string' ? body : JSON.stringify(body)).slice(0, 200));
      assert.equal(typeof r.body.error, 'string');
      const checked = await post('/uns-edge/conduit-policy/check', body);
      assert.equal(checked.status, 200);
      assert.equal(checked.body.ok, false, String(typeof body === 'string' ? body : JSON.stringify(body)).slice(0, 200));
    }
    const after = (await helper.request().get('/uns-edge/conduits/c/policy')).body;
    assert.equal(after.hash, before.hash);
    assert.equal(after.island, false);
    // The policy still decides: a write built in the function node within the rule passes, one outside is denied.
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    const fn = helper.getNode('fn');
    fn.receive({ payload: 50 });
    fn.receive({ payload: 5000 });
    await until('one passed, one denied', () => passed.length === 1 && decisions.length === 1);
    assert.deepEqual(passed[0].payload, { speedSetpoint: 50 });
  });

  it('island from a function node: {island: true} switches it on; a string "true" does not switch it and is not let through as a write', async () => {
    await helper.load([zonesNodes, functionNode], flow(POLICY, {}, `msg.topic = 'uns-edge/conduit/island'; msg.payload = { island: msg.payload }; return msg;`));
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    const fn = helper.getNode('fn');
    fn.receive({ payload: 'true' });
    await until('string island decided', () => decisions.length === 1);
    assert.equal(passed.length, 0);
    assert.equal((await helper.request().get('/uns-edge/conduits/c/policy')).body.island, false);
    fn.receive({ payload: true });
    await until('island on', () => (helper.getNode('c') as HelperNode & { controller: { island: boolean } }).controller.island);
    assert.equal((await helper.request().get('/uns-edge/conduits/c/policy')).body.island, true);
  });

  it('island switched on at run time survives a redeploy; switching it off is audited and saved; a corrupt state file starts in island mode with a red status', async () => {
    const write = { topic: ASSET, payload: { speedSetpoint: 10 }, principal: { via: 'mqtt', id: 'mqtt:mes-01' } };
    await helper.load([zonesNodes, functionNode], flow(POLICY));
    helper.getNode('c').receive({ topic: 'uns-edge/conduit/island', payload: { island: true }, principal: { via: 'mqtt', id: 'mqtt:scada-01' } });
    await until('island on', () => (helper.getNode('c') as HelperNode & { controller: { island: boolean } }).controller.island);
    await helper.unload();

    await helper.load([zonesNodes, functionNode], flow(POLICY));
    let decisions = collector(helper.getNode('decisions'));
    helper.getNode('c').receive(write);
    await until('denied after redeploy', () => decisions.length === 1);
    assert.equal(decisions[0].payload.category, 'island');
    assert.equal((await helper.request().post('/uns-edge/conduits/c/island').send({ island: false })).body.island, false);
    await helper.unload();
    const records = readFileSync(join(dir, 'audit-000001.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(records.filter((r) => r.type.startsWith('island-')).map((r) => [r.type, r.principal]),
      [['island-on', 'mqtt:scada-01'], ['island-on', 'mqtt:scada-01'], ['island-off', 'admin:(no adminAuth)']]);

    await helper.load([zonesNodes, functionNode], flow(POLICY));
    const passed = collector(helper.getNode('passed'));
    helper.getNode('c').receive(write);
    await until('passes once switched off', () => passed.length === 1);
    await helper.unload();

    writeFileSync(join(dir, 'island-c.json'), '{"island": fals');
    await helper.load([zonesNodes, functionNode], flow(POLICY));
    const conduit = helper.getNode('c');
    decisions = collector(helper.getNode('decisions'));
    conduit.receive(write);
    await until('denied with a corrupt state file', () => decisions.length === 1);
    assert.equal(decisions[0].payload.category, 'island');
    // The helper stubs RED._ (keys, not texts): the key names what the status says.
    assert.deepEqual(lastStatus(conduit), { fill: 'red', shape: 'dot', text: 'zones.status.island-state-corrupt · zones.status.counts' });
  });

  it('"island": "true" (a hand-written flows file) is neither on nor off: the conduit does not start, nothing crosses', async () => {
    await helper.load([zonesNodes, functionNode], flow(POLICY, { island: 'true' }));
    const conduit = helper.getNode('c') as HelperNode & { policyProblem?: string };
    // The helper stubs RED._ (keys, not texts).
    assert.equal(conduit.policyProblem, 'zones.errors.bad-island');
    assert.deepEqual(lastStatus(conduit), { fill: 'red', shape: 'ring', text: 'zones.status.bad-island' });
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    conduit.receive({ topic: ASSET, payload: { speedSetpoint: 1 }, principal: { via: 'mqtt', id: 'mqtt:mes-01' } });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(passed.length + decisions.length, 0);
  });

  it('a malformed policy: red status naming rule and field, nothing crosses', async () => {
    await helper.load([zonesNodes, functionNode], flow({ rules: [{ id: 'w', operation: ['write'], action: 'allow' }] }));
    const conduit = helper.getNode('c') as HelperNode & { policyProblem?: string };
    assert.match(conduit.policyProblem ?? '', /rule 1 \(w\) field value/);
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    conduit.receive({ topic: ASSET, payload: { speedSetpoint: 1 } });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(passed.length + decisions.length, 0);
  });

  it('partial tag batch on an OT→IT conduit: only allowed metrics (and their meta) pass, the decision lists the dropped ones', async () => {
    const f = flow({ rules: [{ id: 'tele', operation: ['read'], metric: ['Current', 'Speed'], action: 'allow' }] });
    Object.assign(f[3], { sourceZone: 'ot', destinationZone: 'it' });
    await helper.load([zonesNodes, functionNode], f);
    const passed = collector(helper.getNode('passed'));
    const decisions = collector(helper.getNode('decisions'));
    helper.getNode('c').receive({ topic: ASSET, payload: { Current: 1, Speed: 2, Recipe: 'x' }, meta: { Current: { unit: 'A' }, Recipe: { unit: '' } } });
    await until('partial', () => passed.length === 1 && decisions.length === 1);
    assert.deepEqual(passed[0].payload, { Current: 1, Speed: 2 });
    assert.deepEqual(passed[0].meta, { Current: { unit: 'A' } });
    assert.deepEqual(decisions[0].payload.dropped, [{ metric: 'Recipe', ruleId: null, reason: 'no rule allows it (default deny)' }]);
  });
});
