/**
 * Issue 9 benchmark: OPC UA subscriptions, uns-edge's uns-opcua-subscribe vs node-red-contrib-opcua
 * 0.2.354 (OpcUa-Client, action subscribe), side by side in one embedded Node-RED runtime, against
 * the same node-opcua server in its own process (bench/lib/opcua-bench-server.ts): N Double
 * variables that ALL change every 100 ms, each change carrying its tick number.
 *
 *   npm run build
 *   node --expose-gc --import tsx bench/opcua-subscribe.ts [--runs 5] [--items 1000,10000] [--sides contrib,uns]
 *        [--window 10] [--security SignAndEncrypt|None] [--write]
 *
 * Per case (item count) one server; per run every side once, order rotated, after one warm-up.
 * A side's flow is deployed alone (full deploy), it runs until a notification of the current tick
 * has arrived, settles, and is measured over the window. Counted at the output node's send()
 * (hooked, no wires): messages, notifications (contrib: one per message; uns-edge: the metrics of
 * a tag batch) and the tick each carried. Lost = what the server sent for the ticks of the window
 * (items × ticks) − the notifications of those ticks that arrived (late ones included: the count
 * closes 2 s after the window). CPU is the Node-RED process over the window; RSS its maximum.
 * Results go into docs/benchmarks.md (--write) only when both sides ran.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startOpcUaBenchServer, type BenchSecurityMode, type OpcUaBenchServer } from './lib/opcua-bench-server';
import { CONTRIB_SIDE, tab, UNS_SIDE, unsOpcUaNodesBuilt, type Side } from './lib/opcua-flow';
import { startNodeRed, waitFor, type EmbeddedNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { machineBusySeconds, machineFacts, processCpuSeconds, summarize, type Summary } from './lib/stats';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    items: { type: 'string', default: '1000,10000' },
    sides: { type: 'string', default: 'contrib,uns' },
    window: { type: 'string', default: '10' },
    settle: { type: 'string', default: '2' },
    period: { type: 'string', default: '100' },
    security: { type: 'string', default: 'SignAndEncrypt' },
    write: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const WINDOW_S = Number(args.window);
const SETTLE_S = Number(args.settle);
const PERIOD_MS = Number(args.period);
const SECURITY = args.security as BenchSecurityMode;
const ITEM_CASES = args.items.split(',').map(Number);
if (!(RUNS >= 1 && WINDOW_S > 0 && PERIOD_MS > 0 && ITEM_CASES.every((n) => Number.isInteger(n) && n > 0))) throw new Error('--runs ≥ 1, --window > 0, --items positive integers');
if (SECURITY !== 'SignAndEncrypt' && SECURITY !== 'None') throw new Error('--security SignAndEncrypt or None');
const DRAIN_MS = 2000;

const SIDES: Side[] = args.sides.split(',').map((id) => {
  const side = [CONTRIB_SIDE, UNS_SIDE].find((s) => s.id === id.trim());
  if (!side) throw new Error(`--sides: unknown side "${id}" (contrib, uns)`);
  return side;
}).filter((side) => {
  if (side.id !== 'uns' || unsOpcUaNodesBuilt()) return true;
  console.warn('uns-edge side skipped: dist/nodes/opcua is not built (no "opcua" node set in package.json); measuring the peer only');
  return false;
});

/** A side that never delivered in a case: reported as such, not left out silently. */
interface Failure {
  items: number;
  side: Side['id'];
  reason: string;
}
const failures: Failure[] = [];

