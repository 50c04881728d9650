/**
 * Issue 3 benchmark: uns-edge's Modbus nodes vs node-red-contrib-modbus, side by side in one
 * embedded Node-RED runtime, against the same simulated plant (sim/, 100 drives, unit ids 1..100
 * on one port) running in its own process.
 *
 * Cases (each variant gets the runtime alone: its flow is deployed, measured, then replaced):
 *   one-10ms   one link, one drive, 16 input registers every 10 ms
 *   one-1ms    the same every 1 ms: as fast as each peer goes
 *   d100-1s    one link, 100 drives (100 read nodes, units 1..100), 16 registers each every 1 s
 *   d100-100ms the same every 100 ms
 * Variants:
 *   A-raw    uns-modbus-read, the 16 registers as 16 uint16 metrics (what the peer delivers)
 *   A-typed  uns-modbus-read, the drive's 12 typed metrics (int16/float32/uint32 CDAB, scaled) from the same 16 registers
 *   B        node-red-contrib-modbus modbus-read (FC4, 16 registers) on a modbus-client with its defaults
 *
 * Counted at each read node's send() (a hook, no wire); every delivered message is checked (16
 * values, the drive's DC bus voltage plausible, quality good) so a broken variant cannot look fast.
 * Request latency: from the request being handed to the client (uns: ModbusClient.submit; contrib:
 * the client node's 'readModbus' event) to its callback, queueing included. Method: bench/README.md.
 *
 *   node --expose-gc --import tsx bench/modbus-throughput.ts [--runs 5] [--cases one-10ms,one-1ms,d100-1s,d100-100ms]
 *        [--variants A-raw,A-typed,B] [--window 10] [--write] [--cpu-prof-dir DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ModbusClient } from '../lib/modbus/client';
import type { TagBatch } from '../lib/uns/tag-batch';
import { startPlantProcess, type PlantProcess } from './lib/modbus-plant-process';
import { contribClient, contribRead, contribValues, DRIVE_RAW_METRICS, DRIVE_TYPED_METRICS, plausibleDcBus, SendCounter, unsLink, unsRead } from './lib/modbus-flow';
import { startNodeRed, waitFor, type EmbeddedNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { machineBusySeconds, machineFacts, processCpuSeconds, summarize, type Summary } from './lib/stats';

// ---------------------------------------------------------------- options

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    cases: { type: 'string', default: 'one-10ms,one-1ms,d100-1s,d100-100ms' },
    variants: { type: 'string', default: 'A-raw,A-typed,B' },
    /** Seconds measured per variant and case (the 1 s case gets twice this). */
    window: { type: 'string', default: '10' },
    settle: { type: 'string', default: '1.5' },
    write: { type: 'boolean', default: false },
    'cpu-prof-dir': { type: 'string' },
  },
});
const RUNS = Number(args.runs);
const WINDOW_S = Number(args.window);
const SETTLE_S = Number(args.settle);
if (!(RUNS >= 1 && WINDOW_S > 0 && SETTLE_S >= 0)) throw new Error('--runs ≥ 1, --window > 0, --settle ≥ 0');

interface BenchCase {
  id: string;
  label: string;
  units: number;
  intervalMs: number;
  windowS: number;
}
const CASES: BenchCase[] = [
  { id: 'one-10ms', label: 'one link, one drive, 10 ms poll', units: 1, intervalMs: 10, windowS: WINDOW_S },
  { id: 'one-1ms', label: 'one link, one drive, 1 ms poll (as fast as it goes)', units: 1, intervalMs: 1, windowS: WINDOW_S },
  { id: 'd100-1s', label: 'one link, 100 drives, 1 s poll', units: 100, intervalMs: 1000, windowS: 2 * WINDOW_S },
  { id: 'd100-100ms', label: 'one link, 100 drives, 100 ms poll', units: 100, intervalMs: 100, windowS: WINDOW_S },
];
const SELECTED_CASES = args.cases.split(',').map((id) => {
  const found = CASES.find((c) => c.id === id.trim());
  if (!found) throw new Error(`unknown case "${id}" (known: ${CASES.map((c) => c.id).join(', ')})`);
  return found;
});

