/**
 * Keeping a rejected message reportable. Node-RED hands an error to Catch nodes with a deep copy of
 * the message (RED.util.cloneMessage, a recursive lodash cloneDeep); past roughly 2,000 levels of
 * nesting that copy overflows the stack, the RangeError replaces the real error and no Catch node
 * sees anything (issue 8, item 6: a 5,000-level batch). A sink that rejects a message cuts what is
 * nested deeper than a bound before it reports the error (docs/tag-batch.md § "Limits").
 */
import { isPlainObject } from '../values';

/** Depth below which a message is left as it is: far deeper than any tag batch (3 levels) or sane message. */
export const MAX_REPORTED_DEPTH = 64;
/** Objects visited at most; a message larger than this is left as it is (its depth is not the problem). */
const MAX_VISITS = 200_000;

/**
 * Replaces every object or array found at depth `maxDepth` (the message itself is depth 0) by a
 * string saying what was cut; returns how many were cut. Iterative (no recursion, whatever the
 * depth), visits each object once (cycles are fine), and stops after MAX_VISITS objects.
 */
export function cutDeepNesting(message: object, maxDepth = MAX_REPORTED_DEPTH): number {
  const marker = `[cut: nested deeper than ${maxDepth} levels]`;
  const seen = new Set<object>([message]);
  const stack: Array<[object, number]> = [[message, 0]];
  let cut = 0;
  while (stack.length > 0 && seen.size < MAX_VISITS) {
    const [parent, depth] = stack.pop()!;
    if (!isPlainObject(parent) && !Array.isArray(parent)) continue; // Buffers, Dates, class instances: cloned as they are
    const record = parent as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const child = record[key];
      if (typeof child !== 'object' || child === null || seen.has(child)) continue;
      if (depth + 1 >= maxDepth) {
        record[key] = marker;
        cut++;
        continue;
      }
      seen.add(child);
      stack.push([child, depth + 1]);
    }
  }
  return cut;
}
