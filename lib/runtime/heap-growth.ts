/**
 * How far V8 lets the old generation of a gateway process grow past what is live before its next
 * full GC. V8's own heuristic lets it grow up to 4× the live heap when the program allocates fast,
 * which a gateway at load does: 240 drives polled every 50 ms into uns-out (bench/pipeline.ts,
 * docs/gateway.md § "V8 heap growth under load") keep 31 MB live, yet the heap reached ~148 MB and
 * the process ~225 MB of RSS, the difference garbage waiting for a GC. A growing factor of 2
 * (`UNS_EDGE_HEAP_GROWING_PERCENT=100`) keeps it at ~157 MB, for 0.83–1.02× the throughput per core
 * (two series of 5 interleaved rounds): memory for CPU, so it is the user's choice, not the default.
 *
 * `UNS_EDGE_HEAP_GROWING_PERCENT` chooses the factor (1 + percent / 100) for `uns-edge run` and
 * `demo`; unset, empty or `v8` keeps V8's heuristic; a `--heap-growing-percent` on node's own command
 * line is left alone (node refuses it in NODE_OPTIONS).
 */
import { SettingsError } from './settings';

/** Factor 1.1 … 4 (V8's own largest): below, full GCs follow each other; above, nothing is gained. */
const MIN_PERCENT = 10;
const MAX_PERCENT = 300;

/** The V8 flag to set at start (v8.setFlagsFromString), or undefined to leave V8's heuristic or node's own flag. */
export function heapGrowingFlag(env: NodeJS.ProcessEnv, execArgv: readonly string[]): string | undefined {
  if (execArgv.some((flag) => /^--heap[-_]growing[-_]percent(=|$)/.test(flag))) return undefined;
  const setting = env.UNS_EDGE_HEAP_GROWING_PERCENT?.trim();
  if (setting === undefined || setting === '' || setting === 'v8') return undefined;
  const percent = /^\d+$/.test(setting) ? Number(setting) : NaN;
  if (!(percent >= MIN_PERCENT && percent <= MAX_PERCENT)) {
    throw new SettingsError(`UNS_EDGE_HEAP_GROWING_PERCENT=${setting}: use a whole number ${MIN_PERCENT}..${MAX_PERCENT} (the old generation may grow to 1 + percent/100 times the live heap), or v8 for V8's own heuristic`);
  }
  return `--heap-growing-percent=${percent}`;
}
