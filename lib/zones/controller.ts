/**
 * A conduit with its audit trail: what the uns-conduit node runs (no Node-RED here). Every decision,
 * island switch, policy change, evaluator error and clock step becomes an audit event (SR 2.8);
 * decisions go through the flood aggregation of the audit log. While the audit store has failed,
 * reads keep flowing and writes and commands are refused (T-POL-03, SR 2.10: essential functions
 * go on, nothing is changed in the plant without a record of it).
 *
 * The same holds for the conduit's own settings: what loosens it (a policy hot reload, island off)
 * takes effect only with its record written, else it is refused (AuditRefusal) and the conduit stays
 * as it was; what tightens it (island on) takes effect at once, and a record the failed store did not
 * take is kept (at most MAX_UNRECORDED, the oldest dropped) and written when the store works again.
 *
 * The audit must say which policy decided (SR 2.8, 7.6): until the `policy-loaded` record of the
 * start is written, the conduit is held and nothing crosses, reads included; it is written (and the
 * hold lifted) as soon as the store works again — its own retry, or a message after the retry time.
 *
 * Island state at start (SR 5.2 RE2, docs/zones.md § "Island mode"): the saved file, or island on when
 * it cannot be trusted. A missing file is a first start only if the audit trail holds no record of
 * this conduit (its `policy-loaded` records carry its id); the first start writes the file, so a file
 * missing after that was deleted, and a deletion must not loosen the conduit: island on.
 */
import { Conduit, type ConduitOptions, type Decision } from './conduit';
import type { AuditEvent, AuditLog } from './audit-log';
import type { IslandState, IslandStateFile } from './island-state';
import { exportPolicy, type Policy } from './policy';

/** Island-on records kept while the audit store has failed (overflow: the oldest is dropped). */
export const MAX_UNRECORDED = 100;

/** A loosening change refused because its audit record could not be written (SR 2.10, fail closed). */
export class AuditRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditRefusal';
  }
}

export interface ConduitCounters {
  allowed: number;
  partial: number;
  denied: number;
  alerts: number;
  errors: number;
}

export interface ControllerOptions extends ConduitOptions {
  /** The conduit's name in audit records (source). */
  name: string;
  audit: AuditLog;
  /** The deployed island switch (the dialog): on at every start, not saved. */
  island?: boolean;
  /** Where the run-time island switch is kept across restarts (SR 5.2 RE2); without it, in memory only. */
  islandState?: IslandStateFile;
  /**
   * The conduit's stable id (the Node-RED node id), carried by its policy-loaded records: with
   * islandState, a missing state file of a conduit the trail knows is island on.
   */
  conduitId?: string;
}

export class ConduitController {
  readonly conduit: Conduit;
  readonly counters: ConduitCounters = { allowed: 0, partial: 0, denied: 0, alerts: 0, errors: 0 };
  private readonly audit: AuditLog;
  private readonly name: string;
  private readonly islandState: IslandStateFile | undefined;
  /** Why island mode is on although no one switched it: the persisted state was unreadable or corrupt. */
  islandProblem: string | undefined;
  /** Why the last island switch could not be saved (it then holds only until a restart). */
  islandSaveProblem: string | undefined;
  /** The `policy-loaded` record of the start while the store has not taken it (the conduit is held). */
  private unrecordedPolicy: AuditEvent | undefined;
  /** Records of tightening changes the failed store did not take, oldest first. */
  private readonly unrecorded: AuditEvent[] = [];
  /** True while writeUnrecorded runs: a recovery it causes itself must not write the same records again. */
  private writing = false;
  /** Writes what waited for the store, in the order it happened; the hold ends with the policy record. */
  private readonly writeUnrecorded = () => {
    if (this.writing) return;
    this.writing = true;
    try {
      if (this.unrecordedPolicy && this.audit.record(this.unrecordedPolicy)) {
        this.unrecordedPolicy = undefined;
        this.conduit.held = undefined;
      }
      if (this.unrecordedPolicy) return;
      while (this.unrecorded.length > 0 && this.audit.record(this.unrecorded[0])) this.unrecorded.shift();
    } finally {
      this.writing = false;
    }
  };

