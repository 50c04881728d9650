/**
 * Sparkplug B messages in the UNS explorer (docs/explorer.md § "Sparkplug"): each NBIRTH/NDATA/
 * DBIRTH/DDATA payload is decoded (lib/sparkplug/payload.ts) and its metrics become levels under
 * the message's topic (a metric name's `/` makes sub-levels, as Sparkplug folders do). DATA
 * messages name their metrics by alias only (Sparkplug 3.0 §6.4.4); the name and datatype come
 * from the BIRTH: the deployed uns-sparkplug-host's birth cache when one is given (it has seen the
 * births, which are not retained), else the births this view has seen itself, else the metric is
 * shown as `alias <n>` with its wire value.
 *
 * Read-only: it never asks for a rebirth. Bounded: payloads over `maxPayloadBytes` or with more
 * than `maxMetricsPerMessage` metrics (counted before decoding) are shown as a summary only; at most
 * `maxBirthMetrics` alias entries are kept over all nodes and devices (a BIRTH that does not fit is
 * not kept: its metrics are still shown, the DATA that follows shows aliases).
 */
import { countMetrics, metricValue, PayloadDecoder, type DecodedMetric, type DecodedPayload } from '../sparkplug/payload';
import { dataTypeName } from '../sparkplug/datatypes';
import type { ParsedTopic } from '../sparkplug/topics';
import type { Quality } from '../uns/tag-batch';
import { valueText, type TopicValue } from './values';

export interface BirthMetric {
  name: string;
  datatype: number;
}

/** A birth cache to ask first (the deployed host's): the BIRTH metric of an alias, if known. */
export type BirthLookup = (groupId: string, edgeNodeId: string, deviceId: string | undefined, alias: string) => BirthMetric | undefined;

export interface SparkplugLimits {
  maxPayloadBytes: number;
  maxMetricsPerMessage: number;
  maxBirthMetrics: number;
}

export const DEFAULT_SPARKPLUG_LIMITS: Readonly<SparkplugLimits> = {
  maxPayloadBytes: 1024 * 1024,
  maxMetricsPerMessage: 5000,
  maxBirthMetrics: 100000,
};

export interface SparkplugMessageView {
  /** What the message's own topic shows. */
  summary: TopicValue;
  /** Its metrics: name levels and value. */
  metrics: Array<{ levels: string[]; value: TopicValue }>;
}

function qualityOf(metric: DecodedMetric): Quality | undefined {
  const properties = metric.properties;
  const i = properties ? properties.keys.indexOf('Quality') : -1;
  if (i < 0) return undefined;
  // The Quality property's codes by convention (OPC DA): 192 good, 0 bad, others uncertain.
  const code = Number(properties!.values[i]?.value);
  return code === 192 ? 'good' : code === 0 ? 'bad' : 'uncertain';
}

function unitOf(metric: DecodedMetric): string | undefined {
  const properties = metric.properties;
  const i = properties ? properties.keys.indexOf('engUnit') : -1;
  const value = i >= 0 ? properties!.values[i]?.value : undefined;
  return typeof value === 'string' ? value : undefined;
}

export class SparkplugView {
  readonly limits: SparkplugLimits;
  /** Alias → BIRTH metric, per `group/edge` (node) and `group/edge/device`. */
  private readonly births = new Map<string, Map<string, BirthMetric>>();
  private birthMetrics = 0;

