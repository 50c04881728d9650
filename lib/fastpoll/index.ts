/**
 * The fast poller (docs/fast-poll.md): the native addon when it is built and allowed, else the
 * TypeScript fallback, with the reason kept for the node's status.
 */
export * from './types';
export { summarize, LatencySummary } from './histogram';
export { NO_NATIVE_ENV, loadNative } from './native';
export { FallbackPoller } from './fallback';
export { createPoller, CreatedPoller, Implementation } from './create';
export * from './controller';
