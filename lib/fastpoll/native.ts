/**
 * Loads the native addon in try/catch, as ws does with bufferutil: a missing or broken build means
 * the fallback, with the reason kept for the status. Where it looks, first match that loads wins
 * (the order node-gyp-build uses):
 * 1. `UNS_EDGE_NATIVE_ADDON=<path>` (another build, e.g. with AddressSanitizer);
 * 2. native/build/Release/uns_fast_poll.node, compiled on this machine (scripts/build.mjs in a
 *    checkout, or `npm rebuild uns-edge` where a compiler is);
 * 3. prebuilds/<platform>-<arch>/uns_fast_poll.node, shipped in the package tarball
 *    (scripts/prebuild.mjs, linux-x64 and linux-arm64). The addon uses Node-API 8 only, so one file
 *    per platform/arch serves every Node.js version the package supports.
 * UNS_EDGE_NO_NATIVE=1 disables the addon.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BatchCallback, PollerBinding, PollerFactory, PollerOptions, RawPollerStats } from './types';

export const NO_NATIVE_ENV = 'UNS_EDGE_NO_NATIVE';
/** Load the addon from this path instead (another build, e.g. with AddressSanitizer). */
export const NATIVE_ADDON_ENV = 'UNS_EDGE_NATIVE_ADDON';
const ADDON_FILE = 'uns_fast_poll.node';
/** Relative to the package root, in the order they are tried. */
const PACKAGE_CANDIDATES = [
  join('native', 'build', 'Release', ADDON_FILE),
  join('prebuilds', `${process.platform}-${process.arch}`, ADDON_FILE),
];

interface AddonPoller {
  start(): void;
  stop(): void;
  write(id: number, fc: number, address: number, values: number[]): boolean;
  stats(): RawPollerStats | null;
  readonly running: boolean;
}
interface Addon {
  FastPoller: new (options: PollerOptions, onBatch: BatchCallback) => AddonPoller;
}

/** `path`: the file that loaded. */
export type NativeLoad = { ok: true; factory: PollerFactory; path: string } | { ok: false; reason: string };

/** The package root holds native/ and prebuilds/: two levels above lib/fastpoll, three above dist/lib/fastpoll. */
function addonCandidates(): string[] {
  const found: string[] = [];
  for (const relative of PACKAGE_CANDIDATES) {
    for (const up of ['../..', '../../..']) {
      const candidate = join(__dirname, up, relative);
      if (existsSync(candidate)) { found.push(candidate); break; }
    }
  }
  return found;
}

let cached: NativeLoad | undefined;

export function loadNative(env: NodeJS.ProcessEnv = process.env): NativeLoad {
  if (env[NO_NATIVE_ENV] === '1') return { ok: false, reason: `${NO_NATIVE_ENV}=1` };
  if (cached) return cached;
  const override = env[NATIVE_ADDON_ENV];
  const candidates = override ? [override] : addonCandidates();
  if (!candidates.length) {
    cached = { ok: false, reason: `addon not built and no prebuild for ${process.platform}-${process.arch}` };
    return cached;
  }
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const addon = require(path) as Addon;
      cached = { ok: true, path, factory: (options, onBatch) => new NativePoller(new addon.FastPoller(options, onBatch)) };
      return cached;
    } catch (error) {
      // e.g. a prebuild that needs a newer glibc than this system's: the next candidate, else the fallback.
      failures.push((error as Error).message.split('\n')[0]);
    }
  }
  cached = { ok: false, reason: `addon failed to load: ${failures.join('; ')}` };
  return cached;
}

/** The addon's poller with the common (promise) stop(). */
class NativePoller implements PollerBinding {
  constructor(private readonly addon: AddonPoller) {}
  start(): void { this.addon.start(); }
  async stop(): Promise<void> { this.addon.stop(); }
  write(id: number, fc: 5 | 6 | 15 | 16, address: number, values: number[]): boolean { return this.addon.write(id, fc, address, values); }
  stats(): RawPollerStats | null { return this.addon.stats(); }
  get running(): boolean { return this.addon.running; }
}