interface RunResult {
  items: number;
  side: Side['id'];
  notificationsPerSec: number;
  messagesPerSec: number;
  sent: number;
  lost: number;
  lostPercent: number;
  /** Age of the newest value in a message when it was sent by the node (now − when the server set that tick). */
  delayP50Ms: number;
  delayP99Ms: number;
  cpuCores: number;
  cpuUsPerNotification: number;
  rssMB: number;
  serverCores: number;
  otherCores: number;
  serverMonitoredItems: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc;

interface NodeRedInternals {
  nodes: { setFlows(flow: object[], credentials: null, type: 'full'): Promise<unknown> };
}

async function measure(red: EmbeddedNodeRed, server: OpcUaBenchServer, side: Side): Promise<RunResult> {
  const RED = require('node-red') as NodeRedInternals;
  side.prepare(red.userDir, server);
  await RED.nodes.setFlows(side.flow(server, SECURITY), null, 'full');
  await waitFor(`${side.id}: the flow started`, () => {
    try {
      return red.node(side.outputId) !== undefined;
    } catch {
      return false;
    }
  });
  const node = red.node<{ send(msg: unknown): void; receive(msg: object): void }>(side.outputId);
  let messages = 0;
  let notifications = 0;
  let latestTick = 0;
  /** Notifications per tick, for the ticks of the window. */
  let byTick = new Map<number, number>();
  let recording = false;
  /** When the server set tick k: tickAt + (k − tick) × period, from the server's answer at the window start. */
  let clock = { tick: 0, tickAt: 0 };
  const delays: number[] = [];
  node.send = (msg: unknown) => {
    const delivered = side.reduce(msg);
    messages++;
    notifications += delivered.notifications;
    let newest = 0;
    for (const tick of delivered.values) {
      if (tick > newest) newest = tick;
      if (recording) byTick.set(tick, (byTick.get(tick) ?? 0) + 1);
    }
    if (newest > latestTick) latestTick = newest;
    if (recording && newest > 0 && clock.tickAt > 0) delays.push(Date.now() - (clock.tickAt + (newest - clock.tick) * PERIOD_MS));
  };
  side.afterDeploy((id, msg) => red.node<{ receive(m: object): void }>(id).receive(msg), server);
  // Every item created on the server first (a side still creating items during the window measures its start-up).
  let serverItems = 0;
  const pollItems = setInterval(() => void server.state().then((st) => { serverItems = st.monitoredItems; }), 500);
  try {
    await waitFor(`${side.id}: ${server.items} monitored items on the server`, () => serverItems >= server.items, 120_000);
  } finally {
    clearInterval(pollItems);
  }
  const started = (await server.state()).tick;
  await waitFor(`${side.id} ${server.items} items: notifications of the current tick`, () => latestTick > started + 2, 120_000);
  await sleep(SETTLE_S * 1000);
  gc?.();

  messages = 0;
  notifications = 0;
  byTick = new Map();
  // Recording first: a tick set just after the server answered may arrive before the answer is read.
  recording = true;
  clock = await server.state();
  const first = clock.tick + 1;
  let rss = process.memoryUsage.rss();
  const sampler = setInterval(() => { rss = Math.max(rss, process.memoryUsage.rss()); }, 100);
  const serverStart = processCpuSeconds(server.pid);
  const machineStart = machineBusySeconds();
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await sleep(WINDOW_S * 1000);
  const cpu = process.cpuUsage(cpuStart);
  const elapsedS = (performance.now() - start) / 1000;
  const windowMessages = messages;
  const windowNotifications = notifications;
  const windowDelays = delays.splice(0).sort((a, b) => a - b);
  const serverCpu = processCpuSeconds(server.pid) - serverStart;
  const machineBusy = machineBusySeconds() - machineStart;
  const state = await server.state();
  const last = state.tick;
  clearInterval(sampler);
  await sleep(DRAIN_MS); // late notifications of the window's ticks still count as delivered
  recording = false;
  let arrived = 0;
  for (let tick = first; tick <= last; tick++) arrived += Math.min(server.items, byTick.get(tick) ?? 0);
  const sent = server.items * (last - first + 1);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  await RED.nodes.setFlows([tab()], null, 'full');
  return {
    items: server.items, side: side.id,
    notificationsPerSec: windowNotifications / elapsedS,
    messagesPerSec: windowMessages / elapsedS,
    sent, lost: sent - arrived, lostPercent: (100 * (sent - arrived)) / sent,
    delayP50Ms: percentile(windowDelays, 50), delayP99Ms: percentile(windowDelays, 99),
    cpuCores: cpuSeconds / elapsedS,
    cpuUsPerNotification: (cpuSeconds * 1e6) / Math.max(1, windowNotifications),
    rssMB: rss / 1048576,
    serverCores: serverCpu / elapsedS,
    otherCores: Math.max(0, machineBusy - cpuSeconds - serverCpu) / elapsedS,
    serverMonitoredItems: state.monitoredItems,
  };
}

// ---------------------------------------------------------------- report

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');
const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '–');
const range = (s: Summary, fmt: (n: number) => string): string => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;

