/**
 * The drive profile of the simulated VFD (profiles/simulated-drive.json), checked by the drive
 * profile loader (lib/drive/profile.ts) and narrowed to what the simulator serves. The JSON is the
 * one source of the register map: the plant serves it, the doc table is generated from it
 * (sim/profile-doc.ts), and the drive model takes its ratings as defaults.
 */
import { BitDefinition, DriveProfile as GenericDriveProfile, FaultDefinition, ProfileProblem, validateDriveProfile } from '../lib/drive/profile';
import { registerCount, WordOrder } from '../lib/modbus/datatypes';
import rawSimulatedDriveProfile from '../profiles/simulated-drive.json';

export { registerCount, WordOrder };

export type RegisterTable = 'holding' | 'input';
/** The register types the simulator serves (a subset of what a drive profile may use). */
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

export type BitSpec = Pick<BitDefinition, 'bit' | 'name' | 'description'>;
export interface CommandSpec { name: string; value: number; description: string }
export type FaultSpec = Pick<FaultDefinition, 'code' | 'name' | 'description'>;

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

/** The simulator's view of its profile. */
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
const SIMULATED_TYPES: readonly string[] = ['uint16', 'int16', 'uint32', 'int32', 'float32'] satisfies RegisterType[];
const PROFILE_FILE = 'profiles/simulated-drive.json';

/** What sim/register-codec.ts and sim/drive-model.ts need beyond the drive profile rules. */
function simulatorRules(profile: GenericDriveProfile): ProfileProblem[] {
  const problems: ProfileProblem[] = [];
  profile.parameters.forEach((p, i) => {
    if (!SIMULATED_TYPES.includes(p.type)) problems.push({ path: `parameters[${i}].type`, message: `must be one of ${SIMULATED_TYPES.join(', ')} (the types the simulator serves)` });
    if (p.type === 'float32' && p.scale !== 1) problems.push({ path: `parameters[${i}].scale`, message: 'float32 values are unscaled: use 1' });
    if (p.offset !== 0) problems.push({ path: `parameters[${i}].offset`, message: 'the simulator does not apply offsets' });
  });
  for (const key of RATING_KEYS) {
    if (typeof profile.ratings?.[key] !== 'number') problems.push({ path: `ratings.${key}`, message: 'is required by the simulated drive (sim/drive-model.ts)' });
  }
  for (const [name, command] of Object.entries(profile.controlWord.commands)) {
    if (command.steps.length !== 1) problems.push({ path: `controlWord.commands.${name}.steps`, message: 'the simulated drive takes every command as one control word' });
  }
  return problems;
}

/**
 * Parse and check a drive profile for the simulator: the drive profile rules plus
 * simulatorRules(). Throws DriveProfileError naming every offending field.
 */
export function parseDriveProfile(json: unknown): DriveProfile {
  const profile = validateDriveProfile(json, PROFILE_FILE, { rules: simulatorRules });
  const ratings = profile.ratings as Record<string, number>;
  const bit = ({ bit: position, name, description }: BitDefinition): BitSpec => ({ bit: position, name, description });
  return {
    profile: profile.id,
    version: profile.version,
    vendor: profile.identity.vendor,
    model: profile.identity.models[0],
    ratings: Object.fromEntries(RATING_KEYS.map((k) => [k, ratings[k]])) as unknown as DriveRatings,
    parameters: profile.parameters.map(({ name, address, table, type, wordOrder, scale, unit, access, min, max, description }) => (
      { name, address, table, type: type as RegisterType, wordOrder, scale, unit, access, min, max, description })),
    controlWord: {
      parameter: profile.controlWord.parameter,
      bits: profile.controlWord.bits.map(bit),
      commands: Object.entries(profile.controlWord.commands).map(([name, c]) => ({ name, value: c.steps[0].controlWord, description: c.description })),
    },
    statusWord: { parameter: profile.statusWord.parameter, bits: profile.statusWord.bits.map(bit) },
    faults: profile.faults.codes.map(({ code, name, description }) => ({ code, name, description })),
  };
}

export const simulatedDriveProfile: DriveProfile = parseDriveProfile(rawSimulatedDriveProfile);
