/**
 * Sparkplug B end to end: tag batches → `uns-sparkplug-device` + `uns-sparkplug-edge` → Mosquitto →
 * `uns-sparkplug-host`, side by side with Eclipse Tahu's `sparkplug-client` publishing the same data
 * (DDATA of the same metrics, aliases, Float) to the same broker and the same host, in one run.
 *
 *   npm run build
 *   node --expose-gc --import tsx bench/sparkplug-e2e.ts [--runs 5] [--devices 10] [--metrics 50] [--batches 200] [--write]
 *
 * Publisher process: an embedded Node-RED (this repo's built nodes) with the edge node and D devices,
 * and the Tahu client with its own MQTT connection (group "bench", edge nodes "uns-gw" and "tahu-gw").
 * Host process: a second embedded Node-RED (this file with --host-child) with only the host, which
 * counts at the host node's send() and answers over IPC. Sides: uns-edge; tahu (ready payload objects,
 * its cheapest case); tahu-mapped (the same tag batches mapped to its payload inside the clock). Each
 * run measures every side, one after the other, order rotating; one warm-up run first. A side's clock
 * runs from its first input to the host having emitted every metric of it. After each side: exact
 * metric and message counts, and every device's last values compared with what was sent.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Mosquitto } from '../test/helpers/mosquitto';
import { startNodeRed, type EmbeddedNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { findPid, LoadMeter, machineBusySeconds, machineFacts, processCpuSeconds, summarize, type Summary } from './lib/stats';

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const RUNS = argument('runs', 5);
const DEVICES = argument('devices', 10);
const METRICS = argument('metrics', 50);
const BATCHES = argument('batches', 200);
/** Batches (per device) fed before yielding to the event loop with setImmediate. */
const CHUNK = argument('chunk', 10);
const WRITE = process.argv.includes('--write');
const GROUP = 'bench';
const TAHU_VERSION = (require('sparkplug-client/package.json') as { version: string }).version;

/** uns-edge; Tahu fed ready payload objects (its cheapest case); Tahu fed the same tag batches through an integrator's mapping. */
type Side = 'uns-edge' | 'tahu' | 'tahu-mapped';
const ALL_SIDES: Side[] = ['uns-edge', 'tahu', 'tahu-mapped'];
/** `--sides uns-edge,tahu` measures only those (e.g. for a profile of one side); the ratios need uns-edge and the peer. */
const SIDES: Side[] = process.argv.includes('--sides')
  ? process.argv[process.argv.indexOf('--sides') + 1].split(',').map((side) => {
    if (!ALL_SIDES.includes(side as Side)) throw new Error(`--sides: unknown side "${side}" (${ALL_SIDES.join(', ')})`);
    return side as Side;
  })
  : ALL_SIDES;
const EDGE_OF: Record<Side, string> = { 'uns-edge': 'uns-gw', tahu: 'tahu-gw', 'tahu-mapped': 'tahu-gw' };
const metricName = (m: number) => `m${String(m).padStart(2, '0')}`;
const deviceId = (d: number) => `dev-${d}`;
const assetPath = (d: number) => `plant/area/line/${deviceId(d)}`;
/** The value of metric m of device d in batch b of phase p: changes every batch (report by exception sends all), exact in float32. */
const valueOf = (p: number, b: number, d: number, m: number) => Math.fround(p * BATCHES + b + d / 16 + m / 1024);

interface TahuClient {
  on(event: 'birth' | 'error', listener: (arg?: unknown) => void): void;
  publishNodeBirth(payload: object): void;
  publishDeviceBirth(deviceId: string, payload: object): void;
  publishDeviceData(deviceId: string, payload: object): void;
  stop(): void;
}

// ---------------------------------------------------------------- counting at the host's output, in its own process

/** Wall clock in ms with sub-ms resolution, comparable between processes of one machine. */
const wallNow = () => performance.timeOrigin + performance.now();

interface HostReport {
  metrics: Record<string, number>;
  messages: Record<string, number>;
  last: Array<[string, Record<string, unknown>]>;
}

/**
 * Child side: an embedded Node-RED with only the `uns-sparkplug-host`; its send() counts metrics and
 * messages per edge node id (topic `bench/<edge>/<device>`) and keeps the last values per device path.
 */
