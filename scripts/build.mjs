// Build: compile TypeScript to CommonJS in dist/, then put the editor assets (.html, icons/,
// locales/) beside the compiled node files, and copy flows/ to examples/ for Import ▸ Examples.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

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
console.log('uns-edge: build complete');
