/**
 * Issue 2 benchmark: tag batches through `uns-out` to a real Mosquitto, side by side with
 * Node-RED's core `mqtt out`, in one Node-RED runtime and one run.
 *
 *   A  uns-out + uns-broker (store-and-forward on, its default; and off)   fed tag batches
 *   B  core mqtt out + mqtt-broker                                           fed pre-split per-metric messages
 *                                                                             (same topics, same JSON strings: the peer's cheapest case)
 *   C  function (splits the batch, as an integrator writes it) + core mqtt out
 *
 * Same QoS (1 is the headline, 0 too), retain true everywhere, same topics and values (values change
 * every batch; uns-out's deadband is off). Arrivals are counted by mosquitto_sub in its own process;
 * every received message is checked (count, topic, payload, per-topic order) and the retained value
 * of one topic is read back, so a broken variant cannot look fast. Method: bench/README.md.
 *
 *   npm run bench -- [--runs 5] [--batches 2000] [--metrics 50] [--qos 1,0] [--qos0-rate 20000] [--write]
 *
 * QoS 0 is fed at a steady offered rate (--qos0-rate metric updates/s, 0 = as fast as possible): an
 * unpaced burst of 100k QoS 0 publishes measures how a client copes with a socket backlog of tens of
 * thousands of packets (bimodal: core mqtt out was 1.2×–19× uns-out's CPU in 9 burst runs), not
 * what a gateway does in operation. Ratios are given as the distribution of the per-run ratios.
 */
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type MqttClient } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../test/helpers/mosquitto';
import { startNodeRed, waitFor, type EmbeddedNodeRed, type RuntimeNode } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { findPid, machineBusySeconds, machineFacts, processCpuSeconds, summarize, type MachineFacts, type Summary } from './lib/stats';
import { CountingSubscriber } from './lib/subscriber';

// ---------------------------------------------------------------- options

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    batches: { type: 'string', default: '2000' },
    metrics: { type: 'string', default: '50' },
    assets: { type: 'string', default: '100' },
    qos: { type: 'string', default: '1,0' },
    variants: { type: 'string', default: 'A-store,A-nostore,B,C' },
    chunk: { type: 'string', default: '10' },
    'warmup-batches': { type: 'string', default: '400' },
    /** Offered metric updates per second for QoS 0 runs; 0 feeds them as fast as possible. */
    'qos0-rate': { type: 'string', default: '20000' },
    write: { type: 'boolean', default: false },
    /** Write a V8 CPU profile of each measured run (feed to last arrival) into this folder. */
    'cpu-prof-dir': { type: 'string' },
  },
});

const RUNS = positive('runs');
const BATCHES = positive('batches');
const METRICS = positive('metrics');
const ASSETS = positive('assets');
/** Batches fed per event-loop turn before yielding with setImmediate. */
const CHUNK = positive('chunk');
const WARMUP_BATCHES = positive('warmup-batches');
const QOS0_RATE = Number(args['qos0-rate']);
if (!Number.isFinite(QOS0_RATE) || QOS0_RATE < 0) throw new Error('--qos0-rate must be a number ≥ 0');
/** Period of the paced feed: each tick feeds the batches due by then (absolute deadlines, no drift). */
const PACE_TICK_MS = 5;
const QOS_LEVELS = args.qos.split(',').map((q) => Number(q.trim()) as 0 | 1);
if (QOS_LEVELS.some((q) => q !== 0 && q !== 1)) throw new Error('--qos takes 0 and/or 1');

