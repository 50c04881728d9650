/**
 * Test helpers that run Debian's python3-pymodbus (3.0.0rc1) as an independent Modbus peer:
 * a client (pymodbus_client.py) and a server (pymodbus_server.py, TCP on a free port or RTU on a
 * serial device), both driven by JSON lines. Both are real processes; close() ends them.
 */
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Debian's python has pymodbus; the python first on PATH may not. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export type PymodbusAnswer =
  | { ok: true; registers?: number[]; bits?: number[] }
  | { ok: false; exception?: number; error?: string };

export interface PymodbusRequest {
  op: string;
  address?: number;
  count?: number;
  value?: number | boolean | number[] | boolean[];
  slave?: number;
}

/** A line-oriented child process: one JSON line in, one JSON line out, in order. */
class JsonLineProcess {
  private readonly waiting: Array<(line: string) => void> = [];
  private stderr = '';
  private exited = false;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => this.waiting.shift()?.(line));
    child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    child.on('exit', () => {
      this.exited = true;
      for (const waiter of this.waiting.splice(0)) waiter(JSON.stringify({ ok: false, error: `exited: ${this.stderr}` }));
    });
  }

  nextLine(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.exited) {
        reject(new Error(`pymodbus process exited: ${this.stderr}`));
        return;
      }
      const timer = setTimeout(() => reject(new Error(`pymodbus gave no answer in ${timeoutMs} ms: ${this.stderr}`)), timeoutMs);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  close(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

export interface PymodbusClient {
  request(req: PymodbusRequest): Promise<PymodbusAnswer>;
  close(): Promise<void>;
}

/** Start a pymodbus TCP client connected to host:port. */
export async function startPymodbusClient(host: string, port: number): Promise<PymodbusClient> {
  const proc = new JsonLineProcess(
    spawn(DEBIAN_PYTHON, [join(__dirname, 'pymodbus_client.py'), host, String(port)], { stdio: 'pipe' }),
  );
  const ready = JSON.parse(await proc.nextLine(10_000)) as PymodbusAnswer;
  if (!ready.ok) {
    await proc.close();
    throw new Error(`pymodbus client could not connect: ${ready.error}`);
  }
  return {
    async request(req) {
      const answer = proc.nextLine(5_000);
      proc.child.stdin.write(`${JSON.stringify(req)}\n`);
      return JSON.parse(await answer) as PymodbusAnswer;
    },
    async close() {
      proc.child.stdin.end();
      await proc.close();
    },
  };
}

export interface PymodbusServerCommand {
  cmd: 'set' | 'get' | 'remove_unit' | 'add_unit' | 'fail' | 'drop';
  unit?: number;
  table?: 'coil' | 'discrete' | 'holding' | 'input';
  address?: number;
  values?: number[];
  count?: number;
  on?: boolean;
}

export interface PymodbusServer {
  readonly port: number;
  /** Run a control command (see pymodbus_server.py); throws if pymodbus reports an error. */
  command(cmd: PymodbusServerCommand): Promise<{ ok: true; values?: number[] }>;
  close(): Promise<void>;
}

export interface PymodbusRtuServer extends Omit<PymodbusServer, 'port'> {
  /** The serial device it serves. */
  readonly path: string;
}

/** Start pymodbus_server.py with `config`; resolves once it reports ready, with where it serves. */
async function startServerProcess(config: object): Promise<Omit<PymodbusServer, 'port'> & { port: number | string }> {
  const proc = new JsonLineProcess(
    spawn(DEBIAN_PYTHON, [join(__dirname, 'pymodbus_server.py'), JSON.stringify(config)], { stdio: 'pipe' }),
  );
  const ready = JSON.parse(await proc.nextLine(10_000)) as { ready?: boolean; port?: number | string };
  if (!ready.ready || !ready.port) {
    await proc.close();
    throw new Error(`pymodbus server did not start: ${JSON.stringify(ready)}`);
  }
  return {
    port: ready.port,
    async command(cmd) {
      const answer = proc.nextLine(5_000);
      proc.child.stdin.write(`${JSON.stringify(cmd)}\n`);
      const parsed = JSON.parse(await answer) as { ok: boolean; error?: string; values?: number[] };
      if (!parsed.ok) throw new Error(`pymodbus server: ${parsed.error}`);
      return parsed as { ok: true; values?: number[] };
    },
    async close() {
      proc.child.stdin.end();
      await proc.close();
    },
  };
}

/** Start a pymodbus TCP server on 127.0.0.1 and a free port, serving `units` with `size` items per table. */
export async function startPymodbusServer(config: { units: number[]; size?: number }): Promise<PymodbusServer> {
  const server = await startServerProcess(config);
  return { ...server, port: server.port as number };
}

/**
 * Start a pymodbus RTU server on the serial device `path` (one end of a socat pty pair), 8N1:
 * Linux ptys refuse parity (see test/helpers/socat.ts). Needs pyserial and serial_asyncio.
 */
export async function startPymodbusRtuServer(config: { units: number[]; size?: number; path: string; baudrate?: number }): Promise<PymodbusRtuServer> {
  const { path, baudrate, ...rest } = config;
  const server = await startServerProcess({ ...rest, serial: { port: path, baudrate: baudrate ?? 38400, parity: 'N', stopbits: 1 } });
  return { command: server.command, close: server.close, path };
}
