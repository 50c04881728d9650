/**
 * The broker-side counter of bench/pipeline.ts in its own process: one MQTT.js client subscribed to
 * everything (`#`, QoS 1, so each message arrives at the QoS it was published with) and to Mosquitto's
 * `$SYS/broker/publish/messages/dropped`, counting the tag updates each side of the bench delivered
 * THROUGH THE BROKER, and checking every one of them:
 *
 *   - UNS JSON (docs/uns-topics.md), per-metric topics `<root>/<asset path>/<metric>`: one update per
 *     message, `{"value": …, "timestamp": …, "quality": …}`; an asset topic `{"timestamp", "metrics": {…}}`
 *     counts one update per metric. A quality other than "good" is counted as bad, a payload that is not
 *     such JSON as unparsable.
 *   - Sparkplug B DDATA `spBv1.0/<root>/DDATA/<edge>/<device>`: one update per metric of the payload
 *     (decoded with lib/sparkplug/payload); DBIRTHs are counted apart.
 *
 * A window is keyed by the side's root (the first topic level of its UNS topics, or its Sparkplug group):
 * stdin `start <root>` opens it, `stop <root>` prints one JSON line (WindowCount) and closes it; messages
 * are counted by receipt time, live only (retained messages the broker replays are skipped).
 * `dropped` prints the broker's latest dropped-message counter (Mosquitto updates $SYS every sys_interval).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface WindowCount {
  /** MQTT messages received. */
  messages: number;
  /** Tag updates in them (metrics). */
  updates: number;
  /** Updates whose quality was not "good". */
  bad: number;
  unparsable: number;
  /** Payload bytes received. */
  bytes: number;
  /** Distinct assets (UNS asset paths or Sparkplug devices) seen. */
  assets: number;
  /** Distinct metric topics (UNS per-metric) or device/metric pairs (Sparkplug) seen. */
  topics: number;
  births: number;
}

export interface PipelineCounter {
  readonly pid: number;
  start(root: string): void;
  stop(root: string): Promise<WindowCount>;
  /** $SYS/broker/publish/messages/dropped as last published by the broker (NaN before the first). */
  dropped(): Promise<number>;
  close(): void;
}

export async function startPipelineCounter(url: string): Promise<PipelineCounter> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', __filename, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const pending: Array<(line: string) => void> = [];
  lines.on('line', (line) => pending.shift()?.(line));
  const next = (): Promise<string> => new Promise((resolve) => pending.push(resolve));
  const ready = await next();
  if (ready !== 'subscribed') throw new Error(`pipeline counter: ${ready}`);
  const send = (command: string): void => { child.stdin?.write(`${command}\n`); };
  return {
    pid: child.pid as number,
    start: (root) => send(`start ${root}`),
    stop: async (root) => { send(`stop ${root}`); return JSON.parse(await next()) as WindowCount; },
    dropped: async () => { send('dropped'); return Number(await next()); },
    close: () => { child.kill('SIGKILL'); },
  };
}

class OpenWindow implements WindowCount {
  messages = 0;
  updates = 0;
  bad = 0;
  unparsable = 0;
  bytes = 0;
  births = 0;
  readonly assetSet = new Set<string>();
  readonly topicSet = new Set<string>();
  get assets(): number { return this.assetSet.size; }
  get topics(): number { return this.topicSet.size; }
  toJSON(): WindowCount {
    const { messages, updates, bad, unparsable, bytes, assets, topics, births } = this;
    return { messages, updates, bad, unparsable, bytes, assets, topics, births };
  }
}

type MetricJson = { value?: unknown; timestamp?: unknown; quality?: unknown };

async function runChild(url: string): Promise<void> {
  const { connect } = await import('mqtt');
  const { decodePayload } = await import('../../lib/sparkplug/payload');
  const client = connect(url, { clientId: `pipeline-counter-${process.pid}`, clean: true });
  const windows = new Map<string, OpenWindow>();
  let dropped = NaN;

  const countUnsMetric = (w: OpenWindow, body: MetricJson): void => {
    if (typeof body !== 'object' || body === null || !('value' in body) || typeof body.timestamp !== 'number') {
      w.unparsable++;
      return;
    }
    w.updates++;
    if (body.quality !== 'good') w.bad++;
  };

  client.on('message', (topic, payload, packet) => {
    if (topic === '$SYS/broker/publish/messages/dropped') {
      dropped = Number(payload.toString());
      return;
    }
    if (packet.retain) return; // the broker's stored state, not a live update
    const sparkplug = topic.startsWith('spBv1.0/');
    const parts = topic.split('/');
    const w = windows.get(sparkplug ? parts[1] : parts[0]);
    if (!w) return;
    w.messages++;
    w.bytes += payload.length;
    if (sparkplug) {
      const type = parts[2];
      if (type === 'DBIRTH') { w.births++; return; }
      if (type !== 'DDATA') return;
      try {
        const decoded = decodePayload(payload);
        w.assetSet.add(parts[4]);
        for (const m of decoded.metrics) {
          w.updates++;
          w.topicSet.add(`${parts[4]}/${m.alias ?? m.name}`);
          if (m.isNull) w.bad++;
        }
      } catch {
        w.unparsable++;
      }
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(payload.toString());
    } catch {
      w.unparsable++;
      return;
    }
    const metrics = (body as { metrics?: Record<string, MetricJson> }).metrics;
    if (metrics !== undefined && typeof metrics === 'object') {
      // An asset topic: one update per metric.
      w.assetSet.add(topic);
      for (const [name, metric] of Object.entries(metrics)) {
        w.topicSet.add(`${topic}/${name}`);
        countUnsMetric(w, metric);
      }
    } else {
      w.assetSet.add(topic.slice(0, topic.lastIndexOf('/')));
      w.topicSet.add(topic);
      countUnsMetric(w, body as MetricJson);
    }
  });
  client.subscribe({ '#': { qos: 1 }, '$SYS/broker/publish/messages/dropped': { qos: 0 } }, (error) => {
    process.stdout.write(error ? `subscribe failed: ${error.message}\n` : 'subscribed\n');
  });
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, root] = line.split(' ');
    if (command === 'start') {
      windows.set(root, new OpenWindow());
    } else if (command === 'stop') {
      const w = windows.get(root) ?? new OpenWindow();
      windows.delete(root);
      process.stdout.write(`${JSON.stringify(w)}\n`);
    } else if (command === 'dropped') {
      process.stdout.write(`${dropped}\n`);
    }
  });
}

if (require.main === module) void runChild(process.argv[2]);
