/**
 * Issue 12 item 3: the whole Modbus → UNS pipeline, counted at the broker.
 *
 * Processes: the simulated plant (sim/, `--drives` drives over `--ports` Modbus TCP ports, unit ids 1..n per
 * port; bench/lib/plant-scale-plant.ts), Mosquitto (test/helpers/mosquitto.ts, `sys_interval 1` for its
 * dropped-message counter), the counter (bench/lib/pipeline-counter.ts: an MQTT.js subscriber to `#` that
 * counts and checks every tag update the broker delivers), and, one side at a time, the gateway: an embedded
 * runtime in a child process (`uns-edge run --headless` for uns-edge, Node-RED's `red.js` for the peer, both
 * trimmed to the node files their flows use; lib/pipeline-gateway-hook.ts preloaded to count) running one of
 *
 *   uns-q0 / uns-q1   per port a `uns-modbus-link`, per drive a `uns-vfd` (the simulated-drive profile: holding
 *                     0..3 and input 0..15, decoded, scaled, plus the status signals, state and fault text: 24
 *                     metrics) → one `uns-out` (per-metric topics, retained, QoS 0 / 1) on a `uns-broker`;
 *                     link, vfd, out and broker as configured in flows/demo.json (store-and-forward on).
 *   uns-asset-q0      as uns-q0, uns-out format "asset": one JSON message per drive poll carrying its 24 metrics
 *                     (docs/uns-topics.md asset payload; the counter counts each metric as one update).
 *   uns-sparkplug     the same drives → one `uns-sparkplug-device` each → one `uns-sparkplug-edge`
 *                     (flows/sparkplug.json's settings): DDATA by exception, so fewer updates reach the broker.
 *   contrib-q0 / -q1  the flow an integrator builds today: per port a node-red-contrib-modbus `modbus-client`
 *                     (its editor defaults, parallel unit ids), per drive two `modbus-read` nodes (FC3 holding
 *                     0..3, FC4 input 0..15, same poll interval), ONE core `function` node decoding the registers
 *                     like the profile (int16, float32, uint32 ABCD/CDAB, scale) and deriving the same status
 *                     signals, state and fault text, returning one message per metric with the same topic, and
 *                     core `mqtt out` (retained, QoS 0 / 1): the same topics and the same count of values.
 *   contrib-asset-q0  the same flow with the function node returning one asset-style JSON message per read (two per
 *                     poll: `<asset>/parameters`, `<asset>/status`), the peer's own way to batch values.
 *
 * Each side gets a fresh gateway process (so its CPU and RSS are its own), polls for `--settle` s, then is
 * measured for `--seconds` s; sides rotate their order every run, `--runs` runs. Gateway CPU from
 * /proc/<pid>/stat, RSS from /proc/<pid>/status (max of samples every 250 ms). Headline: tag updates counted
 * at the broker ÷ gateway CPU seconds over the same window. Method and traps: bench/README.md.
 *
 *   npm run build
 *   node --import tsx bench/pipeline.ts [--drives 240] [--ports 4] [--interval 50] [--seconds 25] [--runs 5]
 *        [--settle 5] [--sides uns-q0,uns-q1,uns-asset-q0,uns-sparkplug,contrib-q0,contrib-q1,contrib-asset-q0]
 *        [--max-in-flight 1] [--uns-node-flags="--max-semi-space-size=4"] [--cpu-prof-dir DIR] [--profile]
 *        [--profile-side uns-q0] [--write] [--section pipeline]
 *
 * --uns-node-flags: Node/V8 flags for the uns-edge gateway process only (what a flag costs in throughput and saves in
 * RSS); --section: the docs/benchmarks.md section --write replaces (a variant such as --max-in-flight 16 gets its own).
 * --cpu-prof-dir profiles every measured side (the profiler's cost is then in the figures); --profile runs one more,
 * unmeasured side (--profile-side) under the profiler after the runs and puts its top functions in the report.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MAX_IN_FLIGHT } from '../lib/modbus/link-config';
import { flowTypes, headlessTrim, moduleUsed } from '../lib/runtime/headless-footprint';
import { freePort, Mosquitto } from '../test/helpers/mosquitto';
import { contribClient } from './lib/modbus-flow';
import { REPO_ROOT } from './lib/node-red';
import { startPipelineCounter, type PipelineCounter, type WindowCount } from './lib/pipeline-counter';
import { startPlant, type PlantProcess } from './lib/plant-scale-plant';
import { writeSection } from './lib/results-doc';
import { findPid, LoadMeter, machineBusySeconds, machineFacts, processCpuSeconds, processRssMb, summarize, type Summary } from './lib/stats';

// ---------------------------------------------------------------- sides and their flows

const SIDE_IDS = ['uns-q0', 'uns-q1', 'uns-asset-q0', 'uns-sparkplug', 'contrib-q0', 'contrib-q1', 'contrib-asset-q0'] as const;
type SideId = (typeof SIDE_IDS)[number];

const SIDE_LABEL: Record<SideId, string> = {
  'uns-q0': '`uns-vfd` → `uns-out` QoS 0',
  'uns-q1': '`uns-vfd` → `uns-out` QoS 1',
  'uns-asset-q0': '`uns-vfd` → `uns-out` QoS 0, one JSON message per asset (format "asset")',
  'uns-sparkplug': '`uns-vfd` → `uns-sparkplug-device`/`-edge` (DDATA by exception)',
  'contrib-q0': 'contrib `modbus-read` ×2 → `function` → `mqtt out` QoS 0',
  'contrib-q1': 'contrib `modbus-read` ×2 → `function` → `mqtt out` QoS 1',
  'contrib-asset-q0': 'contrib `modbus-read` ×2 → `function` → `mqtt out` QoS 0, one JSON message per read',
};

/** What the gateway child needs to build its flow. */
interface GatewayConfig {
  side: SideId;
  /** First topic level of the side's UNS topics, and its Sparkplug group id: unique per side and run. */
  root: string;
  brokerPort: number;
  plantPorts: number[];
  drivesPerPort: number;
  intervalMs: number;
  maxInFlight: number;
  /** Node/V8 flags of an uns-edge gateway process (--uns-node-flags). */
  nodeFlags: string[];
}

