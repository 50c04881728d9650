/**
 * The gateway's footprint, as docs/gateway.md quotes it: time from process start to ready, and
 * VmRSS after --idle-seconds idle (10 by default; the issue's measure is 60). The headline is `uns-edge run --headless` with the demo flow
 * (flows/demo.json: 4 drives polled over Modbus into the UNS) against a simulated plant and a
 * Mosquitto started by this bench, so the gateway does the work it was deployed for; then the
 * same with NODE_OPTIONS=--max-semi-space-size=2 and with `node --optimize-for-size`, `run` with the editor on loopback, `run --headless`
 * with empty flows (the floor), `demo` (broker, plant, editor, demo flow in one process), and
 * `run --headless` with NODE_OPTIONS=--max-semi-space-size=4. Runs the built CLI (npm run build
 * first, or UNS_EDGE_BENCH_PACKAGE); medians.
 *
 *   npx tsx bench/gateway-footprint.ts [--runs 3] [--idle-seconds 10] [--modes 1,2,3]   (--modes: 1-based rows of the table)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, Mosquitto } from '../test/helpers/mosquitto';
import { startSimulatedPlant } from '../sim/index';
import { REPO_ROOT } from './lib/node-red';
import { LoadMeter, summarize } from './lib/stats';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'idle-seconds': { type: 'string', default: '10' }, modes: { type: 'string' } } });
const RUNS = Number(values.runs);
const IDLE_MS = Number(values['idle-seconds']) * 1000;
/** The built CLI: this repository's, or a private build's (UNS_EDGE_BENCH_PACKAGE, bench/README.md). */
const CLI = join(process.env.UNS_EDGE_BENCH_PACKAGE ?? REPO_ROOT, 'dist', 'cli', 'uns-edge.js');

interface Mode {
  name: string; flows: 'demo' | 'empty'; args(flowFile: string): Promise<string[]>; env?: Record<string, string>; ready: RegExp;
  /** Options of node itself, before the CLI (V8 flags NODE_OPTIONS refuses, such as --optimize-for-size). */
  nodeArgs?: string[];
}

const DEMO_FLOW = readFileSync(join(REPO_ROOT, 'flows', 'demo.json'), 'utf8');
const SECRET = { UNS_EDGE_CREDENTIAL_SECRET: 'footprint-bench-secret-0123456789' };
const headless = async (flowFile: string): Promise<string[]> => ['run', '--flows', flowFile, '--headless', '--port', String(await freePort())];

const MODES: Mode[] = [
  { name: '**run --headless, demo flow** (4 drives polled into the UNS)', flows: 'demo', args: headless, env: SECRET, ready: /gateway ready in/ },
  { name: 'run --headless, demo flow, NODE_OPTIONS=--max-semi-space-size=2', flows: 'demo', args: headless, env: { ...SECRET, NODE_OPTIONS: '--max-semi-space-size=2' }, ready: /gateway ready in/ },
  { name: 'run --headless, demo flow, node --optimize-for-size', flows: 'demo', args: headless, env: SECRET, nodeArgs: ['--optimize-for-size'], ready: /gateway ready in/ },
  { name: 'run with the editor on loopback, demo flow', flows: 'demo', args: async (flowFile) => ['run', '--flows', flowFile, '--port', String(await freePort())], env: SECRET, ready: /gateway ready in/ },
  { name: 'run --headless, empty flows (the floor)', flows: 'empty', args: headless, ready: /gateway ready in/ },
  { name: 'demo (broker, plant, editor, 4 drives polled, one process)', flows: 'empty', args: async (flowFile) => ['demo', '--user-dir', join(flowFile, '..', 'demo'), '--port', String(await freePort()), '--mqtt-port', String(await freePort()), '--sim-port', String(await freePort())], ready: /UNS Edge demo ready in/ },
  { name: 'run --headless, demo flow, NODE_OPTIONS=--max-semi-space-size=4', flows: 'demo', args: headless, env: { ...SECRET, NODE_OPTIONS: '--max-semi-space-size=4' }, ready: /gateway ready in/ },
];

/** Where the demo flow of a `run` mode finds its plant and broker (started by this bench, outside the measured process). */
let peerEnv: Record<string, string> = {};

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '';
  return Number(line.replace(/\D+/g, '')) / 1024;
}

async function measure(mode: Mode): Promise<{ readyMs: number; rss: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'uns-edge-footprint-'));
  const flowFile = join(dir, 'flows.json');
  writeFileSync(flowFile, mode.flows === 'demo' ? DEMO_FLOW : '[]');
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_') && key !== 'NODE_OPTIONS'));
  const started = Date.now();
  const child = spawn(process.execPath, [...(mode.nodeArgs ?? []), CLI, ...(await mode.args(flowFile))], { cwd: dir, env: { ...base, ...peerEnv, ...mode.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  try {
    const readyMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${mode.name}: not ready in 30 s\n${output}`)), 30_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (mode.ready.test(output)) { clearTimeout(timer); resolve(Date.now() - started); }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${mode.name}: exited with ${code}\n${output}`)); });
    });
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    return { readyMs, rss: rssMb(child.pid as number) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const chosen = values.modes ? values.modes.split(',').map((row) => MODES[Number(row) - 1]).filter((mode) => mode !== undefined) : MODES;
  const results = new Map<string, Array<{ readyMs: number; rss: number }>>(chosen.map((m) => [m.name, []]));
  const load = new LoadMeter();
  const broker = await Mosquitto.start();
  const plant = await startSimulatedPlant({ port: 0, drives: 4 });
  peerEnv = { UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port), UNS_EDGE_SIM_HOST: plant.host, UNS_EDGE_SIM_PORT: String(plant.port) };
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const mode of chosen) results.get(mode.name)!.push(await measure(mode));
    }
  } finally {
    await plant.close();
    await broker.stop();
  }
  console.log(`| mode | process start → ready, ms, median (min–max) | RSS after ${IDLE_MS / 1000} s idle, MB, median (min–max) |`);
  console.log('|---|---|---|');
  for (const [name, samples] of results) {
    const ready = summarize(samples.map((s) => s.readyMs));
    const rss = summarize(samples.map((s) => s.rss));
    console.log(`| ${name} | ${ready.median.toFixed(0)} (${ready.min.toFixed(0)}–${ready.max.toFixed(0)}) | ${rss.median.toFixed(1)} (${rss.min.toFixed(1)}–${rss.max.toFixed(1)}) |`);
  }
  console.log(`\n${RUNS} runs, ${new Date().toISOString().slice(0, 10)}: npx tsx bench/gateway-footprint.ts --runs ${RUNS} --idle-seconds ${IDLE_MS / 1000}${values.modes ? ` --modes ${values.modes}` : ''}. ` +
    'The run modes with the demo flow poll a simulated plant and publish to a Mosquitto, both in other processes. ' +
    `CLI: ${CLI}. Load during the runs: ${load.describe()}.`);
}

main().catch((error) => { console.error(error); process.exit(1); });
