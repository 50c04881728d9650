// The package's `install` script (node-gyp-build's order): when uns-edge is installed as a package,
// keep the prebuilt fast poller if one loads here (prebuilds/<platform>-<arch>/, linux-x64 and
// linux-arm64 ship in the tarball), else compile native/ with node-gyp, else leave it to the
// TypeScript fallback. One line says which; it never fails the install (docs/fast-poll.md).
// A prebuild needs no compiler and no install script: with --ignore-scripts or an npm that does not
// run this script, the prebuild still loads at run time.
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { gypFailureDetail } from './gyp-error.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const say = (text) => console.log(`uns-edge: ${text}`);

const LOADER = join(root, 'dist', 'lib', 'fastpoll', 'native.js');

/**
 * In a development checkout `npm install` runs this too (npm was started in the package root, or
 * dist/ is not built yet, which a packed uns-edge always has); there scripts/build.mjs (prepare)
 * builds the addon.
 */
function isDevelopmentCheckout() {
  const invokedIn = process.env.INIT_CWD;
  return !existsSync(LOADER) || (invokedIn !== undefined && realpathSync(invokedIn) === realpathSync(root));
}

function main() {
  if (isDevelopmentCheckout()) return;
  if (process.env.UNS_EDGE_NO_NATIVE === '1') { say('native fast poller skipped (UNS_EDGE_NO_NATIVE=1); the TypeScript fallback is used'); return; }
  const { loadNative } = require(LOADER);
  const present = loadNative(process.env);
  if (present.ok) { say(`native fast poller ready (${present.path.slice(root.length + 1)})`); return; }
  // npm hands its own node-gyp to lifecycle scripts; a plain `node native/install.mjs` may find one installed.
  const nodeGyp = process.env.npm_config_node_gyp || resolveNodeGyp();
  try {
    if (!nodeGyp) throw new Error('node-gyp not found');
    execFileSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: join(root, 'native'), stdio: ['ignore', 'ignore', 'pipe'] });
    require(join(root, 'native', 'build', 'Release', 'uns_fast_poll.node'));
    say(`no prebuilt fast poller for ${process.platform}-${process.arch} (${present.reason}); built native/ with node-gyp`);
  } catch (error) {
    say(`no prebuilt fast poller for ${process.platform}-${process.arch} (${present.reason}) and the node-gyp build failed (${gypFailureDetail(error)}); the TypeScript fallback will be used`);
  }
}

function resolveNodeGyp() {
  try { return require.resolve('node-gyp/bin/node-gyp.js'); } catch { return undefined; }
}

main();
