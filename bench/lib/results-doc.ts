/**
 * docs/benchmarks.md is shared by every benchmark: each one owns one section between its own
 * markers and replaces only that section when run with --write, so the others stay as they are.
 *
 *   <!-- bench:<id>:begin -->
 *   ## <title>
 *   ...
 *   <!-- bench:<id>:end -->
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './node-red';

export const BENCHMARKS_DOC = join(REPO_ROOT, 'docs', 'benchmarks.md');

const DOC_HEADER = `# Benchmarks

Every figure here is measured **side by side with a peer in the same run**, reported as a ratio, with
medians of at least 5 runs (min–max beside them). Each section is written by its benchmark (\`bench/\`)
between its markers; run the command it names with \`--write\` to replace it. Method and traps:
\`bench/README.md\`.
`;

/** Replace (or append) the section `id` of docs/benchmarks.md with `markdown` (which starts with its "## " title). */
export function writeSection(id: string, markdown: string, path = BENCHMARKS_DOC): void {
  const begin = `<!-- bench:${id}:begin -->`;
  const end = `<!-- bench:${id}:end -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : DOC_HEADER;
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  let next: string;
  if (from >= 0 && to > from) {
    next = doc.slice(0, from) + block + doc.slice(to + end.length);
  } else {
    next = doc.trimEnd() + '\n\n' + block + '\n';
  }
  writeFileSync(path, next);
}
