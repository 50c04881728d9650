/**
 * What a Modbus server serves: the four primary tables of Modbus Application Protocol v1.1b3 §4.3.
 * The generic TCP server (lib/modbus/server.ts) frames requests and asks a data model for values;
 * the simulated plant (sim/) and test devices implement it.
 */

export type ModbusTable = 'coil' | 'discrete' | 'input' | 'holding';
export type WritableTable = 'coil' | 'holding';

/** Exception codes, Modbus Application Protocol v1.1b3 §7. */
export enum ModbusExceptionCode {
  IllegalFunction = 0x01,
  IllegalDataAddress = 0x02,
  IllegalDataValue = 0x03,
  ServerDeviceFailure = 0x04,
  Acknowledge = 0x05,
  ServerDeviceBusy = 0x06,
  MemoryParityError = 0x08,
  GatewayPathUnavailable = 0x0a,
  GatewayTargetFailedToRespond = 0x0b,
}

/** Thrown by a data model (and raised by clients on an exception response). */
export class ModbusException extends Error {
  constructor(readonly code: number, message?: string) {
    super(message ?? `Modbus exception ${code}`);
    this.name = 'ModbusException';
    Object.setPrototypeOf(this, ModbusException.prototype);
  }
}

export interface ModbusDataModel {
  /**
   * Whether this unit id answers at all. A unit that does not answer is a silent device on the
   * bus: the server sends nothing (the client times out), as an RTU slave that lost power would.
   */
  answers(unitId: number): boolean;
  /** Values of `quantity` items from `address`; bits as 0/1. Throws ModbusException. */
  read(unitId: number, table: ModbusTable, address: number, quantity: number): number[];
  /** Write values (bits as 0/1, registers as uint16). Throws ModbusException. */
  write(unitId: number, table: WritableTable, address: number, values: number[]): void;
}
