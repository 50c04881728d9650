/**
 * The island switch of a conduit kept on disk (SR 5.2 RE2), so a restart or a redeploy does not let
 * traffic through that an operator stopped: one small JSON file per conduit beside its audit log,
 * `island-<conduit id>.json` = `{"island": true|false, "by": "...", "time": "ISO 8601"}`.
 *
 * Written atomically (temporary file, fsync, rename, fsync of the folder): a crash leaves the old
 * state or the new one, never half of one. Read fail closed: a file that cannot be read or is not
 * exactly that shape is island ON, with the reason, until someone switches it off (which is audited
 * and rewrites the file). No file is `missing`: a conduit's first start (the controller then writes
 * the file) or a file deleted since — the controller tells them apart by the audit trail.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isPlainObject } from '../values';

export interface IslandState {
  island: boolean;
  /** Who switched it last (audit principal), when known. */
  by?: string;
  /** Why the state is island on although no one switched it: the file was unreadable or corrupt. */
  problem?: string;
  /** There is no file (island is false then): a first start, or the file was deleted. */
  missing?: true;
}

/** The file name of a conduit's island state: the node id with anything but A–Z a–z 0–9 _ . - replaced. */
export function islandStateFile(dir: string, conduitId: string): string {
  return join(dir, `island-${conduitId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
}

export class IslandStateFile {
  constructor(readonly path: string) {}

  /** The persisted state; never throws (fail closed: an unusable file is island on). */
  load(): IslandState {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { island: false, missing: true };
      return { island: true, problem: `island state ${this.path} unreadable: ${(error as Error).message}` };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return { island: true, problem: `island state ${this.path} corrupt: ${(error as Error).message}` };
    }
    if (!isPlainObject(parsed) || typeof parsed.island !== 'boolean') {
      return { island: true, problem: `island state ${this.path} corrupt: no boolean "island" field` };
    }
    return { island: parsed.island, ...(typeof parsed.by === 'string' ? { by: parsed.by } : {}) };
  }

  /** Writes the state atomically; throws when it could not be written. */
  save(island: boolean, by: string, now = new Date()): void {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify({ island, by, time: now.toISOString() })}\n`);
      fsyncSync(fd);
      closeSync(fd);
      renameSync(temporary, this.path);
    } catch (error) {
      try { closeSync(fd); } catch { /* closed already */ }
      try { unlinkSync(temporary); } catch { /* never created or renamed */ }
      throw error;
    }
    // The rename itself is durable only once the folder is synced.
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
