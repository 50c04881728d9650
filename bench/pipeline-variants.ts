/**
 * Compares node/V8 flag variants of the uns-edge gateway over several bench/pipeline.ts invocations,
 * one run each, interleaved so every round measures every variant under the same machine state
 * (--uns-node-flags applies to the whole invocation). Save each output as you go, then hand the
 * files to this script as VARIANT=FILE in round order: per side and variant it prints the medians
 * (min–max) of updates per gateway core-second, RSS max, V8 heap total and live heap, the per-round
 * ratio of updates per core-second to the first variant named, and every miss the runs counted
 * (lowest % of the schedule, published − received, broker drops, bad or unparsable, warnings, errors).
 *
 *   for n in 1 2 3 4 5; do
 *     node --import tsx bench/pipeline.ts --drives 240 --ports 16 --interval 50 --seconds 20 --settle 4 --runs 1 \
 *       --sides uns-asset-q0 --max-in-flight 32 > v8-$n.log
 *     node --import tsx bench/pipeline.ts … --uns-node-flags=--heap-growing-percent=100 > hg100-$n.log
 *   done
 *   npx tsx bench/pipeline-variants.ts v8=v8-1.log hg100=hg100-1.log v8=v8-2.log hg100=hg100-2.log …
 */
import { readFileSync } from 'node:fs';
import { summarize } from './lib/stats';

interface Run {
  perCoreSecond: number; rssMb: number; heapTotalMb: number; liveMb: number; ofSchedule: number;
  lost: number; dropped: number; bad: number; unparsable: number; warnings: number; errors: number;
}

/** One "run N side …" line of bench/pipeline.ts. */
const RUN_LINE = new RegExp(
  '^run \\d+ (\\S+)\\s+[\\d,]+ updates/s\\s+([\\d,]+) per core-s\\s+gateway [\\d.]+ cores\\s+RSS max ([\\d.]+) MB ' +
  '\\(heap \\d+/(\\d+), live (\\d+) after GC, external \\d+ at the end\\)\\s+([\\d.]+) % of schedule.*?' +
  'lost (-?\\d+) dropped (\\d+) bad (\\d+) unparsable (\\d+) warn (\\d+) err (\\d+)', 'gm');

const number = (text: string): number => Number(text.replace(/,/g, ''));

/** runs[side][variant][round] */
const runs = new Map<string, Map<string, Run[]>>();
const variants: string[] = [];
for (const argument of process.argv.slice(2)) {
  const at = argument.indexOf('=');
  if (at <= 0) throw new Error(`expected VARIANT=FILE, got ${argument}`);
  const variant = argument.slice(0, at);
  if (!variants.includes(variant)) variants.push(variant);
  const text = readFileSync(argument.slice(at + 1), 'utf8');
  let found = 0;
  for (const m of text.matchAll(RUN_LINE)) {
    found++;
    const bySide = runs.get(m[1]!) ?? new Map<string, Run[]>();
    runs.set(m[1]!, bySide);
    const list = bySide.get(variant) ?? [];
    bySide.set(variant, list);
    list.push({
      perCoreSecond: number(m[2]!), rssMb: number(m[3]!), heapTotalMb: number(m[4]!), liveMb: number(m[5]!), ofSchedule: number(m[6]!),
      lost: number(m[7]!), dropped: number(m[8]!), bad: number(m[9]!), unparsable: number(m[10]!), warnings: number(m[11]!), errors: number(m[12]!),
    });
  }
  if (found === 0) throw new Error(`${argument}: no complete run of bench/pipeline.ts in it`);
}

const f0 = (n: number): string => Math.round(n).toLocaleString('en-US');
const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const range = (values: number[], format: (n: number) => string): string => {
  const s = summarize(values);
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`;
};
const total = (list: Run[], key: keyof Run): number => list.reduce((sum, run) => sum + run[key], 0);

console.log('| side | variant | rounds | updates per gateway core-second | per-round ratio to ' + variants[0] + ' | RSS max, MB | V8 heap total, MB | live after GC, MB | lowest % of schedule | published − received / dropped / bad / warnings / errors, all runs |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const [side, bySide] of runs) {
  const baseline = bySide.get(variants[0]!) ?? [];
  for (const variant of variants) {
    const list = bySide.get(variant);
    if (!list) continue;
    const rounds = Math.min(list.length, baseline.length);
    const ratios = variant === variants[0] ? [] : list.slice(0, rounds).map((run, i) => run.perCoreSecond / baseline[i]!.perCoreSecond);
    console.log(`| ${side} | ${variant} | ${list.length} | ${range(list.map((r) => r.perCoreSecond), f0)} | ${ratios.length ? range(ratios, f2) : '—'} | ` +
      `${range(list.map((r) => r.rssMb), f1)} | ${f0(summarize(list.map((r) => r.heapTotalMb)).median)} | ${f0(summarize(list.map((r) => r.liveMb)).median)} | ` +
      `${f1(Math.min(...list.map((r) => r.ofSchedule)))} | ${total(list, 'lost')} / ${total(list, 'dropped')} / ${total(list, 'bad') + total(list, 'unparsable')} / ${total(list, 'warnings')} / ${total(list, 'errors')} |`);
  }
}
