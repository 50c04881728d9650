/**
 * The conduit audit trail (SR 2.8 auditable events, SR 2.9 storage capacity, SR 2.10 response to
 * audit failures, SR 3.9 protection of audit information): append-only JSONL files in one folder,
 * every record hash-chained to the one before it, across file rotations (docs/zones.md § "Audit").
 *
 * Record: `{seq, time, source, category, type, ruleId, principal, result, …, prev, hash}` where
 * `hash = SHA-256(prev + "\n" + canonical JSON of the record without hash)` and `prev` is the hash
 * of the previous record (64 zeros for the first one ever). `seq` counts from 1 without gaps, so
 * `audit-verify.ts` can name a removed or reordered record.
 *
 * Files `audit-000001.jsonl`, `audit-000002.jsonl`, …: a new file starts when the current one would
 * pass `maxFileBytes`. Capacity is `maxFiles` files. When full: `prune` (default) removes the
 * oldest file and writes a `pruned` record naming it, its last seq and last hash (so verification
 * tells pruning from tampering); `stop` refuses further records (the store is then failed).
 *
 * Flood aggregation (SR 2.9): decisions are recorded through `decision()`, keyed by source, type,
 * result, rule and principal. The first event of a key in a one-second window is written in full;
 * the rest of that window are counted and written as one `summary` record when the window ends.
 *
 * Failure (T-POL-03): a write that fails (unwritable folder, disk full, capacity reached with
 * `stop`) puts the store in the failed state: `writable` is false (the conduit then refuses writes
 * and commands, reads continue), the `alarm` event fires once, lost records are counted. RETRY_MS
 * after a failure the store tries again by itself (a timer: traffic may have stopped, e.g. in island
 * mode), and so does a record written after that; on success an `audit-recovered` record says how
 * many were lost and `recovered` fires, so the records waiting for the store are written right after it.
 * The file written to is checked before every record: one removed, renamed or replaced (e.g. by a
 * directory) is a failure, not records appended to an inode no one can read any more.
 *
 * Records are written with synchronous appends on an open descriptor (ordered, errors seen at once);
 * they are not fsync'ed one by one: a power cut can lose the last few, which verification shows as a
 * truncated tail, never as a silent gap.
 */
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, fstatSync, lstatSync, type Stats, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from './canonical';

export const GENESIS_HASH = '0'.repeat(64);
export const AUDIT_FILE = /^audit-(\d{6})\.jsonl$/;
const RETRY_MS = 5_000;
const AGGREGATION_WINDOW_MS = 1_000;
/** Distinct aggregation keys per window; past it, events of new keys share one overflow key per source. */
const MAX_AGGREGATION_KEYS = 10_000;

export type AuditCategory = 'access-control' | 'config-change' | 'island' | 'engine-error' | 'audit' | 'clock';

export interface AuditEvent {
  source: string;
  category: AuditCategory;
  type: string;
  ruleId?: string | null;
  principal?: string | null;
  result: string;
  [field: string]: unknown;
}

export interface AuditRecord extends AuditEvent {
  seq: number;
  time: string;
  prev: string;
  hash: string;
}

export interface AuditLogOptions {
  dir: string;
  maxFileBytes?: number;
  maxFiles?: number;
  whenFull?: 'prune' | 'stop';
  /** Warn once when the store passes this fill level, % (SR 2.9 RE1). */
  warnAtPercent?: number;
  wallMs?: () => number;
  monotonicMs?: () => number;
}

export interface AuditLogEvents {
  alarm: [reason: string];
  recovered: [lost: number];
  warning: [percent: number];
}

export function auditFileName(index: number): string {
  return `audit-${String(index).padStart(6, '0')}.jsonl`;
}

/** The hash a record must carry: over prev and the canonical record without its hash. */
export function recordHash(record: { prev: string; hash?: unknown; [field: string]: unknown }): string {
  const { hash: _omit, ...rest } = record;
  return sha256Hex(`${record.prev}\n${canonicalJson(rest)}`);
}

