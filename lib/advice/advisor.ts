/**
 * Guarded advice (docs/advice.md): a source — an ML model, an LLM agent over MQTT, a person —
 * proposes a setpoint for a drive with a reason; the proposal becomes an ordinary write command that
 * carries the proposer's principal and goes out to the conduit and the drive (uns-conduit → uns-vfd),
 * whose policy, guards, ramps and arm/execute decide like for any write. Nothing here writes to a
 * device or bypasses those checks: the advisor only decides *whether to ask*.
 *
 * Steps, each one an audit event (SR 2.8): proposed → (approval mode) approved | rejected | expired
 * → forwarded → written | refused-by-guard | refused-by-conduit | failed | unconfirmed. A proposal
 * is refused before any of that (audited too) when it has no principal, an unusable id, value,
 * reason or timestamp, a replayed id, a timestamp older than maxAgeMs or from the future, a value
 * outside the advice bounds, or when the pending queue is full.
 *
 * Approval (SR 2.1 RE4 dual approval): an approve/reject names the proposal id and carries the
 * approver's principal; it counts only when the principal matches the approver patterns and is not
 * the proposer. The editor user without adminAuth (ANONYMOUS_EDITOR) never approves, whatever the
 * patterns say (`editor:*` would otherwise let anyone who reaches the editor approve); it may reject.
 * A pending proposal expires after approvalTimeoutMs.
 *
 * Bounded: at most maxPending proposals wait for approval (overflow: the newest is refused, what
 * waits keeps its place); approved proposals go out one at a time (the next after the previous
 * one's outcome or outcomeTimeoutMs), queued up to maxPending too; remembered ids at most
 * MAX_REMEMBERED_IDS within maxAgeMs (full of unexpired ids: proposals are refused — fail closed).
 */
import { type Principal, principalOf } from '../principal';
import { isPlainObject } from '../values';

export type AdviceMode = 'approval' | 'auto';

export type AdviceStep =
  | 'refused' | 'proposed' | 'approved' | 'rejected' | 'expired' | 'forwarded'
  | 'written' | 'refused-by-guard' | 'refused-by-conduit' | 'failed' | 'unconfirmed';

export interface AdviceEvent {
  step: AdviceStep;
  proposalId: string | null;
  asset: string | null;
  setpoint: number | null;
  /** The proposer's principal id (or who sent what was refused). */
  principal: string;
  /** Who approved or rejected. */
  approver?: string;
  reason: string;
  /** The proposer's reason for the change. */
  adviceReason?: string;
}

export interface Proposal {
  id: string;
  asset: string;
  setpoint: number;
  reason: string;
  timestamp: number;
  principal: Principal;
  receivedAt: number;
}

/** The write a proposal becomes: sent to the conduit, then the drive. */
export interface AdviceWrite {
  topic: string;
  payload: { command: 'setpoint'; value: number };
  principal: Principal;
  timestamp: number;
  operation: 'write';
  advice: { id: string; reason: string; approvedBy: string | null };
}

export interface AdvisorOptions {
  mode: AdviceMode;
  /** Principal id patterns (`*` any characters) allowed to approve or reject. */
  approvers: readonly string[];
  approvalTimeoutMs?: number;
  maxPending?: number;
  /** A proposal's timestamp older than this is stale (T-RPL); ids are remembered this long. */
  maxAgeMs?: number;
  /** Advice-level bounds, checked before anyone is asked (the drive's guard still decides). */
  min?: number;
  max?: number;
  /** How long a forwarded write may take to report its outcome. */
  outcomeTimeoutMs?: number;
  /** Records one event; true only when it was written (a write whose forwarding is not recorded is not sent). */
  audit: (event: AdviceEvent) => boolean;
  write: (write: AdviceWrite) => void;
  /** Wall clock for timestamps. */
  now?: () => number;
}

export const DEFAULT_APPROVAL_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_MAX_PENDING = 20;
export const DEFAULT_MAX_AGE_MS = 60_000;
export const DEFAULT_OUTCOME_TIMEOUT_MS = 15_000;
/** Future timestamps tolerated (clock skew between the agent and the gateway). */
const FUTURE_SKEW_MS = 5_000;
export const MAX_REMEMBERED_IDS = 10_000;
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_REASON = 1000;

