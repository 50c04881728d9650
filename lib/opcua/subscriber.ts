/**
 * Monitored items on the endpoint's shared subscription → tag batches: one batch per asset per
 * Publish response (OPC 10000-4 §5.13.5: a NotificationMessage carries every change of a publishing
 * cycle), read from the subscription's 'received_notifications' with our own clientHandle → metric
 * map, so no per-item event listener and no per-item message.
 *
 * - StatusCode → quality good/uncertain/bad with the code's name in meta.reason (Part 4 §7.39);
 *   source timestamp in meta.timestamp, server timestamp in meta.serverTimestamp; EngineeringUnits
 *   (EUInformation.displayName) in meta.unit.
 * - One item that fails (BadNodeIdUnknown, BadNodeIdInvalid, at creation or later when the node is
 *   deleted) is reported bad on its own metric; the others keep flowing (gopcua #876/#886, Telegraf
 *   #19186). Such items are re-created every `reresolveMs` so a node added back (address-space
 *   change) is monitored again: a node-opcua monitored item whose node was deleted stays dead
 *   (reference/opcua.md).
 * - Deadband: a DataChangeFilter (Part 4 §7.22.2; percent needs EURange, Part 8 §6.2) where the
 *   server accepts it for that node; where it does not, the same deadband applied here, with a
 *   'warning' (never silently no filter).
 * - Freshness: a data-change subscription is silent while values do not change, and keep-alive
 *   Publish responses prove the values are still current. When no Publish response (data or
 *   keep-alive) arrived for `staleAfter` keep-alive periods, every metric turns uncertain
 *   ("stale: …"); the next response makes them good again.
 */
import { EventEmitter } from 'node:events';
import type { ClientMonitoredItemBase, ClientSession, ClientSubscription, MonitoringParametersOptions, NotificationMessage } from 'node-opcua';
import type { MetricMeta, MetricValue, Quality, TagBatch } from '../uns/tag-batch';
import type { OpcUaConnection } from './connection';
import { opcua } from './load';
import { NodeFacts, parseNodeId, readNodeFacts } from './nodes';
import { fromVariant, qualityOf, tagTypeOf, VariantLike } from './values';

export interface MonitoredMetricDefinition {
  name: string;
  nodeId: string;
  /** Asset path of this metric when it differs from the node's topic. */
  topic?: string;
  samplingInterval?: number;
  queueSize?: number;
  discardOldest?: boolean;
  deadbandType?: 'none' | 'absolute' | 'percent';
  deadbandValue?: number;
}

export interface SubscriberOptions {
  connection: OpcUaConnection;
  topic: string;
  metrics: MonitoredMetricDefinition[];
  publishingInterval: number;
  /** Default sampling interval of metrics that set none (ms). */
  samplingInterval: number;
  /** Stale after this many keep-alive periods without a Publish response. */
  staleAfter: number;
  reresolveMs?: number;
}

/** Items per CreateMonitoredItems request: servers cap operations per call (ServerCapabilities.OperationLimits). */
const MAX_ITEMS_PER_CALL = 1000;
const NODE_GONE = new Set(['BadNodeIdUnknown', 'BadNodeIdInvalid']);
const FILTER_REFUSED = new Set(['BadFilterNotAllowed', 'BadMonitoredItemFilterUnsupported', 'BadMonitoredItemFilterInvalid', 'BadDeadbandFilterInvalid']);

/** Why a list of metric definitions cannot be used (empty: fine). */
export function monitoredMetricProblems(metrics: unknown): string[] {
  if (!Array.isArray(metrics) || metrics.length === 0) return ['no metrics defined'];
  const problems: string[] = [];
  const names = new Set<string>();
  metrics.forEach((m: Partial<MonitoredMetricDefinition>, i) => {
    const at = `metric ${i + 1}${m?.name ? ` "${m.name}"` : ''}`;
    if (!m || typeof m.name !== 'string' || m.name.trim() === '') problems.push(`${at}: name is empty`);
    else if (names.has(m.name)) problems.push(`${at}: name used twice`);
    else names.add(m.name);
    if (!m || typeof m.nodeId !== 'string' || m.nodeId.trim() === '') problems.push(`${at}: NodeId is empty`);
    if (m?.deadbandType && m.deadbandType !== 'none' && !(typeof m.deadbandValue === 'number' && m.deadbandValue >= 0)) problems.push(`${at}: deadband needs a value ≥ 0`);
    if (m?.deadbandType === 'percent' && typeof m.deadbandValue === 'number' && m.deadbandValue > 100) problems.push(`${at}: percent deadband is 0..100`);
  });
  return problems;
}

