/**
 * Preloaded (`node --require`) into a gateway process of bench/pipeline.ts, which runs the real
 * runtime (the `uns-edge run --headless` CLI, or Node-RED's own `red.js` for the peer) and cannot
 * otherwise be asked what it did. Over the IPC channel of `child_process.fork`:
 *
 *   {stats: true}                → {stats: {published, warnings, errors, lastProblem, memory}}
 *   {liveHeap: true}             → {liveHeapMb}  (V8 heap used after a full GC forced through node:inspector)
 *   {profile: 'start'}           → {profiling: true}  (V8 CPU profiler of this process, node:inspector)
 *   {profile: 'stop', file}      → {profiled: file}   (the .cpuprofile written)
 *
 * `published` counts the PUBLISH packets the gateway hands to its MQTT client: uns-edge's
 * `MqttConnection.publish()` calls (lib/mqtt/connection.ts, which writes QoS 0 packets itself) and
 * MQTT.js `publish()` calls made outside it, on every copy of MQTT.js the runtime loads (uns-edge's
 * lib/mqtt and Node-RED's core mqtt nodes may resolve different versions); warnings and errors count
 * Node-RED log entries (node.warn/node.error included) at those levels; `memory` is process.memoryUsage() in MB
 * now (where the RSS goes: V8 heap used/total, external and ArrayBuffer memory).
 *
 * Plain Node.js and CommonJS (bench/pipeline.ts transpiles it to JavaScript before the run), so the
 * process carries no TypeScript loader: its RSS is the runtime's. PIPELINE_HOOK_ROOT says where the
 * runtime's packages resolve from.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';

interface Memory { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }
interface Stats { published: number; warnings: number; errors: number; lastProblem: string; memory?: Memory }
type Request = { stats: true } | { liveHeap: true } | { profile: 'start' } | { profile: 'stop'; file: string };

const root = process.env.PIPELINE_HOOK_ROOT ?? process.cwd();
const stats: Stats = { published: 0, warnings: 0, errors: 0, lastProblem: '' };

function resolveFrom(name: string, from: string): string | undefined {
  try {
    return require.resolve(name, { paths: [from] });
  } catch {
    return undefined;
  }
}

const nodeRedNodes = resolveFrom('@node-red/nodes/package.json', dirname(resolveFrom('node-red/package.json', root) ?? root));
let inConnectionPublish = false;
// Only in an uns-edge gateway: the peer's process must not load uns-edge's modules.
const script = process.argv[1] ?? '';
if (/uns-edge\.js$/.test(script)) {
  const connectionModule = resolveFrom(join(dirname(script), '..', 'lib', 'mqtt', 'connection.js'), root);
  // Without it QoS 0 publishes would go uncounted: refuse rather than report a loss that is not one.
  if (connectionModule === undefined) throw new Error(`pipeline hook: no lib/mqtt/connection.js beside ${script}`);
  const proto = (require(connectionModule) as { MqttConnection: { prototype: { publish: (...a: unknown[]) => unknown } } }).MqttConnection.prototype;
  const publish = proto.publish;
  proto.publish = function countedConnectionPublish(this: unknown, ...a: unknown[]) {
    inConnectionPublish = true;
    try {
      const id = publish.apply(this, a);
      stats.published++; // a publish that threw ("not connected") was not made
      return id;
    } finally {
      inConnectionPublish = false;
    }
  };
}
const mqttCopies = new Set([resolveFrom('mqtt', root), nodeRedNodes && resolveFrom('mqtt', dirname(nodeRedNodes))].filter((p): p is string => p !== undefined));
for (const path of mqttCopies) {
  const proto = (require(path) as { MqttClient: { prototype: { publish: (...a: unknown[]) => unknown } } }).MqttClient.prototype;
  const publish = proto.publish;
  proto.publish = function countedPublish(this: unknown, ...a: unknown[]) {
    const client = publish.apply(this, a);
    if (!inConnectionPublish) stats.published++;
    return client;
  };
}

const utilPath = resolveFrom('@node-red/util', dirname(resolveFrom('node-red/package.json', root) ?? root));
if (utilPath) {
  const log = (require(utilPath) as { log: { log(entry: { level: number; msg: unknown }): void } }).log;
  const original = log.log;
  log.log = function countedLog(entry) {
    // @node-red/util log levels: fatal 10, error 20, warn 30.
    if (entry.level <= 30) {
      if (entry.level === 30) stats.warnings++;
      else stats.errors++;
      stats.lastProblem = String(entry.msg instanceof Error ? entry.msg.message : entry.msg).slice(0, 200);
    }
    original.call(this, entry);
  };
}

const session = new Session();
process.on('message', (m: Request) => {
  void (async () => {
    if ('stats' in m) {
      const usage = process.memoryUsage();
      const mb = (bytes: number): number => Math.round(bytes / 1048576);
      stats.memory = { rss: mb(usage.rss), heapTotal: mb(usage.heapTotal), heapUsed: mb(usage.heapUsed), external: mb(usage.external), arrayBuffers: mb(usage.arrayBuffers) };
      process.send?.({ stats });
    } else if ('liveHeap' in m) {
      // A full GC through the inspector (no --expose-gc needed), after the measured window.
      session.connect();
      await session.post('HeapProfiler.collectGarbage');
      session.disconnect();
      process.send?.({ liveHeapMb: Math.round(process.memoryUsage().heapUsed / 1048576) });
    } else if (m.profile === 'start') {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      process.send?.({ profiling: true });
    } else {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(m.file, JSON.stringify(profile));
      session.disconnect();
      process.send?.({ profiled: m.file });
    }
  })();
});
