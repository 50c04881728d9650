/**
 * From metric definitions to the fewest read requests, and from their responses to a tag batch.
 *
 * Requests are merged per table: metrics whose registers are contiguous, overlapping or at most
 * `mergeGap` registers apart share one request, up to maxRegisters (≤ 125, App Protocol v1.1b3
 * §6.3/§6.4) or maxBits (≤ 2000, §6.1/§6.2) items. Reading a gap costs a few bytes but saves a
 * round trip (a round trip costs 2.5–25 ms on a real PLC); devices that answer 02 illegal data
 * address for holes in their map need mergeGap 0.
 *
 * A failed request marks only its own metrics: value null, quality "bad", and a reason that
 * names the cause ("Modbus exception 2 (illegal data address)") — never a value of 0
 * (security.md T-MB-06).
 */
import { ModbusTable } from './data-model';
import {
  CompiledScaling, compileScaling, decodeRegisters, isScaled, MODBUS_DATA_TYPES, ModbusDataType, registerCount, Scaling, sparkplugTypeOf,
  WORD_ORDERS, WordOrder,
} from './datatypes';
import { bitAt, MAX_READ_BITS, MAX_READ_REGISTERS, ReadFunctionCode, readFunctionOf } from './pdu';
import { MetricDataType, MetricMeta, TagBatch } from '../uns/tag-batch';

export interface MetricDefinition extends Scaling {
  /** Metric name in the tag batch (may contain '/'). */
  name: string;
  table: ModbusTable;
  /** 0-based protocol address (register 40001 of the "Modicon" convention is address 0). */
  address: number;
  type: ModbusDataType;
  /** Order of bytes over registers for multi-register types; default ABCD. */
  wordOrder?: WordOrder;
  /** Engineering unit, e.g. "A", "Hz", "degC". */
  unit?: string;
  /** Registers of a string (two characters each); default 1. */
  length?: number;
  /** For type 'bit' in a holding/input register: bit number 0 (LSB)..15; default 0. */
  bit?: number;
}

const TABLES: readonly ModbusTable[] = ['coil', 'discrete', 'holding', 'input'];

/** A metric as planned: its definition, register (or bit) count and Sparkplug type. */
export interface PlannedMetric {
  readonly def: MetricDefinition;
  readonly count: number;
  readonly type: MetricDataType;
  /** The metric's scaling, prepared once (undefined when unscaled). */
  readonly scaling: CompiledScaling | undefined;
  /** Offset of the metric's first item within its request. */
  readonly offset: number;
}

export interface PlannedRead {
  readonly fc: ReadFunctionCode;
  readonly table: ModbusTable;
  readonly address: number;
  readonly quantity: number;
  readonly metrics: readonly PlannedMetric[];
}

export interface ReadPlan {
  readonly requests: readonly PlannedRead[];
  readonly metricCount: number;
  /** The objects each poll's batch starts from (newTagBatch). */
  readonly layout: BatchLayout;
}

/**
 * A payload and a meta object with a property for each metric name, in the order the batch will
 * hold them, each value null until the poll sets it. A batch's objects are copies of these
 * ({...layout.payload}), which V8 gives fast properties with one shared hidden class. An object
 * given its names one by one (payload[name] = value) becomes a hash table once it has more than
 * about 16 of them, which every sink that enumerates it (validation, encoding) pays for: with 24
 * metrics per drive, batches made from a layout gave uns-out 1.28× the updates per gateway
 * core-second in bench/pipeline.ts (docs/benchmarks.md, pipelined section).
 */
export interface BatchLayout {
  readonly payload: Readonly<Record<string, null>>;
  readonly meta: Readonly<Record<string, null>>;
}

export interface ReadPlanOptions {
  /** Most registers per request (FC3/FC4), 1..125; default 125. */
  maxRegisters?: number;
  /** Most bits per request (FC1/FC2), 1..2000; default 2000. */
  maxBits?: number;
  /** Largest hole (registers, or bits ×16) bridged when merging; default 8. */
  mergeGap?: number;
  /** Names a consumer adds to every batch after the reads (drive telemetry's derived metrics), for the layout. */
  addedNames?: readonly string[];
}