// ---------------------------------------------------------------- variants

/** What a variant exposes while it runs: request latency, errors and queue depth. */
interface Probe {
  /** Requests handed to the client while recording. */
  issued: number;
  latenciesMs: number[];
  errors: number;
  recording: boolean;
  queueDepth(): number;
}

interface Variant {
  id: string;
  peer: 'uns-edge' | 'node-red-contrib-modbus';
  label: string;
  flow(port: number, c: BenchCase): object[];
  readId(unit: number): string;
  /** Hook the client once the flow runs. */
  probe(red: EmbeddedNodeRed): Probe;
  /** Problem with a delivered message, or undefined. */
  check(msg: unknown): string | undefined;
}

const TAB = 'bench-modbus';
const tab = (): object => ({ id: TAB, type: 'tab', label: 'modbus bench' });
const units = (c: BenchCase): number[] => Array.from({ length: c.units }, (_, i) => i + 1);

function unsVariant(id: string, label: string, metrics: readonly object[], check: (batch: TagBatch) => string | undefined): Variant {
  return {
    id, peer: 'uns-edge', label,
    flow: (port, c) => [tab(), unsLink({ id: 'uns-link', port, timeoutMs: 1000, reconnectMs: 1000 }),
      ...units(c).map((unit) => unsRead(`uns-read-${unit}`, TAB, 'uns-link', unit, c.intervalMs, metrics, 20 * unit))],
    readId: (unit) => `uns-read-${unit}`,
    probe(red) {
      const client = red.node<{ client: ModbusClient | undefined }>('uns-link').client;
      if (!client) throw new Error('uns-link has no client');
      const probe: Probe = { issued: 0, latenciesMs: [], errors: 0, recording: false, queueDepth: () => client.queueDepth };
      const submit = client.submit.bind(client);
      client.submit = (unit, request, callback) => {
        const start = performance.now();
        if (probe.recording) probe.issued++;
        submit(unit, request, (error, response) => {
          if (probe.recording) {
            probe.latenciesMs.push(performance.now() - start);
            if (error) probe.errors++;
          }
          callback(error, response);
        });
      };
      return probe;
    },
    check(msg) {
      const batch = msg as TagBatch;
      const bad = Object.entries(batch.meta ?? {}).find(([, m]) => m.quality !== 'good');
      if (bad) return `${bad[0]} quality ${bad[1].quality}: ${bad[1].reason ?? ''}`;
      return check(batch);
    },
  };
}

