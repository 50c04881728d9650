/**
 * The simulated plant (sim/), loaded only by the commands that need it, so `run` never loads it.
 */
import { join } from 'node:path';
import type { SimulatedPlantHandle, StartSimulatedPlantOptions } from '../sim/index';
import type { CliOpcUaServer, CliOpcUaServerOptions } from '../sim/opcua-cli';
import { StartupError } from './listen';

/**
 * The value of `simulate --ports`: ports separated by commas, a range as FIRST-LAST
 * ("5020,5021", "5020-5023"); 0 picks a free port. Throws a RangeError naming the bad part.
 */
export function parsePortList(text: string): number[] {
  const ports: number[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    const [first, last] = range ? [Number(range[1]), Number(range[2])] : [Number(part), Number(part)];
    if (part === '' || !Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last > 65535 || last < first) {
      throw new RangeError(`--ports ${text}: "${part}" is not a port in 0..65535 or a range FIRST-LAST`);
    }
    for (let port = first; port <= last; port++) ports.push(port);
  }
  return ports;
}

export async function startPlant(options: StartSimulatedPlantOptions): Promise<SimulatedPlantHandle> {
  const { startSimulatedPlant } = require('../sim/index') as typeof import('../sim/index');
  try {
    return await startSimulatedPlant(options);
  } catch (error) {
    // The plant's own messages name the port and how to choose another.
    throw new StartupError((error as Error).message);
  }
}

/** Where `uns-edge simulate` keeps the OPC UA server's PKI and users unless told (--state-dir). */
export const DEFAULT_OPCUA_SIM_STATE_DIR = join('.uns-edge', 'opcua-sim');

/** The same drives over OPC UA (sim/opcua-cli.ts); node-opcua is loaded only here. */
export async function startOpcUaPlant(options: CliOpcUaServerOptions): Promise<CliOpcUaServer> {
  const { startCliOpcUaServer } = require('../sim/opcua-cli') as typeof import('../sim/opcua-cli');
  try {
    return await startCliOpcUaServer(options);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
}
