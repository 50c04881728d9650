/**
 * A pseudo-terminal pair from socat (Debian package) for Modbus RTU tests: two linked serial
 * devices `a` and `b` in a fresh temp dir, so tests can run in parallel. What is written to one
 * end is read at the other, byte for byte (raw, no echo). stop() ends socat and removes the dir;
 * restart() brings the pair back at the same paths (a serial adapter unplugged and plugged in).
 *
 * Linux ptys refuse parity (tcsetattr PARENB → EINVAL in pyserial), so RTU over a pty runs 8N1;
 * the baud rate is accepted and ignored, bytes arrive as fast as the pty carries them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOCAT_BIN = '/usr/bin/socat';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PtyPair {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(readonly dir: string) {}

  /** One end (the master's side in these tests). */
  get a(): string {
    return join(this.dir, 'a');
  }

  /** The other end (the device's side). */
  get b(): string {
    return join(this.dir, 'b');
  }

  static async start(): Promise<PtyPair> {
    const pair = new PtyPair(mkdtempSync(join(tmpdir(), 'uns-pty-')));
    await pair.launch();
    return pair;
  }

  private async launch(): Promise<void> {
    const child = spawn(SOCAT_BIN, ['-d', '-d', `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    running.add(child);
    child.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    child.on('exit', () => running.delete(child));
    const end = Date.now() + 5000;
    while (!(existsSync(this.a) && existsSync(this.b) && /starting data transfer loop/.test(this.output))) {
      if (child.exitCode !== null || Date.now() > end) {
        throw new Error(`socat did not create the pty pair: ${this.output}`);
      }
      await sleep(10);
    }
  }

  /** End socat: both devices disappear (the serial adapter is gone). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  /** Bring the pair back at the same paths. */
  async restart(): Promise<void> {
    await this.kill();
    this.output = '';
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
