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
 * - Thousands of items: CreateMonitoredItems calls are bounded by the server's
 *   MaxMonitoredItemsPerCall and kept short (CallSizer, lib/opcua/limits.ts) so that a busy server's
 *   keep-alive answer is not held back past the request timeout. A build that fails half-way (timeout,
 *   connection lost) is resumed on the same session after a delay doubling from 500 ms up to the
 *   endpoint's maxBackoff, creating only what is missing; before it, and after node-opcua repaired the
 *   connection, the subscription's items are reconciled with the server's (GetMonitoredItems, OPC
 *   10000-5 §9.1): items the server created for a call whose answer never came are deleted, items the
 *   server lost are created again. The 10,000-item benchmark delivered nothing for 120 s without this.
 */
import { EventEmitter } from 'node:events';
import type { ClientMonitoredItemBase, ClientSession, ClientSessionRawSubscriptionService, ClientSubscription, MonitoringParametersOptions, NodeId, NotificationMessage } from 'node-opcua';
import type { MetricMeta, MetricValue, Quality, TagBatch } from '../uns/tag-batch';
import type { OpcUaConnection } from './connection';
import { CallSizer, DEFAULT_ITEMS_PER_CALL, perCall, serviceLimits } from './limits';
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
  /** Default queue size of metrics that set none (DEFAULT_QUEUE_SIZE). */
  queueSize?: number;
  /** Default discard policy of metrics that set none (true: discard the oldest). */
  discardOldest?: boolean;
  /** Stale after this many keep-alive periods without a Publish response. */
  staleAfter: number;
  reresolveMs?: number;
}

const INITIAL_RETRY_MS = 500;

/** The session is under node-opcua's repair: building waits for it (an outage the endpoint has logged already). */
class SessionUnderRepair extends Error {
  constructor() {
    super('the session is being repaired');
  }
}
/**
 * Queue size of an item that sets none. With 1 the server keeps only the last value of a publishing
 * cycle, so a value that changes twice within one cycle (a loaded server or client) loses a change
 * (the 1,000-item benchmark lost 0.43 % once); 10 holds a burst of that many samples per item.
 */
export const DEFAULT_QUEUE_SIZE = 10;

/** Why a queue size cannot be used (undefined: fine). OPC 10000-4 §5.12.1.5: 0 and 1 both mean no queue. */
export function queueSizeProblem(value: unknown): string | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 100_000 ? undefined : 'queue size must be a whole number 1..100000';
}
const NODE_GONE = new Set(['BadNodeIdUnknown', 'BadNodeIdInvalid']);
const FILTER_REFUSED = new Set(['BadFilterNotAllowed', 'BadMonitoredItemFilterUnsupported', 'BadMonitoredItemFilterInvalid', 'BadDeadbandFilterInvalid']);

const subscriptionLocks = new WeakMap<ClientSubscription, Promise<unknown>>();

/**
 * Run `task` alone on `subscription` (subscribers of one publishing interval share it): a reconcile
 * must not see another subscriber's items half-created.
 */
function exclusive<T>(subscription: ClientSubscription, task: () => Promise<T>): Promise<T> {
  const run = (subscriptionLocks.get(subscription) ?? Promise.resolve()).then(task, task);
  subscriptionLocks.set(subscription, run.catch(() => undefined));
  return run;
}

/** DeleteMonitoredItems in calls of at most the server's MaxMonitoredItemsPerCall (1000 when it states none). */
async function deleteMonitoredItems(session: ClientSession, subscription: ClientSubscription, ids: number[]): Promise<void> {
  const size = perCall((await serviceLimits(session)).monitoredItemsPerCall, DEFAULT_ITEMS_PER_CALL);
  for (let i = 0; i < ids.length; i += size) {
    await (session as ClientSession & ClientSessionRawSubscriptionService).deleteMonitoredItems({ subscriptionId: subscription.subscriptionId, monitoredItemIds: ids.slice(i, i + size) });
  }
}

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
    if (m?.queueSize !== undefined && queueSizeProblem(m.queueSize)) problems.push(`${at}: ${queueSizeProblem(m.queueSize)}`);
    if (m?.discardOldest !== undefined && typeof m.discardOldest !== 'boolean') problems.push(`${at}: discardOldest must be true or false`);
  });
  return problems;
}

