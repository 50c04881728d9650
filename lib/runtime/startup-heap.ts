/**
 * Start-up (requiring Node-RED and the node sets, parsing and starting the flows) grows V8's young
 * generation to its maximum, two 16 MB semi-spaces, and V8 gives them back only when its memory
 * reducer runs, which follows a full (mark-compact) GC. An idle gateway may never have one: the demo
 * gateway then stayed at 118 MB RSS after 60 s, against 82–88 MB in the runs where one happened
 * (docs/benchmarks.md § "Gateway footprint"). One full GC shortly after the flows have started starts
 * the memory reducer; under load the young generation grows back as before (its maximum is unchanged).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How long after the flows started the GC runs: their connections and first polls are under way by then. */
export const STARTUP_SETTLE_MS = 2000;

/**
 * A full GC now. `gc` is exposed only to one new, empty context (the gateway's own global scope and
 * the flows' function nodes do not get it); with `node --expose-gc` the global one is used.
 */
export function collectStartupGarbage(): void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed();
  setFlagsFromString('--expose-gc');
  let gc: () => void;
  try {
    gc = runInNewContext('gc') as () => void;
  } finally {
    // Contexts created later (a function node's, after a deploy) do not get gc.
    setFlagsFromString('--no-expose-gc');
  }
  gc();
}

/** collectStartupGarbage() once, STARTUP_SETTLE_MS from now; it never keeps the process alive. */
export function scheduleStartupGarbageCollection(): void {
  setTimeout(collectStartupGarbage, STARTUP_SETTLE_MS).unref();
}
