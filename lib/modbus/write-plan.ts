/**
 * From a write command to Modbus write requests, with every check done before anything goes on
 * the wire.
 *
 * A command is a tag batch payload `{ "<metric>": value, ... }` against the metric definitions of
 * the node (the same format as uns-modbus-read, plus `min`/`max`), so a batch from uns-in or a
 * Sparkplug DCMD drives it. Optionally (allowRaw) a raw form `{ table, address, type, value, ... }`
 * or an array of them addresses registers directly. Each value is checked: its JavaScript type,
 * finite numbers, the metric's min..max in engineering units, the 4–20 mA range, the integer range
 * of the register type after scaling, string length and Latin-1 characters (security.md
 * T-VAL-01/02). **A command with any problem writes nothing**: every problem is listed and no
 * request is built.
 *
 * Function codes (Modbus Application Protocol v1.1b3): a coil → FC5 Write Single Coil (§6.5), one
 * holding register → FC6 Write Single Register (§6.6), several registers → FC16 Write Multiple
 * Registers (§6.12). With `multipleOnly` a single coil or register goes as FC15 (§6.11) / FC16 for
 * devices that implement only those. Input registers and discrete inputs are read-only (§4.3). A bit
 * inside a holding register is refused: writing it alone needs FC22 Mask Write Register (§6.16) or a
 * read-modify-write that is not atomic, and neither is offered.
 */
import { WritableTable } from './data-model';
import { CompiledScaling, compileScaling, encodeRegisters, isScaled, ModbusValueError, RawValue } from './datatypes';
import { MAX_WRITE_REGISTERS, ModbusRequest } from './pdu';
import { MetricDefinition, MetricDefinitionError, validateMetricDefinitions } from './read-plan';
import { isPlainObject } from '../values';

export interface WriteMetricDefinition extends MetricDefinition {
  /** Lowest engineering value accepted (inclusive). */
  min?: number;
  /** Highest engineering value accepted (inclusive). */
  max?: number;
}

export interface WritePlanOptions {
  /** Use FC15/FC16 also for a single coil or register (devices without FC5/FC6). Default false. */
  multipleOnly?: boolean;
  /** A command naming a metric that is not defined: 'reject' it (default) or 'ignore' that metric. */
  unknownMetrics?: 'reject' | 'ignore';
  /** Accept the raw form { table, address, type, value, ... } (no min/max: use with care). Default false. */
  allowRaw?: boolean;
}

interface WritableMetric {
  readonly def: WriteMetricDefinition;
  readonly scaling: CompiledScaling | undefined;
}

export interface WritePlan {
  readonly metrics: ReadonlyMap<string, WritableMetric>;
  readonly options: Readonly<Required<WritePlanOptions>>;
}

/** One checked write, ready for the wire. */
export interface PreparedWrite {
  /** Metric name, or "holding:100" for a raw write. */
  readonly name: string;
  readonly def: MetricDefinition;
  /** The value asked for. */
  readonly value: unknown;
  /** The engineering value the registers will hold (differs from `value` when rounded to the register's resolution). */
  readonly written: RawValue;
  readonly request: ModbusRequest;
}

/** A problem with one metric of a command (name undefined: with the command as a whole). */
export interface CommandProblem {
  name?: string;
  problem: string;
}

export type PreparedCommand =
  | { ok: true; writes: PreparedWrite[] }
  | { ok: false; problems: CommandProblem[]; asked: AskedValue[] };

/** A metric (or raw address) a command asked to write, and the value. */
export interface AskedValue {
  name: string;
  value: unknown;
}