/** The parts of a DataValue (Part 4 §7.11) a notification carries that we read. */
interface DataValueLike {
  value: VariantLike;
  statusCode: { value: number; name: string };
  sourceTimestamp: Date | null;
  serverTimestamp: Date | null;
}

interface MetricState {
  def: MonitoredMetricDefinition;
  topic: string;
  /** Parsed NodeId (undefined: it does not parse, the metric is bad for good). */
  nodeId?: NodeId;
  facts?: NodeFacts;
  item?: ClientMonitoredItemBase;
  /** The deadband applied here because the server refused the filter (absolute units). */
  clientBand?: number;
  value: MetricValue;
  meta: MetricMeta;
  lastReported?: number;
  /** Status code name when the item itself is dead (its node gone): re-created by reresolve(). */
  dead?: string;
  /** Status code name when the server refused the item for another reason: not asked again on this session. */
  refused?: string;
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
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed builds in a row on this session (retry delay). */
  private failures = 0;
  /** A warning was logged for the current streak of build failures. */
  private warnedFailure = false;
  /** Compare the subscription's items with the server's before creating more (after a failed call or a repair). */
  private reconcileFirst = false;
  private sizer: CallSizer | undefined;
  /** CreateMonitoredItems calls under way on our subscription. */
  private creating = 0;
  /**
   * Values for clientHandles not known yet, kept while a CreateMonitoredItems is under way: the first
   * Publish response can be read in the same socket chunk as the create response, before our await
   * resumes, and a static value is sent once only (measured: 100 of 2,000 items never delivered).
   */
  private readonly early = new Map<number, DataValueLike[]>();
  private readonly keepAlivePeriod: number;
  private readonly onSession = (session: ClientSession) => void this.build(session);
  private readonly onNotification = (message: NotificationMessage) => this.handleNotification(message);
  private readonly onAlive = () => this.alive();
  /** node-opcua repaired the connection on the same session (its re-creation of items may have stopped half-way). */
  private readonly onRestored = () => {
    const session = this.session;
    if (!session || this.options.connection.session !== session) return;
    this.reconcileFirst = true;
    // The channel can be back before node-opcua has finished repairing the session and its subscriptions.
    if (session.isReconnecting) session.once('session_restored', () => void this.build(session));
    else void this.build(session);
  };

  constructor(options: SubscriberOptions) {
    super();
    this.options = options;
    this.metrics = options.metrics.map((def) => ({ def, topic: def.topic || options.topic, value: null, meta: {}, stale: false }));
    this.keepAlivePeriod = options.publishingInterval * Math.max(3, Math.ceil(1000 / options.publishingInterval));
  }

  start(): void {
    const { connection } = this.options;
    connection.on('session', this.onSession);
    connection.on('restored', this.onRestored);
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

  /** Build (or resume building) the items on `session`; a failure is retried with a bounded backoff. */
  private async build(session: ClientSession): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    while (this.building) await this.building.catch(() => undefined);
    if (this.stopped || this.options.connection.session !== session) return;
    const building = this.buildOn(session);
    this.building = building;
    try {
      await building;
      this.failures = 0;
      this.warnedFailure = false;
    } catch (error) {
      if (this.stopped || this.session !== session) return;
      const { maxBackoffMs } = this.options.connection.settings;
      const delay = Math.min(maxBackoffMs, INITIAL_RETRY_MS * 2 ** Math.min(this.failures++, 16));
      // One warning per streak of failures, not one per attempt; none for waiting on a repair (one log line per outage).
      if (!this.warnedFailure && !(error instanceof SessionUnderRepair)) {
        this.warnedFailure = true;
        this.emit('warning', `monitored items not all created (${this.status.monitored} of ${this.metrics.length}): ${(error as Error).message}; retrying (at most every ${maxBackoffMs / 1000} s)`);
      }
      this.scheduleBuild(session, delay);
    } finally {
      if (this.building === building) this.building = undefined;
    }
  }