function caseTable(items: number, results: RunResult[]): string {
  const med = (runs: RunResult[], pick: (r: RunResult) => number): Summary => summarize(runs.map(pick));
  const peer = results.filter((r) => r.items === items && r.side === 'contrib');
  const lines = [
    '| side | notifications/s | messages/s | lost (of sent) | value age p50 / p99 ms | CPU, cores | CPU µs per notification | contrib ÷ uns, CPU per notification | RSS MB (max) | server monitored items | server, cores | other load, cores |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const side of SIDES) {
    const runs = results.filter((r) => r.items === items && r.side === side.id);
    const failure = failures.find((f) => f.items === items && f.side === side.id);
    if (runs.length === 0) {
      if (failure) lines.push(`| ${side.id}: ${side.label} | **failed**: ${failure.reason} |  |  |  |  |  |  |  |  |  |  |`);
      continue;
    }
    const cpu = med(runs, (r) => r.cpuUsPerNotification);
    const ratio = side.id === 'uns' && peer.length > 0 ? `${f2(med(peer, (r) => r.cpuUsPerNotification).median / cpu.median)}×` : '–';
    lines.push(`| ${side.id}: ${side.label} | ${range(med(runs, (r) => r.notificationsPerSec), f0)} | ${range(med(runs, (r) => r.messagesPerSec), f0)} | ` +
      `${f0(med(runs, (r) => r.lost).median)} of ${f0(med(runs, (r) => r.sent).median)} (${range(med(runs, (r) => r.lostPercent), f2)} %) | ` +
      `${f0(med(runs, (r) => r.delayP50Ms).median)} / ${f0(med(runs, (r) => r.delayP99Ms).median)} | ` +
      `${range(med(runs, (r) => r.cpuCores), f3)} | ${range(cpu, f1)} | ${ratio} | ${f1(med(runs, (r) => r.rssMB).median)} | ` +
      `${f0(med(runs, (r) => r.serverMonitoredItems).median)} | ${f2(med(runs, (r) => r.serverCores).median)} | ${f2(med(runs, (r) => r.otherCores).median)} |`);
  }
  return `### ${items.toLocaleString('en-US')} monitored items, all changing every ${PERIOD_MS} ms (${f0((items * 1000) / PERIOD_MS)} changes/s sent)\n\n${lines.join('\n')}`;
}