type FlowNode = Record<string, unknown> & { id: string; type: string };
const TAB = 'pipeline-tab';

function templateNode(file: string, type: string): FlowNode {
  const flow = JSON.parse(readFileSync(join(REPO_ROOT, 'flows', file), 'utf8')) as FlowNode[];
  const node = flow.find((n) => n.type === type);
  if (!node) throw new Error(`flows/${file} has no ${type}`);
  return { ...node, z: TAB };
}

/** Asset path of drive `unit` on port index `port` (below the side's root). */
const assetPath = (port: number, unit: number): string => `site/area/line${port + 1}/drive${unit}`;

function drivesOf(c: GatewayConfig): Array<{ port: number; unit: number; index: number }> {
  return c.plantPorts.flatMap((_, port) => Array.from({ length: c.drivesPerPort }, (__, u) => ({ port, unit: u + 1, index: port * c.drivesPerPort + u })));
}

function unsFlow(c: GatewayConfig): FlowNode[] {
  const links = c.plantPorts.map((plantPort, i) => ({ ...templateNode('demo.json', 'uns-modbus-link'), id: `link-${i}`, name: `line ${i + 1}`, host: '127.0.0.1', port: String(plantPort), maxInFlight: c.maxInFlight }));
  const vfd = (d: { port: number; unit: number; index: number }, wires: string[]): FlowNode => ({
    ...templateNode('demo.json', 'uns-vfd'), id: `vfd-${d.index}`, name: `drive ${d.index + 1}`, link: `link-${d.port}`, unitId: d.unit,
    interval: c.intervalMs, topic: assetPath(d.port, d.unit), y: 20 + d.index * 5, wires: [wires, []],
  });
  if (c.side === 'uns-sparkplug') {
    const edge = { ...templateNode('sparkplug.json', 'uns-sparkplug-edge'), id: 'edge', groupId: c.root, edgeNodeId: 'gateway', host: '127.0.0.1', port: String(c.brokerPort), clientId: `pipeline-${c.root}` };
    const device = templateNode('sparkplug.json', 'uns-sparkplug-device');
    return [{ id: TAB, type: 'tab', label: 'pipeline' }, edge, ...links, ...drivesOf(c).flatMap((d) => [
      vfd(d, [`device-${d.index}`]),
      { ...device, id: `device-${d.index}`, name: `p${d.port + 1}d${d.unit}`, edge: 'edge', deviceId: `p${d.port + 1}d${d.unit}`, assetPath: assetPath(d.port, d.unit), y: 20 + d.index * 5, wires: [[]] },
    ])];
  }
  const broker = { ...templateNode('demo.json', 'uns-broker'), id: 'broker', host: '127.0.0.1', port: String(c.brokerPort), clientId: `pipeline-${c.root}` };
  const out = { ...templateNode('demo.json', 'uns-out'), id: 'out', broker: 'broker', topicPrefix: c.root, qos: c.side === 'uns-q1' ? '1' : '0', retain: true, format: c.side === 'uns-asset-q0' ? 'asset' : 'metric', deadbandMode: 'off' };
  return [{ id: TAB, type: 'tab', label: 'pipeline' }, broker, ...links, ...drivesOf(c).map((d) => vfd(d, ['out'])), out];
}

/**
 * The integrator's function node: the two reads of a drive arrive as `<asset>|holding` and `<asset>|input`
 * (the read nodes' topics); each register decoded as profiles/simulated-drive.json says, status bits and
 * fault table written out by hand; one message per metric (mqtt out serialises the object payload), or
 * with `perRead` one message per read, `{"timestamp", "metrics": {name: {value, timestamp, quality, unit}}}`
 * on `<asset>/parameters` (holding) or `<asset>/status` (input), the UNS asset payload (docs/uns-topics.md).
 */
