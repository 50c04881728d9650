/**
 * The two Sparkplug B sequence numbers of an Edge Node (Sparkplug 3.0 §6.4.1, §5.2):
 *
 * - `seq`: one counter for the node and all its devices, 0 in NBIRTH, +1 on every later
 *   NDATA/DBIRTH/DDATA/DDEATH, 255 → 0 ([tck-id-payloads-sequence-num-incrementing]).
 * - `bdSeq` (birth/death sequence): one value per MQTT session, carried by the Will (NDEATH) and the
 *   NBIRTH of that session, 0 on the first connect ever and +1 on every new connect, 255 → 0
 *   ([tck-id-topics-nbirth-bdseq-increment]). Kept in a small file so a gateway restart continues
 *   the count (the TCK monitor expects +1 across restarts, sparkplug issues #422/#425).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

const SEQ_MODULUS = 256;

export class SequenceCounter {
  private nextValue = 0;

  /** The seq of an NBIRTH: 0, and the next message gets 1 ([tck-id-topics-nbirth-seq-num]). */
  birth(): number {
    this.nextValue = 1;
    return 0;
  }

  /** The seq of any later message of the node or one of its devices. */
  next(): number {
    const value = this.nextValue;
    this.nextValue = (value + 1) % SEQ_MODULUS;
    return value;
  }
}

/**
 * The persisted bdSeq of one Edge Node. `next` is the value the next CONNECT's Will carries.
 * It advances when a CONNECT is accepted (CONNACK), not per attempt: an attempt that never
 * reached the broker established no session, and skipping values on every failed retry during an
 * outage would look like lost sessions to a host (sparkplug issue #421).
 */
export class BdSeqStore {
  private nextValue: number;

  /** `file` holds `{"next": n}`; a missing file starts at 0, an unreadable one at 0 with a warning. */
  constructor(readonly file: string, warn: (message: string) => void) {
    this.nextValue = 0;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warn(`bdSeq file ${file} unreadable (${(error as Error).message}): starting at bdSeq 0`);
      return;
    }
    try {
      const next = (JSON.parse(text) as { next?: unknown }).next;
      if (typeof next !== 'number' || !Number.isInteger(next) || next < 0 || next >= SEQ_MODULUS) throw new Error(`"next" is ${String(next)}`);
      this.nextValue = next;
    } catch (error) {
      warn(`bdSeq file ${file} is damaged (${(error as Error).message}): starting at bdSeq 0`);
    }
  }

  /** The bdSeq for the next CONNECT. */
  get next(): number {
    return this.nextValue;
  }

  /**
   * The broker accepted a CONNECT that carried `used`: the next one carries used + 1. Written
   * before the NBIRTH goes out (atomically: temp file, fsync, rename), so a crash right after
   * cannot make the next start reuse the value.
   */
  accepted(used: number): void {
    this.nextValue = (used + 1) % SEQ_MODULUS;
    mkdirSync(dirname(this.file), { recursive: true });
    const temp = `${this.file}.tmp`;
    const fd = openSync(temp, 'w');
    try {
      writeSync(fd, JSON.stringify({ next: this.nextValue }) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
  }
}

/**
 * A file name that cannot collide or escape its directory, for an id: every character outside
 * [A-Za-z0-9_-] becomes %XX of its UTF-8 bytes (so "." and ".." are safe too).
 */
export function fileSafeName(id: string): string {
  let out = '';
  for (const byte of Buffer.from(id, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Where the bdSeq of group/edge node lives under `dir` (default `<userDir>/uns-edge/sparkplug`). */
export function bdSeqFile(dir: string, groupId: string, edgeNodeId: string): string {
  return join(dir, fileSafeName(groupId), `${fileSafeName(edgeNodeId)}.bdseq.json`);
}
