/** Picks the implementation: the native addon when it is built and allowed, else the TypeScript fallback. */
import { FallbackPoller } from './fallback';
import { loadNative } from './native';
import { BatchCallback, PollerBinding, PollerOptions } from './types';

export type Implementation = 'native' | 'fallback';

export interface CreatedPoller {
  poller: PollerBinding;
  implementation: Implementation;
  /** Why the fallback is used (e.g. "addon not built", "UNS_EDGE_NO_NATIVE=1"). */
  fallbackReason?: string;
}

/** A poller of the requested implementation ('auto': native when available). Throws TypeError/RangeError on bad options. */
export function createPoller(options: PollerOptions, onBatch: BatchCallback, want: Implementation | 'auto' = 'auto'): CreatedPoller {
  if (want !== 'fallback') {
    const native = loadNative();
    if (native.ok) return { poller: native.factory(options, onBatch), implementation: 'native' };
    if (want === 'native') throw new Error(`native fast poller unavailable: ${native.reason}`);
    return { poller: new FallbackPoller(options, onBatch), implementation: 'fallback', fallbackReason: native.reason };
  }
  return { poller: new FallbackPoller(options, onBatch), implementation: 'fallback', fallbackReason: 'requested' };
}
