/**
 * Small measurement helpers: CPU time of another process from /proc, machine facts, and the
 * median/min/max summary the benchmark tables report.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux x86 and arm). */
const CLOCK_TICKS = Number(safeExec('getconf', ['CLK_TCK'])) || 100;

/** User + system CPU seconds a process has used so far (proc(5): fields 14 utime, 15 stime). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident set size of a process in MB (proc(5): VmRSS of /proc/<pid>/status). */
export function processRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '';
  return Number(line.replace(/\D+/g, '')) / 1024;
}

/**
 * CPU seconds the whole machine has been busy so far, all cores (proc(5) /proc/stat "cpu" line:
 * user, nice, system, irq, softirq, steal; idle and iowait excluded). Minus the processes a
 * benchmark knows, it shows how much else ran on the machine during a run.
 */
export function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user + nice + system + irq + softirq + (steal || 0)) / CLOCK_TICKS;
}

/** The pid of the one process whose command line contains `needle`, or undefined. */
export function findPid(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle)) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

export interface MachineFacts {
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  mosquitto: string;
}

export function machineFacts(): MachineFacts {
  return {
    nproc: Number(safeExec('nproc', [])) || cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: safeExec('uname', ['-sr']),
    mosquitto: /mosquitto version (\S+)/.exec(safeExec('/usr/sbin/mosquitto', ['-h']))?.[1] ?? 'unknown',
  };
}

function safeExec(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    // `mosquitto -h` prints its usage and exits non-zero.
    const stdout = (error as { stdout?: string }).stdout;
    return typeof stdout === 'string' ? stdout.trim() : '';
  }
}

/**
 * The load of the machine over a benchmark's window, as measured: the 1-minute load average at the
 * start and at the end, and the cores busy on average from /proc/stat (all processes).
 */
export class LoadMeter {
  private readonly busyStart = machineBusySeconds();
  private readonly wallStart = performance.now();
  private readonly loadStart = loadavg()[0];

  /** E.g. "load average 9.1 → 11.4 (1 min), 1.93 of 2 cores busy (/proc/stat), 0.71 of them this benchmark's processes". */
  describe(ownCores?: number): string {
    const seconds = (performance.now() - this.wallStart) / 1000;
    const busyCores = (machineBusySeconds() - this.busyStart) / seconds;
    const own = ownCores === undefined ? '' : `, ${ownCores.toFixed(2)} of them this benchmark's processes`;
    return `load average ${this.loadStart.toFixed(1)} → ${loadavg()[0].toFixed(1)} (1 min), ` +
      `${busyCores.toFixed(2)} of ${cpus().length} cores busy on average (/proc/stat)${own}`;
  }
}
