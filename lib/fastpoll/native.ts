/**
 * Loads the native addon (native/build/Release/uns_fast_poll.node) in try/catch, as ws does with
 * bufferutil: a missing or broken build means the fallback, with the reason kept for the status.
 * UNS_EDGE_NO_NATIVE=1 disables the addon.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BatchCallback, PollerBinding, PollerFactory, PollerOptions, RawPollerStats } from './types';

export const NO_NATIVE_ENV = 'UNS_EDGE_NO_NATIVE';
/** Load the addon from this path instead (another build, e.g. with AddressSanitizer). */
export const NATIVE_ADDON_ENV = 'UNS_EDGE_NATIVE_ADDON';
const ADDON = join('native', 'build', 'Release', 'uns_fast_poll.node');

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

export type NativeLoad = { ok: true; factory: PollerFactory } | { ok: false; reason: string };

/** The package root holds native/: two levels above lib/fastpoll, three above dist/lib/fastpoll. */
function addonPath(): string | undefined {
  for (const up of ['../..', '../../..']) {
    const candidate = join(__dirname, up, ADDON);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

let cached: NativeLoad | undefined;

export function loadNative(env: NodeJS.ProcessEnv = process.env): NativeLoad {
  if (env[NO_NATIVE_ENV] === '1') return { ok: false, reason: `${NO_NATIVE_ENV}=1` };
  if (cached) return cached;
  const path = env[NATIVE_ADDON_ENV] || addonPath();
  if (!path) {
    cached = { ok: false, reason: 'addon not built' };
    return cached;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require(path) as Addon;
    cached = { ok: true, factory: (options, onBatch) => new NativePoller(new addon.FastPoller(options, onBatch)) };
  } catch (error) {
    cached = { ok: false, reason: `addon failed to load: ${(error as Error).message.split('\n')[0]}` };
  }
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
