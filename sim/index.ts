/**
 * The simulated plant on the network: N drives (sim/plant.ts) served by the generic Modbus TCP
 * server (lib/modbus/server.ts), one unit id per drive, on one port or split evenly over several
 * (a port carries at most 247 unit ids), all ticked by one clock. Used by `uns-edge simulate`,
 * the demo, tests and benchmarks. Register map: docs/simulated-plant.md.
 */
import { startModbusTcpServer } from '../lib/modbus/server';
import { DriveModel, FaultInjection, FaultInjectionKind } from './drive-model';
import { MAX_DRIVES, PlantClock, SimulatedPlant, SimulatedPlantOptions } from './plant';
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
/** Ports one plant may listen on (16 × 247 drives). */
export const MAX_SIM_PORTS = 16;
/** The banner lists this many drives per port, then a count of the rest. */
const DESCRIBED_DRIVES_PER_PORT = 8;

export interface StartSimulatedPlantOptions extends SimulatedPlantOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** TCP port; default $UNS_EDGE_SIM_PORT, else 5020; 0 picks a free port. */
  port?: number;
  /**
   * Several TCP ports instead of `port` (0 picks a free one each): the `drives` are split evenly over
   * them, the first ports taking one more when they do not divide, each port with unit ids 1..n.
   */
  ports?: readonly number[];
}

/** One port of the plant and the drives behind it. */
export interface SimulatedPortHandle {
  /** The port actually listened on. */
  readonly port: number;
  /** The drives of this port: unit id u is drive number firstDrive + u − 1 of the whole plant. */
  readonly plant: SimulatedPlant;
  readonly firstDrive: number;
}

/**
 * The running plant. Drives are numbered 1..N over all ports in port order; with one port the drive
 * number is the unit id. Methods that take `drive` take that number.
 */
