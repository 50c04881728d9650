/**
 * A gateway for the Sparkplug conformance suite's restart tests: one edge node with devices in a
 * process of its own, fed with tag batches on a timer, so a test can stop it gracefully (SIGTERM:
 * NDEATH, DISCONNECT) or kill it (SIGKILL: the broker publishes the Will) and start it again on the
 * same bdSeq file.
 *
 * As a script: `node --import tsx sparkplug-edge-process.ts '<EdgeProcessConfig as JSON>'`; prints
 * one line per edge node state change (`state online`), and `fed <last Counter>` when stopped with
 * SIGTERM. As a module: EdgeProcess starts/stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { SparkplugDevice } from '../../lib/sparkplug/device';
import { SparkplugEdgeNode } from '../../lib/sparkplug/edge-node';

export interface EdgeProcessConfig {
  port: number;
  bdSeqFile: string;
  groupId: string;
  edgeNodeId: string;
  deviceIds: string[];
  feedMs: number;
  /** Store-and-forward directory; none: data while offline is dropped. */
  storeDir?: string;
  /** First value of the fed Counter metric (then +1 per batch). Default 1. */
  startAt?: number;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export class EdgeProcess {
  private child: ChildProcess | undefined;
  readonly lines: string[] = [];

  constructor(private readonly config: EdgeProcessConfig) {}

  start(): void {
    if (this.child) throw new Error('already running');
    const child = spawn(process.execPath, ['--import', 'tsx', __filename, JSON.stringify(this.config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    children.add(child);
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    child.stderr?.on('data', (chunk: Buffer) => this.lines.push(`stderr: ${chunk.toString().trim()}`));
    child.once('exit', () => {
      children.delete(child);
      if (this.child === child) this.child = undefined;
    });
  }

  /** SIGTERM (graceful: NDEATH first) or SIGKILL (a crash); resolves when the process has exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }
}

async function main(config: EdgeProcessConfig): Promise<void> {
  const edge = new SparkplugEdgeNode({
    groupId: config.groupId,
    edgeNodeId: config.edgeNodeId,
    software: 'uns-edge restart test',
    bdSeqFile: config.bdSeqFile,
    store: config.storeDir === undefined ? undefined : { dir: config.storeDir },
    mqtt: {
      host: '127.0.0.1', port: config.port, protocolVersion: 4, clientId: `uns-edge-restart-${config.edgeNodeId}`,
      keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 },
    },
    warn: (message) => console.log(`warn ${message}`),
    info: (message) => console.log(`info ${message}`),
  });
  edge.on('state', (state) => console.log(`state ${state}`));
  const devices = config.deviceIds.map((deviceId) => new SparkplugDevice(edge, { deviceId, deathOnBadQuality: true, staleAfterMs: 0, writable: false }));
  let counter = (config.startAt ?? 1) - 1;
  const feed = (): void => {
    counter++;
    for (const device of devices) device.handleBatch({ topic: `acme/plant/area/line/cell/${device.deviceId}`, payload: { Counter: counter } });
  };
  feed();
  const timer = setInterval(feed, config.feedMs);
  process.on('SIGTERM', () => {
    clearInterval(timer);
    console.log(`fed ${counter}`);
    void edge.close().then(() => process.exit(0));
  });
  edge.start();
}

if (process.argv[1] === __filename) void main(JSON.parse(process.argv[2]) as EdgeProcessConfig);