export class MetricDefinitionError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid metric definitions: ${problems.join('; ')}`);
    this.name = 'MetricDefinitionError';
    Object.setPrototypeOf(this, MetricDefinitionError.prototype);
  }
}

const isBitTable = (t: ModbusTable): boolean => t === 'coil' || t === 'discrete';
const isUint16 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;
const isFiniteOrUndefined = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v));

/** Every problem with the definitions (empty when they are valid), for a clear deploy-time error. */
export function validateMetricDefinitions(defs: readonly MetricDefinition[], maxRegisters = MAX_READ_REGISTERS): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  if (!Array.isArray(defs) || defs.length === 0) return ['no metrics defined'];
  defs.forEach((d, i) => {
    const at = `metric ${i + 1}${typeof d?.name === 'string' && d.name ? ` "${d.name}"` : ''}`;
    if (typeof d?.name !== 'string' || d.name.trim() === '') problems.push(`${at}: name is empty`);
    else if (names.has(d.name)) problems.push(`${at}: duplicate name`);
    else names.add(d.name);
    if (!TABLES.includes(d?.table)) problems.push(`${at}: table must be one of ${TABLES.join(', ')}`);
    if (!MODBUS_DATA_TYPES.includes(d?.type)) problems.push(`${at}: type must be one of ${MODBUS_DATA_TYPES.join(', ')}`);
    if (!isUint16(d?.address)) problems.push(`${at}: address must be an integer 0..65535`);
    if (d?.wordOrder !== undefined && !WORD_ORDERS.includes(d.wordOrder)) problems.push(`${at}: word order must be one of ${WORD_ORDERS.join(', ')}`);
    if (TABLES.includes(d?.table) && isBitTable(d.table) && d.type !== 'bit') problems.push(`${at}: ${d.table} holds bits; type must be bit`);
    const badLength = d?.type === 'string' && !(Number.isInteger(d.length ?? 1) && (d.length ?? 1) >= 1 && (d.length ?? 1) <= maxRegisters);
    if (badLength) problems.push(`${at}: string length must be 1..${maxRegisters} registers`);
    if (d?.bit !== undefined && !(Number.isInteger(d.bit) && d.bit >= 0 && d.bit <= 15)) problems.push(`${at}: bit must be 0..15`);
    if (!isFiniteOrUndefined(d?.scale) || d?.scale === 0) problems.push(`${at}: scale must be a finite non-zero number`);
    if (!isFiniteOrUndefined(d?.offset)) problems.push(`${at}: offset must be a finite number`);
    if (d?.signal !== undefined && d.signal !== '4-20mA') problems.push(`${at}: signal must be 4-20mA or empty`);
    if (d?.signal === '4-20mA' && (!isFiniteOrUndefined(d.euMin) || !isFiniteOrUndefined(d.euMax) || (d.euMin ?? 0) === (d.euMax ?? 100))) {
      problems.push(`${at}: 4-20mA needs finite, different euMin and euMax`);
    }
    if (d?.signal === '4-20mA' && (d.type === 'bit' || d.type === 'string')) problems.push(`${at}: 4-20mA needs a numeric type`);
    if (!badLength && isUint16(d?.address) && MODBUS_DATA_TYPES.includes(d?.type) && d.type !== 'bit') {
      const count = registerCount(d.type, d.length);
      if (d.address + count > 0x10000) problems.push(`${at}: registers ${d.address}..${d.address + count - 1} run past 65535`);
      if (count > maxRegisters) problems.push(`${at}: ${count} registers exceed the ${maxRegisters} per request`);
    }
  });
  return problems;
}

/** Build the requests for `defs`. Throws MetricDefinitionError listing every problem. */
export function buildReadPlan(defs: readonly MetricDefinition[], options: ReadPlanOptions = {}): ReadPlan {
  const maxRegisters = clampInt(options.maxRegisters, 1, MAX_READ_REGISTERS, MAX_READ_REGISTERS);
  const maxBits = clampInt(options.maxBits, 1, MAX_READ_BITS, MAX_READ_BITS);
  const mergeGap = clampInt(options.mergeGap, 0, MAX_READ_BITS, 8);
  const problems = validateMetricDefinitions(defs, maxRegisters);
  if (problems.length) throw new MetricDefinitionError(problems);

  const requests: PlannedRead[] = [];
  for (const table of TABLES) {
    const bits = isBitTable(table);
    const max = bits ? maxBits : maxRegisters;
    const gap = bits ? mergeGap * 16 : mergeGap;
    const inTable = defs
      .filter((d) => d.table === table)
      .map((d) => ({ def: d, count: bits ? 1 : registerCount(d.type, d.length) }))
      .sort((a, b) => a.def.address - b.def.address);
    let block: Array<{ def: MetricDefinition; count: number }> = [];
    let start = 0;
    let end = 0;
    const flush = () => {
      if (block.length) requests.push(planRead(table, start, end - start, block));
      block = [];
    };
    for (const item of inTable) {
      const itemEnd = item.def.address + item.count;
      if (block.length && item.def.address - end <= gap && Math.max(end, itemEnd) - start <= max) {
        end = Math.max(end, itemEnd);
        block.push(item);
        continue;
      }
      flush();
      start = item.def.address;
      end = itemEnd;
      block.push(item);
    }
    flush();
  }
  const names = requests.flatMap((read) => read.metrics.map((m) => m.def.name));
  return { requests, metricCount: defs.length, layout: batchLayout([...new Set([...names, ...(options.addedNames ?? [])])]) };
}

/** The layout of a batch of these metric names (see BatchLayout). */
export function batchLayout(names: readonly string[]): BatchLayout {
  // JSON.parse makes objects with fast properties whatever their size (and own "__proto__" members).
  const text = `{${names.map((name) => `${JSON.stringify(name)}:null`).join(',')}}`;
  return { payload: JSON.parse(text) as Record<string, null>, meta: JSON.parse(text) as Record<string, null> };
}

function planRead(table: ModbusTable, address: number, quantity: number, items: Array<{ def: MetricDefinition; count: number }>): PlannedRead {
  return {
    fc: readFunctionOf(table),
    table,
    address,
    quantity,
    metrics: items.map(({ def, count }) => {
      const scaled = isScaled(def);
      return {
        def, count, scaling: scaled ? compileScaling(def) : undefined, type: sparkplugTypeOf(def.type, scaled), offset: def.address - address,
      };
    }),
  };
}

function clampInt(v: number | undefined, min: number, max: number, fallback: number): number {
  if (v === undefined || !Number.isFinite(v)) return fallback;
  return Math.min(max, Math.max(min, Math.floor(v)));
}

/**
 * A batch to fill: the asset path as topic, payload and meta copied from `layout` (every metric
 * null, to be set by applyReadResponse or applyReadFailure), or empty without one.
 */
export function newTagBatch(topic: string, timestamp: number, layout?: BatchLayout): TagBatch & { meta: Record<string, MetricMeta> } {
  if (layout === undefined) return { topic, payload: {}, meta: {}, timestamp };
  return { topic, payload: { ...layout.payload }, meta: { ...layout.meta } as unknown as Record<string, MetricMeta>, timestamp };
}

/** Decode the response data of `read` (registers or packed bits as on the wire) into `batch`. */
export function applyReadResponse(read: PlannedRead, data: Buffer, timestamp: number, batch: TagBatch & { meta: Record<string, MetricMeta> }): void {
  const bits = read.fc <= 2;
  for (const m of read.metrics) {
    const def = m.def;
    const raw = bits
      ? bitAt(data, m.offset) === 1
      : decodeRegisters(data, m.offset, def.type, def.wordOrder, def.length, def.bit);
    const scaled = m.scaling?.scale(raw);
    batch.payload[def.name] = scaled ? scaled.value : raw;
    const meta: MetricMeta = { timestamp, quality: scaled ? scaled.quality : 'good', type: m.type };
    if (def.unit) meta.unit = def.unit;
    if (scaled?.reason) meta.reason = scaled.reason;
    batch.meta[def.name] = meta;
  }
}

/** Mark every metric of a failed `read` bad: value null, the reason given. */
export function applyReadFailure(read: PlannedRead, reason: string, timestamp: number, batch: TagBatch & { meta: Record<string, MetricMeta> }): void {
  for (const m of read.metrics) {
    batch.payload[m.def.name] = null;
    const meta: MetricMeta = { timestamp, quality: 'bad', type: m.type, reason };
    if (m.def.unit) meta.unit = m.def.unit;
    batch.meta[m.def.name] = meta;
  }
}
