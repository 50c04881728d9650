/**
 * The fallback's poll loop (worker_thread). Mirrors native/src/poller.cc: absolute deadlines,
 * lateness and cycle-time histograms, overruns counted with timestamps and missed deadlines
 * skipped, change detection with per-item deadbands, trip rules evaluated right after the read,
 * reconnect after a timeout or a garbled answer, one 'disconnected' event per outage.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ModbusException } from '../modbus/data-model';
import { createModbusTcpClient, ModbusClient, ModbusClientError } from '../modbus/client';
import { bitAt, ModbusRequest, registerAt } from '../modbus/pdu';
import { LatencyHistogram } from './histogram';
import { CONTROL, CounterName, counterIndex, CYCLE_TIME_AT, LATENESS_AT, MISSED_LATENESS_AT, OVERRUN_LOG, OVERRUN_LOG_AT } from './fallback-layout';
import type { FromWorker, ToWorker, WorkerInit } from './fallback';
import { CHANGE_RECORD_LENGTH, FailureKind, PollerEvent } from './types';

const init = workerData as WorkerInit;
const o = init.options;
const control = new Int32Array(init.control);
const stats = new Float64Array(init.stats);
const lateness = new LatencyHistogram(stats.subarray(LATENESS_AT, LATENESS_AT + LatencyHistogram.SLOTS));
const missedLateness = new LatencyHistogram(stats.subarray(MISSED_LATENESS_AT, MISSED_LATENESS_AT + LatencyHistogram.SLOTS));
const cycleTime = new LatencyHistogram(stats.subarray(CYCLE_TIME_AT, CYCLE_TIME_AT + LatencyHistogram.SLOTS));
const count = (name: CounterName, by = 1) => { stats[counterIndex(name)] += by; };

const unitId = o.unitId ?? 1;
const periodMs = o.periodMs ?? 1;
const timeoutMs = o.timeoutMs ?? 100;
const reconnectMinMs = o.reconnectMinMs ?? 100;
const reconnectMaxMs = o.reconnectMaxMs ?? 5000;
const ringCapacity = o.ringCapacity ?? 65536;
const EVENT_CAPACITY = 1024;
const SLEEP_SLICE_MS = 50;
const spinMs = (o.realtime?.spinUs ?? 0) / 1000;

const blocks = o.blocks.map((b) => ({
  ...b,
  deadband: Array.from({ length: b.quantity }, (_, i) => b.deadbands?.[i] ?? 0),
  isSigned: Array.from({ length: b.quantity }, (_, i) => b.signed?.[i] === true),
  current: new Uint16Array(b.quantity),
  reported: new Uint16Array(b.quantity),
  reportedValid: new Uint8Array(b.quantity),
  failed: false,
}));
const trips = (o.trips ?? []).map((t) => ({ ...t, cycles: t.cycles ?? 1, writeFc: t.writeFc ?? 6, streak: 0, firstCycle: 0, firstTime: 0, latched: false }));

let changes: number[] = [];
let events: PollerEvent[] = [];
const writeQueue: ToWorker[] = [];
let client: ModbusClient | undefined;
let reconnectAt = 0;
let reconnectDelayMs = 0;
let outageReported = false;
let linkVerified = false;

parentPort?.on('message', (m: ToWorker) => { if (m.type === 'write') writeQueue.push(m); });

const asNumber = (raw: number, signed: boolean) => (signed && raw >= 0x8000 ? raw - 0x10000 : raw);

function pushEvent(e: PollerEvent): void {
  if (events.length >= EVENT_CAPACITY) { count('droppedEvents'); return; }
  events.push(e);
}

function failureOf(error: unknown): { kind: FailureKind; code?: number } {
  if (error instanceof ModbusException) return { kind: 'exception', code: error.code };
  if (error instanceof ModbusClientError) {
    if (error.code === 'timeout') return { kind: 'timeout' };
    if (error.code === 'malformed-response') return { kind: 'garbage' };
  }
  return { kind: 'closed' };
}

function disconnect(cycle: number, kind: FailureKind, message: string): void {
  void client?.close();
  client = undefined;
  stats[counterIndex('connected')] = 0;
  reconnectDelayMs = reconnectDelayMs === 0 ? reconnectMinMs : Math.min(reconnectMaxMs, reconnectDelayMs * 2);
  reconnectAt = performance.now() + reconnectDelayMs;
  for (const b of blocks) b.reportedValid.fill(0);
  if (!outageReported) {
    outageReported = true;
    pushEvent({ type: 'disconnected', cycle, time: Date.now(), kind, message });
  }
}

function linkAnswered(cycle: number): void {
  if (linkVerified) return;
  linkVerified = true;
  outageReported = false;
  reconnectDelayMs = 0;
  pushEvent({ type: 'connected', cycle, time: Date.now(), kind: 'ok', message: `${o.host}:${o.port}` });
}

function ensureConnected(cycle: number): void {
  if (client || performance.now() < reconnectAt) return;
  const c = createModbusTcpClient({
    host: o.host, port: o.port, timeoutMs, connectTimeoutMs: o.connectTimeoutMs ?? 1000,
    reconnectMinMs, reconnectMaxMs, unitFailureThreshold: Number.MAX_SAFE_INTEGER,
  });
  c.on('outage', (e) => {
    if (client !== c) return;
    disconnect(cycle, /ECONNREFUSED/.test(e.reason) ? 'refused' : 'connect', e.reason);
  });
  c.on('state', (state) => {
    if (state === 'connected') { count('connects'); stats[counterIndex('connected')] = 1; linkVerified = false; }
  });
  client = c;
  c.start();
}

async function readBlock(cycle: number, index: number, c: ModbusClient): Promise<boolean> {
  const b = blocks[index];
  count('reads');
  let data: Buffer;
  try {
    const res = await c.request(unitId, { fc: b.fc, address: b.address, quantity: b.quantity });
    data = (res as { data: Buffer }).data;
  } catch (error) {
    const failure = failureOf(error);
    count('readErrors');
    if (failure.kind === 'exception') linkAnswered(cycle);
    if (!b.failed) {
      b.failed = true;
      pushEvent({ type: 'read-error', cycle, time: Date.now(), block: index, ...failure, message: (error as Error).message });
    }
    b.reportedValid.fill(0);
    if (failure.kind !== 'exception') { disconnect(cycle, failure.kind, 'read failed'); return false; }
    return true;
  }
  const now = Date.now();
  linkAnswered(cycle);
  if (b.failed) {
    b.failed = false;
    pushEvent({ type: 'read-recovered', cycle, time: now, kind: 'ok', block: index });
  }
  const at = b.fc <= 2 ? bitAt : registerAt;
  for (let i = 0; i < b.quantity; i++) {
    const v = at(data, i);
    b.current[i] = v;
    const s = b.isSigned[i];
    if (b.reportedValid[i] && Math.abs(asNumber(v, s) - asNumber(b.reported[i], s)) <= b.deadband[i]) continue;
    // Full: the change stays unreported and is found again next cycle (late, never lost).
    if (changes.length >= ringCapacity * CHANGE_RECORD_LENGTH) { count('droppedChanges'); continue; }
    changes.push(cycle, now, index, i, v);
    b.reported[i] = v;
    b.reportedValid[i] = 1;
  }
  return evaluateTrips(cycle, index, now, c);
}

async function evaluateTrips(cycle: number, blockIndex: number, now: number, c: ModbusClient): Promise<boolean> {
  for (let r = 0; r < trips.length; r++) {
    const t = trips[r];
    if (t.block !== blockIndex) continue;
    const b = blocks[blockIndex];
    const v = asNumber(b.current[t.offset], b.isSigned[t.offset]);
    const crossed = t.when === 'above' ? v > t.limit : v < t.limit;
    if (!crossed) { t.streak = 0; t.latched = false; continue; }
    if (t.streak++ === 0) { t.firstCycle = cycle; t.firstTime = now; }
    if (t.latched || t.streak < t.cycles) continue;
    t.latched = true;
    count('trips');
    const sentTime = Date.now();
    let failure: { kind: FailureKind; code?: number } | undefined;
    try {
      await c.request(unitId, t.writeFc === 5 ? { fc: 5, address: t.writeAddress, value: t.writeValue !== 0 } : { fc: 6, address: t.writeAddress, value: t.writeValue });
    } catch (error) {
      failure = failureOf(error);
    }
    const ackedTime = failure ? undefined : Date.now();
    if (failure) t.latched = false;
    pushEvent({
      type: 'trip', cycle, time: Date.now(), kind: failure?.kind ?? 'ok', code: failure?.code, rule: r, value: v,
      crossingCycle: t.firstCycle, crossingTime: t.firstTime, sentTime, ...(ackedTime ? { ackedTime } : {}),
    });
    if (failure && failure.kind !== 'exception') { disconnect(cycle, failure.kind, 'trip write failed'); return false; }
  }
  return true;
}

async function processWrites(cycle: number, c: ModbusClient): Promise<void> {
  while (writeQueue.length && client === c) {
    const w = writeQueue.shift() as ToWorker;
    let failure: { kind: FailureKind; code?: number } | undefined;
    try {
      const request: ModbusRequest = w.fc === 5 ? { fc: 5 as const, address: w.address, value: w.values[0] !== 0 }
        : w.fc === 6 ? { fc: 6 as const, address: w.address, value: w.values[0] }
        : { fc: w.fc, address: w.address, values: w.values };
      await c.request(unitId, request);
    } catch (error) {
      failure = failureOf(error);
    }
    count(failure ? 'writeErrors' : 'writes');
    pushEvent({ type: 'write', cycle, time: Date.now(), kind: failure?.kind ?? 'ok', id: w.id, code: failure?.code });
    if (failure && failure.kind !== 'exception') disconnect(cycle, failure.kind, 'write failed');
  }
}

async function pollCycle(cycle: number): Promise<void> {
  ensureConnected(cycle);
  const c = client;
  if (!c || c.state !== 'connected') return;
  for (let i = 0; i < blocks.length; i++) if (!(await readBlock(cycle, i, c))) return;
  await processWrites(cycle, c);
}

/** Post what is pending, unless the main thread has not taken the previous batch (coalescing). */
function flush(): void {
  if ((changes.length === 0 && events.length === 0) || Atomics.load(control, CONTROL.pendingBatches) > 0) return;
  Atomics.add(control, CONTROL.pendingBatches, 1);
  count('notifications');
  const message: FromWorker = { type: 'batch', changes: Float64Array.from(changes), events };
  parentPort?.postMessage(message);
  changes = [];
  events = [];
}

