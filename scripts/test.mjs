// `npm test`: the whole suite, tier by tier. Installs the Debian peers when missing, builds,
// type-checks, then runs lib unit tests, node tests, integration tests (real Mosquitto, aedes,
// pymodbus) and the browser e2e test (Debian Chromium). Any failing step fails the run.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const mocha = require.resolve('mocha/bin/mocha.js');
const tsc = require.resolve('typescript/bin/tsc');
const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root });

const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'node', 'integration', 'e2e'];
run('bash', [join(root, 'scripts/ensure-system-deps.sh')]);
run(process.execPath, [join(root, 'scripts/build.mjs')]);
run(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--noEmit']);
for (const tier of tiers) {
  console.log(`\n=== ${tier} tests ===`);
  run(process.execPath, [mocha, `test/${tier}/**/*.spec.ts`]);
}
