/**
 * The UNS consumer of bench/plant-scale.ts in its own process: an MQTT.js client subscribed to
 * `plant/#` (QoS 1, like a consumer that must not miss state), counting the values it receives per
 * line and the end-to-end latency of each: receipt time − the value's source timestamp (the
 * `timestamp` field the gateway puts in every per-metric payload, docs/uns-topics.md), same clock.
 *
 * Parent side: `startConsumer(url)` → {pid, start(), stop(), close()}. Child side (this file as a script):
 * stdin commands, one per line: `start <name> <t0>` opens window <name> at wall-clock ms t0 (windows
 * may overlap: a step's whole span and its runs); `stop <name> <t1> <drainMs> [t0]` closes it at t1 (and moves its start to t0), keeps receiving for drainMs, then prints one JSON line with the count, per-line
 * counts and latency percentiles of the live values whose SOURCE timestamp is in [t0, t1): the
 * values still in flight at t1 are counted, so the count compares with what the gateways published
 * in the window without an edge error. Retained messages (the broker's stored state) are skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ConsumerWindow {
  seconds: number;
  values: number;
  perLine: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  unparsable: number;
}

export interface Consumer {
  readonly pid: number;
  /** Open window `name` at wall-clock ms `t0`. */
  start(name: string, t0: number): void;
  /** Close it at `t1` (and move its start to `t0`, later than when it opened), wait `drainMs` for values in flight, report. */
  stop(name: string, t1: number, drainMs: number, t0?: number): Promise<ConsumerWindow>;
  /** Distinct topics seen since the consumer started (retained ones included). */
  topics(): Promise<number>;
  close(): void;
}

export async function startConsumer(url: string): Promise<Consumer> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', __filename, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const pending: Array<(line: string) => void> = [];
  lines.on('line', (line) => pending.shift()?.(line));
  const next = (): Promise<string> => new Promise((resolve) => pending.push(resolve));
  const ready = await next();
  if (ready !== 'subscribed') throw new Error(`consumer: ${ready}`);
  const send = (command: string): void => { child.stdin?.write(`${command}\n`); };
  return {
    pid: child.pid as number,
    start: (name, t0) => send(`start ${name} ${t0}`),
    stop: async (name, t1, drainMs, t0) => { send(`stop ${name} ${t1} ${drainMs}${t0 === undefined ? '' : ` ${t0}`}`); return JSON.parse(await next()) as ConsumerWindow; },
    topics: async () => { send('topics'); return Number(await next()); },
    close: () => { child.kill('SIGKILL'); },
  };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function runChild(url: string): Promise<void> {
  const { connect } = await import('mqtt');
  const client = connect(url, { clientId: `plant-scale-consumer-${process.pid}`, clean: true });
  const topics = new Set<string>();
  let unparsable = 0;
  /** An open or draining window: every live value received since it opened, filtered when it closes. */
  class OpenWindow {
    timestamps: number[] = [];
    latencies: number[] = [];
    lines: string[] = [];
    end = Infinity;
    constructor(public start: number) {}
    add(line: string, timestamp: number, latency: number): void {
      this.timestamps.push(timestamp);
      this.latencies.push(latency);
      this.lines.push(line);
    }
  }
  const windows = new Map<string, OpenWindow>();
  client.on('message', (topic, payload, packet) => {
    const now = Date.now();
    topics.add(topic);
    if (packet.retain) return; // the broker's stored state, not a live value
    let timestamp: unknown;
    try {
      timestamp = (JSON.parse(payload.toString()) as { timestamp?: unknown }).timestamp;
    } catch {
      unparsable++;
      return;
    }
    if (typeof timestamp !== 'number') { unparsable++; return; }
    const line = topic.split('/')[1];
    for (const window of windows.values()) {
      if (timestamp >= window.start && timestamp < window.end) window.add(line, timestamp, now - timestamp);
    }
  });
  client.subscribe('plant/#', { qos: 1 }, (error) => {
    process.stdout.write(error ? `subscribe failed: ${error.message}\n` : 'subscribed\n');
  });
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, name, a, b, c] = line.split(' ');
    if (command === 'start') {
      windows.set(name, new OpenWindow(Number(a)));
    } else if (command === 'stop') {
      // stop <name> <t1> <drainMs> [t0]: the window is [t0 (default: its start), t1) by source timestamp.
      const window = windows.get(name) as OpenWindow;
      window.end = Number(a);
      if (c !== undefined) window.start = Math.max(window.start, Number(c));
      setTimeout(() => {
        windows.delete(name);
        const inside = window.timestamps.map((_, i) => i).filter((i) => window.timestamps[i] >= window.start && window.timestamps[i] < window.end);
        const sorted = Float64Array.from(inside.map((i) => window.latencies[i])).sort();
        const perLine: Record<string, number> = {};
        for (const i of inside) perLine[window.lines[i]] = (perLine[window.lines[i]] ?? 0) + 1;
        const report: ConsumerWindow = {
          seconds: (window.end - window.start) / 1000, values: inside.length, perLine, unparsable,
          latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN },
        };
        process.stdout.write(`${JSON.stringify(report)}\n`);
      }, Number(b));
    } else if (command === 'topics') {
      process.stdout.write(`${topics.size}\n`);
    }
  });
}

if (require.main === module) void runChild(process.argv[2]);
