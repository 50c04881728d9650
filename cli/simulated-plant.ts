/**
 * The simulated plant (sim/), loaded only by the commands that need it, so `run` never loads it.
 */
import type { SimulatedPlantHandle, StartSimulatedPlantOptions } from '../sim/index';
import type { CliOpcUaServer, CliOpcUaServerOptions } from '../sim/opcua-cli';
import { StartupError } from './listen';

export async function startPlant(options: StartSimulatedPlantOptions): Promise<SimulatedPlantHandle> {
  const { startSimulatedPlant } = require('../sim/index') as typeof import('../sim/index');
  try {
    return await startSimulatedPlant(options);
  } catch (error) {
    // The plant's own messages name the port and how to choose another.
    throw new StartupError((error as Error).message);
  }
}

/** The same drives over OPC UA (sim/opcua-cli.ts); node-opcua is loaded only here. */
export async function startOpcUaPlant(options: CliOpcUaServerOptions): Promise<CliOpcUaServer> {
  const { startCliOpcUaServer } = require('../sim/opcua-cli') as typeof import('../sim/opcua-cli');
  try {
    return await startCliOpcUaServer(options);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
}
