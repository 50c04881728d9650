/**
 * The simulated plant (sim/), loaded only by the commands that need it, so `run` never loads it.
 */
import type { SimulatedPlantHandle, StartSimulatedPlantOptions } from '../sim/index';
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
