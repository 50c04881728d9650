/**
 * The fast poller for a node: metric definitions (lib/modbus/read-plan) → poll blocks, deadbands
 * and trip rules in raw register units → a poller (native or fallback) → tag batches of the
 * changed metrics (docs/tag-batch.md), decoded with the same read plan as uns-modbus-read.
 *
 * Change detection runs in the poll thread per register; here a changed register marks the
 * metrics over it, and only those go into the batch (report by exception). Many cycles coalesce
 * into one batch when the event loop is slow: the batch holds the latest value of each metric.
 */
import { EventEmitter } from 'node:events';
import { ModbusDataType } from '../modbus/datatypes';
import { applyReadFailure, applyReadResponse, buildReadPlan, MetricDefinition, newTagBatch, PlannedMetric, PlannedRead, ReadPlan } from '../modbus/read-plan';
import { TagBatch } from '../uns/tag-batch';
import { createPoller, Implementation } from './create';
import { LatencySummary, summarize } from './histogram';
import { CHANGE_RECORD_LENGTH, PollBlock, PollerBinding, PollerEvent, RawPollerStats, RealtimeRequest, TripRuleSpec } from './types';

export interface FastPollMetric extends MetricDefinition {
  /** Report a change only beyond this, in engineering units (single-register integer metrics); default 0. */
  deadband?: number;
}

export interface FastPollTrip {
  /** The watched metric (a single-register integer or bit metric). */
  metric: string;
  when: 'above' | 'below';
  /** Engineering units. */
  limit: number;
  cycles?: number;
  /** Register (FC6) or coil (FC5) written when the rule trips, raw value. */
  writeAddress: number;
  writeValue: number;
  writeFc?: 5 | 6;
}

export interface FastPollSettings {
  host: string;
  port: number;
  unitId: number;
  periodMs: number;
  timeoutMs?: number;
  metrics: FastPollMetric[];
  trips?: FastPollTrip[];
  assetPath: string;
  realtime?: RealtimeRequest;
  implementation?: Implementation | 'auto';
}

export interface TripReport {
  metric: string;
  when: 'above' | 'below';
  limit: number;
  value: number | null;
  ok: boolean;
  kind: string;
  crossingTime: number;
  sentTime: number;
  ackedTime?: number;
  /** Cycles from the first crossing cycle to the trip write (0 = same cycle). */
  cycles: number;
}

export interface FastPollStats {
  implementation: Implementation;
  fallbackReason?: string;
  lateness: LatencySummary;
  cycleTime: LatencySummary;
  cycles: number;
  overruns: number;
  missedDeadlines: number;
  overrunTimes: number[];
  droppedChanges: number;
  readErrors: number;
  trips: number;
  connected: boolean;
  realtime: RawPollerStats['realtime'];
}

export interface FastPollEvents {
  batch: [batch: TagBatch];
  /** Link and read state changes, write results. */
  event: [event: PollerEvent];
  trip: [trip: TripReport];
}

const RAW_DEADBAND_TYPES: readonly ModbusDataType[] = ['int16', 'uint16', 'bit'];

export class FastPollSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`fast poller: ${problems.join('; ')}`);
    this.name = 'FastPollSettingsError';
    Object.setPrototypeOf(this, FastPollSettingsError.prototype);
  }
}

interface Located { read: PlannedRead; readIndex: number; metric: PlannedMetric }

export class FastPollController extends EventEmitter<FastPollEvents> {
  readonly plan: ReadPlan;
  readonly implementation: Implementation;
  readonly fallbackReason: string | undefined;
  private readonly poller: PollerBinding;
  /** Per block: the registers (or bits) as last reported by the poll thread. */
  private readonly mirror: Uint16Array[];
  /** Per block: item offset → metrics over it. */
  private readonly metricsAt: Array<Map<number, PlannedMetric[]>>;
  private readonly trips: Array<FastPollTrip & { located: Located }>;