/** Audit files of a folder, oldest first. */
export function auditFiles(dir: string): Array<{ name: string; index: number }> {
  return readdirSync(dir)
    .map((name) => ({ name, match: AUDIT_FILE.exec(name) }))
    .filter((f): f is { name: string; match: RegExpExecArray } => f.match !== null)
    .map((f) => ({ name: f.name, index: Number(f.match[1]) }))
    .sort((a, b) => a.index - b.index);
}

interface Pending {
  event: AuditEvent;
  count: number;
  first: number;
  last: number;
}

export class AuditLog extends EventEmitter<AuditLogEvents> {
  readonly maxFileBytes: number;
  readonly maxFiles: number;
  private readonly whenFull: 'prune' | 'stop';
  private readonly warnAt: number;
  private readonly wallMs: () => number;
  private readonly monotonicMs: () => number;
  private fd: number | undefined;
  /** Device and inode of the file `fd` appends to, to see it removed or replaced under us. */
  private fileIdentity: { dev: number; ino: number } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private fileIndex = 1;
  private fileBytes = 0;
  private seq = 0;
  private lastHash = GENESIS_HASH;
  private failedAt: number | undefined;
  private failure: string | undefined;
  private warned = false;
  private windowStart = -Infinity;
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  /** Records that could not be written since the store failed. */
  lost = 0;
  /** Records written by this instance. */
  written = 0;

  constructor(private readonly options: AuditLogOptions) {
    super();
    this.maxFileBytes = options.maxFileBytes ?? 10 * 1024 * 1024;
    this.maxFiles = options.maxFiles ?? 10;
    this.whenFull = options.whenFull ?? 'prune';
    this.warnAt = options.warnAtPercent ?? 80;
    this.wallMs = options.wallMs ?? Date.now;
    this.monotonicMs = options.monotonicMs ?? (() => performance.now());
    if (!(this.maxFileBytes >= 1024)) throw new RangeError(`audit maxFileBytes must be ≥ 1024, got ${this.maxFileBytes}`);
    if (!(Number.isInteger(this.maxFiles) && this.maxFiles >= 2)) throw new RangeError(`audit maxFiles must be an integer ≥ 2, got ${this.maxFiles}`);
    try {
      this.open();
    } catch (error) {
      this.fail(`audit store ${options.dir} cannot be opened: ${(error as Error).message}`);
    }
  }

  /** False while the store is failed: the conduit refuses writes and commands (T-POL-03). */
  get writable(): boolean {
    return this.failure === undefined;
  }

  get failureReason(): string | undefined {
    return this.failure;
  }