async function hostChild(port: number): Promise<void> {
  const red = await startNodeRed(hostFlow(port));
  let metrics: Record<string, number> = {};
  let messages: Record<string, number> = {};
  const last = new Map<string, Record<string, unknown>>();
  let target: { edge: string; metrics: number } | undefined;
  const host = red.node<{ send(msg: unknown): void }>('host');
  host.send = (msg: unknown) => {
    const batch = (msg as Array<{ topic: string; payload: Record<string, unknown>; historical?: boolean } | null>)[0];
    if (!batch || batch.historical) return;
    const [, edge, device] = batch.topic.split('/');
    if (device === undefined) return; // the edge nodes' own metrics (node path)
    messages[edge] = (messages[edge] ?? 0) + 1;
    metrics[edge] = (metrics[edge] ?? 0) + Object.keys(batch.payload).length;
    last.set(batch.topic, batch.payload);
    if (target?.edge === edge && metrics[edge] >= target.metrics) {
      target = undefined;
      process.send!({ reached: edge, at: wallNow() });
    }
  };
  process.on('message', (command: { cmd: string; edge?: string; metrics?: number }) => {
    if (command.cmd === 'reset') {
      metrics = {};
      messages = {};
      last.clear();
      process.send!({ reset: true });
    } else if (command.cmd === 'target') {
      target = { edge: command.edge!, metrics: command.metrics! };
    } else if (command.cmd === 'report') {
      process.send!({ report: { metrics, messages, last: [...last] } satisfies HostReport });
    } else if (command.cmd === 'stop') {
      void red.stop().then(() => process.exit(0));
    }
  });
  process.send!({ ready: true });
}

