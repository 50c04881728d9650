/**
 * Modbus client over a ModbusTransport (TCP or RTU): connection state machine, transaction
 * matching, bounded queue, per-request timeout, per-unit circuit breaker.
 *
 * Connection state machine:
 *
 *   idle ──start()──▶ connecting ──open──▶ connected
 *                        │  ▲                 │ link lost / silent link
 *                 fail/  │  │ backoff timer   ▼
 *                 timeout└─▶ backoff ◀────────┘          any ──close()──▶ closed
 *
 * A link that worked (a frame or bytes that broke the framing arrived on it, or it stayed up for
 * reconnectMinMs) and is lost is reconnected at once: a device that dropped one connection usually
 * takes the next, and requests wait in the queue meanwhile instead of failing. Only repeated failures back off: delays grow
 * exponentially from reconnectMinMs to reconnectMaxMs (default 5 s, so a device that is back is
 * found within seconds), with "equal jitter" (half fixed, half random) so that many gateways do not
 * reconnect in lock-step after a switch reboot. A device that accepts and drops at once never
 * proves the link: after QUICK_RECONNECTS immediate retries it gets the back-off, not a busy loop. One 'outage' event is emitted per
 * outage (on the first failure after being connected, or on the first failed attempt) and one
 * 'restored' when a connection is up again: the node logs those (damped, lib/modbus/outage-log.ts),
 * never one line per request.
 *
 * Requests:
 * - queue bounded by queueLimit; overflow policy: **reject the newest** with ModbusClientError
 *   'queue-full' (what is queued keeps its place, so a poll cycle in progress completes);
 * - while in backoff, requests are rejected at once ('not-connected'), so pollers mark their data
 *   bad instead of piling up; while connecting they wait in the queue (also across an immediate
 *   reconnect: requests not yet sent are kept for the new connection);
 * - each request times out `timeoutMs` after it is sent ('timeout');
 * - a response is accepted only if transaction id, unit id and function code match an
 *   outstanding request (Implementation Guide v1.0b §3.1.3, App Protocol §6); anything else is
 *   discarded and counted (stats.discarded*), never taken as the answer; a malformed response
 *   with the right ids rejects the request ('malformed-response');
 * - per unit: after unitFailureThreshold consecutive timeouts the unit is suspended for
 *   unitBackoffMs (doubling up to unitBackoffMaxMs); requests to it are rejected at once
 *   ('unit-suspended') so one dead unit behind a gateway does not stall the others. The breaker
 *   counts liveness, not tidy answers: any frame that carries the unit id, or answers a
 *   transaction sent to the unit (late, with a wrong unit id, an exception, malformed), proves it
 *   alive and resets the count / closes the breaker. It trips only while another unit shares the
 *   link (was asked within the last SHARED_UNIT_WINDOW_MS): suspending the only unit of a link
 *   protects nobody and would only turn polls into failures; a dead single-unit link is handled by
 *   the half-open check below and the reconnect back-off. unitFailureThreshold 0 turns it off.
 *   After the back-off one request probes the unit; an answer (even an exception) closes the breaker.
 * - a link on which silentLinkTimeouts requests in a row time out while nothing at all is
 *   received is considered half-open and is closed by the client and reconnected (a pulled
 *   cable, a wedged gateway); the outage reason says so, not "closed by the device".
 */
import { EventEmitter } from 'node:events';
import { ModbusException } from './data-model';
import { MbapFrameError } from './mbap';
import { decodeResponse, describeException, ModbusPduError, ModbusRequest, ModbusResponse } from './pdu';
import { RtuTransport, RtuTransportOptions } from './rtu';
import { ModbusTransport, TcpTransport, TcpTransportOptions } from './transport';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export type ModbusClientErrorCode =
  | 'timeout'
  | 'queue-full'
  | 'not-connected'
  | 'connection-lost'
  | 'unit-suspended'
  | 'malformed-response'
  | 'invalid-request'
  | 'closed';

export class ModbusClientError extends Error {
  constructor(readonly code: ModbusClientErrorCode, message: string) {
    super(message);
    this.name = 'ModbusClientError';
    Object.setPrototypeOf(this, ModbusClientError.prototype);
  }
}

