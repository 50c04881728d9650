/**
 * `uns-edge templates` and `uns-edge new` as an operator of a gateway without an editor uses them
 * (docs/templates.md), with the built CLI (`npm run build` first; `npm test` does): for EVERY
 * flows/*.json, `uns-edge new --template NAME --set …` writes a flows file on stdout (nothing else
 * there), and `uns-edge run --headless --flows` runs it against `uns-edge simulate` (Modbus TCP and
 * OPC UA) and a real Mosquitto until GET /healthz answers "ok": every connection up, no red status.
 * An OPC UA template is run through its own documented trust procedure (its tab info): the user's
 * password in flows_cred.json, the server's certificate trusted on our side, ours moved from the
 * server's rejected folder into its trusted one. A template whose node types the runtime reports
 * missing (their issue's nodes are not committed yet) is skipped with the reason printed.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { freePort, Mosquitto } from '../helpers/mosquitto';
import { pkiFolderListing, trustRejectedClientCertificates } from '../helpers/opcua-trust';
import { RtuBus } from '../helpers/rtu-bus';

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'uns-edge.js');
const SECRET = 'templates-cli-test-secret-0123456789';
const TEMPLATES = readdirSync(join(ROOT, 'flows')).filter((file) => file.endsWith('.json')).map((file) => file.slice(0, -'.json'.length)).sort();

type FlowNode = { id: string; type: string; [key: string]: unknown };

/** A child `node dist/cli/uns-edge.js …` with a clean environment (no UNS_EDGE_* of the developer's shell). */
class Child {
  output = '';
  readonly exit: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(args: string[], options: { cwd: string; env?: Record<string, string> }) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_')));
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...base, ...options.env }, stdio: 'pipe' });
    this.child.stdout.on('data', (data: Buffer) => { this.output += data.toString(); });
    this.child.stderr.on('data', (data: Buffer) => { this.output += data.toString(); });
    this.exit = new Promise((resolveExit) => this.child.once('exit', (code) => resolveExit(code)));
  }

  /** Resolves with the first match of `pattern` in the output; rejects on exit or after `ms`. */
  waitFor(pattern: RegExp, ms = 60_000): Promise<RegExpExecArray> {
    return new Promise((resolveWait, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${pattern} within ${ms} ms:\n${this.output}`)), ms);
      const check = (): void => {
        const match = pattern.exec(this.output);
        if (match) done(undefined, match);
      };
      const onExit = (): void => done(new Error(`exited before ${pattern}:\n${this.output}`));
      const done = (error?: Error, match?: RegExpExecArray): void => {
        clearTimeout(timer);
        this.child.stdout.off('data', check);
        this.child.stderr.off('data', check);
        this.child.off('exit', onExit);
        if (error) reject(error);
        else resolveWait(match!);
      };
      this.child.stdout.on('data', check);
      this.child.stderr.on('data', check);
      this.child.once('exit', onExit);
      check();
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 8000);
    await this.exit;
    clearTimeout(timer);
  }
}

/** `uns-edge <args>` to completion: stdout and stderr apart. */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_')));
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Health { status: string; reasons: string[]; flows?: { state: string; problem?: string } }

/** The runtime did not start the flows because node types are missing: the template needs nodes not committed yet. */
class MissingTypes extends Error {}

async function health(port: number): Promise<Health> {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  return await response.json() as Health;
}

/** Polls /healthz until it says ok (event-free: the gateway has no other signal for "all connected"). */
async function healthOk(port: number, gateway: Child, ms: number, onDegraded?: () => void): Promise<Health> {
  const deadline = Date.now() + ms;
  let last: Health | undefined;
  while (Date.now() < deadline) {
    last = await health(port).catch(() => undefined);
    if (last?.status === 'ok') return last;
    if (last?.flows?.state === 'stopped' && last.flows.problem?.startsWith('missing node types')) throw new MissingTypes(last.flows.problem);
    if (last) onDegraded?.();
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 250));
  }
  throw new Error(`/healthz not ok within ${ms} ms: ${JSON.stringify(last)}\n${gateway.output}`);
}

/** Node-RED's flows_cred.json format: aes-256-ctr, key sha256(secret), hex IV then base64. */
function writeCredentials(file: string, credentials: Record<string, object>): void {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(SECRET).digest(), iv);
  writeFileSync(file, JSON.stringify({ $: iv.toString('hex') + cipher.update(JSON.stringify(credentials), 'utf8', 'base64') + cipher.final('base64') }));
}

describe('uns-edge templates / new (integration, built CLI)', function () {
  this.timeout(120_000);
  let simDir: string;
  let simulator: Child;
  let mosquitto: Mosquitto;
  let modbusPort: string;
  let opcuaPort: string;
  /** multi-line-site's second line: another Modbus TCP plant. */
  let line2Plant: SimulatedPlantHandle;
  /** legacy-rtu-4-20ma's RS-485 bus (socat pty + pymodbus RTU), or why there is none here. */
  let rtuBus: RtuBus | undefined;
  let rtuUnavailable = '';
  const gateways: Child[] = [];
  const dirs: string[] = [];

  before(async function () {
    this.timeout(180_000);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    mosquitto = await Mosquitto.start();
    simDir = mkdtempSync(join(tmpdir(), 'uns-templates-sim-'));
    simulator = new Child(['simulate', '--port', '0', '--opcua-port', '0'], { cwd: simDir });
    // Generating the server's certificate on a loaded machine takes a while.
    await simulator.waitFor(/Ready in/, 150_000);
    modbusPort = /Modbus TCP 127\.0\.0\.1, port (\d+)/.exec(simulator.output)![1]!;
    opcuaPort = /opc\.tcp:\/\/localhost:(\d+)/.exec(simulator.output)![1]!;
    line2Plant = await startSimulatedPlant({ port: 0, drives: 2 });
    rtuBus = await RtuBus.start().catch((error: Error) => { rtuUnavailable = error.message; return undefined; });
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.stop()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  after(async () => {
    await simulator?.stop();
    await line2Plant?.close();
    await rtuBus?.stop();
    await mosquitto?.stop();
    if (simDir) rmSync(simDir, { recursive: true, force: true });
  });

  /** Where each variable points in this test: the broker and the simulated plant it started. */
  function settingsFor(variables: string[]): string[] {
    const values: Record<string, string> = {
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(mosquitto.port),
      UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: modbusPort,
      UNS_EDGE_OPCUA_HOST: '127.0.0.1', UNS_EDGE_OPCUA_PORT: opcuaPort,
      UNS_EDGE_LINE1_HOST: '127.0.0.1', UNS_EDGE_LINE1_PORT: modbusPort,
      UNS_EDGE_LINE2_HOST: line2Plant.host, UNS_EDGE_LINE2_PORT: String(line2Plant.port),
      ...(rtuBus ? { UNS_EDGE_RTU_PORT: rtuBus.port } : {}),
    };
    return variables.filter((name) => name in values).flatMap((name) => ['--set', `${name}=${values[name]}`]);
  }

  function declaredVariables(flows: FlowNode[]): string[] {
    return flows.filter((node) => node.type === 'tab').flatMap((tab) => ((tab.env ?? []) as Array<{ name: string }>).map((entry) => entry.name));
  }

  /** A gateway dir with flows.json (and flows_cred.json for OPC UA logins); the gateway started on it. */
  async function startGateway(flows: FlowNode[]): Promise<{ gateway: Child; port: number; userDir: string }> {
    const userDir = mkdtempSync(join(tmpdir(), 'uns-templates-gw-'));
    dirs.push(userDir);
    writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flows));
    const endpoints = flows.filter((node) => node.type === 'uns-opcua-endpoint');
    if (endpoints.length > 0) {
      // The template's trust procedure, step "trust the server": its certificate in our trust list.
      const trusted = join(userDir, 'uns-edge', 'opcua', 'pki', 'trusted', 'certs');
      mkdirSync(trusted, { recursive: true });
      copyFileSync(join(simDir, '.uns-edge', 'opcua-sim', 'pki', 'own', 'certs', 'certificate.pem'), join(trusted, 'simulated-plant.pem'));
      const operator = (JSON.parse(readFileSync(join(simDir, '.uns-edge', 'opcua-sim', 'users.json'), 'utf8')) as Array<{ username: string; password: string }>)
        .find((user) => user.username === 'operator')!;
      writeCredentials(join(userDir, 'flows_cred.json'), Object.fromEntries(endpoints.map((endpoint) => [endpoint.id, { user: operator.username, password: operator.password }])));
    }
    const port = await freePort();
    // A dashboard (Dashboard 2.0 ui-* nodes) or an HTTP endpoint is served on Node-RED's HTTP-node side, off on a gateway unless --http-node.
    const httpNode = flows.some((node) => node.type.startsWith('ui-') || node.type === 'http in') ? ['--http-node'] : [];
    const gateway = new Child(['run', '--headless', ...httpNode, '--flows', join(userDir, 'flows.json'), '--port', String(port)],
      { cwd: userDir, env: { UNS_EDGE_CREDENTIAL_SECRET: SECRET } });
    gateways.push(gateway);
    await gateway.waitFor(/gateway ready in/);
    return { gateway, port, userDir };
  }

  /** The server's side of the trust procedure: our certificate from its rejected folder into its trusted one. */
  function trustRejectedClients(): void {
    trustRejectedClientCertificates(join(simDir, '.uns-edge', 'opcua-sim', 'pki'));
  }

  it('templates: one line per flows/*.json, name and the first sentence of its info', () => {
    const { status, stdout } = cli(['templates']);
    assert.equal(status, 0);
    const lines = stdout.trimEnd().split('\n');
    assert.deepEqual(lines.map((line) => line.split(/\s+/)[0]), TEMPLATES);
    for (const line of lines) assert.match(line, /^\S+\s{2,}\S.*[.!?]$/, line);
  });

  it('new: an unknown key is refused (exit 2) naming the known ones; an unknown template names the templates; nothing on stdout', () => {
    const badKey = cli(['new', '--template', 'vfd-template', '--set', 'UNS_EDGE_NOPE=1']);
    assert.equal(badKey.status, 2);
    assert.equal(badKey.stdout, '');
    assert.match(badKey.stderr, /has no variable UNS_EDGE_NOPE; its variables are: UNS_EDGE_MQTT_HOST, UNS_EDGE_MQTT_PORT, UNS_EDGE_SIM_HOST, UNS_EDGE_SIM_PORT/);
    const badName = cli(['new', '--template', 'no-such']);
    assert.equal(badName.status, 2);
    assert.match(badName.stderr, /no template "no-such"; the templates are: .*vfd-template/);
    assert.equal(cli(['new']).status, 2);
  });

  it('new: the same template twice runs in one gateway (fresh ids), /healthz ok', async () => {
    const twice = [0, 1].flatMap(() => {
      const { status, stdout } = cli(['new', '--template', 'vfd-template', ...settingsFor(['UNS_EDGE_MQTT_HOST', 'UNS_EDGE_MQTT_PORT', 'UNS_EDGE_SIM_HOST', 'UNS_EDGE_SIM_PORT'])]);
      assert.equal(status, 0);
      return JSON.parse(stdout) as FlowNode[];
    });
    assert.equal(new Set(twice.map((node) => node.id)).size, twice.length, 'no id twice');
    const { gateway, port } = await startGateway(twice);
    await healthOk(port, gateway, 60_000);
  });

  for (const name of TEMPLATES) {
    it(`new --template ${name}: a flows file that run --headless runs with /healthz ok against uns-edge simulate`, async function () {
      const shipped = JSON.parse(readFileSync(join(ROOT, 'flows', `${name}.json`), 'utf8')) as FlowNode[];
      if (declaredVariables(shipped).includes('UNS_EDGE_RTU_PORT') && !rtuBus) {
        console.log(`      SKIPPED ${name}: no RS-485 bus here (socat pty + pymodbus RTU server): ${rtuUnavailable}`);
        this.skip();
      }
      const { status, stdout, stderr } = cli(['new', '--template', name, ...settingsFor(declaredVariables(shipped))]);
      assert.equal(status, 0, stderr);
      const flows = JSON.parse(stdout) as FlowNode[]; // the whole of stdout is the flows JSON
      assert.equal(flows.length, shipped.length);
      assert.deepEqual(flows.filter((node) => shipped.some((original) => original.id === node.id)), [], 'every id fresh');
      const { gateway, port } = await startGateway(flows);
      const opcua = flows.some((node) => node.type === 'uns-opcua-endpoint');
      try {
        const report = await healthOk(port, gateway, 90_000, opcua ? trustRejectedClients : undefined);
        assert.deepEqual(report.reasons, []);
      } catch (error) {
        if (opcua && !(error instanceof MissingTypes)) {
          const pki = join(simDir, '.uns-edge', 'opcua-sim', 'pki');
          throw new Error(`${(error as Error).message}\nsimulated plant's PKI: ${pkiFolderListing(pki)}\nsimulated plant: ${simulator.output.slice(-1500)}`);
        }
        if (!(error instanceof MissingTypes)) throw error;
        console.log(`      SKIPPED ${name}: ${error.message}: the package does not register them yet (their issue's nodes are not committed)`);
        this.skip();
      }
    });
  }
});
