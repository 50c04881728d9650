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

/**
 * Node-RED modules among uns-edge's devDependencies that are installed beside it (in a clone:
 * node-red-contrib-modbus and node-red-contrib-opcua, kept as benchmark peers). Node-RED loads every
 * Node-RED module it finds in the node_modules above it, so without a deny list they would show in
 * the palette and under Import ▸ Examples of every uns-edge runtime. An npm install of uns-edge has
 * no devDependencies: the list is empty there.
 */
export function devOnlyNodeRedModules(): string[] {
  const { root } = packageInfo();
  const { devDependencies = {}, peerDependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
  // An optional peer (the dashboard) is installed for its tests but is part of the product.
  return Object.keys(devDependencies).filter((name) => {
    if (name in peerDependencies) return false;
    const manifest = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) return false;
    const section = (JSON.parse(readFileSync(manifest, 'utf8')) as { 'node-red'?: { nodes?: unknown; plugins?: unknown } })['node-red'];
    return section !== undefined && (section.nodes !== undefined || section.plugins !== undefined);
  }).sort();
}