export interface ModbusClientOptions {
  /** Per-request response timeout, ms; default 1000. */
  timeoutMs?: number;
  /** Connect timeout, ms; default 3000. */
  connectTimeoutMs?: number;
  /** Wait after the link is up before the first request (slow gateways), ms; default 0. */
  pauseAfterConnectMs?: number;
  /** Pause between the end of one transaction and the next request, ms; default 0. */
  gapMs?: number;
  /** Largest register count per read request (≤ 125); some devices need less. Default 125. */
  maxRegistersPerRequest?: number;
  /** Queued (not yet sent) requests; default 1000. */
  queueLimit?: number;
  /** First reconnect delay, ms; default 1000. */
  reconnectMinMs?: number;
  /** Largest reconnect delay, ms; default 5000. */
  reconnectMaxMs?: number;
  /** Consecutive timeouts that suspend a unit while other units share the link; default 3, 0 = never. */
  unitFailureThreshold?: number;
  /** First suspension of a unit, ms; default 5000 (doubles up to unitBackoffMaxMs, default 60 000). */
  unitBackoffMs?: number;
  unitBackoffMaxMs?: number;
  /** Consecutive timeouts with nothing received that mark the link half-open; default 5. */
  silentLinkTimeouts?: number;
}

export interface ModbusClientStats {
  requests: number;
  responses: number;
  exceptions: number;
  timeouts: number;
  rejectedQueueFull: number;
  rejectedSuspended: number;
  malformed: number;
  /** Responses discarded because their transaction id matches nothing outstanding (late or unsolicited). */
  discardedTransaction: number;
  /** Responses with a matching transaction id but another unit id. */
  discardedUnit: number;
  /** Responses with a matching transaction id but another function code. */
  discardedFunction: number;
  connects: number;
  outages: number;
}

export interface OutageEvent {
  /** Why the link is down, e.g. "connect ECONNREFUSED 127.0.0.1:502". */
  reason: string;
  address: string;
}

export interface ModbusClientEvents {
  state: [state: ConnectionState, previous: ConnectionState];
  outage: [event: OutageEvent];
  restored: [event: { address: string; downMs: number }];
  /** `repeat`: a probe after a back-off failed again (log the first suspension only). */
  unitSuspended: [event: { unitId: number; forMs: number; timeouts: number; repeat: boolean }];
  unitRestored: [event: { unitId: number }];
}

export type ResponseCallback = (error: Error | null, response: ModbusResponse | undefined) => void;

interface PendingRequest {
  unitId: number;
  request: ModbusRequest;
  callback: ResponseCallback;
  transactionId: number;
  deadline: number;
}

interface UnitHealth {
  consecutiveTimeouts: number;
  suspendedUntil: number;
  backoffMs: number;
  /** When a request to the unit was last sent (for "does another unit share the link"). */
  askedAt: number;
}

/** Connections the device accepts and closes before sending anything that are retried at once, in a row. */
const QUICK_RECONNECTS = 3;

/** Another unit asked within this window shares the link: only then may the breaker suspend a unit. */
export const SHARED_UNIT_WINDOW_MS = 10_000;

/** A FIFO ring buffer: no array shifting on the hot path. */
class RequestQueue {
  private items: Array<PendingRequest | undefined>;
  private head = 0;
  private count = 0;

  constructor(readonly limit: number) {
    this.items = new Array(Math.min(limit, 64));
  }

  get length(): number {
    return this.count;
  }

  push(item: PendingRequest): boolean {
    if (this.count >= this.limit) return false;
    if (this.count === this.items.length) {
      const grown = new Array<PendingRequest | undefined>(Math.min(this.limit, this.items.length * 2));
      for (let i = 0; i < this.count; i++) grown[i] = this.items[(this.head + i) % this.items.length];
      this.items = grown;
      this.head = 0;
    }
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
    return true;
  }

  shift(): PendingRequest | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return item;
  }
}

const now = (): number => performance.now();

export class ModbusClient extends EventEmitter<ModbusClientEvents> {
  readonly stats: ModbusClientStats = {
    requests: 0, responses: 0, exceptions: 0, timeouts: 0, rejectedQueueFull: 0, rejectedSuspended: 0,
    malformed: 0, discardedTransaction: 0, discardedUnit: 0, discardedFunction: 0, connects: 0, outages: 0,
  };
  readonly maxRegistersPerRequest: number;

