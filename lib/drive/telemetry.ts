/**
 * Drive telemetry as a tag batch: every parameter of the profile, read through the read plan of
 * lib/modbus (the one register decoder and scaling of uns-edge), plus what the profile lets us
 * derive from them — the uniform status signals (running, fault, warning, ready, reverse,
 * atSetpoint, remote), the state text, and the active fault code with its text.
 *
 * Derived metrics share the quality and timestamp of the register they come from: a status word
 * that could not be read gives null signals with quality bad and the read's reason, never false.
 * A signal the profile has no bit for is left out of the batch (unknown, not false).
 */
import { MetricDefinition } from '../modbus/read-plan';
import { MetricMeta, MetricValue, TagBatch } from '../uns/tag-batch';
import { DriveProfile, STATUS_SIGNALS, StatusSignal } from './profile';
import { decodeStatusWord, describeFault } from './status';

/** Names of the derived metrics a drive batch may carry besides the profile's parameters. */
export const DERIVED_METRICS = [...STATUS_SIGNALS, 'state', 'faultCode', 'faultText'] as const;
export type DerivedMetric = (typeof DERIVED_METRICS)[number];

/** A tag batch with meta, as the read plan fills it. */
export type DriveBatch = TagBatch & { meta: Record<string, MetricMeta> };

/** The read plan's metric definitions for every parameter of the profile. */
export function profileMetricDefinitions(profile: DriveProfile): MetricDefinition[] {
  return profile.parameters.map((p) => {
    const def: MetricDefinition = { name: p.name, table: p.table, address: p.address, type: p.type, wordOrder: p.wordOrder };
    if (p.type === 'string') def.length = p.length;
    if (p.scale !== 1) def.scale = p.scale;
    if (p.offset !== 0) def.offset = p.offset;
    if (p.unit) def.unit = p.unit;
    return def;
  });
}

/** profileSignals per profile (every poll of a drive asks). */
const signalsOfProfile = new WeakMap<DriveProfile, readonly StatusSignal[]>();

/** The status signals the profile has a bit for, in the order of STATUS_SIGNALS. */
export function profileSignals(profile: DriveProfile): readonly StatusSignal[] {
  let signals = signalsOfProfile.get(profile);
  if (signals === undefined) {
    const present = new Set(profile.statusWord.bits.map((b) => b.signal).filter((s) => s !== undefined));
    signals = Object.freeze(STATUS_SIGNALS.filter((s) => present.has(s)));
    signalsOfProfile.set(profile, signals);
  }
  return signals;
}

/** The derived metrics addDerivedMetrics sets in every batch of this profile, in the order it sets them. */
export function derivedMetricNames(profile: DriveProfile): string[] {
  return [...profileSignals(profile), 'state', ...(profile.faults.parameter === undefined ? [] : ['faultCode', 'faultText'])];
}

/**
 * Derived metric names a parameter of this profile already uses, which would be overwritten.
 * The fault register may itself be called faultCode (it then is the fault code).
 */
export function derivedNameClashes(profile: DriveProfile): string[] {
  const names = new Set(profile.parameters.map((p) => p.name));
  return DERIVED_METRICS.filter((m) => names.has(m) && !(m === 'faultCode' && profile.faults.parameter === 'faultCode'));
}

function derivedMeta(source: MetricMeta | undefined, type: MetricMeta['type'], fallbackTimestamp: number | undefined): MetricMeta {
  const meta: MetricMeta = { type, quality: source?.quality ?? 'bad' };
  const timestamp = source?.timestamp ?? fallbackTimestamp;
  if (timestamp !== undefined) meta.timestamp = timestamp;
  if (source?.reason) meta.reason = source.reason;
  return meta;
}

function wordOf(value: MetricValue | undefined): number | undefined {
  const n = typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff ? n : undefined;
}

/** What the controller needs from one batch for the status dot. */
export interface DriveSnapshot {
  /** null when the status word was not read. */
  signals: Record<StatusSignal, boolean | null> | null;
  state: string | null;
  fault: { code: number; name: string; text: string } | null;
}

/**
 * Add the derived metrics to a batch that holds the profile's parameters; returns what they say.
 * The batch is changed in place (it was made for this drive).
 */
export function addDerivedMetrics(profile: DriveProfile, batch: DriveBatch): DriveSnapshot {
  const set = (name: DerivedMetric, value: MetricValue, meta: MetricMeta): void => {
    batch.payload[name] = value;
    batch.meta[name] = meta;
  };
  const statusName = profile.statusWord.parameter;
  const statusMeta = batch.meta[statusName];
  const word = statusMeta?.quality === 'bad' ? undefined : wordOf(batch.payload[statusName]);
  const snapshot: DriveSnapshot = { signals: null, state: null, fault: null };
  const signalMeta = derivedMeta(statusMeta, 'Boolean', batch.timestamp);
  if (word === undefined) {
    if (signalMeta.quality !== 'bad') Object.assign(signalMeta, { quality: 'bad', reason: `${statusName} is not a 16-bit word: ${String(batch.payload[statusName])}` });
    for (const signal of profileSignals(profile)) set(signal, null, signalMeta);
    set('state', null, { ...signalMeta, type: 'String' });
  } else {
    const decoded = decodeStatusWord(profile, word);
    snapshot.signals = decoded.signals;
    snapshot.state = decoded.state;
    for (const signal of profileSignals(profile)) set(signal, decoded.signals[signal], signalMeta);
    set('state', decoded.state, { ...signalMeta, type: 'String' });
  }

  const faultName = profile.faults.parameter;
  if (faultName === undefined) return snapshot;
  const faultMeta = batch.meta[faultName];
  const code = faultMeta?.quality === 'bad' ? undefined : wordOf(batch.payload[faultName]);
  const codeMeta = derivedMeta(faultMeta, faultMeta?.type ?? 'UInt16', batch.timestamp);
  if (code === undefined) {
    if (codeMeta.quality !== 'bad') Object.assign(codeMeta, { quality: 'bad', reason: `${faultName} is not a fault code: ${String(batch.payload[faultName])}` });
    set('faultCode', null, codeMeta);
    set('faultText', null, { ...codeMeta, type: 'String' });
    return snapshot;
  }
  const fault = describeFault(profile, code);
  set('faultCode', code, codeMeta);
  // Code 0 is "no fault" unless the profile's table names it otherwise (it then gives the text).
  set('faultText', fault.known || code !== 0 ? fault.text : '', { ...codeMeta, type: 'String' });
  if (code !== 0) snapshot.fault = { code, name: fault.name, text: fault.text };
  return snapshot;
}
