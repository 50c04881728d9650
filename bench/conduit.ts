/**
 * Issue 10 benchmark: what a uns-conduit costs, side by side with the same flow without one, in one
 * Node-RED runtime (node-red-node-test-helper, the TypeScript sources) and one run.
 *
 *   decisions/s   the evaluator alone (Conduit.decide) on a 50-rule policy, one core, a write that
 *                 matches the LAST rule (49 rules scanned before it: the worst case of first-match)
 *   latency       per message: receive() at the first node → arrival at the sink, one message in
 *                 flight at a time, for  A  function → conduit (50 rules, audit on) → sink
 *                                         B  function → sink  (the same flow without the conduit)
 *                 added latency = A − B per percentile; A and B alternate in blocks of 1,000
 *
 * Every message through A is checked to pass (a broken conduit that drops everything cannot look
 * fast). Medians of --runs (default 5) runs, min–max beside them.
 *
 *   npx tsx bench/conduit.ts [--runs 5] [--decisions 500000] [--messages 20000] [--write]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Conduit } from '../lib/zones/conduit';
import { parsePolicy } from '../lib/zones/policy';
import { AuditLog } from '../lib/zones/audit-log';
import { ConduitController } from '../lib/zones/controller';
import { writeSection } from './lib/results-doc';
import { machineFacts, summarize, type Summary } from './lib/stats';
import zonesNodes = require('../nodes/zones/zones');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, decisions: { type: 'string', default: '500000' }, messages: { type: 'string', default: '20000' }, write: { type: 'boolean', default: false } },
});
const RUNS = Number(args.runs);
const DECISIONS = Number(args.decisions);
const MESSAGES = Number(args.messages);
const BLOCK = 1_000;

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const PRINCIPAL = { via: 'mqtt', id: 'mqtt:mes-01 (user mes)', clientId: 'mes-01', user: 'mes' };

/** 49 rules that do not match the benchmark's message (other senders, assets, metrics) and the one that does, last. */
function fiftyRulePolicy() {
  const rules: unknown[] = [];
  for (let i = 0; i < 49; i++) {
    rules.push({
      id: `other-${i}`, operation: ['write'], principal: { id: [`mqtt:hmi-${i}*`] }, asset: [`acme/plant1/area${i}/#`], metric: [`Speed*`, `Motor/${i}/+`],
      value: { type: 'number', min: 0, max: 1000 + i }, rate: { count: 100, perSeconds: 1, per: 'principal' }, action: i % 7 === 0 ? 'deny' : 'allow',
    });
  }
  rules.push({
    id: 'mes-setpoint', operation: ['write'], principal: { id: ['mqtt:mes-01*'] }, asset: ['acme/plant1/press/#'], metric: ['speedSetpoint'],
    value: { type: 'number', min: 0, max: 1500, maxStep: 1500 }, rate: { count: 1e9, perSeconds: 1, per: 'principal' }, action: 'allow',
  });
  return { timeZone: 'Europe/Berlin', rules };
}

/** Time of one audited decision (ConduitController.decide: evaluator + audit aggregation), µs p50/p99. */
function decisionLatency(auditDir: string): { p50: number; p99: number } {
  const audit = new AuditLog({ dir: auditDir });
  const controller = new ConduitController(parsePolicy(fiftyRulePolicy()), { name: 'bench', audit, source: { name: 'it', level: 4 }, destination: { name: 'ot', level: 1 } });
  const times: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const msg = { topic: ASSET, payload: { speedSetpoint: i % 1500 }, principal: PRINCIPAL };
    const t = performance.now();
    const decision = controller.decide(msg);
    times.push(performance.now() - t);
    if (decision.result !== 'allow') throw new Error(`benchmark message denied: ${decision.reason}`);
  }
  audit.close();
  const measured = times.slice(20_000).sort((x, y) => x - y);
  return { p50: percentile(measured, 0.5) * 1000, p99: percentile(measured, 0.99) * 1000 };
}

