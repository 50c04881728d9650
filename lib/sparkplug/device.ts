/**
 * A Sparkplug B device under an edge node (lib/sparkplug/edge-node.ts), fed with tag batches
 * (lib/uns/tag-batch.ts, docs/tag-batch.md):
 *
 *   tag batch ─▶ checked whole (contract + every value against its Sparkplug type) ─▶ metric state
 *     ─▶ DBIRTH (every metric: name, alias, datatype, current value or is_null, timestamp) the first
 *        time, after a node (re)birth, and when a metric or a datatype is new
 *     ─▶ DDATA with only the metrics whose value or quality changed (report by exception)
 *   DCMD ─▶ metrics resolved by alias (or name), values read with the DBIRTH datatype ─▶ write
 *           command `{topic: <asset path>, payload: {metric: value}}` (what uns-modbus-write takes)
 *   source gone (every metric of a batch bad, or no batch for `staleAfterMs`) ─▶ DDEATH
 *
 * Data types: `meta.type` of the batch if given, else the type the metric already has, else
 * inferred (boolean → Boolean, string → String, bigint → Int64/UInt64, number → Double). A value
 * that does not fit its type rejects the whole batch (nothing is published half way).
 *
 * Cost: a source sends the same shape of batch (metric names in order, meta types) again and again,
 * so the device compiles a plan per shape (its slots resolve each name to the metric's state and
 * datatype) and reuses it while the shape holds; the contract checks that depend on the shape run
 * once per shape (TagBatchValidator), the values are checked every time, and the DDATA metrics are
 * rewritten in place: no allocation per metric (docs/sparkplug.md "Performance").
 */
import { EventEmitter } from 'node:events';
import type { MetricDataType, MetricMeta, MetricValue as TagValue, Quality, TagBatch } from '../uns/tag-batch';
import { TagBatchError, TagBatchValidator, type BatchShape } from '../uns/validate';
import { DataType as DataTypeExport, dataTypeCode, dataTypeName, valueProblem } from './datatypes';
import type { EdgeNodeDevice } from './edge-node';
import { metricValue, type DecodedPayload, type Metric, type PropertySet } from './payload';
import { checkSparkplugId } from './topics';
import type { Principal } from '../principal';

/** What a device needs from its edge node (SparkplugEdgeNode implements it). */
export interface DeviceHost {
  readonly online: boolean;
  addDevice(device: EdgeNodeDevice): void;
  removeDevice(device: EdgeNodeDevice): void;
  aliasFor(deviceId: string, metricName: string): number;
  /**
   * Publish now; DDATA while the node is not online is kept for store-and-forward (or counted as dropped).
   * `metrics` is read during the call only (encoded or copied): the device rewrites those objects for its next message.
   */
  publishDevice(type: 'DBIRTH' | 'DDATA' | 'DDEATH', deviceId: string, metrics: Metric[]): boolean;
  deviceChanged(): void;
  commandRejected(message: string): void;
  /** Who sends DCMDs to this node's devices (the primary host, else the node's own session). */
  readonly commandPrincipal: Principal;
}

export interface DeviceOptions {
  deviceId: string;
  /** The asset's UNS path: only batches with this msg.topic are accepted, and writes go to it. Empty: any, writes go to the last batch's topic. */
  assetPath?: string;
  /** DDEATH when every metric of a batch has quality "bad" (the source lost its device). */
  deathOnBadQuality: boolean;
  /** DDEATH after this long without a batch (ms); 0 = never. */
  staleAfterMs: number;
  /** Forward DCMD writes; when false they are refused with a warning. */
  writable: boolean;
  now?: () => number;
  /** Configuration-level advice (metric names that differ only in case). */
  warn?: (message: string) => void;
}

/** `no-data`: nothing received yet; `waiting`: has data, the node is not online; `born`: DBIRTH out; `dead`: DDEATH. */
export type DeviceState = 'no-data' | 'waiting' | 'born' | 'dead';

/** A write for the sink that owns the asset (uns-modbus-write, uns-vfd): one message per DCMD. */
export interface WriteCommand {
  topic: string;
  payload: Record<string, TagValue>;
  /** The DCMD payload's timestamp. */
  timestamp?: number;
  /** Who sent the DCMD (docs/tag-batch.md "Who sent a write"): the sink puts it in its audit record. */
  principal: Principal;
}