interface MetricState {
  def: MonitoredMetricDefinition;
  topic: string;
  facts?: NodeFacts;
  item?: ClientMonitoredItemBase;
  /** The deadband applied here because the server refused the filter (absolute units). */
  clientBand?: number;
  value: MetricValue;
  meta: MetricMeta;
  lastReported?: number;
  /** Status code name when the item itself is dead (its node gone): re-created by reresolve(). */
  dead?: string;
  stale: boolean;
}

export interface SubscriberStatus {
  monitored: number;
  bad: number;
  stale: boolean;
}

export class OpcUaSubscriber extends EventEmitter {
  private readonly options: SubscriberOptions;
  private readonly metrics: MetricState[];
  private readonly byHandle = new Map<number, MetricState>();
  private subscription: ClientSubscription | undefined;
  private session: ClientSession | undefined;
  private lastAlive = Date.now();
  private staleTimer: NodeJS.Timeout | undefined;
  private reresolveTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private building: Promise<void> | undefined;
  private readonly keepAlivePeriod: number;
  private readonly onSession = (session: ClientSession) => void this.build(session);
  private readonly onNotification = (message: NotificationMessage) => this.handleNotification(message);
  private readonly onAlive = () => this.alive();

  constructor(options: SubscriberOptions) {
    super();
    this.options = options;
    this.metrics = options.metrics.map((def) => ({ def, topic: def.topic || options.topic, value: null, meta: {}, stale: false }));
    this.keepAlivePeriod = options.publishingInterval * Math.max(3, Math.ceil(1000 / options.publishingInterval));
  }

  start(): void {
    const { connection } = this.options;
    connection.on('session', this.onSession);
    if (connection.session) void this.build(connection.session);
    const every = Math.max(250, Math.min(this.keepAlivePeriod, 1000));
    this.staleTimer = setInterval(() => this.checkFreshness(), every);
    this.reresolveTimer = setInterval(() => void this.reresolve(), this.options.reresolveMs ?? 10_000);
  }

  get status(): SubscriberStatus {
    return {
      monitored: this.metrics.filter((m) => m.item && !m.dead).length,
      bad: this.metrics.filter((m) => m.meta.quality === 'bad').length,
      stale: this.metrics.some((m) => m.stale),
    };
  }

  private async build(session: ClientSession): Promise<void> {
    if (this.stopped) return;
    if (this.building) await this.building.catch(() => undefined);
    const building = this.buildOn(session);
    this.building = building;
    try {
      await building;
    } catch (error) {
      this.emit('warning', `monitored items not created: ${(error as Error).message}`);
    } finally {
      if (this.building === building) this.building = undefined;
    }
  }

  private async buildOn(session: ClientSession): Promise<void> {
    this.detachSubscription();
    this.byHandle.clear();
    for (const m of this.metrics) {
      m.item = undefined;
      m.dead = undefined;
    }
    this.session = session;
    const parsed = this.metrics.map((m) => ({ m, parsed: parseNodeId(m.def.nodeId.trim()) }));
    const valid: MetricState[] = [];
    for (const { m, parsed: p } of parsed) {
      if ('problem' in p) this.markBad(m, p.problem);
      else valid.push(m);
    }
    const facts = await readNodeFacts(session, valid.map((m) => (parseNodeId(m.def.nodeId.trim()) as { nodeId: import('node-opcua').NodeId }).nodeId));
    if (this.stopped || this.session !== session) return;
    const monitorable: MetricState[] = [];
    valid.forEach((m, i) => {
      m.facts = facts[i];
      if (facts[i].problem) {
        this.markBad(m, facts[i].problem!);
        m.dead = facts[i].problem;
      } else monitorable.push(m);
    });
    const subscription = await this.options.connection.subscription(this.options.publishingInterval);
    if (this.stopped || this.session !== session) {
      await this.options.connection.releaseSubscription(this.options.publishingInterval, subscription);
      return;
    }
    this.subscription = subscription;
    subscription.on('received_notifications', this.onNotification);
    subscription.on('keepalive', this.onAlive);
    this.lastAlive = Date.now();
    await this.monitor(monitorable);
    this.flush(this.metrics.filter((m) => m.meta.quality === 'bad'));
  }

  private parameters(m: MetricState, withFilter: boolean): MonitoringParametersOptions {
    const o = opcua();
    const params: MonitoringParametersOptions = {
      samplingInterval: m.def.samplingInterval ?? this.options.samplingInterval,
      queueSize: m.def.queueSize ?? 1,
      discardOldest: m.def.discardOldest ?? true,
    };
    const type = m.def.deadbandType ?? 'none';
    if (withFilter && type !== 'none' && !(type === 'percent' && !m.facts?.euRange)) {
      params.filter = new o.DataChangeFilter({
        trigger: o.DataChangeTrigger.StatusValue,
        deadbandType: type === 'absolute' ? o.DeadbandType.Absolute : o.DeadbandType.Percent,
        deadbandValue: m.def.deadbandValue ?? 0,
      });
    }
    return params;
  }

