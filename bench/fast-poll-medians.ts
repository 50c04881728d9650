/**
 * Medians over several runs of bench/fast-poll.ts, which measures one run per invocation (4 minutes each):
 * save each invocation's output, then hand the files to this script. Per contender it prints the median
 * (min–max) of the per-run lateness percentiles and missed deadlines, every run's poll-thread CPU, and
 * the same for the trip rules. Only outputs of complete runs count (they end with the trip table).
 *
 *   for n in 1 2 3 4 5; do npx tsx bench/fast-poll.ts --seconds 30 --trips 10 --sim-cpu 1 --spin-us 300 > fast-poll-$n.md; done
 *   npx tsx bench/fast-poll-medians.ts fast-poll-*.md
 */
import { readFileSync } from 'node:fs';

interface PollerRun { p50: number; p99: number; p999: number; max: number; missed: number; cpu: string }
interface TripRun { trips: string; p50: number; max: number; cycles: string }

/** "41 µs", "**7.08 ms**" → milliseconds. */
function ms(cell: string): number {
  const match = /([\d.]+)\s*(µs|ms)/.exec(cell.replace(/\*/g, ''));
  if (!match) throw new Error(`not a duration: ${cell}`);
  return match[2] === 'µs' ? Number(match[1]) / 1000 : Number(match[1]);
}

const cellsOf = (line: string): string[] => line.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());

function parse(text: string, pollers: Map<string, PollerRun[]>, trips: Map<string, TripRun[]>): void {
  for (const line of text.split('\n')) {
    if (!line.startsWith('| ')) continue;
    const cells = cellsOf(line);
    // The contender table (bench/fast-poll.ts): 13 columns.
    if (cells.length === 13 && cells[0] !== 'contender') {
      const runs = pollers.get(cells[0]) ?? [];
      runs.push({ p50: ms(cells[2]), p99: ms(cells[3]), p999: ms(cells[4]), max: ms(cells[5]), missed: Number(cells[11]), cpu: cells[12] });
      pollers.set(cells[0], runs);
    } else if (cells.length === 5 && cells[0] !== 'rule' && cells[1].includes('/')) {
      const runs = trips.get(cells[0]) ?? [];
      runs.push({ trips: cells[1], p50: ms(cells[2]), max: ms(cells[3]), cycles: cells[4] });
      trips.set(cells[0], runs);
    }
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const duration = (v: number): string => (v < 1 ? `${Math.round(v * 1000)} µs` : `${v.toFixed(2)} ms`);
const range = (values: number[], fmt: (v: number) => string): string => `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;

function main(files: string[]): void {
  if (files.length === 0) throw new Error('usage: npx tsx bench/fast-poll-medians.ts <output of bench/fast-poll.ts>…');
  const pollers = new Map<string, PollerRun[]>();
  const trips = new Map<string, TripRun[]>();
  const complete = files.filter((file) => {
    const text = readFileSync(file, 'utf8');
    if (!text.includes('| rule |')) return false;
    parse(text, pollers, trips);
    return true;
  });
  console.log(`${complete.length} complete runs of ${files.length} files: ${complete.join(', ')}\n`);
  console.log('| contender | lateness p50, all deadlines | **p99, all deadlines** | p99.9 | max | missed deadlines of 30,000 | poll-thread CPU (per run) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [name, runs] of pollers) {
    console.log(`| ${name} | ${range(runs.map((r) => r.p50), duration)} | **${range(runs.map((r) => r.p99), duration)}** | ${range(runs.map((r) => r.p999), duration)} | ` +
      `${range(runs.map((r) => r.max), duration)} | ${range(runs.map((r) => r.missed), String)} | ${runs.map((r) => r.cpu).join(', ')} |`);
  }
  console.log('\n| rule | trips (per run) | p50 | max | cycles from crossing to trip (per run) |');
  console.log('|---|---|---|---|---|');
  for (const [name, runs] of trips) {
    console.log(`| ${name} | ${runs.map((r) => r.trips).join(', ')} | ${range(runs.map((r) => r.p50), duration)} | ${range(runs.map((r) => r.max), duration)} | ${runs.map((r) => r.cycles).join(', ')} |`);
  }
}

main(process.argv.slice(2));
