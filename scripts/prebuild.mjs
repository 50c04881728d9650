// Prebuilt fast-poller addons for the package tarball (`npm pack` / `npm publish` run this as
// `prepack`): prebuilds/linux-x64/uns_fast_poll.node and prebuilds/linux-arm64/uns_fast_poll.node.
// The addon uses Node-API 8 only, so one build per platform/arch loads in every Node.js ≥ 20
// (lib/fastpoll/native.ts picks it). The host's arch is built with the host compiler, the other
// one with Debian's cross compiler (g++-aarch64-linux-gnu / g++-x86-64-linux-gnu; scripts/
// ensure-system-deps.sh installs the arm64 one). Each result is checked with readelf: ELF64, the
// right machine, a shared object exporting napi_register_module_v1. A target that cannot be built
// fails the pack: a tarball must not ship without the arm64 addon unnoticed.
// `node scripts/prebuild.mjs [x64|arm64 …]` builds only those.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { arch as hostArch, platform } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const ADDON = 'uns_fast_poll.node';

/** Per Node.js arch: the GNU triplet of its cross toolchain and the ELF machine readelf prints. */
const TARGETS = {
  x64: { triplet: 'x86_64-linux-gnu', machine: 'Advanced Micro Devices X86-64' },
  arm64: { triplet: 'aarch64-linux-gnu', machine: 'AArch64' },
};

if (platform() !== 'linux') throw new Error(`prebuild: only linux prebuilds are made, this is ${platform()}`);
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(TARGETS);
const nodedir = process.env.npm_config_nodedir || '/usr';

/** The compilers for one target: the host's own for its arch, `<triplet>-gcc/g++` for the other. */
function toolchain(arch) {
  if (arch === hostArch()) return { CC: 'gcc', CXX: 'g++', LINK: 'g++', AR: 'ar', STRIP: 'strip' };
  const t = TARGETS[arch].triplet;
  return { CC: `${t}-gcc`, CXX: `${t}-g++`, LINK: `${t}-g++`, AR: `${t}-ar`, STRIP: `${t}-strip` };
}

function build(arch) {
  if (!TARGETS[arch]) throw new Error(`prebuild: unknown arch ${arch} (known: ${Object.keys(TARGETS).join(', ')})`);
  const tools = toolchain(arch);
  try {
    execFileSync(tools.CXX, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`prebuild: ${tools.CXX} not found; install Debian's g++-${TARGETS[arch].triplet.replace(/_/g, '-')} (scripts/ensure-system-deps.sh does for arm64)`);
  }
  // A build tree of its own under native/build/ (ignored by git), so the development build in
  // native/build/Release is never touched; node-addon-api still resolves from the repo's node_modules.
  const work = join(root, 'native', 'build', `prebuild-${platform()}-${arch}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(join(root, 'native', 'binding.gyp'), join(work, 'binding.gyp'));
  cpSync(join(root, 'native', 'src'), join(work, 'src'), { recursive: true });
  const env = { ...process.env, ...tools };
  for (const step of ['configure', 'build']) {
    execFileSync(process.execPath, [nodeGyp, step, `--arch=${arch}`, `--nodedir=${nodedir}`, '--release', '--loglevel=warn'], { cwd: work, env, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const out = join(root, 'prebuilds', `${platform()}-${arch}`, ADDON);
  rmSync(dirname(out), { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  cpSync(join(work, 'build', 'Release', ADDON), out);
  execFileSync(tools.STRIP, ['--strip-unneeded', out]);
  verify(arch, out);
  rmSync(work, { recursive: true, force: true });
  console.log(`uns-edge: prebuilt ${platform()}-${arch} fast poller (${out.slice(root.length + 1)})`);
}

/** readelf (binutils reads every ELF machine): a 64-bit shared object for `arch` exporting the Node-API entry. */
function verify(arch, file) {
  const header = execFileSync('readelf', ['-h', file], { encoding: 'utf8' });
  const field = (name) => header.match(new RegExp(`^\\s*${name}:\\s*(.+)$`, 'm'))?.[1].trim();
  const problems = [];
  if (field('Class') !== 'ELF64') problems.push(`class ${field('Class')}`);
  if (!field('Type')?.startsWith('DYN')) problems.push(`type ${field('Type')}`);
  if (field('Machine') !== TARGETS[arch].machine) problems.push(`machine ${field('Machine')}`);
  const symbols = execFileSync('readelf', ['--dyn-syms', '-W', file], { encoding: 'utf8' });
  if (!/\bFUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+napi_register_module_v1\b/.test(symbols)) problems.push('napi_register_module_v1 not exported');
  if (problems.length) throw new Error(`prebuild: ${file} is not a ${arch} Node-API addon: ${problems.join(', ')}`);
}

for (const arch of wanted) build(arch);
