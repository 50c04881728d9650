/**
 * A plant of many gateways (issue 15 item 5): N headless `uns-edge run` processes, each polling its
 * own simulated line (D drives over Modbus TCP, one port per line, one plant process) and publishing
 * per-metric retained values (QoS 1) to ONE broker (Mosquitto, or a NATS cluster); one consumer process subscribed to `plant/#`
 * counts the values and measures end-to-end latency (the value's source timestamp → receipt).
 *
 * For each N (1, 2, 4, 8, 16, 24, 32) it starts everything fresh, waits
 * until every gateway's /healthz is ok and every line is seen, then measures `--runs` consecutive
 * windows of `--seconds` and reports medians: values/s at the consumer (= at the broker: one
 * subscriber), per-gateway CPU (/proc/<pid>/stat) and RSS, latency p50/p99, broker/plant/consumer
 * CPU, messages published by the gateways (their /metrics) vs received, and the load of the machine
 * (loadavg, /proc/stat busy cores), which other work shares. It stops after the first N where
 * something breaks:
 *   - per-line rate < 95 % of N=1's (the line's values no longer all get through in time),
 *   - received < 99 % of published (loss or a growing backlog),
 *   - latency p99 > 1 s,
 *   - a gateway's /healthz not ok,
 *   - the bench's own processes (gateways, broker, plant, consumer) using ≥ 95 % of all cores.
 *
 *   npm run build
 *   npx tsx bench/plant-scale.ts [--lines 1,2,4,8,16,24,32] [--drives 8] [--interval 250] [--seconds 10] [--runs 5] [--broker mosquitto|nats] [--write]
 *
 * --broker nats: the plain UNS on a 3-node NATS cluster with JetStream and MQTT (test/helpers/nats-cluster.ts,
 * Debian nats-server): line i connects to node i mod 3 with the other nodes as its server list
 * (brokerProfile nats), the consumer to node 1, so most values cross the cluster; broker CPU is the 3 nodes'.
 *
 * UNS_EDGE_BENCH_PACKAGE=<dir> runs a private build's CLI (bench/README.md).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, Mosquitto } from '../test/helpers/mosquitto';
import { NATS_SERVER_BIN, NatsCluster } from '../test/helpers/nats-cluster';
import { REPO_ROOT } from './lib/node-red';
import { lineFlows } from './lib/plant-scale-flows';
import { startConsumer, type Consumer } from './lib/plant-scale-consumer';
import { startPlant } from './lib/plant-scale-plant';
import { writeSection } from './lib/results-doc';
import { findPid, machineBusySeconds, machineFacts, processCpuSeconds, summarize } from './lib/stats';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '1,2,4,8,16,24,32' },
    drives: { type: 'string', default: '8' },
    interval: { type: 'string', default: '250' },
    seconds: { type: 'string', default: '10' },
    runs: { type: 'string', default: '5' },
    broker: { type: 'string', default: 'mosquitto' },
    write: { type: 'boolean', default: false },
  },
});
const LINE_COUNTS = (args.lines as string).split(',').map(Number);
const DRIVES = Number(args.drives);
const INTERVAL_MS = Number(args.interval);
const WINDOW_MS = Number(args.seconds) * 1000;
const RUNS = Number(args.runs);
const BROKER = args.broker as 'mosquitto' | 'nats';
if (BROKER !== 'mosquitto' && BROKER !== 'nats') throw new Error(`--broker mosquitto|nats, not ${String(BROKER)}`);
const CLI = join(process.env.UNS_EDGE_BENCH_PACKAGE ?? REPO_ROOT, 'dist', 'cli', 'uns-edge.js');

/** sim/ listens on at most this many ports per plant (MAX_SIM_PORTS). */
const MAX_SIM_PORTS = 16;
/** How long the consumer keeps receiving after a window for the values in flight (source-timestamped inside it). */
const DRAIN_MS = 3000;

