/**
 * Binds the parameters of a drive profile to a DriveModel: which model quantity each register
 * serves, encoded as the profile says. Construction fails when the profile and the model disagree
 * (a parameter without a binding, a binding without a parameter, bit or fault names that differ),
 * so the profile cannot drift from the code.
 */
import { ModbusException, ModbusExceptionCode } from '../lib/modbus/data-model';
import {
  DRIVE_CONTROL_NAMES, DRIVE_FAULT_NAMES, DRIVE_STATUS_NAMES, DriveControl, DriveFaultName, DriveModel,
} from './drive-model';
import { BitSpec, DriveProfile, ParameterSpec, RegisterTable, registerCount } from './profile';
import { decodeValue, encodeValue } from './register-codec';

interface Binding {
  read(drive: DriveModel): number;
  /** Present for writable parameters; receives the decoded engineering value. */
  write?(drive: DriveModel, value: number): void;
}

interface Slot {
  spec: ParameterSpec;
  /** Which word of the parameter this address holds (0 or 1). */
  word: number;
}

/** Flags by name → word, with bit positions from the profile. */
export function packBits(flags: Readonly<Record<string, boolean>>, bits: readonly BitSpec[]): number {
  return bits.reduce((word, b) => (flags[b.name] ? word | (1 << b.bit) : word), 0);
}

/** Word → flags by name, with bit positions from the profile. */
export function unpackBits(word: number, bits: readonly BitSpec[]): Record<string, boolean> {
  return Object.fromEntries(bits.map((b) => [b.name, (word & (1 << b.bit)) !== 0]));
}

function sameNames(what: string, profileNames: readonly string[], codeNames: readonly string[]): void {
  const missingInCode = profileNames.filter((n) => !codeNames.includes(n));
  const missingInProfile = codeNames.filter((n) => !profileNames.includes(n));
  if (missingInCode.length || missingInProfile.length) {
    throw new Error(`simulated drive: ${what} of the profile and sim/ disagree`
      + (missingInCode.length ? `; not modelled: ${missingInCode.join(', ')}` : '')
      + (missingInProfile.length ? `; not in the profile: ${missingInProfile.join(', ')}` : ''));
  }
}

export class DriveRegisterMap {
  private readonly bindings: Record<string, Binding>;
  private readonly slots: Record<RegisterTable, Map<number, Slot>> = { holding: new Map(), input: new Map() };
  private readonly faultCodes: Map<string, number>;

  constructor(readonly profile: DriveProfile) {
    const controlBits = profile.controlWord.bits;
    const statusBits = profile.statusWord.bits;
    sameNames('control word bits', controlBits.map((b) => b.name), DRIVE_CONTROL_NAMES);
    sameNames('status word bits', statusBits.map((b) => b.name), DRIVE_STATUS_NAMES);
    sameNames('fault names', profile.faults.map((f) => f.name), DRIVE_FAULT_NAMES);
    this.faultCodes = new Map(profile.faults.map((f) => [f.name, f.code]));

    const bindings: Record<string, Binding> = {
      [profile.controlWord.parameter]: {
        read: (d) => packBits({ ...d.control }, controlBits),
        write: (d, word) => d.setControl(unpackBits(word, controlBits) as unknown as DriveControl),
      },
      speedSetpoint: { read: (d) => d.setpointRpm, write: (d, rpm) => { d.setpointRpm = rpm; } },
      accelRate: { read: (d) => d.accelRpmPerS, write: (d, rate) => { d.accelRpmPerS = rate; } },
      decelRate: { read: (d) => d.decelRpmPerS, write: (d, rate) => { d.decelRpmPerS = rate; } },
      [profile.statusWord.parameter]: { read: (d) => packBits({ ...d.status() }, statusBits) },
      faultCode: { read: (d) => this.faultCode(d.fault) },
      actualSpeed: { read: (d) => d.speedRpm },
      outputFrequency: { read: (d) => d.outputFrequencyHz },
      motorCurrent: { read: (d) => d.currentA },
      dcBusVoltage: { read: (d) => d.dcBusVoltageV },
      outputPower: { read: (d) => d.outputPowerKw },
      motorTemperature: { read: (d) => d.motorTemperatureC },
      heatsinkTemperature: { read: (d) => d.heatsinkTemperatureC },
      vibration: { read: (d) => d.vibrationMmS },
      runHours: { read: (d) => d.runHours },
      energy: { read: (d) => d.energyKwh },
    };
    sameNames('parameters', profile.parameters.map((p) => p.name), Object.keys(bindings));
    for (const spec of profile.parameters) {
      if ((spec.access === 'RW') !== (bindings[spec.name].write !== undefined)) {
        throw new Error(`simulated drive: parameter ${spec.name} is ${spec.access} in the profile but ${bindings[spec.name].write ? 'writable' : 'read-only'} in sim/`);
      }
      for (let word = 0; word < registerCount(spec.type); word++) this.slots[spec.table].set(spec.address + word, { spec, word });
    }
    this.bindings = bindings;
  }

