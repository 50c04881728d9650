/**
 * Where the uns-edge package is on disk and its version, found by walking up from this file, so the
 * answer is the same from the compiled dist/lib/runtime/ and from the TypeScript sources (tests).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PackageInfo { root: string; version: string }

let cached: PackageInfo | undefined;

export function packageInfo(): PackageInfo {
  if (cached) return cached;
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (name === 'uns-edge') {
      cached = { root: dir, version: version ?? '0.0.0' };
      return cached;
    }
  }
  throw new Error(`uns-edge: package.json not found above ${__dirname}`);
}