  /** The newest record of this trail that `match` accepts (see findLastRecord). */
  findLast(contains: string, match: (record: AuditRecord) => boolean): AuditRecord | undefined {
    return findLastRecord(this.options.dir, contains, match);
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.lastHash };
  }

  /** Bytes in the audit files / capacity (maxFiles × maxFileBytes), 0…1. */
  fillLevel(): number {
    try {
      const used = auditFiles(this.options.dir).reduce((sum, f) => sum + statSync(join(this.options.dir, f.name)).size, 0);
      return Math.min(1, used / (this.maxFiles * this.maxFileBytes));
    } catch {
      return 1;
    }
  }

  /** Writes one event now (policy changes, island switches, errors). False when the store has failed. */
  record(event: AuditEvent): boolean {
    if (!this.retryIfDue()) {
      this.lost++;
      return false;
    }
    try {
      this.writeRecord(event);
      return true;
    } catch (error) {
      this.lost++;
      this.fail(this.reasonOf(error));
      return false;
    }
  }

  /** True when the store works; when it has failed and its retry time has come, tries it again first. */
  retryIfDue(): boolean {
    return this.failure === undefined || (this.retryDue() && this.recover());
  }

  /** A decision: written in full the first time its key is seen in a window, counted after that. */
  decision(event: AuditEvent): boolean {
    // While failed nothing is aggregated: each event is an attempt (a retry when due) or a loss.
    if (this.failure !== undefined) return this.record(event);
    const now = this.monotonicMs();
    if (now - this.windowStart >= AGGREGATION_WINDOW_MS) this.flushSummaries(now);
    let key = `${event.source}\u0000${event.type}\u0000${event.result}\u0000${event.ruleId ?? ''}\u0000${event.principal ?? ''}`;
    if (!this.pending.has(key) && this.pending.size >= MAX_AGGREGATION_KEYS) key = `${event.source}\u0000overflow`;
    const pending = this.pending.get(key);
    if (pending) {
      pending.count++;
      pending.last = this.wallMs();
      return this.writable;
    }
    this.pending.set(key, { event, count: 0, first: this.wallMs(), last: this.wallMs() });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flushSummaries(this.monotonicMs());
    }, AGGREGATION_WINDOW_MS).unref();
    return this.record(event);
  }

  /** Writes the summaries of the window that ended and starts a new one. */
  flushSummaries(now = this.monotonicMs()): void {
    this.windowStart = now;
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const p of pending.values()) {
      if (p.count === 0) continue;
      const { source, category, type, ruleId, principal, result } = p.event;
      this.record({ source, category, type: 'summary', summarizes: type, ruleId, principal, result, count: p.count, from: new Date(p.first).toISOString(), to: new Date(p.last).toISOString() });
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.flushSummaries();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.removeAllListeners();
  }

  // ------------------------------------------------------------------------------ internals

  private retryDue(): boolean {
    return this.failedAt !== undefined && this.monotonicMs() - this.failedAt >= RETRY_MS;
  }

  private fail(reason: string): void {
    const first = this.failure === undefined;
    this.failure = reason;
    this.failedAt = this.monotonicMs();
    if (this.fd !== undefined) {
      try { closeSync(this.fd); } catch { /* already unusable */ }
      this.fd = undefined;
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.recover();
    }, RETRY_MS).unref();
    if (first) this.emit('alarm', reason);
  }

  /**
   * Tries the failed store again: reopens it and writes `audit-recovered` with the lost count, then
   * `recovered` fires (its listeners write what waited for the store). False while it still fails.
   */
  private recover(): boolean {
    if (this.failure === undefined) return true;
    try {
      if (this.fd === undefined) this.open();
      this.writeRecord({ source: 'audit', category: 'audit', type: 'audit-recovered', result: 'ok', lost: this.lost });
    } catch (error) {
      this.fail(this.reasonOf(error));
      return false;
    }
    const lost = this.lost;
    this.lost = 0;
    this.failure = undefined;
    this.failedAt = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.emit('recovered', lost);
    // A listener's record may have failed the store again.
    return this.failure === undefined;
  }

  private reasonOf(error: unknown): string {
    const message = (error as Error).message;
    return message.startsWith('audit store') ? message : `audit store ${this.options.dir} not writable: ${message}`;
  }

  /** Resumes the chain from the last record of the newest file, or starts it. */
  private open(): void {
    const dir = this.options.dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = auditFiles(dir);
    const newest = files.at(-1);
    for (const f of files) if (!lstatSync(join(dir, f.name)).isFile()) throw new Error(`audit store ${dir}: ${f.name} is not a regular file`);
    if (newest) {
      this.fileIndex = newest.index;
      const path = join(dir, newest.name);
      let content = readFileSync(path, 'utf8');
      if (content !== '' && !content.endsWith('\n')) {
        // A record cut short by a full disk or a crash was never written (it was counted as lost):
        // cut it off, so the chain goes on from the last complete record.
        content = content.slice(0, content.lastIndexOf('\n') + 1);
        truncateSync(path, Buffer.byteLength(content));
      }
      const lines = content.split('\n').filter((l) => l.trim() !== '');
      const last = lines.at(-1);
      if (last) {
        const record = JSON.parse(last) as AuditRecord;
        if (!Number.isInteger(record.seq) || typeof record.hash !== 'string') throw new Error(`last record of ${newest.name} has no seq/hash`);
        this.seq = record.seq;
        this.lastHash = record.hash;
      } else if (files.length > 1) {
        const before = readFileSync(join(dir, files[files.length - 2].name), 'utf8').trim().split('\n').at(-1) ?? '';
        const record = JSON.parse(before) as AuditRecord;
        this.seq = record.seq;
        this.lastHash = record.hash;
      }
    }
    this.fd = this.openFile(auditFileName(this.fileIndex));
    this.fileBytes = fstatSync(this.fd).size;
  }

  /** Opens an audit file for appending; refuses anything but a regular file (a symlink planted in the folder). */
  private openFile(name: string): number {
    const path = join(this.options.dir, name);
    if (existsSync(path) && !lstatSync(path).isFile()) throw new Error(`audit store ${this.options.dir}: ${name} is not a regular file`);
    const fd = openSync(path, 'a', 0o600);
    const { dev, ino } = fstatSync(fd);
    this.fileIdentity = { dev, ino };
    return fd;
  }

  /** Throws when the current file is no longer the one at its path (removed, renamed, replaced). */
  private checkFile(): void {
    const name = auditFileName(this.fileIndex);
    let now: Stats | undefined;
    try {
      now = lstatSync(join(this.options.dir, name));
    } catch {
      now = undefined;
    }
    const was = this.fileIdentity;
    if (!now?.isFile() || now.dev !== was?.dev || now.ino !== was.ino) throw new Error(`audit store ${this.options.dir}: ${name} was removed or replaced while open`);
  }

  private line(event: AuditEvent): { text: string; seq: number; hash: string } {
    const seq = this.seq + 1;
    const body = { ...event, seq, time: new Date(this.wallMs()).toISOString(), prev: this.lastHash };
    const hash = recordHash(body);
    return { text: `${JSON.stringify({ ...body, hash })}\n`, seq, hash };
  }

  private writeRecord(event: AuditEvent): void {
    this.checkFile();
    let line = this.line(event);
    if (this.fileBytes > 0 && this.fileBytes + Buffer.byteLength(line.text) > this.maxFileBytes) {
      this.rotate();
      line = this.line(event); // after a pruned record the chain head moved
    }
    const bytes = Buffer.from(line.text);
    const written = writeSync(this.fd as number, bytes);
    if (written !== bytes.length) throw new Error(`short write (${written} of ${bytes.length} bytes): disk full?`);
    this.fileBytes += bytes.length;
    this.seq = line.seq;
    this.lastHash = line.hash;
    this.written++;
    this.checkFill();
  }

  private rotate(): void {
    const files = auditFiles(this.options.dir);
    if (files.length >= this.maxFiles && this.whenFull === 'stop') throw new Error(`audit store ${this.options.dir} is full (${this.maxFiles} files of ${this.maxFileBytes} bytes)`);
    closeSync(this.fd as number);
    this.fd = undefined;
    this.fileIndex++;
    this.fd = this.openFile(auditFileName(this.fileIndex));
    this.fileBytes = 0;
    if (files.length + 1 > this.maxFiles) {
      const oldest = files[0];
      const path = join(this.options.dir, oldest.name);
      const last = JSON.parse(readFileSync(path, 'utf8').trim().split('\n').at(-1) ?? '{}') as Partial<AuditRecord>;
      unlinkSync(path);
      this.writeRecord({ source: 'audit', category: 'audit', type: 'pruned', result: 'ok', file: oldest.name, upToSeq: last.seq ?? null, lastHash: last.hash ?? null });
    }
  }

  private checkFill(): void {
    if (this.warned || this.written % 64 !== 1) return;
    const percent = this.fillLevel() * 100;
    if (percent >= this.warnAt) {
      this.warned = true;
      this.emit('warning', percent);
    }
  }
}

/**
 * The newest record of the trail in `dir` that `match` accepts, searching files newest first; only
 * lines containing `contains` are parsed. Undefined when none does or the folder does not exist;
 * throws when the trail cannot be read (the caller decides what fail closed means).
 */
export function findLastRecord(dir: string, contains: string, match: (record: AuditRecord) => boolean): AuditRecord | undefined {
  let files: Array<{ name: string }>;
  try {
    files = auditFiles(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  for (const file of files.reverse()) {
    const lines = readFileSync(join(dir, file.name), 'utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      if (!lines[i].includes(contains)) continue;
      let record: AuditRecord;
      try {
        record = JSON.parse(lines[i]) as AuditRecord;
      } catch {
        continue; // a record cut short: verification names it
      }
      if (match(record)) return record;
    }
  }
  return undefined;
}

/** Whether `dir` holds an audit trail (for the CLI's error message). */
export function isAuditDir(dir: string): boolean {
  return existsSync(dir) && auditFiles(dir).length > 0;
}
