/**
 * A bounded, persistent FIFO of MQTT publishes: the "store" of store-and-forward
 * (docs/store-and-forward.md states the design, limits, overflow and fsync policy).
 *
 * Layout of the directory:
 *   seg-0000000000000001.log …   append-only segment files of framed records (lib/store/record.ts)
 *   cursor.json                   {"segment":n,"offset":o}: the first record not yet acknowledged
 *
 * - append() frames a record and writes it to the OS (writeSync) in the same event-loop turn
 *   (batched per microtask), so a process crash loses nothing that append() accepted; fsync runs
 *   at most `fsyncIntervalMs` after a write, so a power loss loses at most that window.
 * - readNext() hands out records in order from the read position; ack() moves the persisted
 *   cursor over the contiguous acknowledged prefix; rewind() restarts reading at the cursor
 *   (after a connection loss: at-least-once, duplicates possible, never a gap).
 * - Limits: `maxBytes` (drop-oldest segment, counted, one warning per overflow episode) and
 *   `maxAgeMs` (expired records are dropped, counted, when read and when whole segments age out).
 * - On open the segments are scanned; damaged or truncated records are skipped with one warning
 *   per segment, and a torn tail of the newest segment is cut off.
 */
import {
  closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync,
  renameSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  HEADER_BYTES, QoS, StoredPublish, decodeRecord, encodeRecord, nextValidRecord, recordTime, validRecordLength,
} from './record';

export interface DiskQueueOptions {
  dir: string;
  /** Upper bound of queued bytes on disk (records not yet acknowledged). Default 100 MB. */
  maxBytes?: number;
  /** Records older than this are dropped. Default 7 days. */
  maxAgeMs?: number;
  /** Longest time written data may sit un-fsynced. Default 1000 ms. */
  fsyncIntervalMs?: number;
  /** Segment file size before rolling to a new one. Default maxBytes / 8, within 4 KiB…16 MiB. */
  segmentBytes?: number;
  /** Warnings for the operator (corruption, overflow); one call per event, not per record. */
  warn?: (message: string) => void;
  /** Records dropped, by reason, for metrics. */
  dropped?: (reason: DropReason, count: number) => void;
}

export type DropReason = 'overflow' | 'expired' | 'corrupt';

export interface QueuedRecord extends StoredPublish {
  /** Sequence number in this process, for ack(). */
  seq: number;
}

interface Segment {
  id: number;
  path: string;
  /** File size in bytes. */
  bytes: number;
  /** Records and bytes in this segment not acknowledged yet. */
  pendingRecords: number;
  pendingBytes: number;
  /** Enqueue time of the newest record. */
  lastTime: number;
  warnedCorrupt: boolean;
}

interface InFlight {
  seq: number;
  segment: Segment;
  end: number;
  bytes: number;
  acked: boolean;
}

const CURSOR_FILE = 'cursor.json';
const SEGMENT_NAME = /^seg-(\d{16})\.log$/;
const READ_CHUNK_BYTES = 256 * 1024;
const CURSOR_PERSIST_INTERVAL_MS = 1000;

