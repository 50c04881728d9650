// `npm test`: the whole suite, tier by tier. Installs the Debian peers when missing, builds,
// type-checks, then runs lib unit tests, node tests, integration tests (real Mosquitto, aedes,
// pymodbus) and the browser e2e test (Debian Chromium) on this Node and the Node-RED of
// package.json (4.1), then the node and e2e tiers again on Node 22 and Node-RED 5.0 (tier
// `nodered5`, docs/compatibility.md). Any failing step fails the run. `node scripts/test.mjs TIER…`
// runs only those tiers.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { ensureNode22NodeRed5, nodeRed5Environment } from './node22.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const mocha = require.resolve('mocha/bin/mocha.js');
const tsc = require.resolve('typescript/bin/tsc');
const run = (cmd, args, env = process.env) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, env });
const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(0)} s`;

const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'node', 'integration', 'e2e', 'nodered5'];
run('bash', [join(root, 'scripts/ensure-system-deps.sh')]);
run(process.execPath, [join(root, 'scripts/build.mjs')]);
run(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--noEmit']);
for (const tier of tiers) {
  const started = Date.now();
  if (tier === 'nodered5') {
    const installed = ensureNode22NodeRed5();
    const env = nodeRed5Environment(installed);
    // The tiers below must really run there: the hook's answer, from the Node 22 binary.
    const seen = execFileSync(installed.node, ['-p', 'process.version + " " + require("node-red/package.json").version'], { cwd: root, env, encoding: 'utf8' }).trim();
    if (seen !== `${installed.nodeVersion} ${installed.nodeRedVersion}` || !seen.startsWith('v22.') || !installed.nodeRedVersion.startsWith('5.0.')) {
      throw new Error(`Node 22 / Node-RED 5.0 expected, the hook gives "${seen}"`);
    }
    for (const again of ['node', 'e2e']) {
      const tierStarted = Date.now();
      console.log(`\n=== ${again} tests on Node ${installed.nodeVersion}, Node-RED ${installed.nodeRedVersion} ===`);
      run(installed.node, [mocha, `test/${again}/**/*.spec.ts`], env);
      console.log(`=== ${again} tests on Node-RED ${installed.nodeRedVersion}: ${seconds(tierStarted)} ===`);
    }
  } else {
    console.log(`\n=== ${tier} tests ===`);
    run(process.execPath, [mocha, `test/${tier}/**/*.spec.ts`]);
  }
  console.log(`=== ${tier}: ${seconds(started)} ===`);
}