  private readonly conduitId: string | undefined;

  constructor(policy: Policy, options: ControllerOptions) {
    this.name = options.name;
    this.audit = options.audit;
    this.conduitId = options.conduitId;
    this.islandState = options.islandState;
    // Before this start's own policy-loaded record, which would otherwise be the witness.
    const restored = this.restoreIsland();
    // The store writes `audit-recovered` and then, from here, what it missed, before anything newer.
    this.audit.on('recovered', this.writeUnrecorded);
    this.conduit = new Conduit(policy, {
      ...options,
      onClockStep: (stepMs) => {
        this.audit.record({ source: this.name, category: 'clock', type: 'clock-step', result: 'detected', stepMs });
        options.onClockStep?.(stepMs);
      },
    });
    const loaded: AuditEvent = { source: this.name, ...(this.conduitId === undefined ? {} : { conduit: this.conduitId }), category: 'config-change', type: 'policy-loaded', result: 'ok', policyHash: this.conduit.policyHash, rules: policy.rules.length, direction: this.conduit.direction };
    if (!this.audit.record(loaded)) {
      this.unrecordedPolicy = loaded;
      this.conduit.held = `the audit does not yet record which policy decides (${this.audit.failureReason ?? 'record not written'}): nothing crosses until it does`;
    }
    if (options.island === true || restored.island) {
      // Fail closed: ticked in the dialog, switched on before the restart, or a state file that cannot be trusted.
      this.conduit.island = true;
      this.islandProblem = restored.problem;
      const by = options.island === true ? 'dialog' : restored.by ?? null;
      const event: AuditEvent = { source: this.name, category: 'island', type: 'island-on', result: 'ok', principal: by, reason: restored.problem ?? (options.island === true ? 'deployed in island mode' : 'restored from the saved island state') };
      if (!this.audit.record(event)) this.keepUnrecorded(event);
    }
  }

  get island(): boolean {
    return this.conduit.island;
  }

  /**
   * SR 5.2 RE2. `by`: who switched (dialog, message principal, admin API user). On: at once, even
   * while the audit store has failed (its record is kept and retried). Off: only with its record
   * written, else AuditRefusal and island mode stays on.
   */
  setIsland(on: boolean, by: string): void {
    if (this.conduit.island === on) return;
    const event: AuditEvent = { source: this.name, category: 'island', type: on ? 'island-on' : 'island-off', result: 'ok', principal: by };
    if (!on) {
      if (!this.audit.record(event)) throw new AuditRefusal(`island mode stays on: switching it off could not be audited (${this.audit.failureReason ?? 'record not written'})`);
      this.conduit.island = false;
      this.islandProblem = undefined;
      this.saveIsland(false, by);
      return;
    }
    this.conduit.island = true;
    this.saveIsland(true, by);
    if (!this.audit.record(event)) this.keepUnrecorded(event);
  }

  /** Records of tightening changes waiting for the audit store. */
  get unrecordedCount(): number {
    return this.unrecorded.length;
  }

  /** Why nothing crosses although island mode is off: the policy-loaded record is not written yet. */
  get held(): string | undefined {
    return this.conduit.held;
  }

  /**
   * Hot reload (T-POL-02): compiled and swapped atomically by the conduit; audited with both hashes.
   * A reload whose record cannot be written is undone before anything is decided under it (AuditRefusal).
   */
  setPolicy(policy: Policy, by: string): void {
    const previous = this.conduit.policy;
    const previousHash = this.conduit.policyHash;
    this.conduit.setPolicy(policy);
    const written = this.audit.record({ source: this.name, category: 'config-change', type: 'policy-reloaded', result: 'ok', principal: by, previousHash, policyHash: this.conduit.policyHash, rules: policy.rules.length });
    if (!written) {
      this.conduit.setPolicy(previous);
      throw new AuditRefusal(`policy not reloaded: the reload could not be audited (${this.audit.failureReason ?? 'record not written'}); policy ${previousHash} stays active`);
    }
  }