const WRITABLE_TABLES: readonly WritableTable[] = ['holding', 'coil'];
const INTEGER_TYPES = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);
const RAW_KEYS = new Set(['table', 'address', 'type', 'value', 'wordOrder', 'length', 'scale', 'offset']);

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Every problem with write definitions (empty when they are valid). */
export function validateWriteDefinitions(defs: readonly WriteMetricDefinition[]): string[] {
  const problems = validateMetricDefinitions(defs, MAX_WRITE_REGISTERS);
  if (!Array.isArray(defs)) return problems;
  defs.forEach((d, i) => {
    const at = `metric ${i + 1}${typeof d?.name === 'string' && d.name ? ` "${d.name}"` : ''}`;
    if (d?.table === 'input' || d?.table === 'discrete') {
      problems.push(`${at}: ${d.table === 'input' ? 'input registers' : 'discrete inputs'} are read-only; write a holding register or a coil`);
    }
    if (d?.table === 'holding' && d.type === 'bit') {
      problems.push(`${at}: a bit of a holding register cannot be written alone (that needs FC22 mask write); write the whole register or a coil`);
    }
    for (const key of ['min', 'max'] as const) {
      if (d?.[key] !== undefined && !isFiniteNumber(d[key])) problems.push(`${at}: ${key} must be a finite number`);
    }
    if (isFiniteNumber(d?.min) && isFiniteNumber(d?.max) && d.min > d.max) problems.push(`${at}: min ${d.min} is above max ${d.max}`);
    if ((d?.min !== undefined || d?.max !== undefined) && (d?.type === 'bit' || d?.type === 'string')) {
      problems.push(`${at}: min/max apply to numeric types only`);
    }
  });
  return problems;
}

/** Check the definitions once (at deploy). Throws MetricDefinitionError listing every problem. */
export function buildWritePlan(defs: readonly WriteMetricDefinition[], options: WritePlanOptions = {}): WritePlan {
  const problems = validateWriteDefinitions(defs);
  if (problems.length) throw new MetricDefinitionError(problems);
  const metrics = new Map<string, WritableMetric>();
  for (const def of defs) metrics.set(def.name, { def, scaling: isScaled(def) ? compileScaling(def) : undefined });
  return {
    metrics,
    options: {
      multipleOnly: options.multipleOnly === true,
      unknownMetrics: options.unknownMetrics === 'ignore' ? 'ignore' : 'reject',
      allowRaw: options.allowRaw === true,
    },
  };
}

/** The raw form: an object with table, address and value and no other keys than a definition's. */
function looksRaw(v: unknown): v is Record<string, unknown> {
  return isPlainObject(v) && 'table' in v && 'address' in v && 'value' in v && Object.keys(v).every((k) => RAW_KEYS.has(k));
}

/**
 * Check a command and build its requests, in the order the command lists them (a drive may need
 * the setpoint before the start bit). Nothing is returned to send unless every value passed.
 */
export function prepareCommand(plan: WritePlan, payload: unknown): PreparedCommand {
  const rawForm = looksRaw(payload) || (Array.isArray(payload) && payload.length > 0 && payload.every(looksRaw));
  if (rawForm && plan.options.allowRaw) return prepareRaw(plan, Array.isArray(payload) ? payload : [payload]);
  if (!isPlainObject(payload)) {
    return reject([{ problem: `a write command is an object { "<metric>": value }, got ${describe(payload)}` }], []);
  }
  const names = Object.keys(payload);
  const asked = names.map((name) => ({ name, value: payload[name] }));
  const problems: CommandProblem[] = [];
  if (names.length === 0) problems.push({ problem: 'the command names no metric' });
  if (rawForm) problems.push({ problem: 'this looks like a raw write { table, address, value }, but raw writes are off for this node' });
  const writes: PreparedWrite[] = [];
  for (const name of names) {
    const metric = plan.metrics.get(name);
    if (!metric) {
      if (plan.options.unknownMetrics === 'reject' && !rawForm) problems.push({ name, problem: `"${name}" is not a metric of this node` });
      continue;
    }
    try {
      writes.push(prepareOne(name, metric, payload[name], plan.options.multipleOnly));
    } catch (error) {
      problems.push({ name, problem: (error as Error).message });
    }
  }
  if (problems.length === 0 && writes.length === 0) problems.push({ problem: 'none of the metrics of the command is defined in this node' });
  return problems.length ? reject(problems, asked) : { ok: true, writes };
}

