/**
 * Report by exception at the source (issue 12 item 2): messages and metrics per second out of
 * 100 uns-modbus-read nodes (units 1..100 on one link, the drive's 12 typed metrics, 100 ms poll)
 * with "Send: every poll" vs "only changed values", against a simulated plant in its own process
 * whose drives stand still (autoStart off), so most values do not change — the case report by
 * exception is for. Runs interleave the two variants (off, on, on, off, …); each gets a fresh
 * deploy, 2 s to settle (the first, whole batches are not counted), then the measured window.
 * Counted at each read node's send() (no wire). CPU is this process's (Node-RED + the nodes).
 * Loads the TypeScript nodes through node-red-node-test-helper (no dist/ needed).
 *
 *   node --import tsx bench/modbus-rbe.ts [--runs 5] [--window 5]
 */
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { TagBatch } from '../lib/uns/tag-batch';
import { DRIVE_TYPED_METRICS } from './lib/modbus-flow';
import { machineBusySeconds, summarize } from './lib/stats';

const DRIVES = 100;
const INTERVAL_MS = 100;
const SETTLE_MS = 2000;

async function plantMain(): Promise<void> {
  const { SimulatedPlant } = await import('../sim/plant');
  const { startModbusTcpServer } = await import('../lib/modbus/server');
  const plant = new SimulatedPlant({ drives: DRIVES, seed: 1, autoStart: false });
  const server = await startModbusTcpServer({ host: '127.0.0.1', port: 0, model: plant, maxConnections: 8 });
  plant.start();
  process.send!({ port: server.port });
  process.on('disconnect', () => {
    plant.stop();
    void server.close().then(() => process.exit(0));
  });
}

interface Helper {
  init(path: string): void;
  startServer(done: () => void): void;
  stopServer(done: () => void): void;
  load(nodes: unknown, flow: object[]): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): { send(msg: unknown): void };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, window: { type: 'string', default: '5' } } });
  const runs = Number(args.runs);
  const windowMs = Number(args.window) * 1000;
  const child = fork(__filename, ['plant'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve((m as { port: number }).port)));

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const helper = require('node-red-node-test-helper') as Helper;
  helper.init(require.resolve('node-red'));
  await new Promise<void>((r) => helper.startServer(() => r()));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const modbusNodes = require('../nodes/modbus/modbus') as unknown;

  const results: Record<string, Array<{ messages: number; metrics: number; cpuMsPerS: number; machineBusy: number }>> = { off: [], on: [] };
  for (let run = 0; run < runs; run++) {
    for (const variant of run % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const flow: object[] = [{ id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port, timeout: 1000, reconnect: 1000 }];
      for (let unit = 1; unit <= DRIVES; unit++) {
        flow.push({
          id: `read-${unit}`, type: 'uns-modbus-read', link: 'link', unitId: unit, interval: INTERVAL_MS, topic: `bench/site/area/line/cell/drive${unit}`,
          mergeGap: 8, metrics: DRIVE_TYPED_METRICS, send: variant === 'on' ? 'changes' : 'every', refresh: 60, wires: [],
        });
      }
      await helper.load(modbusNodes, flow);
      let messages = 0;
      let metrics = 0;
      let counting = false;
      for (let unit = 1; unit <= DRIVES; unit++) {
        helper.getNode(`read-${unit}`).send = (msg: unknown) => {
          if (!counting) return;
          messages++;
          metrics += Object.keys((msg as TagBatch).payload).length;
        };
      }
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const cpu0 = process.cpuUsage();
      const busy0 = machineBusySeconds();
      const t0 = performance.now();
      counting = true;
      await new Promise((r) => setTimeout(r, windowMs));
      counting = false;
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      results[variant].push({
        messages: messages / seconds, metrics: metrics / seconds,
        cpuMsPerS: (cpu.user + cpu.system) / 1000 / seconds, machineBusy: (machineBusySeconds() - busy0) / seconds,
      });
      await helper.unload();
    }
  }
  await new Promise<void>((r) => helper.stopServer(() => r()));
  child.disconnect();

  const fmt = (values: number[], digits = 0) => {
    const s = summarize(values);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  console.log(`${DRIVES} uns-modbus-read × ${DRIVE_TYPED_METRICS.length} metrics every ${INTERVAL_MS} ms, stopped drives; ${runs} interleaved runs × ${windowMs / 1000} s; median (min–max)`);
  console.log('| send | messages/s | metrics/s | process CPU ms/s | machine busy cores |');
  console.log('|---|---|---|---|---|');
  for (const variant of ['off', 'on']) {
    const r = results[variant];
    console.log(`| ${variant === 'on' ? 'only changed values' : 'every poll'} | ${fmt(r.map((x) => x.messages))} | ${fmt(r.map((x) => x.metrics))} | ${fmt(r.map((x) => x.cpuMsPerS))} | ${fmt(r.map((x) => x.machineBusy), 2)} |`);
  }
  process.exit(0);
}

(process.argv[2] === 'plant' ? plantMain() : main()).catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