  /** Stops waiting for the store (the node closes); what is still kept was counted as lost by the store. */
  close(): void {
    this.audit.off('recovered', this.writeUnrecorded);
  }

  exportPolicy(): { policy: Policy; hash: string } {
    return exportPolicy(this.conduit.policy);
  }

  /** The decision for `msg`, audited. A write while the audit store is failed is refused. */
  decide(msg: unknown): Decision {
    // Held: a message after the retry time tries the store again (its recovery writes the policy record).
    if (this.unrecordedPolicy) this.audit.retryIfDue();
    const decision = this.conduit.decide(msg);
    const event = {
      source: this.name,
      category: decision.category,
      type: decision.category === 'engine-error' ? 'evaluator-error' : 'decision',
      ruleId: decision.ruleIds[0] ?? null,
      principal: decision.principal,
      result: decision.alert ? `${decision.result}+alert` : decision.result,
      operation: decision.operation,
      direction: decision.direction,
      asset: decision.asset,
      ...(decision.dropped.length > 0 ? { dropped: decision.dropped.slice(0, 20) } : {}),
      ...(decision.reason ? { reason: decision.reason } : {}),
    };
    // Errors are never aggregated away: each one is written (they are rare, and each is a finding).
    const written = decision.category === 'engine-error' ? this.audit.record(event) : this.audit.decision(event);
    // A write passes only with its record written (fail closed); reads go on without one (SR 2.10).
    if (!written && decision.result !== 'deny' && decision.operation !== 'read') {
      this.conduit.revokeLatest();
      const refused: Decision = {
        ...decision, result: 'deny', alert: false, payload: undefined, allowed: [],
        dropped: decision.allowed.map((metric) => ({ metric, ruleId: null, reason: 'audit store failed' })),
        reason: `audit store failed, writes refused: ${this.audit.failureReason ?? 'record not written'}`,
      };
      this.count(refused);
      return refused;
    }
    this.count(decision);
    return decision;
  }

  /** The saved island state; a missing file is told apart (first start or deleted) by the audit trail. */
  private restoreIsland(): IslandState {
    const state = this.islandState?.load() ?? { island: false };
    if (!state.missing || this.islandState === undefined || this.conduitId === undefined) return state;
    const id = this.conduitId;
    let witness: { seq: number } | undefined;
    try {
      witness = this.audit.findLast(`"conduit":${JSON.stringify(id)}`, (r) => r.type === 'policy-loaded' && r.conduit === id);
    } catch (error) {
      return { island: true, problem: `island state ${this.islandState.path} missing and the audit trail cannot be read to tell a first start: ${(error as Error).message}` };
    }
    if (witness) return { island: true, problem: `island state ${this.islandState.path} missing although this conduit started before (audit record ${witness.seq}): deleted?` };
    this.saveIsland(false, 'first start');
    return state;
  }

  private saveIsland(on: boolean, by: string): void {
    if (!this.islandState) return;
    try {
      this.islandState.save(on, by);
      this.islandSaveProblem = undefined;
    } catch (error) {
      this.islandSaveProblem = `island state ${this.islandState.path} not saved: ${(error as Error).message}`;
    }
  }

  /** Kept until the store's `recovered` (it retries by itself, also when island mode stops all traffic). */
  private keepUnrecorded(event: AuditEvent): void {
    if (this.unrecorded.length >= MAX_UNRECORDED) this.unrecorded.shift();
    this.unrecorded.push(event);
  }

  private count(decision: Decision): void {
    if (decision.category === 'engine-error') this.counters.errors++;
    if (decision.result === 'allow') this.counters.allowed++;
    else if (decision.result === 'partial') this.counters.partial++;
    else this.counters.denied++;
    if (decision.alert) this.counters.alerts++;
  }
}
