/**
 * N simulated drives served as one ModbusDataModel: one TCP port, one unit id per drive (1..N), as
 * drives behind a Modbus TCP gateway or on one RS-485 segment are addressed (Modbus Messaging on
 * TCP/IP Implementation Guide v1.0b §4.4.2: the unit identifier selects the device behind the server).
 * A shared physics tick (PlantClock: one timer for the drives of every port) steps every drive by
 * the time actually elapsed. The tick allocates nothing; the input registers of a drive are encoded
 * into its register image at most once per change of the drive (DriveModel.revision), on the first
 * read after it, so a poll of many drives costs a copy, not an encoding.
 */
import { ModbusDataModel, ModbusException, ModbusExceptionCode, ModbusTable, WritableTable } from '../lib/modbus/data-model';
import type { DeviceIdentity, DeviceIdentitySource } from '../lib/modbus/device-id';
import { packageInfo } from '../lib/runtime/package-info';
import { DriveModel, DriveModelOptions, FaultInjection, FaultInjectionKind, LoadProfile } from './drive-model';
import { DriveProfile, simulatedDriveProfile } from './profile';
import { DriveRegisterMap } from './register-map';

/** Unit ids a Modbus serial line allows for devices (Modbus over Serial Line v1.02 §2.2): 1..247. */
export const MAX_DRIVES = 247;
/** Demo setpoints step down 30 rpm per round of the four demo machines, for this many rounds, then repeat. */
const SETPOINT_ROUNDS = 20;
export const DEFAULT_TICK_MS = 100;
export const DEFAULT_SEED = 1;
/** A tick never advances the physics by more than this (e.g. after the host slept). */
const MAX_TICK_SECONDS = 60;

export interface SimulatedPlantOptions {
  /** Number of drives (unit ids 1..drives); default 4. */
  drives?: number;
  /** Seed of all noise; each drive derives its own. Default 1. */
  seed?: number;
  /** Physics tick period; default 100 ms. */
  tickMs?: number;
  /** Start every drive running at its demo setpoint; default true. */
  autoStart?: boolean;
  /** Per-drive overrides of the demo defaults, index 0 = unit 1. */
  driveOptions?: Partial<DriveModelOptions>[];
  /**
   * Index of unit 1's drive in a larger plant (default 0): the plant served on a second port continues
   * the demo machines and seeds where the first port's plant ended, instead of repeating them.
   */
  firstDriveIndex?: number;
}

interface DemoDrive {
  setpointRpm: number;
  load: Partial<LoadProfile>;
  initialWearHours: number;
  initialRunHours: number;
}

/** Four machines of a pumping/conveying line, reused in turn: different setpoints, loads and ages. */
const DEMO_DRIVES: readonly DemoDrive[] = [
  { setpointRpm: 1200, load: { kind: 'quadratic', baseFraction: 0.75 }, initialWearHours: 800, initialRunHours: 1250 },
  { setpointRpm: 1440, load: { kind: 'constant', baseFraction: 0.6, variationPeriodS: 45 }, initialWearHours: 3000, initialRunHours: 9800 },
  { setpointRpm: 900, load: { kind: 'quadratic', baseFraction: 0.85, variationPeriodS: 300 }, initialWearHours: 5200, initialRunHours: 16400 },
  { setpointRpm: 1050, load: { kind: 'constant', baseFraction: 0.45, variationPeriodS: 90 }, initialWearHours: 200, initialRunHours: 310 },
];

/**
 * The default options of drive `index` (0-based): a demo machine, a seed derived from the plant's.
 * Setpoints step down 30 rpm per round of the demo machines and wrap after SETPOINT_ROUNDS rounds,
 * so any index gets a setpoint inside the profile's range (the lowest is 900 − 19·30 = 330 rpm).
 */