/** The approver id of an editor user when Node-RED runs without adminAuth: no one in particular. */
export const ANONYMOUS_EDITOR = 'editor:anonymous';

export class AdviceRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdviceRefusal';
    Object.setPrototypeOf(this, AdviceRefusal.prototype);
  }
}

/** Principal id patterns: `*` is any run of characters, everything else literal (as conduit principal patterns). */
export function principalMatches(patterns: readonly string[], id: string): boolean {
  return patterns.some((pattern) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(id));
}

interface Pending { proposal: Proposal; timer: NodeJS.Timeout }
interface Approved { proposal: Proposal; approvedBy: string | null }

export class Advisor {
  private readonly pending = new Map<string, Pending>();
  private readonly outbox: Approved[] = [];
  private inFlight: (Approved & { timer: NodeJS.Timeout }) | undefined;
  /** id → when it was seen (wall ms), for replay detection. */
  private readonly seen = new Map<string, number>();
  private readonly now: () => number;
  private readonly approvalTimeoutMs: number;
  private readonly maxPending: number;
  private readonly maxAgeMs: number;
  private readonly outcomeTimeoutMs: number;
  private closed = false;

  constructor(private readonly options: AdvisorOptions) {
    this.now = options.now ?? Date.now;
    this.approvalTimeoutMs = options.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.outcomeTimeoutMs = options.outcomeTimeoutMs ?? DEFAULT_OUTCOME_TIMEOUT_MS;
    if (!(Number.isInteger(this.maxPending) && this.maxPending >= 1 && this.maxPending <= 1000)) throw new RangeError(`maxPending must be 1..1000, got ${this.maxPending}`);
    if (!(this.approvalTimeoutMs >= 1000)) throw new RangeError(`approval timeout must be ≥ 1000 ms, got ${this.approvalTimeoutMs}`);
    if (!(this.maxAgeMs >= 1000)) throw new RangeError(`maximum age must be ≥ 1000 ms, got ${this.maxAgeMs}`);
    // Without approvers every proposal would wait for nobody: refuse the setting, never fall back to auto.
    if (options.mode === 'approval' && options.approvers.length === 0) throw new RangeError('approval mode needs at least one approver (principal id pattern)');
    if (options.min !== undefined && options.max !== undefined && options.min > options.max) throw new RangeError(`advice bounds: min ${options.min} is above max ${options.max}`);
  }

  /** Proposals waiting for approval, oldest first. */
  list(): Array<Omit<Proposal, 'principal'> & { principal: string; expiresAt: number }> {
    return [...this.pending.values()].map(({ proposal }) => ({ ...proposal, principal: proposal.principal.id, expiresAt: proposal.receivedAt + this.approvalTimeoutMs }));
  }

  get waiting(): number {
    return this.pending.size;
  }

