/**
 * An in-memory ModbusDataModel: per unit, four tables of `size` items (App Protocol v1.1b3 §4.3).
 * Reads or writes beyond `size` answer 02 illegal data address (§6.x state diagrams). A unit can be
 * silenced (it stops answering, as a powered-off slave behind a gateway) or made to fail every
 * request with an exception code — the faults the client must survive.
 */
import { ModbusDataModel, ModbusException, ModbusExceptionCode, ModbusTable, WritableTable } from './data-model';

interface UnitTables {
  coil: Uint8Array;
  discrete: Uint8Array;
  holding: Uint16Array;
  input: Uint16Array;
}

export interface MemoryDataModelOptions {
  /** Unit ids served; default [1]. */
  units?: Iterable<number>;
  /** Items per table; default 65536 (the full address space). */
  size?: number;
}

export class MemoryDataModel implements ModbusDataModel {
  private readonly units = new Map<number, UnitTables>();
  private readonly silent = new Set<number>();
  private readonly failing = new Map<number, number>();
  readonly size: number;

  constructor(options: MemoryDataModelOptions = {}) {
    this.size = options.size ?? 0x10000;
    for (const unit of options.units ?? [1]) {
      this.units.set(unit, {
        coil: new Uint8Array(this.size),
        discrete: new Uint8Array(this.size),
        holding: new Uint16Array(this.size),
        input: new Uint16Array(this.size),
      });
    }
  }

  answers(unitId: number): boolean {
    return this.units.has(unitId) && !this.silent.has(unitId);
  }

  read(unitId: number, table: ModbusTable, address: number, quantity: number): number[] {
    const data = this.tableFor(unitId, table, address, quantity);
    return Array.from(data.subarray(address, address + quantity));
  }

  write(unitId: number, table: WritableTable, address: number, values: number[]): void {
    this.tableFor(unitId, table, address, values.length).set(values, address);
  }

  /** Set values directly (any table, including the read-only ones), bypassing the fault settings. */
  set(unitId: number, table: ModbusTable, address: number, values: ArrayLike<number>): void {
    this.tablesOf(unitId)[table].set(values, address);
  }

  /** Current values, bypassing the fault settings. */
  get(unitId: number, table: ModbusTable, address: number, quantity: number): number[] {
    return Array.from(this.tablesOf(unitId)[table].subarray(address, address + quantity));
  }

  /** A silent unit sends no response at all. */
  setSilent(unitId: number, silent: boolean): void {
    if (silent) this.silent.add(unitId);
    else this.silent.delete(unitId);
  }

  /** Every request to the unit answers this exception code; undefined clears the fault. */
  setFailure(unitId: number, code: number | undefined): void {
    if (code === undefined) this.failing.delete(unitId);
    else this.failing.set(unitId, code);
  }

  private tablesOf(unitId: number): UnitTables {
    const tables = this.units.get(unitId);
    if (!tables) throw new RangeError(`unit ${unitId} is not served by this model`);
    return tables;
  }

  private tableFor(unitId: number, table: ModbusTable, address: number, quantity: number): Uint8Array | Uint16Array {
    const failure = this.failing.get(unitId);
    if (failure !== undefined) throw new ModbusException(failure);
    if (address + quantity > this.size) {
      throw new ModbusException(ModbusExceptionCode.IllegalDataAddress, `${table} ${address}+${quantity} beyond ${this.size}`);
    }
    return this.tablesOf(unitId)[table];
  }
}