const contribFunction = (perRead: boolean): string => `
const [asset, table] = msg.topic.split('|');
const r = msg.payload;
const timestamp = Date.now();
const perRead = ${perRead};
const metrics = {};
const out = [];
const put = (name, value, unit) => {
  const payload = { value: value, timestamp: timestamp, quality: 'good' };
  if (unit) payload.unit = unit;
  if (perRead) metrics[name] = payload;
  else out.push({ topic: asset + '/' + name, payload: payload });
};
const done = () => (perRead ? { topic: asset + (table === 'holding' ? '/parameters' : '/status'), payload: { timestamp: timestamp, metrics: metrics } } : [out]);
const s16 = (v) => (v > 32767 ? v - 65536 : v);
const buf = Buffer.allocUnsafe(4);
const f32 = (hi, lo) => { buf.writeUInt16BE(hi, 0); buf.writeUInt16BE(lo, 2); return buf.readFloatBE(0); };
const u32 = (hi, lo) => hi * 65536 + lo;
if (table === 'holding') {
  put('controlWord', r[0]);
  put('speedSetpoint', s16(r[1]), 'rpm');
  put('accelRate', r[2], 'rpm/s');
  put('decelRate', r[3], 'rpm/s');
  return done();
}
const status = r[0];
const fault = r[1];
put('statusWord', status);
put('faultCode', fault);
put('actualSpeed', s16(r[2]), 'rpm');
put('outputFrequency', s16(r[3]) * 0.01, 'Hz');
put('motorCurrent', f32(r[4], r[5]), 'A');
put('dcBusVoltage', r[6] * 0.1, 'V');
put('outputPower', s16(r[7]) * 0.01, 'kW');
put('motorTemperature', s16(r[8]) * 0.1, 'degC');
put('heatsinkTemperature', s16(r[9]) * 0.1, 'degC');
put('vibration', f32(r[10], r[11]), 'mm/s');
put('runHours', u32(r[12], r[13]) * 0.001, 'h');
put('energy', u32(r[15], r[14]) * 0.1, 'kWh');
const bit = (n) => (status & (1 << n)) !== 0;
put('ready', bit(0));
put('running', bit(1));
put('fault', bit(2));
put('warning', bit(3));
put('reverse', bit(4));
put('atSetpoint', bit(5));
put('state', bit(2) ? 'FAULT' : bit(1) ? 'RUNNING' : bit(0) ? 'READY' : 'NOT READY');
const FAULTS = ['No fault', 'Overcurrent', 'Motor overtemperature', 'Heatsink overtemperature', 'DC overvoltage'];
put('faultText', FAULTS[fault] !== undefined ? FAULTS[fault] : 'fault code ' + fault);
return done();
`;

function contribFlow(c: GatewayConfig): FlowNode[] {
  const qos = c.side === 'contrib-q1' ? '1' : '0';
  const clients = c.plantPorts.map((plantPort, i) => contribClient(`client-${i}`, plantPort) as FlowNode);
  const read = (id: string, d: { port: number; unit: number; index: number }, dataType: string, quantity: number, table: string): FlowNode => ({
    id, type: 'modbus-read', z: TAB, name: id, topic: `${c.root}/${assetPath(d.port, d.unit)}|${table}`, showStatusActivities: false, logIOActivities: false,
    showErrors: false, unitid: String(d.unit), dataType, adr: '0', quantity: String(quantity), rate: String(c.intervalMs), rateUnit: 'ms',
    delayOnStart: false, startDelayTime: '', server: `client-${d.port}`, useIOFile: false, ioFile: '', useIOForPayload: false, emptyMsgOnFail: false,
    x: 200, y: 20 + d.index * 5, wires: [['map'], []],
  });
  return [
    { id: TAB, type: 'tab', label: 'pipeline' },
    {
      id: 'uns-mqtt', type: 'mqtt-broker', name: 'UNS', broker: '127.0.0.1', port: String(c.brokerPort), clientid: `pipeline-${c.root}`, autoConnect: true,
      usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true, autoUnsubscribe: true, birthTopic: '', closeTopic: '', willTopic: '',
    },
    ...clients,
    ...drivesOf(c).flatMap((d) => [read(`hr-${d.index}`, d, 'HoldingRegister', 4, 'holding'), read(`ir-${d.index}`, d, 'InputRegister', 16, 'input')]),
    { id: 'map', type: 'function', z: TAB, name: 'registers → UNS topics', func: contribFunction(c.side === 'contrib-asset-q0'), outputs: 1, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], x: 400, y: 20, wires: [['mqtt-out']] },
    { id: 'mqtt-out', type: 'mqtt out', z: TAB, name: 'UNS', topic: '', qos, retain: 'true', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker: 'uns-mqtt', x: 600, y: 20, wires: [] },
  ];
}

const flowOf = (c: GatewayConfig): FlowNode[] => (c.side.startsWith('contrib') ? contribFlow(c) : unsFlow(c));

// ---------------------------------------------------------------- gateway process

/** What the gateway's hook (lib/pipeline-gateway-hook.ts) reports: MQTT publishes and log lines since start. */
interface GatewayStats {
  published: number; warnings: number; errors: number; lastProblem: string;
  /** process.memoryUsage() in MB when asked (the end of the window). */
  memory: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
}

interface Gateway { child: ChildProcess; output: string }