const VARIANTS: Variant[] = [
  unsVariant('A-raw', 'uns-modbus-read, 16 × uint16', DRIVE_RAW_METRICS, (batch) => {
    const values = Object.values(batch.payload);
    if (values.length !== 16) return `${values.length} values`;
    return plausibleDcBus(Number(batch.payload.ir06) / 10) ? undefined : `ir06 = ${String(batch.payload.ir06)}`;
  }),
  unsVariant('A-typed', 'uns-modbus-read, 12 typed + scaled metrics', DRIVE_TYPED_METRICS, (batch) => {
    if (Object.keys(batch.payload).length !== DRIVE_TYPED_METRICS.length) return `${Object.keys(batch.payload).length} values`;
    return plausibleDcBus(Number(batch.payload.dcBusVoltage)) ? undefined : `dcBusVoltage = ${String(batch.payload.dcBusVoltage)}`;
  }),
  {
    id: 'B', peer: 'node-red-contrib-modbus', label: 'contrib modbus-read (FC4 × 16) + modbus-client, defaults',
    flow: (port, c) => [tab(), contribClient('contrib-client', port),
      ...units(c).map((unit) => contribRead(`contrib-read-${unit}`, TAB, 'contrib-client', unit, c.intervalMs, 20 * unit))],
    readId: (unit) => `contrib-read-${unit}`,
    probe(red) {
      const node = red.node<{ emit(event: string, ...rest: unknown[]): boolean; bufferCommandList: Map<number, unknown[]> }>('contrib-client');
      const probe: Probe = {
        issued: 0, latenciesMs: [], errors: 0, recording: false,
        queueDepth: () => {
          let depth = 0;
          for (const list of node.bufferCommandList.values()) depth += list.length;
          return depth;
        },
      };
      const emit = node.emit.bind(node);
      node.emit = (event: string, ...rest: unknown[]) => {
        if (event !== 'readModbus') return emit(event, ...rest);
        const [msg, onDone, onError] = rest as [unknown, (...a: unknown[]) => void, (...a: unknown[]) => void];
        const start = performance.now();
        if (probe.recording) probe.issued++;
        const record = (failed: boolean) => {
          if (!probe.recording) return;
          probe.latenciesMs.push(performance.now() - start);
          if (failed) probe.errors++;
        };
        return emit(event, msg, (...a: unknown[]) => { record(false); onDone(...a); }, (...a: unknown[]) => { record(true); onError(...a); });
      };
      return probe;
    },
    check(msg) {
      const values = contribValues(msg);
      if (!Array.isArray(values) || values.length !== 16) return `payload ${JSON.stringify(values)}`;
      return plausibleDcBus(Number(values[6]) / 10) ? undefined : `register 6 = ${String(values[6])}`;
    },
  },
];
const SELECTED = args.variants.split(',').map((id) => {
  const found = VARIANTS.find((v) => v.id === id.trim());
  if (!found) throw new Error(`unknown variant "${id}" (known: ${VARIANTS.map((v) => v.id).join(', ')})`);
  return found;
});
const REGISTERS_PER_POLL = 16;

// ---------------------------------------------------------------- one measured window

interface RunResult {
  caseId: string;
  variant: string;
  pollsPerSec: number;
  registersPerSec: number;
  /** Achieved polls per second of the slowest and the fastest drive. */
  minDriveRate: number;
  maxDriveRate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  issuedPerSec: number;
  cpuCores: number;
  cpuUsPerPoll: number;
  rssMB: number;
  heapMB: number;
  maxQueue: number;
  endQueue: number;
  plantCores: number;
  otherCores: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface NodeRedInternals {
  nodes: { setFlows(flow: object[], credentials: null, type: 'full'): Promise<unknown> };
}

class Bench {
  private readonly session = args['cpu-prof-dir'] ? new Session() : undefined;

  constructor(private readonly red: EmbeddedNodeRed, private readonly plant: PlantProcess) {
    if (this.session) {
      mkdirSync(args['cpu-prof-dir']!, { recursive: true });
      this.session.connect();
    }
  }

  /** CPU of the runtime with an empty flow over a window: the floor under every variant's CPU figure. */
  async idleCores(windowS: number): Promise<number> {
    const RED = require('node-red') as NodeRedInternals;
    await RED.nodes.setFlows([tab()], null, 'full');
    await sleep(SETTLE_S * 1000);
    gc?.();
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    await sleep(windowS * 1000);
    const cpu = process.cpuUsage(cpuStart);
    return (cpu.user + cpu.system) / 1e6 / ((performance.now() - start) / 1000);
  }

