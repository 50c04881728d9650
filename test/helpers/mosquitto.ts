/**
 * A real Mosquitto broker for integration tests: its own config and data in a temp dir, a free
 * port on 127.0.0.1, stop/kill and restart on the same port. Always call stop() in after(); a
 * process 'exit' hook kills any broker a crashed test run left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from './ports';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface MosquittoTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Demand a client certificate signed by the CA. */
  requireCertificate: boolean;
}

export interface MosquittoOptions {
  /** Keep sessions and queued messages across a graceful restart (SIGTERM). */
  persistence?: boolean;
  tls?: MosquittoTls;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export { freePort };

export class Mosquitto {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(readonly port: number, readonly dir: string, private readonly configFile: string) {}

  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'uns-mosquitto-'));
    const port = await freePort();
    const lines = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      `persistence ${options.persistence ? 'true' : 'false'}`,
      `persistence_location ${dir}/`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'max_queued_messages 100000',
    ];
    // As root Mosquitto switches to user "mosquitto", which cannot write the temp dir.
    if (process.getuid?.() === 0) lines.push('user root');
    if (options.tls) {
      lines.push(`cafile ${options.tls.caFile}`, `certfile ${options.tls.certFile}`, `keyfile ${options.tls.keyFile}`);
      if (options.tls.requireCertificate) lines.push('require_certificate true');
    }
    const configFile = join(dir, 'mosquitto.conf');
    writeFileSync(configFile, lines.join('\n') + '\n');
    const broker = new Mosquitto(port, dir, configFile);
    await broker.restart();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Start (again) on the same port and wait until it accepts connections. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('mosquitto is already running');
    const child = spawn(MOSQUITTO_BIN, ['-c', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    running.add(child);
    child.stderr?.on('data', (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-4000);
    });
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    });
    await this.waitUntilAccepting(child);
  }

  /** Stop the broker: SIGTERM lets it save persistence; SIGKILL is a crash. Resolves once it exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Stop and remove the temp dir. */
  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitUntilAccepting(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`mosquitto exited at start (code ${child.exitCode}): ${this.output}`);
      }
      if (await accepts(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`mosquitto did not accept connections on port ${this.port} within 10 s: ${this.output}`);
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

/** Shorthand used by the e2e tests. */
export type MosquittoProcess = Mosquitto;
export function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  return Mosquitto.start(options);
}