export interface DeviceEvents {
  state: [state: DeviceState, detail: string | undefined];
  write: [command: WriteCommand];
}

interface MetricState {
  name: string;
  alias: number;
  datatype: number;
  value: CodecValue;
  timestamp: number;
  quality: Quality;
  unit: string | undefined;
  /** The quality the host knows (last BIRTH/DATA that carried it). */
  reportedQuality: Quality;
  /** This metric in a DDATA, rewritten for each message (alias only, no name). */
  readonly data: Metric;
}

type CodecValue = number | bigint | boolean | string | Uint8Array | null;

/** One metric of a batch shape, and the update the batch being handled makes to it (checked before anything changes). */
interface Slot {
  readonly name: string;
  /** The datatype the shape's `meta[name].type` names, if any. */
  readonly declared: number | undefined;
  /** The metric's state; undefined until the first batch of the metric is applied. */
  state: MetricState | undefined;
  datatype: number;
  value: CodecValue;
  timestamp: number;
  quality: Quality;
  unit: string | undefined;
}

/**
 * Sparkplug's Quality property values (an OPC DA quality code in an Int32 property,
 * [tck-id-payloads-propertyset-quality-value-value]: 0 BAD, 192 GOOD, 500 STALE). "uncertain" has no
 * code of its own there: it is sent as STALE, the nearest meaning (a value that may not be current).
 */
const QUALITY_CODE: Record<Quality, number> = { good: 192, bad: 0, uncertain: 500 };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const INT64_MAX = 2n ** 63n - 1n;
const FLOAT_MAX = 3.4028234663852886e38;
// A module-local copy: transpilers turn an imported binding into a getter, a call per access (see payload.ts).
const DataType = { ...DataTypeExport };

export class SparkplugDevice extends EventEmitter<DeviceEvents> implements EdgeNodeDevice {
  readonly deviceId: string;
  private readonly metrics = new Map<string, MetricState>();
  private readonly byAlias = new Map<number, MetricState>();
  /** Lower-cased metric names, to warn about names that differ only in case. */
  private readonly lowerCaseNames = new Map<string, string>();
  private bornValue = false;
  private alive = false;
  private stateValue: DeviceState = 'no-data';
  private lastTopic: string | undefined;
  private lastDataAt = 0;
  private staleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;
  /** Contract checks of the batches; shape-dependent ones once per shape. */
  private readonly validator = new TagBatchValidator({ checkTypes: false }); // types: checked in check(), against DBIRTH types too
  /** The compiled plan: the slots of the validator's current shape. */
  private shape: BatchShape | undefined;
  private slots: Slot[] = [];
  /** Reused per batch: the metrics that changed, and their DDATA metrics. */
  private readonly changed: MetricState[] = [];
  private readonly dataMetrics: Metric[] = [];

  /** Registers with `host`; throws when the id is invalid or taken on that edge node. */
  constructor(private readonly host: DeviceHost, private readonly options: DeviceOptions) {
    super();
    this.deviceId = checkSparkplugId('device id', options.deviceId);
    this.now = options.now ?? Date.now;
    host.addDevice(this);
  }

  get born(): boolean {
    return this.bornValue;
  }

  get readyToBirth(): boolean {
    return this.alive && this.metrics.size > 0;
  }

  get state(): DeviceState {
    return this.stateValue;
  }

  get metricCount(): number {
    return this.metrics.size;
  }

  /**
   * Take one tag batch. Throws TagBatchError naming every problem, before anything changed, when the
   * batch breaks the contract or a value does not fit its Sparkplug type.
   */
  handleBatch(msg: unknown): void {
    const batch = msg as TagBatch;
    const now = this.now();
    const slots = this.check(batch, now);
    this.lastTopic = batch.topic;
    this.lastDataAt = now;
    if (this.options.deathOnBadQuality && slots.every((slot) => slot.quality === 'bad')) {
      this.apply(slots);
      this.die('the source reports bad quality for every metric');
      return;
    }
    const rebirth = this.apply(slots);
    this.alive = true;
    this.armStaleTimer();
    if (this.host.online && (!this.bornValue || rebirth)) {
      this.publishBirth();
      return;
    }
    if (!this.host.online) this.setState('waiting', undefined);
    const changed = this.changed;
    if (changed.length === 0) return;
    const metrics = this.dataMetrics;
    metrics.length = changed.length;
    for (let i = 0; i < changed.length; i++) metrics[i] = this.dataMetric(changed[i]);
    // Not online: the edge node keeps it for store-and-forward.
    this.host.publishDevice('DDATA', this.deviceId, metrics);
    for (let i = 0; i < changed.length; i++) changed[i].reportedQuality = changed[i].quality;
  }

