/**
 * Issue 11 benchmark: uns-opcua-server (lib/opcua/server-runtime.ts) serving N variables to C
 * subscribed OPC UA clients (node-opcua, SignAndEncrypt Basic256Sha256, user login) in another
 * process. Two sides in every run, same server, same security, same clients:
 *
 *   uns   tag batches of 100 metrics (one asset each) validated (tagBatchProblems, as the node does)
 *         and applied through UnsAddressSpace.apply — what the node does per message;
 *   bare  the same values written straight into node-opcua variables (setValueFromSource), no tag
 *         batch layer: the floor node-opcua itself sets.
 *
 * Per side and run: (1) 1 Hz — every variable updates once a second for the window (the issue's
 * capacity case: 10,000 variables at 1 Hz, 5 clients): latency from the update call to the data
 * change at a client (each value is the epoch time of its update, read against the same clock),
 * p50/p99 over every notification of every client, notifications lost, server CPU; (2) saturation
 * — updates as fast as the server's event loop allows for the window: updates/s applied and
 * notifications/s the clients received. Medians of the runs (min–max).
 *
 *   node --import tsx bench/opcua-server.ts [--runs 5] [--variables 1000,10000] [--clients 5] [--window 10] [--write]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type * as NodeOpcua from 'node-opcua';
import { opcua } from '../lib/opcua/load';
import { applicationPki } from '../lib/opcua/pki';
import { emptyModel } from '../lib/opcua/server-model';
import { UnsOpcUaServer } from '../lib/opcua/server-runtime';
import type { TagBatch } from '../lib/uns/tag-batch';
import { tagBatchProblems } from '../lib/uns/validate';
import { writeSection } from './lib/results-doc';
import { LoadMeter, machineFacts, processCpuSeconds, summarize, type Summary } from './lib/stats';

const METRICS_PER_ASSET = 100;
const epochNow = (): number => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------ client process
interface ClientStart { url: string; serverDer: string; clients: number; variables: number; namespace: number }
interface ClientReport { latencies: number[]; count: number }

async function clientMain(): Promise<void> {
  const o = opcua();
  const pki = await applicationPki(join(mkdtempSync(join(tmpdir(), 'uns-bench-cli-')), 'pki'));
  process.send!({ kind: 'der', der: pki.ownCertificate().der.toString('base64') });
  const start = await new Promise<ClientStart>((resolve) => process.once('message', (m) => resolve(m as ClientStart)));
  await pki.certificateManager.trustCertificate(Buffer.from(start.serverDer, 'base64'));
  let recording = false;
  let latencies: number[] = [];
  let count = 0;
  const sessions: { client: NodeOpcua.OPCUAClient; session: NodeOpcua.ClientSession }[] = [];
  for (let c = 0; c < start.clients; c++) {
    const client = o.OPCUAClient.create({
      applicationName: `bench-${c}`, applicationUri: pki.applicationUri, clientCertificateManager: pki.certificateManager,
      certificateFile: pki.certificateFile, privateKeyFile: pki.privateKeyFile,
      securityMode: o.MessageSecurityMode.SignAndEncrypt, securityPolicy: o.SecurityPolicy.Basic256Sha256,
      endpointMustExist: false, connectionStrategy: { maxRetry: 0 }, defaultTransactionTimeout: 60_000,
    });
    await client.connect(start.url);
    const session = await client.createSession({ type: o.UserTokenType.UserName, userName: 'bench', password: 'bench-secret' });
    const subscription = await session.createSubscription2({ requestedPublishingInterval: 100, publishingEnabled: true, maxNotificationsPerPublish: 0, requestedMaxKeepAliveCount: 20, requestedLifetimeCount: 600 });
    const items = Array.from({ length: start.variables }, (_, i) => ({ nodeId: `ns=${start.namespace};s=${nodeName(i)}`, attributeId: o.AttributeIds.Value }));
    const group = await subscription.monitorItems(items, { samplingInterval: 0, queueSize: 1, discardOldest: true }, o.TimestampsToReturn.Neither);
    group.on('changed', (_item: unknown, dataValue: NodeOpcua.DataValue) => {
      if (!recording) return;
      const sent = dataValue.value.value as number;
      if (typeof sent !== 'number') return;
      count++;
      latencies.push(epochNow() - sent);
    });
    sessions.push({ client, session });
  }
  process.send!({ kind: 'ready' });
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'record') {
      recording = true;
      latencies = [];
      count = 0;
    } else if (m.kind === 'report') {
      recording = false;
      process.send!({ kind: 'report', latencies, count } as ClientReport & { kind: string });
    } else if (m.kind === 'stop') {
      void Promise.all(sessions.map(async (s) => { await s.session.close().catch(() => undefined); await s.client.disconnect(); })).then(() => process.exit(0));
    }
  });
}

/** Variable i: asset (i / 100), metric (i % 100); the same NodeId text on both sides. */
function nodeName(i: number): string {
  return `bench/site/area/line/cell/a${Math.floor(i / METRICS_PER_ASSET)}#m${i % METRICS_PER_ASSET}`;
}

