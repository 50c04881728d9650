/**
 * A conduit with its audit trail: what the uns-conduit node runs (no Node-RED here). Every decision,
 * island switch, policy change, evaluator error and clock step becomes an audit event (SR 2.8);
 * decisions go through the flood aggregation of the audit log. While the audit store has failed,
 * reads keep flowing and writes and commands are refused (T-POL-03, SR 2.10: essential functions
 * go on, nothing is changed in the plant without a record of it).
 */
import { Conduit, type ConduitOptions, type Decision } from './conduit';
import type { AuditLog } from './audit-log';
import type { IslandStateFile } from './island-state';
import { exportPolicy, type Policy } from './policy';

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

  constructor(policy: Policy, options: ControllerOptions) {
    this.name = options.name;
    this.audit = options.audit;
    this.conduit = new Conduit(policy, {
      ...options,
      onClockStep: (stepMs) => {
        this.audit.record({ source: this.name, category: 'clock', type: 'clock-step', result: 'detected', stepMs });
        options.onClockStep?.(stepMs);
      },
    });
    this.audit.record({ source: this.name, category: 'config-change', type: 'policy-loaded', result: 'ok', policyHash: this.conduit.policyHash, rules: policy.rules.length, direction: this.conduit.direction });
    this.islandState = options.islandState;
    const restored = this.islandState?.load() ?? { island: false };
    if (options.island === true || restored.island) {
      // Fail closed: ticked in the dialog, switched on before the restart, or a state file that cannot be trusted.
      this.conduit.island = true;
      this.islandProblem = restored.problem;
      const by = options.island === true ? 'dialog' : restored.by ?? null;
      this.audit.record({ source: this.name, category: 'island', type: 'island-on', result: 'ok', principal: by, reason: restored.problem ?? (options.island === true ? 'deployed in island mode' : 'restored from the saved island state') });
    }
  }

  get island(): boolean {
    return this.conduit.island;
  }

  /** SR 5.2 RE2. `by`: who switched (dialog, message principal, admin API user). */
  setIsland(on: boolean, by: string): void {
    if (this.conduit.island === on) return;
    this.conduit.island = on;
    if (!on) this.islandProblem = undefined;
    this.saveIsland(on, by);
    this.audit.record({ source: this.name, category: 'island', type: on ? 'island-on' : 'island-off', result: 'ok', principal: by });
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

  /** Hot reload (T-POL-02): compiled and swapped atomically by the conduit; audited with both hashes. */
  setPolicy(policy: Policy, by: string): void {
    const previous = this.conduit.policyHash;
    this.conduit.setPolicy(policy);
    this.audit.record({ source: this.name, category: 'config-change', type: 'policy-reloaded', result: 'ok', principal: by, previousHash: previous, policyHash: this.conduit.policyHash, rules: policy.rules.length });
  }

  exportPolicy(): { policy: Policy; hash: string } {
    return exportPolicy(this.conduit.policy);
  }

  /** The decision for `msg`, audited. A write while the audit store is failed is refused. */
  decide(msg: unknown): Decision {
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

  private count(decision: Decision): void {
    if (decision.category === 'engine-error') this.counters.errors++;
    if (decision.result === 'allow') this.counters.allowed++;
    else if (decision.result === 'partial') this.counters.partial++;
    else this.counters.denied++;
    if (decision.alert) this.counters.alerts++;
  }
}
