/**
 * Issue 8 benchmark: uns-edge's Modbus nodes vs node-red-contrib-modbus 5.23.3 against a
 * misbehaving device (bench/lib/chaos-modbus-device.ts: exceptions, silence, late replies, wrong
 * transaction and unit ids, short, truncated and garbage frames, dropped connections, silent
 * spells), side by side in one embedded Node-RED runtime, one seeded device per seed and side.
 *
 * Each side: one link/client and two read nodes on unit 1, every 50 ms, response timeout 150 ms,
 * four holding registers each (addresses 0–3 and 4–7). Counted at each read node's send():
 *   good    a message whose four values are what the device held (bench/lib/chaos-modbus-device.ts
 *           wrongValue: consistent and at most MAX_AGE_MS old)
 *   wrong   a message that claims good values that are not (a late or mismatched reply taken as the
 *           answer, a short frame decoded as data) — the goal is 0
 *   bad     uns-edge only: a batch with bad quality (the peer sends nothing on a failed read)
 * and per side the device's request count, the log lines (info and above) of the side's nodes, and
 * crashes (uncaught exceptions or unhandled rejections in the runtime process).
 *
 * Sides: uns-edge with its link defaults except the 150 ms timeout (one request in flight), and the
 * same with the link's maxInFlight 2 and 4 (pipelining, Implementation Guide v1.0b §4.2.1: the two
 * read nodes' requests no longer wait behind each other's time-outs); the peer with the settings that
 * gave it the most good reads here (PEER_SETTINGS; --peer-settings overrides them as JSON), the same
 * with "Queue commands" off (bufferCommands false: each read goes straight to modbus-serial, which
 * matches TCP answers by transaction id, so the two reads are in flight at once: the peer's
 * equivalent of pipelining; its "UnitId's in parallel" only lets different unit ids' queues send at
 * once, and both reads here are on unit 1), and with its editor defaults.
 *
 *   npm run build
 *   node --import tsx bench/modbus-chaos.ts [--seeds 1,2,3] [--runs 1] [--seconds 20] [--write] [--peer-settings '{"reconnectOnTimeout":false}']
 */
import { EventEmitter } from 'node:events';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BEHAVIOURS, startChaosDevice, wrongValue, type ChaosStats } from './lib/chaos-modbus-device';
import { contribClient, SendCounter, unsLink } from './lib/modbus-flow';
import { startNodeRed, waitFor, type EmbeddedNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { machineFacts, summarize } from './lib/stats';

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    /** Repetitions of the whole set of seeds and sides; medians are over every (run, seed). */
    runs: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '20' },
    write: { type: 'boolean', default: false },
    'peer-settings': { type: 'string', default: '' },
    /** uns-modbus-link properties over its defaults (docs/modbus.md), as JSON. */
    'uns-settings': { type: 'string', default: '' },
    /** For trying peer settings: run one side only (no ratio then). */
    sides: { type: 'string', default: 'uns-edge,uns-edge-inflight-2,uns-edge-inflight-4,contrib,contrib-unqueued,contrib-defaults' },
  },
});
const SEEDS = args.seeds.split(',').map(Number);
const RUNS = Number(args.runs);
const SECONDS = Number(args.seconds);
if (!(SEEDS.length >= 1 && SEEDS.every(Number.isInteger) && Number.isInteger(RUNS) && RUNS >= 1 && SECONDS > 0)) {
  throw new Error('--seeds n,n,… (integers), --runs ≥ 1, --seconds > 0');
}

const INTERVAL_MS = 50;
const TIMEOUT_MS = 150;
/** A value older than this when delivered is wrong (stale), not good. */
const MAX_AGE_MS = 1000;
const BASES = [0, 4];
const TAB = 'bench-chaos';

/**
 * The peer's best settings here (beside its editor defaults): the same 150 ms timeout, its shortest
 * command delay, reconnect after 1 ms instead of 2 s, and reconnect on timeout. tried with 2 seeds
 * × 8 s: reconnectTimeout 2000 / 200 / 50 / 10 / 1 ms gave 2–3 / 19 / 46–65 / 58–82 / 64–93 good
 * reads; without reconnect on timeout it got 9–56 and delivered wrong values (it does not resync
 * its stream after a truncated frame).
 */
