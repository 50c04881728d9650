/**
 * Issue 3 churn run: uns-edge's Modbus link and read nodes against a device that drops the TCP
 * connection every few requests (with a request in flight) and a unit that dies and comes back,
 * for 10 minutes by default. Every 10 s (after a forced GC) it samples RSS and heap, and counts
 * what each read node delivered; at the end it says whether RSS stayed flat.
 *
 * The simulated plant runs in its own process (bench/lib/modbus-plant-process.ts), so RSS and heap
 * are those of the Node-RED process holding the nodes only.
 *
 *   node --expose-gc --import tsx bench/modbus-churn.ts [--seconds 600] [--units 4] [--interval 50]
 *        [--drop-every 7] [--dead-unit 3] [--dead-every 60] [--dead-for 20] [--write]
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startPlantProcess } from './lib/modbus-plant-process';
import { contribClient, contribRead, contribValues, DRIVE_TYPED_METRICS, plausibleDcBus, SendCounter, unsLink, unsRead } from './lib/modbus-flow';
import { startNodeRed, waitFor, type EmbeddedNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { machineFacts, summarize } from './lib/stats';
import type { ModbusClient } from '../lib/modbus/client';
import type { TagBatch } from '../lib/uns/tag-batch';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    sample: { type: 'string', default: '10' },
    units: { type: 'string', default: '4' },
    interval: { type: 'string', default: '50' },
    'drop-every': { type: 'string', default: '7' },
    'dead-unit': { type: 'string', default: '3' },
    'dead-every': { type: 'string', default: '60' },
    'dead-for': { type: 'string', default: '20' },
    'warmup': { type: 'string', default: '60' },
    /** uns (uns-edge's nodes) or contrib (node-red-contrib-modbus, for comparison). */
    peer: { type: 'string', default: 'uns' },
    /** Rebuild the report from the console output of an earlier run (same options) instead of running. */
    replay: { type: 'string' },
    write: { type: 'boolean', default: false },
  },
});
const num = (name: keyof typeof args): number => {
  const value = Number(args[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number ≥ 0`);
  return value;
};
const SECONDS = num('seconds');
const SAMPLE_S = num('sample');
const UNITS = num('units');
const INTERVAL_MS = num('interval');
const DROP_EVERY = num('drop-every');
const DEAD_UNIT = num('dead-unit');
const DEAD_EVERY_S = num('dead-every');
const DEAD_FOR_S = num('dead-for');
const WARMUP_S = num('warmup');
const gc = (globalThis as { gc?: () => void }).gc;

/** What the churn needs of a peer: its flow (read nodes `read<unit>`), a good-message test and its link's counters. */
interface ChurnPeer {
  label: string;
  flow(tab: string, port: number): object[];
  isGood(msg: unknown): boolean;
  link(red: EmbeddedNodeRed): { connects(): number; timeouts(): number; queueDepth(): number };
}
const unitIds = (): number[] => Array.from({ length: UNITS }, (_, i) => i + 1);
const PEERS: Record<string, ChurnPeer> = {
  uns: {
    label: `${UNITS} \`uns-modbus-read\` nodes (units 1..${UNITS}, ${DRIVE_TYPED_METRICS.length} typed metrics from input registers 0..15 each, one
request per poll) at ${INTERVAL_MS} ms on one \`uns-modbus-link\` (timeout 200 ms, reconnect from 100 ms)`,
    flow: (tab, port) => [unsLink({ id: 'link', port, timeoutMs: 200, reconnectMs: 100 }),
      ...unitIds().map((unit) => unsRead(`read${unit}`, tab, 'link', unit, INTERVAL_MS, DRIVE_TYPED_METRICS, 40 * unit))],
    isGood(msg) {
      const batch = msg as TagBatch;
      return Object.values(batch.meta ?? {}).every((m) => m.quality === 'good') && plausibleDcBus(Number(batch.payload.dcBusVoltage));
    },
    link(red) {
      const node = red.node<{ client: ModbusClient | undefined }>('link');
      return { connects: () => node.client?.stats.connects ?? NaN, timeouts: () => node.client?.stats.timeouts ?? NaN, queueDepth: () => node.client?.queueDepth ?? NaN };
    },
  },
  contrib: {
    label: `${UNITS} node-red-contrib-modbus \`modbus-read\` nodes (units 1..${UNITS}, FC4 × 16 registers) at ${INTERVAL_MS} ms on one
\`modbus-client\` (timeout 200 ms, reconnect 100 ms; failed reads send nothing, so only good messages are counted)`,
    flow: (tab, port) => [contribClient('link', port, { clientTimeout: '200', reconnectTimeout: '100' }),
      ...unitIds().map((unit) => contribRead(`read${unit}`, tab, 'link', unit, INTERVAL_MS, 40 * unit))],
    isGood(msg) {
      const values = contribValues(msg);
      return Array.isArray(values) && values.length === 16 && plausibleDcBus(Number(values[6]) / 10);
    },
    link(red) {
      const node = red.node<{ bufferCommandList: Map<number, unknown[]> }>('link');
      return {
        connects: () => NaN, timeouts: () => NaN,
        queueDepth: () => [...node.bufferCommandList.values()].reduce((sum, list) => sum + list.length, 0),
      };
    },
  },
};
const PEER = PEERS[args.peer];
const CONTROL = DROP_EVERY === 0 && DEAD_EVERY_S === 0;
if (!PEER) throw new Error(`--peer must be one of ${Object.keys(PEERS).join(', ')}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sample {
  t: number;
  rssMB: number;
  heapMB: number;
  /** V8 heap reserved (used + free): growth here with a flat heapUsed is the allocator, not live objects. */
  heapTotalMB: number;
  externalMB: number;
  /** Good batches per unit in the sample window. */
  good: number[];
  bad: number[];
  deadUnitSilent: boolean;
  connects: number;
  timeouts: number;
  queueDepth: number;
  drops: number;
}

const MB = 1048576;

function slopePerMinute(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return (sxy / sxx) * 60;
}

async function main(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc (heap is sampled after a forced GC)');
  const plant = await startPlantProcess({ drives: UNITS, dropEvery: DROP_EVERY });
  let red: EmbeddedNodeRed | undefined;
  try {
    const tab = 'churn';
    red = await startNodeRed([{ id: tab, type: 'tab', label: 'modbus churn' }, ...PEER.flow(tab, plant.port)]);
    const runtime = red;
    const good = new Array<number>(UNITS).fill(0);
    const bad = new Array<number>(UNITS).fill(0);
    for (let unit = 1; unit <= UNITS; unit++) {
      new SendCounter(runtime, `read${unit}`, (msg) => {
        if (PEER.isGood(msg)) good[unit - 1]++;
        else bad[unit - 1]++;
      });
    }
    const link = PEER.link(runtime);
    await waitFor('the first message of every unit', () => good.every((n) => n > 0), 30000);
    console.log(`churn: ${UNITS} units at ${INTERVAL_MS} ms, connection dropped every ${DROP_EVERY} reads, unit ${DEAD_UNIT} silent ${DEAD_FOR_S} s of every ${DEAD_EVERY_S} s, ${SECONDS} s`);

    const samples: Sample[] = [];
    const start = performance.now();
    let silent = false;
    const deadCycle = setInterval(() => {
      const t = (performance.now() - start) / 1000;
      const shouldBeSilent = DEAD_EVERY_S > 0 && t % DEAD_EVERY_S >= DEAD_EVERY_S - DEAD_FOR_S;
      if (shouldBeSilent !== silent) {
        silent = shouldBeSilent;
        plant.command(`${silent ? 'silence' : 'revive'} ${DEAD_UNIT}`);
      }
    }, 250);
    let windowSilent = false;
    const silentTracker = setInterval(() => { if (silent) windowSilent = true; }, 250);
    try {
      for (let next = SAMPLE_S; next <= SECONDS + 1e-9; next += SAMPLE_S) {
        await sleep(start + next * 1000 - performance.now());
        gc();
        const memory = process.memoryUsage();
        const { drops } = await plant.stats();
        const sample: Sample = {
          t: Math.round((performance.now() - start) / 1000),
          rssMB: memory.rss / MB, heapMB: memory.heapUsed / MB, heapTotalMB: memory.heapTotal / MB, externalMB: memory.external / MB,
          good: good.splice(0, UNITS, ...new Array<number>(UNITS).fill(0)),
          bad: bad.splice(0, UNITS, ...new Array<number>(UNITS).fill(0)),
          deadUnitSilent: windowSilent,
          connects: link.connects(), timeouts: link.timeouts(), queueDepth: link.queueDepth(), drops,
        };
        windowSilent = silent; // the next window starts with the unit as it is now
        samples.push(sample);
        console.log(`t=${String(sample.t).padStart(4)} s  rss ${sample.rssMB.toFixed(1)} MB  heap ${sample.heapMB.toFixed(2)}/${sample.heapTotalMB.toFixed(1)} MB  ext ${sample.externalMB.toFixed(2)} MB  ` +
          `good/bad per unit ${sample.good.map((g, i) => `${g}/${sample.bad[i]}`).join(' ')}  unit ${DEAD_UNIT} ${sample.deadUnitSilent ? 'dead' : 'alive'}  ` +
          `connects ${sample.connects}  drops ${sample.drops}  timeouts ${sample.timeouts}  queue ${sample.queueDepth}`);
      }
    } finally {
      clearInterval(deadCycle);
      clearInterval(silentTracker);
    }
    writeReport(report(samples));
  } finally {
    await red?.stop();
    await plant.close();
  }
}

function report(samples: Sample[]): string {
  const after = samples.filter((s) => s.t > WARMUP_S);
  const steady = after.length >= 2 ? after : samples;
  const first = steady[0];
  const last = steady[steady.length - 1];
  const rssValues = steady.map((s) => s.rssMB);
  const rssSlope = slopePerMinute(steady.map((s) => [s.t, s.rssMB]));
  const heapSlope = slopePerMinute(steady.map((s) => [s.t, s.heapMB]));
  // Medians of the first and last third after warm-up: one early sample before the allocator gives
  // memory back (or one late spike) must not decide the verdict.
  const third = Math.max(1, Math.floor(steady.length / 3));
  const early = summarize(steady.slice(0, third).map((s) => s.rssMB)).median;
  const late = summarize(steady.slice(-third).map((s) => s.rssMB)).median;
  const drift = (late - early) / early;
  const flat = Math.abs(drift) <= 0.05;
  const liveUnits = Array.from({ length: UNITS }, (_, i) => i + 1).filter((u) => u !== DEAD_UNIT);
  const livePerSecond = (rows: Sample[]): number =>
    rows.length === 0 ? NaN : rows.reduce((s, r) => s + liveUnits.reduce((a, u) => a + r.good[u - 1], 0), 0) / (rows.length * SAMPLE_S * liveUnits.length);
  const deadRows = samples.filter((s) => s.deadUnitSilent);
  const aliveRows = samples.filter((s) => !s.deadUnitSilent);
  const totalGood = samples.reduce((s, r) => s + r.good.reduce((a, b) => a + b, 0), 0);
  const totalBad = samples.reduce((s, r) => s + r.bad.reduce((a, b) => a + b, 0), 0);
  const lastSample = samples[samples.length - 1];
  const facts = machineFacts();
  const seconds = lastSample.t;
  const table = ['| t, s | RSS MB | heap used MB (after GC) | heap total MB | external MB | good batches/s, live units (each) | unit ' + DEAD_UNIT + ' | connects so far | drops so far | timeouts so far | queue depth |',
    '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const s of samples) {
    table.push(`| ${s.t} | ${s.rssMB.toFixed(1)} | ${s.heapMB.toFixed(2)} | ${s.heapTotalMB.toFixed(1)} | ${s.externalMB.toFixed(2)} | ${(liveUnits.reduce((a, u) => a + s.good[u - 1], 0) / (SAMPLE_S * liveUnits.length)).toFixed(1)} | ` +
      `${s.deadUnitSilent ? 'dead (part of the window)' : 'alive'} | ${s.connects} | ${s.drops} | ${s.timeouts} | ${s.queueDepth} |`);
  }
  const who = args.peer === 'uns' ? 'uns-modbus-link' : 'node-red-contrib-modbus (comparison)';
  const title = CONTROL ? `Modbus churn, control: ${who}, the same polling without faults` : `Modbus churn: ${who} under connection drops and a dying unit`;
  return `## ${title}

**Ran ${seconds} s** (the script's default is 600 s): ${PEER.label}, against the simulated plant in its own process, which ${DROP_EVERY > 0 ? `**drops every connection on every ${DROP_EVERY}th read
request, before answering it**` : '**never drops the connection** (control run)'}, and ${DEAD_EVERY_S > 0 ? `makes **unit ${DEAD_UNIT} silent for ${DEAD_FOR_S} s of every ${DEAD_EVERY_S} s** (comms loss: no answer at
all)` : 'keeps every unit answering'}. RSS and heap are of the Node-RED process only, sampled every ${SAMPLE_S} s after a forced GC.

- **RSS ${flat ? 'flat' : 'NOT flat'}** after ${WARMUP_S} s of warm-up: median ${early.toFixed(1)} MB over the first third of the samples
  (${first.t}–${steady[third - 1].t} s) → ${late.toFixed(1)} MB over the last third (${steady[steady.length - third].t}–${last.t} s): ${(drift * 100).toFixed(1)} %
  (min ${Math.min(...rssValues).toFixed(1)}, max ${Math.max(...rssValues).toFixed(1)} MB; least-squares slope ${rssSlope.toFixed(3)} MB/min).
  Criterion: drift within ±5 % (performance.md P9 asks this after 1 h of warm-up; this run is far shorter).
- Heap used after GC: ${first.heapMB.toFixed(2)} → ${last.heapMB.toFixed(2)} MB (slope ${(heapSlope * 1024).toFixed(1)} KB/min); V8 heap
  reserved: ${first.heapTotalMB.toFixed(1)} → ${last.heapTotalMB.toFixed(1)} MB.
- ${lastSample.drops.toLocaleString('en-US')} connection drops, ${lastSample.connects.toLocaleString('en-US')} connects, ${lastSample.timeouts.toLocaleString('en-US')} timeouts;
  ${totalGood.toLocaleString('en-US')} good and ${totalBad.toLocaleString('en-US')} bad-quality batches (a batch whose read was lost to a drop or
  a silent unit carries quality bad with the reason, never zeros). Queue depth at the end: ${lastSample.queueDepth}.
- Live units' good batches per second each: ${livePerSecond(aliveRows).toFixed(1)} in windows where unit ${DEAD_UNIT} answered,
  ${livePerSecond(deadRows).toFixed(1)} in windows where it was dead (the poll period alone would give ${(1000 / INTERVAL_MS).toFixed(0)}/s; drops
  cost the rest).

${table.join('\n')}

**Command**: \`node --expose-gc --import tsx bench/modbus-churn.ts ${runArguments()}\` (${new Date().toISOString().slice(0, 10)}),
${facts.nproc} vCPU ${facts.cpuModel}, Node ${facts.node}; other engineers' tests ran on the same 2 cores meanwhile.
`;
}

/** The command-line arguments of the run (a replay's own --replay left out). */
function runArguments(): string {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--replay');
  if (at >= 0) argv.splice(at, 2);
  return argv.join(' ');
}

/** The samples of an earlier run's console output (its "t= … s" lines). */
function replay(file: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^t=\s*(\d+) s\s+rss ([\d.]+) MB\s+heap ([\d.]+)\/([\d.]+) MB\s+ext ([\d.]+) MB\s+good\/bad per unit ((?:\d+\/\d+ ?)+)\s+unit \d+ (dead|alive)\s+connects (\S+)\s+drops (\d+)\s+timeouts (\S+)\s+queue (\S+)/.exec(line);
    if (!m) continue;
    const pairs = m[6].trim().split(' ').map((pair) => pair.split('/').map(Number));
    samples.push({
      t: Number(m[1]), rssMB: Number(m[2]), heapMB: Number(m[3]), heapTotalMB: Number(m[4]), externalMB: Number(m[5]),
      good: pairs.map(([g]) => g), bad: pairs.map(([, b]) => b), deadUnitSilent: m[7] === 'dead',
      connects: Number(m[8]), drops: Number(m[9]), timeouts: Number(m[10]), queueDepth: Number(m[11]),
    });
  }
  if (samples.length === 0) throw new Error(`no samples in ${file}`);
  return samples;
}

function writeReport(markdown: string): void {
  console.log('\n' + markdown);
  if (args.write) {
    // The peer's run and a control run (no drops, no dead unit) keep their own sections beside the churn run's.
    writeSection(`modbus-churn${args.peer === 'uns' ? '' : `-${args.peer}`}${CONTROL ? '-control' : ''}`, markdown);
    console.log('written to docs/benchmarks.md');
  }
}

(args.replay ? Promise.resolve().then(() => writeReport(report(replay(args.replay!)))) : main()).then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
