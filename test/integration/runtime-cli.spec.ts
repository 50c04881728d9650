/**
 * The built `uns-edge` CLI as an operator runs it: `node dist/cli/uns-edge.js` in a child process
 * on free ports (run `npm run build` first; `npm test` does). Every child is stopped in after().
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { request as httpRequestRaw } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createConnection, createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { bcryptHash } from '../helpers/editor-gateway';
import { freePort } from '../helpers/mosquitto';
import { startPymodbusClient } from '../helpers/pymodbus';

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'uns-edge.js');
const SECRET = 'integration-test-secret-0123456789';
const EXIT_CONFIG = 78;

/** A running `uns-edge` (or `node-red`) child: its output so far, waits on it, and a stop that reports the exit. */
class Cli {
  output = '';
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcessWithoutNullStreams;
  readonly spawnedAt = Date.now();

  constructor(args: string[], env: Record<string, string> = {}, cwd: string = ROOT, script: string = CLI) {
    // A clean environment: no UNS_EDGE_* from the developer's shell.
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_')));
    this.child = spawn(process.execPath, [script, ...args], { cwd, env: { ...base, ...env }, stdio: 'pipe' });
    this.child.stdout.on('data', (data: Buffer) => { this.output += data.toString(); });
    this.child.stderr.on('data', (data: Buffer) => { this.output += data.toString(); });
    this.exit = new Promise((resolveExit) => this.child.once('exit', (code, signal) => resolveExit({ code, signal })));
    running.add(this);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Resolves with the milliseconds since spawn once the output matches; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<number> {
    return new Promise((resolveWait, reject) => {
      const check = (): void => {
        if (pattern.test(this.output)) {
          cleanup();
          resolveWait(Date.now() - this.spawnedAt);
        }
      };
      const onExit = (): void => {
        cleanup();
        reject(new Error(`uns-edge exited before printing ${pattern}:\n${this.output}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`uns-edge did not print ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.child.stdout.removeListener('data', check);
        this.child.stderr.removeListener('data', check);
        this.child.removeListener('exit', onExit);
      };
      this.child.stdout.on('data', check);
      this.child.stderr.on('data', check);
      this.child.once('exit', onExit);
      check();
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 8000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exit;
      clearTimeout(timer);
    }
    running.delete(this);
    return this.exit;
  }
}

const running = new Set<Cli>();
// If the test run itself dies, take the children with it.
process.on('exit', () => {
  for (const cli of running) cli.kill();
});

function rssMegabytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) / 1024;
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolveRefused) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolveRefused(false); });
    socket.once('error', () => resolveRefused(true));
  });
}