  async run(c: BenchCase, variant: Variant, label: string): Promise<RunResult> {
    const RED = require('node-red') as NodeRedInternals;
    await RED.nodes.setFlows(variant.flow(this.plant.port, c), null, 'full');
    const exists = (id: string): boolean => {
      try {
        return this.red.node(id) !== undefined;
      } catch {
        return false;
      }
    };
    await waitFor(`${variant.id} ${c.id}: the flow started`, () => units(c).every((unit) => exists(variant.readId(unit))));
    const counters = units(c).map((unit) => new SendCounter(this.red, variant.readId(unit)));
    const problems: string[] = [];
    let checked = 0;
    for (const [i, counter] of counters.entries()) {
      counter.onMessage = (msg) => {
        checked++;
        const problem = variant.check(msg);
        if (problem !== undefined && problems.length < 5) problems.push(`unit ${i + 1}: ${problem}`);
      };
    }
    // Every drive has delivered once: connected and polling.
    await waitFor(`${variant.id} ${c.id}: a message from every drive`, () => counters.every((k) => k.count > 0), 30000);
    const probe = variant.probe(this.red);
    await sleep(SETTLE_S * 1000);
    gc?.();

    const profiling = this.session !== undefined && label !== 'warm';
    if (profiling) {
      await this.session!.post('Profiler.enable');
      await this.session!.post('Profiler.start');
    }
    for (const k of counters) k.count = 0;
    checked = 0;
    let rss = process.memoryUsage.rss();
    let maxQueue = probe.queueDepth();
    const sampler = setInterval(() => {
      rss = Math.max(rss, process.memoryUsage.rss());
      maxQueue = Math.max(maxQueue, probe.queueDepth());
    }, 100);
    probe.recording = true;
    const plantStart = processCpuSeconds(this.plant.pid);
    const machineStart = machineBusySeconds();
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    await sleep(c.windowS * 1000);
    const delivered = counters.map((k) => k.count);
    const cpu = process.cpuUsage(cpuStart);
    const elapsedS = (performance.now() - start) / 1000;
    const plantCpu = processCpuSeconds(this.plant.pid) - plantStart;
    const machineBusy = machineBusySeconds() - machineStart;
    probe.recording = false;
    clearInterval(sampler);
    const endQueue = probe.queueDepth();
    maxQueue = Math.max(maxQueue, endQueue);
    if (profiling) {
      const { profile } = await this.session!.post('Profiler.stop');
      writeFileSync(join(args['cpu-prof-dir']!, `${label}-${c.id}-${variant.id}.cpuprofile`), JSON.stringify(profile));
    }
    gc?.();
    const heapMB = process.memoryUsage().heapUsed / 1048576;

    const total = delivered.reduce((a, b) => a + b, 0);
    if (total === 0) problems.push('nothing delivered in the window');
    if (problems.length > 0) throw new Error(`${variant.id} ${c.id}: ${problems.join('; ')} (${checked} messages checked)`);
    const latencies = probe.latenciesMs.sort((a, b) => a - b);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      caseId: c.id, variant: variant.id,
      pollsPerSec: total / elapsedS,
      registersPerSec: (total * REGISTERS_PER_POLL) / elapsedS,
      minDriveRate: Math.min(...delivered) / elapsedS,
      maxDriveRate: Math.max(...delivered) / elapsedS,
      p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies[latencies.length - 1] ?? NaN,
      errors: probe.errors,
      issuedPerSec: probe.issued / elapsedS,
      cpuCores: cpuSeconds / elapsedS,
      cpuUsPerPoll: (cpuSeconds * 1e6) / total,
      rssMB: rss / 1048576, heapMB, maxQueue, endQueue,
      plantCores: plantCpu / elapsedS,
      otherCores: Math.max(0, machineBusy - cpuSeconds - plantCpu) / elapsedS,
    };
  }
}

// ---------------------------------------------------------------- report

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');
const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '–');
const range = (s: Summary, fmt: (n: number) => string): string => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;

