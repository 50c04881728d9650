/**
 * The drive profile of the simulated VFD (profiles/simulated-drive.json), parsed and checked.
 * The JSON is the one source of the register map: the plant serves it, the doc table is generated
 * from it (sim/profile-doc.ts), and the drive model takes its ratings as defaults.
 */
import { registerCount, WORD_ORDERS, WordOrder } from '../lib/modbus/datatypes';
import rawSimulatedDriveProfile from '../profiles/simulated-drive.json';

export { registerCount, WordOrder };

export type RegisterTable = 'holding' | 'input';
/** The register types a drive profile uses (a subset of lib/modbus/datatypes ModbusDataType). */
export type RegisterType = 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32';
export type Access = 'R' | 'RW';

export interface ParameterSpec {
  name: string;
  /** Zero-based PDU address (Modbus Application Protocol v1.1b3 §4.4). */
  address: number;
  table: RegisterTable;
  type: RegisterType;
  wordOrder: WordOrder;
  /** Engineering value = raw × scale (float32 values use scale 1). */
  scale: number;
  unit: string;
  access: Access;
  /** Bounds of a write, in engineering units. */
  min?: number;
  max?: number;
  description: string;
}

export interface BitSpec { bit: number; name: string; description: string }
export interface CommandSpec { name: string; value: number; description: string }
export interface FaultSpec { code: number; name: string; description: string }

/** Nameplate and protection limits of a drive with its motor. */
export interface DriveRatings {
  ratedPowerKw: number;
  ratedVoltageV: number;
  ratedFrequencyHz: number;
  poles: number;
  ratedSpeedRpm: number;
  ratedCurrentA: number;
  magnetisingCurrentA: number;
  ratedEfficiency: number;
  overcurrentTripA: number;
  motorTemperatureWarningC: number;
  motorTemperatureTripC: number;
  motorTemperatureResetC: number;
  heatsinkTemperatureWarningC: number;
  heatsinkTemperatureTripC: number;
  heatsinkTemperatureResetC: number;
  dcBusNominalV: number;
  dcOvervoltageTripV: number;
  dcOvervoltageResetV: number;
}

export interface DriveProfile {
  profile: string;
  version: number;
  vendor: string;
  model: string;
  ratings: DriveRatings;
  parameters: ParameterSpec[];
  controlWord: { parameter: string; bits: BitSpec[]; commands: CommandSpec[] };
  statusWord: { parameter: string; bits: BitSpec[] };
  faults: FaultSpec[];
}

const RATING_KEYS: readonly (keyof DriveRatings)[] = [
  'ratedPowerKw', 'ratedVoltageV', 'ratedFrequencyHz', 'poles', 'ratedSpeedRpm', 'ratedCurrentA',
  'magnetisingCurrentA', 'ratedEfficiency', 'overcurrentTripA', 'motorTemperatureWarningC',
  'motorTemperatureTripC', 'motorTemperatureResetC', 'heatsinkTemperatureWarningC', 'heatsinkTemperatureTripC',
  'heatsinkTemperatureResetC', 'dcBusNominalV', 'dcOvervoltageTripV', 'dcOvervoltageResetV',
];
const REGISTER_TYPES: readonly RegisterType[] = ['uint16', 'int16', 'uint32', 'int32', 'float32'];

class ProfileError extends Error {
  constructor(where: string, problem: string) {
    super(`drive profile: ${where}: ${problem}`);
    this.name = 'ProfileError';
  }
}

type Json = Record<string, unknown>;

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProfileError(where, 'must be an object');
  return value as Json;
}
function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new ProfileError(where, 'must be an array');
  return value;
}
function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new ProfileError(where, 'must be a string');
  return value;
}
function finite(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ProfileError(where, 'must be a finite number');
  return value;
}
function integer(value: unknown, where: string, min: number, max: number): number {
  const n = finite(value, where);
  if (!Number.isInteger(n) || n < min || n > max) throw new ProfileError(where, `must be an integer in ${min}..${max}`);
  return n;
}
function oneOf<T extends string>(value: unknown, where: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new ProfileError(where, `must be one of ${allowed.join(', ')}`);
  return value as T;
}
function optionalFinite(value: unknown, where: string): number | undefined {
  return value === undefined ? undefined : finite(value, where);
}
function unique<T>(items: T[], key: (item: T) => string | number, where: string): void {
  const seen = new Set<string | number>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) throw new ProfileError(where, `duplicate ${String(k)}`);
    seen.add(k);
  }
}