  constructor(private readonly settings: FastPollSettings) {
    super();
    if (!(settings.periodMs >= 1)) throw new FastPollSettingsError([`period must be at least 1 ms, got ${settings.periodMs}`]);
    this.plan = buildReadPlan(settings.metrics, { mergeGap: 8 });
    const deadbandOf = new Map(settings.metrics.map((m) => [m.name, m.deadband ?? 0]));
    const problems: string[] = [];
    const blocks: PollBlock[] = this.plan.requests.map((read) => {
      const deadbands = new Array<number>(read.quantity).fill(0);
      const signed = new Array<boolean>(read.quantity).fill(false);
      for (const m of read.metrics) {
        const deadband = deadbandOf.get(m.def.name) ?? 0;
        if (m.def.type === 'int16') signed[m.offset] = true;
        if (deadband === 0) continue;
        if (!RAW_DEADBAND_TYPES.includes(m.def.type)) {
          problems.push(`metric "${m.def.name}": a deadband needs a single-register integer (int16/uint16); ${m.def.type} reports every change`);
          continue;
        }
        deadbands[m.offset] = Math.abs(rawOf(m, deadband) - rawOf(m, 0));
      }
      return { fc: read.fc, address: read.address, quantity: read.quantity, deadbands, signed };
    });
    this.trips = (settings.trips ?? []).map((t) => {
      const located = this.locate(t.metric);
      if (!located) problems.push(`trip rule on "${t.metric}": no such metric`);
      else if (!RAW_DEADBAND_TYPES.includes(located.metric.def.type)) problems.push(`trip rule on "${t.metric}": needs a single-register integer or bit metric`);
      return { ...t, located: located as Located };
    });
    if (problems.length) throw new FastPollSettingsError(problems);
    const tripSpecs: TripRuleSpec[] = this.trips.map((t) => {
      const m = t.located.metric;
      const rawLimit = rawOf(m, t.limit);
      const inverted = rawOf(m, 1) < rawOf(m, 0); // a negative scale turns "above" into "below"
      const when = inverted ? (t.when === 'above' ? 'below' : 'above') : t.when;
      return {
        block: t.located.readIndex, offset: m.offset, when, limit: rawLimit, cycles: t.cycles ?? 1,
        writeFc: t.writeFc ?? 6, writeAddress: t.writeAddress, writeValue: t.writeValue,
      };
    });
    this.mirror = this.plan.requests.map((r) => new Uint16Array(r.quantity));
    this.metricsAt = this.plan.requests.map((r) => {
      const at = new Map<number, PlannedMetric[]>();
      for (const m of r.metrics) {
        for (let i = m.offset; i < m.offset + m.count; i++) at.set(i, [...(at.get(i) ?? []), m]);
      }
      return at;
    });
    const created = createPoller({
      host: settings.host, port: settings.port, unitId: settings.unitId, periodMs: settings.periodMs,
      timeoutMs: settings.timeoutMs ?? Math.max(10, Math.min(1000, settings.periodMs * 50)),
      blocks, trips: tripSpecs, realtime: settings.realtime,
    }, (changes, events) => this.onBatch(changes, events), settings.implementation ?? 'auto');
    this.poller = created.poller;
    this.implementation = created.implementation;
    this.fallbackReason = created.fallbackReason;
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  /** Queue a raw write (FC5/6/15/16) between cycles; the result comes as an 'event' of type 'write'. */
  write(id: number, fc: 5 | 6 | 15 | 16, address: number, values: number[]): boolean {
    return this.poller.write(id, fc, address, values);
  }

  stats(): FastPollStats | undefined {
    const s = this.poller.stats();
    if (!s) return undefined;
    return {
      implementation: this.implementation,
      fallbackReason: this.fallbackReason,
      lateness: summarize(s.lateness),
      cycleTime: summarize(s.cycleTime),
      cycles: s.cycles,
      overruns: s.overruns,
      missedDeadlines: s.missedDeadlines,
      overrunTimes: s.overrunTimes,
      droppedChanges: s.droppedChanges,
      readErrors: s.readErrors,
      trips: s.trips,
      connected: s.connected,
      realtime: s.realtime,
    };
  }

  private locate(name: string): Located | undefined {
    for (let readIndex = 0; readIndex < this.plan.requests.length; readIndex++) {
      const read = this.plan.requests[readIndex];
      const metric = read.metrics.find((m) => m.def.name === name);
      if (metric) return { read, readIndex, metric };
    }
    return undefined;
  }

  private onBatch(changes: Float64Array, events: PollerEvent[]): void {
    const changed = this.plan.requests.map(() => new Set<PlannedMetric>());
    const latest = new Array<number>(this.plan.requests.length).fill(0);
    for (let i = 0; i < changes.length; i += CHANGE_RECORD_LENGTH) {
      const block = changes[i + 2];
      const offset = changes[i + 3];
      this.mirror[block][offset] = changes[i + 4];
      latest[block] = Math.max(latest[block], changes[i + 1]);
      for (const m of this.metricsAt[block].get(offset) ?? []) changed[block].add(m);
    }
    const batch = newTagBatch(this.settings.assetPath, Date.now());
    let any = false;
    this.plan.requests.forEach((read, index) => {
      if (changed[index].size === 0) return;
      any = true;
      const metrics = read.metrics.filter((m) => changed[index].has(m));
      applyReadResponse({ ...read, metrics }, this.dataOf(read, index), Math.round(latest[index]), batch);
    });
    for (const e of events) {
      if (e.type === 'read-error') {
        any = true;
        applyReadFailure(this.plan.requests[e.block], e.message ?? e.kind, Math.round(e.time), batch);
      } else if (e.type === 'disconnected') {
        any = true;
        for (const read of this.plan.requests) applyReadFailure(read, `${e.kind}: ${e.message ?? ''}`.trim(), Math.round(e.time), batch);
      } else if (e.type === 'trip') {
        this.emit('trip', this.tripReport(e));
      }
      this.emit('event', e);
    }
    if (any) this.emit('batch', batch);
  }

  /** The block's items as on the wire (registers big-endian, bits packed LSB first) for the read plan's decoder. */
  private dataOf(read: PlannedRead, index: number): Buffer {
    const items = this.mirror[index];
    if (read.fc <= 2) {
      const data = Buffer.alloc((items.length + 7) >> 3);
      items.forEach((v, i) => { if (v) data[i >> 3] |= 1 << (i & 7); });
      return data;
    }
    const data = Buffer.allocUnsafe(items.length * 2);
    items.forEach((v, i) => data.writeUInt16BE(v, 2 * i));
    return data;
  }

  private tripReport(e: Extract<PollerEvent, { type: 'trip' }>): TripReport {
    const rule = this.trips[e.rule];
    const m = rule.located.metric;
    const scaled = m.scaling?.scale(e.value).value ?? e.value;
    return {
      metric: rule.metric, when: rule.when, limit: rule.limit, value: typeof scaled === 'number' ? scaled : null,
      ok: e.kind === 'ok', kind: e.kind, crossingTime: e.crossingTime, sentTime: e.sentTime, ackedTime: e.ackedTime, cycles: e.cycle - e.crossingCycle,
    };
  }
}

/** Engineering value → raw register number for a metric (its scaling inverted). */
function rawOf(m: PlannedMetric, value: number): number {
  return m.scaling ? m.scaling.unscale(value) : value;
}