  constructor(limits: Partial<SparkplugLimits> = {}, private readonly hostLookup: () => BirthLookup | undefined = () => undefined) {
    this.limits = { ...DEFAULT_SPARKPLUG_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) };
  }

  /** Alias entries kept from births seen. */
  get keptBirthMetrics(): number {
    return this.birthMetrics;
  }

  /** The view of one message on a Sparkplug topic (not STATE: that is JSON, shown as such). */
  view(topic: Exclude<ParsedTopic, { kind: 'state' }>, payload: Buffer): SparkplugMessageView {
    const deviceId = topic.kind === 'device' ? topic.deviceId : undefined;
    const key = deviceId === undefined ? `${topic.groupId}/${topic.edgeNodeId}` : `${topic.groupId}/${topic.edgeNodeId}/${deviceId}`;
    if (topic.type === 'NDEATH' || topic.type === 'DDEATH') this.forget(key, topic.type === 'NDEATH');
    if (payload.length > this.limits.maxPayloadBytes) return { summary: { text: `${topic.type}, ${payload.length} bytes (over ${this.limits.maxPayloadBytes}: not decoded)`, format: 'sparkplug' }, metrics: [] };
    let decoded: DecodedPayload;
    try {
      const count = countMetrics(payload, this.limits.maxMetricsPerMessage);
      if (count > this.limits.maxMetricsPerMessage) return { summary: { text: `${topic.type}, more than ${this.limits.maxMetricsPerMessage} metrics: not decoded`, format: 'sparkplug' }, metrics: [] };
      const decoder = new PayloadDecoder(payload);
      decoder.next(Number.POSITIVE_INFINITY);
      decoded = decoder.payload;
    } catch (error) {
      return { summary: { text: `${topic.type}, undecodable: ${(error as Error).message}`, format: 'sparkplug', quality: 'bad' }, metrics: [] };
    }
    const birth = topic.type === 'NBIRTH' || topic.type === 'DBIRTH';
    if (birth) this.keepBirth(key, decoded.metrics, topic.type === 'NBIRTH');
    const seq = decoded.seq !== undefined ? `, seq ${String(decoded.seq)}` : '';
    const timestamp = decoded.timestamp !== undefined ? Number(decoded.timestamp) : undefined;
    const metrics = decoded.metrics.map((metric) => this.metricView(topic.groupId, topic.edgeNodeId, deviceId, key, metric, timestamp));
    return {
      summary: { text: `${topic.type}, ${decoded.metrics.length} metric(s)${seq}`, format: 'sparkplug', ...(timestamp !== undefined ? { timestamp } : {}) },
      metrics,
    };
  }

  private metricView(groupId: string, edgeNodeId: string, deviceId: string | undefined, key: string, metric: DecodedMetric, payloadTime: number | undefined): { levels: string[]; value: TopicValue } {
    const alias = metric.alias !== undefined ? String(metric.alias) : undefined;
    const known = alias !== undefined && metric.name === undefined
      ? this.hostLookup()?.(groupId, edgeNodeId, deviceId, alias) ?? this.births.get(key)?.get(alias)
      : undefined;
    const name = metric.name ?? known?.name;
    const datatype = metric.datatype ?? known?.datatype;
    let text: string;
    let quality = qualityOf(metric);
    try {
      text = datatype === undefined && !metric.isNull ? `${valueText(metric.value)} (no BIRTH seen: datatype unknown)` : valueText(metricValue(metric, datatype));
    } catch (error) {
      text = `undecodable: ${(error as Error).message}`;
      quality = 'bad';
    }
    const timestamp = metric.timestamp !== undefined ? Number(metric.timestamp) : payloadTime;
    const unit = unitOf(metric);
    return {
      levels: name !== undefined ? name.split('/') : [`alias ${alias ?? '?'}`],
      value: {
        text,
        format: 'sparkplug-metric',
        ...(quality ? { quality } : {}),
        ...(unit !== undefined ? { unit } : {}),
        ...(timestamp !== undefined ? { timestamp } : {}),
        ...(datatype !== undefined ? { type: dataTypeName(datatype) } : {}),
      },
    };
  }

  private keepBirth(key: string, metrics: DecodedMetric[], nodeBirth: boolean): void {
    this.forget(key, nodeBirth);
    const aliases = new Map<string, BirthMetric>();
    for (const metric of metrics) {
      if (metric.alias !== undefined && metric.name !== undefined && metric.datatype !== undefined) aliases.set(String(metric.alias), { name: metric.name, datatype: metric.datatype });
    }
    if (aliases.size === 0 || this.birthMetrics + aliases.size > this.limits.maxBirthMetrics) return;
    this.births.set(key, aliases);
    this.birthMetrics += aliases.size;
  }

  /** Drop the aliases of a node or device; an NBIRTH/NDEATH ends the node's devices too (§5.9: a new session). */
  private forget(key: string, withDevices: boolean): void {
    for (const [known, aliases] of this.births) {
      if (known === key || (withDevices && known.startsWith(`${key}/`))) {
        this.birthMetrics -= aliases.size;
        this.births.delete(known);
      }
    }
  }
}