  faultCode(name: DriveFaultName): number {
    return this.faultCodes.get(name) as number;
  }

  /** One past the highest register address of a table: the length of a register image of it. */
  imageLength(table: RegisterTable): number {
    return Math.max(0, ...[...this.slots[table].keys()].map((address) => address + 1));
  }

  /** Throws IllegalDataAddress, as read() does, unless every register of the range is mapped. */
  checkMapped(table: RegisterTable, address: number, quantity: number): void {
    for (let a = address; a < address + quantity; a++) this.slotAt(table, a);
  }

  /** Every register of a table at once into `image` (index = address; unmapped registers stay as they are). */
  encodeImage(drive: DriveModel, table: RegisterTable, image: Uint16Array): void {
    for (const spec of this.profile.parameters) {
      if (spec.table !== table) continue;
      image.set(encodeValue(spec, this.bindings[spec.name].read(drive)), spec.address);
    }
  }

  /** Register words of `quantity` registers from `address`. Throws IllegalDataAddress for an unmapped register. */
  read(drive: DriveModel, table: RegisterTable, address: number, quantity: number): number[] {
    const encoded = new Map<ParameterSpec, number[]>();
    const words: number[] = [];
    for (let a = address; a < address + quantity; a++) {
      const slot = this.slotAt(table, a);
      let value = encoded.get(slot.spec);
      if (!value) {
        value = encodeValue(slot.spec, this.bindings[slot.spec.name].read(drive));
        encoded.set(slot.spec, value);
      }
      words.push(value[slot.word]);
    }
    return words;
  }

  /**
   * Write holding registers from `address`. The whole request is checked before anything is applied,
   * so a refused write changes nothing: IllegalDataAddress for an unmapped or read-only register or a
   * part of a 32-bit value, IllegalDataValue for a value outside the parameter's min..max
   * (Modbus Application Protocol v1.1b3 §6.6, §6.12).
   */
  write(drive: DriveModel, address: number, values: readonly number[]): void {
    const updates: { spec: ParameterSpec; value: number }[] = [];
    for (let i = 0; i < values.length;) {
      const slot = this.slotAt('holding', address + i);
      const size = registerCount(slot.spec.type);
      if (slot.spec.access !== 'RW') {
        throw new ModbusException(ModbusExceptionCode.IllegalDataAddress, `${slot.spec.name} (holding ${address + i}) is read-only`);
      }
      if (slot.word !== 0 || i + size > values.length) {
        throw new ModbusException(ModbusExceptionCode.IllegalDataAddress, `${slot.spec.name} spans ${size} registers from ${slot.spec.address}: write all of them`);
      }
      const value = decodeValue(slot.spec, values.slice(i, i + size));
      const { min = -Infinity, max = Infinity, scale, name, unit } = slot.spec;
      const tolerance = Math.abs(scale) * 1e-6;
      if (!(value >= min - tolerance && value <= max + tolerance)) {
        const withUnit = (n: number): string => (unit ? `${n} ${unit}` : String(n));
        throw new ModbusException(ModbusExceptionCode.IllegalDataValue, `${name} ${withUnit(value)} is outside ${withUnit(min)}..${withUnit(max)}`);
      }
      updates.push({ spec: slot.spec, value });
      i += size;
    }
    for (const { spec, value } of updates) this.bindings[spec.name].write?.(drive, value);
  }

  /** Set a writable parameter by name, in engineering units, through the same checks as a Modbus write. */
  writeParameter(drive: DriveModel, name: string, value: number): void {
    const spec = this.profile.parameters.find((p) => p.name === name && p.access === 'RW');
    if (!spec) throw new RangeError(`simulated drive: no writable parameter named ${name}`);
    if (!Number.isFinite(value)) throw new RangeError(`simulated drive: ${name} must be a finite number, got ${value}`);
    this.write(drive, spec.address, encodeValue(spec, value));
  }

  private slotAt(table: RegisterTable, address: number): Slot {
    const slot = this.slots[table].get(address);
    if (!slot) throw new ModbusException(ModbusExceptionCode.IllegalDataAddress, `no ${table} register ${address}`);
    return slot;
  }
}
