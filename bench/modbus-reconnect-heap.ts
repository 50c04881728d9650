/**
 * Issue 3, leak check below the nodes: lib/modbus's ModbusClient alone (no Node-RED) against
 * lib/modbus/server.ts in the same process, the server dropping every connection on every N-th
 * read before answering it, reconnecting after 1–2 ms, two units read back to back. Prints
 * connects, requests and heap used after a forced GC every 10 s: if a connection cycle leaked,
 * heap would grow with the connect count (tens of thousands of cycles per minute).
 *
 *   node --expose-gc --import tsx bench/modbus-reconnect-heap.ts [--seconds 70] [--drop-every 7]
 */
import { parseArgs } from 'node:util';
import { createModbusTcpClient } from '../lib/modbus/client';
import { MemoryDataModel } from '../lib/modbus/memory-model';
import { startModbusTcpServer } from '../lib/modbus/server';
import { DroppingModel } from './lib/modbus-plant-process';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '70' }, 'drop-every': { type: 'string', default: '7' } } });
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc');
  const model = new DroppingModel(new MemoryDataModel({ units: [1, 2] }), Number(args['drop-every']));
  const server = await startModbusTcpServer({ host: '127.0.0.1', port: 0, model });
  model.dropConnections = () => server.dropConnections();
  const client = createModbusTcpClient({ host: '127.0.0.1', port: server.port, timeoutMs: 200, reconnectMinMs: 1, reconnectMaxMs: 2 });
  let completed = 0;
  let running = true;
  const readForever = (unit: number): void => client.submit(unit, { fc: 4, address: 0, quantity: 16 }, () => {
    completed++;
    if (running) setImmediate(() => readForever(unit));
  });
  readForever(1);
  readForever(2);
  for (let t = 10; t <= Number(args.seconds); t += 10) {
    await new Promise((r) => setTimeout(r, 10000));
    gc!();
    const m = process.memoryUsage();
    console.log(`t=${t} s  connects ${client.stats.connects}  drops ${model.drops}  requests completed ${completed}  heap used ${(m.heapUsed / 1048576).toFixed(2)} MB  rss ${(m.rss / 1048576).toFixed(1)} MB`);
  }
  running = false;
  await client.close();
  await server.close();
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
