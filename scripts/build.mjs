// Build: compile TypeScript to CommonJS in dist/, then put the editor assets (.html, icons/,
// locales/) beside the compiled node files, and copy flows/ to examples/ for Import ▸ Examples.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { gypFailureDetail } from '../native/gyp-error.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');

rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

/** Copy every non-TypeScript file of a source folder into the same place under dist/. */
function copyAssets(folder) {
  const source = join(root, folder);
  if (!existsSync(source)) return;
  for (const entry of readdirSync(source)) {
    const from = join(source, entry);
    const to = join(root, 'dist', folder, entry);
    if (statSync(from).isDirectory()) { copyAssets(join(folder, entry)); continue; }
    if (extname(entry) === '.ts') continue;
    mkdirSync(dirname(to), { recursive: true });
    cpSync(from, to);
  }
}
for (const folder of ['nodes', 'editor-theme', 'sim', 'lib']) copyAssets(folder);

// Node-RED's Import ▸ Examples reads only <package>/examples/: real copies, not symlinks.
rmSync(join(root, 'examples'), { recursive: true, force: true });
if (existsSync(join(root, 'flows'))) cpSync(join(root, 'flows'), join(root, 'examples'), { recursive: true });

// The fast poller's native addon (native/, docs/fast-poll.md): node-gyp against the local Node
// headers, offline. Optional: without a compiler or headers the build goes on and uns-fast-poll
// uses its TypeScript fallback.
function buildNativeAddon() {
  if (process.env.UNS_EDGE_NO_NATIVE === '1') { console.log('uns-edge: native fast poller skipped (UNS_EDGE_NO_NATIVE=1); the TypeScript fallback is used'); return; }
  let nodeGyp;
  try { nodeGyp = require.resolve('node-gyp/bin/node-gyp.js'); } catch { nodeGyp = undefined; }
  const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
  const nodedirArg = nodedir ? [`--nodedir=${nodedir}`] : [];
  try {
    if (!nodeGyp) throw new Error('node-gyp is not installed');
    // configure + build, not rebuild: an incremental build never removes a working addon that
    // a running test or bench has loaded.
    for (const step of [['configure', ...nodedirArg], ['build', ...nodedirArg]]) {
      execFileSync(process.execPath, [nodeGyp, ...step], { cwd: join(root, 'native'), stdio: ['ignore', 'ignore', 'pipe'] });
    }
    console.log('uns-edge: native fast poller built (native/build/Release/uns_fast_poll.node)');
  } catch (error) {
    console.log(`uns-edge: native fast poller NOT built, the TypeScript fallback will be used (${gypFailureDetail(error)})`);
  }
}
buildNativeAddon();
console.log('uns-edge: build complete');