/** The hook as JavaScript in `dir` (transpiled here, so the gateway process loads no TypeScript loader). */
function writeHook(dir: string): string {
  const ts = require('typescript') as typeof import('typescript');
  const source = readFileSync(join(__dirname, 'lib', 'pipeline-gateway-hook.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  const file = join(dir, 'pipeline-gateway-hook.js');
  writeFileSync(file, outputText);
  return file;
}

/**
 * Start the side's gateway: the uns-edge sides run the product, `uns-edge run --headless` (which loads only
 * the node files its flows use); the peer runs Node-RED's own `red.js` headless (no admin or node HTTP), trimmed
 * the same way: core node files and Node-RED modules its flows do not use are not loaded.
 */
async function startGateway(c: GatewayConfig, dir: string, hook: string): Promise<Gateway> {
  const flowFile = join(dir, 'flows.json');
  writeFileSync(flowFile, JSON.stringify(flowOf(c)));
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_') && key !== 'NODE_OPTIONS'));
  env.PIPELINE_HOOK_ROOT = REPO_ROOT;
  const httpPort = await freePort();
  let script: string;
  let argv: string[];
  if (c.side.startsWith('contrib')) {
    const { nodesExcludes } = headlessTrim(flowFile, REPO_ROOT);
    const used = flowTypes(flowFile) ?? new Set<string>();
    const modules = readdirSync(join(REPO_ROOT, 'node_modules'), { withFileTypes: true }).flatMap((entry) => {
      if (entry.name.startsWith('@')) return readdirSync(join(REPO_ROOT, 'node_modules', entry.name)).map((name) => `${entry.name}/${name}`);
      return [entry.name];
    }).filter((name) => /(^|\/)node-red-/.test(name));
    const denyList = modules.filter((name) => !moduleUsed(join(REPO_ROOT, 'node_modules', name), used));
    const settings = {
      uiHost: '127.0.0.1', uiPort: httpPort, httpAdminRoot: false, httpNodeRoot: false, credentialSecret: 'pipeline-bench', flowFile: 'flows.json',
      logging: { console: { level: 'warn', metrics: false, audit: false } }, nodesExcludes, externalModules: { autoInstall: false, palette: { allowInstall: false, denyList } },
      editorTheme: { projects: { enabled: false } }, diagnostics: { enabled: false }, runtimeState: { enabled: false }, telemetry: { enabled: false },
    };
    const settingsFile = join(dir, 'settings.js');
    writeFileSync(settingsFile, `module.exports = ${JSON.stringify(settings, null, 1)};\n`);
    script = join(dirname(require.resolve('node-red/package.json')), 'red.js');
    argv = ['--settings', settingsFile, '--userDir', dir, 'flows.json'];
  } else {
    script = join(process.env.UNS_EDGE_BENCH_PACKAGE ?? REPO_ROOT, 'dist', 'cli', 'uns-edge.js');
    argv = ['run', '--headless', '--flows', flowFile, '--user-dir', dir, '--port', String(httpPort)];
  }
  const execArgv = [...(c.side.startsWith('contrib') ? [] : c.nodeFlags), '--require', hook];
  const child = fork(script, argv, { execArgv, env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const gateway: Gateway = { child, output: '' };
  const keep = (d: Buffer): void => { gateway.output = (gateway.output + d.toString()).slice(-4000); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return gateway;
}

// ---------------------------------------------------------------- parent: options

const { values: args } = parseArgs({
  options: {
    drives: { type: 'string', default: '240' },
    ports: { type: 'string', default: '4' },
    interval: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '25' },
    runs: { type: 'string', default: '5' },
    settle: { type: 'string', default: '5' },
    sides: { type: 'string', default: SIDE_IDS.join(',') },
    'cpu-prof-dir': { type: 'string' },
    /** uns-modbus-link maxInFlight (requests in flight per link; flows/demo.json: 1). */
    'max-in-flight': { type: 'string', default: '1' },
    /** Node/V8 flags for the uns-edge gateway process only, space-separated. */
    'uns-node-flags': { type: 'string', default: '' },
    /** The docs/benchmarks.md section that --write replaces. */
    section: { type: 'string', default: 'pipeline' },
    /** After the runs, one more unmeasured side (--profile-side) under the CPU profiler; its top functions go into the report. */
    profile: { type: 'boolean', default: false },
    'profile-side': { type: 'string', default: 'uns-q0' },
    write: { type: 'boolean', default: false },
  },
});

function sideId(s: string): SideId {
  if (!(SIDE_IDS as readonly string[]).includes(s)) throw new Error(`unknown side ${s} (known: ${SIDE_IDS.join(', ')})`);
  return s as SideId;
}
const profileSide = sideId(args['profile-side']);
// uns-modbus-link clamps its setting to MAX_IN_FLIGHT: a larger figure here would name a load not run.
const maxInFlightArg = Number(args['max-in-flight']);
if (!Number.isInteger(maxInFlightArg) || maxInFlightArg < 1 || maxInFlightArg > MAX_IN_FLIGHT) {
  throw new Error(`--max-in-flight ${args['max-in-flight']}: uns-modbus-link takes 1..${MAX_IN_FLIGHT}`);
}

const METRICS_PER_POLL = 24;
const GOALS = { perCoreSecond: 400_000, ratio: 5, rssMb: 200 };

// ---------------------------------------------------------------- parent: one side, one run

interface SideRun {
  side: SideId;
  run: number;
  seconds: number;
  updates: number;
  updatesPerSecond: number;
  perCoreSecond: number;
  gatewayCores: number;
  rssMaxMb: number;
  /** V8 heap total / used and external memory (MB) at the end of the window: where the RSS goes. */
  heapTotalMb: number;
  heapUsedMb: number;
  /** V8 heap used right after a forced full GC, once the window is over: what the gateway keeps alive at this load. */
  liveHeapMb: number;
  externalMb: number;
  /** Updates received ÷ (drives × metrics per poll × polls the interval schedules in the window). */
  ofSchedule: number;
  /** Distinct metric topics ÷ assets seen in the window (24 for the per-metric sides). */
  metricsPerAsset: number;
  assets: number;
  messages: number;
  bytesPerMessage: number;
  /** Messages the gateway published in the window minus messages the counter received (edges included). */
  lost: number;
  brokerDropped: number;
  bad: number;
  unparsable: number;
  warnings: number;
  errors: number;
  lastProblem: string;
  plantCores: number;
  brokerCores: number;
  counterCores: number;
  busyCores: number;
  loadavg: number;
}

interface Rig {
  broker: Mosquitto;
  brokerPid: number;
  plant: PlantProcess;
  counter: PipelineCounter;
  drivesPerPort: number;
  /** The gateway hook as JavaScript. */
  hook: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function awaitMessage<T>(child: ChildProcess, pick: (m: Record<string, unknown>) => T | undefined, what: string, ms = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`gateway: no ${what} within ${ms} ms`)); }, ms);
    const onMessage = (m: Record<string, unknown>): void => {
      const value = pick(m);
      if (value !== undefined) { cleanup(); resolve(value); }
    };
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`gateway exited (${code}) waiting for ${what}`)); };
    const cleanup = (): void => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit); };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function measureSide(rig: Rig, side: SideId, run: number, label: string, profileDir = args['cpu-prof-dir']): Promise<SideRun> {
  const intervalMs = Number(args.interval);
  const config: GatewayConfig = {
    side, root: `pipe-${label}-${side}`, brokerPort: rig.broker.port, plantPorts: rig.plant.ports, drivesPerPort: rig.drivesPerPort, intervalMs,
    maxInFlight: maxInFlightArg,
    nodeFlags: args['uns-node-flags'].split(/\s+/).filter((flag) => flag !== ''),
  };
  const dir = mkdtempSync(join(tmpdir(), `uns-pipeline-${side}-`));
  const started = await startGateway(config, dir, rig.hook);
  const gateway = started.child;
  const stats = (): Promise<GatewayStats> => {
    const answer = awaitMessage(gateway, (m) => m.stats as GatewayStats | undefined, 'stats');
    gateway.send({ stats: true });
    return answer;
  };
  try {
    // Ready when the broker delivers the side's updates.
    const deadline = Date.now() + 90_000;
    for (;;) {
      rig.counter.start(config.root);
      await sleep(500);
      if ((await rig.counter.stop(config.root)).updates > 0) break;
      if (gateway.exitCode !== null || Date.now() > deadline) throw new Error(`${side}: no updates at the broker (gateway ${gateway.exitCode === null ? 'running' : `exited ${gateway.exitCode}`}): ${started.output}`);
    }
    await sleep(Number(args.settle) * 1000);
    const pid = gateway.pid as number;
    const pids = [pid, rig.plant.pid, rig.brokerPid, rig.counter.pid];
    const profiling = profileDir !== undefined;
    if (profiling) {
      const answer = awaitMessage(gateway, (m) => m.profiling as boolean | undefined, 'profiler start');
      gateway.send({ profile: 'start' });
      await answer;
    }
    const dropped0 = await rig.counter.dropped();
    const before = await stats();
    rig.counter.start(config.root);
    const cpu0 = pids.map(processCpuSeconds);
    const busy0 = machineBusySeconds();
    const t0 = performance.now();
    let rssMaxMb = processRssMb(pid);
    const sampler = setInterval(() => { rssMaxMb = Math.max(rssMaxMb, processRssMb(pid)); }, 250);
    await sleep(Number(args.seconds) * 1000);
    const cpu1 = pids.map(processCpuSeconds);
    const busy1 = machineBusySeconds();
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    rssMaxMb = Math.max(rssMaxMb, processRssMb(pid));
    const after = await stats();
    const count: WindowCount = await rig.counter.stop(config.root);
    const load1 = loadavg()[0];
    if (profiling) {
      const file = join(profileDir!, `${label}-${side}.cpuprofile`);
      const answer = awaitMessage(gateway, (m) => m.profiled as string | undefined, 'profile');
      gateway.send({ profile: 'stop', file });
      await answer;
    }
    const liveHeap = awaitMessage(gateway, (m) => m.liveHeapMb as number | undefined, 'live heap');
    gateway.send({ liveHeap: true });
    const liveHeapMb = await liveHeap;
    await sleep(2200); // Mosquitto publishes $SYS every second (sys_interval 1): let it count the window's drops.
    const dropped1 = await rig.counter.dropped();
    const cores = cpu1.map((c, i) => (c - cpu0[i]) / seconds);
    const drives = rig.plant.ports.length * rig.drivesPerPort;
    const scheduled = drives * METRICS_PER_POLL * seconds * (1000 / intervalMs);
    return {
      side, run, seconds, updates: count.updates,
      updatesPerSecond: count.updates / seconds,
      // Messages the broker still held from before the window arrive inside it: never credit more updates than the gateway published in it.
      perCoreSecond: count.updates * Math.min(1, count.messages > 0 ? (after.published - before.published) / count.messages : 1) / (cpu1[0] - cpu0[0]),
      gatewayCores: cores[0],
      rssMaxMb,
      heapTotalMb: after.memory.heapTotal, heapUsedMb: after.memory.heapUsed, liveHeapMb, externalMb: after.memory.external,
      ofSchedule: count.updates / scheduled,
      metricsPerAsset: count.assets ? count.topics / count.assets : 0,
      assets: count.assets,
      messages: count.messages,
      bytesPerMessage: count.messages ? count.bytes / count.messages : 0,
      lost: after.published - before.published - count.messages,
      brokerDropped: dropped1 - dropped0,
      bad: count.bad, unparsable: count.unparsable,
      warnings: after.warnings - before.warnings, errors: after.errors - before.errors, lastProblem: after.lastProblem,
      plantCores: cores[1], brokerCores: cores[2], counterCores: cores[3],
      busyCores: (busy1 - busy0) / seconds, loadavg: load1,
    };
  } finally {
    if (gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once('exit', resolve));
      gateway.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (gateway.exitCode === null) gateway.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- parent: report

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');
const range = (s: Summary, fmt: (n: number) => string): string => (s.min === s.max ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`);

function line(r: SideRun): string {
  return `run ${r.run + 1} ${r.side.padEnd(13)} ${f0(r.updatesPerSecond).padStart(8)} updates/s  ${f0(r.perCoreSecond).padStart(9)} per core-s  ` +
    `gateway ${f2(r.gatewayCores)} cores  RSS max ${f1(r.rssMaxMb)} MB (heap ${f0(r.heapUsedMb)}/${f0(r.heapTotalMb)}, live ${f0(r.liveHeapMb)} after GC, external ${f0(r.externalMb)} at the end)  ${(100 * r.ofSchedule).toFixed(1)} % of schedule  ` +
    `${r.assets} assets × ${f1(r.metricsPerAsset)} metrics  ${f1(r.bytesPerMessage)} B/msg  lost ${r.lost} dropped ${r.brokerDropped} bad ${r.bad} unparsable ${r.unparsable} ` +
    `warn ${r.warnings} err ${r.errors}${r.warnings + r.errors > 0 ? ` (last: ${r.lastProblem})` : ''}  plant ${f2(r.plantCores)} broker ${f2(r.brokerCores)} counter ${f2(r.counterCores)} ` +
    `busy ${f2(r.busyCores)} load ${f1(r.loadavg)}`;
}

function report(results: SideRun[], sides: SideId[], command: string, load: string, minutes: number, drives: number, nodeRed: string, profileTop: string | undefined): string {
  const facts = machineFacts();
  const contrib = (require('node-red-contrib-modbus/package.json') as { version: string }).version;
  const of = (side: SideId): SideRun[] => results.filter((r) => r.side === side);
  const sum = (runs: SideRun[], pick: (r: SideRun) => number): Summary => summarize(runs.map(pick));
  const total = (runs: SideRun[], pick: (r: SideRun) => number): number => runs.reduce((s, r) => s + pick(r), 0);
  const rows = sides.filter((side) => of(side).length > 0).map((side) => {
    const runs = of(side);
    return `| ${SIDE_LABEL[side]} | ${range(sum(runs, (r) => r.updatesPerSecond), f0)} | **${range(sum(runs, (r) => r.perCoreSecond), f0)}** | ` +
      `${range(sum(runs, (r) => r.gatewayCores), f2)} | ${range(sum(runs, (r) => r.rssMaxMb), f0)} | ${f0(sum(runs, (r) => r.heapUsedMb).median)} / ${f0(sum(runs, (r) => r.heapTotalMb).median)} / ${f0(sum(runs, (r) => r.liveHeapMb).median)} / ${f0(sum(runs, (r) => r.externalMb).median)} | ${range(sum(runs, (r) => 100 * r.ofSchedule), f1)} | ` +
      `${f1(sum(runs, (r) => r.metricsPerAsset).median)} × ${f0(sum(runs, (r) => r.assets).median)} | ${f0(sum(runs, (r) => r.bytesPerMessage).median)} | ` +
      `${f0(total(runs, (r) => r.lost))} / ${f0(total(runs, (r) => r.brokerDropped))} | ${f0(total(runs, (r) => r.bad + r.unparsable))} | ` +
      `${f0(total(runs, (r) => r.warnings))} / ${f0(total(runs, (r) => r.errors))} | ${range(sum(runs, (r) => r.plantCores), f2)} | ${range(sum(runs, (r) => r.brokerCores), f2)} | ` +
      `${range(sum(runs, (r) => r.counterCores), f2)} | ${range(sum(runs, (r) => r.busyCores), f2)} | ${range(sum(runs, (r) => r.loadavg), f1)} |`;
  });
  /** Per-run ratio of updates per gateway core-second, ours ÷ the peer's, both sides of the same run. */
  const ratio = (ours: SideId, peer: SideId): Summary | undefined => {
    const pairs = of(ours).map((r) => [r, of(peer).find((p) => p.run === r.run)] as const).filter(([, p]) => p !== undefined);
    return pairs.length ? summarize(pairs.map(([r, p]) => r.perCoreSecond / p!.perCoreSecond)) : undefined;
  };
  const q0 = of('uns-q0');
  const q0Ratio = ratio('uns-q0', 'contrib-q0');
  const q1Ratio = ratio('uns-q1', 'contrib-q1');
  const asset = of('uns-asset-q0');
  const assetRatio = ratio('uns-asset-q0', 'contrib-asset-q0');
  const met = (ok: boolean): string => (ok ? '**met**' : '**not met**');
  const goals: string[] = [];
  if (q0.length) {
    const perCore = sum(q0, (r) => r.perCoreSecond).median;
    const rss = sum(q0, (r) => r.rssMaxMb).median;
    goals.push(`- ≥ ${f0(GOALS.perCoreSecond)} tag updates per gateway core-second to the UNS at QoS 0: ${f0(perCore)}, ${met(perCore >= GOALS.perCoreSecond)}.`);
    if (q0Ratio) goals.push(`- ≥ ${GOALS.ratio}× the peer flow (QoS 0, per-run ratio of updates per core-second): ${f2(q0Ratio.median)}× (${f2(q0Ratio.min)}–${f2(q0Ratio.max)}), ${met(q0Ratio.median >= GOALS.ratio)}.` +
      (q1Ratio ? ` At QoS 1: ${f2(q1Ratio.median)}× (${f2(q1Ratio.min)}–${f2(q1Ratio.max)}).` : ''));
    goals.push(`- RSS ≤ ${GOALS.rssMb} MB at that load: ${f0(rss)} MB (max over the window, median of runs), ${met(rss <= GOALS.rssMb)}.`);
  }
  if (asset.length) {
    const perCore = sum(asset, (r) => r.perCoreSecond).median;
    const rss = sum(asset, (r) => r.rssMaxMb).median;
    goals.push(`- The same goals with one JSON message per asset (uns-out format "asset"; the peer one message per read): ${f0(perCore)} per core-second, ${met(perCore >= GOALS.perCoreSecond)}` +
      (assetRatio ? `; ${f2(assetRatio.median)}× (${f2(assetRatio.min)}–${f2(assetRatio.max)}) the peer, ${met(assetRatio.median >= GOALS.ratio)}` : '') +
      `; RSS ${f0(rss)} MB, ${met(rss <= GOALS.rssMb)}.`);
  }
  const intervalMs = Number(args.interval);
  return [
    `## Modbus → UNS pipeline: uns-edge vs node-red-contrib-modbus + function + mqtt out (issue 12)${args['max-in-flight'] === '1' ? '' : `, links pipelined (maxInFlight ${args['max-in-flight']})`}`,
    '',
    `\`${command}\` (after \`npm run build\`), ${new Date().toISOString().slice(0, 16)} UTC, ${minutes.toFixed(1)} min; ${facts.nproc} × ${facts.cpuModel}, ` +
      `${facts.kernel}, Node ${facts.node}, Node-RED ${nodeRed}, node-red-contrib-modbus ${contrib}, Mosquitto ${facts.mosquitto}.`,
    '',
    `**Load**: ${drives} simulated drives (sim/, one process, ${args.ports} Modbus TCP ports × ${drives / Number(args.ports)} unit ids) polled every ${intervalMs} ms (uns-edge links: maxInFlight ${args['max-in-flight']}; uns-edge gateways with no UNS_EDGE_* variable set, so with the build's own defaults, V8 heap growth among them${args['uns-node-flags'] ? `, started with \`node ${args['uns-node-flags']}\`` : ''}): ` +
      `${f0(drives * 1000 / intervalMs)} drive polls/s (two reads each: holding 0..3, input 0..15), ${f0(drives * METRICS_PER_POLL * 1000 / intervalMs)} tag updates/s scheduled ` +
      `(${METRICS_PER_POLL} metrics per poll: the profile's 16 parameters, 6 status signals, state, fault text). Each side runs in a fresh gateway process ` +
      '(uns-edge: `uns-edge run --headless`; the peer: Node-RED\'s `red.js` without admin or node HTTP and with the same trim of unused node files and modules), ' +
      `polls ${args.settle} s, then is measured for ${args.seconds} s; ${args.runs} runs, side order rotating every run. ` +
      'Updates are counted **at the broker** by a separate subscriber process (MQTT.js on `#`, QoS 1), which checks every payload; gateway CPU from /proc/<pid>/stat over the same window.',
    '',
    `Measured over the whole benchmark: ${load}.`,
    '',
    '| side | updates/s at the broker | **updates per gateway core-second** | gateway CPU, cores | gateway RSS max MB | V8 heap used / heap total / live heap after a forced GC / external MB at the end | % of scheduled updates | metrics × assets seen | bytes per message | published − received / broker dropped, all runs | bad or unparsable, all runs | log warnings / errors, all runs | plant CPU | Mosquitto CPU | counter CPU | machine busy cores | load average (1 min) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Medians of the runs (min–max). "% of scheduled" below 100 means polls that failed, were late or were never made (contrib sends nothing for a failed read, so ' +
      'this is where its failures show); "published − received" compares the MQTT publishes the gateway made in the window (counted in the gateway: uns-edge\'s `MqttConnection.publish` calls, the peer\'s MQTT.js `publish` calls) with the messages ' +
      'the counter received in it: messages lost, or still queued in the gateway\'s client at the end of the window (a QoS 1 backlog); negative when messages ' +
      'published before the window reached the counter inside it, in which case "per core-second" counts only as many updates as were published in the window; "broker dropped" is Mosquitto\'s `$SYS/broker/publish/messages/dropped` over the window. The Sparkplug ' +
      'side publishes only changed metrics (`uns-sparkplug-device` sends DDATA by exception), so its updates/s at the broker are the changed values, not the polled ones.',
    '',
    '### Goals',
    '',
    ...goals,
    ...(profileTop === undefined ? [] : [
      '',
      `### Where the gateway's time goes (${profileSide})`,
      '',
      `One more \`${profileSide}\` side after the measured runs (not in the table), under the V8 CPU profiler for its ${args.seconds}-s window; ` +
        '`npx tsx bench/cpuprofile-top.ts <file> --top 20` (self time = samples whose top frame is the function; "(native)" is time in C++/syscalls; total = on the stack):',
      '',
      '```',
      profileTop.trim(),
      '```',
    ]),
  ].join('\n');
}

