/**
 * A real 3-node NATS cluster (Debian `nats-server`, 2.9.x) with JetStream and MQTT, on loopback and
 * free ports, for the broker-failover tests (docs/scaling.md). NATS's MQTT support needs JetStream
 * and a server name per node; its sessions, retained messages and QoS 1 queues live in JetStream
 * streams replicated across the cluster, so a client that fails over to another node finds its
 * session, and a retained message is seen from every node.
 *
 * Missing `nats-server` is installed by scripts/ensure-system-deps.sh (run here when needed).
 * Always call dispose() in after(); a process 'exit' hook kills any node a crashed run left behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './mosquitto';

export const NATS_SERVER_BIN = '/usr/sbin/nats-server';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Install nats-server through the project's system-deps script when it is missing. */
export function ensureNatsServer(): void {
  if (existsSync(NATS_SERVER_BIN)) return;
  execFileSync('bash', [join(__dirname, '..', '..', 'scripts', 'ensure-system-deps.sh')], { stdio: 'inherit' });
  if (!existsSync(NATS_SERVER_BIN)) throw new Error(`${NATS_SERVER_BIN} is still missing after scripts/ensure-system-deps.sh`);
}

interface NatsNodePorts {
  client: number;
  cluster: number;
  mqtt: number;
  monitor: number;
}

export class NatsNode {
  private child: ChildProcess | undefined;
  private output = '';

  constructor(readonly name: string, readonly ports: NatsNodePorts, private readonly configFile: string) {}

  /** mqtt://127.0.0.1:<mqtt port> of this node. */
  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.ports.mqtt}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get log(): string {
    return this.output;
  }

  /** Start (again) with the same ports and store; resolves when its MQTT port accepts connections. */
  async start(): Promise<void> {
    if (this.child) throw new Error(`nats node ${this.name} is already running`);
    const child = spawn(NATS_SERVER_BIN, ['-c', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    running.add(child);
    child.stderr?.on('data', (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20000);
    });
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nats-server ${this.name} exited at start: ${this.output}`);
      if (await accepts(this.ports.mqtt)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`nats-server ${this.name} did not accept MQTT connections within 15 s: ${this.output}`);
  }

  /** SIGKILL is a crash (no goodbye to anyone); SIGTERM a clean stop. Resolves once it exited. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** The node's JetStream view (GET /jsz on the monitoring port), e.g. to wait for a meta leader. */
  async jetstreamInfo(): Promise<{ meta_cluster?: { leader?: string; cluster_size?: number } }> {
    const response = await fetch(`http://127.0.0.1:${this.ports.monitor}/jsz`);
    return (await response.json()) as { meta_cluster?: { leader?: string; cluster_size?: number } };
  }
}

export class NatsCluster {
  private constructor(readonly dir: string, readonly nodes: NatsNode[]) {}

  /** Start `size` nodes (default 3) as one cluster; resolves when JetStream has a meta leader. */
  static async start(size = 3): Promise<NatsCluster> {
    ensureNatsServer();
    const dir = mkdtempSync(join(tmpdir(), 'uns-nats-'));
    const ports: NatsNodePorts[] = [];
    for (let i = 0; i < size; i++) {
      ports.push({ client: await freePort(), cluster: await freePort(), mqtt: await freePort(), monitor: await freePort() });
    }
    const nodes = ports.map((own, i) => {
      const name = `n${i + 1}`;
      const store = join(dir, name);
      mkdirSync(store, { recursive: true });
      const routes = ports.filter((_, j) => j !== i).map((other) => `nats-route://127.0.0.1:${other.cluster}`);
      const configFile = join(dir, `${name}.conf`);
      writeFileSync(configFile, [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${own.client}`,
        `http: 127.0.0.1:${own.monitor}`,
        `jetstream { store_dir: "${store}" }`,
        `cluster { name: uns-test, listen: 127.0.0.1:${own.cluster}, routes: [${routes.join(', ')}] }`,
        // Sessions, retained messages and QoS 1 queues on every node: with NATS's default (R = the
        // peers it sees when the first client connects, often 2 of 3) one dead node stalls them.
        `mqtt { listen: 127.0.0.1:${own.mqtt}, stream_replicas: ${size}, consumer_replicas: ${size} }`,
        '',
      ].join('\n'));
      return new NatsNode(name, own, configFile);
    });
    const cluster = new NatsCluster(dir, nodes);
    try {
      await Promise.all(nodes.map((node) => node.start()));
      await cluster.waitForMetaLeader();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  /** Every node's MQTT URL, in node order (a server list for uns-broker). */
  get mqttUrls(): string[] {
    return this.nodes.map((node) => node.mqttUrl);
  }

  /** Wait until every running node agrees on a JetStream meta leader (MQTT sessions need it). */
  async waitForMetaLeader(timeoutMs = 20000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const infos = await Promise.all(this.nodes.filter((node) => node.running).map((node) => node.jetstreamInfo().catch(() => undefined)));
      const leaders = new Set(infos.map((info) => info?.meta_cluster?.leader));
      const [leader] = leaders;
      if (leaders.size === 1 && leader !== undefined && leader !== '') return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`NATS JetStream has no meta leader after ${timeoutMs} ms`);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