function decisionsPerSecond(): number {
  const conduit = new Conduit(parsePolicy(fiftyRulePolicy()), { source: { name: 'it', level: 4 }, destination: { name: 'ot', level: 1 } });
  const msg: Record<string, unknown> = { topic: ASSET, payload: {}, principal: PRINCIPAL };
  let allowed = 0;
  for (let i = 0; i < 20_000; i++) { msg.payload = { speedSetpoint: i % 1500 }; conduit.decide(msg); } // warm-up
  const start = performance.now();
  for (let i = 0; i < DECISIONS; i++) {
    msg.payload = { speedSetpoint: i % 1500 };
    if (conduit.decide(msg).result === 'allow') allowed++;
  }
  const seconds = (performance.now() - start) / 1000;
  if (allowed !== DECISIONS) throw new Error(`only ${allowed} of ${DECISIONS} decisions allowed: the benchmark message must pass`);
  return DECISIONS / seconds;
}

// ---------------------------------------------------------------- the flow

interface TestHelper {
  init(nodeRedPath: string): void;
  startServer(done: () => void): void;
  stopServer(done: () => void): void;
  load(nodes: unknown, flow: object[]): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): { receive(msg: object): void; on(event: string, fn: (msg: any) => void): void };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function latencyRun(auditDir: string): Promise<{ a: { p50: number; p99: number }; b: { p50: number; p99: number } }> {
  const func = 'msg.payload = { speedSetpoint: msg.n % 1500 }; return msg;';
  await helper.load([zonesNodes, functionNode], [
    { id: 'it', type: 'uns-zone', name: 'enterprise', level: '4' },
    { id: 'ot', type: 'uns-zone', name: 'ot-cell-1', level: '1' },
    { id: 'fa', type: 'function', func, outputs: 1, wires: [['c']], x: 100, y: 100, z: 'f1' },
    { id: 'c', type: 'uns-conduit', name: 'bench', sourceZone: 'it', destinationZone: 'ot', policy: JSON.stringify(fiftyRulePolicy()), auditDir, wires: [['sa'], ['denied']], x: 200, y: 100, z: 'f1' },
    { id: 'sa', type: 'helper', z: 'f1' },
    { id: 'denied', type: 'helper', z: 'f1' },
    { id: 'fb', type: 'function', func, outputs: 1, wires: [['sb']], x: 100, y: 200, z: 'f1' },
    { id: 'sb', type: 'helper', z: 'f1' },
    { id: 'f1', type: 'tab' },
  ]);
  let resolve: (() => void) | undefined;
  let t0 = 0;
  let last = 0;
  const arrived = () => { last = performance.now() - t0; resolve?.(); };
  helper.getNode('sa').on('input', arrived);
  helper.getNode('sb').on('input', arrived);
  helper.getNode('denied').on('input', (msg) => { throw new Error(`benchmark message denied: ${JSON.stringify(msg.payload)}`); });
  const send = (id: string, n: number) => new Promise<number>((done) => {
    resolve = () => done(last);
    t0 = performance.now();
    helper.getNode(id).receive({ topic: ASSET, principal: PRINCIPAL, n });
  });
  const a: number[] = [];
  const b: number[] = [];
  for (let n = 0; n < 2_000; n++) await send(n % 2 ? 'fa' : 'fb', n); // warm-up
  for (let block = 0; block < MESSAGES / BLOCK; block++) {
    for (let i = 0; i < BLOCK; i++) a.push(await send('fa', block * BLOCK + i));
    for (let i = 0; i < BLOCK; i++) b.push(await send('fb', block * BLOCK + i));
  }
  await helper.unload();
  a.sort((x, y) => x - y);
  b.sort((x, y) => x - y);
  return { a: { p50: percentile(a, 0.5), p99: percentile(a, 0.99) }, b: { p50: percentile(b, 0.5), p99: percentile(b, 0.99) } };
}

