/**
 * bench/fast-poll (issue 5): a 1 ms Modbus poll against the simulated drive (its own process,
 * pinned to CPU0) while this process's main thread is hostile — blocked 50 ms every 100 ms and
 * allocating ~50 MB/s. Side by side in one run, each contender for --seconds (default 60):
 *   native-rt   the addon, poll thread asking for SCHED_FIFO 80 on CPU1 (reports what it got)
 *   native      the addon, no real-time settings
 *   fallback    the TypeScript worker_thread fallback
 *   setInterval setInterval(1) on the main thread with lib/modbus's client
 *   modbus-serial setInterval(1) on the main thread with modbus-serial 8.0.25 (ModbusRTU.connectTCP), the usual hand-written poll
 *   contrib     node-red-contrib-modbus 5.23.3 modbus-read at 1 ms in an embedded Node-RED (needs `npm run build`)
 * Then the trip latency (--trips, default 10): setpoint written above the limit (crossing at the
 * drive = the write's acknowledgement) → trip write acknowledged, for the native rule and for the
 * same rule in JS on the main thread (setInterval 1 ms), both with the main thread hostile.
 *
 *   npx tsx bench/fast-poll.ts [--seconds 60] [--trips 10] [--only native-rt,native,fallback,setInterval,modbus-serial,contrib] [--sim-cpu 0|1] [--spin-us N] [--write]
 * --write replaces the fast-poll section of docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createModbusTcpClient, ModbusClient } from '../lib/modbus/client';
import { registerAt } from '../lib/modbus/pdu';
import ModbusRTU from 'modbus-serial';
import {
  CHANGE_RECORD_LENGTH, FallbackPoller, loadNative, PollerEvent, PollerFactory, PollerOptions, RawPollerStats, summarize, LatencySummary,
} from '../lib/fastpoll';
import { LatencyHistogram } from '../lib/fastpoll/histogram';
import { startPlantProcess, PlantProcess } from './lib/modbus-plant-process';
import { machineFacts, processCpuSeconds } from './lib/stats';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const SECONDS = Number(option('seconds', '60'));
const TRIPS = Number(option('trips', '10'));
const ONLY = option('only', '').split(',').filter(Boolean);
const WRITE = args.includes('--write');
/** CPU of the simulated drive: 0 (with the hostile main thread) or 1 (beside the RT poll thread, which preempts it). */
const SIM_CPU = option('sim-cpu', '0');
/** realtime.spinUs of the RT native contender. */
const SPIN_US = Number(option('spin-us', '0'));
const PERIOD_MS = 1;
const BLOCK = { fc: 4 as const, address: 0, quantity: 16 };

// ------------------------------------------------------------------ the hostile main thread

let sink: unknown[] = [];
/** Block the main thread 50 ms every 100 ms, allocating ~5 MB per block (≈ 50 MB/s of garbage). */
function startHostility(): () => void {
  const timer = setInterval(() => {
    const until = performance.now() + 50;
    let chunk: unknown[] = [];
    while (performance.now() < until) {
      chunk.push({ a: Math.random(), b: [1, 2, 3], c: 'x'.repeat(16) });
      if (chunk.length >= 2000) { sink = chunk; chunk = []; }
    }
    sink = chunk;
  }, 100);
  return () => clearInterval(timer);
}