function caseTable(c: BenchCase, results: RunResult[]): string {
  const rows = SELECTED.map((v) => ({ v, runs: results.filter((r) => r.caseId === c.id && r.variant === v.id) })).filter((r) => r.runs.length > 0);
  const med = (runs: RunResult[], pick: (r: RunResult) => number): Summary => summarize(runs.map(pick));
  const peer = rows.find((r) => r.v.id === 'B');
  const lines = [
    '| variant | polls/s | registers/s | uns ÷ contrib, registers/s | per drive, slowest–fastest polls/s | latency p50 ms | p99 ms | max ms | errors | Node-RED CPU, cores | CPU µs per poll | contrib ÷ uns, CPU per poll | RSS MB (max) | heap MB after GC | queue max / end | plant, cores | other load, cores |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { v, runs } of rows) {
    const regs = med(runs, (r) => r.registersPerSec);
    const cpuPoll = med(runs, (r) => r.cpuUsPerPoll);
    const ratio = peer && v.id !== 'B' ? `${f2(regs.median / med(peer.runs, (r) => r.registersPerSec).median)}×` : '–';
    const cpuRatio = peer && v.id !== 'B' ? `${f2(med(peer.runs, (r) => r.cpuUsPerPoll).median / cpuPoll.median)}×` : '–';
    lines.push(`| ${v.id}: ${v.label} | ${range(med(runs, (r) => r.pollsPerSec), f0)} | ${range(regs, f0)} | ${ratio} | ` +
      `${f2(med(runs, (r) => r.minDriveRate).median)}–${f2(med(runs, (r) => r.maxDriveRate).median)} | ${range(med(runs, (r) => r.p50Ms), f3)} | ` +
      `${range(med(runs, (r) => r.p99Ms), f2)} | ${f1(med(runs, (r) => r.maxMs).median)} | ${f0(med(runs, (r) => r.errors).median)} | ` +
      `${range(med(runs, (r) => r.cpuCores), f3)} | ${range(cpuPoll, f1)} | ${cpuRatio} | ${f1(med(runs, (r) => r.rssMB).median)} | ` +
      `${f1(med(runs, (r) => r.heapMB).median)} | ${f0(med(runs, (r) => r.maxQueue).median)} / ${f0(med(runs, (r) => r.endQueue).median)} | ` +
      `${f3(med(runs, (r) => r.plantCores).median)} | ${f2(med(runs, (r) => r.otherCores).median)} |`);
  }
  return `### ${c.label} (\`${c.id}\`, ${c.windowS} s window)\n\n${lines.join('\n')}`;
}