const PEER_SETTINGS: Record<string, unknown> = {
  clientTimeout: String(TIMEOUT_MS), commandDelay: '1', reconnectTimeout: '1', reconnectOnTimeout: true,
  ...(args['peer-settings'] ? JSON.parse(args['peer-settings']) as Record<string, unknown> : {}),
};
/** The best settings with "Queue commands" off: both reads in flight at once. */
const PEER_UNQUEUED: Record<string, unknown> = { ...PEER_SETTINGS, bufferCommands: false };
/** The peer as a user leaves it: its editor defaults with the same 150 ms timeout. */
const PEER_DEFAULTS: Record<string, unknown> = { clientTimeout: String(TIMEOUT_MS) };

const UNS_SETTINGS: Record<string, unknown> = args['uns-settings'] ? JSON.parse(args['uns-settings']) as Record<string, unknown> : {};

type UnsSideId = 'uns-edge' | 'uns-edge-inflight-2' | 'uns-edge-inflight-4';
type PeerSideId = 'contrib' | 'contrib-unqueued' | 'contrib-defaults';

interface Side {
  id: UnsSideId | PeerSideId;
  label: string;
  flow(port: number): object[];
  readIds: string[];
  /** The node types whose log lines are counted. */
  logTypes: RegExp;
  /** Four register values of a good message, {bad: reason} for a failed read the node reports, or a problem. */
  values(msg: unknown): number[] | { bad: string } | string;
}

const tab = (): object => ({ id: TAB, type: 'tab', label: 'modbus chaos bench' });
const registerMetrics = (base: number) => Array.from({ length: 4 }, (_, i) => ({ name: `r${i}`, table: 'holding', address: base + i, type: 'uint16' }));

function contribSide(id: Side['id'], label: string, settings: Record<string, unknown>): Side {
  return {
    id, label,
    flow: (port) => [tab(), contribClient('contrib-client', port, settings),
      ...BASES.map((base, i) => ({
        id: `contrib-read-${i}`, type: 'modbus-read', z: TAB, name: `read ${base}`, topic: '', showStatusActivities: false, logIOActivities: false,
        showErrors: false, unitid: '1', dataType: 'HoldingRegister', adr: String(base), quantity: '4', rate: String(INTERVAL_MS), rateUnit: 'ms',
        delayOnStart: false, startDelayTime: '', server: 'contrib-client', useIOFile: false, ioFile: '', useIOForPayload: false, emptyMsgOnFail: false,
        x: 200, y: 40 + 40 * i, wires: [[], []],
      }))],
    readIds: BASES.map((_, i) => `contrib-read-${i}`),
    logTypes: /^modbus-/,
    values(msg) {
      const values = (msg as Array<{ payload?: unknown }> | undefined)?.[0]?.payload;
      return Array.isArray(values) ? values as number[] : `payload ${JSON.stringify(values)}`;
    },
  };
}

function unsSide(id: UnsSideId, label: string, linkSettings: Record<string, unknown>): Side {
  const link = `${id}-link`;
  return {
    id, label,
    flow: (port) => [tab(), { ...unsLink({ id: link, port, timeoutMs: TIMEOUT_MS, reconnectMs: 1000 }), ...UNS_SETTINGS, ...linkSettings },
      ...BASES.map((base, i) => ({
        id: `${id}-read-${i}`, type: 'uns-modbus-read', z: TAB, name: `read ${base}`, link, unitId: 1, interval: INTERVAL_MS,
        topic: 'bench/site/area/line/cell/chaos', mergeGap: 8, metrics: registerMetrics(base), x: 200, y: 40 + 40 * i, wires: [],
      }))],
    readIds: BASES.map((_, i) => `${id}-read-${i}`),
    logTypes: /^uns-modbus-/,
    values(msg) {
      const batch = msg as { payload: Record<string, unknown>; meta?: Record<string, { quality?: string; reason?: string }> };
      const qualities = ['r0', 'r1', 'r2', 'r3'].map((name) => batch.meta?.[name]?.quality);
      if (qualities.every((q) => q === 'bad')) return { bad: batch.meta?.r0?.reason ?? '' };
      if (!qualities.every((q) => q === 'good')) return `mixed quality ${JSON.stringify(qualities)}`;
      return ['r0', 'r1', 'r2', 'r3'].map((name) => batch.payload[name] as number);
    },
  };
}