interface Row {
  name: string;
  /** Over every deadline: executed cycles (wake − deadline) and deadlines skipped by an overrun (until the next cycle ran). */
  lateness: LatencySummary;
  /** Over executed cycles only (what the poller's lateness histogram alone shows). */
  executedLateness: LatencySummary;
  /** CPU of the poller's own threads over the measurement, in cores (NaN where the poll runs on the main thread). */
  pollCores: number;
  cycleTime: LatencySummary;
  cycles: number;
  expectedCycles: number;
  overruns: number;
  missedDeadlines: number;
  changesSeen: number;
  realtime: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Raw = RawPollerStats['lateness'];
const minus = (a: Raw, b: Raw): Raw => ({ counts: a.counts.map((c, i) => c - b.counts[i]), total: a.total - b.total, maxNs: a.maxNs, sumNs: a.sumNs - b.sumNs });
const plus = (a: Raw, b: Raw): Raw => ({ counts: a.counts.map((c, i) => c + b.counts[i]), total: a.total + b.total, maxNs: Math.max(a.maxNs, b.maxNs), sumNs: a.sumNs + b.sumNs });

/** Ids of this process's threads (/proc/self/task). */
const threadIds = (): number[] => readdirSync('/proc/self/task').map(Number);
/** CPU seconds of threads (a thread id works as a pid in /proc); a thread that ended counts 0. */
function threadsCpuSeconds(tids: readonly number[]): number {
  let sum = 0;
  for (const tid of tids) {
    try { sum += processCpuSeconds(tid); } catch { /* the thread ended */ }
  }
  return sum;
}

/**
 * A main-thread loop without absolute deadlines ran again `gapMs` after its previous run: the deadline
 * one period after that run is the executed one (late by gap − period, also in `executed`), and every
 * later deadline the gap passed over was missed and ran now, late by gap − k·period.
 */
function addGap(all: LatencyHistogram, executed: LatencyHistogram, gapMs: number): void {
  executed.add(Math.max(0, gapMs - PERIOD_MS) * 1e6);
  all.add(Math.max(0, gapMs - PERIOD_MS) * 1e6);
  for (let k = 2; k * PERIOD_MS <= gapMs; k++) all.add((gapMs - k * PERIOD_MS) * 1e6);
}

async function runPoller(name: string, factory: PollerFactory, plant: PlantProcess, notes: string[], realtime?: PollerOptions['realtime']): Promise<Row> {
  let changes = 0;
  const poller = factory({ host: '127.0.0.1', port: plant.port, unitId: 1, periodMs: PERIOD_MS, timeoutMs: 50, blocks: [BLOCK], realtime },
    (records) => { changes += records.length / CHANGE_RECORD_LENGTH; });
  const before = new Set(threadIds());
  poller.start();
  await sleep(500); // connect and warm up outside the measurement
  // The poller's own threads: those it started (the poll thread; a worker's threads for the fallback).
  const pollThreads = threadIds().filter((tid) => !before.has(tid));
  const warm = poller.stats() as RawPollerStats;
  const cpuStart = threadsCpuSeconds(pollThreads);
  const stopHostility = startHostility();
  await sleep(SECONDS * 1000);
  stopHostility();
  const s = poller.stats() as RawPollerStats;
  const pollCores = (threadsCpuSeconds(pollThreads) - cpuStart) / SECONDS;
  await poller.stop();
  const rt = s.realtime;
  const executed = minus(s.lateness, warm.lateness);
  // Every miss the poller counts, printed even when zero so that a table quoting this row can say so.
  notes.push(`${name}: ${s.readErrors - warm.readErrors} of ${s.reads - warm.reads} measured reads failed (timeout 50 ms or error), ` +
    `${s.droppedChanges - warm.droppedChanges} changes and ${s.droppedEvents - warm.droppedEvents} events dropped, ${s.connects - warm.connects} reconnects.`);
  return {
    name,
    lateness: summarize(plus(executed, minus(s.missedLateness, warm.missedLateness))),
    executedLateness: summarize(executed),
    pollCores,
    cycleTime: summarize(minus(s.cycleTime, warm.cycleTime)),
    cycles: s.cycles - warm.cycles,
    expectedCycles: Math.round(SECONDS * 1000 / PERIOD_MS),
    overruns: s.overruns - warm.overruns,
    missedDeadlines: s.missedDeadlines - warm.missedDeadlines,
    changesSeen: changes,
    realtime: `${rt.policy}${rt.priority ? ` ${rt.priority}` : ''}${rt.cpu >= 0 ? `, CPU${rt.cpu}` : ''}${rt.notes.length ? ` (${rt.notes.join('; ')})` : ''}`,
  };
}

/** A Modbus client driven from the main thread: `read` does one read of BLOCK and calls `done` when it settles. */
interface MainThreadReader {
  name: string;
  read(done: (error?: unknown) => void): void;
  close(): Promise<void>;
}

/** lib/modbus's client (one request in flight, the rest queued by the client). */
async function ourClientReader(plant: PlantProcess): Promise<MainThreadReader> {
  const client = createModbusTcpClient({ host: '127.0.0.1', port: plant.port, timeoutMs: 50 });
  client.start();
  await waitConnected(client);
  return { name: 'setInterval(1) + TS client', read: (done) => client.submit(1, BLOCK, (error) => done(error ?? undefined)), close: () => client.close() };
}

/** modbus-serial 8.0.25 as its README polls: ModbusRTU over TCP, a promise read per tick (requests pipelined by transaction id). */
async function modbusSerialReader(plant: PlantProcess): Promise<MainThreadReader> {
  const client = new ModbusRTU();
  await client.connectTCP('127.0.0.1', { port: plant.port });
  client.setID(1);
  client.setTimeout(50);
  return {
    name: 'modbus-serial 8.0.25 setInterval(1)',
    // BLOCK is FC4 (read input registers, Modbus App Protocol v1.1b3 §6.4).
    read: (done) => { client.readInputRegisters(BLOCK.address, BLOCK.quantity).then(() => done(), done); },
    close: () => new Promise<void>((resolve) => client.close(() => resolve())),
  };
}

/**
 * setInterval(1) on the main thread, one read per tick: what a hand-written poll loop does.
 * Lateness is the gap between two ticks minus the period (setInterval has no absolute deadline);
 * cycle = tick → read settled; overrun = a read that settled after the next tick was due.
 */
async function runSetInterval(reader: MainThreadReader, notes: string[]): Promise<Row> {
  const lateness = new LatencyHistogram();
  const executedLateness = new LatencyHistogram();
  const cycleTime = new LatencyHistogram();
  let cycles = 0;
  let overruns = 0;
  let failedReads = 0;
  let measuring = false;
  let last = performance.now();
  const timer = setInterval(() => {
    const woke = performance.now();
    // Lateness against the tick this one should have been: the previous tick + the period.
    if (measuring) { addGap(lateness, executedLateness, woke - last); cycles++; }
    last = woke;
    reader.read((error) => {
      const done = performance.now();
      if (!measuring) return;
      if (error) failedReads++;
      cycleTime.add((done - woke) * 1e6);
      if (done > woke + PERIOD_MS) overruns++;
    });
  }, PERIOD_MS);
  await sleep(500);
  measuring = true;
  const stopHostility = startHostility();
  await sleep(SECONDS * 1000);
  stopHostility();
  measuring = false;
  clearInterval(timer);
  await reader.close();
  if (failedReads) notes.push(`${reader.name}: ${failedReads} of the measured reads failed (timeout 50 ms or error); counted in cycle time as settled.`);
  const expected = Math.round(SECONDS * 1000 / PERIOD_MS);
  return {
    name: reader.name, lateness: summarize(lateness.raw()), executedLateness: summarize(executedLateness.raw()), pollCores: NaN, cycleTime: summarize(cycleTime.raw()), cycles, expectedCycles: expected,
    overruns, missedDeadlines: Math.max(0, expected - cycles), changesSeen: NaN, realtime: 'main thread',
  };
}

/**
 * node-red-contrib-modbus 5.23.3 polling at its fastest (modbus-read, rate 1 ms, commandDelay 1)
 * in an embedded Node-RED on this main thread. It has no deadline of its own: lateness is the gap
 * between two read results minus the period, as for setInterval; cycle time is not observable.
 */
async function runContribModbus(plant: PlantProcess): Promise<Row> {
  const { startNodeRed } = await import('./lib/node-red');
  const red = await startNodeRed([
    { id: 'bench', type: 'tab', label: 'fast poll bench' },
    {
      id: 'mbclient', type: 'modbus-client', name: 'sim', clienttype: 'tcp', bufferCommands: true, stateLogEnabled: false, queueLogEnabled: false,
      tcpHost: '127.0.0.1', tcpPort: String(plant.port), tcpType: 'DEFAULT', serialPort: '/dev/null', serialType: 'RTU-BUFFERD', serialBaudrate: '9600',
      serialDatabits: '8', serialStopbits: '1', serialParity: 'none', serialConnectionDelay: '100', unit_id: 1, commandDelay: 1, clientTimeout: 50,
      reconnectOnTimeout: true, reconnectTimeout: 2000, parallelUnitIdsAllowed: true,
    },
    {
      id: 'mbread', type: 'modbus-read', z: 'bench', name: 'fast', topic: '', showStatusActivities: false, logIOActivities: false, showErrors: false,
      unitid: '1', dataType: 'InputRegister', adr: String(BLOCK.address), quantity: String(BLOCK.quantity), rate: String(PERIOD_MS), rateUnit: 'ms',
      delayOnStart: false, startDelayTime: '', server: 'mbclient', useIOFile: false, ioFile: '', useIOForPayload: false, emptyMsgOnFail: false,
      x: 100, y: 100, wires: [[], []],
    },
  ]);
  const read = red.node<{ send(message: unknown): void }>('mbread');
  const send = read.send.bind(read);
  const lateness = new LatencyHistogram();
  const executedLateness = new LatencyHistogram();
  let measuring = false;
  let results = 0;
  let last = 0;
  read.send = (message: unknown) => {
    const now = performance.now();
    if (measuring && last) { addGap(lateness, executedLateness, now - last); results++; }
    last = now;
    send(message);
  };
  await sleep(1000);
  measuring = true;
  const stopHostility = startHostility();
  await sleep(SECONDS * 1000);
  stopHostility();
  measuring = false;
  await red.stop();
  const expected = Math.round(SECONDS * 1000 / PERIOD_MS);
  const none = summarize(new LatencyHistogram().raw());
  return {
    name: 'node-red-contrib-modbus 5.23.3 (modbus-read 1 ms)', lateness: summarize(lateness.raw()), executedLateness: summarize(executedLateness.raw()), pollCores: NaN, cycleTime: none, cycles: results,
    expectedCycles: expected, overruns: NaN, missedDeadlines: Math.max(0, expected - results), changesSeen: NaN, realtime: 'main thread (Node-RED)',
  };
}

function waitConnected(client: ModbusClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.state === 'connected') resolve();
    else client.on('state', (s) => { if (s === 'connected') resolve(); });
  });
}