/** GET over TLS, trusting `ca` only. */
function httpsGetText(port: number, path: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet, reject) => {
    httpsGet({ host: '127.0.0.1', port, path, ca, servername: 'localhost' }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      response.on('end', () => resolveGet({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** A request with exactly these headers (fetch adds Sec-Fetch-* of its own). */
function httpRequest(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolveRequest, reject) => {
    const request = httpRequestRaw({ host: '127.0.0.1', port, method, path, headers }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      response.on('end', () => resolveRequest({ status: response.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** A flow of core nodes only: inject once into debug. */
const CORE_FLOW = [
  { id: 'tab1', type: 'tab', label: 'core only' },
  { id: 'inject1', type: 'inject', z: 'tab1', name: 'once', props: [{ p: 'payload' }], repeat: '', once: true, onceDelay: 0.1, topic: '', payload: '', payloadType: 'date', x: 120, y: 80, wires: [['debug1']] },
  { id: 'debug1', type: 'debug', z: 'tab1', name: 'sink', active: true, tosidebar: false, console: false, complete: 'payload', x: 320, y: 80, wires: [] },
];

describe('uns-edge CLI (integration)', function () {
  let dir: string;
  let flowFile: string;

  before(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-edge-cli-'));
    flowFile = join(dir, 'flows.json');
    writeFileSync(flowFile, JSON.stringify(CORE_FLOW));
  });
  afterEach(async () => {
    await Promise.all([...running].map((cli) => cli.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help, and usage errors exit 2 with the usage', async () => {
    const help = new Cli(['run', '--help']);
    assert.equal((await help.exit).code, 0);
    assert.match(help.output, /uns-edge run --flows <file>/);
    assert.match(help.output, /--headless/);
    const unknown = new Cli(['run', '--flows', flowFile, '--no-such-option']);
    assert.equal((await unknown.exit).code, 2);
    assert.match(unknown.output, /Unknown option '--no-such-option'/);
    assert.match(unknown.output, /Options:/);
    const command = new Cli(['deploy']);
    assert.equal((await command.exit).code, 2);
    assert.match(command.output, /unknown command "deploy"/);
  });

  it('run --headless: no editor or admin API, /healthz JSON, Prometheus /metrics with process metrics, clean stop', async () => {
    const port = await freePort();
    const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port)]);
    const readyMs = await cli.waitFor(/gateway ready in/);
    const base = `http://127.0.0.1:${port}`;

    for (const path of ['/', '/flows', '/settings', '/diagnostics']) {
      assert.equal((await fetch(base + path)).status, 404, `${path} must not be served headless`);
    }
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.match(health.headers.get('content-type') ?? '', /application\/json/);
    const report = await health.json() as { status: string; flows: { state: string; nodes: number }; versions: Record<string, string>; uptime: number };
    assert.equal(report.status, 'ok');
    assert.equal(report.flows.state, 'started');
    assert.equal(report.flows.nodes, CORE_FLOW.length);
    assert.match(report.versions['node-red'], /^4\./);
    assert.ok(report.uptime > 0);

    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    assert.match(text, /^# TYPE uns_edge_process_resident_memory_bytes gauge$/m);
    assert.match(text, /^uns_edge_nodejs_eventloop_lag_seconds \d/m);
    assert.match(text, /^uns_edge_flows_running 1$/m);
    assert.match(text, /^uns_edge_build_info\{version="[^"]+",node_red="4\.[^"]+"\} 1$/m);

    await new Promise((settle) => setTimeout(settle, 2000));
    const rss = rssMegabytes(cli.pid);
    console.log(`      headless gateway: ready ${readyMs} ms after spawn, idle RSS ${rss.toFixed(1)} MB`);

    const stoppedAt = Date.now();
    const { code } = await cli.stop();
    assert.equal(code, 0, cli.output);
    assert.ok(Date.now() - stoppedAt < 5000, 'stops within 5 s');
    assert.match(cli.output, /SIGTERM: stopping[\s\S]*Stopped flows[\s\S]*\[uns-edge\] stopped/);
  });

  it('refuses the editor on a non-loopback address without adminAuth: clear message, exit 78, nothing listening', async () => {
    const port = await freePort();
    const cli = new Cli(['run', '--flows', flowFile, '--host', '0.0.0.0', '--port', String(port)], { UNS_EDGE_CREDENTIAL_SECRET: SECRET });
    const { code } = await cli.exit;
    assert.equal(code, EXIT_CONFIG);
    assert.match(cli.output, /refusing to start: the editor would listen on 0\.0\.0\.0:\d+, which is not a loopback address, without adminAuth/);
    assert.match(cli.output, /--headless/);
    assert.ok(await connectionRefused(port));
  });

  it('refuses an admin password that is not a bcrypt hash: clear message, exit 78, the password not echoed', async () => {
    const port = await freePort();
    const cli = new Cli(['run', '--flows', flowFile, '--host', '0.0.0.0', '--port', String(port)], {
      UNS_EDGE_CREDENTIAL_SECRET: SECRET, UNS_EDGE_ADMIN_USER: 'operator', UNS_EDGE_ADMIN_PASSWORD_HASH: 'correct horse battery',
    });
    assert.equal((await cli.exit).code, EXIT_CONFIG, cli.output);
    assert.match(cli.output, /refusing to start: adminAuth user "operator" has a password that is not a bcrypt hash/);
    assert.doesNotMatch(cli.output, /correct horse/);
    assert.ok(await connectionRefused(port));
  });

  it('sets V8 heap growth factor 2 before the flows start and says so, by default and when chosen; v8 leaves V8 alone and says nothing', async () => {
    const cases: Array<[Record<string, string>, RegExp | undefined]> = [
      [{}, /V8 --heap-growing-percent=100 \(the default; UNS_EDGE_HEAP_GROWING_PERCENT=v8 keeps V8's own heuristic\): the old generation grows to at most 2× the live heap/],
      [{ UNS_EDGE_HEAP_GROWING_PERCENT: '50' }, /V8 --heap-growing-percent=50 \(UNS_EDGE_HEAP_GROWING_PERCENT\): the old generation grows to at most 1\.5× the live heap/],
      [{ UNS_EDGE_HEAP_GROWING_PERCENT: 'v8' }, undefined],
    ];
    for (const [env, line] of cases) {
      const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(await freePort())], env);
      await cli.waitFor(/gateway ready in/);
      assert.match(cli.output, /Starting flows/);
      if (line) assert.match(cli.output.split('Starting flows')[0]!, line, 'before the flows start');
      else assert.doesNotMatch(cli.output, /heap-growing-percent/);
      assert.equal((await cli.stop()).code, 0, cli.output);
    }
  });

  it('refuses a UNS_EDGE_HEAP_GROWING_PERCENT that is not a whole number 10..300 or v8 (exit 78, nothing listening)', async () => {
    for (const setting of ['abc', '5', '1000', '1.5']) {
      const port = await freePort();
      const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port)], { UNS_EDGE_HEAP_GROWING_PERCENT: setting });
      assert.equal((await cli.exit).code, EXIT_CONFIG, cli.output);
      assert.match(cli.output, new RegExp(`UNS_EDGE_HEAP_GROWING_PERCENT=${setting.replace('.', '\\.')}: use a whole number 10\\.\\.300`));
      assert.ok(await connectionRefused(port));
    }
  });

  it('refuses a gateway with the editor on and no UNS_EDGE_CREDENTIAL_SECRET', async () => {
    const cli = new Cli(['run', '--flows', flowFile, '--port', String(await freePort())]);
    assert.equal((await cli.exit).code, EXIT_CONFIG);
    assert.match(cli.output, /UNS_EDGE_CREDENTIAL_SECRET is not set and the editor is on/);
  });

  it('refuses a flows file that is not valid JSON (Node-RED would run it as empty flows)', async () => {
    writeFileSync(flowFile, '[{"id":"tab1","type":"tab"},');
    const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(await freePort())]);
    assert.equal((await cli.exit).code, EXIT_CONFIG);
    assert.match(cli.output, /flows\.json is not valid JSON/);
  });

  it('excludes the exec node on a gateway: a flow using it stays stopped and /healthz says why (503)', async () => {
    const execNode = { id: 'exec1', type: 'exec', z: 'tab1', command: 'id', addpay: '', append: '', useSpawn: 'false', timer: '', winHide: false, oldrc: false, name: '', x: 320, y: 160, wires: [[], [], []] };
    writeFileSync(flowFile, JSON.stringify([...CORE_FLOW, execNode]));
    const port = await freePort();
    const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port)]);
    await cli.waitFor(/flows NOT started: missing node types: exec/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 503);
    const report = await health.json() as { status: string; flows: { state: string; problem: string } };
    assert.equal(report.status, 'unavailable');
    assert.equal(report.flows.problem, 'missing node types: exec');
    assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /^uns_edge_flows_running 0$/m);
  });

  it('with adminAuth from the environment: starts on 0.0.0.0, the admin API needs a token, the editor is branded', async () => {
    const port = await freePort();
    const cli = new Cli(['run', '--flows', flowFile, '--host', '0.0.0.0', '--port', String(port)], {
      UNS_EDGE_CREDENTIAL_SECRET: SECRET,
      UNS_EDGE_ADMIN_USER: 'operator',
      UNS_EDGE_ADMIN_PASSWORD_HASH: bcryptHash('correct horse battery'),
    });
    const readyMs = await cli.waitFor(/gateway ready in/);
    console.log(`      gateway with editor: ready ${readyMs} ms after spawn`);
    assert.match(cli.output, /served over plain HTTP/);
    const base = `http://127.0.0.1:${port}`;

    assert.equal((await fetch(`${base}/flows`)).status, 401);
    const refused = await fetch(`${base}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'node-red-editor', grant_type: 'password', scope: '*', username: 'operator', password: 'wrong' }),
    });
    assert.equal(refused.status, 403);
    const granted = await fetch(`${base}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'node-red-editor', grant_type: 'password', scope: '*', username: 'operator', password: 'correct horse battery' }),
    });
    assert.equal(granted.status, 200);
    const { access_token: token, expires_in: expiresIn } = await granted.json() as { access_token: string; expires_in: number };
    assert.equal(expiresIn, 8 * 3600);
    // The login token is on disk in the sessions file: only the gateway's user may read it.
    const sessions = join(dir, '.sessions.json');
    assert.ok(readFileSync(sessions, 'utf8').includes(token));
    assert.equal((statSync(sessions).mode & 0o777).toString(8), '600');
    const flows = await fetch(`${base}/flows`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(flows.status, 200);
    assert.deepEqual(((await flows.json()) as { id: string }[]).map((node) => node.id).sort(), CORE_FLOW.map((node) => node.id).sort());

    assert.match(await (await fetch(`${base}/`)).text(), /<title>UNS Edge<\/title>/);
    const theme = await (await fetch(`${base}/theme`)).json() as { header: { title: string; image: string }; login?: { image: string }; page: { css: string[] } };
    assert.equal(theme.header.title, 'UNS Edge');
    assert.ok(theme.page.css.some((css) => css.endsWith('theme.css')));
    assert.equal((await fetch(`${base}/${theme.header.image}`)).headers.get('content-type'), 'image/svg+xml');
    const login = await (await fetch(`${base}/auth/login`)).json() as { type: string; image?: string };
    assert.equal(login.type, 'credentials');
    assert.match(login.image ?? '', /login\.svg$/);
    // The health and metrics endpoints stay readable without a token (for probes and scrapers).
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  describe('/healthz names what failed while the flows run', () => {
    const TAB = { id: 'tab1', type: 'tab', label: 'line 1' };
    const LINK = { id: 'link1', type: 'uns-modbus-link', z: 'tab1', name: 'plc', transport: 'tcp', host: '127.0.0.1', port: '1', timeout: 1000, reconnect: 1000 };
    const READ = {
      id: 'read1', type: 'uns-modbus-read', z: 'tab1', name: 'drive 1', link: 'link1', unitId: 1, interval: 1000, topic: 'acme/p/a/l/c/drive1',
      metrics: [{ name: 'speed', table: 'input', address: 2, type: 'int16' }], x: 120, y: 80, wires: [[]],
    };
    interface Health { status: string; reasons: string[]; nodes: { id: string; kind: string; message: string }[]; versions: Record<string, string> }
    const health = async (port: number): Promise<Health> => await (await fetch(`http://127.0.0.1:${port}/healthz`)).json() as Health;

    it('a node configuration error (unit id 300): degraded, naming the node and its error', async () => {
      writeFileSync(flowFile, JSON.stringify([TAB, LINK, { ...READ, unitId: 300 }]));
      const port = await freePort();
      const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port)]);
      await cli.waitFor(/gateway ready in/);
      const report = await health(port);
      assert.equal(report.status, 'degraded');
      assert.ok(report.reasons.includes('uns-modbus-read "drive 1" (read1): Unit id must be an integer 0..255, got 300'), report.reasons.join('\n'));
      assert.match(cli.output, /\/healthz degraded: uns-modbus-read read1: Unit id must be an integer 0\.\.255, got 300/);
    });

    it('credentials that do not decrypt with the secret: degraded, saying so', async () => {
      // Node-RED's credential format: aes-256-ctr, key sha256(secret), hex IV then base64 (runtime/lib/nodes/credentials.js).
      const key = createHash('sha256').update('another-secret-0123456789').digest();
      const iv = randomBytes(16);
      const cipher = createCipheriv('aes-256-ctr', key, iv);
      const encrypted = iv.toString('hex') + cipher.update(JSON.stringify({ broker1: { user: 'u', password: 'p' } }), 'utf8', 'base64') + cipher.final('base64');
      writeFileSync(join(dir, 'flows_cred.json'), JSON.stringify({ $: encrypted }));
      writeFileSync(flowFile, JSON.stringify([...CORE_FLOW, { id: 'broker1', type: 'uns-broker', name: 'plant broker', host: '127.0.0.1', port: '1', protocolVersion: '4' }]));
      const port = await freePort();
      const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port)], { UNS_EDGE_CREDENTIAL_SECRET: SECRET });
      await cli.waitFor(/gateway ready in/);
      const report = await health(port);
      assert.equal(report.status, 'degraded');
      assert.match(report.reasons[0], /credentials file could not be decrypted \(credentials_load_failed\).*UNS_EDGE_CREDENTIAL_SECRET/);
    });

    it('a deploy whose ids collide (tab and config node: "Circular config node dependency"): degraded, naming the id and the nodes that did not start', async () => {
      const port = await freePort();
      const cli = new Cli(['run', '--flows', flowFile, '--port', String(port)], { UNS_EDGE_CREDENTIAL_SECRET: SECRET });
      await cli.waitFor(/gateway ready in/);
      assert.equal((await health(port)).status, 'ok');
      const colliding = [{ ...TAB, id: 'link1' }, { ...LINK, z: 'link1' }, { ...CORE_FLOW[1], z: 'link1' }];
      const deployed = await fetch(`http://127.0.0.1:${port}/flows`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(colliding) });
      assert.equal(deployed.status, 204);
      await cli.waitFor(/Circular config node dependency detected/);
      const report = await health(port);
      assert.equal(report.status, 'degraded');
      assert.match(report.reasons.join('\n'), /\(link1\)[\s\S]*2 entries of the flows share this id \(tab, uns-modbus-link\)/);
      assert.ok(report.nodes.some((node) => node.id === 'inject1' && node.kind === 'not-started'), JSON.stringify(report.nodes));
    });

    it('refuses a flows file [1,2,3] naming what is wrong, and one that uses an id twice (exit 78)', async () => {
      writeFileSync(flowFile, '[1,2,3]');
      const numbers = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(await freePort())]);
      assert.equal((await numbers.exit).code, EXIT_CONFIG);
      assert.match(numbers.output, /must hold node objects, each with an "id" and a "type" string: entry 0 is the number 1/);
      assert.doesNotMatch(numbers.output, /missing node types: *$/m);
      writeFileSync(flowFile, JSON.stringify([...CORE_FLOW, CORE_FLOW[1]]));
      const twice = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(await freePort())]);
      assert.equal((await twice.exit).code, EXIT_CONFIG);
      assert.match(twice.output, /uses an id twice: "inject1" \(entries 1 and 3\)/);
    });

    it('reports the installed Node-RED version, without the "-git" Node-RED adds inside a git clone', async () => {
      const port = await freePort();
      const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port)]);
      await cli.waitFor(/gateway ready in/);
      const installed = (JSON.parse(readFileSync(require.resolve('node-red/package.json'), 'utf8')) as { version: string }).version;
      const ours = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
      assert.deepEqual([(await health(port)).versions['node-red'], (await health(port)).versions['uns-edge']], [installed, ours]);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, new RegExp(`^uns_edge_build_info\\{version="${ours}",node_red="${installed}"\\} 1$`, 'm'));
    });
  });

  it('a --settings file is merged in: its https makes the server TLS-only', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const settingsFile = join(dir, 'overrides.js');
    writeFileSync(settingsFile, `const fs = require('node:fs');
module.exports = { https: { key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}) } };`);
    const port = await freePort();
    const cli = new Cli(['run', '--flows', flowFile, '--headless', '--port', String(port), '--settings', settingsFile]);
    await cli.waitFor(new RegExp(`health https://127\\.0\\.0\\.1:${port}/healthz`));
    const health = await httpsGetText(port, '/healthz', readFileSync(cert, 'utf8'));
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'plain HTTP is not served');
  });

  it('simulate serves the drives over Modbus TCP to an independent client (pymodbus)', async () => {
    const port = await freePort();
    // OPC UA on a free port: another test's plant may still hold the default 4850. Its PKI in a folder of the test's own.
    const cli = new Cli(['simulate', '--port', String(port), '--opcua-port', '0', '--drives', '2', '--state-dir', join(dir, 'opcua-sim')]);
    await cli.waitFor(/Ready in/);
    const client = await startPymodbusClient('127.0.0.1', port);
    try {
      const drive = await client.request({ op: 'read_holding_registers', address: 0, count: 4, slave: 2 });
      assert.ok(drive.ok, JSON.stringify(drive));
      assert.equal(drive.registers?.length, 4);
      // Unit 3 does not exist with --drives 2: a TCP gateway answers 0A (Modbus App Protocol v1.1b3 §7).
      const absent = await client.request({ op: 'read_holding_registers', address: 0, count: 1, slave: 3 });
      assert.deepEqual(absent, { ok: false, exception: 0x0a });
    } finally {
      await client.close();
    }
    assert.equal((await cli.stop()).code, 0);
  });

  it('simulate --state-dir keeps the OPC UA state there; a PKI lock left by a killed plant is named while the start waits for it', async () => {
    const stateDir = join(dir, 'plant-state');
    // What `kill -9` during the PKI's first initialisation leaves: node-opcua-pki's lock directory, no longer refreshed.
    const lock = join(stateDir, 'pki', 'mutex.lock');
    mkdirSync(lock, { recursive: true });
    const leftAt = new Date(Date.now() - 116_000);
    utimesSync(lock, leftAt, leftAt);
    const cli = new Cli(['simulate', '--port', '0', '--opcua-port', '0', '--drives', '1'], { UNS_EDGE_SIM_STATE_DIR: stateDir });
    await cli.waitFor(/Ready in/, 60_000);
    const notice = cli.output.split('\n').find((l) => l.includes('[warn] [uns-edge] the PKI folder'));
    assert.ok(notice?.includes(`the PKI folder ${join(stateDir, 'pki')} is locked (${lock}, refreshed `), cli.output);
    // 116 s old when made; a slow start reads it a few seconds later (at 120 s node-opcua-pki takes it over, after the notice).
    assert.match(notice!, /refreshed 1[12]\d s ago\): waiting for the process that holds it, at most ~\d+ s more if that process was killed/);
    assert.ok(existsSync(join(stateDir, 'users.json')), 'users in the state folder');
    assert.ok(existsSync(join(stateDir, 'pki', 'own', 'certs')), 'PKI in the state folder');
    assert.equal((await cli.stop()).code, 0);
    // Started again with no lock left: no notice.
    const again = new Cli(['simulate', '--port', '0', '--opcua-port', '0', '--drives', '1', '--state-dir', stateDir]);
    await again.waitFor(/Ready in/, 60_000);
    assert.doesNotMatch(again.output, /is locked/);
    assert.equal((await again.stop()).code, 0);
  });

  it('simulate with UNS_EDGE_SIM_STATE_DIR empty (VAR= in a unit file) keeps its state in the default folder, not in the working folder itself', async () => {
    const cwd = mkdtempSync(join(dir, 'plant-cwd-'));
    const cli = new Cli(['simulate', '--port', '0', '--opcua-port', '0', '--drives', '1'], { UNS_EDGE_SIM_STATE_DIR: '' }, cwd);
    await cli.waitFor(/Ready in/, 60_000);
    assert.ok(existsSync(join(cwd, '.uns-edge', 'opcua-sim', 'users.json')), cli.output);
    assert.ok(!existsSync(join(cwd, 'users.json')) && !existsSync(join(cwd, 'pki')), 'nothing written into the working folder itself');
    assert.equal((await cli.stop()).code, 0);
  });

  describe('stock node-red -s dist/settings.js', () => {
    const redJs = join(dirname(require.resolve('node-red/package.json')), 'red.js');
    const settingsJs = join(ROOT, 'dist', 'settings.js');

    it('serves the hardened, branded editor on loopback, configured from the environment', async () => {
      const port = await freePort();
      const red = new Cli(['-s', settingsJs, '-p', String(port)], {
        UNS_EDGE_USER_DIR: dir, UNS_EDGE_FLOWS: flowFile, UNS_EDGE_CREDENTIAL_SECRET: SECRET,
      }, ROOT, redJs);
      await red.waitFor(/Started flows/);
      await red.waitFor(/Server now running at/);
      assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /<title>UNS Edge<\/title>/);
      const settings = await (await fetch(`http://127.0.0.1:${port}/settings`)).json() as { paletteCategories: string[]; externalModules?: { palette?: { allowInstall?: boolean } } };
      assert.equal(settings.paletteCategories[0], 'UNS Edge');
      assert.equal(settings.externalModules?.palette?.allowInstall, false);
      assert.equal((await fetch(`http://127.0.0.1:${port}/diagnostics`)).status, 403, "diagnostics disabled");
    });

    const stockEnv = (): Record<string, string> => ({ UNS_EDGE_USER_DIR: dir, UNS_EDGE_FLOWS: flowFile, UNS_EDGE_CREDENTIAL_SECRET: SECRET });

    it('refuses an editor on 0.0.0.0 without adminAuth while loading the settings file (exit 78)', async () => {
      const port = await freePort();
      const red = new Cli(['-s', settingsJs, '-p', String(port)], { ...stockEnv(), UNS_EDGE_HOST: '0.0.0.0' }, ROOT, redJs);
      assert.equal((await red.exit).code, EXIT_CONFIG, red.output);
      assert.match(red.output, /refusing to start: the editor would listen on 0\.0\.0\.0:\d+, which is not a loopback address, without adminAuth/);
      assert.ok(await connectionRefused(port));
    });

    // A network neighbour's view of this machine: its first non-loopback IPv4 address.
    const lanAddress = Object.values(networkInterfaces()).flat().find((address) => address && !address.internal && address.family === 'IPv4')?.address;
    for (const host of ['0.0.0.0', '::', ...(lanAddress ? [lanAddress] : [])]) {
      it(`-D uiHost=${host} after loading the settings: stopped before listening, exit 78, the admin API never answers`, async () => {
        const port = await freePort();
        const red = new Cli(['-s', settingsJs, '-p', String(port), '-D', `uiHost=${host}`], stockEnv(), ROOT, redJs);
        // Probe the admin API from the network for as long as the process lives: it must never answer.
        const probe = `http://${lanAddress ?? '127.0.0.1'}:${port}/flows`;
        let exited = false;
        void red.exit.then(() => { exited = true; });
        let answered: number | undefined;
        while (!exited) {
          answered ??= await fetch(probe).then((response) => response.status, () => undefined);
          await new Promise((pause) => setTimeout(pause, 100));
        }
        assert.equal((await red.exit).code, EXIT_CONFIG, red.output);
        assert.match(red.output, new RegExp(`refusing to start: the editor would listen on ${host.replace(/\./g, '\\.')}:\\d+, which is not a loopback address, without adminAuth`));
        assert.doesNotMatch(red.output, /Server now running/);
        assert.equal(answered, undefined, `the admin API answered ${answered}`);
      });
    }

    it('-D adminAuth with a plain-text password is refused before listening (exit 78), the password is not echoed', async () => {
      const adminAuth = JSON.stringify({ type: 'credentials', users: [{ username: 'operator', password: 'hunter2-plain', permissions: '*' }] });
      const red = new Cli(['-s', settingsJs, '-p', String(await freePort()), '-D', `adminAuth=${adminAuth}`], stockEnv(), ROOT, redJs);
      assert.equal((await red.exit).code, EXIT_CONFIG, red.output);
      assert.match(red.output, /adminAuth user "operator" has a password that is not a bcrypt hash[\s\S]*node-red admin hash-pw/);
      assert.doesNotMatch(red.output, /hunter2-plain/);
    });

    it('editor and admin API: no wildcard CORS, framing and sniffing forbidden, other sites\' requests refused', async () => {
      const port = await freePort();
      const red = new Cli(['-s', settingsJs, '-p', String(port)], stockEnv(), ROOT, redJs);
      await red.waitFor(/Server now running at/);
      const base = `http://127.0.0.1:${port}`;
      for (const path of ['/', '/settings', '/flows', '/red/red.min.js']) {
        const response = await fetch(base + path, { headers: { Origin: 'http://attacker.example' } });
        assert.equal(response.status, 200, path);
        assert.equal(response.headers.get('access-control-allow-origin'), null, `${path}: no Access-Control-Allow-Origin`);
        assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
        assert.equal(response.headers.get('content-security-policy'), "frame-ancestors 'none'", path);
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
      }
      // What a form on any web page can send to a loopback editor without CORS: a deploy.
      // (node:http, not fetch: fetch adds Sec-Fetch-Mode: cors of its own.)
      const forged = await httpRequest(port, 'POST', '/flows', {
        'Content-Type': 'application/x-www-form-urlencoded', 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate', Origin: 'http://attacker.example',
      }, '0[id]=x1&0[type]=tab');
      assert.equal(forged.status, 403);
      assert.match(forged.body, /other sites' pages/);
      assert.deepEqual(JSON.parse(readFileSync(flowFile, 'utf8')), CORE_FLOW, 'nothing was deployed');
      // Following a link to the editor from another site still opens it.
      const link = await httpRequest(port, 'GET', '/', { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' });
      assert.equal(link.status, 200);
    });
  });

  describe('demo', () => {
    let blocker: Server | undefined;
    afterEach(async () => {
      await new Promise<void>((done) => (blocker ? blocker.close(() => done()) : done()));
      blocker = undefined;
    });

    async function demoPorts(): Promise<Record<string, string>> {
      return {
        UNS_EDGE_PORT: String(await freePort()),
        UNS_EDGE_MQTT_PORT: String(await freePort()),
        UNS_EDGE_SIM_PORT: String(await freePort()),
        UNS_EDGE_OPCUA_SIM_PORT: '0',
        UNS_EDGE_DEMO_DIR: join(dir, 'demo'),
      };
    }

    it('with the MQTT port taken: says so, names UNS_EDGE_MQTT_PORT, exits non-zero', async () => {
      const env = await demoPorts();
      blocker = createServer();
      await new Promise<void>((listening) => blocker?.listen(Number(env.UNS_EDGE_MQTT_PORT), '127.0.0.1', listening));
      const cli = new Cli(['demo'], env);
      const { code } = await cli.exit;
      assert.equal(code, 1);
      assert.match(cli.output, new RegExp(`embedded MQTT broker: port 127\\.0\\.0\\.1:${env.UNS_EDGE_MQTT_PORT} is already in use.*UNS_EDGE_MQTT_PORT`));
      assert.ok(await connectionRefused(Number(env.UNS_EDGE_PORT)), 'nothing else was left listening');
      assert.ok(await connectionRefused(Number(env.UNS_EDGE_SIM_PORT)));
    });

    it('starts broker, plant and editor; mosquitto_sub sees UNS topics change value within 10 s of the start', async () => {
      const env = await demoPorts();
      const cli = new Cli(['demo'], env, dir);
      const readyMs = await cli.waitFor(/UNS Edge demo ready in/);
      console.log(`      demo: editor ready ${readyMs} ms after spawn`);
      assert.match(cli.output, new RegExp(`mosquitto_sub -h 127\\.0\\.0\\.1 -p ${env.UNS_EDGE_MQTT_PORT} -t '#' -v`));
      assert.equal((await fetch(`http://127.0.0.1:${env.UNS_EDGE_PORT}/healthz`)).status, 200);
      assert.match(await (await fetch(`http://127.0.0.1:${env.UNS_EDGE_PORT}/`)).text(), /<title>UNS Edge<\/title>/);
      assert.ok(existsSync(join(env.UNS_EDGE_DEMO_DIR, 'flows.json')), 'the demo flow is copied into the demo dir');

      // What the README tells a newcomer to run: Mosquitto's own subscriber against the embedded broker.
      const subscriber = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', env.UNS_EDGE_MQTT_PORT, '-t', '#', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const seen = new Map<string, Set<string>>();
        const topic = await new Promise<string>((found, fail) => {
          const deadline = setTimeout(() => fail(new Error(`no UNS topic changed value within 10 s of the start; seen: ${[...seen.keys()].slice(0, 10).join(', ')}`)),
            Math.max(0, cli.spawnedAt + 10_000 - Date.now()));
          let partial = '';
          subscriber.stdout.on('data', (chunk: Buffer) => {
            const lines = (partial + chunk.toString()).split('\n');
            partial = lines.pop() ?? '';
            for (const line of lines) {
              const [name = '', ...rest] = line.split(' ');
              const values = seen.get(name) ?? new Set<string>();
              values.add(JSON.stringify((JSON.parse(rest.join(' ')) as { value?: unknown }).value));
              seen.set(name, values);
              // An ISA-95 asset path (6 levels) plus a metric whose value changed between two messages.
              if (name.split('/').length >= 7 && values.size >= 2) {
                clearTimeout(deadline);
                found(name);
              }
            }
          });
          subscriber.once('exit', (code) => fail(new Error(`mosquitto_sub exited with ${code}`)));
        });
        console.log(`      demo: ${topic} changed value ${Date.now() - cli.spawnedAt} ms after spawn`);
      } finally {
        subscriber.kill();
      }
    });

    it('the palette and Import ▸ Examples hold uns-edge and core only, no catalogue from the internet, no [audit] line per editor request', async function () {
      this.timeout(60_000);
      const env = await demoPorts();
      const cli = new Cli(['demo'], env, dir);
      await cli.waitFor(/UNS Edge demo ready in/, 45_000);
      const base = `http://127.0.0.1:${env.UNS_EDGE_PORT}`;
      const nodes = await (await fetch(`${base}/nodes`, { headers: { Accept: 'application/json' } })).json() as { module: string }[];
      // The product: core, uns-edge and its optional peer, the dashboard of the pilot template.
      // Not the benchmark peers among the devDependencies (node-red-contrib-modbus, -opcua).
      const product = new Set(['node-red', 'uns-edge', '@flowfuse/node-red-dashboard']);
      const modules = [...new Set(nodes.map((node) => node.module))].sort();
      assert.deepEqual(modules.filter((m) => !product.has(m)), [], 'only product modules in the palette');
      assert.ok(modules.includes('uns-edge') && modules.includes('node-red'), modules.join(', '));
      const examples = ((await (await fetch(`${base}/library/examples/flows/`)).json()) as string[]).sort();
      assert.deepEqual(examples.filter((m) => !product.has(m)), [], 'only product examples');
      assert.ok(examples.includes('uns-edge'), examples.join(', '));
      const settings = await (await fetch(`${base}/settings`)).json() as { editorTheme: { palette: { catalogues?: string[] } } };
      assert.deepEqual(settings.editorTheme.palette.catalogues, [], 'the editor fetches no catalogue.nodered.org');
      for (const path of ['/', '/settings', '/flows', '/nodes']) await (await fetch(base + path)).arrayBuffer();
      // Node-RED writes an audit line (to a pipe: synchronously) before it answers, so the lines of the
      // first requests have arrived by the time the last answer has.
      assert.doesNotMatch(cli.output, /\[audit\]/);
    });

    it('keeps the user\'s edits of the demo flow across starts; --reset restores the shipped flow', async () => {
      const shipped = join(ROOT, 'examples', 'demo.json');
      const env = await demoPorts();
      const demoFlows = join(env.UNS_EDGE_DEMO_DIR, 'flows.json');
      // Taking the MQTT port stops each start right after the demo dir is prepared.
      blocker = createServer();
      await new Promise<void>((listening) => blocker?.listen(Number(env.UNS_EDGE_MQTT_PORT), '127.0.0.1', listening));
      await new Cli(['demo'], env).exit;
      assert.equal(readFileSync(demoFlows, 'utf8'), readFileSync(shipped, 'utf8'));
      writeFileSync(demoFlows, JSON.stringify(CORE_FLOW));
      await new Cli(['demo'], env).exit;
      assert.deepEqual(JSON.parse(readFileSync(demoFlows, 'utf8')), CORE_FLOW, 'edits persist');
      await new Cli(['demo', '--reset'], env).exit;
      assert.equal(readFileSync(demoFlows, 'utf8'), readFileSync(shipped, 'utf8'));
      assert.deepEqual(JSON.parse(readFileSync(`${demoFlows}.bak`, 'utf8')), CORE_FLOW);
    });
  });
});
