/**
 * One Prometheus registry for the whole gateway (served at /metrics by the gateway runtime).
 * Nodes are created and closed on every deploy, so metrics are looked up by name instead of
 * registered twice; nodes set labelled children and remove them in close().
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const metricsRegistry = new Registry();
let defaultMetricsOn = false;

/** Process metrics (CPU, RSS, event-loop lag, GC): once per process. */
export function enableProcessMetrics(): void {
  if (defaultMetricsOn) return;
  defaultMetricsOn = true;
  collectDefaultMetrics({ register: metricsRegistry, prefix: 'uns_edge_' });
}

type MetricKind = 'counter' | 'gauge' | 'histogram';
interface MetricSpec<M = unknown> {
  name: string; help: string; labelNames?: readonly string[]; buckets?: number[];
  /** Called by prom-client on every scrape with `this` = the metric, to set values from state held elsewhere. */
  collect?: (this: M) => void | Promise<void>;
}

function lookUp<T>(kind: MetricKind, spec: MetricSpec<T>, create: () => T): T {
  const existing = metricsRegistry.getSingleMetric(spec.name);
  if (existing) {
    if ((existing as unknown as { type?: string }).type !== kind) {
      throw new Error(`metric ${spec.name} is already registered as another kind`);
    }
    return existing as unknown as T;
  }
  return create();
}

export function counter(spec: MetricSpec<Counter<string>>): Counter<string> {
  return lookUp('counter', spec, () => new Counter({ ...spec, labelNames: spec.labelNames ?? [], registers: [metricsRegistry] }));
}

export function gauge(spec: MetricSpec<Gauge<string>>): Gauge<string> {
  return lookUp('gauge', spec, () => new Gauge({ ...spec, labelNames: spec.labelNames ?? [], registers: [metricsRegistry] }));
}

export function histogram(spec: MetricSpec<Histogram<string>>): Histogram<string> {
  return lookUp('histogram', spec, () => new Histogram({ ...spec, labelNames: spec.labelNames ?? [], registers: [metricsRegistry] }));
}
