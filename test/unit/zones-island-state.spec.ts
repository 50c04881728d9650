/**
 * The island switch kept on disk (lib/zones/island-state): read fail closed, written atomically, and
 * restored by the conduit controller at start with an audit record.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    assert.deepEqual(file.load(), { island: false });
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
});
