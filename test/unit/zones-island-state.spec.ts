/**
 * The island switch kept on disk (lib/zones/island-state): read fail closed, written atomically, and
 * restored by the conduit controller at start with an audit record.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../lib/zones/audit-log';
import { ConduitController } from '../../lib/zones/controller';
import { IslandStateFile, islandStateFile } from '../../lib/zones/island-state';
import { parsePolicy } from '../../lib/zones/policy';

const ZONES = { source: { name: 'it', level: 4 }, destination: { name: 'ot', level: 1 } };
const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const WRITE = { topic: ASSET, payload: { speedSetpoint: 10 }, principal: { via: 'mqtt', id: 'mqtt:mes-01' } };
const POLICY = parsePolicy({ rules: [{ id: 'w', operation: ['write'], metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 100 }, action: 'allow' }] });

describe('zones: island state on disk', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'uns-island-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('no file: off; saved: read back; a corrupt, wrongly shaped or unreadable file: on, saying why', () => {
    const file = new IslandStateFile(islandStateFile(dir, 'a1b2.c3/../x'));
    assert.equal(file.path, join(dir, 'island-a1b2.c3_.._x.json'));
    assert.deepEqual(file.load(), { island: false, missing: true });
    file.save(true, 'mqtt:scada-01');
    assert.deepEqual(file.load(), { island: true, by: 'mqtt:scada-01' });
    assert.deepEqual(readdirSync(dir), ['island-a1b2.c3_.._x.json'], 'no temporary file left behind');
    file.save(false, 'admin:ops');
    assert.deepEqual(file.load(), { island: false, by: 'admin:ops' });
    for (const [content, why] of [['{"island": tr', /corrupt: /], ['{"island": "false"}', /no boolean "island"/], ['[false]', /no boolean "island"/], ['', /corrupt/]] as const) {
      writeFileSync(file.path, content);
      const state = file.load();
      assert.equal(state.island, true, content);
      assert.match(state.problem ?? '', why);
    }
    rmSync(file.path);
    mkdirSync(file.path);
    assert.match(new IslandStateFile(file.path).load().problem ?? '', /unreadable: EISDIR/);
  });

  it('the controller restores island on, audits it with who switched it, and saves island off', () => {
    const audit = new AuditLog({ dir });
    const islandState = new IslandStateFile(islandStateFile(dir, 'c1'));
    const first = new ConduitController(POLICY, { name: 'c1', audit, ...ZONES, islandState });
    first.setIsland(true, 'mqtt:scada-01');
    const second = new ConduitController(POLICY, { name: 'c1', audit, ...ZONES, islandState });
    assert.equal(second.island, true);
    assert.equal(second.decide(WRITE).category, 'island');
    second.setIsland(false, 'admin:ops');
    const third = new ConduitController(POLICY, { name: 'c1', audit, ...ZONES, islandState });
    assert.equal(third.island, false);
    assert.equal(third.decide(WRITE).result, 'allow');
    audit.close();
    const island = readFileSync(join(dir, 'audit-000001.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.category === 'island' && r.type !== 'decision');
    assert.deepEqual(island.map((r) => [r.type, r.principal, r.reason]), [
      ['island-on', 'mqtt:scada-01', undefined],
      ['island-on', 'mqtt:scada-01', 'restored from the saved island state'],
      ['island-off', 'admin:ops', undefined],
    ]);
  });

  describe('a missing state file (fail closed: a deletion must not loosen the conduit)', () => {
    const start = (audit: AuditLog, island?: boolean, id = 'node-1') =>
      new ConduitController(POLICY, { name: 'c1', audit, ...ZONES, island, islandState: new IslandStateFile(islandStateFile(dir, id)), conduitId: id });
    const islandRecords = () => readFileSync(join(dir, 'audit-000001.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'island-on');

    it('first start (the trail does not know the conduit): the dialog decides, and the state file is written', () => {
      const audit = new AuditLog({ dir });
      // Another conduit in the same folder, and records written before policy-loaded carried the id, are no witnesses.
      audit.record({ source: 'c1', category: 'config-change', type: 'policy-loaded', result: 'ok', policyHash: 'x' });
      start(audit, false, 'node-2');
      const fresh = start(audit);
      assert.equal(fresh.island, false);
      assert.equal(fresh.islandProblem, undefined);
      assert.equal(fresh.decide(WRITE).result, 'allow');
      assert.deepEqual(new IslandStateFile(islandStateFile(dir, 'node-1')).load(), { island: false, by: 'first start' });
      const ticked = start(audit, true, 'node-3');
      assert.equal(ticked.island, true, 'ticked in the dialog');
      assert.equal(ticked.islandProblem, undefined);
      assert.deepEqual(new IslandStateFile(islandStateFile(dir, 'node-3')).load(), { island: false, by: 'first start' }, 'the dialog is not saved');
      audit.close();
    });

    it('island switched on, the file deleted, restart: island stays on, saying why; so does a never-switched conduit whose file was deleted', () => {
      const audit = new AuditLog({ dir });
      start(audit).setIsland(true, 'mqtt:scada-01');
      rmSync(islandStateFile(dir, 'node-1'));
      const restarted = start(audit);
      assert.equal(restarted.island, true);
      assert.match(restarted.islandProblem ?? '', /island-node-1\.json missing although this conduit started before \(audit record \d+\): deleted\?/);
      assert.equal(restarted.decide(WRITE).category, 'island');
      assert.match(islandRecords().at(-1).reason, /missing although this conduit started before/);
      // Switching it off (audited) writes the file again; the next start is off.
      restarted.setIsland(false, 'admin:ops');
      assert.equal(start(audit).island, false);

      rmSync(islandStateFile(dir, 'node-1'));
      assert.equal(start(audit).island, true, 'off before the deletion, but that cannot be known: on');
      audit.close();
    });

    it('the trail cannot be read to tell a first start: island on', () => {
      const audit = new AuditLog({ dir });
      start(audit);
      audit.close();
      rmSync(islandStateFile(dir, 'node-1'));
      renameSync(join(dir, 'audit-000001.jsonl'), join(dir, 'aside'));
      mkdirSync(join(dir, 'audit-000001.jsonl'));
      const broken = new AuditLog({ dir });
      const restarted = start(broken);
      assert.equal(restarted.island, true);
      assert.match(restarted.islandProblem ?? '', /missing and the audit trail cannot be read to tell a first start: EISDIR/);
      broken.close();
    });
  });
});