  /** Stop: DDEATH if born, leave the edge node, clear the timer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearStaleTimer();
    this.host.removeDevice(this);
    this.removeAllListeners();
  }

  // ---------------------------------------------------------------- EdgeNodeDevice

  nodeBorn(): void {
    this.bornValue = false;
    if (this.readyToBirth) this.publishBirth();
  }

  birthAlias(metricName: string): number | undefined {
    // Every known metric is in the current DBIRTH: a new one triggers a new DBIRTH.
    return this.bornValue ? this.metrics.get(metricName)?.alias : undefined;
  }

  nodeDied(): void {
    if (!this.bornValue) return;
    this.bornValue = false;
    this.setState('waiting', undefined);
  }

  command(payload: DecodedPayload): void {
    const principal = this.host.commandPrincipal;
    const refuse = (why: string): void => this.host.commandRejected(`DCMD for device "${this.deviceId}" from ${principal.id} refused: ${why}`);
    if (!this.options.writable) return refuse('the device does not accept writes');
    if (!this.bornValue) return refuse('the device is offline');
    const topic = this.options.assetPath || this.lastTopic;
    if (topic === undefined) return refuse('no asset path is known yet');
    const problems: string[] = [];
    const writes: Record<string, TagValue> = {};
    for (const metric of payload.metrics) {
      // [tck-id-payloads-alias-data-cmd-requirement]: alias when aliases are used; a name is accepted too.
      const state = metric.alias !== undefined ? this.byAlias.get(Number(metric.alias)) : metric.name !== undefined ? this.metrics.get(metric.name) : undefined;
      const label = metric.alias !== undefined ? `alias ${String(metric.alias)}` : `"${metric.name ?? '?'}"`;
      if (state === undefined) {
        problems.push(`unknown metric ${label}`);
        continue;
      }
      if (metric.datatype !== undefined && metric.datatype !== state.datatype) {
        problems.push(`metric "${state.name}" is ${dataTypeName(state.datatype)}, the command says ${dataTypeName(metric.datatype)}`);
        continue;
      }
      try {
        const value = metricValue(metric, state.datatype);
        if (value === null) throw new Error('null cannot be written');
        writes[state.name] = value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value as TagValue;
      } catch (error) {
        problems.push(`metric "${state.name}" (${dataTypeName(state.datatype)}): ${(error as Error).message}`);
      }
    }
    if (problems.length > 0) return refuse(problems.join('; '));
    if (Object.keys(writes).length === 0) return refuse('no metrics in the command');
    const timestamp = typeof payload.timestamp === 'number' ? payload.timestamp : undefined;
    this.emit('write', { topic, payload: writes, timestamp, principal });
  }

  // ---------------------------------------------------------------- internals

  /**
   * The slots of the batch's shape, each holding the update the batch makes; throws TagBatchError
   * naming every problem before anything changed.
   */
  private check(batch: TagBatch, now: number): Slot[] {
    const problems = this.validator.problems(batch);
    if (problems.length > 0) throw new TagBatchError(problems);
    if (this.options.assetPath && batch.topic !== this.options.assetPath) {
      throw new TagBatchError([`msg.topic "${batch.topic}" is not the asset path "${this.options.assetPath}" of Sparkplug device "${this.deviceId}"`]);
    }
    const shape = this.validator.shape!;
    if (shape !== this.shape) {
      this.slots = this.compileSlots(shape);
      this.shape = shape;
    }
    const slots = this.slots;
    this.fillSlots(batch.timestamp ?? now);
    let found: string[] | undefined;
    for (let i = 0; i < slots.length; i++) {
      const problem = this.valueProblemOf(slots[i]);
      if (problem !== undefined) (found ??= []).push(problem);
    }
    if (found !== undefined) throw new TagBatchError(found);
    return slots;
  }

