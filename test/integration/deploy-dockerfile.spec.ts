/**
 * deploy/Dockerfile built and run without Docker: this machine has no Docker daemon and no registry
 * access, so the image is assembled here the way a builder does it, with a STAND-IN BASE IMAGE:
 *
 * - the base layer is this machine's root file system (Debian 12 with Node 20 at /usr/bin/node, as
 *   node:20-slim is Debian 12 with Node 20 at /usr/local/bin/node), plus what node:20-slim adds
 *   that this host lacks: the `node` user (uid/gid 1000) and its home;
 * - every stage is an overlayfs layer over that base; RUN runs its command line as written with
 *   /bin/sh -c in a chroot of the stage (own mount namespace), with the stage's ENV and WORKDIR;
 *   COPY honours deploy/Dockerfile.dockerignore; COPY --from copies from the build stage's layer;
 * - two things differ from a real build, both stated: the apt-get RUN is not run (no network):
 *   the test checks that the base already has those packages; and npm gets `npm_config_offline=true`
 *   so `npm ci` installs from the local npm cache instead of the registry;
 * - the container: a read-only overlay of the final stage (`--read-only`), tmpfs /tmp (`--tmpfs`),
 *   a host dir at /data (`-v`), own network, PID, UTS and mount namespaces, USER's uid/gid, the
 *   image's ENV, then `--env-file deploy/uns-edge.env.example` and `-e` as the docs show; the
 *   HEALTHCHECK command runs inside it (nsenter into its namespaces, as its user); STOPSIGNAL stops it.
 * Mosquitto and the simulated plant run in the container's network namespace (a pod's neighbours).
 *
 * Slow: `npm ci` plus two TypeScript builds, 2–6 minutes on a loaded 2-core machine. Needs root.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');
const DOCKERIGNORE = join(ROOT, 'deploy', 'Dockerfile.dockerignore');
const ENV_EXAMPLE = join(ROOT, 'deploy', 'uns-edge.env.example');
/** Docker's PATH when the image sets none (moby's oci defaults). */
const DOCKER_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** node:20-slim's user. */
const NODE_UID = 1000;

interface Instruction { op: string; args: string }
interface Stage { name: string; base: string; instructions: Instruction[] }

/** Dockerfile reference: `#` comments, `\` continuations, `FROM image [AS name]` starts a stage. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const continued = /\\\s*$/.test(raw);
    pending += (pending ? ' ' : '') + raw.replace(/\\\s*$/, '').trim();
    if (!continued) {
      if (pending.trim()) logical.push(pending.trim());
      pending = '';
    }
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    assert.ok(op, `cannot parse: ${line}`);
    if (op.toUpperCase() === 'FROM') {
      const [, base, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ name: name ?? String(stages.length), base, instructions: [] });
      continue;
    }
    assert.ok(stages.length, `${op} before FROM`);
    stages[stages.length - 1].instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** .dockerignore: each pattern (Go filepath.Match, `*` within one path segment) against the path relative to the context; a match excludes the subtree. */
function ignoredBy(patterns: string[]): (rel: string) => boolean {
  const regexes = patterns.map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}(/.*)?$`));
  return (rel) => regexes.some((r) => r.test(rel));
}

function envAssignments(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const match of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[match[1]] = match[2].replace(/^"(.*)"$/, '$1');
  return env;
}

/** systemd/docker env files: KEY=VALUE lines, `#` comments; docker takes the value verbatim. */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/** One image layer: an overlay upper dir over the layers below and the stand-in base (/). */
class Layer {
  readonly upper: string;
  readonly workdir: string;
  readonly mountpoint: string;
  env: Record<string, string> = { PATH: DOCKER_DEFAULT_PATH };
  cwd = '/';
  user = 'root';

  constructor(dir: string, readonly lowers: string[]) {
    this.upper = join(dir, 'upper');
    this.workdir = join(dir, 'work');
    this.mountpoint = join(dir, 'root');
    for (const d of [this.upper, this.workdir, this.mountpoint]) mkdirSync(d, { recursive: true });
  }