const SIDES: Side[] = [
  unsSide('uns-edge', 'uns-modbus-link + 2 × uns-modbus-read (link defaults: 1 request in flight; timeout 150 ms)', {}),
  unsSide('uns-edge-inflight-2', 'the same, link maxInFlight 2', { maxInFlight: 2 }),
  unsSide('uns-edge-inflight-4', 'the same, link maxInFlight 4', { maxInFlight: 4 }),
  contribSide('contrib', `node-red-contrib-modbus 5.23.3, best settings found (queued)`, PEER_SETTINGS),
  contribSide('contrib-unqueued', 'node-red-contrib-modbus 5.23.3, best settings, "Queue commands" off (2 in flight)', PEER_UNQUEUED),
  contribSide('contrib-defaults', 'node-red-contrib-modbus 5.23.3, editor defaults + 150 ms timeout', PEER_DEFAULTS),
];

interface RunResult {
  run: number;
  seed: number;
  side: Side['id'];
  good: number;
  wrong: number;
  bad: number;
  /** Bad-quality batches by the reason's kind (uns-edge): timeout, exception, connection lost, … */
  badReasons: Record<string, number>;
  crashes: number;
  logLines: number;
  requests: number;
  device: ChaosStats;
  examples: string[];
  /** The machine's 1-minute load average when the side's run ended. */
  loadAverage: number;
}

interface NodeRedInternals {
  nodes: { setFlows(flow: object[], credentials: null, type: 'full'): Promise<unknown> };
  log: { addHandler(handler: EventEmitter): void; removeHandler(handler: EventEmitter): void };
}

let crashes = 0;
process.on('uncaughtException', (error) => {
  crashes++;
  console.error(`uncaught exception: ${error.stack ?? error.message}`);
});
process.on('unhandledRejection', (reason) => {
  crashes++;
  console.error(`unhandled rejection: ${String(reason)}`);
});