  /** One slot per metric of the shape, in its order, bound to the metric's state where it has one. */
  private compileSlots(shape: BatchShape): Slot[] {
    const entries = this.validator.entries;
    return shape.names.map((name, i) => {
      const metaType = entries[i]?.type as MetricDataType | undefined;
      const declared = metaType !== undefined ? dataTypeCode(metaType) : undefined;
      return { name, declared, state: this.metrics.get(name), datatype: 0, value: null, timestamp: 0, quality: 'good', unit: undefined };
    });
  }

  /** The batch's update into the slots, from the values and meta entries the validator found. Reads only: nothing changes before every value is checked. */
  private fillSlots(defaultTimestamp: number): void {
    const slots = this.slots;
    const values = this.validator.values as readonly TagValue[];
    const entries = this.validator.entries as readonly (MetricMeta | undefined)[];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      const value = values[i];
      const state = slot.state;
      slot.datatype = slot.declared ?? (state !== undefined ? state.datatype : inferDataType(value));
      slot.value = value;
      const entry = entries[i];
      if (entry === undefined) {
        slot.timestamp = defaultTimestamp;
        slot.quality = 'good';
        slot.unit = undefined;
      } else {
        slot.timestamp = entry.timestamp ?? defaultTimestamp;
        slot.quality = entry.quality ?? 'good';
        slot.unit = entry.unit;
      }
    }
  }

  /** Why the slot's value does not fit its datatype (Bytes: base64 text, turned into bytes here), or undefined. */
  private valueProblemOf(slot: Slot): string | undefined {
    const { datatype, value } = slot;
    // The hot path, inline: a finite number in a Float/Double metric.
    if (typeof value === 'number' && (datatype === DataType.Double ? Number.isFinite(value) : datatype === DataType.Float && Math.abs(value) <= FLOAT_MAX)) return undefined;
    if (value === null) return undefined;
    let problem: string | undefined;
    if (datatype === DataType.Bytes && typeof value === 'string') {
      if (BASE64.test(value)) slot.value = Buffer.from(value, 'base64');
      else problem = 'is not base64 (Bytes values are base64 strings in a tag batch)';
    }
    problem ??= valueProblem(datatype, slot.value);
    if (problem === undefined) return undefined;
    const from = slot.declared === undefined && slot.state !== undefined ? ', as in its DBIRTH' : '';
    return `metric "${slot.name}" (${dataTypeName(datatype)}${from}): ${problem}`;
  }

  /** Apply the checked slots: new metrics get a state (and force a DBIRTH); `this.changed` gets what changed. True when a DBIRTH is due. */
  private apply(slots: Slot[]): boolean {
    const changed = this.changed;
    changed.length = 0;
    let rebirth = false;
    for (let i = 0; i < slots.length; i++) {
      const u = slots[i];
      let m = u.state;
      if (m === undefined) m = this.metrics.get(u.name);
      if (m === undefined) {
        // [tck-id-topics-dbirth-metric-reqs]: a new metric needs a new DBIRTH.
        const alias = this.host.aliasFor(this.deviceId, u.name);
        const created: MetricState = {
          name: u.name, alias, datatype: u.datatype, value: u.value, timestamp: u.timestamp, quality: u.quality, unit: u.unit,
          reportedQuality: u.quality, data: { alias, timestamp: 0, datatype: 0, value: null, properties: undefined },
        };
        this.checkCaseCollision(u.name);
        this.metrics.set(u.name, created);
        this.byAlias.set(created.alias, created);
        u.state = created;
        rebirth = true;
        changed.push(created); // online it goes out in the DBIRTH; offline it is history like any change
        continue;
      }
      u.state = m;
      if (m.datatype !== u.datatype || (u.unit !== undefined && u.unit !== m.unit)) {
        m.datatype = u.datatype;
        if (u.unit !== undefined) m.unit = u.unit;
        rebirth = true;
      }
      const valueChanged = !sameValue(m.value, u.value);
      m.value = u.value;
      m.timestamp = u.timestamp;
      m.quality = u.quality;
      if (valueChanged || m.quality !== m.reportedQuality) changed.push(m);
    }
    return rebirth;
  }

  /** [tck-id-case-sensitivity-metric-names] SHOULD NOT: names equal but for case confuse some hosts. */
  private checkCaseCollision(name: string): void {
    const lower = name.toLowerCase();
    const other = this.lowerCaseNames.get(lower);
    if (other === undefined) this.lowerCaseNames.set(lower, name);
    else this.options.warn?.(`Sparkplug device "${this.deviceId}": metric names "${other}" and "${name}" differ only in case; some host applications cannot tell them apart`);
  }

  /** DBIRTH with every metric [tck-id-topics-dbirth-metrics] [tck-id-operational-behavior-data-publish-dbirth-values]. */
  private publishBirth(): void {
    const metrics: Metric[] = [];
    for (const m of this.metrics.values()) {
      const properties = birthProperties(m);
      metrics.push({ name: m.name, alias: m.alias, timestamp: m.timestamp, datatype: m.datatype, value: m.value, ...(properties ? { properties } : {}) });
    }
    if (!this.host.publishDevice('DBIRTH', this.deviceId, metrics)) return;
    for (const m of this.metrics.values()) m.reportedQuality = m.quality;
    this.bornValue = true;
    this.host.deviceChanged();
    this.setState('born', `${metrics.length} metrics`);
  }

  /** A DDATA metric: alias only, no name [tck-id-payloads-alias-data-cmd-requirement], timestamp, Quality when it changed. */
  private dataMetric(m: MetricState): Metric {
    const metric = m.data;
    metric.timestamp = m.timestamp;
    metric.datatype = m.datatype;
    metric.value = m.value;
    metric.properties = m.quality !== 'good' || m.reportedQuality !== m.quality ? QUALITY_PROPERTY[m.quality] : undefined;
    return metric;
  }

  private die(reason: string): void {
    this.clearStaleTimer();
    if (!this.alive && this.stateValue === 'dead') return;
    this.alive = false;
    if (this.bornValue) {
      this.bornValue = false;
      this.host.publishDevice('DDEATH', this.deviceId, []); // [tck-id-operational-behavior-device-ddeath]
      this.host.deviceChanged();
    }
    this.setState('dead', reason);
  }

  private armStaleTimer(): void {
    const staleAfterMs = this.options.staleAfterMs;
    if (staleAfterMs <= 0 || this.staleTimer !== undefined || this.closed) return;
    const check = (): void => {
      const quiet = this.now() - this.lastDataAt;
      if (quiet >= staleAfterMs) {
        this.staleTimer = undefined;
        this.die(`no data for ${(quiet / 1000).toFixed(1)} s`);
      } else {
        this.staleTimer = setTimeout(check, staleAfterMs - quiet);
      }
    };
    this.staleTimer = setTimeout(check, staleAfterMs);
  }

  private clearStaleTimer(): void {
    if (this.staleTimer !== undefined) clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
  }

  private setState(state: DeviceState, detail: string | undefined): void {
    if (this.stateValue === state && detail === undefined) return;
    this.stateValue = state;
    this.emit('state', state, detail);
  }
}

