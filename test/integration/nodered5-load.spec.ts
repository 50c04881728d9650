/**
 * The package on Node-RED 5.0 under Node 22 as a user installs it (docs/compatibility.md): Node-RED 5's
 * own `red.js`, run by the Node 22 binary of scripts/node22.mjs (installed into a cached prefix on
 * first use), with uns-edge in its user directory's node_modules (run `npm run build` first). Every
 * node set and plugin of package.json loads without an error, and the editor lists them. The node and
 * e2e tiers run on that pair too (`npm test`, tier nodered5).
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../helpers/mosquitto';

const ROOT = resolve(__dirname, '..', '..');

interface Installed { node: string; nodeVersion: string; nodeRed: string; nodeRedVersion: string }
interface NodeSet { id: string; module: string; enabled: boolean; err?: string; types: string[] }

describe('uns-edge on Node-RED 5.0 / Node 22 (red.js, package in the user dir)', function () {
  this.timeout(240_000);
  let installed: Installed;
  let userDir: string;
  let nodeRed: ChildProcess | undefined;
  let output = '';

  before(function () {
    this.timeout(600_000); // the first install downloads Node 22 and Node-RED 5 (cached afterwards)
    installed = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'scripts', 'node22.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as Installed;
    userDir = mkdtempSync(join(tmpdir(), 'uns-nodered5-'));
    mkdirSync(join(userDir, 'node_modules'));
    symlinkSync(ROOT, join(userDir, 'node_modules', 'uns-edge'), 'dir');
  });
  after(() => {
    nodeRed?.kill('SIGKILL');
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it('loads every node set and plugin of package.json; the editor lists them', async () => {
    assert.match(installed.nodeVersion, /^v22\./);
    assert.match(installed.nodeRedVersion, /^5\.0\./);
    const port = await freePort();
    // uiHost on loopback: the package's admin guard refuses an editor open to the network without adminAuth.
    nodeRed = spawn(installed.node, [join(installed.nodeRed, 'red.js'), '--userDir', userDir, '--port', String(port), '-D', 'uiHost=127.0.0.1', '-D', 'logging.console.level=info'],
      { cwd: userDir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    nodeRed.stdout!.on('data', (chunk) => { output += chunk; });
    nodeRed.stderr!.on('data', (chunk) => { output += chunk; });
    const deadline = Date.now() + 120_000;
    let sets: NodeSet[] | undefined;
    while (!sets) {
      if (nodeRed.exitCode !== null) assert.fail(`Node-RED 5 exited ${nodeRed.exitCode}:\n${output}`);
      if (Date.now() > deadline) assert.fail(`Node-RED 5 did not answer within 120 s:\n${output}`);
      const response = await fetch(`http://127.0.0.1:${port}/nodes`, { headers: { Accept: 'application/json' } }).catch(() => undefined);
      if (response?.ok) sets = await response.json() as NodeSet[];
      else await new Promise((resolveSleep) => setTimeout(resolveSleep, 250));
    }
    assert.match(output, new RegExp(`Node-RED version: v${installed.nodeRedVersion.replace(/\./g, '\\.')}`));
    assert.match(output, /Node\.js {2}version: v22\./);
    const ours = sets.filter((set) => set.module === 'uns-edge');
    const declared = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } })['node-red'].nodes;
    assert.deepEqual(ours.map((set) => set.id.split('/')[1]).sort(), Object.keys(declared).sort(), 'every node set of package.json');
    for (const set of ours) {
      assert.equal(set.err, undefined, `${set.id}: ${set.err}`);
      assert.ok(set.enabled && set.types.length > 0, `${set.id} loaded with its types: ${JSON.stringify(set)}`);
    }
    assert.doesNotMatch(output, /\[error\]|Failed to load|Error loading/, output);
    const plugins = await (await fetch(`http://127.0.0.1:${port}/plugins`, { headers: { Accept: 'application/json' } })).json() as Array<{ id: string; module: string; err?: string }>;
    const ourPlugins = plugins.filter((plugin) => plugin.module === 'uns-edge');
    assert.ok(ourPlugins.length > 0 && ourPlugins.every((plugin) => plugin.err === undefined), JSON.stringify(ourPlugins));
  });
});