function positive(name: keyof typeof args): number {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

// ---------------------------------------------------------------- variants

type VariantId = 'A-store' | 'A-nostore' | 'B' | 'C';

interface Variant {
  id: VariantId;
  label: string;
  /** How the variant is fed: tag batches, or the batches pre-split into per-metric messages. */
  input: 'batch' | 'split';
  /** The node receive() is called on, for a QoS. */
  entry(qos: 0 | 1): string;
  /** True once its broker connection is up. */
  connected(red: EmbeddedNodeRed): boolean;
}

const unsConnected = (brokerId: string) => (red: EmbeddedNodeRed): boolean =>
  red.node<{ currentStatus(): { fill?: string } }>(brokerId).currentStatus().fill === 'green';
const coreConnected = (brokerId: string) => (red: EmbeddedNodeRed): boolean =>
  red.node<{ connected: boolean }>(brokerId).connected;

const VARIANTS: Variant[] = [
  { id: 'A-store', label: 'uns-out, store-and-forward on (default)', input: 'batch', entry: (q) => `A-store-q${q}`, connected: unsConnected('ub-store') },
  { id: 'A-nostore', label: 'uns-out, store-and-forward off', input: 'batch', entry: (q) => `A-nostore-q${q}`, connected: unsConnected('ub-nostore') },
  { id: 'B', label: 'core mqtt out, pre-split messages', input: 'split', entry: (q) => `B-q${q}`, connected: coreConnected('mb-B') },
  { id: 'C', label: 'core function (split) + mqtt out', input: 'batch', entry: (q) => `C-split-q${q}`, connected: coreConnected('mb-C') },
];
const SELECTED = args.variants.split(',').map((id) => {
  const variant = VARIANTS.find((v) => v.id === id.trim());
  if (!variant) throw new Error(`unknown variant "${id}" (known: ${VARIANTS.map((v) => v.id).join(', ')})`);
  return variant;
});

/** What an integrator writes in a function node to turn a tag batch into one message per metric. */
const SPLIT_FUNCTION = `const base = 'bench/' + msg.topic + '/';
const timestamp = msg.timestamp;
const out = [];
for (const name in msg.payload) {
    out.push({ topic: base + name, payload: { value: msg.payload[name], timestamp: timestamp, quality: 'good' } });
}
return [out];`;

function benchFlow(port: number): object[] {
  const tab = 'bench-tab';
  const flow: object[] = [{ id: tab, type: 'tab', label: 'uns-out vs mqtt out' }];
  const unsBroker = (id: string, storeEnabled: boolean): object => ({
    id, type: 'uns-broker', name: `bench ${storeEnabled ? 'store on' : 'store off'}`, host: '127.0.0.1', port: String(port), protocolVersion: '4', clientId: `bench-${id}`,
    keepalive: '60', cleanSession: true, reconnectMin: '1', reconnectMax: '10', storeEnabled, storeDir: '', storeMaxMB: '100',
    storeMaxAgeDays: '7', storeWindow: '20', usetls: false,
  });
  const coreBroker = (id: string): object => ({
    id, type: 'mqtt-broker', name: `bench core ${id.slice(3)}`, broker: '127.0.0.1', port: String(port), clientid: `bench-${id}`, autoConnect: true,
    usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true, autoUnsubscribe: true,
    birthTopic: '', closeTopic: '', willTopic: '',
  });
  flow.push(unsBroker('ub-store', true), unsBroker('ub-nostore', false), coreBroker('mb-B'), coreBroker('mb-C'));
  let y = 40;
  const place = (): { x: number; y: number } => ({ x: 200, y: (y += 60) });
  for (const qos of [0, 1]) {
    for (const [id, broker] of [['A-store', 'ub-store'], ['A-nostore', 'ub-nostore']]) {
      flow.push({ id: `${id}-q${qos}`, type: 'uns-out', z: tab, name: `${id} q${qos}`, broker, topicPrefix: 'bench', qos: String(qos),
        retain: true, format: 'metric', deadbandMode: 'off', deadband: '', maxSilence: '0', rbeCacheSize: '100000', ...place(), wires: [] });
    }
    const mqttOut = (id: string, broker: string): object => ({ id, type: 'mqtt out', z: tab, name: `mqtt out ${id}`, topic: '', qos: String(qos),
      retain: 'true', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker, ...place(), wires: [] });
    flow.push(mqttOut(`B-q${qos}`, 'mb-B'));
    flow.push({ id: `C-split-q${qos}`, type: 'function', z: tab, name: `split q${qos}`, func: SPLIT_FUNCTION, outputs: 1, timeout: 0,
      noerr: 0, initialize: '', finalize: '', libs: [], ...place(), wires: [[`C-q${qos}`]] });
    flow.push(mqttOut(`C-q${qos}`, 'mb-C'));
  }
  return flow;
}

// ---------------------------------------------------------------- inputs and expected output

interface RunInput {
  batches: Array<{ topic: string; payload: Record<string, number>; timestamp: number }>;
  split: Array<Array<{ topic: string; payload: string }>>;
  /** Per topic, the payloads in publish order. */
  expected: Map<string, string[]>;
  count: number;
}

const METRIC_NAMES = Array.from({ length: METRICS }, (_, k) => `Metric${String(k).padStart(2, '0')}`);

/** The uns-out per-metric payload (docs/uns-topics.md); the function node's JSON.stringify gives the same text. */
function metricPayload(value: number, timestamp: number): string {
  return `{"value":${value},"timestamp":${timestamp},"quality":"good"}`;
}

/** Batches for one run under `namespace` (the ISA-95 enterprise level, unique per run). Values change every batch. */
function buildInput(namespace: string, batchCount: number, withSplit: boolean): RunInput {
  const start = Date.now();
  const batches: RunInput['batches'] = [];
  const split: RunInput['split'] = [];
  const expected = new Map<string, string[]>();
  for (let i = 0; i < batchCount; i++) {
    const assetPath = `${namespace}/plant1/area1/line1/cell1/drive${String(i % ASSETS).padStart(3, '0')}`;
    const timestamp = start + i;
    const payload: Record<string, number> = {};
    const messages: Array<{ topic: string; payload: string }> = [];
    for (let k = 0; k < METRICS; k++) {
      const value = Math.round((i + k / 100) * 100) / 100;
      payload[METRIC_NAMES[k]] = value;
      const topic = `bench/${assetPath}/${METRIC_NAMES[k]}`;
      const text = metricPayload(value, timestamp);
      if (withSplit) messages.push({ topic, payload: text });
      let list = expected.get(topic);
      if (list === undefined) expected.set(topic, (list = []));
      list.push(text);
    }
    batches.push({ topic: assetPath, payload, timestamp });
    if (withSplit) split.push(messages);
  }
  return { batches, split, expected, count: batchCount * METRICS };
}

/** Every expected message arrived exactly once, in order per topic, with the exact payload. Returns problems. */
function verify(input: RunInput, messages: Array<{ topic: string; payload: string }>): string[] {
  const problems: string[] = [];
  if (messages.length !== input.count) problems.push(`received ${messages.length} messages, expected ${input.count}`);
  const seen = new Map<string, number>();
  for (const { topic, payload } of messages) {
    const list = input.expected.get(topic);
    const index = seen.get(topic) ?? 0;
    seen.set(topic, index + 1);
    if (list === undefined) problems.push(`unexpected topic ${topic}`);
    else if (list[index] !== payload) problems.push(`${topic} #${index + 1}: got ${payload}, expected ${list[index] ?? '(nothing more)'}`);
    if (problems.length >= 5) break;
  }
  return problems;
}

// ---------------------------------------------------------------- one run

interface RunResult {
  variant: VariantId;
  qos: 0 | 1;
  updatesPerSec: number;
  wallMs: number;
  feedMs: number;
  /** Node-RED process CPU (user + system) over the wall time, in cores. */
  cpuCores: number;
  cpuUsPerUpdate: number;
  rssMB: number;
  brokerCores: number;
  subscriberCores: number;
  /** Everything else that ran on the machine meanwhile (other processes, the kernel), in cores. */
  otherCores: number;
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const gc = (globalThis as { gc?: () => void }).gc;

/** CPU profiles of the measured part of runs only (not start-up, input building or checks). */
class RunProfiler {
  private readonly session = new Session();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.session.connect();
  }

  async start(): Promise<void> {
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.start');
  }

  async stop(name: string): Promise<void> {
    const { profile } = await this.session.post('Profiler.stop');
    writeFileSync(join(this.dir, `${name}.cpuprofile`), JSON.stringify(profile));
  }
}

class Bench {
  private runCounter = 0;
  private readonly profiler = args['cpu-prof-dir'] ? new RunProfiler(args['cpu-prof-dir']) : undefined;

  constructor(private readonly red: EmbeddedNodeRed, private readonly broker: Mosquitto, private readonly brokerPid: number,
    private readonly client: MqttClient) {}

  async run(variant: Variant, qos: 0 | 1, batchCount: number, label: string): Promise<RunResult> {
    const namespace = `${label}${++this.runCounter}-${variant.id}-q${qos}`;
    const input = buildInput(namespace, batchCount, variant.input === 'split');
    const entry = this.red.node<RuntimeNode>(variant.entry(qos));
    const probeTopic = `bench/${namespace}/_ready`;
    await this.client.publishAsync(probeTopic, 'ready', { qos: 1, retain: true });
    const subscriber = await CountingSubscriber.start({
      port: this.broker.port, filter: `bench/${namespace}/#`, count: input.count, qos, probeTopic, timeoutSec: 120,
    });
    gc?.();
    await sleep(200);

    const profiling = this.profiler !== undefined && label !== 'warm';
    if (profiling) await this.profiler!.start();
    let rss = process.memoryUsage.rss();
    const rssSampler = setInterval(() => { rss = Math.max(rss, process.memoryUsage.rss()); }, 100);
    const brokerCpuStart = processCpuSeconds(this.brokerPid);
    const machineStart = machineBusySeconds();
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    const feedBatch = variant.input === 'split'
      ? (i: number): void => { const messages = input.split[i]; for (let k = 0; k < messages.length; k++) entry.receive(messages[k]); }
      : (i: number): void => entry.receive(input.batches[i]);
    const batchesPerMs = qos === 0 && QOS0_RATE > 0 ? QOS0_RATE / METRICS / 1000 : 0;
    if (batchesPerMs > 0) {
      // Paced: at each tick, every batch whose time has come (batch i is due at i / batchesPerMs ms).
      for (let i = 0; i < input.batches.length;) {
        const due = Math.min(input.batches.length, Math.floor((performance.now() - start) * batchesPerMs) + 1);
        for (; i < due; i++) feedBatch(i);
        if (i < input.batches.length) await sleep(Math.max(0, Math.min(PACE_TICK_MS, i / batchesPerMs - (performance.now() - start))));
      }
    } else {
      for (let i = 0; i < input.batches.length; i++) {
        feedBatch(i);
        if ((i + 1) % CHUNK === 0) await immediate();
      }
    }
    const feedMs = performance.now() - start;
    const received = await subscriber.finished;
    const cpu = process.cpuUsage(cpuStart);
    const cpuEnd = performance.now();
    const brokerCpu = processCpuSeconds(this.brokerPid) - brokerCpuStart;
    const machineBusy = machineBusySeconds() - machineStart;
    clearInterval(rssSampler);
    rss = Math.max(rss, process.memoryUsage.rss());
    if (profiling) await this.profiler!.stop(namespace);

    const problems = verify(input, subscriber.takeMessages());
    if (received.exitCode !== 0) problems.unshift(`mosquitto_sub exited with ${received.exitCode} (timeout?) ${received.stderr.trim()}`);
    const retained = this.readRetained(`bench/${input.batches[input.batches.length - 1].topic}/${METRIC_NAMES[0]}`);
    const lastPayloads = input.expected.get(`bench/${input.batches[input.batches.length - 1].topic}/${METRIC_NAMES[0]}`) ?? [];
    if (retained !== `1 ${lastPayloads[lastPayloads.length - 1]}`) problems.push(`retained value read back as "${retained}"`);
    await this.clearRetained(namespace, [...input.expected.keys(), probeTopic]);
    if (problems.length > 0) throw new Error(`${variant.id} QoS ${qos}: ${problems.join('; ')}`);

    const wallMs = received.endedAt - start;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      variant: variant.id,
      qos,
      updatesPerSec: input.count / (wallMs / 1000),
      wallMs,
      feedMs,
      cpuCores: cpuSeconds / ((cpuEnd - start) / 1000),
      cpuUsPerUpdate: (cpuSeconds * 1e6) / input.count,
      rssMB: rss / 1048576,
      brokerCores: brokerCpu / (wallMs / 1000),
      subscriberCores: received.cpuSeconds / (wallMs / 1000),
      otherCores: Math.max(0, machineBusy - cpuSeconds - brokerCpu - received.cpuSeconds) / ((cpuEnd - start) / 1000),
    };
  }

  /** The retained message of one topic as "<retain flag> <payload>" (a fresh subscription gets it from the broker). */
  private readRetained(topic: string): string {
    try {
      return execFileSync('/usr/bin/mosquitto_sub', ['-h', '127.0.0.1', '-p', String(this.broker.port), '-t', topic, '-C', '1', '-W', '3', '-F', '%r %p'],
        { encoding: 'utf8' }).trim();
    } catch (error) {
      return `(none: ${(error as Error).message})`;
    }
  }

  /** Leave the broker as before the run: an empty retained message deletes a retained one (MQTT v3.1.1 §3.3.1.3). */
  private async clearRetained(namespace: string, topics: string[]): Promise<void> {
    for (const topic of topics) this.client.publish(topic, '', { qos: 0, retain: true });
    await this.client.publishAsync(`bench/${namespace}/_cleared`, '', { qos: 1, retain: false });
  }
}

