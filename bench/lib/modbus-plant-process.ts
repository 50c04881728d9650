/**
 * The simulated plant (sim/) in its own process, so the Node-RED process under test holds only
 * the Modbus clients: its CPU is the clients' CPU, and the plant's CPU is read from /proc.
 *
 * Parent side: `startPlantProcess({drives, dropEvery})` → {port, pid, command(), stats(), close()}.
 * Child side (this file run as a script): a SimulatedPlant behind lib/modbus/server.ts on port 0,
 * one JSON line `{"port": n}` on stdout when listening, then one command per stdin line:
 *   silence <unit>   the drive stops answering (comms loss: the server sends nothing, as a dead slave)
 *   revive <unit>    it answers again
 *   stats            one JSON line {reads, drops}
 * With `dropEvery` N > 0 the device drops every TCP connection on every N-th read request, before
 * answering it (the request in flight is lost): the "drops the connection every few requests" fault.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ModbusDataModel, ModbusTable, WritableTable } from '../../lib/modbus/data-model';

export interface PlantProcessOptions {
  drives: number;
  /** Drop every connection on every N-th read (0: never). */
  dropEvery?: number;
}

export interface PlantProcess {
  readonly port: number;
  readonly pid: number;
  /** Send `silence <unit>` or `revive <unit>`. */
  command(line: string): void;
  /** Reads served (or dropped) and connection drops so far. */
  stats(): Promise<{ reads: number; drops: number }>;
  close(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function startPlantProcess(options: PlantProcessOptions): Promise<PlantProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, String(options.drives), String(options.dropEvery ?? 0)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (what: string): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`plant process: no answer to ${what} within 20 s`)), 20000);
    waiting.push((line) => { clearTimeout(timer); resolve(line); });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { children.delete(child); resolve(); }));
  const ready = await Promise.race([
    nextLine('start'),
    exited.then(() => { throw new Error('plant process exited before listening'); }),
  ]);
  const { port } = JSON.parse(ready) as { port: number };
  return {
    port,
    pid: child.pid!,
    command(line) {
      child.stdin!.write(line + '\n');
    },
    async stats() {
      const answer = nextLine('stats');
      child.stdin!.write('stats\n');
      return JSON.parse(await answer) as { reads: number; drops: number };
    },
    async close() {
      child.stdin!.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------- child

/** The plant as a data model, dropping every connection on every N-th read when asked to. */
export class DroppingModel implements ModbusDataModel {
  reads = 0;
  drops = 0;
  dropConnections: () => void = () => undefined;

  constructor(private readonly inner: ModbusDataModel, private readonly dropEvery: number) {}

  answers(unitId: number): boolean {
    return this.inner.answers(unitId);
  }

  read(unitId: number, table: ModbusTable, address: number, quantity: number): number[] {
    if (this.dropEvery > 0 && ++this.reads % this.dropEvery === 0) {
      this.drops++;
      this.dropConnections(); // the answer written after this goes nowhere: the request in flight is lost
    } else if (this.dropEvery === 0) {
      this.reads++;
    }
    return this.inner.read(unitId, table, address, quantity);
  }

  write(unitId: number, table: WritableTable, address: number, values: number[]): void {
    this.inner.write(unitId, table, address, values);
  }
}

async function childMain(drives: number, dropEvery: number): Promise<void> {
  const { SimulatedPlant } = await import('../../sim/plant');
  const { startModbusTcpServer } = await import('../../lib/modbus/server');
  const plant = new SimulatedPlant({ drives, seed: 1 });
  const model = new DroppingModel(plant, dropEvery);
  const server = await startModbusTcpServer({ host: '127.0.0.1', port: 0, model, maxConnections: 64 });
  model.dropConnections = () => server.dropConnections();
  plant.start();
  process.stdout.write(JSON.stringify({ port: server.port }) + '\n');
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const [verb, unit] = line.trim().split(/\s+/);
    if (verb === 'silence') plant.injectFault(Number(unit), { kind: 'commsLoss' });
    else if (verb === 'revive') plant.clearFault(Number(unit), 'commsLoss');
    else if (verb === 'stats') process.stdout.write(JSON.stringify({ reads: model.reads, drops: model.drops }) + '\n');
  });
  input.on('close', () => {
    plant.stop();
    void server.close().then(() => process.exit(0));
  });
}

if (require.main === module) {
  childMain(Number(process.argv[2]), Number(process.argv[3])).catch((error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
}