// ------------------------------------------------------------------ trip latency

interface TripRow { name: string; latencies: number[]; cyclesToTrip: number[] }

const SETPOINT = 1; // holding 1: speedSetpoint (docs/simulated-plant.md)
const CONTROL_WORD = 0; // holding 0: 0 = stop, 1 = start forward

async function tripNative(factory: PollerFactory, plant: PlantProcess): Promise<TripRow> {
  const events: PollerEvent[] = [];
  const poller = factory({
    host: '127.0.0.1', port: plant.port, unitId: 1, periodMs: PERIOD_MS, timeoutMs: 50,
    blocks: [{ fc: 3, address: 0, quantity: 2, signed: [false, true] }],
    trips: [{ block: 0, offset: 1, when: 'above', limit: 1500, cycles: 2, writeAddress: CONTROL_WORD, writeValue: 0 }],
    realtime: { priority: 80, cpu: 1 },
  }, (_, e) => { events.push(...e); });
  poller.start();
  await sleep(300);
  const row: TripRow = { name: 'native trip rule (poll thread)', latencies: [], cyclesToTrip: [] };
  const stopHostility = startHostility();
  for (let i = 0; i < TRIPS; i++) {
    const id = 100 + i;
    poller.write(id, 6, SETPOINT, [1600]); // the crossing happens at the drive when it acknowledges this write
    const write = await waitEvent(events, (e) => e.type === 'write' && e.id === id);
    const trip = await waitEvent(events, (e) => e.type === 'trip' && e.time >= write.time);
    if (trip.type === 'trip' && trip.ackedTime !== undefined) {
      row.latencies.push(trip.ackedTime - write.time);
      row.cyclesToTrip.push(trip.cycle - write.cycle);
    }
    poller.write(1000 + i, 6, SETPOINT, [1200]);
    poller.write(2000 + i, 6, CONTROL_WORD, [1]);
    await waitEvent(events, (e) => e.type === 'write' && e.id === 2000 + i);
    await sleep(137); // desynchronise from the blocker's phase
  }
  stopHostility();
  await poller.stop();
  return row;
}