  /** RUN <command>: /bin/sh -c in a chroot of this layer, root, the stage's ENV and WORKDIR. */
  run(command: string, extraEnv: Record<string, string> = {}): string {
    const env = { HOME: '/root', ...this.env, ...extraEnv };
    const script = [
      'set -eu',
      `mount -t overlay overlay -o lowerdir=${this.lowers.join(':')},upperdir=${this.upper},workdir=${this.workdir} ${this.mountpoint}`,
      `mount -t proc proc ${this.mountpoint}/proc`,
      `mount --rbind /dev ${this.mountpoint}/dev`,
      `mount -t tmpfs tmpfs ${this.mountpoint}/tmp`,
      `exec chroot ${this.mountpoint} /usr/bin/env -i -C ${shellQuote(this.cwd)} ${Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ')} /bin/sh -c ${shellQuote(command)}`,
    ].join('\n');
    return execFileSync('unshare', ['--mount', '--propagation', 'private', '--fork', '--pid', '--', '/bin/bash', '-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  }

  /** Where a path of the image lands in this layer's upper dir. */
  path(imagePath: string): string {
    return join(this.upper, imagePath.startsWith('/') ? imagePath : join(this.cwd, imagePath));
  }
}

describe('deploy/Dockerfile built and run with a stand-in base image (no Docker daemon here)', function () {
  this.timeout(15 * 60_000);
  const stages = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
  let work: string;
  let base: string;
  const layers = new Map<string, Layer>();
  const buildLog: string[] = [];

  before(function () {
    if (process.getuid?.() !== 0) this.skip();
    // Not under / (the stand-in base): overlayfs refuses layers nested in another layer (ELOOP).
    work = mkdtempSync(join('/dev/shm', 'uns-deploy-docker-'));
    // The stand-in base: this machine's root plus node:20-slim's `node` user and home.
    base = join(work, 'base');
    mkdirSync(join(base, 'etc'), { recursive: true });
    writeFileSync(join(base, 'etc', 'passwd'), readFileSync('/etc/passwd', 'utf8') + `node:x:${NODE_UID}:${NODE_UID}::/home/node:/bin/bash\n`);
    writeFileSync(join(base, 'etc', 'group'), readFileSync('/etc/group', 'utf8') + `node:x:${NODE_UID}:\n`);
    mkdirSync(join(base, 'home', 'node'), { recursive: true });
    chownSync(join(base, 'home', 'node'), NODE_UID, NODE_UID);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('has the stages the stand-in stands for: node:20 on Debian, a build stage and a runtime stage', () => {
    assert.deepEqual(stages.map((s) => s.base), ['node:20-slim', 'node:20-slim']);
    assert.match(readFileSync('/etc/os-release', 'utf8'), /VERSION_CODENAME=bookworm/, 'node:20-slim is Debian 12 (bookworm)');
    assert.match(process.version, /^v20\./);
  });

  it('builds: every instruction of every stage succeeds (RUN as written, in a chroot of its layer)', () => {
    const ignored = ignoredBy(readFileSync(DOCKERIGNORE, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
    for (const stage of stages) {
      const layer = new Layer(join(work, `stage-${stage.name}`), [base, '/']);
      layers.set(stage.name, layer);
      for (const { op, args } of stage.instructions) {
        switch (op) {
          case 'WORKDIR':
            layer.cwd = args;
            mkdirSync(layer.path(args), { recursive: true });
            break;
          case 'ENV':
            Object.assign(layer.env, envAssignments(args));
            break;
          case 'COPY': {
            const from = /^--from=(\S+)\s+/.exec(args);
            const [source, dest] = args.replace(/^--from=\S+\s+/, '').split(/\s+/);
            if (from) {
              const sourceLayer = layers.get(from[1]);
              assert.ok(sourceLayer, `COPY --from=${from[1]}: no such stage`);
              const sourcePath = sourceLayer.path(source);
              assert.ok(existsSync(sourcePath), `COPY --from=${from[1]} ${source}: not in the build stage`);
              const target = dest.endsWith('/') || dest === '.' || dest === './' ? join(layer.path(dest), statSync(sourcePath).isDirectory() ? '' : source.split('/').pop() as string) : layer.path(dest);
              mkdirSync(dirname(target), { recursive: true });
              cpSync(sourcePath, target, { recursive: true, verbatimSymlinks: true });
            } else {
              assert.equal(source, '.', 'the build context is copied whole');
              cpSync(ROOT, layer.path(dest), { recursive: true, verbatimSymlinks: true, filter: (path) => !ignored(relative(ROOT, path)) });
            }
            break;
          }
          case 'RUN':
            if (/apt-get install/.test(args)) {
              // Not run (no network): the stand-in base must already have what it installs.
              const packages = /--no-install-recommends\s+([^&]+)/.exec(args)?.[1].trim().split(/\s+/) ?? [];
              assert.ok(packages.length, 'packages of the apt-get RUN');
              for (const name of packages) {
                assert.match(execFileSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' }), /install ok installed/, `${name} in the stand-in base`);
              }
              buildLog.push(`RUN ${args.slice(0, 60)}…: not run; ${packages.join(', ')} present in the stand-in base`);
            } else {
              const startedAt = Date.now();
              try {
                layer.run(args, { npm_config_offline: 'true' });
              } catch (error) {
                const e = error as { stdout?: string; stderr?: string; message: string };
                assert.fail(`RUN ${args} failed:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`);
              }
              buildLog.push(`RUN ${args}: ok in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
            }
            break;
          case 'USER':
            layer.user = args;
            break;
          case 'VOLUME': case 'EXPOSE': case 'HEALTHCHECK': case 'STOPSIGNAL': case 'CMD':
            break; // metadata, used when the container runs
          default:
            assert.fail(`instruction ${op} is not handled by this test`);
        }
      }
    }
    console.log(`      ${buildLog.join('\n      ')}`);
    const runtime = layers.get(stages[stages.length - 1].name) as Layer;
    assert.ok(existsSync(runtime.path('/app/dist/cli/uns-edge.js')));
    // (typescript stays: i18next, under Node-RED, depends on it)
    for (const devDependency of ['mocha', 'tsx', 'node-red-contrib-modbus', 'playwright-core']) {
      assert.ok(!existsSync(runtime.path(`/app/node_modules/${devDependency}`)), `devDependency ${devDependency} pruned`);
    }
    const data = statSync(runtime.path('/data'));
    assert.deepEqual([data.uid, data.gid], [NODE_UID, NODE_UID], '/data belongs to the node user');
  });

  describe('the container', () => {
    const runtimeStage = (): Stage => stages[stages.length - 1];
    const metadata = (op: string): string => {
      const found = runtimeStage().instructions.filter((i) => i.op === op).pop();
      assert.ok(found, `no ${op}`);
      return found.args;
    };
    let container: ChildProcess | undefined;
    let containerOutput = '';
    let containerExit: Promise<number | null>;
    let containerEnv: Record<string, string>;
    let pid: number;
    const port = (): number => Number(containerEnv.UNS_EDGE_PORT);

    /** `docker exec`: a command in the container's namespaces, as its user, with its environment. */
    const exec = (argv: string[]): string => execFileSync('nsenter', ['-t', String(pid), '-n', '-m', '-u', '-p', '-r', '-w', '-S', String(NODE_UID), '-G', String(NODE_UID), '--', '/usr/bin/env', '-i', ...Object.entries(containerEnv).map(([k, v]) => `${k}=${v}`), ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

    before(async function () {
      const runtime = layers.get(runtimeStage().name);
      if (!runtime) this.skip();
      assert.ok(runtime);
      const dataDir = join(work, 'data');
      mkdirSync(dataDir);
      cpSync(join(ROOT, 'flows', 'demo.json'), join(dataDir, 'flows.json'));
      for (const entry of [dataDir, join(dataDir, 'flows.json')]) chownSync(entry, NODE_UID, NODE_UID);
      const mosquittoConf = join(work, 'mosquitto.conf');
      writeFileSync(mosquittoConf, 'listener 1883 127.0.0.1\nallow_anonymous true\nuser root\n');

      // docker run --env-file deploy/uns-edge.env.example (secret filled in) -e …: the docs' command.
      const envFile = { ...parseEnvFile(readFileSync(ENV_EXAMPLE, 'utf8')), UNS_EDGE_CREDENTIAL_SECRET: 'docker-test-secret-0123456789abcdef' };
      containerEnv = {
        HOSTNAME: 'uns-edge-test', HOME: '/home/node', ...runtime.env, ...envFile,
        UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: '1883', UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: '5020',
      };
      const cmd = JSON.parse(metadata('CMD')) as string[];
      const [user] = metadata('USER').split(':');
      assert.equal(user, 'node');
      const root = join(work, 'container-root');
      mkdirSync(root);
      const script = [
        'set -eu',
        'ip link set lo up',
        'hostname uns-edge-test',
        // The pod's neighbours in the container's network namespace.
        `/usr/sbin/mosquitto -c ${mosquittoConf} >/dev/null 2>&1 &`,
        `${process.execPath} ${join(ROOT, 'dist', 'cli', 'uns-edge.js')} simulate --port 5020 --drives 4 >/dev/null 2>&1 &`,
        'for p in 1883 5020; do for i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done; done',
        // --read-only image, --tmpfs /tmp, -v <dir>:/data
        `mount -t overlay overlay -o ro,lowerdir=${runtime.upper}:${base}:/ ${root}`,
        `mount -t proc proc ${root}/proc`,
        `mount --rbind /dev ${root}/dev`,
        `mount -t tmpfs tmpfs ${root}/tmp`,
        `mount --bind ${dataDir} ${root}/data`,
        `exec chroot ${root} /usr/bin/setpriv --reuid=${NODE_UID} --regid=${NODE_UID} --clear-groups -- /usr/bin/env -i -C ${shellQuote(runtime.cwd)} ${Object.entries(containerEnv).map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ')} ${cmd.map(shellQuote).join(' ')}`,
      ].join('\n');
      const child = spawn('unshare', ['--mount', '--net', '--uts', '--pid', '--fork', '--propagation', 'private', '--', '/bin/bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      container = child;
      child.stdout?.on('data', (d: Buffer) => { containerOutput += d.toString(); });
      child.stderr?.on('data', (d: Buffer) => { containerOutput += d.toString(); });
      containerExit = new Promise((r) => child.once('exit', (code) => r(code)));
      const deadline = Date.now() + 60_000;
      while (!/\[info\] \[uns-edge\] health/.test(containerOutput)) {
        if (child.exitCode !== null || Date.now() > deadline) assert.fail(`the container did not become ready:\n${containerOutput}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      pid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim());
    });

    after(() => {
      if (container && container.exitCode === null) container.kill('SIGKILL');
    });

    it('the HEALTHCHECK command passes inside the container and /healthz says ok (broker and plant connected)', async () => {
      const check = JSON.parse(/CMD\s+(\[.*\])$/.exec(metadata('HEALTHCHECK'))?.[1] ?? '[]') as string[];
      assert.equal(check[0], 'node');
      let body = '';
      for (let attempt = 0; attempt < 50; attempt++) {
        body = exec(['node', '-e', `fetch('http://127.0.0.1:${port()}/healthz').then((r) => r.text()).then(console.log)`]);
        if ((JSON.parse(body) as { status: string }).status === 'ok') break;
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.equal((JSON.parse(body) as { status: string }).status, 'ok', body);
      exec(check); // throws unless it exits 0
    });

    it('listens on every interface of the container, so a published port (-p) reaches it', () => {
      const listening = readFileSync(`/proc/${pid}/net/tcp`, 'utf8').trim().split('\n').slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f[3] === '0A' && parseInt(f[1].split(':')[1], 16) === port())
        .map((f) => f[1].split(':')[0]);
      assert.deepEqual(listening, ['00000000'], `the gateway listens on 0.0.0.0:${port()} (got ${listening.join(', ')} in hex); with 127.0.0.1 docker's port mapping cannot reach it`);
    });

    it('runs as the node user on a read-only image with its state in /data, and the native fast poller built by the build stage loads', () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${NODE_UID}\\s`, 'm'));
      assert.equal(exec(['node', '-e', "try { require('fs').writeFileSync('/app/probe', 'x'); console.log('ok') } catch (e) { console.log(e.code) }"]).trim(), 'EROFS');
      assert.ok(readdirSync(join(work, 'data')).includes('.config.runtime.json'), 'Node-RED\'s runtime state in /data');
      const native = exec(['node', '-e', "const r = require('/app/dist/lib/fastpoll/native.js').loadNative(); console.log(r.ok ? 'native' : 'fallback: ' + r.reason)"]).trim();
      assert.equal(native, 'native', 'the image carries the addon its build stage compiled');
    });

    it('STOPSIGNAL stops it cleanly (exit 0)', async () => {
      process.kill(pid, metadata('STOPSIGNAL') as NodeJS.Signals);
      assert.equal(await containerExit, 0, containerOutput);
    });
  });
});