/** The kind of a bad-quality reason (lib/modbus/poller.ts describeReadError texts). */
function reasonKind(reason: string): string {
  if (/^Modbus exception/.test(reason)) return 'exception';
  if (/^no response from unit/.test(reason)) return 'timeout';
  if (/^connection lost/.test(reason)) return 'connection lost';
  if (/^not connected/.test(reason)) return 'not connected';
  if (/^malformed response/.test(reason)) return 'malformed';
  if (/suspended/.test(reason)) return 'unit suspended';
  return reason.slice(0, 40);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(red: EmbeddedNodeRed, side: Side, runIndex: number, seed: number): Promise<RunResult> {
  const RED = require('node-red') as NodeRedInternals;
  const epoch = Date.now();
  const device = await startChaosDevice({ seed, epoch });
  let logLines = 0;
  const logHandler = new EventEmitter();
  logHandler.on('log', (msg: { level: number; type?: string }) => {
    if (msg.level <= 40 && side.logTypes.test(msg.type ?? '')) logLines++;
  });
  RED.log.addHandler(logHandler);
  const crashesBefore = crashes;
  const result: RunResult = { run: runIndex, seed, side: side.id, good: 0, wrong: 0, bad: 0, badReasons: {}, crashes: 0, logLines: 0, requests: 0, device: undefined as never, examples: [], loadAverage: 0 };
  try {
    await RED.nodes.setFlows(side.flow(device.port), null, 'full');
    const exists = (id: string): boolean => {
      try {
        return red.node(id) !== undefined;
      } catch {
        return false;
      }
    };
    await waitFor(`${side.id}: the flow started`, () => side.readIds.every(exists));
    side.readIds.forEach((id, i) => {
      new SendCounter(red, id, (msg) => {
        const values = side.values(msg);
        if (typeof values === 'object' && !Array.isArray(values)) {
          result.bad++;
          const kind = reasonKind(values.bad);
          result.badReasons[kind] = (result.badReasons[kind] ?? 0) + 1;
          return;
        }
        const problem = typeof values === 'string' ? values : wrongValue(epoch, Date.now(), BASES[i], values, MAX_AGE_MS);
        if (problem === undefined) result.good++;
        else {
          result.wrong++;
          if (result.examples.length < 3) result.examples.push(problem);
        }
      });
    });
    await sleep(SECONDS * 1000);
    result.device = await device.stats();
    result.requests = result.device.requests;
    result.loadAverage = loadavg()[0];
    await RED.nodes.setFlows([tab()], null, 'full');
  } finally {
    RED.log.removeHandler(logHandler);
    await device.close();
  }
  result.logLines = logLines;
  result.crashes = crashes - crashesBefore;
  return result;
}

// ---------------------------------------------------------------- report

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const range = (values: number[], digits = 0): string => {
  const s = summarize(values);
  const f = (n: number) => n.toFixed(digits);
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
};

const isUns = (id: Side['id']): id is UnsSideId => id.startsWith('uns-edge');

function report(results: RunResult[], version: string, command: string, wallS: number): string {
  const facts = machineFacts();
  const of = (side: Side['id']) => results.filter((r) => r.side === side);
  const samples = [...new Set(results.map((r) => `${r.run}/${r.seed}`))].map((key) => key.split('/').map(Number));
  const good = (run: number, seed: number, side: Side['id']) => results.find((r) => r.run === run && r.seed === seed && r.side === side)!.good;
  /** The peer tuned: per (run, seed) the more good reads of its two tuned settings. */
  const tunedPeer = (run: number, seed: number) => Math.max(good(run, seed, 'contrib'), good(run, seed, 'contrib-unqueued'));
  const ratios = (uns: UnsSideId, peer: PeerSideId | 'tuned') => samples.map(([run, seed]) =>
    good(run, seed, uns) / Math.max(1, peer === 'tuned' ? tunedPeer(run, seed) : good(run, seed, peer)));
  const sum = (side: Side['id'], key: 'wrong' | 'crashes') => of(side).reduce((a, r) => a + r[key], 0);
  const unsSides = SIDES.filter((side) => isUns(side.id));
  const peerSides = SIDES.filter((side) => !isUns(side.id));
  const lines: string[] = [];
  lines.push('## Modbus chaos: uns-edge vs node-red-contrib-modbus against a misbehaving device');
  lines.push('');
  lines.push(`Measured ${new Date().toISOString().slice(0, 10)} with \`${command}\` (${f1(wallS)} s wall). Node-RED ${version}, ` +
    `Node ${facts.node}, ${facts.nproc} vCPU ${facts.cpuModel}, ${facts.kernel}; 1-min load average at the end of each side's run ` +
    `${range(results.map((r) => r.loadAverage), 1)}. ${RUNS} run${RUNS > 1 ? 's' : ''} × ${SEEDS.length} seeds × ${SECONDS} s per side, ` +
    'every side in one embedded runtime, one after the other (the order rotates per seed); a fresh device per run, seed and side (its own process). ' +
    `Medians and ranges below are over the ${samples.length} (run, seed) samples.`);
  lines.push('');
  lines.push(`Each side: one link/client, two read nodes on unit 1 every ${INTERVAL_MS} ms, timeout ${TIMEOUT_MS} ms, 4 holding registers each ` +
    `(so at most ${2 * (1000 / INTERVAL_MS) * SECONDS} reads in ${SECONDS} s). The device (\`bench/lib/chaos-modbus-device.ts\`) draws a behaviour per request from a seeded PRNG: ` +
    BEHAVIOURS.map(([name, p]) => `${name} ${Math.round(p * 100)} %`).join(', ') + ', and silent spells of 0.5–1.5 s after 1 % of requests; ' +
    'a connection\'s answers leave in request order (a late answer holds back those behind it), a wrong-id answer duplicates an id already answered. ' +
    `A good read carries the device's true values (consistent, at most ${MAX_AGE_MS} ms old); a wrong one claims good values that are not; every late or mismatched reply carries values the check rejects.`);
  lines.push('');
  lines.push(`Peer, best settings found: \`${JSON.stringify(PEER_SETTINGS)}\`, and the same with "Queue commands" off (\`bufferCommands: false\`); ` +
    `defaults: \`${JSON.stringify(PEER_DEFAULTS)}\` (over its editor defaults). ` +
    `uns-edge: link defaults${Object.keys(UNS_SETTINGS).length ? ` and \`${JSON.stringify(UNS_SETTINGS)}\`` : ''} (breaker 3 timeouts / 5 s, only with another unit on the link; ` +
    'reconnect at once, then 1 s doubling to 5 s), with maxInFlight 1 (default), 2 and 4.');
  lines.push('');
  const best = unsSides.map((side) => side.id as UnsSideId).sort((x, y) => summarize(ratios(y, 'tuned')).median - summarize(ratios(x, 'tuned')).median)[0];
  lines.push(`**Good reads ÷ the tuned peer (per sample the better of its two tuned settings): uns-edge with link defaults ${range(ratios('uns-edge', 'tuned'), 2)}×, ` +
    `best uns-edge side (${best}) ${range(ratios(best, 'tuned'), 2)}×; ÷ the peer with its defaults: ${range(ratios('uns-edge', 'contrib-defaults'), 1)}× and ` +
    `${range(ratios(best, 'contrib-defaults'), 1)}×** (goal ≥ 3×). Wrong values: ` +
    SIDES.map((side) => `${side.id} ${sum(side.id, 'wrong')}`).join(', ') + '. Crashes: ' + SIDES.map((side) => `${side.id} ${sum(side.id, 'crashes')}`).join(', ') + '.');
  lines.push('');
  lines.push('| uns-edge side | ÷ tuned peer (better of two) | ÷ peer best settings, queued | ÷ peer best settings, unqueued | ÷ peer defaults |');
  lines.push('|---|---|---|---|---|');
  for (const side of unsSides) {
    const id = side.id as UnsSideId;
    lines.push(`| ${id} | ${range(ratios(id, 'tuned'), 2)} | ${range(ratios(id, 'contrib'), 2)} | ${range(ratios(id, 'contrib-unqueued'), 2)} | ${range(ratios(id, 'contrib-defaults'), 1)} |`);
  }
  lines.push('');
  lines.push('| side | good reads (median, min–max) | wrong values | bad-quality batches | requests the device saw | connections | log lines (info+) | crashes |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const side of [...unsSides, ...peerSides]) {
    const r = of(side.id);
    lines.push(`| ${side.label} | ${range(r.map((x) => x.good))} | ${range(r.map((x) => x.wrong))} | ${isUns(side.id) ? range(r.map((x) => x.bad)) : 'n/a (sends nothing)'} | ` +
      `${range(r.map((x) => x.requests))} | ${range(r.map((x) => x.device.connections))} | ${range(r.map((x) => x.logLines))} | ${r.reduce((a, x) => a + x.crashes, 0)} |`);
  }
  lines.push('');
  lines.push('| run | seed | side | good | wrong | bad | requests | honest answers drawn | connections | log lines | load avg |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(`| ${r.run} | ${r.seed} | ${r.side} | ${r.good} | ${r.wrong} | ${r.bad} | ${r.requests} | ${r.device.behaviours.honest} | ${r.device.connections} | ${r.logLines} | ${f1(r.loadAverage)} |`);
  }
  lines.push('');
  for (const side of unsSides) {
    const reasons: Record<string, number> = {};
    for (const r of of(side.id)) for (const [kind, n] of Object.entries(r.badReasons)) reasons[kind] = (reasons[kind] ?? 0) + n;
    lines.push(`${side.id}'s bad-quality batches by reason, all samples: ${Object.entries(reasons).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}.  `);
  }
  lines.push('("unit suspended" would be the breaker; "not connected" are polls during a back-off after a connection that died before the device sent anything.)');
  const examples = results.flatMap((r) => r.examples.map((e) => `${r.side} run ${r.run} seed ${r.seed}: ${e}`));
  if (examples.length) {
    lines.push('');
    lines.push('Wrong values seen (first few): ' + examples.slice(0, 10).map((e) => `\`${e}\``).join('; '));
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const began = performance.now();
  const red = await startNodeRed([tab()]);
  const results: RunResult[] = [];
  try {
    const chosen = SIDES.filter((s) => args.sides.split(',').includes(s.id));
    for (let runIndex = 1; runIndex <= RUNS; runIndex++) {
      for (const [i, seed] of SEEDS.entries()) {
        const order = chosen.map((_, k) => chosen[(k + i + runIndex - 1) % chosen.length]);
        for (const side of order) {
          const r = await run(red, side, runIndex, seed);
          results.push(r);
          console.log(`run ${runIndex} seed ${seed} ${side.id.padEnd(20)} good ${String(r.good).padStart(4)}  wrong ${r.wrong}  bad ${r.bad} ${JSON.stringify(r.badReasons)}  requests ${r.requests}  ` +
            `connections ${r.device.connections}  log lines ${r.logLines}  crashes ${r.crashes}  load ${f1(r.loadAverage)}${r.examples.length ? `  e.g. ${r.examples[0]}` : ''}`);
        }
      }
    }
    if (chosen.length < SIDES.length) return; // a side was left out: no ratios
    const command = `node --import tsx bench/modbus-chaos.ts ${process.argv.slice(2).join(' ')}`.trim();
    const markdown = report(results, red.version, command, (performance.now() - began) / 1000);
    console.log('\n' + markdown);
    if (args.write) {
      writeSection('modbus-chaos', markdown);
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