  private currentState: ConnectionState = 'idle';
  private readonly queue: RequestQueue;
  /** Sent, awaiting a response; insertion order = deadline order (one timeout for all). */
  private readonly inFlight = new Map<number, PendingRequest>();
  /** Handed to the transport this turn and not yet on the wire (their deadline starts at the write). */
  private unwritten: PendingRequest[] = [];
  private readonly units = new Map<number, UnitHealth>();
  private nextTransactionId = 0;
  private reconnectAttempt = 0;
  /** Connections in a row that the device accepted and closed before sending anything. */
  private silentDrops = 0;
  /** When the current connection opened, and whether a frame arrived on it (it works). */
  private openedAt = 0;
  private heardOnConnection = false;
  /** Why the client itself closes the link (silent link), for the outage reason. */
  private closingReason: string | undefined;
  private outageSince: number | undefined;
  private receivedSinceTimeout = true;
  private silentTimeouts = 0;
  /** End of the last transaction, for gapMs. */
  private lastTransactionAt = -Infinity;

  private connectTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The expiry check, deferred past the I/O phase (see armDeadline). */
  private deadlineCheck: NodeJS.Immediate | undefined;
  private deadlineTimerAt = Infinity;
  /** Sending is held (pause after connect, gap between requests) until this timer fires. */
  private holdTimer: NodeJS.Timeout | undefined;
  private closedPromise: Promise<void> | undefined;
  private linkClosed: (() => void) | undefined;

  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pauseAfterConnectMs: number;
  private readonly gapMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly unitFailureThreshold: number;
  private readonly unitBackoffMs: number;
  private readonly unitBackoffMaxMs: number;
  private readonly silentLinkTimeouts: number;

  constructor(readonly transport: ModbusTransport, options: ModbusClientOptions = {}) {
    super();
    this.timeoutMs = positive(options.timeoutMs, 1000);
    this.connectTimeoutMs = positive(options.connectTimeoutMs, 3000);
    this.pauseAfterConnectMs = nonNegative(options.pauseAfterConnectMs, 0);
    this.gapMs = nonNegative(options.gapMs, 0);
    this.maxRegistersPerRequest = Math.min(125, positive(options.maxRegistersPerRequest, 125));
    this.queue = new RequestQueue(positive(options.queueLimit, 1000));
    this.reconnectMinMs = positive(options.reconnectMinMs, 1000);
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, positive(options.reconnectMaxMs, 5000));
    this.unitFailureThreshold = nonNegative(options.unitFailureThreshold, 3);
    this.unitBackoffMs = positive(options.unitBackoffMs, 5000);
    this.unitBackoffMaxMs = Math.max(this.unitBackoffMs, positive(options.unitBackoffMaxMs, 60_000));
    this.silentLinkTimeouts = positive(options.silentLinkTimeouts, 5);
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Requests waiting to be sent. */
  get queueDepth(): number {
    return this.queue.length;
  }

  get queueLimit(): number {
    return this.queue.limit;
  }

  /** Requests sent and awaiting a response. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Whether the unit's breaker is open (requests are rejected at once). */
  isUnitSuspended(unitId: number): boolean {
    const health = this.units.get(unitId);
    return health !== undefined && health.suspendedUntil > now();
  }

  /** Connect (idle → connecting). Further calls are ignored. */
  start(): void {
    if (this.currentState !== 'idle') return;
    this.connect();
  }

  /**
   * Queue a request; `callback` gets the response or an error (ModbusException for an exception
   * response, ModbusClientError otherwise). The callback form avoids a promise per request.
   */
  submit(unitId: number, request: ModbusRequest, callback: ResponseCallback): void {
    const error = this.admissionError(unitId);
    if (error) {
      callback(error, undefined);
      return;
    }
    const pending: PendingRequest = { unitId, request, callback, transactionId: 0, deadline: 0 };
    if (!this.queue.push(pending)) {
      this.stats.rejectedQueueFull++;
      callback(new ModbusClientError('queue-full', `request queue full (${this.queue.limit}); newest request rejected`), undefined);
      return;
    }
    this.pump();
  }

  /** Promise form of submit(). */
  request(unitId: number, request: ModbusRequest): Promise<ModbusResponse> {
    return new Promise((resolve, reject) => {
      this.submit(unitId, request, (error, response) => (error ? reject(error) : resolve(response as ModbusResponse)));
    });
  }

