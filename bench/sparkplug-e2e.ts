/**
 * Sparkplug B end to end: tag batches → `uns-sparkplug-device` + `uns-sparkplug-edge` → Mosquitto →
 * `uns-sparkplug-host`, side by side with Eclipse Tahu's `sparkplug-client` publishing the same data
 * (DDATA of the same metrics, aliases, Float) to the same broker and the same host, in one run.
 *
 *   npm run build
 *   node --expose-gc --import tsx bench/sparkplug-e2e.ts [--runs 5] [--devices 10] [--metrics 50] [--batches 200] [--write]
 *
 * One embedded Node-RED (this repo's built nodes) holds the edge node, D devices and the host; the Tahu
 * client runs in the same process with its own MQTT connection (group "bench", edge nodes "uns-gw" and
 * "tahu-gw"). Each run measures both sides one after the other, order alternating; one warm-up run first.
 * A side's clock runs from its first publish/receive() to the host having emitted every metric of it
 * (counted at the host node's send(), the node's output). After each side: exact metric and message
 * counts, and every device's last values compared with what was sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Mosquitto } from '../test/helpers/mosquitto';
import { startNodeRed, waitFor, type EmbeddedNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { findPid, machineBusySeconds, machineFacts, processCpuSeconds, summarize, type Summary } from './lib/stats';

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

type Side = 'uns-edge' | 'tahu';
const SIDES: Side[] = ['uns-edge', 'tahu'];
const EDGE_OF: Record<Side, string> = { 'uns-edge': 'uns-gw', tahu: 'tahu-gw' };
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

// ---------------------------------------------------------------- counting at the host's output

/** Metrics and messages the host emitted per side, and the last values per device path. */
class HostCounter {
  metrics: Record<Side, number> = { 'uns-edge': 0, tahu: 0 };
  messages: Record<Side, number> = { 'uns-edge': 0, tahu: 0 };
  last = new Map<string, Record<string, unknown>>();
  private target?: { side: Side; metrics: number; resolve: (at: number) => void };

  constructor(red: EmbeddedNodeRed, hostId: string) {
    const host = red.node<{ send(msg: unknown): void }>(hostId);
    host.send = (msg: unknown) => {
      const batch = (msg as Array<{ topic: string; payload: Record<string, unknown>; historical?: boolean } | null>)[0];
      if (!batch || batch.historical) return;
      const side = SIDES.find((s) => batch.topic.startsWith(`${GROUP}/${EDGE_OF[s]}/`));
      if (side === undefined) return; // the edge nodes' own metrics (node path)
      this.messages[side]++;
      this.metrics[side] += Object.keys(batch.payload).length;
      this.last.set(batch.topic, batch.payload);
      if (this.target?.side === side && this.metrics[side] >= this.target.metrics) {
        const { resolve } = this.target;
        this.target = undefined;
        resolve(performance.now());
      }
    };
  }

  reset(): void {
    this.metrics = { 'uns-edge': 0, tahu: 0 };
    this.messages = { 'uns-edge': 0, tahu: 0 };
    this.last.clear();
  }