async function tripJs(factory: PollerFactory, plant: PlantProcess): Promise<TripRow> {
  // The crossing is injected (and timed) by the native poller's write; the rule runs in JS.
  const events: PollerEvent[] = [];
  const injector = factory({ host: '127.0.0.1', port: plant.port, unitId: 1, periodMs: 5, blocks: [{ fc: 3, address: 0, quantity: 1 }] }, (_, e) => { events.push(...e); });
  injector.start();
  const client = createModbusTcpClient({ host: '127.0.0.1', port: plant.port, timeoutMs: 50 });
  client.start();
  await waitConnected(client);
  let streak = 0;
  let latched = false;
  const tripAcks: number[] = [];
  const timer = setInterval(() => {
    client.submit(1, { fc: 3, address: SETPOINT, quantity: 1 }, (error, res) => {
      if (error || !res || !('data' in res)) return;
      const rpm = registerAt(res.data, 0);
      if (rpm <= 1500) { streak = 0; latched = false; return; }
      if (++streak < 2 || latched) return;
      latched = true;
      client.submit(1, { fc: 6, address: CONTROL_WORD, value: 0 }, (e) => { if (!e) tripAcks.push(performance.timeOrigin + performance.now()); });
    });
  }, PERIOD_MS);
  await sleep(300);
  const row: TripRow = { name: 'same rule in JS (setInterval 1 ms, main thread)', latencies: [], cyclesToTrip: [] };
  const stopHostility = startHostility();
  for (let i = 0; i < TRIPS; i++) {
    while (latched) await sleep(1); // re-armed: the rule has seen the setpoint back below the limit
    injector.write(100 + i, 6, SETPOINT, [1600]);
    const write = await waitEvent(events, (e) => e.type === 'write' && e.id === 100 + i);
    const until = Date.now() + 2000;
    let ack: number | undefined;
    while ((ack = tripAcks.find((t) => t > write.time)) === undefined && Date.now() < until) await sleep(1);
    if (ack !== undefined) row.latencies.push(ack - write.time);
    injector.write(1000 + i, 6, SETPOINT, [1200]);
    injector.write(2000 + i, 6, CONTROL_WORD, [1]);
    await waitEvent(events, (e) => e.type === 'write' && e.id === 2000 + i);
    await sleep(137);
  }
  stopHostility();
  clearInterval(timer);
  await client.close();
  await injector.stop();
  return row;
}

