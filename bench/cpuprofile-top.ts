/**
 * The functions that took the most CPU in a V8 .cpuprofile (from `node --cpu-prof`): self time
 * (samples whose top frame is the function) and total time (samples with the function anywhere on
 * the stack, counted once per sample), as % of all non-idle samples.
 *
 *   npx tsx bench/cpuprofile-top.ts <file.cpuprofile> [--top 30] [--from <ms>] [--to <ms>]
 *
 * Then self time by code area: this repository's folders (dist/lib/uns, ...), npm packages
 * (the innermost node_modules/<package>), Node.js internals (node:*), native code and GC.
 *
 * --from/--to keep only the samples in that window (ms since the profile started), e.g. the
 * measured part of a benchmark without the start-up.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, from: { type: 'string' }, to: { type: 'string' } },
});
if (positionals.length !== 1) throw new Error('usage: cpuprofile-top.ts <file.cpuprofile> [--top N] [--from ms] [--to ms]');

const profile = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);
const label = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'} ${where}`.trim();
};

/** Where a frame's code lives, coarse enough to add up. */
function area(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(garbage collector)') return '(garbage collector)';
  if (url === '') return '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scope, name] = path.slice(modules + '/node_modules/'.length).split('/');
    return scope.startsWith('@') ? `${scope}/${name}` : scope;
  }
  if (!path.startsWith('/')) return path.split(':')[0]; // e.g. a function node's code: "Function node:<id>"
  const levels = relative(process.cwd(), path).split('/');
  // dist/lib/uns/..., lib/uns/..., nodes/uns/..., bench/...
  const depth = levels[0] === 'dist' ? 3 : levels[0] === 'lib' || levels[0] === 'nodes' ? 2 : 1;
  return `uns-edge ${levels.slice(0, Math.min(depth, levels.length - 1)).join('/')}`;
}

const from = values.from === undefined ? -Infinity : Number(values.from) * 1000;
const to = values.to === undefined ? Infinity : Number(values.to) * 1000;
const self = new Map<string, number>();
const byArea = new Map<string, number>();
const total = new Map<string, number>();
let counted = 0;
let gc = 0;
let elapsed = 0;
for (let i = 0; i < profile.samples.length; i++) {
  elapsed += profile.timeDeltas[i];
  if (elapsed < from || elapsed > to) continue;
  const top = byId.get(profile.samples[i]);
  if (top === undefined) continue;
  const name = top.callFrame.functionName;
  if (name === '(garbage collector)') gc++;
  if (name === '(idle)' || name === '(program)') continue;
  counted++;
  const where = area(top);
  byArea.set(where, (byArea.get(where) ?? 0) + 1);
  if (IDLE.has(name)) continue;
  const topLabel = label(top);
  self.set(topLabel, (self.get(topLabel) ?? 0) + 1);
  const onStack = new Set<string>();
  for (let id: number | undefined = top.id; id !== undefined; id = parent.get(id)) {
    const node = byId.get(id);
    if (node && node.callFrame.functionName !== '(root)') onStack.add(label(node));
  }
  for (const entry of onStack) total.set(entry, (total.get(entry) ?? 0) + 1);
}

const top = Number(values.top);
const pct = (n: number): string => `${((100 * n) / counted).toFixed(1).padStart(5)}%`;
console.log(`${counted} busy samples (garbage collector ${pct(gc)})\n\nself time:`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(n)}  ${name}`);
console.log('\nself time by code area:');
for (const [name, n] of [...byArea].sort((a, b) => b[1] - a[1])) console.log(`${pct(n)}  ${name}`);
console.log('\ntotal time (on the stack):');
for (const [name, n] of [...total].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(n)}  ${name}`);
