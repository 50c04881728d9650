/**
 * `uns-edge audit verify <dir>`: checks the hash chain of a conduit audit folder (lib/zones/audit-log.ts)
 * and names every changed, removed or reordered record (SR 3.9). What it cannot see: an attacker who
 * rewrites the whole tail of the chain consistently. Against that, anchor the printed head hash
 * outside the gateway (SIEM, SR 2.8 RE1) or keep the folder on write-once media (SR 3.9 RE1).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditFiles, GENESIS_HASH, recordHash, type AuditRecord } from './audit-log';

export interface VerifyFinding {
  file: string;
  line: number;
  seq?: number;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  files: string[];
  records: number;
  findings: VerifyFinding[];
  head?: { seq: number; hash: string };
}

interface Located {
  file: string;
  line: number;
  record: AuditRecord;
  intact: boolean;
}

const MAX_LISTED_GAP = 10;

export function verifyAuditDir(dir: string): VerifyReport {
  const findings: VerifyFinding[] = [];
  const files = auditFiles(dir).map((f) => f.name);
  const located: Located[] = [];
  for (const file of files) {
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    lines.forEach((text, i) => {
      let record: AuditRecord;
      try {
        record = JSON.parse(text) as AuditRecord;
      } catch {
        findings.push({ file, line: i + 1, problem: 'not a JSON record (changed or truncated)' });
        return;
      }
      if (!Number.isInteger(record.seq) || typeof record.prev !== 'string' || typeof record.hash !== 'string') {
        findings.push({ file, line: i + 1, problem: 'not an audit record (no seq, prev or hash)' });
        return;
      }
      const intact = recordHash(record) === record.hash;
      if (!intact) findings.push({ file, line: i + 1, seq: record.seq, problem: `record seq ${record.seq} changed: its content does not match its hash` });
      located.push({ file, line: i + 1, record, intact });
    });
  }

  const where = new Map<number, Located>();
  for (const l of located) if (!where.has(l.record.seq)) where.set(l.record.seq, l);
  // Pruning by the log itself (capacity reached) is announced by a record that names what went.
  const pruned = located.filter((l) => l.record.type === 'pruned' && typeof l.record.upToSeq === 'number');
  const prunedUpTo = Math.max(0, ...pruned.map((l) => l.record.upToSeq as number));

  let expected = 1;
  let prevHash = GENESIS_HASH;
  let previous: Located | undefined;
  for (const l of located) {
    const { seq } = l.record;
    if (previous === undefined && seq > 1) {
      const announced = pruned.find((p) => p.record.upToSeq === seq - 1);
      if (announced) {
        expected = seq;
        prevHash = String(announced.record.lastHash);
      } else {
        findings.push({ file: l.file, line: l.line, seq, problem: `records seq 1…${seq - 1} are missing before the first record (removed without a pruning record${prunedUpTo ? `; pruning covers up to seq ${prunedUpTo}` : ''})` });
        expected = seq;
        prevHash = l.record.prev;
      }
    }
    if (seq > expected) {
      const missing: number[] = [];
      for (let s = expected; s < seq; s++) missing.push(s);
      const moved = missing.filter((s) => where.get(s) !== undefined && where.get(s) !== l);
      const removed = missing.filter((s) => where.get(s) === undefined);
      for (const s of moved.slice(0, MAX_LISTED_GAP)) {
        const at = where.get(s) as Located;
        findings.push({ file: at.file, line: at.line, seq: s, problem: `record seq ${s} reordered: found at ${at.file}:${at.line}, after seq ${seq}` });
      }
      if (removed.length > 0) {
        const list = removed.length <= MAX_LISTED_GAP ? removed.join(', ') : `${removed[0]}…${removed.at(-1)} (${removed.length} records)`;
        findings.push({ file: l.file, line: l.line, seq, problem: `record${removed.length > 1 ? 's' : ''} seq ${list} removed: missing before seq ${seq}` });
      }
    } else if (seq < expected) {
      if (where.get(seq) !== l) findings.push({ file: l.file, line: l.line, seq, problem: `record seq ${seq} appears twice (duplicate or replayed record)` });
      // A reordered record was already named when the gap before it was found.
      continue;
    } else if (l.record.prev !== prevHash && previous?.intact !== false) {
      const before = previous ? `record seq ${seq - 1} (${previous.file}:${previous.line})` : 'the chain start';
      findings.push({ file: l.file, line: l.line, seq, problem: `chain broken at seq ${seq}: ${before} was changed or replaced (its hash is not the prev of seq ${seq})` });
    }
    expected = seq + 1;
    prevHash = l.record.hash;
    previous = l;
  }
  const last = previous?.record;
  return { ok: findings.length === 0, files, records: located.length, findings, head: last ? { seq: last.seq, hash: last.hash } : undefined };
}

/**
 * The CLI entry: `uns-edge audit verify <dir>`. Prints one line per finding and a summary with the
 * head hash; returns the exit code (0 intact, 1 findings, 2 usage or unreadable folder).
 */
export function auditVerifyMain(args: readonly string[], out: (line: string) => void, err: (line: string) => void): number {
  const dir = args[0];
  if (!dir || args.length !== 1) {
    err('usage: uns-edge audit verify <audit folder>');
    return 2;
  }
  let report: VerifyReport;
  try {
    report = verifyAuditDir(dir);
  } catch (error) {
    err(`audit verify: cannot read ${dir}: ${(error as Error).message}`);
    return 2;
  }
  if (report.files.length === 0) {
    err(`audit verify: no audit files (audit-NNNNNN.jsonl) in ${dir}`);
    return 2;
  }
  for (const f of report.findings) out(`${f.file}:${f.line}: ${f.problem}`);
  const head = report.head ? `; head seq ${report.head.seq} hash ${report.head.hash}` : '';
  out(`${report.ok ? 'OK' : 'FAILED'}: ${report.records} records in ${report.files.length} files, ${report.findings.length} findings${head}`);
  return report.ok ? 0 : 1;
}