/** Parent side of the host process. */
class HostProcess {
  private waiting: Array<{ match: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }> = [];

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: Record<string, unknown>) => {
      const at = this.waiting.findIndex((w) => w.match(message));
      if (at >= 0) this.waiting.splice(at, 1)[0].resolve(message);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(port: number): Promise<HostProcess> {
    const child = fork(__filename, ['--host-child', String(port)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const host = new HostProcess(child);
    await host.next((m) => m.ready === true, 60000);
    return host;
  }

  private next(match: (m: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host process: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  }

  async reset(): Promise<void> {
    const done = this.next((m) => m.reset === true, 10000);
    this.child.send({ cmd: 'reset' });
    await done;
  }

  /** Resolves with the host process' wall clock when it has emitted `metrics` of edge node `edge`. */
  async whenCounted(edge: string, metrics: number, timeoutMs: number): Promise<number> {
    const reached = this.next((m) => m.reached === edge, timeoutMs);
    this.child.send({ cmd: 'target', edge, metrics });
    return (await reached).at as number;
  }

  async report(): Promise<HostReport> {
    const answer = this.next((m) => m.report !== undefined, 10000);
    this.child.send({ cmd: 'report' });
    return (await answer).report as HostReport;
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ cmd: 'stop' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
    this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- the two publishers

interface TagBatchInput {
  topic: string;
  payload: Record<string, number>;
  meta: Record<string, { type: string }>;
}

function unsBatch(p: number, b: number, d: number): TagBatchInput {
  const payload: Record<string, number> = {};
  const meta: Record<string, { type: string }> = {};
  for (let m = 0; m < METRICS; m++) {
    payload[metricName(m)] = valueOf(p, b, d, m);
    meta[metricName(m)] = { type: 'Float' };
  }
  return { topic: assetPath(d), payload, meta };
}

const aliasOf = (d: number, m: number) => d * METRICS + m + 1;

/** Tahu's DDATA/DBIRTH payload object: its client takes these, with `type` on every metric (it cannot encode one without). */
function tahuPayload(p: number, b: number, d: number, withNames: boolean): { timestamp: number; metrics: object[] } {
  const timestamp = Date.now();
  return {
    timestamp,
    metrics: Array.from({ length: METRICS }, (_, m) => ({
      ...(withNames ? { name: metricName(m) } : {}), alias: aliasOf(d, m), type: 'Float', value: valueOf(p, b, d, m), timestamp,
    })),
  };
}

/** What an integrator writes in front of Tahu's client: a tag batch to its payload object, aliases from a table built at birth. */
function tagBatchToTahu(batch: TagBatchInput, aliases: Map<string, number>): { timestamp: number; metrics: object[] } {
  const timestamp = Date.now();
  const metrics: object[] = [];
  for (const name of Object.keys(batch.payload)) {
    metrics.push({ alias: aliases.get(name), type: batch.meta[name].type, value: batch.payload[name], timestamp });
  }
  return { timestamp, metrics };
}

/** Feed BATCHES × DEVICES, yielding every CHUNK batches; inputs are prepared by the caller before the clock. */
async function feed(inputs: Array<() => void>): Promise<void> {
  for (let i = 0; i < inputs.length; i++) {
    inputs[i]();
    if ((i + 1) % (CHUNK * DEVICES) === 0) await new Promise((r) => setImmediate(r));
  }
}

// ---------------------------------------------------------------- one measured side

interface Measurement {
  metricsPerSecond: number;
  seconds: number;
  /** CPU of the publishing process (Node-RED with edge and devices, and the Tahu client). */
  cores: number;
  hostCores: number;
  brokerCores: number;
  otherCores: number;
}

interface Rig {
  red: EmbeddedNodeRed;
  tahu: TahuClient;
  host: HostProcess;
  brokerPid: number;
}

function inputsOf(side: Side, phase: number, rig: Rig): Array<() => void> {
  const inputs: Array<() => void> = [];
  const aliasTables = Array.from({ length: DEVICES }, (_, d) => new Map(Array.from({ length: METRICS }, (__, m) => [metricName(m), aliasOf(d, m)])));
  for (let b = 0; b < BATCHES; b++) {
    for (let d = 0; d < DEVICES; d++) {
      if (side === 'uns-edge') {
        const device = rig.red.node(`dev${d}`);
        const msg = unsBatch(phase, b, d);
        inputs.push(() => device.receive(msg));
      } else if (side === 'tahu') {
        const payload = tahuPayload(phase, b, d, false);
        inputs.push(() => rig.tahu.publishDeviceData(deviceId(d), payload));
      } else {
        const msg = unsBatch(phase, b, d);
        inputs.push(() => rig.tahu.publishDeviceData(deviceId(d), tagBatchToTahu(msg, aliasTables[d])));
      }
    }
  }
  return inputs;
}

async function measureSide(side: Side, phase: number, rig: Rig): Promise<Measurement> {
  const inputs = inputsOf(side, phase, rig); // before the clock
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 200));
  await rig.host.reset();
  const expected = BATCHES * DEVICES * METRICS;
  const counted = rig.host.whenCounted(EDGE_OF[side], expected, 120000);
  const cpu0 = process.cpuUsage();
  const host0 = processCpuSeconds(rig.host.pid);
  const broker0 = processCpuSeconds(rig.brokerPid);
  const busy0 = machineBusySeconds();
  const start = wallNow();
  await feed(inputs);
  const end = await counted;
  const seconds = (end - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cores = (cpu.user + cpu.system) / 1e6 / seconds;
  const hostCores = (processCpuSeconds(rig.host.pid) - host0) / seconds;
  const brokerCores = (processCpuSeconds(rig.brokerPid) - broker0) / seconds;
  const otherCores = (machineBusySeconds() - busy0) / seconds - cores - hostCores - brokerCores;
  await new Promise((r) => setTimeout(r, 300)); // anything beyond the expected count would arrive now
  verify(side, phase, await rig.host.report());
  return { metricsPerSecond: expected / seconds, seconds, cores, hostCores, brokerCores, otherCores };
}

function verify(side: Side, phase: number, report: HostReport): void {
  const problems: string[] = [];
  const edge = EDGE_OF[side];
  const expectedMetrics = BATCHES * DEVICES * METRICS;
  if (report.metrics[edge] !== expectedMetrics) problems.push(`${report.metrics[edge]} metrics, expected ${expectedMetrics}`);
  if (report.messages[edge] !== BATCHES * DEVICES) problems.push(`${report.messages[edge]} messages, expected ${BATCHES * DEVICES}`);
  for (const [other, count] of Object.entries(report.metrics)) if (other !== edge && count !== 0) problems.push(`${count} metrics of ${other} during this side`);
  const last = new Map(report.last);
  for (let d = 0; d < DEVICES; d++) {
    const values = last.get(`${GROUP}/${edge}/${deviceId(d)}`);
    for (let m = 0; m < METRICS; m++) {
      const want = valueOf(phase, BATCHES - 1, d, m);
      if (values?.[metricName(m)] !== want) { problems.push(`device ${d} ${metricName(m)} last ${String(values?.[metricName(m)])}, expected ${want}`); break; }
    }
  }
  if (problems.length > 0) throw new Error(`${side}, phase ${phase}: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------- setup, runs, report

const BROKER = (port: number) => ({ host: '127.0.0.1', port, protocolVersion: '4', reconnectMin: 0.2, reconnectMax: 1 });
const TAB = 'bench-tab';

function edgeFlow(port: number, dir: string): object[] {
  return [
    { id: TAB, type: 'tab', label: 'sparkplug bench' },
    { id: 'edge', type: 'uns-sparkplug-edge', groupId: GROUP, edgeNodeId: EDGE_OF['uns-edge'], ...BROKER(port), bdSeqDir: dir, storeDir: join(dir, 'store') },
    ...Array.from({ length: DEVICES }, (_, d) => ({
      id: `dev${d}`, type: 'uns-sparkplug-device', z: TAB, edge: 'edge', deviceId: deviceId(d), assetPath: assetPath(d),
      deathOnBadQuality: true, period: 1, missedPeriods: 0, writable: true, x: 200, y: 40 + d * 40, wires: [[]],
    })),
  ];
}

function hostFlow(port: number): object[] {
  return [
    { id: TAB, type: 'tab', label: 'sparkplug bench host' },
    { id: 'host', type: 'uns-sparkplug-host', z: TAB, hostId: 'bench-host', groups: GROUP, ...BROKER(port), devicePath: '{group}/{edge}/{device}',
      nodePath: '{group}/{edge}', reorderTimeout: 2, x: 500, y: 40, wires: [[], []] },
  ];
}

async function main(): Promise<void> {
  const mosquitto = await Mosquitto.start();
  const brokerPid = findPid(mosquitto.dir);
  if (brokerPid === undefined) throw new Error('cannot find the mosquitto process');
  const dir = mkdtempSync(join(tmpdir(), 'uns-bench-sparkplug-'));
  const host = await HostProcess.start(mosquitto.port);
  const red = await startNodeRed(edgeFlow(mosquitto.port, dir));
  // sparkplug-client: MQTT 3.1.1, QoS 0 publishes, its defaults (keepalive 5 s).
  const { newClient } = require('sparkplug-client') as { newClient(config: object): TahuClient };
  const tahu = newClient({
    serverUrl: `mqtt://127.0.0.1:${mosquitto.port}`, username: '', password: '', groupId: GROUP, edgeNode: EDGE_OF.tahu,
    clientId: `bench-tahu-${process.pid}`, version: 'spBv1.0',
  });
  tahu.on('error', (error) => console.error('sparkplug-client error:', error));
  const rig: Rig = { red, tahu, host, brokerPid };
  try {
    // Births, untimed: Tahu's on its `birth` event (as its README shows); uns-edge's device on its first batch.
    await new Promise<void>((resolve) => tahu.on('birth', () => {
      tahu.publishNodeBirth({ timestamp: Date.now(), metrics: [] });
      for (let d = 0; d < DEVICES; d++) tahu.publishDeviceBirth(deviceId(d), tahuPayload(0, -1, d, true));
      resolve();
    }));
    for (let d = 0; d < DEVICES; d++) red.node(`dev${d}`).receive(unsBatch(0, -1, d));
    const deadline = Date.now() + 20000;
    while ((await host.report()).last.length < 2 * DEVICES) {
      if (Date.now() > deadline) throw new Error('the births of both sides did not reach the host within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }

    const results: Record<Side, Measurement[]> = { 'uns-edge': [], tahu: [], 'tahu-mapped': [] };
    const load = new LoadMeter();
    let phase = 1;
    for (let run = 0; run <= RUNS; run++) { // run 0: warm-up, not recorded
      const order = [...SIDES.slice(run % SIDES.length), ...SIDES.slice(0, run % SIDES.length)];
      for (const side of order) {
        const m = await measureSide(side, phase++, rig);
        if (run > 0) results[side].push(m);
        console.log(`${run === 0 ? 'warm-up' : `run ${run}/${RUNS}`} ${side}: ${(m.metricsPerSecond / 1000).toFixed(1)} k metrics/s, ` +
          `${m.cores.toFixed(2)} cores, host ${m.hostCores.toFixed(2)}, broker ${m.brokerCores.toFixed(2)}, other ${m.otherCores.toFixed(2)} (counts and values checked)`);
      }
    }
    report(results, load.describe());
  } finally {
    tahu.stop();
    await red.stop();
    await host.stop();
    await mosquitto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(results: Record<Side, Measurement[]>, measuredLoad: string): void {
  const facts = machineFacts();
  const fmt = (s: Summary, digits: number, scale = 1) => `${(s.median / scale).toFixed(digits)} (${(s.min / scale).toFixed(digits)}–${(s.max / scale).toFixed(digits)})`;
  const of = (side: Side, field: keyof Measurement) => summarize(results[side].map((m) => m[field]));
  const versus = (peer: Side) => {
    const perRun = (f: (ours: Measurement, theirs: Measurement) => number) => summarize(results['uns-edge'].map((ours, i) => f(ours, results[peer][i])));
    const rate = perRun((a, b) => a.metricsPerSecond / b.metricsPerSecond);
    const cost = perRun((a, b) => (a.cores / a.metricsPerSecond) / (b.cores / b.metricsPerSecond));
    return `| uns-edge / ${peer} | **×${fmt(rate, 2)}** | **×${fmt(cost, 2)}** CPU per metric | | | |`;
  };
  const label: Record<Side, string> = {
    'uns-edge': '**uns-sparkplug-device + edge**, tag batches',
    tahu: `tahu: sparkplug-client ${TAHU_VERSION}, ready payload objects`,
    'tahu-mapped': `tahu-mapped: sparkplug-client ${TAHU_VERSION}, tag batches mapped by a function`,
  };
  const lines = [
    '## Sparkplug B end to end: uns-edge vs Tahu sparkplug-client',
    '',
    `\`node --expose-gc --import tsx bench/sparkplug-e2e.ts --write\` — ${new Date().toISOString().slice(0, 16)} UTC, ${RUNS} runs (+1 warm-up), ` +
      `${DEVICES} devices × ${BATCHES} batches × ${METRICS} Float metrics = ${DEVICES * BATCHES * METRICS} metrics per side and run, ` +
      `one DDATA per batch (every value changes), QoS 0, MQTT 3.1.1, Mosquitto ${facts.mosquitto}, Node-RED ${nodeRedVersion()}, ` +
      `Node ${facts.node}, ${facts.nproc} × ${facts.cpuModel}. Every side counted at the same \`uns-sparkplug-host\`'s output, in its own process.`,
    '',
    `**Load during the runs** (measured, warm-up included): ${measuredLoad}. Per side and run, "other" = machine busy ` +
      'from /proc/stat minus the three processes (slightly negative when the machine was otherwise idle, as the two are ' +
      'sampled differently). Absolute figures move with the load; the sides alternate within each run, so the ratios ' +
      'within each run are the result.',
    '',
    '| publisher | metrics/s (k) | publisher CPU (cores) | host CPU (cores) | broker CPU (cores) | other load (cores) |',
    '|---|---|---|---|---|---|',
    ...SIDES.map((side) => `| ${label[side]} | ${fmt(of(side, 'metricsPerSecond'), 1, 1000)} | ${fmt(of(side, 'cores'), 2)} | ` +
      `${fmt(of(side, 'hostCores'), 2)} | ${fmt(of(side, 'brokerCores'), 2)} | ${fmt(of(side, 'otherCores'), 2)} |`),
    ...(['tahu', 'tahu-mapped'] as Side[]).filter((peer) => SIDES.includes('uns-edge') && SIDES.includes(peer)).map(versus),
    '',
    'Medians, min–max in parentheses; ratios are medians of the per-run ratios (metrics/s; publisher CPU per metric).',
    '',
    '- **Path**: uns-edge: `receive()` of a tag batch (`{topic, payload: {m00..m49}, meta: {type: Float}}`) on each',
    '  `uns-sparkplug-device` → batch validation, report by exception, alias-only DDATA, shared seq → the',
    '  `uns-sparkplug-edge`\'s MQTT session. tahu: `publishDeviceData(device, payload)` with payload objects',
    '  built before the clock (alias, `type: Float`, value, timestamp): its cheapest case. tahu-mapped: the same',
    '  tag batches as uns-edge, turned into that payload by a function (alias table built at birth) inside the',
    '  clock, as an integrator would feed it. All then: Mosquitto → `uns-sparkplug-host` (decode, seq check,',
    '  alias → name, one tag batch per DDATA). Inputs yield to the event loop every 10 batches per device.',
    '- **Clock**: first input to the host\'s output having emitted every metric of that side (counted at the',
    '  host node\'s `send()` in the host process; both clocks are `performance.timeOrigin + now()`). After each',
    '  side, untimed: exact metric and message counts (a lost or extra message fails the run) and every',
    '  device\'s last values equal to what was sent.',
    '- **Processes**: publisher = one Node-RED (edge node, devices) also holding the Tahu client; host = a',
    '  second Node-RED with only `uns-sparkplug-host`; Mosquitto. CPU from `process.cpuUsage()` and /proc.',
    '- Sides run one after the other in each run, order rotating; one warm-up run first.',
    '- Tahu has no JavaScript host application, so the receiving side is uns-edge\'s host for all.',
  ];
  const markdown = lines.join('\n');
  console.log('\n' + markdown);
  if (WRITE) {
    writeSection('sparkplug-e2e', markdown);
    console.log('\nwritten to docs/benchmarks.md (section sparkplug-e2e)');
  }
}

function nodeRedVersion(): string {
  return (require('node-red/package.json') as { version: string }).version;
}

if (process.argv[2] === '--host-child') {
  hostChild(Number(process.argv[3])).catch((error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
} else {
  main().then(() => process.exit(0), (error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
}
