import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, recordHash, type AuditRecord } from '../../lib/zones/audit-log';
import { auditVerifyMain, verifyAuditDir } from '../../lib/zones/audit-verify';
import { AuditRefusal, ConduitController } from '../../lib/zones/controller';
import { parsePolicy } from '../../lib/zones/policy';

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const MES = { via: 'mqtt', id: 'mqtt:mes-01' };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'uns-zones-audit-'));
}

function fakeTime() {
  const t = { mono: 0, wall: Date.UTC(2024, 5, 12, 10) };
  return { t, wallMs: () => t.wall, monotonicMs: () => t.mono };
}

function lines(dir: string, file: string): string[] {
  return readFileSync(join(dir, file), 'utf8').trim().split('\n');
}

function fill(dir: string, n: number, options: Partial<ConstructorParameters<typeof AuditLog>[0]> = {}): AuditLog {
  const log = new AuditLog({ dir, maxFileBytes: 2048, maxFiles: 50, ...options });
  for (let i = 0; i < n; i++) log.record({ source: 'c1', category: 'access-control', type: 'decision', ruleId: 'r1', principal: 'mqtt:mes-01', result: 'allow', i });
  return log;
}

describe('zones: audit log', () => {
  let dir: string;
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes records with the SR 2.8 fields, hash-chained across rotated files, and resumes the chain when reopened', () => {
    const log = fill(dir, 40);
    log.close();
    const files = readdirSync(dir).sort();
    assert.ok(files.length > 3, `rotated into ${files.length} files`);
    const first = JSON.parse(lines(dir, files[0])[0]) as AuditRecord;
    for (const key of ['time', 'source', 'category', 'type', 'ruleId', 'principal', 'result', 'seq', 'prev', 'hash']) assert.ok(key in first, key);
    assert.equal(first.hash, recordHash(first));
    const second = JSON.parse(lines(dir, files[1])[0]) as AuditRecord;
    const lastOfFirst = JSON.parse(lines(dir, files[0]).at(-1) as string) as AuditRecord;
    assert.equal(second.prev, lastOfFirst.hash, 'the chain continues across files');
    fill(dir, 5).close();
    const report = verifyAuditDir(dir);
    assert.deepEqual(report.findings, []);
    assert.equal(report.records, 45);
    assert.equal(report.head?.seq, 45);
  });

  it('verify names a changed record (content edited, hash kept)', () => {
    fill(dir, 10).close();
    const file = readdirSync(dir).sort()[0];
    const text = readFileSync(join(dir, file), 'utf8').replace('"result":"allow","i":1,', '"result":"deny","i":1,');
    assert.notEqual(text, readFileSync(join(dir, file), 'utf8'));
    writeFileSync(join(dir, file), text);
    const report = verifyAuditDir(dir);
    assert.equal(report.ok, false);
    assert.match(report.findings.map((f) => f.problem).join('\n'), /record seq 2 changed: its content does not match its hash/);
  });

  it('verify names a changed record whose hash was recomputed (the next record’s prev breaks)', () => {
    fill(dir, 10).close();
    const file = readdirSync(dir).sort()[0];
    const all = lines(dir, file);
    const record = JSON.parse(all[2]) as AuditRecord;
    record.result = 'deny';
    record.hash = recordHash(record);
    all[2] = JSON.stringify(record);
    writeFileSync(join(dir, file), `${all.join('\n')}\n`);
    const problems = verifyAuditDir(dir).findings.map((f) => f.problem).join('\n');
    assert.match(problems, /chain broken at seq 4: record seq 3 \(audit-000001.jsonl:3\) was changed or replaced/);
  });

  it('verify names a removed record and a removed file', () => {
    fill(dir, 40).close();
    const files = readdirSync(dir).sort();
    const all = lines(dir, files[0]);
    const removedSeq = (JSON.parse(all[1]) as AuditRecord).seq;
    all.splice(1, 1);
    writeFileSync(join(dir, files[0]), `${all.join('\n')}\n`);
    const gone = lines(dir, files[2]).map((l) => (JSON.parse(l) as AuditRecord).seq);
    unlinkSync(join(dir, files[2]));
    const problems = verifyAuditDir(dir).findings.map((f) => f.problem).join('\n');
    assert.match(problems, new RegExp(`record seq ${removedSeq} removed`));
    assert.match(problems, new RegExp(`records seq ${gone.length > 10 ? `${gone[0]}…${gone.at(-1)}` : gone.join(', ')} removed`));
  });

  it('verify names reordered records', () => {
    fill(dir, 10).close();
    const file = readdirSync(dir).sort()[0];
    const all = lines(dir, file);
    [all[3], all[4]] = [all[4], all[3]];
    writeFileSync(join(dir, file), `${all.join('\n')}\n`);
    const problems = verifyAuditDir(dir).findings.map((f) => f.problem).join('\n');
    assert.match(problems, /record seq 4 reordered: found at audit-000001.jsonl:5, after seq 5/);
  });

  it('pruning at capacity is announced, so verify accepts it (and refuses a head removed without it)', () => {
    const log = fill(dir, 200, { maxFiles: 3 });
    log.close();
    assert.equal(readdirSync(dir).length, 3);
    assert.deepEqual(verifyAuditDir(dir).findings, []);
    const oldest = readdirSync(dir).sort()[0];
    unlinkSync(join(dir, oldest));
    assert.match(verifyAuditDir(dir).findings.map((f) => f.problem).join('\n'), /missing before the first record|removed/);
  });

  it('the CLI entry exits 0 on an intact log and 1 naming the record on a tampered one', () => {
    fill(dir, 10, { maxFileBytes: 1 << 20 }).close();
    const out: string[] = [];
    assert.equal(auditVerifyMain([dir], (l) => out.push(l), (l) => out.push(l)), 0);
    assert.match(out.at(-1) ?? '', /^OK: 10 records in 1 files, 0 findings; head seq 10 hash [0-9a-f]{64}$/);
    const file = readdirSync(dir)[0];
    writeFileSync(join(dir, file), readFileSync(join(dir, file), 'utf8').replace('"i":7', '"i":70'));
    out.length = 0;
    assert.equal(auditVerifyMain([dir], (l) => out.push(l), (l) => out.push(l)), 1);
    assert.match(out[0], /^audit-000001.jsonl:8: record seq 8 changed/);
    assert.equal(auditVerifyMain([], () => undefined, () => undefined), 2);
  });

  it('flood aggregation: one record per key, then one summary per key per second (SR 2.9)', () => {
    const time = fakeTime();
    const log = new AuditLog({ dir, ...time });
    for (let i = 0; i < 10_000; i++) {
      log.decision({ source: 'c1', category: 'access-control', type: 'decision', ruleId: null, principal: 'mqtt:flood', result: 'deny' });
      time.t.mono += 0.05; // 10,000 in 0.5 s
    }
    log.decision({ source: 'c1', category: 'access-control', type: 'decision', ruleId: 'r1', principal: 'mqtt:mes-01', result: 'allow' });
    time.t.mono += 1000;
    log.decision({ source: 'c1', category: 'access-control', type: 'decision', ruleId: null, principal: 'mqtt:flood', result: 'deny' });
    log.close();
    const records = lines(dir, 'audit-000001.jsonl').map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(records.map((r) => [r.type, r.result, r.count]), [
      ['decision', 'deny', undefined], ['decision', 'allow', undefined], ['summary', 'deny', 9_999], ['decision', 'deny', undefined],
    ]);
    assert.equal(verifyAuditDir(dir).ok, true);
  });
});