  /** Our own deadband for `m` (absolute units), and the warning that says so. */
  private useClientDeadband(m: MetricState, why: string): void {
    const type = m.def.deadbandType ?? 'none';
    const value = m.def.deadbandValue ?? 0;
    if (type === 'absolute') m.clientBand = value;
    else if (type === 'percent' && m.facts?.euRange) m.clientBand = (value / 100) * (m.facts.euRange.high - m.facts.euRange.low);
    if (m.clientBand !== undefined) this.emit('warning', `${m.def.name}: the server did not take the ${type} deadband (${why}); it is applied by uns-edge instead`);
    else this.emit('warning', `${m.def.name}: percent deadband needs an EURange and ${m.def.nodeId} has none: every change is reported`);
  }

  /** Create monitored items, grouped by identical parameters (one CreateMonitoredItems per group and 1000 items). */
  private async monitor(metrics: MetricState[], retryWithoutFilter = true): Promise<void> {
    const subscription = this.subscription;
    if (!subscription || metrics.length === 0) return;
    const o = opcua();
    const groups = new Map<string, { params: MonitoringParametersOptions; metrics: MetricState[] }>();
    for (const m of metrics) {
      const wantsFilter = (m.def.deadbandType ?? 'none') !== 'none';
      if (wantsFilter && m.def.deadbandType === 'percent' && !m.facts?.euRange) this.useClientDeadband(m, 'no EURange');
      const params = this.parameters(m, retryWithoutFilter && m.clientBand === undefined);
      const key = JSON.stringify([params.samplingInterval, params.queueSize, params.discardOldest, m.def.deadbandType, m.def.deadbandValue, !!params.filter]);
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { params, metrics: [] }));
      group.metrics.push(m);
    }
    const filterRefused: MetricState[] = [];
    const chunks: Array<{ params: MonitoringParametersOptions; metrics: MetricState[] }> = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.metrics.length; i += MAX_ITEMS_PER_CALL) chunks.push({ params: group.params, metrics: group.metrics.slice(i, i + MAX_ITEMS_PER_CALL) });
    }
    for (const group of chunks) {
      const items = group.metrics.map((m) => ({ nodeId: m.facts!.nodeId, attributeId: o.AttributeIds.Value }));
      const created = await subscription.monitorItems(items, group.params, o.TimestampsToReturn.Both);
      created.monitoredItems.forEach((item, i) => {
        const m = group.metrics[i];
        const status = item.statusCode;
        if (status && !status.isGood()) {
          if (FILTER_REFUSED.has(status.name) && group.params.filter) {
            filterRefused.push(m);
            return;
          }
          this.markBad(m, status.name);
          if (NODE_GONE.has(status.name)) m.dead = status.name;
          return;
        }
        m.item = item;
        this.byHandle.set(item.monitoringParameters.clientHandle, m);
      });
    }
    for (const m of filterRefused) this.useClientDeadband(m, 'refused by the server');
    if (filterRefused.length) await this.monitor(filterRefused, false);
  }

  private markBad(m: MetricState, reason: string): void {
    m.value = null;
    m.meta = { timestamp: Date.now(), quality: 'bad', reason, ...(m.facts?.unit ? { unit: m.facts.unit } : {}) };
  }

  private handleNotification(message: NotificationMessage): void {
    this.alive();
    const changed: MetricState[] = [];
    for (const data of message.notificationData ?? []) {
      if (!data || data.schema.name !== 'DataChangeNotification') continue;
      for (const n of (data as unknown as { monitoredItems?: Array<{ clientHandle: number; value: { value: VariantLike; statusCode: { value: number; name: string }; sourceTimestamp: Date | null; serverTimestamp: Date | null } }> }).monitoredItems ?? []) {
        const m = this.byHandle.get(n.clientHandle);
        if (!m) continue;
        if (this.apply(m, n.value)) changed.push(m);
      }
    }
    if (changed.length) this.flush(changed);
  }

  /** Update a metric from a DataValue; false when a client-side deadband swallows it. */
  private apply(m: MetricState, dv: { value: VariantLike; statusCode: { value: number; name: string }; sourceTimestamp: Date | null; serverTimestamp: Date | null }): boolean {
    const code = dv.statusCode?.value ?? 0;
    let quality: Quality = qualityOf(code);
    const converted = fromVariant(dv.value);
    let value: MetricValue = null;
    let reason = quality === 'good' ? undefined : dv.statusCode.name;
    if (converted.ok) value = quality === 'bad' ? null : converted.value;
    else {
      quality = 'bad';
      reason = converted.reason;
    }
    if (quality === 'bad' && NODE_GONE.has(dv.statusCode?.name)) m.dead = dv.statusCode.name;
    if (m.clientBand !== undefined && quality === 'good' && m.meta.quality === 'good' && !m.stale && typeof value === 'number' && typeof m.value === 'number'
      && Math.abs(value - m.value) <= m.clientBand) return false;
    const type = converted.ok ? converted.type : undefined;
    const builtInType = m.facts?.builtIn !== undefined ? tagTypeOf(m.facts.builtIn) : undefined;
    m.value = value;
    m.stale = false;
    m.meta = {
      timestamp: (dv.sourceTimestamp ?? dv.serverTimestamp ?? new Date()).getTime(),
      quality,
      ...(m.facts?.unit ? { unit: m.facts.unit } : {}),
      ...((type ?? builtInType) ? { type: type ?? builtInType } : {}),
      ...(reason ? { reason } : {}),
      ...(dv.serverTimestamp ? { serverTimestamp: dv.serverTimestamp.getTime() } : {}),
    } as MetricMeta;
    return true;
  }

  /** One batch per asset for these metrics. */
  private flush(metrics: MetricState[]): void {
    if (this.stopped || metrics.length === 0) return;
    const batches = new Map<string, TagBatch & { meta: Record<string, MetricMeta> }>();
    const now = Date.now();
    for (const m of metrics) {
      let batch = batches.get(m.topic);
      if (!batch) batches.set(m.topic, (batch = { topic: m.topic, payload: {}, meta: {}, timestamp: now }));
      batch.payload[m.def.name] = m.value;
      batch.meta[m.def.name] = m.meta;
      m.lastReported = now;
    }
    for (const batch of batches.values()) this.emit('batch', batch);
  }

  private alive(): void {
    this.lastAlive = Date.now();
    const stale = this.metrics.filter((m) => m.stale);
    if (stale.length === 0) return;
    for (const m of stale) {
      m.stale = false;
      if (m.meta.reason?.startsWith('stale:')) {
        m.meta = { ...m.meta, quality: 'good', timestamp: Date.now() };
        delete m.meta.reason;
      }
    }
    this.flush(stale);
    this.emit('fresh');
  }

  private checkFreshness(): void {
    if (!this.subscription) return;
    const silentMs = Date.now() - this.lastAlive;
    if (silentMs <= this.options.staleAfter * this.keepAlivePeriod) return;
    const turning = this.metrics.filter((m) => !m.stale && m.meta.quality === 'good');
    if (turning.length === 0) return;
    const reason = `stale: no data or keep-alive from the server for ${(silentMs / 1000).toFixed(1)} s`;
    for (const m of turning) {
      m.stale = true;
      m.meta = { ...m.meta, quality: 'uncertain', reason };
    }
    this.flush(turning);
    this.emit('stale', reason);
  }

  /** Re-create items whose node was unknown or deleted (address-space change). */
  private async reresolve(): Promise<void> {
    const session = this.session;
    const dead = this.metrics.filter((m) => m.dead);
    if (!session || !this.subscription || dead.length === 0 || this.options.connection.session !== session || this.building) return;
    this.building = (async () => {
      for (const m of dead) {
        if (m.item) {
          this.byHandle.delete(m.item.monitoringParameters.clientHandle);
          await m.item.terminate().catch(() => undefined);
          m.item = undefined;
        }
      }
      const parsed = dead.filter((m) => !('problem' in parseNodeId(m.def.nodeId.trim())));
      const facts = await readNodeFacts(session, parsed.map((m) => (parseNodeId(m.def.nodeId.trim()) as { nodeId: import('node-opcua').NodeId }).nodeId));
      const back: MetricState[] = [];
      parsed.forEach((m, i) => {
        if (facts[i].problem) return;
        m.facts = facts[i];
        m.dead = undefined;
        back.push(m);
      });
      await this.monitor(back);
    })();
    try {
      await this.building;
    } catch (error) {
      this.emit('warning', `re-creating monitored items failed: ${(error as Error).message}`);
    } finally {
      this.building = undefined;
    }
  }

  private detachSubscription(): void {
    const subscription = this.subscription;
    if (!subscription) return;
    subscription.off('received_notifications', this.onNotification);
    subscription.off('keepalive', this.onAlive);
    this.subscription = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.staleTimer);
    clearInterval(this.reresolveTimer);
    this.options.connection.off('session', this.onSession);
    await this.building?.catch(() => undefined);
    const subscription = this.subscription;
    this.detachSubscription();
    const items = this.metrics.map((m) => m.item).filter((i): i is ClientMonitoredItemBase => i !== undefined);
    if (subscription && this.options.connection.session === this.session) {
      await Promise.all(items.map((i) => i.terminate().catch(() => undefined)));
      await this.options.connection.releaseSubscription(this.options.publishingInterval, subscription);
    }
    this.byHandle.clear();
  }
}
