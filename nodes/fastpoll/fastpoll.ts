/**
 * Node-RED adapter of `uns-fast-poll` (docs/fast-poll.md): reads the config, builds a
 * FastPollController (lib/fastpoll), maps its batches to output 1 (tag batches), trips and
 * statistics to output 2, its state to status() and its statistics to /metrics. The poll loop
 * itself runs on its own thread (native addon, or the TypeScript worker fallback).
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { configNumber } from '../../lib/modbus/link-config';
import { MetricDefinitionError } from '../../lib/modbus/read-plan';
import { FastPollController, FastPollMetric, FastPollSettingsError, FastPollStats, FastPollTrip, PollerEvent } from '../../lib/fastpoll';
import { gauge } from '../../lib/runtime/metrics';

interface FastPollDef extends NodeDef {
  link: string;
  host: string;
  port: number | string;
  unitId: number | string;
  period: number | string;
  timeout: number | string;
  topic: string;
  metrics: FastPollMetric[] | string;
  trips: FastPollTrip[] | string;
  statsInterval: number | string;
  rtPriority: number | string;
  rtCpu: number | string;
  rtSpin: number | string;
  lockMemory: boolean;
  implementation: 'auto' | 'native' | 'fallback';
}

const jsonArray = <T>(value: T[] | string | undefined): T[] => {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string' && value.trim() !== '') return JSON.parse(value) as T[];
  return [];
};

/** Controllers alive in this process, read by the /metrics collectors. */
const live = new Map<string, { node: Node; controller: FastPollController }>();

function registerMetrics(): void {
  const quantiles: Array<[keyof FastPollStats['lateness'], string]> = [['p50Us', '0.5'], ['p99Us', '0.99'], ['p999Us', '0.999'], ['maxUs', '1']];
  gauge({
    name: 'uns_edge_fastpoll_lateness_seconds', help: 'Fast poller wake lateness (wake time − deadline) since start, by quantile',
    labelNames: ['node', 'implementation', 'quantile'],
    collect() {
      this.reset();
      for (const [id, { controller }] of live) {
        const s = controller.stats();
        if (s) for (const [key, q] of quantiles) this.set({ node: id, implementation: s.implementation, quantile: q }, (s.lateness[key] as number) / 1e6);
      }
    },
  });
  gauge({
    name: 'uns_edge_fastpoll_cycle_seconds', help: 'Fast poller cycle time (wake → last answer) since start, by quantile',
    labelNames: ['node', 'implementation', 'quantile'],
    collect() {
      this.reset();
      for (const [id, { controller }] of live) {
        const s = controller.stats();
        if (s) for (const [key, q] of quantiles) this.set({ node: id, implementation: s.implementation, quantile: q }, (s.cycleTime[key] as number) / 1e6);
      }
    },
  });
  gauge({
    name: 'uns_edge_fastpoll_total', help: 'Fast poller counters since start: cycles, overruns, missed deadlines, trips, read errors, dropped changes',
    labelNames: ['node', 'counter'],
    collect() {
      this.reset();
      for (const [id, { controller }] of live) {
        const s = controller.stats();
        if (!s) continue;
        for (const counter of ['cycles', 'overruns', 'missedDeadlines', 'trips', 'readErrors', 'droppedChanges'] as const) {
          this.set({ node: id, counter }, s[counter]);
        }
      }
    },
  });
}

