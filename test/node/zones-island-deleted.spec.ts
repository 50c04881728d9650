/**
 * uns-conduit in a Node-RED runtime: the saved island state file deleted while island mode was on
 * must not let traffic through after a redeploy (fail closed, docs/zones.md § "Island mode"); a new
 * conduit (first start, the audit trail does not know it) follows its dialog and saves its state.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zonesNodes = require('../../nodes/zones/zones');
import { helper, type HelperNode } from '../helpers/node-red-runtime';

/** The conduit node: its controller says whether island mode is on. */
type Conduit = HelperNode & { controller: { island: boolean } };

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const WRITE = { topic: ASSET, payload: { speedSetpoint: 10 }, principal: { via: 'mqtt', id: 'mqtt:mes-01' } };
const POLICY = { rules: [{ id: 'setpoint', operation: ['write'], metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 1500 }, action: 'allow' }] };

async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('uns-conduit node: island state file deleted', () => {
  let dir: string;
  before((done) => { helper.startServer(done); });
  after((done) => { helper.stopServer(done); });
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'uns-conduit-island-')); });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  const flow = [
    { id: 'it', type: 'uns-zone', name: 'enterprise', level: '4', slt: '2,2,2,2,2,1,1' },
    { id: 'ot', type: 'uns-zone', name: 'ot-cell-1', level: '1', slt: '3,3,3,2,3,2,3' },
    { id: 'c', type: 'uns-conduit', name: 'it-to-ot', sourceZone: 'it', destinationZone: 'ot', traffic: 'auto', policy: JSON.stringify(POLICY), auditDir: '', wires: [['passed'], ['decisions']], z: 'f1' },
    { id: 'passed', type: 'helper', z: 'f1' },
    { id: 'decisions', type: 'helper', z: 'f1' },
    { id: 'f1', type: 'tab' },
  ];
  const load = () => helper.load([zonesNodes], flow.map((n) => (n.id === 'c' ? { ...n, auditDir: dir } : n)));

  it('first start follows the dialog and saves the state; island on, file deleted, redeploy: still island, red status, one error naming the file', async () => {
    await load();
    const stateFile = join(dir, 'island-c.json');
    assert.ok(existsSync(stateFile), 'the first start saves the state');
    let conduit = helper.getNode<Conduit>('c');
    const passed: unknown[] = [];
    helper.getNode('passed').on('input', (m) => passed.push(m));
    conduit.receive(WRITE);
    await until('first start passes', () => passed.length === 1);
    conduit.receive({ topic: 'uns-edge/conduit/island', payload: { island: true } });
    await until('island on', () => conduit.controller.island);
    await helper.unload();

    rmSync(stateFile);
    await load();
    conduit = helper.getNode<Conduit>('c');
    const decisions: any[] = [];
    helper.getNode('decisions').on('input', (m) => decisions.push(m));
    conduit.receive(WRITE);
    await until('denied', () => decisions.length === 1);
    assert.equal(decisions[0].payload.category, 'island');
    const status = conduit.status.getCalls().filter((call) => call.thisValue === conduit).at(-1)?.args[0];
    assert.deepEqual(status, { fill: 'red', shape: 'dot', text: 'zones.status.island-state-corrupt · zones.status.counts' });
    const errors = helper.log().args.map((a) => a[0]).filter((e) => e.level === 20 && e.id === 'c').map((e) => String(e.msg));
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^zones\.errors\.island-state: island state .*island-c\.json missing although this conduit started before/);
  });
});