// ---------------------------------------------------------------- report

interface Aggregate {
  variant: Variant;
  qos: 0 | 1;
  runs: RunResult[];
  rate: Summary;
  cpuCores: Summary;
  cpuUs: Summary;
  rssMB: Summary;
  brokerCores: Summary;
  subscriberCores: Summary;
  otherCores: Summary;
  machineCores: Summary;
  feedMs: Summary;
}

function aggregate(results: RunResult[]): Aggregate[] {
  const out: Aggregate[] = [];
  for (const qos of QOS_LEVELS) {
    for (const variant of SELECTED) {
      const runs = results.filter((r) => r.variant === variant.id && r.qos === qos);
      if (runs.length === 0) continue;
      const of = (pick: (r: RunResult) => number): Summary => summarize(runs.map(pick));
      out.push({
        variant, qos, runs,
        rate: of((r) => r.updatesPerSec), cpuCores: of((r) => r.cpuCores), cpuUs: of((r) => r.cpuUsPerUpdate), rssMB: of((r) => r.rssMB),
        brokerCores: of((r) => r.brokerCores), subscriberCores: of((r) => r.subscriberCores), otherCores: of((r) => r.otherCores),
        machineCores: of((r) => r.cpuCores + r.brokerCores + r.subscriberCores + r.otherCores), feedMs: of((r) => r.feedMs),
      });
    }
  }
  return out;
}

