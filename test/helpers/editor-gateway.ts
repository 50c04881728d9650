/**
 * The built gateway with its editor on loopback (`uns-edge run --flows … --host 127.0.0.1`), and
 * Debian's Chromium to drive the editor: the set-up shared by the editor tests that open real
 * dialogs. Needs dist/ (npm test builds it first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from './ports';

const REPO = join(__dirname, '..', '..');

/** Flags of headless Chromium on a machine without internet (docs: env machines/node.md). */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A bcrypt hash of `password` for UNS_EDGE_ADMIN_PASSWORD_HASH, made with Node-RED's own bcryptjs. */
export function bcryptHash(password: string): string {
  const nodeRed = dirname(require.resolve('node-red/package.json'));
  const bcrypt = require(require.resolve('bcryptjs', { paths: [nodeRed] })) as { hashSync(password: string, rounds: number): string };
  return bcrypt.hashSync(password, 8);
}

export interface EditorGatewayOptions {
  flows: string;
  userDir: string;
  /**
   * Added to the process environment (a credential secret is always set). The UNS_EDGE_* variables
   * of the shell that runs the tests are not passed on: the gateway sees only the test's own.
   */
  env?: Record<string, string>;
  /** More `uns-edge run` flags (e.g. `--settings <file>`, `--http-node`). */
  args?: string[];
  /** How long the gateway may take to say it is ready and the editor to answer (default 20 s). */
  readyMs?: number;
}

export class EditorGateway {
  /** Everything the gateway printed, stdout and stderr. */
  output = '';

  private constructor(readonly url: string, private readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk) => { this.output += chunk; });
    child.stderr?.on('data', (chunk) => { this.output += chunk; });
  }

  /**
   * Start it and wait until it logs "gateway ready in" (its flows are started) and the editor
   * answers; throws with the gateway's output if it does not.
   */
  static async start(options: EditorGatewayOptions): Promise<EditorGateway> {
    const port = await freePort();
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_')));
    const child = spawn(process.execPath, [join(REPO, 'dist/cli/uns-edge.js'), 'run', '--flows', options.flows, '--user-dir', options.userDir, '--port', String(port), '--host', '127.0.0.1', ...(options.args ?? [])], {
      env: { ...inherited, UNS_EDGE_CREDENTIAL_SECRET: 'editor-test-secret-0123456789abcdef', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const gateway = new EditorGateway(`http://127.0.0.1:${port}/`, child);
    const readyMs = options.readyMs ?? 20_000;
    const deadline = Date.now() + readyMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`gateway exited early:\n${gateway.output}`);
      try {
        if (/gateway ready in/.test(gateway.output) && (await fetch(gateway.url)).ok) return gateway;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        await gateway.stop();
        throw new Error(`the gateway was not ready within ${readyMs / 1000} s:\n${gateway.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Logs in as the editor does (POST /auth/token, adminAuth's password grant) and returns the bearer token. */
  async login(username: string, password: string): Promise<string> {
    const granted = await fetch(new URL('auth/token', this.url), {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'node-red-editor', grant_type: 'password', scope: '*', username, password }),
    });
    if (granted.status !== 200) throw new Error(`login as ${username} refused: ${granted.status} ${await granted.text()}`);
    return ((await granted.json()) as { access_token: string }).access_token;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
