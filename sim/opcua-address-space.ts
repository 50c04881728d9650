/**
 * The simulated drives in an OPC UA address space, laid out as a drive's OPC UA option board shows
 * them: Objects/Drives/Drive<n> per drive (n = the Modbus unit id), one variable per parameter of the
 * drive profile (profiles/simulated-drive.json), the status bits as Booleans, identification
 * properties and a ResetFault method.
 *
 * Values come from the same DriveRegisterMap the Modbus server serves, decoded to engineering units,
 * so a read over OPC UA and a read over Modbus at the same instant give the same number.
 * Measured values are AnalogItemType (OPC 10000-8 v1.05 §5.3.2) with EngineeringUnits as
 * EUInformation carrying the UNECE Recommendation 20 common code (§5.6.3), from the same table
 * uns-opcua-server uses (lib/opcua/server-units.ts), and EURange.
 * Writes to RW parameters are checked against EURange here (node-opcua itself only checks
 * InstrumentRange) and then go through the register map's own checks, as a Modbus write does.
 */
import {
  AccessLevelFlag, DataType, makeRoles, PermissionType, StatusCodes, Variant, WellKnownRoles,
  type AddressSpace, type ISessionContext, type Namespace, type RolePermissionTypeOptions, type StatusCode, type UAObject, type UAVariable,
} from 'node-opcua';
import { ModbusException } from '../lib/modbus/data-model';
import { euInformationOf } from '../lib/opcua/server-units';
import type { DriveModel } from './drive-model';
import type { SimulatedPlant } from './plant';
import { registerCount, type ParameterSpec } from './profile';
import { decodeValue } from './register-codec';

/** Namespace of the simulated drives. Its index is 2 (0 is OPC UA's, 1 the server's own). */
export const SIM_OPCUA_NAMESPACE_URI = 'urn:uns-edge:simulated-plant';

/**
 * EURange of the measured values: the span a display or a percent deadband refers to (§5.3.2.1),
 * from the simulated drive's ratings (speed up to the setpoint limit of 1800 rpm, current up to
 * past the overcurrent trip, DC bus up to past the overvoltage trip). RW parameters take their
 * range from the profile's min/max. Counters (run hours, energy) have none.
 */
const MEASURED_RANGES: Record<string, { low: number; high: number } | undefined> = {
  actualSpeed: { low: -1800, high: 1800 },
  outputFrequency: { low: -65, high: 65 },
  motorCurrent: { low: 0, high: 40 },
  dcBusVoltage: { low: 0, high: 1000 },
  outputPower: { low: -15, high: 15 },
  motorTemperature: { low: -20, high: 200 },
  heatsinkTemperature: { low: -20, high: 120 },
  vibration: { low: 0, high: 20 },
  runHours: undefined,
  energy: undefined,
};

/** Name of a parameter as a BrowseName: actualSpeed → ActualSpeed. */
export function browseNameOf(parameter: string): string {
  return parameter.charAt(0).toUpperCase() + parameter.slice(1);
}

/** String NodeId of a drive's node (namespace 2): `ns=2;s=Drive1.ActualSpeed`, `ns=2;s=Drive1.Status.Running`. */
export function simNodeId(unitId: number, ...path: string[]): string {
  return `ns=2;s=${[`Drive${unitId}`, ...path].join('.')}`;
}

/** DataType of a parameter: floats and scaled integers as Float/Double, unscaled integers as their type. */
function dataTypeOf(spec: ParameterSpec): DataType {
  if (spec.type === 'float32') return DataType.Float;
  if (spec.scale !== 1) return DataType.Double;
  return { uint16: DataType.UInt16, int16: DataType.Int16, uint32: DataType.UInt32, int32: DataType.Int32 }[spec.type];
}

/** Roles (OPC 10000-3 §4.9, well-known roles of OPC 10000-18 §4.4.1) of the two user kinds. */
export const ROLE_NODE_IDS = {
  read: makeRoles([WellKnownRoles.Observer]),
  write: makeRoles([WellKnownRoles.Operator]),
} as const;

/** Observers read, operators also write and call: the permissions of every RW variable and method. */
const OPERATOR_ONLY: RolePermissionTypeOptions[] = [
  { roleId: WellKnownRoles.Observer, permissions: PermissionType.Browse | PermissionType.Read | PermissionType.ReadRolePermissions },
  {
    roleId: WellKnownRoles.Operator,
    permissions: PermissionType.Browse | PermissionType.Read | PermissionType.ReadRolePermissions | PermissionType.Write | PermissionType.Call,
  },
];