function inferDataType(value: TagValue): number {
  switch (typeof value) {
    case 'boolean': return DataType.Boolean;
    case 'string': return DataType.String;
    case 'bigint': return value > INT64_MAX ? DataType.UInt64 : DataType.Int64;
    default: return DataType.Double; // numbers, and null until a typed value arrives
  }
}

function sameValue(a: CodecValue, b: CodecValue): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  // 5 and 5n are the same Int64 value.
  if ((typeof a === 'bigint' && typeof b === 'number') || (typeof a === 'number' && typeof b === 'bigint')) return BigInt(a) === BigInt(b);
  return a === b;
}

/** [tck-id-payloads-propertyset-quality-value-type]: the Quality property is an Int32. */
function qualityProperty(quality: Quality): PropertySet {
  return { keys: ['Quality'], values: [{ type: DataType.Int32, value: QUALITY_CODE[quality] }] };
}

/** The Quality property of DDATA metrics, shared (read-only: encoded or copied by the edge node). */
const QUALITY_PROPERTY: Readonly<Record<Quality, PropertySet>> = Object.freeze({
  good: qualityProperty('good'), bad: qualityProperty('bad'), uncertain: qualityProperty('uncertain'),
});

/** BIRTH properties: Quality when not good, engUnit when the batch names a unit. */
function birthProperties(m: MetricState): PropertySet | undefined {
  if (m.quality === 'good' && m.unit === undefined) return undefined;
  const set: PropertySet = m.quality !== 'good' ? qualityProperty(m.quality) : { keys: [], values: [] };
  if (m.unit !== undefined) {
    set.keys.push('engUnit');
    set.values.push({ type: DataType.String, value: m.unit });
  }
  return set;
}