  /** Resolves with performance.now() when `metrics` of `side` have been emitted. */
  whenCounted(side: Side, metrics: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${side}: host emitted ${this.metrics[side]} of ${metrics} metrics within ${timeoutMs} ms`)), timeoutMs);
      this.target = { side, metrics, resolve: (at) => { clearTimeout(timer); resolve(at); } };
    });
  }
}

// ---------------------------------------------------------------- the two publishers

function unsBatch(p: number, b: number, d: number): object {
  const payload: Record<string, number> = {};
  const meta: Record<string, { type: string }> = {};
  for (let m = 0; m < METRICS; m++) {
    payload[metricName(m)] = valueOf(p, b, d, m);
    meta[metricName(m)] = { type: 'Float' };
  }
  return { topic: assetPath(d), payload, meta };
}

/** Tahu's DDATA/DBIRTH payload object: its client takes these, with `type` on every metric (it cannot encode one without). */
function tahuPayload(p: number, b: number, d: number, withNames: boolean): { timestamp: number; metrics: object[] } {
  const timestamp = Date.now();
  return {
    timestamp,
    metrics: Array.from({ length: METRICS }, (_, m) => ({
      ...(withNames ? { name: metricName(m) } : {}), alias: d * METRICS + m + 1, type: 'Float', value: valueOf(p, b, d, m), timestamp,
    })),
  };
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
  cores: number;
  brokerCores: number;
  otherCores: number;
}

async function measureSide(side: Side, phase: number, red: EmbeddedNodeRed, tahu: TahuClient, counter: HostCounter, brokerPid: number): Promise<Measurement> {
  // Inputs before the clock: tag batches for uns-edge, Tahu's payload objects for Tahu (its cheapest case: no mapping timed).
  const inputs: Array<() => void> = [];
  for (let b = 0; b < BATCHES; b++) {
    for (let d = 0; d < DEVICES; d++) {
      if (side === 'uns-edge') {
        const device = red.node(`dev${d}`);
        const msg = unsBatch(phase, b, d);
        inputs.push(() => device.receive(msg));
      } else {
        const payload = tahuPayload(phase, b, d, false);
        inputs.push(() => tahu.publishDeviceData(deviceId(d), payload));
      }
    }
  }
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 200));
  counter.reset();
  const expected = BATCHES * DEVICES * METRICS;
  const counted = counter.whenCounted(side, expected, 120000);
  const cpu0 = process.cpuUsage();
  const broker0 = processCpuSeconds(brokerPid);
  const busy0 = machineBusySeconds();
  const start = performance.now();
  await feed(inputs);
  const end = await counted;
  const seconds = (end - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cores = (cpu.user + cpu.system) / 1e6 / seconds;
  const brokerCores = (processCpuSeconds(brokerPid) - broker0) / seconds;
  const otherCores = (machineBusySeconds() - busy0) / seconds - cores - brokerCores;
  await new Promise((r) => setTimeout(r, 300)); // anything beyond the expected count would arrive now
  verify(side, phase, counter);
  return { metricsPerSecond: expected / seconds, seconds, cores, brokerCores, otherCores };
}

function verify(side: Side, phase: number, counter: HostCounter): void {
  const problems: string[] = [];
  const expectedMetrics = BATCHES * DEVICES * METRICS;
  if (counter.metrics[side] !== expectedMetrics) problems.push(`${counter.metrics[side]} metrics, expected ${expectedMetrics}`);
  if (counter.messages[side] !== BATCHES * DEVICES) problems.push(`${counter.messages[side]} messages, expected ${BATCHES * DEVICES}`);
  const other = side === 'uns-edge' ? 'tahu' : 'uns-edge';
  if (counter.metrics[other] !== 0) problems.push(`${counter.metrics[other]} metrics of ${other} during this side`);
  for (let d = 0; d < DEVICES; d++) {
    const last = counter.last.get(`${GROUP}/${EDGE_OF[side]}/${deviceId(d)}`);
    for (let m = 0; m < METRICS; m++) {
      const want = valueOf(phase, BATCHES - 1, d, m);
      if (last?.[metricName(m)] !== want) { problems.push(`device ${d} ${metricName(m)} last ${String(last?.[metricName(m)])}, expected ${want}`); break; }
    }
  }
  if (problems.length > 0) throw new Error(`${side}, phase ${phase}: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------- setup, runs, report

function flow(port: number, dir: string): object[] {
  const tab = 'bench-tab';
  const broker = { host: '127.0.0.1', port, protocolVersion: '4', reconnectMin: 0.2, reconnectMax: 1 };
  return [
    { id: tab, type: 'tab', label: 'sparkplug bench' },
    { id: 'edge', type: 'uns-sparkplug-edge', groupId: GROUP, edgeNodeId: EDGE_OF['uns-edge'], ...broker, bdSeqDir: dir, storeDir: join(dir, 'store') },
    ...Array.from({ length: DEVICES }, (_, d) => ({
      id: `dev${d}`, type: 'uns-sparkplug-device', z: tab, edge: 'edge', deviceId: deviceId(d), assetPath: assetPath(d),
      deathOnBadQuality: true, period: 1, missedPeriods: 0, writable: true, x: 200, y: 40 + d * 40, wires: [[]],
    })),
    { id: 'host', type: 'uns-sparkplug-host', z: tab, hostId: 'bench-host', groups: GROUP, ...broker, devicePath: '{group}/{edge}/{device}',
      nodePath: '{group}/{edge}', reorderTimeout: 2, x: 500, y: 40, wires: [[], []] },
  ];
}

async function main(): Promise<void> {
  const mosquitto = await Mosquitto.start();
  const brokerPid = findPid(mosquitto.dir);
  if (brokerPid === undefined) throw new Error('cannot find the mosquitto process');
  const dir = mkdtempSync(join(tmpdir(), 'uns-bench-sparkplug-'));
  const red = await startNodeRed(flow(mosquitto.port, dir));
  const counter = new HostCounter(red, 'host');
  // sparkplug-client: MQTT 3.1.1, QoS 0 publishes, its defaults (keepalive 5 s).
  const { newClient } = require('sparkplug-client') as { newClient(config: object): TahuClient };
  const tahu = newClient({
    serverUrl: `mqtt://127.0.0.1:${mosquitto.port}`, username: '', password: '', groupId: GROUP, edgeNode: EDGE_OF.tahu,
    clientId: `bench-tahu-${process.pid}`, version: 'spBv1.0',
  });
  tahu.on('error', (error) => console.error('sparkplug-client error:', error));
  try {
    // Births, untimed: Tahu's on its `birth` event (as its README shows); uns-edge's device on its first batch.
    const born = new Promise<void>((resolve) => tahu.on('birth', () => {
      tahu.publishNodeBirth({ timestamp: Date.now(), metrics: [] });
      for (let d = 0; d < DEVICES; d++) tahu.publishDeviceBirth(deviceId(d), tahuPayload(0, -1, d, true));
      resolve();
    }));
    await born;
    for (let d = 0; d < DEVICES; d++) red.node(`dev${d}`).receive(unsBatch(0, -1, d));
    await waitFor('both sides born at the host', () => counter.last.size === 2 * DEVICES, 20000);

    const results: Record<Side, Measurement[]> = { 'uns-edge': [], tahu: [] };
    let phase = 1;
    for (let run = 0; run <= RUNS; run++) { // run 0: warm-up, not recorded
      const order = run % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        const m = await measureSide(side, phase++, red, tahu, counter, brokerPid);
        if (run > 0) results[side].push(m);
        console.log(`${run === 0 ? 'warm-up' : `run ${run}/${RUNS}`} ${side}: ${(m.metricsPerSecond / 1000).toFixed(1)} k metrics/s, ` +
          `${m.cores.toFixed(2)} cores, broker ${m.brokerCores.toFixed(2)}, other ${m.otherCores.toFixed(2)} (counts and values checked)`);
      }
    }
    report(results);
  } finally {
    tahu.stop();
    await red.stop();
    await mosquitto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(results: Record<Side, Measurement[]>): void {
  const facts = machineFacts();
  const fmt = (s: Summary, digits: number, scale = 1) => `${(s.median / scale).toFixed(digits)} (${(s.min / scale).toFixed(digits)}–${(s.max / scale).toFixed(digits)})`;
  const of = (side: Side, field: keyof Measurement) => summarize(results[side].map((m) => m[field]));
  const perRun = (f: (ours: Measurement, theirs: Measurement) => number) => summarize(results['uns-edge'].map((ours, i) => f(ours, results.tahu[i])));
  const rateRatio = perRun((a, b) => a.metricsPerSecond / b.metricsPerSecond);
  const costRatio = perRun((a, b) => (a.cores / a.metricsPerSecond) / (b.cores / b.metricsPerSecond));
  const label: Record<Side, string> = { 'uns-edge': '**uns-sparkplug-device + edge**, tag batches', tahu: `sparkplug-client ${TAHU_VERSION} (Tahu), payload objects` };
  const lines = [
    '## Sparkplug B end to end: uns-edge vs Tahu sparkplug-client',
    '',
    `\`node --expose-gc --import tsx bench/sparkplug-e2e.ts --write\` — ${new Date().toISOString().slice(0, 16)} UTC, ${RUNS} runs (+1 warm-up), ` +
      `${DEVICES} devices × ${BATCHES} batches × ${METRICS} Float metrics = ${DEVICES * BATCHES * METRICS} metrics per side and run, ` +
      `one DDATA per batch (every value changes), QoS 0, MQTT 3.1.1, Mosquitto ${facts.mosquitto}, Node-RED ${nodeRedVersion()}, ` +
      `Node ${facts.node}, ${facts.nproc} × ${facts.cpuModel}. Both sides counted at the same \`uns-sparkplug-host\`'s output.`,
    '',
    `**The machine was loaded** by a parallel test run (load average ${loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end; ` +
      '"other" = machine busy minus this process and the broker). Absolute figures move with that; the ratios within each run are the result.',
    '',
    '| publisher | metrics/s (k) | process CPU (cores) | broker CPU (cores) | other load (cores) |',
    '|---|---|---|---|---|',
    ...SIDES.map((side) => `| ${label[side]} | ${fmt(of(side, 'metricsPerSecond'), 1, 1000)} | ${fmt(of(side, 'cores'), 2)} | ${fmt(of(side, 'brokerCores'), 2)} | ${fmt(of(side, 'otherCores'), 2)} |`),
    `| uns-edge / Tahu | **×${fmt(rateRatio, 2)}** metrics/s | **×${fmt(costRatio, 2)}** CPU per metric | | |`,
    '',
    'Medians, min–max in parentheses; ratios are medians of the per-run ratios.',
    '',
    '- **Path**: uns-edge: `receive()` of a tag batch (`{topic, payload: {m00..m49}, meta: {type: Float}}`) on each',
    '  `uns-sparkplug-device` → batch validation, report by exception, alias-only DDATA, shared seq → the',
    '  `uns-sparkplug-edge`\'s MQTT session. Tahu: `publishDeviceData(device, payload)` with the payload objects',
    '  built before the clock (alias, `type: Float`, value, timestamp: its cheapest case, no mapping from a tag',
    '  batch timed), seq added by the client. Both then: Mosquitto → `uns-sparkplug-host` (decode, seq check,',
    '  alias → name, one tag batch per DDATA). Inputs yield to the event loop every 10 batches per device.',
    '- **Clock**: first input to the host\'s output having emitted every metric of that side (counted at the',
    '  host node\'s `send()`). After each side, untimed: exact metric and message counts (a lost or extra',
    '  message fails the run) and every device\'s last values equal to what was sent.',
    '- **CPU**: `process.cpuUsage()` of the one process, which holds the publisher under test **and the host**',
    '  (the same host work on both sides), over the same window; the broker\'s from /proc.',
    '- Both sides run in one process, one after the other, order alternating per run; one warm-up run first.',
    '- Not measured: Tahu has no host application in JavaScript, so the host side is uns-edge\'s for both.',
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

main().then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