const fmt = (s: Summary, digits = 1) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

async function main(): Promise<void> {
  await new Promise<void>((done) => helper.startServer(done));
  const rates: number[] = [];
  const cols: Record<'aP50' | 'aP99' | 'bP50' | 'bP99' | 'addP50' | 'addP99' | 'dP50' | 'dP99', number[]> = { aP50: [], aP99: [], bP50: [], bP99: [], addP50: [], addP99: [], dP50: [], dP99: [] };
  for (let run = 1; run <= RUNS; run++) {
    const dir = mkdtempSync(join(tmpdir(), 'uns-bench-conduit-'));
    try {
      const rate = decisionsPerSecond();
      const decision = decisionLatency(join(dir, 'direct'));
      cols.dP50.push(decision.p50); cols.dP99.push(decision.p99);
      const { a, b } = await latencyRun(join(dir, 'flow'));
      rates.push(rate);
      const us = (ms: number) => ms * 1000;
      cols.aP50.push(us(a.p50)); cols.aP99.push(us(a.p99)); cols.bP50.push(us(b.p50)); cols.bP99.push(us(b.p99));
      cols.addP50.push(us(a.p50 - b.p50)); cols.addP99.push(us(a.p99 - b.p99));
      console.log(`run ${run}: ${Math.round(rate).toLocaleString('en')} decisions/s; one decision p50 ${decision.p50.toFixed(2)} p99 ${decision.p99.toFixed(2)} µs; flow p50 ${us(a.p50).toFixed(1)} vs ${us(b.p50).toFixed(1)} µs, p99 ${us(a.p99).toFixed(1)} vs ${us(b.p99).toFixed(1)} µs`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  await new Promise<void>((done) => helper.stopServer(done));
  const facts = machineFacts();
  const s = (v: number[]) => summarize(v);
  const rate = s(rates.map((r) => r / 1000));
  const markdown = `## Conduit: uns-conduit, 50-rule policy, vs the same flow without it

\`npx tsx bench/conduit.ts --runs ${RUNS} --decisions ${DECISIONS} --messages ${MESSAGES} --write\` — ${facts.nproc} cores (${facts.cpuModel}), Node ${facts.node}, ${facts.kernel}.
Medians of ${RUNS} runs (min–max). The benchmark message is a write from \`mqtt:mes-01\` allowed by the **last** of 50 rules
(49 non-matching rules with principal, asset, metric, bounds and per-principal rates before it); the conduit audits
every decision (aggregated: one record per key per second) to a real folder.

| measure | with uns-conduit | without (same flow) | added |
|---|---|---|---|
| evaluator decisions/s, one core (thousands) | ${fmt(rate, 0)} | — | — |
| one audited decision (evaluator + audit), p50 µs | ${fmt(s(cols.dP50), 2)} | — | ${fmt(s(cols.dP50), 2)} |
| one audited decision (evaluator + audit), p99 µs | ${fmt(s(cols.dP99), 2)} | — | ${fmt(s(cols.dP99), 2)} |
| flow latency p50 per message, µs | ${fmt(s(cols.aP50))} | ${fmt(s(cols.bP50))} | ${fmt(s(cols.addP50))} |
| flow latency p99 per message, µs | ${fmt(s(cols.aP99))} | ${fmt(s(cols.bP99))} | ${fmt(s(cols.addP99))} |

Machine load average when the results were written: ${loadavg()[0].toFixed(1)} on ${facts.nproc} cores (other work was running; the flow rows are the most affected).
Flow latency is from \`receive()\` at a function node to arrival at the sink, one message in flight, A and B alternating in
blocks of 1,000 (${MESSAGES} messages each per run). The added latency includes one more Node-RED hop (the conduit is a node):
Node-RED delivers each hop on a later turn of the event loop. Goals (issue 10): ≥ 200k decisions/s per core, ≤ 20 µs added p99.
`;
  console.log(markdown);
  if (args.write) writeSection('conduit', markdown);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