describe('zones: T-POL-03 audit store full or unwritable', () => {
  let dir: string;
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const policy = parsePolicy({ rules: [
    { id: 'telemetry', operation: ['read'], action: 'allow' },
    { id: 'setpoint', operation: ['write'], principal: { id: ['mqtt:mes-01'] }, metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 1500 }, action: 'allow' },
  ] });

  function controllers(audit: AuditLog) {
    const read = new ConduitController(policy, { name: 'ot-to-dmz', audit, source: { name: 'ot', level: 1 }, destination: { name: 'dmz', level: 3.5 } });
    const write = new ConduitController(policy, { name: 'it-to-ot', audit, source: { name: 'it', level: 4 }, destination: { name: 'ot', level: 1 } });
    return { read, write };
  }

  it('a store at capacity (whenFull stop): alarm, reads continue, writes fail closed', () => {
    const alarms: string[] = [];
    const audit = new AuditLog({ dir, maxFileBytes: 1024, maxFiles: 2, whenFull: 'stop' });
    audit.on('alarm', (reason) => alarms.push(reason));
    const { read, write } = controllers(audit);
    assert.equal(write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES }).result, 'allow');
    for (let i = 0; i < 40 && audit.writable; i++) audit.record({ source: 'test', category: 'audit', type: 'filler', result: 'ok', pad: 'x'.repeat(100) });
    assert.equal(audit.writable, false);
    assert.equal(alarms.length, 1);
    assert.match(alarms[0], /is full/);
    assert.equal(read.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'allow', 'reads continue');
    const refused = write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES });
    assert.equal(refused.result, 'deny');
    assert.match(refused.reason ?? '', /audit store failed, writes refused/);
    audit.close();
  });

  it('a write refused because its record failed does not move maxStep\'s last value: the next step is measured from what passed', () => {
    const stepPolicy = parsePolicy({ rules: [
      { id: 'setpoint', operation: ['write'], principal: { id: ['mqtt:mes-01'] }, metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 1500, maxStep: 100 }, action: 'allow' },
    ] });
    const { t, wallMs, monotonicMs } = fakeTime();
    const audit = new AuditLog({ dir, maxFileBytes: 4096, maxFiles: 2, whenFull: 'stop', wallMs, monotonicMs });
    const write = new ConduitController(stepPolicy, { name: 'it-to-ot', audit, source: { name: 'it', level: 4 }, destination: { name: 'ot', level: 1 } });
    const set = (speedSetpoint: number) => write.decide({ topic: ASSET, payload: { speedSetpoint }, principal: MES });
    assert.equal(set(1000).result, 'allow');
    for (let i = 0; i < 100 && audit.writable; i++) audit.record({ source: 'test', category: 'audit', type: 'filler', result: 'ok', pad: 'x'.repeat(100) });
    assert.equal(audit.writable, false);
    const refused = set(1100);
    assert.equal(refused.result, 'deny');
    assert.match(refused.reason ?? '', /audit store failed/);
    // The store works again: 1000 → 1200 is a step of 200 (1100 never reached the drive), refused by maxStep.
    unlinkSync(join(dir, 'audit-000001.jsonl'));
    t.mono += 5_000;
    const twoSteps = set(1200);
    assert.equal(twoSteps.result, 'deny', JSON.stringify(twoSteps));
    assert.match(twoSteps.reason ?? '', /a step from 1000 to 1200 is larger than 100/);
    assert.equal(set(1100).result, 'allow');
    audit.close();
  });

  it('with the store failed, a policy reload and island off are refused (nothing loosens unrecorded); island on takes effect and its record is written on recovery', () => {
    const { t, wallMs, monotonicMs } = fakeTime();
    const audit = new AuditLog({ dir, maxFileBytes: 4096, maxFiles: 2, whenFull: 'stop', wallMs, monotonicMs });
    const { write } = controllers(audit);
    const before = write.exportPolicy().hash;
    for (let i = 0; i < 100 && audit.writable; i++) audit.record({ source: 'test', category: 'audit', type: 'filler', result: 'ok', pad: 'x'.repeat(100) });
    assert.equal(audit.writable, false);
    const looser = parsePolicy({ rules: [{ id: 'any-setpoint', operation: ['write'], metric: ['speedSetpoint'], value: { type: 'number', min: 0, max: 3000 }, action: 'allow' }] });
    assert.throws(() => write.setPolicy(looser, 'admin:ops'), (e: Error) => e instanceof AuditRefusal && /policy not reloaded: the reload could not be audited/.test(e.message));
    assert.equal(write.exportPolicy().hash, before, 'the old policy stays active');
    write.setIsland(true, 'mqtt:scada-01');
    assert.equal(write.island, true, 'tightening goes through with the store failed');
    assert.equal(write.unrecordedCount, 1);
    assert.throws(() => write.setIsland(false, 'admin:ops'), (e: Error) => e instanceof AuditRefusal && /island mode stays on/.test(e.message));
    assert.equal(write.island, true);

    // Room again (the oldest file is taken away) and the retry time has come: the next record recovers the store.
    unlinkSync(join(dir, 'audit-000001.jsonl'));
    t.mono += 5_000;
    assert.equal(write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES }).category, 'island');
    assert.equal(write.unrecordedCount, 0);
    write.setIsland(false, 'admin:ops');
    assert.equal(write.island, false);
    write.close();
    audit.close();
    const newest = readdirSync(dir).filter((f) => f.startsWith('audit-')).sort().at(-1) as string;
    const records = lines(dir, newest).map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(records.filter((r) => r.type !== 'pruned').map((r) => [r.type, r.principal ?? null]), [
      ['audit-recovered', null], ['island-on', 'mqtt:scada-01'], ['decision', 'mqtt:mes-01'], ['island-off', 'admin:ops'],
    ]);
  });

  it('an unwritable store at start (the folder cannot be created): no policy-loaded record, so nothing crosses, reads included, until the store works and it is written', () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    const time = fakeTime();
    const audit = new AuditLog({ dir: join(blocker, 'audit'), ...time });
    assert.equal(audit.writable, false);
    assert.match(audit.failureReason ?? '', /cannot be opened/);
    const { read, write } = controllers(audit);
    const held = read.decide({ topic: ASSET, payload: { Current: 1 } });
    assert.equal(held.result, 'deny', 'the audit cannot say which policy decided');
    assert.equal(held.category, 'audit');
    assert.match(held.reason ?? '', /the audit does not yet record which policy decides/);
    assert.equal(write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES }).result, 'deny');

    // Repaired: the next message after the retry time recovers the store; both policy records come first.
    unlinkSync(blocker);
    assert.equal(read.decide({ topic: ASSET, payload: { Current: 1 } }).result, 'deny', 'not before the retry time');
    time.t.mono += 5_000;
    assert.equal(read.decide({ topic: ASSET, payload: { Current: 2 } }).result, 'allow');
    assert.equal(read.held, undefined);
    assert.equal(write.held, undefined);
    assert.equal(write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES }).result, 'allow');
    audit.close();
    const records = lines(join(blocker, 'audit'), 'audit-000001.jsonl').map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(records.map((r) => [r.type, r.source]), [
      ['audit-recovered', 'audit'], ['policy-loaded', 'ot-to-dmz'], ['policy-loaded', 'it-to-ot'], ['decision', 'ot-to-dmz'], ['decision', 'it-to-ot'],
    ]);
    assert.equal(records[0].lost, 5, 'two policy records and three refused decisions');
    assert.equal(verifyAuditDir(join(blocker, 'audit')).ok, true);
  });

  it('a disk that fills up mid-run (real ENOSPC on a 64 KiB tmpfs): alarm, writes refused, recovery audited with the lost count', function () {
    if (process.getuid?.() !== 0) this.skip(); // mounting a tmpfs needs root
    const mount = join(dir, 'small');
    execFileSync('mkdir', ['-p', mount]);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]);
    } catch {
      this.skip();
    }
    try {
      const time = fakeTime();
      const audit = new AuditLog({ dir: join(mount, 'audit'), maxFileBytes: 1024 * 1024, ...time });
      const alarms: string[] = [];
      const recovered: number[] = [];
      audit.on('alarm', (r) => alarms.push(r));
      audit.on('recovered', (n) => recovered.push(n));
      const { write } = controllers(audit);
      writeFileSync(join(mount, 'ballast'), Buffer.alloc(60 * 1024));
      for (let i = 0; i < 200 && audit.writable; i++) audit.record({ source: 'test', category: 'audit', type: 'filler', result: 'ok', pad: 'x'.repeat(200) });
      assert.equal(audit.writable, false);
      assert.match(alarms[0] ?? '', /ENOSPC|disk full/);
      assert.equal(write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES }).result, 'deny');
      unlinkSync(join(mount, 'ballast'));
      time.t.mono += 5_000;
      assert.equal(write.decide({ topic: ASSET, payload: { speedSetpoint: 10 }, principal: MES }).result, 'allow');
      assert.equal(recovered.length, 1);
      audit.close();
      assert.ok(verifyAuditDir(join(mount, 'audit')).ok, 'the chain survives the outage');
    } finally {
      execFileSync('umount', [mount]);
    }
  });
});
