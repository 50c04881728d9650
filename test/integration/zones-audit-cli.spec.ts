/**
 * `uns-edge audit verify <dir>` as a user runs it (the CLI from source through tsx): exit 0 on the
 * folder a conduit wrote, exit 1 naming the record after one line is edited, exit 2 without a folder.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../lib/zones/audit-log';
import { ConduitController } from '../../lib/zones/controller';
import { parsePolicy } from '../../lib/zones/policy';

const ROOT = join(__dirname, '..', '..');

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'uns-edge.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

describe('uns-edge audit verify (CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-audit-cli-'));
    const audit = new AuditLog({ dir });
    const controller = new ConduitController(parsePolicy({ rules: [{ id: 'tele', operation: ['read'], action: 'allow' }] }), { name: 'ot-to-dmz', audit, source: { name: 'ot', level: 1 }, destination: { name: 'dmz', level: 3.5 } });
    controller.decide({ topic: 'a/b', payload: { x: 1 } });
    controller.setIsland(true, 'test');
    controller.decide({ topic: 'a/b', payload: { x: 2 } });
    audit.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 on an intact folder and 1 naming the changed record on a tampered one', () => {
    const ok = cli('audit', 'verify', dir);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^OK: 4 records in 1 files, 0 findings; head seq 4 hash [0-9a-f]{64}$/m);
    const file = join(dir, 'audit-000001.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"type":"island-on"', '"type":"island-off"'));
    const tampered = cli('audit', 'verify', dir);
    assert.equal(tampered.status, 1);
    assert.match(tampered.stdout, /^audit-000001.jsonl:3: record seq 3 changed: its content does not match its hash$/m);
    assert.match(tampered.stdout, /^FAILED: /m);
  });

  it('exits 2 without a folder', () => {
    const usage = cli('audit', 'verify');
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: uns-edge audit verify <audit folder>/);
  });
});
