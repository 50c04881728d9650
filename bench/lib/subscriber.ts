/**
 * The independent counter of a benchmark run: a `mosquitto_sub` process (C, outside the Node-RED
 * process) that subscribes to one topic filter and exits after exactly `count` messages
 * (`-C`, plus the one readiness probe). Its output (`-v`: "topic payload" per line) goes to a file
 * on tmpfs, so every message can be checked after the run (nothing of the check is timed).
 *
 * Readiness: the caller publishes one retained probe under the filter *before* starting it; the
 * broker sends retained messages only after the subscription exists (MQTT v3.1.1 §3.3.1.3,
 * MQTT v5.0 §3.3.1.3), so once the probe line is in the file every later publish will reach us.
 *
 * The subscriber's own CPU time comes from bash's `times` builtin (children's user and system
 * time) printed after mosquitto_sub exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const MOSQUITTO_SUB_BIN = '/usr/bin/mosquitto_sub';

export interface SubscriberOptions {
  port: number;
  filter: string;
  /** Messages to wait for, not counting the readiness probe. */
  count: number;
  qos: 0 | 1;
  /** Topic of the retained probe the caller has published under `filter`. */
  probeTopic: string;
  /** Give up (and fail the run) after this long. */
  timeoutSec: number;
}

export interface SubscriberResult {
  /** performance.now() when the subscriber process had exited. */
  endedAt: number;
  exitCode: number | null;
  /** CPU seconds (user + system) of mosquitto_sub. */
  cpuSeconds: number;
  stderr: string;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class CountingSubscriber {
  readonly finished: Promise<SubscriberResult>;

  private constructor(child: ChildProcess, private readonly outputFile: string, private readonly options: SubscriberOptions,
    private readonly dir: string) {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    this.finished = new Promise((resolve) => {
      child.once('exit', (code) => {
        const endedAt = performance.now();
        running.delete(child);
        resolve({ endedAt, exitCode: code, cpuSeconds: childCpuSeconds(stderr), stderr });
      });
    });
  }

  /** Start mosquitto_sub and resolve once its subscription is active (the probe arrived). */
  static async start(options: SubscriberOptions): Promise<CountingSubscriber> {
    const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'uns-bench-sub-'));
    const outputFile = join(dir, 'messages.txt');
    const args = ['-h', '127.0.0.1', '-p', String(options.port), '-t', options.filter, '-q', String(options.qos),
      '-C', String(options.count + 1), '-W', String(options.timeoutSec), '-v', '-i', `bench-sub-${process.pid}-${Date.now()}`];
    const child = spawn('bash', ['-c', `${MOSQUITTO_SUB_BIN} "$@" >"$BENCH_SUB_OUT"; rc=$?; times >&2; exit $rc`, 'bench-sub', ...args], {
      env: { ...process.env, BENCH_SUB_OUT: outputFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    running.add(child);
    const subscriber = new CountingSubscriber(child, outputFile, options, dir);
    const deadline = Date.now() + 10000;
    const probeLine = options.probeTopic + ' ';
    while (!(existsSync(outputFile) && readFileSync(outputFile, 'utf8').includes(probeLine))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        const { stderr } = await subscriber.finished;
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`mosquitto_sub did not receive the readiness probe within 10 s: ${stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return subscriber;
  }

  /**
   * The received messages (probe excluded), in arrival order; then the output file is deleted.
   * Call after `finished` and after taking measurements: reading 100k lines is not free.
   */
  takeMessages(): Array<{ topic: string; payload: string }> {
    if (!existsSync(this.outputFile)) return [];
    const messages: Array<{ topic: string; payload: string }> = [];
    for (const line of readFileSync(this.outputFile, 'utf8').split('\n')) {
      if (line === '') continue;
      const space = line.indexOf(' ');
      const topic = space < 0 ? line : line.slice(0, space);
      if (topic === this.options.probeTopic) continue;
      messages.push({ topic, payload: space < 0 ? '' : line.slice(space + 1) });
    }
    rmSync(this.dir, { recursive: true, force: true });
    return messages;
  }
}

/** bash `times` prints the shell's user/system time, then its children's: "0m1.234s 0m0.567s". */
function childCpuSeconds(stderr: string): number {
  const lines = stderr.trim().split('\n').filter((line) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(line.trim()));
  const children = lines[lines.length - 1];
  if (children === undefined) return NaN;
  return children.trim().split(' ').reduce((sum, part) => {
    const [, minutes, seconds] = /^(\d+)m([\d.]+)s$/.exec(part) ?? [];
    return sum + Number(minutes) * 60 + Number(seconds);
  }, 0);
}