export = function (RED: NodeAPI): void {
  registerMetrics();

  function FastPollNode(this: Node, config: FastPollDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const link = config.link ? (RED.nodes.getNode(config.link) as unknown as Node | null) : null;
    const linkConfig = link as unknown as Record<string, unknown> | null;
    const host = String(linkConfig?.host ?? config.host ?? '').trim();
    const port = configNumber(linkConfig?.port ?? config.port, 502);
    let controller: FastPollController;
    try {
      if (!host) throw new FastPollSettingsError([RED._('fastpoll.error.noHost')]);
      controller = new FastPollController({
        host, port,
        unitId: configNumber(config.unitId, 1),
        periodMs: configNumber(config.period, 10),
        timeoutMs: config.timeout === '' || config.timeout === undefined ? undefined : configNumber(config.timeout, 100),
        metrics: jsonArray(config.metrics),
        trips: jsonArray(config.trips),
        assetPath: config.topic,
        realtime: {
          priority: configNumber(config.rtPriority, 0),
          cpu: configNumber(config.rtCpu, -1),
          spinUs: configNumber(config.rtSpin, 0),
          lockMemory: config.lockMemory === true,
        },
        implementation: config.implementation ?? 'auto',
      });
    } catch (error) {
      const problem = error instanceof FastPollSettingsError || error instanceof MetricDefinitionError || error instanceof SyntaxError || error instanceof RangeError || error instanceof TypeError
        ? error.message : String(error);
      node.error(RED._('fastpoll.error.config', { problem }));
      node.status({ fill: 'red', shape: 'ring', text: 'fastpoll.status.config' });
      return;
    }
    const implementationText = controller.implementation === 'native'
      ? RED._('fastpoll.status.native')
      : RED._('fastpoll.status.fallback', { why: controller.fallbackReason ?? '' });
    node.log(RED._('fastpoll.log.started', { implementation: implementationText, host, port, period: configNumber(config.period, 10) }));
    let connected = false;
    let outage: string | undefined;
    const showStatus = () => {
      const s = controller.stats();
      const p99 = s ? formatUs(s.lateness.p99Us) : '–';
      if (outage) node.status({ fill: 'red', shape: 'ring', text: `${implementationText} · ${outage}` });
      else node.status({ fill: connected ? 'green' : 'yellow', shape: controller.implementation === 'native' ? 'dot' : 'ring', text: `${implementationText} · p99 ${p99}` });
    };
    controller.on('batch', (batch) => node.send([batch as unknown as NodeMessageInFlow, null]));
    controller.on('trip', (trip) => {
      node.warn(RED._('fastpoll.log.trip', { metric: trip.metric, value: String(trip.value), limit: String(trip.limit), kind: trip.kind }));
      node.send([null, { topic: `${config.topic}/$trip`, payload: trip } as unknown as NodeMessageInFlow]);
    });
    controller.on('event', (e: PollerEvent) => {
      if (e.type === 'connected') { connected = true; if (outage) node.log(RED._('fastpoll.log.restored')); outage = undefined; showStatus(); }
      if (e.type === 'disconnected') {
        connected = false;
        outage = `${e.kind}${e.message ? `: ${e.message}` : ''}`;
        node.warn(RED._('fastpoll.log.outage', { reason: outage })); // one line per outage: the poll thread reports each once
        showStatus();
      }
      if (e.type === 'write') node.send([null, { topic: `${config.topic}/$write`, payload: e } as unknown as NodeMessageInFlow]);
    });
    live.set(node.id, { node, controller });
    controller.start();
    showStatus();
    const statsEveryMs = Math.max(1, configNumber(config.statsInterval, 10)) * 1000;
    const statsTimer = setInterval(() => {
      const stats = controller.stats();
      showStatus();
      if (stats) node.send([null, { topic: `${config.topic}/$stats`, payload: stats } as unknown as NodeMessageInFlow]);
    }, statsEveryMs);
    let nextWriteId = 1;
    node.on('input', (msg, _send, done) => {
      // msg.payload = {fc?: 6|16|5|15, address, value | values}: a raw write done between cycles.
      const p = msg.payload as { fc?: 5 | 6 | 15 | 16; address?: unknown; value?: unknown; values?: unknown } | undefined;
      try {
        const values = Array.isArray(p?.values) ? p.values as number[] : [p?.value as number];
        const fc = p?.fc ?? (values.length > 1 ? 16 : 6);
        if (!controller.write(nextWriteId++, fc, p?.address as number, values)) throw new Error(RED._('fastpoll.error.writeQueueFull'));
        done();
      } catch (error) {
        done(new Error(RED._('fastpoll.error.write', { problem: (error as Error).message })));
      }
    });
    node.on('close', (_removed: boolean, closed: () => void) => {
      clearInterval(statsTimer);
      live.delete(node.id);
      controller.stop().then(closed, closed); // joins the poll thread
    });
  }

  RED.nodes.registerType('uns-fast-poll', FastPollNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};

function formatUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${Math.round(us)} µs`;
}