export interface SimulatedPlantHandle {
  readonly host: string;
  /** The (first) port actually listened on (useful with port 0). */
  readonly port: number;
  /** Every port, in the order given. */
  readonly ports: readonly SimulatedPortHandle[];
  /** Unit id of drives[i] on its port (i + 1 with one port). */
  readonly unitIds: readonly number[];
  /** All drives of all ports; drives[i] is drive number i + 1. */
  readonly drives: readonly DriveModel[];
  /** The first port's plant (the one the OPC UA server of the CLI exposes). */
  readonly plant: SimulatedPlant;
  readonly profile: DriveProfile;
  /** Inject a condition into a drive: 'overcurrent' | 'overtemperature' | 'commsLoss' | {kind:'wear', multiplier}. */
  injectFault(drive: number, fault: FaultInjection | Exclude<FaultInjectionKind, 'wear'>): void;
  /** Remove injected conditions (one kind or all) and reset the trip if its cause has cleared; true when fault-free. */
  clearFault(drive: number, kind?: FaultInjectionKind): boolean;
  /** Speed setpoint in rpm, checked against the profile's range (throws ModbusException IllegalDataValue). */
  setSetpoint(drive: number, rpm: number): void;
  /** Run command (a fresh 0→1 edge, so it also restarts after a reset trip). */
  start(drive: number, reverse?: boolean): void;
  /** Ramp to stop. */
  stop(drive: number): void;
  /** A few lines per port, for a console banner. */
  describe(): string;
  /** Stop the physics tick and the servers; resolves when every port is released. */
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

/** Drives per port: `drives` split evenly, the first ports taking one more when they do not divide. */
export function drivesPerPort(drives: number, ports: number): number[] {
  if (!Number.isInteger(ports) || ports < 1 || ports > MAX_SIM_PORTS) {
    throw new RangeError(`simulated plant: 1..${MAX_SIM_PORTS} ports, got ${ports}`);
  }
  if (!Number.isInteger(drives) || drives < ports || drives > MAX_DRIVES * ports) {
    throw new RangeError(`simulated plant: drives must be an integer in ${ports}..${MAX_DRIVES * ports} for ${ports} port(s) `
      + `(at least one per port, at most ${MAX_DRIVES} unit ids per port), got ${drives}`
      + (drives > MAX_DRIVES * ports ? `; give more ports (${Math.ceil(drives / MAX_DRIVES)} carry ${drives})` : ''));
  }
  return Array.from({ length: ports }, (_, i) => Math.floor(drives / ports) + (i < drives % ports ? 1 : 0));
}

/** Start N simulated drives behind one or several Modbus TCP ports (unit ids 1..n per port), ticking in real time on one clock. */
export async function startSimulatedPlant(options: StartSimulatedPlantOptions = {}): Promise<SimulatedPlantHandle> {
  const host = options.host ?? DEFAULT_SIM_HOST;
  const requestedPorts = options.ports?.map((port) => resolveSimPort(port)) ?? [resolveSimPort(options.port)];
  const counts = drivesPerPort(options.drives ?? 4, requestedPorts.length);
  const plants: SimulatedPlant[] = [];
  for (const [i, drives] of counts.entries()) {
    const firstDriveIndex = counts.slice(0, i).reduce((sum, n) => sum + n, 0);
    plants.push(new SimulatedPlant({
      ...options, drives, firstDriveIndex, driveOptions: options.driveOptions?.slice(firstDriveIndex, firstDriveIndex + drives),
    }));
  }
  const servers: Awaited<ReturnType<typeof startModbusTcpServer>>[] = [];
  try {
    for (const [i, port] of requestedPorts.entries()) {
      servers.push(await startModbusTcpServer({ host, port, model: plants[i] }).catch((error: unknown) => {
        throw listenError(error, host, port);
      }));
    }
  } catch (error) {
    await Promise.all(servers.map((server) => server.close()));
    throw error;
  }
  const clock = new PlantClock(plants, plants[0].tickMs);
  clock.start();

  const ports: SimulatedPortHandle[] = plants.map((plant, i) => ({
    port: servers[i].port, plant, firstDrive: 1 + counts.slice(0, i).reduce((sum, n) => sum + n, 0),
  }));
  /** The port and unit id of a drive number. */
  const locate = (drive: number): { plant: SimulatedPlant; unitId: number } => {
    const at = [...ports].reverse().find((p) => p.firstDrive <= drive);
    if (!Number.isInteger(drive) || !at || drive >= at.firstDrive + at.plant.drives.length) {
      throw new RangeError(`simulated plant: no drive ${drive} (drives are 1..${counts.reduce((sum, n) => sum + n, 0)})`);
    }
    return { plant: at.plant, unitId: drive - at.firstDrive + 1 };
  };
  const withDrive = <T>(drive: number, act: (plant: SimulatedPlant, unitId: number) => T): T => {
    const { plant, unitId } = locate(drive);
    return act(plant, unitId);
  };
  let closing: Promise<void> | undefined;

  return {
    host,
    port: ports[0].port,
    ports,
    unitIds: plants.flatMap((plant) => plant.drives.map((_, i) => i + 1)),
    drives: plants.flatMap((plant) => plant.drives),
    plant: plants[0],
    profile: plants[0].registerMap.profile,
    injectFault: (drive, fault) => withDrive(drive, (plant, unit) => plant.injectFault(unit, typeof fault === 'string' ? { kind: fault } : fault)),
    clearFault: (drive, kind) => withDrive(drive, (plant, unit) => plant.clearFault(unit, kind)),
    setSetpoint: (drive, rpm) => withDrive(drive, (plant, unit) => plant.setParameter(unit, 'speedSetpoint', rpm)),
    start: (drive, reverse = false) => withDrive(drive, (plant, unit) => plant.drive(unit).start(reverse)),
    stop: (drive) => withDrive(drive, (plant, unit) => plant.drive(unit).stop()),
    describe() {
      const total = plants.reduce((sum, plant) => sum + plant.drives.length, 0);
      const lines = [`Simulated plant: ${total} drive(s) on Modbus TCP ${host}, port${ports.length > 1 ? 's' : ''} ${ports.map((p) => p.port).join(', ')}`];
      for (const { port, plant, firstDrive } of ports) {
        if (ports.length > 1) lines.push(` port ${port}: unit ids 1..${plant.drives.length} (drives ${firstDrive}..${firstDrive + plant.drives.length - 1})`);
        else lines.push(` unit ids 1..${plant.drives.length}`);
        plant.drives.slice(0, DESCRIBED_DRIVES_PER_PORT).forEach((d, i) => {
          lines.push(`  unit ${i + 1}: ${d.load.kind} load, setpoint ${d.setpointRpm} rpm, ${d.control.run ? 'running' : 'stopped'}`);
        });
        const rest = plant.drives.length - DESCRIBED_DRIVES_PER_PORT;
        if (rest > 0) lines.push(`  … and ${rest} more drive(s) like these`);
      }
      lines.push('  register map: docs/simulated-plant.md (profile: profiles/simulated-drive.json)');
      return lines.join('\n');
    },
    close() {
      closing ??= (async () => {
        clock.stop();
        await Promise.all(servers.map((server) => server.close()));
      })();
      return closing;
    },
  };
}