export const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;
export const DEFAULT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export class DiskQueue {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  private readonly fsyncIntervalMs: number;
  private readonly segmentBytes: number;
  private readonly warn: (message: string) => void;
  private readonly dropped: (reason: DropReason, count: number) => void;

  private segments: Segment[] = [];
  private nextSegmentId = 1;
  private writeSegment: Segment | undefined;
  private writeFd: number | undefined;
  private pendingWrites: Buffer[] = [];
  private pendingWriteBytes = 0;
  private pendingRecords = 0;
  private flushScheduled = false;
  private readonly flushBound = (): void => this.flush();
  private fsyncTimer: NodeJS.Timeout | undefined;

  /** First record not acknowledged. */
  private cursor: { segment: number; offset: number };
  private cursorPersistedAt = 0;
  private cursorDirty = false;
  /** Next record to hand out. */
  private readSegment: Segment | undefined;
  private readOffset = 0;
  private chunk: { segment: Segment; start: number; data: Buffer } | undefined;
  private inFlight: InFlight[] = [];
  private nextSeq = 1;

  private totalRecords = 0;
  private totalBytes = 0;
  private overflowing = false;
  private closed = false;

  constructor(options: DiskQueueOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1000;
    this.segmentBytes = options.segmentBytes ?? Math.min(16 * 1024 * 1024, Math.max(4096, Math.floor(this.maxBytes / 8)));
    this.warn = options.warn ?? (() => undefined);
    this.dropped = options.dropped ?? (() => undefined);
    if (!(this.maxBytes > 0)) throw new Error(`store max bytes must be > 0, got ${this.maxBytes}`);
    if (!(this.maxAgeMs > 0)) throw new Error(`store max age must be > 0, got ${this.maxAgeMs}`);
    mkdirSync(this.dir, { recursive: true });
    this.cursor = this.readCursor();
    this.recover();
  }

  /** Records queued and not acknowledged (including those in flight). */
  get count(): number {
    return this.totalRecords;
  }

  /** Bytes of those records, framing included. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Queue one publish. Written to the OS before the current event-loop turn ends. */
  append(topic: string, payload: string | Buffer, qos: QoS, retain: boolean, now = Date.now()): void {
    if (this.closed) throw new Error('store is closed');
    const record = encodeRecord(topic, payload, qos, retain, now);
    if (record.length > this.maxBytes) {
      this.warn(`store: a ${record.length}-byte message to "${topic}" is larger than the whole store (${this.maxBytes} bytes); dropped`);
      this.dropped('overflow', 1);
      return;
    }
    this.pendingWrites.push(record);
    this.pendingWriteBytes += record.length;
    this.pendingRecords++;
    this.totalRecords++;
    this.totalBytes += record.length;
    if (this.totalBytes > this.maxBytes) {
      this.flush();
      this.dropOldestUntilWithinLimit();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushBound);
    }
  }

  /** Write appended records to the segment file now (normally done once per event-loop turn). */
  flush(): void {
    this.flushScheduled = false;
    if (this.pendingWrites.length === 0 || this.closed) return;
    const records = this.pendingWrites;
    const now = Date.now();
    this.pendingWrites = [];
    this.pendingWriteBytes = 0;
    this.pendingRecords = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for (const record of records) {
      const segment = this.writeSegment;
      if (segment === undefined || (segment.bytes + batchBytes > 0 && segment.bytes + batchBytes + record.length > this.segmentBytes)) {
        this.writeBatch(batch, batchBytes);
        batch = [];
        batchBytes = 0;
        this.rollSegment();
      }
      batch.push(record);
      batchBytes += record.length;
      const target = this.writeSegment as Segment;
      target.pendingRecords++;
      target.pendingBytes += record.length;
      target.lastTime = Math.max(target.lastTime, recordTime(record, 0));
    }
    this.writeBatch(batch, batchBytes);
    if (this.fsyncTimer === undefined) {
      this.fsyncTimer = setTimeout(() => this.fsyncNow(), this.fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
    this.dropExpiredSegments(now);
  }

  /**
   * Up to `max` records in order from the read position. Expired records are skipped (dropped,
   * counted). Each returned record must be ack()ed once the broker has it, or rewind() called.
   */
  readNext(max: number, now = Date.now()): QueuedRecord[] {
    this.flush();
    const result: QueuedRecord[] = [];
    const oldestAllowed = now - this.maxAgeMs;
    let expired = 0;
    while (result.length < max) {
      const segment = this.readSegment;
      if (segment === undefined) break;
      if (this.readOffset >= segment.bytes) {
        if (segment === this.writeSegment) break;
        this.readSegment = this.segmentAfter(segment);
        this.readOffset = 0;
        continue;
      }
      const { data, start } = this.chunkAt(segment, this.readOffset);
      const at = this.readOffset - start;
      const length = validRecordLength(data, at, data.length);
      if (length === 0) {
        this.skipDamaged(segment);
        continue;
      }
      const entry: InFlight = { seq: this.nextSeq++, segment, end: this.readOffset + length, bytes: length, acked: false };
      this.inFlight.push(entry);
      this.readOffset += length;
      if (recordTime(data, at) < oldestAllowed) {
        expired++;
        entry.acked = true;
        continue;
      }
      const record = decodeRecord(data, at, length) as QueuedRecord;
      record.seq = entry.seq;
      result.push(record);
    }
    if (expired > 0) {
      this.dropped('expired', expired);
      this.advanceCursor();
    }
    return result;
  }

  /** The broker has the record `seq`: it will not be handed out again (unless a crash loses the cursor). */
  ack(seq: number): void {
    const inFlight = this.inFlight;
    for (let i = 0; i < inFlight.length; i++) {
      if (inFlight[i].seq === seq) {
        inFlight[i].acked = true;
        if (i === 0) this.advanceCursor();
        return;
      }
    }
  }

  /** Hand out every unacknowledged record again, from the cursor (after a connection loss). */
  rewind(): void {
    this.inFlight = [];
    this.readSegment = this.segments.find((s) => s.id === this.cursor.segment) ?? this.segments[0];
    this.readOffset = this.readSegment?.id === this.cursor.segment ? this.cursor.offset : 0;
  }

  /** Whether readNext() would return something now (records exist past the read position). */
  get hasUnread(): boolean {
    if (this.pendingRecords > 0) return true;
    const segment = this.readSegment;
    if (segment === undefined) return false;
    return this.readOffset < segment.bytes || segment !== this.segments[this.segments.length - 1];
  }

  /** Flush, fsync, persist the cursor and release the files. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.fsyncTimer !== undefined) clearTimeout(this.fsyncTimer);
    this.fsyncTimer = undefined;
    this.closeWriteFd(true);
    this.persistCursor(true);
    this.chunk = undefined;
  }

  // ---- writing ----

  private writeBatch(batch: Buffer[], batchBytes: number): void {
    if (batchBytes === 0 || this.writeFd === undefined || this.writeSegment === undefined) return;
    const data = batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes);
    let written = 0;
    while (written < data.length) written += writeSync(this.writeFd, data, written, data.length - written, this.writeSegment.bytes + written);
    this.writeSegment.bytes += data.length;
  }

  private rollSegment(): void {
    this.closeWriteFd(true);
    const id = this.nextSegmentId++;
    const path = join(this.dir, segmentName(id));
    this.writeFd = openSync(path, 'w+');
    const segment: Segment = { id, path, bytes: 0, pendingRecords: 0, pendingBytes: 0, lastTime: 0, warnedCorrupt: false };
    this.segments.push(segment);
    this.writeSegment = segment;
    if (this.readSegment === undefined) {
      this.readSegment = segment;
      this.readOffset = 0;
    }
    if (this.segments.length === 1) this.setCursor(id, 0);
  }

  private closeWriteFd(sync: boolean): void {
    if (this.writeFd === undefined) return;
    if (sync) fsyncSync(this.writeFd);
    closeSync(this.writeFd);
    this.writeFd = undefined;
    this.writeSegment = undefined;
  }

  private fsyncNow(): void {
    this.fsyncTimer = undefined;
    if (this.writeFd !== undefined) fsyncSync(this.writeFd);
    this.persistCursor(false);
  }

  // ---- limits ----

  private dropOldestUntilWithinLimit(): void {
    let dropped = 0;
    while (this.totalBytes > this.maxBytes && this.segments.length > 0) dropped += this.dropSegment(this.segments[0]);
    if (dropped === 0) return;
    this.dropped('overflow', dropped);
    if (!this.overflowing) {
      this.overflowing = true;
      this.warn(`store full (${this.maxBytes} bytes in ${this.dir}): dropping the oldest messages (drop-oldest policy); further drops are only counted until the store has drained`);
    }
  }

  private dropExpiredSegments(now: number): void {
    let dropped = 0;
    while (this.segments.length > 1 && this.segments[0].lastTime < now - this.maxAgeMs) dropped += this.dropSegment(this.segments[0]);
    if (dropped > 0) this.dropped('expired', dropped);
  }

  /** Delete a whole segment with its unacknowledged records; returns how many were dropped. */
  private dropSegment(segment: Segment): number {
    if (segment === this.writeSegment) this.closeWriteFd(false);
    this.segments.splice(this.segments.indexOf(segment), 1);
    unlinkIfPresent(segment.path);
    this.totalRecords -= segment.pendingRecords;
    this.totalBytes -= segment.pendingBytes;
    this.inFlight = this.inFlight.filter((entry) => entry.segment !== segment);
    if (this.chunk?.segment === segment) this.chunk = undefined;
    const next = this.segments[0];
    if (this.readSegment === segment) {
      this.readSegment = next;
      this.readOffset = 0;
    }
    if (this.cursor.segment <= segment.id) this.setCursor(next?.id ?? this.nextSegmentId, 0);
    this.advanceCursor();
    return segment.pendingRecords;
  }

  // ---- reading ----

  private segmentAfter(segment: Segment): Segment | undefined {
    const index = this.segments.indexOf(segment);
    return this.segments[index + 1];
  }

  /** A buffer holding at least one whole record at `offset` (if the file has one there). */
  private chunkAt(segment: Segment, offset: number): { data: Buffer; start: number } {
    const cached = this.chunk;
    if (cached !== undefined && cached.segment === segment && offset >= cached.start) {
      const at = offset - cached.start;
      if (at + HEADER_BYTES <= cached.data.length && at + HEADER_BYTES + cached.data.readUInt32BE(at + 2) <= cached.data.length) return cached;
    }
    const fd = segment === this.writeSegment && this.writeFd !== undefined ? this.writeFd : openSync(segment.path, 'r');
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      readSync(fd, header, 0, HEADER_BYTES, offset);
      const wanted = Math.max(READ_CHUNK_BYTES, HEADER_BYTES + header.readUInt32BE(2));
      const size = Math.min(wanted, segment.bytes - offset);
      const data = Buffer.allocUnsafe(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, data, read, size - read, offset + read);
        if (n === 0) break;
        read += n;
      }
      this.chunk = { segment, start: offset, data: data.subarray(0, read) };
      return this.chunk;
    } finally {
      if (fd !== this.writeFd) closeSync(fd);
    }
  }

  /** Step the read position over a damaged region to the next valid record (or the segment end). */
  private skipDamaged(segment: Segment): void {
    const whole = readFileSync(segment.path);
    const next = nextValidRecord(whole, this.readOffset + 1, Math.min(whole.length, segment.bytes));
    if (!segment.warnedCorrupt) {
      segment.warnedCorrupt = true;
      this.warn(`store: damaged data in ${segment.path} at byte ${this.readOffset}; skipped ${next - this.readOffset} bytes`);
      this.dropped('corrupt', 1);
    }
    this.readOffset = next;
    this.chunk = undefined;
  }

  // ---- cursor ----

  private advanceCursor(): void {
    const inFlight = this.inFlight;
    let done = 0;
    while (done < inFlight.length && inFlight[done].acked) {
      const entry = inFlight[done++];
      entry.segment.pendingRecords--;
      entry.segment.pendingBytes -= entry.bytes;
      this.totalRecords--;
      this.totalBytes -= entry.bytes;
      this.setCursor(entry.segment.id, entry.end);
    }
    if (done === 0) return;
    inFlight.splice(0, done);
    this.deleteConsumedSegments();
    if (this.totalRecords === 0) this.overflowing = false;
    this.persistCursor(false);
  }

  private deleteConsumedSegments(): void {
    for (;;) {
      const first = this.segments[0];
      if (first === undefined) return;
      const consumed = first.id < this.cursor.segment || (first.id === this.cursor.segment && this.cursor.offset >= first.bytes);
      if (!consumed || (first === this.writeSegment && this.totalRecords > 0)) return;
      if (first === this.writeSegment) this.closeWriteFd(false);
      this.segments.shift();
      unlinkIfPresent(first.path);
      if (this.chunk?.segment === first) this.chunk = undefined;
      if (this.readSegment === first) {
        this.readSegment = this.segments[0];
        this.readOffset = 0;
      }
      this.setCursor(this.segments[0]?.id ?? this.nextSegmentId, 0);
      this.cursorPersistedAt = 0;
    }
  }

  private setCursor(segment: number, offset: number): void {
    this.cursor = { segment, offset };
    this.cursorDirty = true;
  }

  /** Write cursor.json (atomically: temp file + rename), at most once a second unless forced. */
  private persistCursor(force: boolean): void {
    if (!this.cursorDirty) return;
    const now = Date.now();
    if (!force && now - this.cursorPersistedAt < CURSOR_PERSIST_INTERVAL_MS) return;
    const path = join(this.dir, CURSOR_FILE);
    writeFileSync(path + '.tmp', JSON.stringify(this.cursor));
    renameSync(path + '.tmp', path);
    this.cursorPersistedAt = now;
    this.cursorDirty = false;
  }

  private readCursor(): { segment: number; offset: number } {
    const path = join(this.dir, CURSOR_FILE);
    if (!existsSync(path)) return { segment: 0, offset: 0 };
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as { segment?: unknown; offset?: unknown };
      if (Number.isSafeInteger(parsed.segment) && Number.isSafeInteger(parsed.offset)) {
        return { segment: parsed.segment as number, offset: parsed.offset as number };
      }
    } catch {
      // fall through: replaying from the oldest segment only duplicates, it loses nothing
    }
    this.warn(`store: ${path} is unreadable; replaying every stored message (duplicates possible)`);
    return { segment: 0, offset: 0 };
  }

  // ---- recovery ----

  /** Scan the segments left by an earlier run: count what is pending, skip damage, cut a torn tail. */
  private recover(): void {
    const ids = readdirSync(this.dir)
      .map((name) => SEGMENT_NAME.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    for (const id of ids) {
      const path = join(this.dir, segmentName(id));
      if (id < this.cursor.segment) {
        unlinkIfPresent(path);
        continue;
      }
      const segment = this.scanSegment(id, path, id === ids[ids.length - 1]);
      if (segment.pendingRecords > 0) this.segments.push(segment);
      else unlinkIfPresent(path);
    }
    this.nextSegmentId = (ids[ids.length - 1] ?? 0) + 1;
    const first = this.segments[0];
    if (first === undefined) this.setCursor(this.nextSegmentId, 0);
    else if (first.id !== this.cursor.segment) this.setCursor(first.id, 0);
    this.readSegment = first;
    this.readOffset = first !== undefined && first.id === this.cursor.segment ? this.cursor.offset : 0;
    this.persistCursor(true);
  }

  private scanSegment(id: number, path: string, newest: boolean): Segment {
    const data = readFileSync(path);
    const segment: Segment = { id, path, bytes: data.length, pendingRecords: 0, pendingBytes: 0, lastTime: 0, warnedCorrupt: false };
    let offset = id === this.cursor.segment ? Math.min(this.cursor.offset, data.length) : 0;
    let lastGoodEnd = offset;
    let skipped = 0;
    while (offset < data.length) {
      const length = validRecordLength(data, offset, data.length);
      if (length === 0) {
        const next = nextValidRecord(data, offset + 1, data.length);
        skipped += next - offset;
        offset = next;
        continue;
      }
      segment.pendingRecords++;
      segment.pendingBytes += length;
      segment.lastTime = Math.max(segment.lastTime, recordTime(data, offset));
      offset += length;
      lastGoodEnd = offset;
    }
    if (skipped > 0) {
      segment.warnedCorrupt = true;
      const torn = newest && lastGoodEnd < data.length;
      if (torn) {
        // A write torn by a crash or power loss: cut it off so the file ends on a whole record.
        const fd = openSync(path, 'r+');
        try { ftruncateSync(fd, lastGoodEnd); } finally { closeSync(fd); }
        segment.bytes = lastGoodEnd;
      }
      this.warn(`store: ${path}: skipped ${skipped} damaged bytes${torn ? ' (torn last record, file truncated)' : ''}`);
      this.dropped('corrupt', 1);
    }
    this.totalRecords += segment.pendingRecords;
    this.totalBytes += segment.pendingBytes;
    return segment;
  }
}

function segmentName(id: number): string {
  return `seg-${String(id).padStart(16, '0')}.log`;
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
