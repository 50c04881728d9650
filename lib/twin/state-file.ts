/**
 * The twin's state on disk: one small JSON file per twin node, `<dir>/<node id>.json`, written
 * atomically (write a temporary file, fsync, rename over the old one, fsync the folder), so a crash
 * or power cut leaves either the old or the new state, never half of one. Bounded: a state is a few
 * hundred bytes; a file over MAX_STATE_BYTES is not read. Writes are asynchronous and serialised (one
 * in flight; the latest state asked for while one is in flight is written next, older ones are dropped).
 */
import { readFileSync, renameSync, statSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { checkTwinState, TwinState } from './twin';

export const MAX_STATE_BYTES = 64 * 1024;

/** The folder of the twins' state files: <userDir>/uns-edge/twin (Node-RED's default userDir is ~/.node-red). */
export function twinStateDir(userDir: string | undefined): string {
  return join(userDir ?? join(homedir(), '.node-red'), 'uns-edge', 'twin');
}

export type LoadedState = { kind: 'none' } | { kind: 'ok'; state: TwinState } | { kind: 'unreadable'; problem: string; movedTo?: string };

/** A node id as a file name: Node-RED ids are hex and dots; anything else is escaped. */
function fileNameOf(id: string): string {
  return `${id.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}.json`;
}

/** Tells apart files set aside in the same millisecond. */
let setAsideCount = 0;

export class TwinStateFile {
  readonly path: string;
  private writing: Promise<void> | undefined;
  private pending: TwinState | undefined;

  constructor(readonly dir: string, id: string) {
    if (id === '' || id === '.' || id === '..') throw new Error(`twin state: ${JSON.stringify(id)} is not a node id`);
    this.path = join(dir, fileNameOf(id));
  }

  /** Read the state; an unreadable file is moved aside (kept for inspection) and reported. */
  load(): LoadedState {
    let text: string;
    try {
      if (statSync(this.path).size > MAX_STATE_BYTES) return this.setAside(`larger than ${MAX_STATE_BYTES} bytes`);
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      return { kind: 'unreadable', problem: (error as Error).message };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return this.setAside(`not JSON (${(error as Error).message})`);
    }
    const checked = checkTwinState(parsed);
    return typeof checked === 'string' ? this.setAside(checked) : { kind: 'ok', state: checked };
  }

  private setAside(problem: string): LoadedState {
    const movedTo = `${this.path}.unreadable-${Date.now()}-${setAsideCount++}`;
    try {
      renameSync(this.path, movedTo);
      return { kind: 'unreadable', problem, movedTo };
    } catch {
      return { kind: 'unreadable', problem };
    }
  }

  /**
   * Write a state atomically, without blocking the event loop on fsync (slow on SD cards). Writes are
   * serialised; a state asked for while one is in flight replaces any other waiting one. Resolves when
   * this state (or a newer one) is on disk; rejects with the write's error.
   */
  save(state: TwinState): Promise<void> {
    this.pending = state;
    this.writing ??= this.drain();
    return this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const state = this.pending;
        this.pending = undefined;
        await this.write(state);
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async write(state: TwinState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const temporary = `${this.path}.tmp`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(state)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
    try {
      const dir = await open(this.dir, 'r');
      try { await dir.sync(); } finally { await dir.close(); }
    } catch {
      // Folders cannot be fsynced on every platform (Windows); the rename is atomic anyway.
    }
  }
}