const BREAK = { lineRateRatio: 0.95, deliveredRatio: 0.99, p99Ms: 1000, busyShare: 0.95 };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '';
  return Number(line.replace(/\D+/g, '')) / 1024;
}

interface Gateway { line: string; pid: number; port: number; child: ChildProcess; output: string }

/** The UNS broker under the plant: one Mosquitto, or a 3-node NATS cluster. */
interface PlantBroker {
  name: string;
  /** Every node's MQTT port; line i uses node i mod n first. */
  ports: number[];
  pids: number[];
  consumerUrl: string;
  profile: string;
  dispose(): Promise<void>;
}

async function startBroker(): Promise<PlantBroker> {
  if (BROKER === 'nats') {
    const cluster = await NatsCluster.start(3);
    const pids = cluster.nodes.map((node) => findPid(join(cluster.dir, `${node.name}.conf`)));
    if (pids.some((pid) => pid === undefined)) throw new Error('nats-server pid not found');
    const version = /v(\d+\.\d+\.\d+)/.exec(execFileSync(NATS_SERVER_BIN, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
    return {
      name: `NATS ${version} ×3 (JetStream, MQTT)`, ports: cluster.nodes.map((node) => node.ports.mqtt), pids: pids as number[],
      consumerUrl: cluster.mqttUrls[0], profile: 'nats', dispose: () => cluster.dispose(),
    };
  }
  const broker = await Mosquitto.start();
  const pid = findPid(broker.dir);
  if (!pid) throw new Error('mosquitto pid not found');
  return { name: `Mosquitto ${machineFacts().mosquitto}`, ports: [broker.port], pids: [pid], consumerUrl: broker.url, profile: 'standard', dispose: () => broker.dispose() };
}

async function startGateway(dir: string, index: number, broker: PlantBroker, modbusPort: number): Promise<Gateway> {
  const line = `line${index + 1}`;
  const flowFile = join(dir, `${line}.json`);
  const nodes = broker.ports.map((_, i) => broker.ports[(index + i) % broker.ports.length]);
  const flows = lineFlows({
    line, mqttPort: nodes[0], moreServers: nodes.slice(1).map((port) => `mqtt://127.0.0.1:${port}`), brokerProfile: broker.profile,
    modbusPort, drives: DRIVES, firstUnit: 1, intervalMs: INTERVAL_MS,
  });
  writeFileSync(flowFile, JSON.stringify(flows));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_') && key !== 'NODE_OPTIONS'));
  const child = spawn(process.execPath, [CLI, 'run', '--headless', '--flows', flowFile, '--user-dir', join(dir, line), '--port', String(port)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const gateway: Gateway = { line, pid: child.pid as number, port, child, output: '' };
  const keep = (d: Buffer): void => { gateway.output = (gateway.output + d.toString()).slice(-4000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return gateway;
}

async function health(gateway: Gateway): Promise<string> {
  try {
    const body = await (await fetch(`http://127.0.0.1:${gateway.port}/healthz`)).json() as { status: string };
    return body.status;
  } catch {
    return 'unreachable';
  }
}

/** Messages the gateway published to the broker so far (uns_edge_mqtt_published_total, all paths). */
async function published(gateway: Gateway): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gateway.port}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('uns_edge_mqtt_published_total{')).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function waitFor(what: string, condition: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
}

interface Window {
  valuesPerSecond: number;
  perLinePerSecond: number;
  p50: number;
  p99: number;
  gatewayCpu: number; // cores per gateway, mean over gateways
  gatewayRss: number; // MB per gateway, mean
  gatewayRssMax: number;
  brokerCpu: number;
  plantCpu: number;
  consumerCpu: number;
  busyCores: number;
  /** Cores used by the bench's own processes (gateways, broker, plant, consumer). */
  ownCores: number;
  loadavg: number;
  unhealthy: string[];
}

async function measureWindow(gateways: Gateway[], brokerPids: number[], plantPids: number[], consumer: Consumer): Promise<Window> {
  const pids = [...gateways.map((g) => g.pid), consumer.pid, ...brokerPids, ...plantPids];
  const cpu0 = pids.map(processCpuSeconds);
  const busy0 = machineBusySeconds();
  const t0 = Date.now();
  consumer.start('run', t0);
  await sleep(WINDOW_MS);
  const t1 = Date.now();
  const seconds = (t1 - t0) / 1000;
  const cpu = pids.map((pid, i) => (processCpuSeconds(pid) - cpu0[i]) / seconds);
  const busyCores = (machineBusySeconds() - busy0) / seconds;
  const received = await consumer.stop('run', t1, DRAIN_MS);
  const statuses = await Promise.all(gateways.map(health));
  const rss = gateways.map((g) => rssMb(g.pid));
  const n = gateways.length;
  return {
    valuesPerSecond: received.values / received.seconds,
    perLinePerSecond: received.values / received.seconds / n,
    p50: received.latencyMs.p50,
    p99: received.latencyMs.p99,
    gatewayCpu: cpu.slice(0, n).reduce((s, v) => s + v, 0) / n,
    gatewayRss: rss.reduce((s, v) => s + v, 0) / n,
    gatewayRssMax: Math.max(...rss),
    consumerCpu: cpu[n],
    brokerCpu: cpu.slice(n + 1, n + 1 + brokerPids.length).reduce((s, v) => s + v, 0),
    plantCpu: cpu.slice(n + 1 + brokerPids.length).reduce((s, v) => s + v, 0),
    busyCores,
    ownCores: cpu.reduce((s, v) => s + v, 0),
    loadavg: loadavg()[0],
    unhealthy: gateways.filter((_, i) => statuses[i] !== 'ok').map((g, i) => `${g.line}: ${statuses[i]}`),
  };
}

interface StepResult { lines: number; windows: Window[]; delivered: number; breaks: string[] }

const median = (windows: Window[], key: keyof Omit<Window, 'unhealthy'>): number => summarize(windows.map((w) => w[key])).median;

async function runStep(lines: number, broker: PlantBroker, consumer: Consumer, baselinePerLine: number | undefined): Promise<StepResult> {
  const dir = mkdtempSync(join(tmpdir(), `uns-plant-scale-${lines}-`));
  const plants = await Promise.all(Array.from({ length: Math.ceil(lines / MAX_SIM_PORTS) }, (_, i) => startPlant(Math.min(MAX_SIM_PORTS, lines - i * MAX_SIM_PORTS), DRIVES)));
  const ports = plants.flatMap((p) => p.ports);
  const gateways: Gateway[] = [];
  try {
    for (let i = 0; i < lines; i++) gateways.push(await startGateway(dir, i, broker, ports[i]));
    const startedAt = Date.now();
    await waitFor('every gateway /healthz ok', async () => {
      const dead = gateways.find((g) => g.child.exitCode !== null);
      if (dead) throw new Error(`${dead.line} exited: ${dead.output}`);
      return (await Promise.all(gateways.map(health))).every((s) => s === 'ok');
    }, 120_000);
    await waitFor('values of every line at the consumer', async () => {
      consumer.start('warm-up', Date.now());
      await sleep(1000);
      const seen = await consumer.stop('warm-up', Date.now(), 200);
      return gateways.every((g) => (seen.perLine[g.line] ?? 0) > 0);
    }, 60_000);
    console.log(`  ${lines} line(s): all healthy and publishing ${((Date.now() - startedAt) / 1000).toFixed(1)} s after start; ${RUNS} windows of ${WINDOW_MS / 1000} s`);
    // Loss over the whole step: edge errors (the moment each gateway's counter is read) shrink with the span.
    // The span's edges are the midpoints of the counter reads (each gateway's counter is read somewhere in between).
    const read0 = Date.now();
    consumer.start('step', read0);
    const published0 = await Promise.all(gateways.map(published));
    const spanStart = Math.round((read0 + Date.now()) / 2);
    const windows: Window[] = [];
    for (let run = 0; run < RUNS; run++) {
      const w = await measureWindow(gateways, broker.pids, plants.map((p) => p.pid), consumer);
      windows.push(w);
      console.log(`    run ${run + 1}: ${w.valuesPerSecond.toFixed(0)} values/s (${w.perLinePerSecond.toFixed(0)}/line), ` +
        `latency p50 ${w.p50.toFixed(1)} / p99 ${w.p99.toFixed(1)} ms, gateway ${(w.gatewayCpu * 100).toFixed(1)} % CPU ${w.gatewayRss.toFixed(0)} MB, ` +
        `broker ${(w.brokerCpu * 100).toFixed(1)} %, plant ${(w.plantCpu * 100).toFixed(1)} %, consumer ${(w.consumerCpu * 100).toFixed(1)} %, ` +
        `bench processes ${w.ownCores.toFixed(2)} + other ${(w.busyCores - w.ownCores).toFixed(2)} of ${cpus().length} cores busy, loadavg ${w.loadavg.toFixed(1)}${w.unhealthy.length ? `, NOT OK: ${w.unhealthy.join('; ')}` : ''}`);
    }
    const read1 = Date.now();
    const published1 = await Promise.all(gateways.map(published));
    const spanEnd = Math.round((read1 + Date.now()) / 2);
    const step = await consumer.stop('step', spanEnd, DRAIN_MS, spanStart);
    const publishedCount = published1.reduce((sum, v, i) => sum + v - published0[i], 0);
    const delivered = step.values / publishedCount;
    console.log(`    over ${(step.seconds).toFixed(0)} s: ${step.values} values received, ${publishedCount} published by the gateways: ${(delivered * 100).toFixed(2)} %`);
    const breaks: string[] = [];
    const perLine = median(windows, 'perLinePerSecond');
    if (baselinePerLine !== undefined && perLine < BREAK.lineRateRatio * baselinePerLine) breaks.push(`per-line rate ${perLine.toFixed(0)}/s < ${BREAK.lineRateRatio * 100} % of 1 line's ${baselinePerLine.toFixed(0)}/s`);
    if (delivered < BREAK.deliveredRatio) breaks.push(`received ${(delivered * 100).toFixed(1)} % of published`);
    const p99 = median(windows, 'p99');
    if (p99 > BREAK.p99Ms) breaks.push(`latency p99 ${p99.toFixed(0)} ms > ${BREAK.p99Ms} ms`);
    const unhealthy = windows.flatMap((w) => w.unhealthy);
    if (unhealthy.length) breaks.push(`/healthz not ok: ${[...new Set(unhealthy)].join('; ')}`);
    const own = median(windows, 'ownCores');
    if (own >= BREAK.busyShare * cpus().length) breaks.push(`the plant's processes use ${own.toFixed(2)} of ${cpus().length} cores`);
    return { lines, windows, delivered, breaks };
  } finally {
    for (const g of gateways) g.child.kill('SIGKILL');
    for (const plant of plants) plant.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(windows: Window[], key: keyof Omit<Window, 'unhealthy'>, scale = 1, digits = 0): string {
  const s = summarize(windows.map((w) => w[key] * scale));
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

async function main(): Promise<void> {
  const facts = machineFacts();
  const startedAt = Date.now();
  console.log(`plant-scale: lines ${LINE_COUNTS.join(', ')}; ${DRIVES} drives per line polled every ${INTERVAL_MS} ms; ${RUNS} × ${WINDOW_MS / 1000} s windows; ` +
    `${facts.nproc} × ${facts.cpuModel}, Node ${facts.node}, broker ${BROKER}; load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const broker = await startBroker();
  const consumer = await startConsumer(broker.consumerUrl);
  const results: StepResult[] = [];
  try {
    for (const lines of LINE_COUNTS) {
      const result = await runStep(lines, broker, consumer, results[0] ? median(results[0].windows, 'perLinePerSecond') : undefined);
      results.push(result);
      if (result.breaks.length) {
        console.log(`  breaks at ${lines} lines: ${result.breaks.join('; ')}`);
        break;
      }
    }
  } finally {
    consumer.close();
    await broker.dispose();
  }
  const minutes = (Date.now() - startedAt) / 60_000;

  const rows = results.map((r) => `| ${r.lines} | ${fmt(r.windows, 'valuesPerSecond')} | ${fmt(r.windows, 'perLinePerSecond')} | ${(r.delivered * 100).toFixed(2)} | ` +
    `${fmt(r.windows, 'p50', 1, 1)} | ${fmt(r.windows, 'p99', 1, 1)} | ${fmt(r.windows, 'gatewayCpu', 100, 1)} | ${fmt(r.windows, 'gatewayRss')} | ` +
    `${fmt(r.windows, 'brokerCpu', 100, 1)} | ${fmt(r.windows, 'plantCpu', 100, 1)} | ${fmt(r.windows, 'consumerCpu', 100, 1)} | ${fmt(r.windows, 'ownCores', 1, 2)} | ${fmt(r.windows, 'busyCores', 1, 2)} | ${fmt(r.windows, 'loadavg', 1, 1)} | ${r.breaks.join('; ') || '—'} |`);
  const markdown = [
    `## Plant scale: N gateways, one broker: ${broker.name} (issue 15)`,
    '',
    `\`npx tsx bench/plant-scale.ts --broker ${BROKER} --lines ${LINE_COUNTS.join(',')} --drives ${DRIVES} --interval ${INTERVAL_MS} --seconds ${WINDOW_MS / 1000} --runs ${RUNS} --write\` ` +
      `(after \`npm run build\`), ${new Date().toISOString().slice(0, 10)}, ${minutes.toFixed(1)} min; ${facts.nproc} × ${facts.cpuModel}, Node ${facts.node}, ${broker.name}.`,
    '',
    `Each line: one \`uns-edge run --headless\` process polling ${DRIVES} simulated drives (\`uns-vfd\`, every ${INTERVAL_MS} ms) on its own Modbus TCP port ` +
      '(one plant process serves every line) and publishing every metric as its own retained topic, QoS 1, to the broker; one consumer ' +
      'process (MQTT.js, `plant/#`, QoS 1) counts values and takes latency = receipt time − the value\'s source timestamp (same clock). ' +
      `Medians of ${RUNS} consecutive ${WINDOW_MS / 1000}-s windows on the same processes (min–max); everything restarted for each N. ` +
      '"received/published": over all windows of a step, the consumer\'s count of values whose source timestamp falls in the span (received up to 3 s after it) against the gateways\' `uns_edge_mqtt_published_total` read at its start and end (the span\'s edges are the midpoints of those reads). CPU in % of one core.',
    '',
    '| lines | values/s at the consumer | per line | received/published % | latency p50 ms | p99 ms | CPU per gateway % | RSS per gateway MB | broker CPU % | plant CPU % | consumer CPU % | cores used by these processes | machine busy cores (all processes) | loadavg (1 min) | breaks |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Breaking criteria: per-line rate below ${BREAK.lineRateRatio * 100} % of one line's, received below ${BREAK.deliveredRatio * 100} % of published, ` +
      `p99 above ${BREAK.p99Ms} ms, a /healthz not ok, or these processes using ${BREAK.busyShare * 100} % of all cores. **The machine is shared**: other work ran during ` +
      'these runs (the busy cores include it; loadavg counts every runnable process), so the absolute figures are pessimistic; the per-gateway CPU and RSS are the gateways\' own.',
  ].join('\n');
  console.log(`\n${markdown}\n`);
  if (args.write) writeSection(`plant-scale-${BROKER}`, markdown);
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});