function report(results: RunResult[], nodeRedVersion: string, command: string, totalS: number): string {
  const facts = machineFacts();
  const contribVersion = (require('node-red-contrib-opcua/package.json') as { version: string }).version;
  const opcuaVersion = (require('node-opcua/package.json') as { version: string }).version;
  return `## OPC UA subscribe: uns-opcua-subscribe vs node-red-contrib-opcua

${RUNS} runs, each measuring every side once per case, order rotated, after one warm-up run; medians with (min–max).
Both sides run in **one embedded Node-RED ${nodeRedVersion} runtime**, deployed alone in turn, against the **same
node-opcua ${opcuaVersion} server in its own process** (bench/lib/opcua-bench-server.ts) whose N Double variables all change
every ${PERIOD_MS} ms to the tick number, so the server knows what it sent and every notification says which tick it belongs to.
Security ${SECURITY}${SECURITY === 'SignAndEncrypt' ? ' + Basic256Sha256' : ''}, username login. Window ${WINDOW_S} s. Whole benchmark: ${Math.round(totalS)} s.

- **contrib**: node-red-contrib-opcua ${contribVersion} \`OpcUa-Client\`, action subscribe, one message with topic \`multiple\`
  and the N NodeIds (its monitored-item group: one CreateMonitoredItems call, queue size 1); time 0 ms, i.e. sampling
  interval 0 (every change) and its fallback publishing interval of 100 ms; one message per notification.
- **uns**: \`uns-opcua-endpoint\` + \`uns-opcua-subscribe\`, N metrics, sampling interval 0, queue size 10 (its default),
  publishing interval 100 ms; one tag batch per Publish response.

Counted at each side's output \`send()\` (hooked, no wires). "lost" = items × ticks of the window − notifications of
those ticks that arrived (counting closes ${DRAIN_MS / 1000} s after the window). "value age" is, per message, how long
before its send() the server had set the newest value it carries (queueing in the server and the client included). CPU is the Node-RED process over the window
(the clients, the nodes, the counting hook), "CPU µs per notification" = CPU ÷ notifications delivered. RSS is the
process maximum in the window and carries earlier sides' heap (one process). "server monitored items" is the server's
own count at the end of the window. "server" is the server process's CPU, "other load" the rest of the machine.

${ITEM_CASES.map((items) => caseTable(items, results)).join('\n\n')}

**Command**: \`${command}\` (${new Date().toISOString().slice(0, 10)})

**Machine**: ${facts.nproc} vCPU ${facts.cpuModel}, ${facts.kernel}, Node ${facts.node}. The Node-RED process, the server process
and other engineers' tests share the cores, nothing is pinned: the ratios within one run are the figures to trust.
`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const began = performance.now();
  const red = await startNodeRed([tab()]);
  const results: RunResult[] = [];
  try {
    console.log(`Node-RED ${red.version}; sides ${SIDES.map((s) => s.id).join(', ')}; security ${SECURITY}; ${gc ? 'gc between runs' : 'no --expose-gc'}`);
    for (const items of ITEM_CASES) {
      const server = await startOpcUaBenchServer({ items, periodMs: PERIOD_MS, securityMode: SECURITY });
      try {
        /** A side that failed in this case is not run again for it (each attempt waits its full timeout). */
        const failedHere = new Set<Side['id']>();
        const attempt = async (side: Side): Promise<RunResult | undefined> => {
          if (failedHere.has(side.id)) return undefined;
          try {
            return await measure(red, server, side);
          } catch (error) {
            failedHere.add(side.id);
            failures.push({ items, side: side.id, reason: (error as Error).message });
            console.log(`${String(items).padStart(6)} items ${side.id}: FAILED: ${(error as Error).message}`);
            await (require('node-red') as NodeRedInternals).nodes.setFlows([tab()], null, 'full');
            return undefined;
          }
        };
        for (const side of SIDES) await attempt(side); // warm-up
        for (let run = 0; run < RUNS; run++) {
          const order = SIDES.map((_, i) => SIDES[(i + run) % SIDES.length]);
          for (const side of order) {
            const r = await attempt(side);
            if (!r) continue;
            results.push(r);
            console.log(`run ${run + 1} ${String(items).padStart(6)} items ${side.id.padEnd(8)} ${f0(r.notificationsPerSec).padStart(8)} notif/s ${f0(r.messagesPerSec).padStart(8)} msg/s  ` +
              `lost ${r.lost}/${r.sent} (${f2(r.lostPercent)} %)  age p50 ${f0(r.delayP50Ms)} p99 ${f0(r.delayP99Ms)} ms  cpu ${f3(r.cpuCores)} (${f1(r.cpuUsPerNotification)} µs/notif)  rss ${f1(r.rssMB)} MB  ` +
              `server items ${r.serverMonitoredItems} cpu ${f2(r.serverCores)}  other ${f2(r.otherCores)}`);
          }
        }
      } finally {
        await server.close();
      }
    }
    const command = `node --expose-gc --import tsx bench/opcua-subscribe.ts ${process.argv.slice(2).join(' ')}`.trim();
    const markdown = report(results, red.version, command, (performance.now() - began) / 1000);
    console.log('\n' + markdown);
    if (args.write) {
      if (SIDES.length < 2 || !ITEM_CASES.some((items) => SIDES.every((side) => results.some((r) => r.items === items && r.side === side.id)))) {
        throw new Error('--write needs both sides measured (contrib and uns) in at least one case: docs/benchmarks.md only takes side-by-side figures');
      }
      writeSection('opcua-subscribe', markdown);
      console.log('written to docs/benchmarks.md');
    }
  } finally {
    await red.stop();
  }
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