function parseParameter(value: unknown, where: string, defaultWordOrder: WordOrder): ParameterSpec {
  const p = object(value, where);
  const type = oneOf(p.type, `${where}.type`, REGISTER_TYPES);
  const table = oneOf(p.table, `${where}.table`, ['holding', 'input'] as const);
  const access = oneOf(p.access, `${where}.access`, ['R', 'RW'] as const);
  if (access === 'RW' && table !== 'holding') throw new ProfileError(where, 'only holding registers can be written (MB App Protocol v1.1b3 §4.3)');
  const scale = finite(p.scale, `${where}.scale`);
  if (scale === 0) throw new ProfileError(`${where}.scale`, 'must not be 0');
  if (type === 'float32' && scale !== 1) throw new ProfileError(`${where}.scale`, 'float32 values are unscaled: use 1');
  const spec: ParameterSpec = {
    name: string(p.name, `${where}.name`),
    address: integer(p.address, `${where}.address`, 0, 0xffff - (registerCount(type) - 1)),
    table,
    type,
    wordOrder: p.wordOrder === undefined ? defaultWordOrder : oneOf(p.wordOrder, `${where}.wordOrder`, WORD_ORDERS),
    scale,
    unit: string(p.unit, `${where}.unit`),
    access,
    min: optionalFinite(p.min, `${where}.min`),
    max: optionalFinite(p.max, `${where}.max`),
    description: string(p.description, `${where}.description`),
  };
  if (access === 'RW' && (spec.min === undefined || spec.max === undefined)) throw new ProfileError(where, 'a writable parameter needs min and max');
  return spec;
}

function parseBits(value: unknown, where: string): BitSpec[] {
  const bits = array(value, where).map((b, i) => {
    const o = object(b, `${where}[${i}]`);
    return { bit: integer(o.bit, `${where}[${i}].bit`, 0, 15), name: string(o.name, `${where}[${i}].name`), description: string(o.description, `${where}[${i}].description`) };
  });
  unique(bits, (b) => b.bit, where);
  unique(bits, (b) => b.name, where);
  return bits;
}

/** Parse and check a drive profile; throws an Error naming the offending field. */
export function parseDriveProfile(json: unknown): DriveProfile {
  const root = object(json, 'profile');
  const defaultWordOrder = oneOf(root.defaultWordOrder ?? 'ABCD', 'defaultWordOrder', WORD_ORDERS);
  const ratingsJson = object(root.ratings, 'ratings');
  const ratings = Object.fromEntries(RATING_KEYS.map((k) => [k, finite(ratingsJson[k], `ratings.${k}`)])) as unknown as DriveRatings;

  const parameters = array(root.parameters, 'parameters').map((p, i) => parseParameter(p, `parameters[${i}]`, defaultWordOrder));
  unique(parameters, (p) => p.name, 'parameters');
  for (const table of ['holding', 'input'] as const) {
    const owners = new Map<number, string>();
    for (const p of parameters.filter((q) => q.table === table)) {
      for (let a = p.address; a < p.address + registerCount(p.type); a++) {
        const other = owners.get(a);
        if (other) throw new ProfileError(`parameters.${p.name}`, `${table} register ${a} is already used by ${other}`);
        owners.set(a, p.name);
      }
    }
  }
  const parameterNamed = (name: string, where: string): void => {
    if (!parameters.some((p) => p.name === name && registerCount(p.type) === 1)) throw new ProfileError(where, `no 16-bit parameter named ${name}`);
  };

  const control = object(root.controlWord, 'controlWord');
  const controlParameter = string(control.parameter, 'controlWord.parameter');
  parameterNamed(controlParameter, 'controlWord.parameter');
  const commands = array(control.commands, 'controlWord.commands').map((c, i) => {
    const o = object(c, `controlWord.commands[${i}]`);
    return { name: string(o.name, `controlWord.commands[${i}].name`), value: integer(o.value, `controlWord.commands[${i}].value`, 0, 0xffff), description: string(o.description, `controlWord.commands[${i}].description`) };
  });
  unique(commands, (c) => c.name, 'controlWord.commands');

  const status = object(root.statusWord, 'statusWord');
  const statusParameter = string(status.parameter, 'statusWord.parameter');
  parameterNamed(statusParameter, 'statusWord.parameter');

  const faults = array(root.faults, 'faults').map((f, i) => {
    const o = object(f, `faults[${i}]`);
    return { code: integer(o.code, `faults[${i}].code`, 0, 0xffff), name: string(o.name, `faults[${i}].name`), description: string(o.description, `faults[${i}].description`) };
  });
  unique(faults, (f) => f.code, 'faults');
  unique(faults, (f) => f.name, 'faults');

  return {
    profile: string(root.profile, 'profile'),
    version: integer(root.version, 'version', 1, 0xffff),
    vendor: string(root.vendor, 'vendor'),
    model: string(root.model, 'model'),
    ratings,
    parameters,
    controlWord: { parameter: controlParameter, bits: parseBits(control.bits, 'controlWord.bits'), commands },
    statusWord: { parameter: statusParameter, bits: parseBits(status.bits, 'statusWord.bits') },
    faults,
  };
}

export const simulatedDriveProfile: DriveProfile = parseDriveProfile(rawSimulatedDriveProfile);
