/**
 * The simulated plant on the network: N drives (sim/plant.ts) served by the generic Modbus TCP
 * server (lib/modbus/server.ts) on one port, one unit id per drive. Used by `uns-edge simulate`,
 * the demo, tests and benchmarks. Register map: docs/simulated-plant.md.
 */
import { startModbusTcpServer } from '../lib/modbus/server';
import { DriveModel, FaultInjection, FaultInjectionKind } from './drive-model';
import { SimulatedPlant, SimulatedPlantOptions } from './plant';
import { DriveProfile } from './profile';

export * from './drive-model';
export * from './plant';
export * from './profile';
export { DriveRegisterMap, packBits, unpackBits } from './register-map';
export { encodeValue, decodeValue } from './register-codec';

/** Environment variable that picks the plant's TCP port when the port option is not given. */
export const SIM_PORT_ENV = 'UNS_EDGE_SIM_PORT';
/** Default TCP port: 502 needs privileges, so the Modbus simulators' customary 5020. */
export const DEFAULT_SIM_PORT = 5020;
export const DEFAULT_SIM_HOST = '127.0.0.1';

export interface StartSimulatedPlantOptions extends SimulatedPlantOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** TCP port; default $UNS_EDGE_SIM_PORT, else 5020; 0 picks a free port. */
  port?: number;
}

export interface SimulatedPlantHandle {
  readonly host: string;
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  /** Unit id of drives[i] is i + 1. */
  readonly unitIds: readonly number[];
  readonly drives: readonly DriveModel[];
  readonly plant: SimulatedPlant;
  readonly profile: DriveProfile;
  /** Inject a condition into the drive at unitId: 'overcurrent' | 'overtemperature' | 'commsLoss' | {kind:'wear', multiplier}. */
  injectFault(unitId: number, fault: FaultInjection | Exclude<FaultInjectionKind, 'wear'>): void;
  /** Remove injected conditions (one kind or all) and reset the trip if its cause has cleared; true when fault-free. */
  clearFault(unitId: number, kind?: FaultInjectionKind): boolean;
  /** Speed setpoint in rpm, checked against the profile's range (throws ModbusException IllegalDataValue). */
  setSetpoint(unitId: number, rpm: number): void;
  /** Run command (a fresh 0→1 edge, so it also restarts after a reset trip). */
  start(unitId: number, reverse?: boolean): void;
  /** Ramp to stop. */
  stop(unitId: number): void;
  /** One line per drive plus the endpoint, for a console banner. */
  describe(): string;
  /** Stop the physics tick and the server; resolves when the port is released. */
  close(): Promise<void>;
}

/** The port to use: the option, else $UNS_EDGE_SIM_PORT, else 5020. Throws on an invalid value. */
export function resolveSimPort(port: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env[SIM_PORT_ENV];
  const value = port ?? (fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : DEFAULT_SIM_PORT);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    const source = port !== undefined ? 'the port option' : SIM_PORT_ENV;
    throw new RangeError(`simulated plant: ${source} must be an integer in 0..65535 (0 picks a free port), got ${port ?? fromEnv}`);
  }
  return value;
}

function listenError(error: unknown, host: string, port: number): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const howToChoose = `choose another with the port option or the ${SIM_PORT_ENV} environment variable (0 picks a free port)`;
  if (code === 'EADDRINUSE') return new Error(`simulated plant: port ${port} on ${host} is already in use; ${howToChoose}`);
  if (code === 'EACCES') return new Error(`simulated plant: no permission to listen on ${host}:${port} (ports below 1024 need privileges); ${howToChoose}`);
  if (code === 'EADDRNOTAVAIL') return new Error(`simulated plant: ${host} is not an address of this machine; choose another with the host option`);
  return error instanceof Error ? error : new Error(String(error));
}

/** Start N simulated drives behind one Modbus TCP port (unit ids 1..N), ticking in real time. */
export async function startSimulatedPlant(options: StartSimulatedPlantOptions = {}): Promise<SimulatedPlantHandle> {
  const host = options.host ?? DEFAULT_SIM_HOST;
  const requestedPort = resolveSimPort(options.port);
  const plant = new SimulatedPlant(options);
  const server = await startModbusTcpServer({ host, port: requestedPort, model: plant }).catch((error: unknown) => {
    throw listenError(error, host, requestedPort);
  });
  plant.start();
  let closing: Promise<void> | undefined;

  return {
    host,
    port: server.port,
    unitIds: plant.drives.map((_, i) => i + 1),
    drives: plant.drives,
    plant,
    profile: plant.registerMap.profile,
    injectFault(unitId, fault) {
      plant.injectFault(unitId, typeof fault === 'string' ? { kind: fault } : fault);
    },
    clearFault: (unitId, kind) => plant.clearFault(unitId, kind),
    setSetpoint: (unitId, rpm) => plant.setParameter(unitId, 'speedSetpoint', rpm),
    start: (unitId, reverse = false) => plant.drive(unitId).start(reverse),
    stop: (unitId) => plant.drive(unitId).stop(),
    describe() {
      const lines = [`Simulated plant: ${plant.drives.length} drive(s) on Modbus TCP ${host}:${server.port}, unit ids 1..${plant.drives.length}`];
      plant.drives.forEach((d, i) => {
        lines.push(`  unit ${i + 1}: ${d.load.kind} load, setpoint ${d.setpointRpm} rpm, ${d.control.run ? 'running' : 'stopped'}`);
      });
      lines.push('  register map: docs/simulated-plant.md (profile: profiles/simulated-drive.json)');
      return lines.join('\n');
    },
    close() {
      closing ??= (async () => {
        plant.stop();
        await server.close();
      })();
      return closing;
    },
  };
}