  /** Close for good: every timer, the link and every pending request (rejected with 'closed'). */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    const linkOpen = this.currentState === 'connecting' || this.currentState === 'connected';
    this.setState('closed');
    this.clearTimers();
    this.failAll(new ModbusClientError('closed', 'client closed'));
    this.closedPromise = linkOpen
      ? new Promise<void>((resolve) => {
        this.linkClosed = resolve;
        this.transport.destroy();
      })
      : Promise.resolve();
    return this.closedPromise;
  }

  // -------------------------------------------------------------------------------------------
  // Connection life cycle

  private connect(): void {
    this.closingReason = undefined;
    this.heardOnConnection = false;
    this.setState('connecting');
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.transport.destroy();
    }, this.connectTimeoutMs);
    let opened = false;
    this.transport.open({
      onOpen: () => {
        opened = true;
        this.onOpen();
      },
      onFrame: (tid, unit, pdu) => this.onFrame(tid, unit, pdu),
      onClose: (error) => this.onLinkClosed(error, opened),
      onWritten: () => this.onWritten(),
    });
  }

  private onOpen(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.currentState !== 'connecting') return;
    this.stats.connects++;
    this.openedAt = now();
    this.silentTimeouts = 0;
    this.receivedSinceTimeout = true;
    this.setState('connected');
    if (this.outageSince !== undefined) {
      this.emit('restored', { address: this.transport.address, downMs: Math.round(now() - this.outageSince) });
      this.outageSince = undefined;
    }
    this.hold(this.pauseAfterConnectMs);
    this.pump();
  }

  private onLinkClosed(error: Error | undefined, opened: boolean): void {
    this.unwritten = [];
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.currentState === 'closed') {
      this.linkClosed?.();
      this.linkClosed = undefined;
      return;
    }
    const reason = error?.message ?? this.closingReason
      ?? (opened ? 'connection closed by the device' : `no connection within ${this.connectTimeoutMs} ms`);
    for (const pending of this.takeInFlight()) {
      pending.callback(new ModbusClientError('connection-lost', `connection lost: ${reason}`), undefined);
    }
    if (this.outageSince === undefined) {
      this.outageSince = now();
      this.stats.outages++;
      this.emit('outage', { reason, address: this.transport.address });
    }
    if ((this.currentState as ConnectionState) === 'closed') return; // an outage listener or a callback closed the client
    // Garbage that broke the framing came from the device too: it is alive, the link worked.
    const spoke = this.heardOnConnection || error instanceof MbapFrameError;
    const worked = opened && (spoke || now() - this.openedAt >= this.reconnectMinMs);
    if (worked) {
      this.reconnectAttempt = 0;
      this.silentDrops = 0;
    }
    // The first reconnect after a working link is immediate; what is queued waits for it. A device
    // that accepted the connection is reachable, so a few such drops in a row are retried at once
    // too (a device that drops a connection now and then); then the back-off takes over.
    const reachable = opened && !worked && this.silentDrops < QUICK_RECONNECTS;
    if (reachable) this.silentDrops++;
    if (reachable || this.reconnectAttempt === 0) {
      this.reconnectAttempt = Math.max(1, this.reconnectAttempt);
      this.connect();
      return;
    }
    this.failQueued(new ModbusClientError('not-connected', `not connected to ${this.transport.address}: ${reason}`));
    const ceiling = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** Math.min(this.reconnectAttempt - 1, 20));
    this.reconnectAttempt++;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.setState('backoff');
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.connect();
    }, delay);
  }

  private setState(state: ConnectionState): void {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    this.emit('state', state, previous);
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  private admissionError(unitId: number): ModbusClientError | undefined {
    if (this.currentState === 'closed') return new ModbusClientError('closed', 'client closed');
    if (!Number.isInteger(unitId) || unitId < 0 || unitId > 255) {
      return new ModbusClientError('invalid-request', `unit id must be an integer 0..255, got ${String(unitId)}`);
    }
    if (this.currentState === 'backoff') {
      return new ModbusClientError('not-connected', `not connected to ${this.transport.address}`);
    }
    if (this.isUnitSuspended(unitId)) {
      this.stats.rejectedSuspended++;
      return new ModbusClientError('unit-suspended', `unit ${unitId} suspended after ${this.unitFailureThreshold} timeouts`);
    }
    return undefined;
  }

  private hold(ms: number): void {
    if (ms <= 0) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      this.pump();
    }, ms);
  }

  private pump(): void {
    if (this.gapMs > 0 && this.holdTimer === undefined && this.queue.length > 0) {
      const wait = this.lastTransactionAt + this.gapMs - now();
      if (wait > 0) {
        this.hold(wait);
        return;
      }
    }
    while (
      this.currentState === 'connected' && this.holdTimer === undefined
      && this.inFlight.size < this.transport.maxInFlight && this.queue.length > 0
    ) {
      const pending = this.queue.shift() as PendingRequest;
      if (this.isUnitSuspended(pending.unitId)) {
        this.stats.rejectedSuspended++;
        pending.callback(new ModbusClientError('unit-suspended', `unit ${pending.unitId} suspended`), undefined);
        continue;
      }
      this.send(pending);
      if (this.gapMs > 0) {
        // With a gap, one request per pump: the next waits for the gap after this one.
        this.lastTransactionAt = now();
        break;
      }
    }
  }

  private send(pending: PendingRequest): void {
    let tid = this.nextTransactionId;
    while (this.inFlight.has(tid)) tid = (tid + 1) & 0xffff;
    this.nextTransactionId = (tid + 1) & 0xffff;
    try {
      this.transport.send(tid, pending.unitId, pending.request);
    } catch (error) {
      const message = error instanceof ModbusPduError ? error.message : `cannot send: ${(error as Error).message}`;
      pending.callback(new ModbusClientError('invalid-request', message), undefined);
      return;
    }
    this.stats.requests++;
    this.healthOf(pending.unitId).askedAt = now();
    pending.transactionId = tid;
    pending.deadline = now() + this.timeoutMs;
    this.inFlight.set(tid, pending);
    this.unwritten.push(pending);
    this.armDeadline(pending.deadline);
  }

  /**
   * The transport wrote this turn's requests: their timeouts start now. Deadlines only move later,
   * all by the same instant, so the in-flight order stays the deadline order; an armed timer that
   * fires early re-arms itself (expire).
   */
  private onWritten(): void {
    const writtenAt = now();
    for (const pending of this.unwritten) {
      if (this.inFlight.get(pending.transactionId) === pending) pending.deadline = writtenAt + this.timeoutMs;
    }
    this.unwritten = [];
  }

  /** One timer for all outstanding requests, armed for the earliest deadline and re-armed lazily. */
  private armDeadline(deadline: number): void {
    if (this.deadlineTimer !== undefined && this.deadlineTimerAt <= deadline) return;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = deadline;
    // The check runs in setImmediate, after the event loop's I/O phase, and expires only requests
    // whose deadline had passed when the timer fired: when the loop was blocked past a deadline, a
    // response already waiting in the socket is read first and not mistaken for a silent device
    // (the timers phase runs before the I/O poll in each loop turn).
    this.deadlineTimer = setTimeout(() => {
      const firedAt = now();
      this.deadlineCheck = setImmediate(() => {
        this.deadlineCheck = undefined;
        this.expire(firedAt);
      });
    }, Math.max(0, deadline - now()));
  }

  private clearDeadline(): void {
    clearTimeout(this.deadlineTimer);
    clearImmediate(this.deadlineCheck);
    this.deadlineTimer = this.deadlineCheck = undefined;
    this.deadlineTimerAt = Infinity;
  }

  private expire(cutoff: number): void {
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Infinity;
    for (const pending of this.inFlight.values()) {
      if (pending.deadline > cutoff) {
        this.armDeadline(pending.deadline);
        break;
      }
      this.inFlight.delete(pending.transactionId);
      this.stats.timeouts++;
      this.noteTimeout(pending.unitId);
      pending.callback(new ModbusClientError('timeout', `no response from unit ${pending.unitId} within ${this.timeoutMs} ms`), undefined);
      if (this.currentState !== 'connected') return; // a callback closed the client
    }
    if (this.checkSilentLink()) return;
    this.afterTransaction();
  }

  private noteTimeout(unitId: number): void {
    if (!this.receivedSinceTimeout) this.silentTimeouts++;
    else this.silentTimeouts = 1;
    this.receivedSinceTimeout = false;
    if (this.unitFailureThreshold === 0) return;
    const health = this.healthOf(unitId);
    health.consecutiveTimeouts++;
    if (health.consecutiveTimeouts >= this.unitFailureThreshold && this.sharesLink(unitId)) {
      const forMs = health.backoffMs;
      const repeat = health.suspendedUntil > 0;
      health.suspendedUntil = now() + forMs;
      health.backoffMs = Math.min(this.unitBackoffMaxMs, health.backoffMs * 2);
      // After the back-off one more timeout re-suspends it (half-open breaker).
      health.consecutiveTimeouts = this.unitFailureThreshold - 1;
      this.emit('unitSuspended', { unitId, forMs, timeouts: this.unitFailureThreshold, repeat });
    }
  }

  /** Whether another unit was asked recently: suspending `unitId` then keeps the link free for it. */
  private sharesLink(unitId: number): boolean {
    const since = now() - SHARED_UNIT_WINDOW_MS;
    for (const [other, health] of this.units) if (other !== unitId && health.askedAt >= since) return true;
    return false;
  }

  /** Reconnect a link on which nothing at all arrives any more (half-open TCP). */
  private checkSilentLink(): boolean {
    if (this.silentTimeouts < this.silentLinkTimeouts) return false;
    this.closingReason = `no answer to ${this.silentLinkTimeouts} requests in a row and nothing received: closed by the client to reconnect`;
    this.silentTimeouts = 0;
    this.transport.destroy();
    return true;
  }

  private healthOf(unitId: number): UnitHealth {
    let health = this.units.get(unitId);
    if (!health) {
      health = { consecutiveTimeouts: 0, suspendedUntil: 0, backoffMs: this.unitBackoffMs, askedAt: -Infinity };
      this.units.set(unitId, health);
    }
    return health;
  }

  private onFrame(transactionId: number, unitId: number, pdu: Buffer): void {
    this.receivedSinceTimeout = true;
    this.heardOnConnection = true;
    // Any frame proves its unit alive, whether or not it answers what is outstanding (a late reply).
    this.noteAlive(unitId);
    const pending = this.inFlight.get(transactionId);
    if (!pending) {
      this.stats.discardedTransaction++;
      return;
    }
    if (pending.unitId !== unitId) {
      // The device answered the unit's transaction, wrongly: the path to the unit is alive.
      this.noteAlive(pending.unitId);
      this.stats.discardedUnit++;
      return;
    }
    let response: ModbusResponse;
    try {
      response = decodeResponse(pdu, pending.request);
    } catch (error) {
      if (error instanceof ModbusPduError && error.code === 'function-mismatch') {
        this.stats.discardedFunction++;
        return;
      }
      this.inFlight.delete(pending.transactionId);
      if (error instanceof ModbusException) {
        this.stats.exceptions++;
        pending.callback(new ModbusException(error.code, describeException(error.code)), undefined);
      } else {
        this.stats.malformed++;
        pending.callback(new ModbusClientError('malformed-response', `malformed response from unit ${unitId}: ${(error as Error).message}`), undefined);
      }
      this.afterTransaction();
      return;
    }
    this.inFlight.delete(pending.transactionId);
    this.stats.responses++;
    pending.callback(null, response);
    this.afterTransaction();
  }

  /** A frame from the unit arrived: reset its timeout count, close its breaker. */
  private noteAlive(unitId: number): void {
    const health = this.units.get(unitId);
    if (!health || (health.consecutiveTimeouts === 0 && health.suspendedUntil === 0)) return;
    health.consecutiveTimeouts = 0;
    health.backoffMs = this.unitBackoffMs;
    if (health.suspendedUntil > 0) {
      health.suspendedUntil = 0;
      this.emit('unitRestored', { unitId });
    }
  }

  private afterTransaction(): void {
    if (this.gapMs > 0) this.lastTransactionAt = now();
    this.pump();
  }

  private takeInFlight(): PendingRequest[] {
    const all = [...this.inFlight.values()];
    this.inFlight.clear();
    this.clearDeadline();
    return all;
  }

  private failQueued(error: ModbusClientError): void {
    for (let pending = this.queue.shift(); pending; pending = this.queue.shift()) pending.callback(error, undefined);
  }

  private failAll(error: ModbusClientError): void {
    for (const pending of this.takeInFlight()) pending.callback(error, undefined);
    this.failQueued(error);
  }

  private clearTimers(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.backoffTimer);
    clearTimeout(this.holdTimer);
    this.connectTimer = this.backoffTimer = this.holdTimer = undefined;
    this.clearDeadline();
  }
}

function positive(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : fallback;
}

function nonNegative(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : fallback;
}

export interface ModbusTcpClientOptions extends ModbusClientOptions, TcpTransportOptions {}

/** A started Modbus TCP client. */
export function createModbusTcpClient(options: ModbusTcpClientOptions): ModbusClient {
  const client = new ModbusClient(new TcpTransport(options), options);
  client.start();
  return client;
}

export interface ModbusRtuClientOptions extends ModbusClientOptions, RtuTransportOptions {}

/** A started Modbus RTU client on a serial port (one request at a time: the line is a bus). */
export function createModbusRtuClient(options: ModbusRtuClientOptions): ModbusClient {
  const client = new ModbusClient(new RtuTransport(options), options);
  client.start();
  return client;
}