  /** Resume building on `session` after `delay` ms, once it is usable again (a new session builds on its own). */
  private scheduleBuild(session: ClientSession, delay: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const current = this.options.connection.session;
      if (current === session) void this.build(session);
      else if (!current && !this.stopped) this.scheduleBuild(session, delay);
    }, delay);
  }

  /**
   * On a new session: everything from scratch. On the same session (a retry, or after a repair):
   * only what is missing — node facts not read yet, items not created yet.
   */
  private async buildOn(session: ClientSession): Promise<void> {
    if (this.session !== session) {
      this.detachSubscription();
      this.byHandle.clear();
      this.session = session;
      this.reconcileFirst = false;
      this.sizer = undefined;
      this.failures = 0;
      this.warnedFailure = false;
      for (const m of this.metrics) {
        m.item = undefined;
        m.dead = undefined;
        m.refused = undefined;
        m.facts = undefined;
        const parsed = parseNodeId(m.def.nodeId.trim());
        if ('problem' in parsed) this.markBad(m, parsed.problem);
        else m.nodeId = parsed.nodeId;
      }
    }
    const unread = this.metrics.filter((m) => m.nodeId && !m.facts && !m.dead);
    if (unread.length) {
      const facts = await readNodeFacts(session, unread.map((m) => m.nodeId!));
      if (this.stopped || this.session !== session) return;
      unread.forEach((m, i) => {
        if (facts[i].problem) {
          this.markBad(m, facts[i].problem!);
          m.dead = facts[i].problem;
        } else m.facts = facts[i];
      });
    }
    if (!this.subscription) {
      const subscription = await this.options.connection.subscription(this.options.publishingInterval);
      if (this.stopped || this.session !== session) {
        await this.options.connection.releaseSubscription(this.options.publishingInterval, subscription);
        return;
      }
      this.subscription = subscription;
      subscription.on('received_notifications', this.onNotification);
      subscription.on('keepalive', this.onAlive);
      this.lastAlive = Date.now();
    }
    if (this.reconcileFirst) {
      // node-opcua may still be re-creating the subscription (its 'restored' can come before the session's):
      // compare only with what it finished, later (build() retries).
      if (session.isReconnecting) throw new SessionUnderRepair();
      await this.reconcile(session, this.subscription);
      this.reconcileFirst = false;
    }
    await this.monitor(this.metrics.filter((m) => m.facts && !m.item && !m.dead && !m.refused));
    this.flush(this.metrics.filter((m) => m.meta.quality === 'bad'));
  }

  /**
   * Make the subscription's items on the server and ours agree: server items that no client item
   * holds (created for a CreateMonitoredItems whose answer never came) are deleted, and our metrics
   * whose item the server does not have (a re-creation that stopped half-way) lose it, to be created
   * again. Client-side leftovers of failed calls are dropped so that node-opcua never re-creates them.
   */
  private async reconcile(session: ClientSession, subscription: ClientSubscription): Promise<void> {
    await exclusive(subscription, async () => {
      const onServer = await subscription.getMonitoredItems();
      const held = new Set<number>();
      const internal = subscription as unknown as { _removeMonitoredItem(clientHandle: number): void };
      for (const [handle, item] of Object.entries(subscription.monitoredItems)) {
        if (item.monitoredItemId !== undefined && item.statusCode?.isGood()) held.add(item.monitoredItemId);
        else internal._removeMonitoredItem(Number(handle));
      }
      const orphans = Array.from(onServer.serverHandles).filter((id) => !held.has(id));
      await deleteMonitoredItems(session, subscription, orphans);
      const handles = new Set(Array.from(onServer.clientHandles));
      for (const m of this.metrics) {
        const handle = m.item?.monitoringParameters.clientHandle;
        if (handle === undefined || handles.has(handle)) continue;
        this.byHandle.delete(handle);
        internal._removeMonitoredItem(handle);
        m.item = undefined;
      }
      if (orphans.length) this.emit('warning', `deleted ${orphans.length} monitored items the server had created for a request whose answer never came`);
    });
  }

  private parameters(m: MetricState, withFilter: boolean): MonitoringParametersOptions {
    const o = opcua();
    const params: MonitoringParametersOptions = {
      samplingInterval: m.def.samplingInterval ?? this.options.samplingInterval,
      queueSize: m.def.queueSize ?? this.options.queueSize ?? DEFAULT_QUEUE_SIZE,
      discardOldest: m.def.discardOldest ?? this.options.discardOldest ?? true,
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

  /**
   * Create monitored items, grouped by identical parameters, in calls of at most the server's
   * MaxMonitoredItemsPerCall (1000 when it states none), sized by time (CallSizer).
   */
  private async monitor(metrics: MetricState[], retryWithoutFilter = true): Promise<void> {
    const subscription = this.subscription;
    const session = this.session;
    if (!subscription || !session || metrics.length === 0) return;
    const o = opcua();
    if (!this.sizer) {
      const limits = await serviceLimits(session);
      // A call should end well within the request timeout: the keep-alive read waits behind it.
      this.sizer = new CallSizer(perCall(limits.monitoredItemsPerCall, DEFAULT_ITEMS_PER_CALL), this.options.connection.settings.requestTimeoutMs / 4);
    }
    const sizer = this.sizer;
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
    for (const group of groups.values()) {
      for (let next = 0; next < group.metrics.length;) {
        if (this.stopped || this.session !== session || this.subscription !== subscription) return;
        const chunk = group.metrics.slice(next, next + sizer.size);
        const items = chunk.map((m) => ({ nodeId: m.facts!.nodeId, attributeId: o.AttributeIds.Value }));
        const started = Date.now();
        let created;
        this.creating++;
        try {
          created = await exclusive(subscription, () => subscription.monitorItems(items, group.params, o.TimestampsToReturn.Both));
        } catch (error) {
          // The server may have created them all the same: compare with its list before trying again.
          this.reconcileFirst = true;
          throw error;
        } finally {
          this.creating--;
        }
        sizer.record(chunk.length, Date.now() - started);
        next += chunk.length;
        created.monitoredItems.forEach((item, i) => {
          const m = chunk[i];
          const status = item.statusCode;
          if (status && !status.isGood()) {
            if (FILTER_REFUSED.has(status.name) && group.params.filter) {
              filterRefused.push(m);
              return;
            }
            this.markBad(m, status.name);
            if (NODE_GONE.has(status.name)) m.dead = status.name;
            else m.refused = status.name;
            return;
          }
          m.item = item;
          this.byHandle.set(item.monitoringParameters.clientHandle, m);
        });
        // Values that came before we knew the handles; the rest are other subscribers' (shared subscription).
        const early: Array<[MetricState, DataValueLike]> = [];
        for (const [handle, list] of this.early) {
          const m = this.byHandle.get(handle);
          if (m) for (const value of list) early.push([m, value]);
        }
        if (!this.creating) this.early.clear();
        this.deliver(early);
      }
    }
    for (const m of filterRefused) this.useClientDeadband(m, 'refused by the server');
    if (filterRefused.length) await this.monitor(filterRefused, false);
  }

  private markBad(m: MetricState, reason: string): void {
    m.value = null;
    m.meta = { timestamp: Date.now(), quality: 'bad', reason, ...(m.facts?.unit ? { unit: m.facts.unit } : {}) };
  }

  /**
   * One batch per asset per Publish response — except that a response can carry several queued values
   * of one item (queue size > 1, OPC 10000-4 §5.12.1.5, each item's in the order sampled, node-opcua
   * puts them one after the other). A batch holds one value per metric, so the values go out in
   * rounds: the first batch has every metric's first value of the response, the next one the second
   * values of the metrics that have one, and so on. No value is lost, each metric's stay in order, and a
   * response with one value per item is still one batch.
   */
  private handleNotification(message: NotificationMessage): void {
    this.alive();
    const values: Array<[MetricState, DataValueLike]> = [];
    for (const data of message.notificationData ?? []) {
      if (!data || data.schema.name !== 'DataChangeNotification') continue;
      for (const n of (data as unknown as { monitoredItems?: Array<{ clientHandle: number; value: DataValueLike }> }).monitoredItems ?? []) {
        const m = this.byHandle.get(n.clientHandle);
        if (m) values.push([m, n.value]);
        else if (this.creating) {
          const list = this.early.get(n.clientHandle);
          if (list) list.push(n.value);
          else this.early.set(n.clientHandle, [n.value]);
        }
      }
    }
    this.deliver(values);
  }

  /** Apply values (each metric's in order) and send them in rounds: batch k holds every metric's k-th value. */
  private deliver(values: Array<[MetricState, DataValueLike]>): void {
    const rounds: Array<Array<[MetricState, DataValueLike]>> = [];
    const seen = new Map<MetricState, number>();
    for (const [m, value] of values) {
      const round = seen.get(m) ?? 0;
      seen.set(m, round + 1);
      (rounds[round] ??= []).push([m, value]);
    }
    for (const round of rounds) {
      const changed: MetricState[] = [];
      for (const [m, value] of round) if (this.apply(m, value)) changed.push(m);
      if (changed.length) this.flush(changed);
    }
  }

  /** Update a metric from a DataValue; false when a client-side deadband swallows it. */
  private apply(m: MetricState, dv: DataValueLike): boolean {
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
    if (!session || !this.subscription || dead.length === 0 || this.options.connection.session !== session || this.building || this.retryTimer) return;
    this.building = (async () => {
      const gone = dead.filter((m) => m.item);
      for (const m of gone) this.byHandle.delete(m.item!.monitoringParameters.clientHandle);
      await this.deleteItems(session, this.subscription!, gone.map((m) => m.item!)).catch(() => undefined);
      for (const m of gone) m.item = undefined;
      const parsed = dead.filter((m) => m.nodeId);
      const facts = await readNodeFacts(session, parsed.map((m) => m.nodeId!));
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

  /** Delete items in bounded DeleteMonitoredItems calls (one call per item for 10,000 items timed out) and forget them. */
  private async deleteItems(session: ClientSession, subscription: ClientSubscription, items: ClientMonitoredItemBase[]): Promise<void> {
    const internal = subscription as unknown as { _removeMonitoredItem(clientHandle: number): void };
    for (const item of items) internal._removeMonitoredItem(item.monitoringParameters.clientHandle);
    await exclusive(subscription, () => deleteMonitoredItems(session, subscription, items.map((i) => i.monitoredItemId).filter((id): id is number => id !== undefined)));
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
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.options.connection.off('session', this.onSession);
    this.options.connection.off('restored', this.onRestored);
    await this.building?.catch(() => undefined);
    const subscription = this.subscription;
    this.detachSubscription();
    const items = this.metrics.map((m) => m.item).filter((i): i is ClientMonitoredItemBase => i !== undefined);
    if (subscription && this.session && this.options.connection.session === this.session) {
      await this.deleteItems(this.session, subscription, items).catch(() => undefined);
      await this.options.connection.releaseSubscription(this.options.publishingInterval, subscription);
    }
    this.byHandle.clear();
  }
}