// ---------------------------------------------------------------- parent: main

async function main(): Promise<void> {
  const began = performance.now();
  const drives = Number(args.drives);
  const ports = Number(args.ports);
  const runs = Number(args.runs);
  if (!(Number.isInteger(drives) && Number.isInteger(ports) && ports >= 1 && drives % ports === 0)) throw new Error('--drives must be a multiple of --ports');
  if (!(runs >= 1 && Number(args.seconds) > 0 && Number(args.interval) > 0)) throw new Error('--runs ≥ 1, --seconds > 0, --interval > 0');
  const sides = args.sides.split(',').map(sideId);
  if (args['cpu-prof-dir']) mkdirSync(args['cpu-prof-dir'], { recursive: true });

  const broker = await Mosquitto.start();
  await broker.stop();
  appendFileSync(join(broker.dir, 'mosquitto.conf'), 'sys_interval 1\n');
  await broker.restart();
  const brokerPid = findPid(broker.dir);
  if (brokerPid === undefined) throw new Error('cannot find the mosquitto process');
  const plant = await startPlant(ports, drives / ports);
  const counter = await startPipelineCounter(broker.url);
  const hookDir = mkdtempSync(join(tmpdir(), 'uns-pipeline-hook-'));
  const rig: Rig = { broker, brokerPid, plant, counter, drivesPerPort: drives / ports, hook: writeHook(hookDir) };
  console.log(`pipeline: ${drives} drives on ${ports} ports every ${args.interval} ms; sides ${sides.join(', ')}; ${runs} run(s) × ${args.seconds} s; ` +
    `plant pid ${plant.pid}, Mosquitto pid ${brokerPid}, counter pid ${counter.pid}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const results: SideRun[] = [];
  const load = new LoadMeter();
  let ownCoreSeconds = 0;
  let profileTop: string | undefined;
  try {
    for (let run = 0; run < runs; run++) {
      const order = sides.map((_, i) => sides[(i + run) % sides.length]);
      for (const side of order) {
        const r = await measureSide(rig, side, run, `r${run + 1}`);
        results.push(r);
        ownCoreSeconds += (r.gatewayCores + r.plantCores + r.brokerCores + r.counterCores) * r.seconds;
        console.log(line(r));
      }
    }
    if (args.profile) {
      const dir = args['cpu-prof-dir'] ?? mkdtempSync(join(tmpdir(), 'uns-pipeline-prof-'));
      mkdirSync(dir, { recursive: true });
      const r = await measureSide(rig, profileSide, runs, 'profile', dir);
      console.log(`profiled (not in the table): ${line(r)}`);
      profileTop = execFileSync(process.execPath, ['--import', 'tsx', join(__dirname, 'cpuprofile-top.ts'), join(dir, `profile-${profileSide}.cpuprofile`), '--top', '20'], { encoding: 'utf8' });
    }
  } finally {
    counter.close();
    plant.close();
    await broker.dispose();
    rmSync(hookDir, { recursive: true, force: true });
  }
  const measuredSeconds = results.reduce((s, r) => s + r.seconds, 0);
  const command = `node --import tsx bench/pipeline.ts ${process.argv.slice(2).join(' ')}`.trim();
  const nodeRed = (require('node-red/package.json') as { version: string }).version;
  const markdown = report(results, sides, command, load.describe(ownCoreSeconds / Math.max(1, measuredSeconds)) + ' (the last figure: the bench\'s processes during the measured windows)',
    (performance.now() - began) / 60_000, drives, nodeRed, profileTop);
  console.log(`\n${markdown}\n`);
  if (args.write) {
    writeSection(args.section, markdown);
    console.log('written to docs/benchmarks.md');
  }
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