function report(results: RunResult[], idle: Summary, nodeRedVersion: string, command: string, totalS: number): string {
  const facts = machineFacts();
  const contribVersion = (require('node-red-contrib-modbus/package.json') as { version: string }).version;
  const modbusSerialVersion = (require('modbus-serial/package.json') as { version: string }).version;
  return `## Modbus reads: uns-modbus-read vs node-red-contrib-modbus

${RUNS} runs; each run measures every case and variant once, variant order rotated every run, after one
warm-up run. All variants run in **one embedded Node-RED ${nodeRedVersion} runtime**: a variant's flow is deployed
alone (full deploy), it polls until every drive has delivered, settles ${SETTLE_S} s, and is then measured for the window;
the next variant replaces it. The device is the simulated plant (\`sim/\`, 100 drives, unit ids 1..100 on one
Modbus TCP port, lib/modbus/server.ts) **in its own process**, the same for both peers. Medians with (min–max).
Whole benchmark: ${Math.round(totalS)} s.

- **A-raw** \`uns-modbus-read\` on one \`uns-modbus-link\`: input registers 0..15 as 16 uint16 metrics, one FC4 request
  per poll, one tag batch per poll (the same 16 numbers the peer delivers).
- **A-typed** the same registers as the drive's 12 typed metrics (int16/uint16 scaled, float32, uint32 in ABCD and
  CDAB word order, units, quality): what a user of uns-edge configures.
- **B** node-red-contrib-modbus ${contribVersion} (modbus-serial ${modbusSerialVersion}): \`modbus-read\` (FC4, address 0, quantity 16) on a
  \`modbus-client\` with the defaults of its editor (queueing on, command delay 1 ms, timeout 1000 ms,
  parallel unit ids). One message pair per poll (values array + raw response).

Counted at each read node's \`send()\` (hooked, no wires); every delivered message is checked (16 values or the 12
metrics, the drive's DC bus voltage between 300 and 900 V, quality good for uns-edge), so a broken variant cannot look
fast. **Latency** is per request, from the request being handed to the client (uns-edge: \`ModbusClient.submit\`;
contrib: the client node's \`readModbus\` event, i.e. its queue) to the callback: queueing included. "errors" are
failed requests in the window (timeouts, …). CPU is of the Node-RED process (the clients, the nodes, the hooks) over
the window, in cores; "CPU µs per poll" = CPU ÷ delivered polls. RSS is the process maximum in the window and carries
earlier variants' heap (one process), so it compares poorly; "heap MB after GC" at the end of the window is the
better memory figure. "queue max / end" is the client's waiting requests (uns-edge: \`queueDepth\`, bounded at 1000,
reject-newest; contrib: the sum of its per-unit \`bufferCommandList\`, unbounded). "plant" is the simulator
process's CPU; "other load" the rest of the machine (/proc/stat). The runtime with an empty flow used
${range(idle, f3)} cores over the same window length: that floor is inside every CPU figure below.

${SELECTED_CASES.map((c) => caseTable(c, results)).join('\n\n')}

**Command**: \`${command}\` (${new Date().toISOString().slice(0, 10)})

**Machine**: ${facts.nproc} vCPU ${facts.cpuModel}, ${facts.kernel}, Node ${facts.node}, Node-RED ${nodeRedVersion}. The Node-RED
process, the plant process and **other engineers' tests running at the same time** share the ${facts.nproc} cores, and
nothing is pinned: absolute figures are noisy (see "other load"); the ratios within one run are the figures to trust.
`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const began = performance.now();
  const plant = await startPlantProcess({ drives: 100 });
  let red: EmbeddedNodeRed | undefined;
  try {
    red = await startNodeRed([tab()]);
    const bench = new Bench(red, plant);
    console.log(`Node-RED ${red.version}, plant pid ${plant.pid} on port ${plant.port}; ${gc ? 'gc between runs' : 'no --expose-gc'}`);
    for (const c of SELECTED_CASES) for (const v of SELECTED) await bench.run({ ...c, windowS: Math.min(c.windowS, 3) }, v, 'warm');
    const results: RunResult[] = [];
    const idle: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      idle.push(await bench.idleCores(WINDOW_S));
      console.log(`run ${run + 1} idle runtime (empty flow): ${f3(idle[idle.length - 1])} cores`);
      for (const c of SELECTED_CASES) {
        const order = SELECTED.map((_, i) => SELECTED[(i + run) % SELECTED.length]);
        for (const v of order) {
          const r = await bench.run(c, v, `r${run + 1}`);
          results.push(r);
          console.log(`run ${run + 1} ${c.id.padEnd(10)} ${v.id.padEnd(7)} ${f0(r.registersPerSec).padStart(9)} regs/s  ${f1(r.pollsPerSec).padStart(7)} polls/s ` +
            `(drive ${f2(r.minDriveRate)}–${f2(r.maxDriveRate)})  p50 ${f3(r.p50Ms)} p99 ${f2(r.p99Ms)} max ${f1(r.maxMs)} ms  err ${r.errors}  issued ${f1(r.issuedPerSec)}/s  ` +
            `cpu ${f3(r.cpuCores)} (${f1(r.cpuUsPerPoll)} µs/poll)  rss ${f1(r.rssMB)} heap ${f1(r.heapMB)} MB  queue ${r.maxQueue}/${r.endQueue}  ` +
            `plant ${f3(r.plantCores)}  other ${f2(r.otherCores)}`);
        }
      }
    }
    const command = `node --expose-gc --import tsx bench/modbus-throughput.ts ${process.argv.slice(2).join(' ')}`.trim();
    const markdown = report(results, summarize(idle), red.version, command, (performance.now() - began) / 1000);
    console.log('\n' + markdown);
    if (args.write) {
      writeSection('modbus-throughput', markdown);
      console.log('written to docs/benchmarks.md');
    }
  } finally {
    await red?.stop();
    await plant.close();
  }
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