  /** A proposal message (msg-like). Returns the accepted proposal; throws AdviceRefusal (already audited). */
  propose(msg: { topic?: unknown; payload?: unknown; principal?: unknown }): Proposal {
    const principal = principalOf(msg);
    const payload = isPlainObject(msg.payload) ? msg.payload : undefined;
    const id = typeof payload?.id === 'string' ? payload.id : null;
    const refuse = (reason: string, asset: string | null = null, setpoint: number | null = null): never => {
      this.options.audit({ step: 'refused', proposalId: id && ID.test(id) ? id : null, asset, setpoint, principal: principal?.id ?? '(no principal)', reason });
      throw new AdviceRefusal(reason);
    };
    if (this.closed) refuse('the advice node is closing');
    if (!principal) refuse('a proposal needs msg.principal (who proposes): none, or without an id');
    if (!payload) refuse('a proposal is an object {id, setpoint, reason, timestamp}');
    const p = payload as Record<string, unknown>;
    const asset = typeof p.asset === 'string' ? p.asset : typeof msg.topic === 'string' ? msg.topic : '';
    if (!asset || asset.length > 4096 || /[+#]/.test(asset)) refuse('a proposal needs the drive\'s asset path (msg.topic or payload.asset) without wildcards');
    if (!id || !ID.test(id)) refuse('a proposal needs an id: 1–64 of A–Z a–z 0–9 _ . : -', asset);
    const setpoint = p.setpoint;
    if (typeof setpoint !== 'number' || !Number.isFinite(setpoint)) refuse(`setpoint must be a finite number, got ${typeof setpoint === 'string' ? 'a string' : String(setpoint)}`, asset);
    const value = setpoint as number;
    if (typeof p.reason !== 'string' || p.reason.trim() === '' || p.reason.length > MAX_REASON) refuse(`a proposal needs a reason (1–${MAX_REASON} characters)`, asset, value);
    const timestamp = p.timestamp;
    const now = this.now();
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) refuse('a proposal needs a timestamp (ms since the epoch)', asset, value);
    if ((timestamp as number) < now - this.maxAgeMs) refuse(`stale: the timestamp is ${Math.round((now - (timestamp as number)) / 1000)} s old, more than ${this.maxAgeMs / 1000} s (replayed or delayed)`, asset, value);
    if ((timestamp as number) > now + FUTURE_SKEW_MS) refuse('the timestamp lies in the future', asset, value);
    this.forgetOldIds(now);
    if (this.seen.has(id as string)) refuse(`replayed: proposal id ${id} was seen before`, asset, value);
    if (this.seen.size >= MAX_REMEMBERED_IDS) refuse(`too many proposals within ${this.maxAgeMs / 1000} s to check for replays`, asset, value);
    if (this.options.min !== undefined && value < this.options.min) refuse(`setpoint ${value} is below the advice minimum ${this.options.min}`, asset, value);
    if (this.options.max !== undefined && value > this.options.max) refuse(`setpoint ${value} is above the advice maximum ${this.options.max}`, asset, value);
    if (this.options.mode === 'approval' && this.pending.size >= this.maxPending) refuse(`${this.maxPending} proposals are waiting for approval: the newest is refused`, asset, value);
    if (this.outbox.length >= this.maxPending) refuse(`${this.maxPending} approved proposals are waiting to be written: the newest is refused`, asset, value);
    this.seen.set(id as string, now);
    const proposal: Proposal = { id: id as string, asset, setpoint: value, reason: (p.reason as string).trim(), timestamp: timestamp as number, principal: principal as Principal, receivedAt: now };
    this.event('proposed', proposal, this.options.mode === 'approval' ? `waiting for approval (${Math.round(this.approvalTimeoutMs / 1000)} s)` : 'auto mode: no approval step');
    if (this.options.mode === 'approval') {
      const timer = setTimeout(() => {
        this.pending.delete(proposal.id);
        this.event('expired', proposal, `no approval within ${Math.round(this.approvalTimeoutMs / 1000)} s`);
      }, this.approvalTimeoutMs);
      this.pending.set(proposal.id, { proposal, timer });
    } else {
      this.enqueue({ proposal, approvedBy: null });
    }
    return proposal;
  }

  /** Approve or reject a pending proposal as `approver`. Throws AdviceRefusal (audited) when not allowed. */
  decide(decision: 'approve' | 'reject', id: unknown, approver: Principal | undefined, note = ''): Proposal {
    const entry = typeof id === 'string' ? this.pending.get(id) : undefined;
    const refuse = (reason: string): never => {
      this.options.audit({ step: 'refused', proposalId: typeof id === 'string' && ID.test(id) ? id : null, asset: entry?.proposal.asset ?? null, setpoint: entry?.proposal.setpoint ?? null, principal: approver?.id ?? '(no principal)', approver: approver?.id, reason: `${decision}: ${reason}` });
      throw new AdviceRefusal(`${decision}: ${reason}`);
    };
    if (!approver) refuse('an approval needs msg.principal (who approves)');
    if (decision === 'approve' && (approver as Principal).id === ANONYMOUS_EDITOR) refuse('anonymous editor users cannot approve: turn on adminAuth in settings.js so an approval names who approved');
    if (!principalMatches(this.options.approvers, (approver as Principal).id)) refuse(`${(approver as Principal).id} is not allowed to approve`);
    if (!entry) refuse(`no pending proposal ${typeof id === 'string' ? id.slice(0, 64) : ''} (unknown, decided or expired)`);
    const { proposal, timer } = entry as Pending;
    if (proposal.principal.id === (approver as Principal).id) refuse('the proposer cannot approve its own proposal (dual approval)');
    clearTimeout(timer);
    this.pending.delete(proposal.id);
    const text = note.slice(0, MAX_REASON);
    if (decision === 'reject') {
      this.event('rejected', proposal, text || 'rejected', (approver as Principal).id);
      return proposal;
    }
    this.event('approved', proposal, text || 'approved', (approver as Principal).id);
    this.enqueue({ proposal, approvedBy: (approver as Principal).id });
    return proposal;
  }

  /**
   * What became of the write in flight: a uns-vfd audit record (`{drive, who, command, outcome,
   * reason}`) or a uns-conduit decision (`{conduit, result, asset, principal, reason}`). Records of
   * other writers are ignored. True when it settled the write in flight.
   */
  outcome(record: Record<string, unknown>): boolean {
    const current = this.inFlight;
    if (!current) return false;
    const { proposal } = current;
    let step: AdviceStep | undefined;
    if (typeof record.conduit === 'string' && record.asset === proposal.asset && record.principal === proposal.principal.id && record.result === 'deny') {
      step = 'refused-by-conduit';
    } else if (record.drive === proposal.asset && record.who === proposal.principal.id && typeof record.outcome === 'string') {
      step = record.outcome === 'written' ? 'written' : record.outcome === 'rejected' ? 'refused-by-guard' : record.outcome === 'failed' ? 'failed' : undefined;
    }
    if (!step) return false;
    const detail = [typeof record.command === 'string' ? record.command : '', typeof record.reason === 'string' ? record.reason : ''].filter(Boolean).join(': ');
    this.event(step, proposal, detail || step, current.approvedBy ?? undefined);
    clearTimeout(current.timer);
    this.inFlight = undefined;
    this.sendNext();
    return true;
  }

  close(): void {
    this.closed = true;
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    if (this.inFlight) clearTimeout(this.inFlight.timer);
    this.inFlight = undefined;
    this.outbox.length = 0;
  }

  private enqueue(approved: Approved): void {
    this.outbox.push(approved);
    this.sendNext();
  }

  /** One write at a time: the next goes out after the previous one's outcome (or its timeout). */
  private sendNext(): void {
    if (this.inFlight || this.closed) return;
    const next = this.outbox.shift();
    if (!next) return;
    const { proposal, approvedBy } = next;
    // SR 2.10, fail closed: nothing is changed in the plant without a record of it.
    if (!this.event('forwarded', proposal, `setpoint ${proposal.setpoint} sent to the conduit and the drive`, approvedBy ?? undefined)) {
      this.event('refused', proposal, 'the audit store did not record the forwarding: nothing written', approvedBy ?? undefined);
      this.sendNext();
      return;
    }
    const timer = setTimeout(() => {
      this.inFlight = undefined;
      this.event('unconfirmed', proposal, `no outcome from the conduit or the drive within ${this.outcomeTimeoutMs / 1000} s (wire uns-vfd output 2 and the conduit's output 2 back to this node)`, approvedBy ?? undefined);
      this.sendNext();
    }, this.outcomeTimeoutMs);
    this.inFlight = { proposal, approvedBy, timer };
    this.options.write({
      topic: proposal.asset,
      payload: { command: 'setpoint', value: proposal.setpoint },
      principal: { ...proposal.principal },
      timestamp: this.now(),
      operation: 'write',
      advice: { id: proposal.id, reason: proposal.reason, approvedBy },
    });
  }

  private event(step: AdviceStep, proposal: Proposal, reason: string, approver?: string): boolean {
    return this.options.audit({ step, proposalId: proposal.id, asset: proposal.asset, setpoint: proposal.setpoint, principal: proposal.principal.id, ...(approver ? { approver } : {}), reason, adviceReason: proposal.reason });
  }

  private forgetOldIds(now: number): void {
    for (const [id, at] of this.seen) {
      if (at >= now - this.maxAgeMs) break; // insertion order = time order
      this.seen.delete(id);
    }
  }
}
