/**
 * How far V8 lets the old generation of a gateway process grow past what is live before its next
 * full GC. V8's own heuristic lets it grow up to 4× the live heap when the program allocates fast,
 * which a gateway at load does: 240 drives polled every 50 ms into uns-out (bench/pipeline.ts,
 * docs/gateway.md § "V8 heap growth under load") keep 31 MB live, yet the heap reached ~140 MB and
 * the process ~223 MB of RSS, the difference garbage waiting for a GC. A growing factor of 2 keeps it
 * at ~156 MB (one topic per metric: 189 MB instead of 266) for 0.89× (0.82–0.99) the updates per
 * gateway core-second, measured in 5 interleaved rounds: bounded memory on an edge gateway is worth
 * that, so it is the default.
 *
 * `UNS_EDGE_HEAP_GROWING_PERCENT` chooses the factor (1 + percent / 100) for `uns-edge run` and
 * `demo`; unset or empty means DEFAULT_PERCENT; `v8` keeps V8's heuristic; a `--heap-growing-percent`
 * on node's own command line is left alone (node refuses it in NODE_OPTIONS).
 */
import { SettingsError } from './settings';

/** Factor 1.1 … 4 (V8's own largest): below, full GCs follow each other; above, nothing is gained. */
const MIN_PERCENT = 10;
const MAX_PERCENT = 300;
/** Factor 2. */
export const DEFAULT_PERCENT = 100;

export interface HeapGrowingSetting {
  /** For v8.setFlagsFromString, before Node-RED loads. */
  flag: string;
  percent: number;
  /** From UNS_EDGE_HEAP_GROWING_PERCENT, not the default. */
  chosen: boolean;
}

/** The V8 flag to set at start, or undefined to leave V8's heuristic (`v8`) or node's own flag. */
export function heapGrowingSetting(env: NodeJS.ProcessEnv, execArgv: readonly string[]): HeapGrowingSetting | undefined {
  if (execArgv.some((flag) => /^--heap[-_]growing[-_]percent(=|$)/.test(flag))) return undefined;
  const setting = env.UNS_EDGE_HEAP_GROWING_PERCENT?.trim();
  if (setting === 'v8') return undefined;
  if (setting === undefined || setting === '') return { flag: `--heap-growing-percent=${DEFAULT_PERCENT}`, percent: DEFAULT_PERCENT, chosen: false };
  const percent = /^\d+$/.test(setting) ? Number(setting) : NaN;
  if (!(percent >= MIN_PERCENT && percent <= MAX_PERCENT)) {
    throw new SettingsError(`UNS_EDGE_HEAP_GROWING_PERCENT=${setting}: use a whole number ${MIN_PERCENT}..${MAX_PERCENT} (the old generation may grow to 1 + percent/100 times the live heap), or v8 for V8's own heuristic`);
  }
  return { flag: `--heap-growing-percent=${percent}`, percent, chosen: true };
}

/** The log line that says what was set. */
export function describeHeapGrowing(setting: HeapGrowingSetting): string {
  const source = setting.chosen ? 'UNS_EDGE_HEAP_GROWING_PERCENT' : 'the default; UNS_EDGE_HEAP_GROWING_PERCENT=v8 keeps V8\'s own heuristic';
  return `V8 ${setting.flag} (${source}): the old generation grows to at most ${1 + setting.percent / 100}× the live heap before a full GC`;
}