function prepareRaw(plan: WritePlan, items: Array<Record<string, unknown>>): PreparedCommand {
  const problems: CommandProblem[] = [];
  const writes: PreparedWrite[] = [];
  const asked: AskedValue[] = [];
  for (const item of items) {
    const name = `${String(item.table)}:${String(item.address)}`;
    asked.push({ name, value: item.value });
    const def = { ...item, name, type: item.type ?? (item.table === 'coil' ? 'bit' : 'uint16') } as WriteMetricDefinition;
    delete (def as { value?: unknown }).value;
    const defProblems = validateWriteDefinitions([def]).map((p) => p.replace(/^metric 1 "[^"]*": /, ''));
    if (defProblems.length) {
      problems.push(...defProblems.map((problem) => ({ name, problem })));
      continue;
    }
    try {
      writes.push(prepareOne(name, { def, scaling: isScaled(def) ? compileScaling(def) : undefined }, item.value, plan.options.multipleOnly));
    } catch (error) {
      problems.push({ name, problem: (error as Error).message });
    }
  }
  return problems.length ? reject(problems, asked) : { ok: true, writes };
}

function reject(problems: CommandProblem[], asked: AskedValue[]): PreparedCommand {
  return { ok: false, problems, asked };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/** Check one value and build its request. Throws ModbusValueError naming the problem. */
function prepareOne(name: string, metric: WritableMetric, value: unknown, multipleOnly: boolean): PreparedWrite {
  const { def, scaling } = metric;
  const table = def.table as WritableTable;
  if (!WRITABLE_TABLES.includes(table)) throw new ModbusValueError(`${def.table} is read-only`);
  if (def.type === 'bit') {
    if (typeof value !== 'boolean' && value !== 0 && value !== 1) throw new ModbusValueError(`needs true/false (or 1/0), got ${describe(value)}`);
    const on = value === true || value === 1;
    const request: ModbusRequest = multipleOnly ? { fc: 15, address: def.address, values: [on] } : { fc: 5, address: def.address, value: on };
    return { name, def, value, written: on, request };
  }
  const { registers, written } = def.type === 'string'
    ? { registers: encodeRegisters(value as RawValue, 'string', def.wordOrder, def.length), written: value as string }
    : encodeNumber(def, scaling, value);
  const request: ModbusRequest = registers.length === 1 && !multipleOnly
    ? { fc: 6, address: def.address, value: registers[0] }
    : { fc: 16, address: def.address, values: registers };
  return { name, def, value, written, request };
}

/** Round half away from zero (Math.round rounds −2.5 to −2). */
function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

function encodeNumber(def: WriteMetricDefinition, scaling: CompiledScaling | undefined, value: unknown): { registers: number[]; written: RawValue } {
  const integerType = INTEGER_TYPES.has(def.type);
  const wide = def.type === 'int64' || def.type === 'uint64';
  let checked: number | bigint;
  if (typeof value === 'bigint' && wide && !scaling) checked = value;
  else if (typeof value === 'string' && wide && !scaling && /^-?\d+$/.test(value)) checked = BigInt(value); // JSON has no 64-bit integers
  else if (isFiniteNumber(value)) checked = value;
  else throw new ModbusValueError(`needs a finite number, got ${describe(value)}`);
  if (def.min !== undefined && checked < def.min) throw new ModbusValueError(`${String(checked)} is below the minimum ${def.min}${def.unit ? ` ${def.unit}` : ''}`);
  if (def.max !== undefined && checked > def.max) throw new ModbusValueError(`${String(checked)} is above the maximum ${def.max}${def.unit ? ` ${def.unit}` : ''}`);
  if (typeof checked === 'bigint') return { registers: encodeRegisters(checked, def.type, def.wordOrder), written: checked };
  if (!scaling) {
    if (integerType && !Number.isInteger(checked)) throw new ModbusValueError(`${def.type} needs an integer, got ${checked}`);
    return { registers: encodeRegisters(checked, def.type, def.wordOrder), written: checked };
  }
  // A scaled integer register holds the value to its resolution (scale): round to the nearest step
  // and report the value it will hold. A float register takes the value as it is.
  const exact = scaling.unscale(checked);
  const raw = integerType ? roundHalfAway(exact) : exact;
  try {
    const registers = encodeRegisters(raw, def.type, def.wordOrder);
    return { registers, written: integerType ? (scaling.scale(raw).value as number) : checked };
  } catch (error) {
    if (error instanceof ModbusValueError) throw new ModbusValueError(`${checked} is raw ${raw}: ${error.message}`);
    throw error;
  }
}