const stopRequested = () => Atomics.load(control, CONTROL.stop) === 1;

async function run(): Promise<void> {
  let deadline = performance.now() + periodMs;
  let cycle = 0;
  let overruns = 0;
  let skippedFrom = 0;
  let skipped = 0; // the deadlines the last overrun skipped
  while (!stopRequested()) {
    // Sleep to the absolute deadline; stop() wakes the wait through Atomics.notify.
    const wakeAt = deadline - spinMs;
    for (let left = wakeAt - performance.now(); left > 0 && !stopRequested(); left = wakeAt - performance.now()) {
      Atomics.wait(control, CONTROL.sleep, 0, Math.min(left, SLEEP_SLICE_MS));
    }
    while (!stopRequested() && performance.now() < deadline) { /* the optional spin (realtime.spinUs) up to the deadline */ }
    if (stopRequested()) break;
    const woke = performance.now();
    lateness.add((woke - deadline) * 1e6);
    // A skipped deadline is a late cycle: it ran now, this much after its own deadline.
    for (let j = 0; j < skipped; j++) missedLateness.add((woke - (skippedFrom + j * periodMs)) * 1e6);
    skipped = 0;
    cycle++;
    stats[counterIndex('cycles')] = cycle;
    await pollCycle(cycle);
    // Let the worker's own event loop run once per cycle (socket events, write requests from the
    // main thread): awaiting resolved promises alone would never reach it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const done = performance.now();
    cycleTime.add((done - woke) * 1e6);
    deadline += periodMs;
    if (done > deadline) {
      stats[OVERRUN_LOG_AT + (overruns % OVERRUN_LOG)] = Date.now();
      overruns++;
      count('overruns');
      const missed = Math.floor((done - deadline) / periodMs) + 1;
      count('missedDeadlines', missed);
      skippedFrom = deadline;
      skipped = missed;
      deadline += missed * periodMs;
    }
    flush();
  }
  // Bounded: a link that is still connecting must not hold the stop.
  await Promise.race([client?.close(), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
  client = undefined;
  Atomics.store(control, CONTROL.pendingBatches, 0);
  flush();
  const stopped: FromWorker = { type: 'stopped' };
  parentPort?.postMessage(stopped);
}

void run();