export function demoDriveOptions(index: number, seed: number): DriveModelOptions {
  const demo = DEMO_DRIVES[index % DEMO_DRIVES.length];
  const round = Math.floor(index / DEMO_DRIVES.length) % SETPOINT_ROUNDS;
  return {
    seed: (Math.imul(seed, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0,
    setpointRpm: demo.setpointRpm - 30 * round,
    load: demo.load,
    initialWearHours: demo.initialWearHours,
    initialRunHours: demo.initialRunHours,
    initialEnergyKwh: demo.initialRunHours * 4.2,
  };
}

/**
 * One real-time timer that steps the drives of several plants (one plant per Modbus port) by the
 * time actually elapsed. Unref'd: the tick alone keeps no process alive.
 */
export class PlantClock {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;

  constructor(private readonly plants: readonly SimulatedPlant[], readonly tickMs: number = plants[0]?.tickMs ?? DEFAULT_TICK_MS) {}

  start(): void {
    if (this.timer) return;
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.now();
    const dtSeconds = Math.min(MAX_TICK_SECONDS, (now - this.lastTick) / 1000);
    this.lastTick = now;
    for (const plant of this.plants) plant.step(dtSeconds);
  }
}

export class SimulatedPlant implements ModbusDataModel, DeviceIdentitySource {
  readonly drives: readonly DriveModel[];
  readonly registerMap: DriveRegisterMap;
  readonly tickMs: number;
  /** The clock of start(); a plant served with others on several ports is ticked by their shared PlantClock instead. */
  private clock: PlantClock | undefined;
  /** Input registers of each drive as of imageRevisions[i] (DriveModel.revision), encoded on demand. */
  private readonly inputImages: Uint16Array[];
  private readonly imageRevisions: number[];

  constructor(options: SimulatedPlantOptions = {}, profile: DriveProfile = simulatedDriveProfile) {
    const count = options.drives ?? 4;
    if (!Number.isInteger(count) || count < 1 || count > MAX_DRIVES) {
      throw new RangeError(`simulated plant: drives must be an integer in 1..${MAX_DRIVES} (one unit id each), got ${count}`);
    }
    this.tickMs = options.tickMs ?? DEFAULT_TICK_MS;
    if (!(this.tickMs >= 1 && this.tickMs <= 60_000)) throw new RangeError(`simulated plant: tickMs must be in 1..60000, got ${this.tickMs}`);
    const seed = options.seed ?? DEFAULT_SEED;
    const firstIndex = options.firstDriveIndex ?? 0;
    if (!Number.isInteger(firstIndex) || firstIndex < 0) throw new RangeError(`simulated plant: firstDriveIndex must be an integer ≥ 0, got ${firstIndex}`);
    this.registerMap = new DriveRegisterMap(profile);
    this.drives = Array.from({ length: count }, (_, i) => {
      const drive = new DriveModel({ ...demoDriveOptions(firstIndex + i, seed), ratings: profile.ratings, ...options.driveOptions?.[i] });
      if (options.autoStart ?? true) drive.start();
      return drive;
    });
    const imageLength = this.registerMap.imageLength('input');
    this.inputImages = this.drives.map(() => new Uint16Array(imageLength));
    this.imageRevisions = this.drives.map(() => -1);
  }

  /** The drive at a unit id; throws RangeError for an id the plant does not have. */
  drive(unitId: number): DriveModel {
    const drive = this.drives[unitId - 1];
    if (!Number.isInteger(unitId) || !drive) throw new RangeError(`simulated plant: no drive at unit id ${unitId} (units are 1..${this.drives.length})`);
    return drive;
  }

  /** Advance every drive by dtSeconds. */
  step(dtSeconds: number): void {
    for (const drive of this.drives) drive.step(dtSeconds);
  }

  /** Tick the physics in real time on a clock of its own (unref'd: the tick alone keeps no process alive). */
  start(): void {
    this.clock ??= new PlantClock([this]);
    this.clock.start();
  }

  stop(): void {
    this.clock?.stop();
  }

  /** Set a writable parameter (e.g. speedSetpoint) in engineering units; refused like a Modbus write out of range. */
  setParameter(unitId: number, name: string, value: number): void {
    this.registerMap.writeParameter(this.drive(unitId), name, value);
  }

  injectFault(unitId: number, fault: FaultInjection): void {
    this.drive(unitId).injectFault(fault);
  }

  /**
   * Remove injected conditions (one kind or all) and reset the latched trip if its cause has cleared
   * (an overtemperature trip waits until the temperature has fallen below its reset level).
   * True when the drive is fault-free afterwards. The run command must be given again, as after any trip.
   */
  clearFault(unitId: number, kind?: FaultInjectionKind): boolean {
    const drive = this.drive(unitId);
    drive.clearInjection(kind);
    return drive.resetFault();
  }

  // ---- ModbusDataModel ------------------------------------------------------------------------

  /** A drive with comms loss injected is silent; unknown unit ids are answered by the gateway (see read). */
  answers(unitId: number): boolean {
    return this.drives[unitId - 1]?.answers ?? true;
  }

  read(unitId: number, table: ModbusTable, address: number, quantity: number): number[] {
    const drive = this.driveBehindGateway(unitId);
    if (table === 'coil' || table === 'discrete') throw this.noBitTables(table);
    if (table === 'holding') return this.registerMap.read(drive, table, address, quantity);
    this.registerMap.checkMapped(table, address, quantity);
    const index = unitId - 1;
    const image = this.inputImages[index];
    if (this.imageRevisions[index] !== drive.revision) {
      this.registerMap.encodeImage(drive, table, image);
      this.imageRevisions[index] = drive.revision;
    }
    const words = new Array<number>(quantity);
    for (let i = 0; i < quantity; i++) words[i] = image[address + i];
    return words;
  }

  write(unitId: number, table: WritableTable, address: number, values: number[]): void {
    const drive = this.driveBehindGateway(unitId);
    if (table === 'coil') throw this.noBitTables(table);
    this.registerMap.write(drive, address, values);
  }

  /** FC 43/14 Read Device Identification (lib/modbus/device-id.ts): the simulator's own identity, per unit. */
  deviceIdentity(unitId: number): DeviceIdentity {
    this.driveBehindGateway(unitId);
    const { profile, vendor, model } = this.registerMap.profile;
    return {
      vendorName: vendor, productCode: profile, revision: packageInfo().version, productName: 'uns-edge simulated VFD',
      modelName: model, userApplicationName: `drive ${unitId}`,
    };
  }

  /** Unit ids without a drive: 0A gateway path unavailable, as a TCP gateway answers (App Protocol v1.1b3 §7). */
  private driveBehindGateway(unitId: number): DriveModel {
    const drive = this.drives[unitId - 1];
    if (!drive) {
      throw new ModbusException(ModbusExceptionCode.GatewayPathUnavailable, `no drive at unit id ${unitId} (units are 1..${this.drives.length})`);
    }
    return drive;
  }

  /** The drive has registers only: function codes on coils/discrete inputs are not allowed (§7, code 01). */
  private noBitTables(table: ModbusTable): ModbusException {
    return new ModbusException(ModbusExceptionCode.IllegalFunction, `the simulated drive has no ${table}s`);
  }
}