const k = (n: number): string => `${(n / 1000).toFixed(1)}k`;
const f2 = (n: number): string => n.toFixed(2);
const f1 = (n: number): string => n.toFixed(1);
const range = (s: Summary, fmt: (n: number) => string): string => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;

function table(rows: Aggregate[], qos: 0 | 1): string {
  const mine = rows.find((r) => r.qos === qos && r.variant.id === 'A-store') ?? rows.find((r) => r.qos === qos && r.variant.id === 'A-nostore');
  const lines = [
    '| variant | metric updates/s, median (min–max) | uns-out ÷ this, throughput | Node-RED CPU, cores | CPU µs per update | this ÷ uns-out, CPU per update | RSS MB (max) | mosquitto, cores | mosquitto_sub, cores | other load, cores | machine busy, cores | feed done, ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  /** The distribution of a ratio over the runs, each run's rows paired (they ran within minutes of each other). */
  const perRun = (row: Aggregate, ratio: (ours: RunResult, theirs: RunResult) => number): string => {
    if (!mine) return '–';
    const s = summarize(row.runs.map((theirs, i) => ratio(mine.runs[i], theirs)));
    return `${f2(s.median)}× (${f2(s.min)}–${f2(s.max)})`;
  };
  for (const row of rows.filter((r) => r.qos === qos)) {
    const throughputRatio = perRun(row, (ours, theirs) => ours.updatesPerSec / theirs.updatesPerSec);
    const cpuRatio = perRun(row, (ours, theirs) => theirs.cpuUsPerUpdate / ours.cpuUsPerUpdate);
    lines.push(`| ${row.variant.id}: ${row.variant.label} | ${range(row.rate, k)} | ${throughputRatio} | ${range(row.cpuCores, f2)} | ` +
      `${range(row.cpuUs, f2)} | ${cpuRatio} | ${f1(row.rssMB.median)} | ${f2(row.brokerCores.median)} | ${f2(row.subscriberCores.median)} | ${f2(row.otherCores.median)} | ${f2(row.machineCores.median)} | ${Math.round(row.feedMs.median)} |`);
  }
  return lines.join('\n');
}

function report(rows: Aggregate[], facts: MachineFacts, nodeRedVersion: string, command: string, totalSec: number): string {
  const date = new Date().toISOString().slice(0, 10);
  const paced = QOS0_RATE > 0 ? `, fed at a steady ${k(QOS0_RATE)} metric updates/s (${f1(QOS0_RATE / METRICS)} batches/s, due batches every ${PACE_TICK_MS} ms)` : ', fed as fast as possible (a burst)';
  const sections = QOS_LEVELS.map((qos) => `### QoS ${qos}${qos === 1 ? ' (headline)' : paced}\n\n${table(rows, qos)}`);
  return `## UNS publish: uns-out vs core mqtt out

${RUNS} runs × ${BATCHES.toLocaleString('en-US')} tag batches × ${METRICS} metrics = ${(BATCHES * METRICS).toLocaleString('en-US')} metric updates per run and variant,
${ASSETS} assets (${(ASSETS * METRICS).toLocaleString('en-US')} retained topics), retain true, MQTT 3.1.1, one embedded Node-RED ${nodeRedVersion} runtime holding every
variant, one Mosquitto ${facts.mosquitto} broker. Medians with (min–max); variant order rotated every run; one warm-up run
of ${WARMUP_BATCHES} batches per variant and QoS before measuring. Whole benchmark: ${Math.round(totalSec)} s.

- **A** \`uns-out\` fed tag batches (deadband off, format metric), through \`uns-broker\` with store-and-forward on
  (its default) and off.
- **B** core \`mqtt out\` fed the batches **pre-split** into per-metric messages with the same topics and the same
  JSON payload strings: the cheapest case for the peer (the split costs nothing here).
- **C** what an integrator builds with core nodes: a \`function\` node that splits the batch into per-metric
  messages (\`return [out]\`) wired to \`mqtt out\`.

"uns-out ÷ this" is the throughput of A-store over the row's; "this ÷ uns-out" is the row's Node-RED CPU
per metric update over A-store's (above 1: the row costs more CPU per update); both as the median (min–max)
of the per-run ratios. QoS 1 is fed as fast as possible (its acknowledgements pace it); QoS 0 at a steady
offered rate, since an unpaced QoS 0 burst mostly measures how a client survives a socket backlog of tens of
thousands of packets (bimodal: 1.2×–19× between runs for core \`mqtt out\`), not operation. CPU and RSS are of the one
Node-RED process that holds every variant (and the benchmark driver, which only calls \`receive()\` on
prepared messages; RSS includes those prepared inputs, 100k message objects for B, so it compares
poorly between rows); mosquitto and mosquitto_sub CPU are read from /proc and bash \`times\`; "other
load" is everything else the machine ran meanwhile (/proc/stat), "machine busy" the sum: at ${facts.nproc}.00
the machine was saturated and the run measured the shared CPUs as much as the code.

${sections.join('\n\n')}

**Command**: \`${command}\` (${date})

**Machine**: ${facts.nproc} vCPU ${facts.cpuModel}, ${facts.kernel}, Node ${facts.node}, Node-RED ${nodeRedVersion},
Mosquitto ${facts.mosquitto}; uns-edge's MQTT.js ${mqttVersion('mqtt')}, Node-RED core's MQTT.js ${mqttVersion('@node-red/nodes/node_modules/mqtt')}.
The Node-RED process, the broker and the subscriber share the ${facts.nproc} cores and nothing is pinned, so the
machine is noisy: compare the ratios within one run, not absolute figures across machines.
`;
}

function mqttVersion(module: string): string {
  try {
    return (require(`${module}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const began = performance.now();
  const facts = machineFacts();
  const broker = await startMosquitto();
  let red: EmbeddedNodeRed | undefined;
  let client: MqttClient | undefined;
  try {
    const brokerPid = findPid(`${broker.dir}/mosquitto.conf`);
    if (brokerPid === undefined) throw new Error('cannot find the mosquitto process');
    red = await startNodeRed(benchFlow(broker.port));
    const runtime = red;
    for (const variant of SELECTED) await waitFor(`${variant.id} connected`, () => variant.connected(runtime));
    client = connect({ host: '127.0.0.1', port: broker.port, clientId: `bench-control-${process.pid}`, reconnectPeriod: 0 });
    await new Promise((resolve, reject) => { client!.once('connect', resolve); client!.once('error', reject); });
    const bench = new Bench(red, broker, brokerPid, client);

    console.log(`Node-RED ${red.version}, Mosquitto ${facts.mosquitto} on port ${broker.port}; ${gc ? 'gc between runs' : 'no --expose-gc: no gc between runs'}`);
    for (const qos of QOS_LEVELS) {
      for (const variant of SELECTED) await bench.run(variant, qos, WARMUP_BATCHES, 'warm');
    }
    const results: RunResult[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const qos of QOS_LEVELS) {
        const order = SELECTED.map((_, i) => SELECTED[(i + run) % SELECTED.length]);
        for (const variant of order) {
          const result = await bench.run(variant, qos, BATCHES, 'r');
          results.push(result);
          console.log(`run ${run + 1} QoS ${qos} ${variant.id.padEnd(9)} ${k(result.updatesPerSec).padStart(7)} updates/s  ` +
            `cpu ${f2(result.cpuCores)} cores (${f2(result.cpuUsPerUpdate)} µs/update)  rss ${f1(result.rssMB)} MB  ` +
            `mosquitto ${f2(result.brokerCores)}  sub ${f2(result.subscriberCores)}  other ${f2(result.otherCores)}  feed ${Math.round(result.feedMs)} ms  wall ${Math.round(result.wallMs)} ms`);
        }
      }
    }
    const rows = aggregate(results);
    const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
    const markdown = report(rows, facts, red.version, command, (performance.now() - began) / 1000);
    console.log('\n' + markdown);
    if (args.write) {
      writeSection('uns-out-throughput', markdown);
      console.log('written to docs/benchmarks.md');
    }
  } finally {
    client?.end(true);
    await red?.stop();
    await broker.dispose();
  }
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
