/**
 * The simulated plant of bench/plant-scale.ts in its own process: one Modbus TCP port per line
 * (sim/ `startSimulatedPlant({ports})`, unit ids 1..drives on each port), so every gateway polls its
 * own line over its own connection and the plant's CPU is measured apart from the gateways'.
 *
 * sim/ listens on at most 16 ports per plant, so more lines take several plant processes.
 * Parent side: `startPlant(lines, drivesPerLine)` → {pid, ports, close()}. Child side: prints one
 * JSON line `{"ports": [...]}` when listening, runs until killed.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface PlantProcess {
  readonly pid: number;
  readonly ports: number[];
  close(): void;
}

export async function startPlant(lines: number, drivesPerLine: number): Promise<PlantProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, String(lines), String(drivesPerLine)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`plant exited with ${code}`)));
  });
  const { ports } = JSON.parse(first) as { ports: number[] };
  return { pid: child.pid as number, ports, close: () => { child.kill('SIGKILL'); } };
}

async function runChild(lines: number, drivesPerLine: number): Promise<void> {
  const { startSimulatedPlant } = await import('../../sim/index');
  const plant = await startSimulatedPlant({ host: '127.0.0.1', ports: Array(lines).fill(0), drives: lines * drivesPerLine, seed: 1 });
  process.stdout.write(`${JSON.stringify({ ports: plant.ports.map((p) => p.port) })}\n`);
}

if (require.main === module) void runChild(Number(process.argv[2]), Number(process.argv[3]));