// ------------------------------------------------------------------ server side
type SideId = 'uns' | 'bare';
interface RunResult { p50: number; p99: number; lostPct: number; cpuPct: number; satUpdates: number; satPerCpuSecond: number; satNotifications: number }

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
}

async function run(side: SideId, variables: number, clients: number, windowS: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'uns-bench-srv-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = new UnsOpcUaServer({
    id: 'bench', port, host: '127.0.0.1', hostname: 'localhost', pkiFolder: join(dir, 'pki'), userPkiFolder: join(dir, 'user-pki'),
    users: [{ kind: 'password', name: 'bench', password: 'bench-secret', role: 'read' }], model: emptyModel(),
    maxSessions: clients + 5, maxConnections: clients + 5, maxVariables: variables + 10,
  });
  await server.start();
  const o = opcua();
  const assets = Math.ceil(variables / METRICS_PER_ASSET);
  const batchOf = (asset: number, value: number): TagBatch => {
    const payload: Record<string, number> = {};
    for (let m = 0; m < METRICS_PER_ASSET && asset * METRICS_PER_ASSET + m < variables; m++) payload[`m${m}`] = value;
    return { topic: `bench/site/area/line/cell/a${asset}`, payload };
  };
  // Both sides: the same variables (Double), made by the tag batch layer once.
  for (let a = 0; a < assets; a++) server.apply(batchOf(a, 0));
  const space = server.addressSpace!;
  const bareVariables: NodeOpcua.UAVariable[] = [];
  for (let i = 0; i < variables; i++) bareVariables.push(space.metric(`bench/site/area/line/cell/a${Math.floor(i / METRICS_PER_ASSET)}`, `m${i % METRICS_PER_ASSET}`)!.variable);
  const good = o.StatusCodes.Good;
  const update = side === 'uns'
    ? (asset: number) => {
      const batch = batchOf(asset, epochNow());
      if (tagBatchProblems(batch).length) throw new Error('bench batch invalid');
      server.apply(batch);
    }
    : (asset: number) => {
      const value = epochNow();
      const now = new Date();
      const end = Math.min(variables, (asset + 1) * METRICS_PER_ASSET);
      for (let i = asset * METRICS_PER_ASSET; i < end; i++) bareVariables[i].setValueFromSource({ dataType: o.DataType.Double, value }, good, now);
    };

  const child: ChildProcess = fork(__filename, ['--client'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = (kind: string) => new Promise<Record<string, unknown>>((resolve) => {
    const on = (m: Record<string, unknown>) => { if (m.kind === kind) { child.off('message', on); resolve(m); } };
    child.on('message', on);
  });
  const der = await next('der');
  await server.applicationPki!.certificateManager.trustCertificate(Buffer.from(der.der as string, 'base64'));
  child.send({ url: `opc.tcp://localhost:${port}`, serverDer: server.applicationPki!.ownCertificate().der.toString('base64'), clients, variables, namespace: space.namespace.index } satisfies ClientStart);
  await next('ready');

  // (1) 1 Hz: every 100 ms a tenth of the assets, so each variable changes once per second.
  const slices = 10;
  let tick = 0;
  let sent = 0;
  const oneHz = setInterval(() => {
    const slice = tick++ % slices;
    for (let a = slice; a < assets; a += slices) {
      update(a);
      sent += Math.min(METRICS_PER_ASSET, variables - a * METRICS_PER_ASSET);
    }
  }, 1000 / slices);
  await new Promise((r) => setTimeout(r, 2000)); // settle
  child.send({ kind: 'record' });
  sent = 0;
  const cpu0 = processCpuSeconds(process.pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const cpu1 = processCpuSeconds(process.pid);
  const elapsed = (performance.now() - t0) / 1000;
  const sentInWindow = sent;
  clearInterval(oneHz);
  await new Promise((r) => setTimeout(r, 1000)); // the last notifications of the window
  child.send({ kind: 'report' });
  const report = await next('report') as unknown as ClientReport;
  const sorted = Float64Array.from(report.latencies).sort();
  const expected = sentInWindow * clients;

  // (2) saturation: updates back to back, yielding to I/O between assets.
  child.send({ kind: 'record' });
  const satCpu0 = processCpuSeconds(process.pid);
  let satUpdates = 0;
  const satEnd = performance.now() + windowS * 1000;
  let asset = 0;
  await new Promise<void>((resolve) => {
    const step = () => {
      if (performance.now() >= satEnd) return resolve();
      update(asset);
      satUpdates += Math.min(METRICS_PER_ASSET, variables - asset * METRICS_PER_ASSET);
      asset = (asset + 1) % assets;
      setImmediate(step);
    };
    step();
  });
  const satCpu = processCpuSeconds(process.pid) - satCpu0;
  await new Promise((r) => setTimeout(r, 1000));
  child.send({ kind: 'report' });
  const sat = await next('report') as unknown as ClientReport;
  child.send({ kind: 'stop' });
  await new Promise((r) => child.once('exit', r));
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99),
    lostPct: expected > 0 ? Math.max(0, (1 - report.count / expected) * 100) : NaN,
    cpuPct: ((cpu1 - cpu0) / elapsed) * 100,
    satUpdates: satUpdates / windowS, satPerCpuSecond: satCpu > 0 ? satUpdates / satCpu : NaN, satNotifications: sat.count / windowS / clients,
  };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' }, variables: { type: 'string', default: '1000,10000' },
      clients: { type: 'string', default: '5' }, window: { type: 'string', default: '10' }, write: { type: 'boolean', default: false },
      client: { type: 'boolean', default: false },
    },
  });
  if (args.client) return clientMain();
  const runs = Number(args.runs);
  const clients = Number(args.clients);
  const windowS = Number(args.window);
  const cases = args.variables.split(',').map(Number);
  const started = Date.now();
  const load = new LoadMeter();
  const results = new Map<string, RunResult[]>();
  for (const variables of cases) {
    for (let r = 0; r < runs; r++) {
      const order: SideId[] = r % 2 === 0 ? ['uns', 'bare'] : ['bare', 'uns'];
      for (const side of order) {
        const result = await run(side, variables, clients, windowS);
        const key = `${variables}:${side}`;
        results.set(key, [...(results.get(key) ?? []), result]);
        console.error(`${variables} variables, ${side}, run ${r + 1}: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, lost ${result.lostPct.toFixed(2)} %, CPU ${result.cpuPct.toFixed(0)} %, saturation ${Math.round(result.satUpdates)} updates/s (${Math.round(result.satPerCpuSecond)} per server CPU-second), ${Math.round(result.satNotifications)} notifications/s per client`);
      }
    }
  }
  const fmt = (s: Summary, digits = 1) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  const num = (s: Summary) => `${Math.round(s.median).toLocaleString('en-US')} (${Math.round(s.min).toLocaleString('en-US')}–${Math.round(s.max).toLocaleString('en-US')})`;
  const machine = machineFacts();
  const rows: string[] = [];
  for (const variables of cases) {
    for (const side of ['uns', 'bare'] as SideId[]) {
      const rs = results.get(`${variables}:${side}`)!;
      const pick = (f: (r: RunResult) => number) => summarize(rs.map(f));
      rows.push(`| ${variables.toLocaleString('en-US')} | ${side === 'uns' ? '**uns-opcua-server** (tag batches)' : 'bare node-opcua (setValueFromSource)'} | ${fmt(pick((x) => x.p50))} | ${fmt(pick((x) => x.p99))} | ${fmt(pick((x) => x.lostPct), 2)} | ${fmt(pick((x) => x.cpuPct), 0)} | ${num(pick((x) => x.satUpdates))} | ${num(pick((x) => x.satPerCpuSecond))} | ${num(pick((x) => x.satNotifications))} |`);
    }
  }
  const ratioLines = cases.map((variables) => {
    const u = summarize(results.get(`${variables}:uns`)!.map((x) => x.satPerCpuSecond)).median;
    const b = summarize(results.get(`${variables}:bare`)!.map((x) => x.satPerCpuSecond)).median;
    return `- ${variables.toLocaleString('en-US')} variables: uns-opcua-server applies ${(u / b).toFixed(2)}× the updates per CPU-second of bare node-opcua (tag batch validation and mapping included).`;
  });
  const markdown = `## OPC UA server: uns-opcua-server vs bare node-opcua

${runs} runs per case and side (order alternated), ${clients} subscribed clients in one other process (node-opcua 2.182.2,
SignAndEncrypt Basic256Sha256, user login, one subscription each at 100 ms publishing, every variable monitored with
sampling 0 and queue 1), server in this process, Double variables in assets of ${METRICS_PER_ASSET} metrics, ${windowS} s windows.
Medians (min–max). ${machine.nproc} cores (${machine.cpuModel}), Node ${machine.node}, ${machine.kernel}. Whole benchmark: ${Math.round((Date.now() - started) / 1000)} s;
${load.describe()} (other work shared the machine: absolute figures are lower bounds, the ratio is the comparison).

- **1 Hz**: each variable changes once a second; latency = update call → data change at a client (every notification of
  every client); lost = notifications missing against variables × changes × clients; CPU = the server process.
- **saturation**: updates back to back (one asset per event-loop turn); updates/s applied, and per CPU-second of the server
  process (the figure that does not depend on what else runs on the machine), notifications/s received per client
  (queue 1 coalesces what a client cannot take: fewer notifications than updates is OPC UA's sampling, not loss).

| variables | side | 1 Hz latency p50 ms | p99 ms | lost % | server CPU % | saturation updates/s | updates per server CPU-second | notifications/s per client |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${ratioLines.join('\n')}

Command: \`node --import tsx bench/opcua-server.ts ${process.argv.slice(2).join(' ')}\`.`;
  console.log(markdown);
  if (args.write) writeSection('opcua-server', markdown);
}

main().then(() => undefined, (error: unknown) => {
  console.error(error);
  process.exit(1);
});