async function waitEvent(events: PollerEvent[], match: (e: PollerEvent) => boolean, ms = 5000): Promise<PollerEvent> {
  const until = Date.now() + ms;
  for (;;) {
    const found = events.find(match);
    if (found) return found;
    if (Date.now() > until) throw new Error('bench: event did not come');
    await sleep(1);
  }
}

function tryExec(file: string, argv: string[]): boolean {
  try {
    execFileSync(file, argv, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ report

const fmt = (us: number) => (!Number.isFinite(us) ? 'n/a' : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`);
const pct = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : NaN;
};

function report(rows: Row[], trips: TripRow[], notes: string[]): string {
  const facts = machineFacts();
  const lines = [
    '## Fast poller: 1 ms Modbus cycle while the JS main thread is hostile',
    '',
    `Measured by \`npx tsx bench/fast-poll.ts ${args.join(' ')}\` on ${new Date().toISOString().slice(0, 10)}: ${facts.nproc} × ${facts.cpuModel}, ${facts.kernel}, Node ${facts.node}. ` +
      `One run, ${SECONDS} s per contender, one after the other in the same process. The simulated drive runs in its own process pinned to CPU${SIM_CPU}, reniced to −15 ` +
      '(`bench/lib/modbus-plant-process.ts`), each cycle reads FC4 16 registers (the whole map). The main thread is blocked 50 ms every 100 ms and allocates ~50 MB/s throughout. ' +
      'Lateness is over **every deadline**: an executed cycle is late by wake time − its absolute deadline; a deadline that an overrun ' +
      'skipped (or, for the main-thread loops, that a long gap passed over) is a late cycle too, late until the next cycle actually ran. ' +
      '"p99 executed" is over executed cycles only, what the poller\'s own lateness histogram shows. Cycle = wake → answer decoded; ' +
      'overrun = a cycle that ended after the next deadline. Poll-thread CPU: the threads the poller started (/proc/self/task), ' +
      'over the measurement, in cores; the spin (realtime.spinUs) busy-waits before every deadline and costs about spin ÷ period of a core.',
    '',
    '| contender | scheduling got | lateness p50, all deadlines | **p99, all deadlines** | p99.9 | max | p99 executed only | cycle p50 | cycle p99 | cycles / expected | overruns | missed deadlines | poll-thread CPU |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.realtime} | ${fmt(r.lateness.p50Us)} | **${fmt(r.lateness.p99Us)}** | ${fmt(r.lateness.p999Us)} | ${fmt(r.lateness.maxUs)} | ${fmt(r.executedLateness.p99Us)} | ` +
      `${r.cycleTime.count ? fmt(r.cycleTime.p50Us) : 'n/a'} | ${r.cycleTime.count ? fmt(r.cycleTime.p99Us) : 'n/a'} | ${r.cycles} / ${r.expectedCycles} | ${Number.isNaN(r.overruns) ? 'n/a' : r.overruns} | ${r.missedDeadlines} | ` +
      `${Number.isNaN(r.pollCores) ? 'main thread' : `${(r.pollCores * 100).toFixed(0)} % of a core`} |`),
    '',
    `Trip latency (${TRIPS} trips each, main thread hostile): setpoint write acknowledged by the drive (the crossing) → trip write acknowledged by the drive; rule "speedSetpoint > 1500 for 2 consecutive cycles → controlWord = 0".`,
    '',
    '| rule | trips | p50 | max | cycles from crossing to trip |',
    '|---|---|---|---|---|',
    ...trips.map((t) => `| ${t.name} | ${t.latencies.length}/${TRIPS} | ${t.latencies.length ? `${pct(t.latencies, 0.5).toFixed(2)} ms` : '—'} | ` +
      `${t.latencies.length ? `${Math.max(...t.latencies).toFixed(2)} ms` : '—'} | ${t.cyclesToTrip.length ? `${Math.min(...t.cyclesToTrip)}–${Math.max(...t.cyclesToTrip)}` : 'n/a'} |`),
    '',
    ...notes.map((n) => `- ${n}`),
  ];
  return lines.join('\n');
}

const START = '<!-- fast-poll:start -->';
const END = '<!-- fast-poll:end -->';
function writeDoc(markdown: string): void {
  const path = join(__dirname, '..', 'docs', 'benchmarks.md');
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const block = `${START}\n${markdown}\n${END}`;
  const from = doc.indexOf(START);
  const to = doc.indexOf(END);
  writeFileSync(path, from >= 0 && to > from ? doc.slice(0, from) + block + doc.slice(to + END.length) : `${doc.trimEnd()}\n\n${block}\n`);
}

async function main(): Promise<void> {
  const native = loadNative();
  const plant = await startPlantProcess({ drives: 1 });
  const notes: string[] = [];
  // The drive stands for an external device: pinned to CPU0 and reniced so that this process's
  // hostile main thread (which shares CPU0) does not slow its answers.
  if (!tryExec('taskset', ['-pc', SIM_CPU, String(plant.pid)])) notes.push('taskset failed: the simulated drive was not pinned.');
  if (!tryExec('renice', ['-n', '-15', '-p', String(plant.pid)])) notes.push('renice failed: the simulated drive runs at normal priority.');
  const fallback: PollerFactory = (o, cb) => new FallbackPoller(o, cb);
  const want = (name: string) => ONLY.length === 0 || ONLY.includes(name);
  const rows: Row[] = [];
  const trips: TripRow[] = [];
  // What else the machine was doing: the 1-min load average, sampled every 5 s.
  const loads = [loadavg()[0]];
  const loadSampler = setInterval(() => loads.push(loadavg()[0]), 5000);
  try {
    if (native.ok) {
      if (want('native-rt')) {
        // "Its own core": every thread of this process on CPU0, the poll thread moves itself to CPU1.
        const pinned = tryExec('taskset', ['-a', '-pc', '0', String(process.pid)]);
        rows.push(await runPoller(`native, RT requested (FIFO 80, CPU1${SPIN_US ? `, spin ${SPIN_US} µs` : ''}${pinned ? '; rest of the process on CPU0' : ''})`, native.factory, plant, notes, { priority: 80, cpu: 1, spinUs: SPIN_US }));
        if (pinned) tryExec('taskset', ['-a', '-pc', '0-1', String(process.pid)]);
      }
      if (want('native')) rows.push(await runPoller('native, no RT settings', native.factory, plant, notes));
    } else {
      notes.push(`native addon unavailable: ${native.reason}`);
    }
    if (want('fallback')) rows.push(await runPoller('TypeScript fallback (worker_thread)', fallback, plant, notes));
    if (want('setInterval')) rows.push(await runSetInterval(await ourClientReader(plant), notes));
    if (want('modbus-serial')) rows.push(await runSetInterval(await modbusSerialReader(plant), notes));
    for (const r of rows) console.log(JSON.stringify(r));
    if (TRIPS > 0 && native.ok) {
      trips.push(await tripNative(native.factory, plant));
      trips.push(await tripJs(native.factory, plant));
      for (const t of trips) console.log(JSON.stringify(t));
    }
    // Last: Node-RED is started once per process and stays loaded.
    if (want('contrib')) {
      rows.push(await runContribModbus(plant));
      console.log(JSON.stringify(rows[rows.length - 1]));
    }
  } finally {
    clearInterval(loadSampler);
    await plant.close();
  }
  notes.push(`Machine load during the run: 1-min load average ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} ` +
    `(median ${pct(loads, 0.5).toFixed(2)}, ${loads.length} samples) on ${machineFacts().nproc} vCPUs, this bench included; above ${machineFacts().nproc} means runnable work was waiting for a CPU.`);
  void (sink.length);
  const markdown = report(rows, trips, notes);
  console.log(markdown);
  if (WRITE) writeDoc(markdown);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
