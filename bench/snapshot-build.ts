/**
 * A copy of this checkout's build, for before/after benchmarks of two builds in interleaved rounds:
 * `dist/` and package.json are copied, everything else (node_modules, profiles, …) is linked.
 * Point a benchmark at it with UNS_EDGE_BENCH_PACKAGE=DIR (bench/pipeline.ts).
 *
 *   npm run build && npx tsx bench/snapshot-build.ts /tmp/uns-edge-before
 */
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/node-red';

const target = process.argv[2];
if (!target) throw new Error('usage: npx tsx bench/snapshot-build.ts DIR');
if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'uns-edge.js'))) throw new Error('no dist/: run npm run build first');
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
for (const name of readdirSync(REPO_ROOT)) {
  if (name === '.git') continue;
  if (name === 'dist' || name === 'package.json') cpSync(join(REPO_ROOT, name), join(target, name), { recursive: true });
  else symlinkSync(join(REPO_ROOT, name), join(target, name));
}
console.log(`build of ${REPO_ROOT} copied to ${target}: UNS_EDGE_BENCH_PACKAGE=${target}`);