export interface DriveNodes {
  readonly object: UAObject;
  readonly variables: Map<string, UAVariable>;
}

/** Builds and edits the drives' part of one server's address space. */
export class SimDriveAddressSpace {
  readonly drives = new Map<number, DriveNodes>();
  private readonly namespace: Namespace;
  private readonly folder: UAObject;

  constructor(private readonly addressSpace: AddressSpace, private readonly plant: SimulatedPlant, private readonly omitted: ReadonlySet<string>) {
    this.namespace = addressSpace.registerNamespace(SIM_OPCUA_NAMESPACE_URI);
    if (this.namespace.index !== 2) throw new Error(`simulated OPC UA server: expected namespace index 2, got ${this.namespace.index}`);
    this.folder = this.namespace.addFolder(addressSpace.rootFolder.objects, {
      nodeId: 's=Drives', browseName: 'Drives', description: 'The simulated plant\'s drives (one per Modbus unit id)',
    });
    plant.drives.forEach((_, i) => this.addDrive(i + 1));
  }

  /** Key of a variable in the `omitted` set: `<unitId>/<parameter>`. */
  static key(unitId: number, parameter: string): string {
    return `${unitId}/${parameter}`;
  }

  private addDrive(unitId: number): void {
    const drive = this.plant.drive(unitId);
    const profile = this.plant.registerMap.profile;
    const object = this.namespace.addObject({
      organizedBy: this.folder, nodeId: `s=Drive${unitId}`, browseName: `Drive${unitId}`,
      description: `${profile.model}, Modbus unit id ${unitId} of the same plant`,
    });
    const nodes: DriveNodes = { object, variables: new Map() };
    this.drives.set(unitId, nodes);
    const property = (name: string, value: string): void => {
      this.namespace.addVariable({
        propertyOf: object, nodeId: `s=Drive${unitId}.${name}`, browseName: name, dataType: 'String',
        value: { dataType: DataType.String, value },
      });
    };
    property('Manufacturer', profile.vendor);
    property('Model', profile.model);
    property('SerialNumber', `SIM-${String(unitId).padStart(4, '0')}`);

    for (const spec of profile.parameters) {
      if (!this.omitted.has(SimDriveAddressSpace.key(unitId, spec.name))) this.addParameter(unitId, spec);
    }
    const status = this.namespace.addObject({ componentOf: object, nodeId: `s=Drive${unitId}.Status`, browseName: 'Status', description: 'Status word bits' });
    for (const bit of profile.statusWord.bits) {
      this.namespace.addVariable({
        componentOf: status, nodeId: `s=Drive${unitId}.Status.${browseNameOf(bit.name)}`, browseName: browseNameOf(bit.name),
        description: bit.description, dataType: 'Boolean', minimumSamplingInterval: this.plant.tickMs,
        value: { get: () => new Variant({ dataType: DataType.Boolean, value: drive.status()[bit.name as keyof ReturnType<DriveModel['status']>] }) },
      });
    }
    this.addResetFault(unitId, object);
  }

