/**
 * Node-RED's file storage, except that `<userDir>/.sessions.json` (the editor's login tokens: whoever
 * reads it is logged in) is only readable by the gateway's user. Node-RED writes it through a temp
 * file created with the process umask (0644 under the usual 022); this storage writes the temp
 * file with mode 0600 before any byte of it, then renames it into place, so no moment exists at
 * which another user could read a token. Used as the `storageModule` setting (docs/security.md).
 *
 * The one place the runtime reaches into Node-RED's internals: the base storage module is Node-RED's
 * own `localfilesystem`, resolved from the node-red package that runs.
 */
import { chmod, open, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const SESSIONS_FILE = '.sessions.json';
const PRIVATE_MODE = 0o600;

interface StorageSettings { userDir?: string; readOnly?: boolean }

/** A Node-RED storage module (@node-red/runtime lib/storage): init plus get/save functions. */
export interface StorageModule {
  init(settings: StorageSettings, runtime: unknown): Promise<void>;
  saveSessions?(sessions: unknown): Promise<void>;
  [name: string]: unknown;
}

/** Node-RED's localfilesystem storage, from the node-red package resolvable here. */
export function nodeRedFileStorage(): StorageModule {
  const nodeRed = dirname(require.resolve('node-red/package.json'));
  return require(require.resolve('@node-red/runtime/lib/storage/localfilesystem', { paths: [nodeRed] })) as StorageModule;
}

async function writePrivately(file: string, text: string): Promise<void> {
  const temporary = `${file}.$$$`;
  const handle = await open(temporary, 'w', PRIVATE_MODE);
  try {
    // A temp file left by a crash keeps its old mode on open: narrow it before writing.
    await handle.chmod(PRIVATE_MODE);
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

/** `base` with saveSessions writing mode 0600; an existing, wider sessions file is narrowed at init. */
export function withPrivateSessions(base: StorageModule): StorageModule {
  let settings: StorageSettings = {};
  // One write at a time: two logins at once must not interleave in the temp file.
  let writing: Promise<void> = Promise.resolve();
  const sessionsFile = (): string => join(settings.userDir ?? '.', SESSIONS_FILE);
  return {
    ...base,
    async init(initSettings: StorageSettings, runtime: unknown): Promise<void> {
      settings = initSettings;
      await base.init(initSettings, runtime);
      const existing = await stat(sessionsFile()).catch(() => undefined);
      if (existing && (existing.mode & 0o077) !== 0) await chmod(sessionsFile(), PRIVATE_MODE);
    },
    saveSessions(sessions: unknown): Promise<void> {
      if (settings.readOnly) return Promise.resolve();
      const text = JSON.stringify(sessions);
      const write = writing.then(() => writePrivately(sessionsFile(), text));
      writing = write.catch(() => undefined);
      return write;
    },
  };
}