  /** Add one parameter's variable (again, after removeParameter). Throws when it exists. */
  addParameter(unitId: number, spec: ParameterSpec): UAVariable {
    const nodes = this.drives.get(unitId);
    if (!nodes) throw new RangeError(`simulated OPC UA server: no drive ${unitId}`);
    if (nodes.variables.has(spec.name)) throw new Error(`simulated OPC UA server: Drive${unitId}.${browseNameOf(spec.name)} exists already`);
    const drive = this.plant.drive(unitId);
    const dataType = dataTypeOf(spec);
    const writable = spec.access === 'RW';
    const common = {
      componentOf: nodes.object,
      nodeId: `s=Drive${unitId}.${browseNameOf(spec.name)}`,
      browseName: browseNameOf(spec.name),
      description: spec.description,
      minimumSamplingInterval: this.plant.tickMs,
      accessLevel: writable ? AccessLevelFlag.CurrentRead | AccessLevelFlag.CurrentWrite : AccessLevelFlag.CurrentRead,
      userAccessLevel: writable ? AccessLevelFlag.CurrentRead | AccessLevelFlag.CurrentWrite : AccessLevelFlag.CurrentRead,
    };
    const read = (): number => this.readParameter(drive, spec);
    let variable: UAVariable;
    const unit = spec.unit === '' ? undefined : spec.unit;
    if (!writable && unit && !(spec.name in MEASURED_RANGES)) throw new Error(`simulated OPC UA server: no EURange decided for ${spec.name}`);
    const value = { get: () => new Variant({ dataType, value: read() }) };
    const range = writable ? { low: spec.min ?? -Infinity, high: spec.max ?? Infinity } : MEASURED_RANGES[spec.name];
    if (unit && range) {
      variable = this.namespace.addAnalogDataItem({ ...common, dataType: DataType[dataType], engineeringUnits: euInformationOf(unit), engineeringUnitsRange: range, value });
    } else if (unit) {
      // A counter: BaseAnalogType (OPC 10000-8 §5.3.2.2), whose EURange is optional, with its unit only.
      variable = this.namespace.addVariable({ ...common, dataType: DataType[dataType], typeDefinition: 'BaseAnalogType', value });
      this.namespace.addVariable({
        propertyOf: variable, browseName: { name: 'EngineeringUnits', namespaceIndex: 0 },
        dataType: 'EUInformation', value: { dataType: DataType.ExtensionObject, value: euInformationOf(unit) },
      });
    } else {
      variable = this.namespace.addVariable({ ...common, dataType: DataType[dataType], value });
    }
    if (writable) {
      variable.setRolePermissions(OPERATOR_ONLY);
      variable.bindVariable({
        get: () => new Variant({ dataType, value: read() }),
        set: (variant: Variant): StatusCode => this.writeParameter(unitId, variable, spec, variant),
      }, true);
    }
    nodes.variables.set(spec.name, variable);
    return variable;
  }

  /** Delete a parameter's variable from the live address space (a changed address space). */
  removeParameter(unitId: number, parameter: string): void {
    const variable = this.drives.get(unitId)?.variables.get(parameter);
    if (!variable) throw new RangeError(`simulated OPC UA server: Drive${unitId} has no variable ${browseNameOf(parameter)}`);
    this.addressSpace.deleteNode(variable);
    this.drives.get(unitId)!.variables.delete(parameter);
  }

  private readParameter(drive: DriveModel, spec: ParameterSpec): number {
    const words = this.plant.registerMap.read(drive, spec.table, spec.address, registerCount(spec.type));
    return decodeValue(spec, words);
  }

  /** A write: EURange first (OPC 10000-8 §5.3.2: BadOutOfRange), then the register map's checks. */
  private writeParameter(unitId: number, variable: UAVariable, spec: ParameterSpec, variant: Variant): StatusCode {
    const value = Number(variant.value);
    const range = (variable.getChildByName('EURange') as UAVariable | null)?.readValue().value.value as { low: number; high: number } | undefined;
    if (!Number.isFinite(value)) return StatusCodes.BadOutOfRange;
    if (range && (value < range.low || value > range.high)) return StatusCodes.BadOutOfRange;
    try {
      this.plant.setParameter(unitId, spec.name, value);
      return StatusCodes.Good;
    } catch (error) {
      if (error instanceof ModbusException || error instanceof RangeError) return StatusCodes.BadOutOfRange;
      throw error;
    }
  }

  /** ResetFault(): resets a latched trip whose cause has cleared; out: FaultCleared (Boolean). */
  private addResetFault(unitId: number, object: UAObject): void {
    const method = this.namespace.addMethod(object, {
      nodeId: `s=Drive${unitId}.ResetFault`, browseName: 'ResetFault',
      description: 'Reset the latched fault if its cause has cleared (an overtemperature trip waits until the temperature is below its reset level); the run command must be given again',
      inputArguments: [],
      outputArguments: [{ name: 'FaultCleared', description: 'true when the drive is fault-free afterwards', dataType: DataType.Boolean }],
    });
    method.setRolePermissions(OPERATOR_ONLY);
    method.bindMethod(async (_inputs: Variant[], context: ISessionContext) => {
      if (!context.checkPermission(method, PermissionType.Call)) return { statusCode: StatusCodes.BadUserAccessDenied };
      const cleared = this.plant.drive(unitId).resetFault();
      return { statusCode: StatusCodes.Good, outputArguments: [{ dataType: DataType.Boolean, value: cleared }] };
    });
  }
}
