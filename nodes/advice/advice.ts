/**
 * Node-RED adapter of the advice node set (docs/advice.md): `uns-advice`. Reads the config, builds an
 * Advisor (lib/advice) and routes its one input: proposals, approve/reject messages, and the outcome
 * records wired back from uns-vfd output 2 and uns-conduit output 2. Output 1 carries the write
 * commands (wire it to a uns-conduit, then the uns-vfd); output 2 every audit event, which is also
 * appended to the hash-chained audit folder (lib/zones/audit-log). Admin API for the editor:
 * the pending list and approve/reject, behind RED.auth.needsPermission.
 */
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { AdviceRefusal, type AdviceEvent, Advisor, type AdviceMode, ANONYMOUS_EDITOR } from '../../lib/advice/advisor';
import { type Principal, principalOf } from '../../lib/principal';
import { isPlainObject } from '../../lib/values';
import { AuditLog } from '../../lib/zones/audit-log';

type AdviceDef = NodeDef & {
  mode: AdviceMode; approvers: string; approvalTimeout: string | number; maxPending: string | number; maxAge: string | number;
  min: string | number; max: string | number; outcomeTimeout: string | number; auditDir: string;
};

const live = new Map<string, Advisor>();
/** One audit log per folder, shared by the advice nodes that write to it (one hash chain). */
const auditLogs = new Map<string, { log: AuditLog; users: number }>();

function acquireAudit(dir: string): { log: AuditLog; users: number } {
  const shared = auditLogs.get(dir) ?? { log: new AuditLog({ dir }), users: 0 };
  shared.users++;
  auditLogs.set(dir, shared);
  return shared;
}

function releaseAudit(dir: string): void {
  const shared = auditLogs.get(dir);
  if (!shared || --shared.users > 0) return;
  shared.log.close();
  auditLogs.delete(dir);
}

function optionalNumber(value: string | number | undefined, scale = 1): number | undefined {
  if (value === undefined || String(value).trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new RangeError(`${String(value)} is not a number`);
  return n * scale;
}

export = function (RED: NodeAPI): void {
  RED.httpAdmin.get('/uns-edge/advice/:id/pending', RED.auth.needsPermission('uns-advice.read'), (req, res) => {
    const advisor = live.get(String(req.params.id));
    if (!advisor) res.status(404).json({ error: 'no such uns-advice node (deploy first)' });
    else res.json({ pending: advisor.list() });
  });
  RED.httpAdmin.post('/uns-edge/advice/:id/decide', RED.auth.needsPermission('uns-advice.write'), (req, res) => {
    const advisor = live.get(String(req.params.id));
    const body = (req.body ?? {}) as { id?: unknown; decision?: unknown; reason?: unknown };
    if (!advisor) {
      res.status(404).json({ error: 'no such uns-advice node (deploy first)' });
      return;
    }
    if (body.decision !== 'approve' && body.decision !== 'reject') {
      res.status(400).json({ error: 'decision must be "approve" or "reject"' });
      return;
    }
    // The editor user (adminAuth); without adminAuth (or adminAuth's default user) everyone who reaches
    // the editor is ANONYMOUS_EDITOR, which the advisor never lets approve.
    const username = (req as unknown as { user?: { username?: unknown } }).user?.username;
    const approver: Principal = typeof username === 'string' && username.trim() !== ''
      ? { via: 'flow', id: `editor:${username}`, user: username }
      : { via: 'flow', id: ANONYMOUS_EDITOR };
    try {
      advisor.decide(body.decision, body.id, approver, typeof body.reason === 'string' ? body.reason : '');
      res.json({ ok: true });
    } catch (error) {
      res.status(error instanceof AdviceRefusal ? 403 : 500).json({ error: (error as Error).message });
    }
  });

  function AdviceNode(this: Node, config: AdviceDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const dir = config.auditDir?.trim() || join(RED.settings.userDir ?? process.cwd(), 'uns-edge-advice-audit');
    const shared = acquireAudit(dir);
    const source = `advice:${node.name || node.id}`;
    let advisor: Advisor;
    const showStatus = () => node.status(advisor.waiting
      ? { fill: 'yellow', shape: 'dot', text: RED._('advice.status.waiting', { count: String(advisor.waiting) }) }
      : { fill: 'green', shape: 'dot', text: RED._(config.mode === 'auto' ? 'advice.status.auto' : 'advice.status.idle') });
    const audit = (event: AdviceEvent) => {
      const written = shared.log.record({ source, category: 'access-control', type: 'advice', ruleId: null, result: event.step, ...event });
      if (!written) node.warn(RED._('advice.errors.audit', { reason: shared.log.failureReason ?? '' }));
      node.send([null, { topic: event.asset ?? '', payload: event } as unknown as NodeMessageInFlow]);
      showStatus();
      return written;
    };
    try {
      advisor = new Advisor({
        mode: config.mode === 'auto' ? 'auto' : 'approval',
        approvers: String(config.approvers ?? '').split(/[\n,]/).map((s) => s.trim()).filter(Boolean),
        approvalTimeoutMs: optionalNumber(config.approvalTimeout, 1000),
        maxPending: optionalNumber(config.maxPending),
        maxAgeMs: optionalNumber(config.maxAge, 1000),
        min: optionalNumber(config.min),
        max: optionalNumber(config.max),
        outcomeTimeoutMs: optionalNumber(config.outcomeTimeout, 1000),
        audit,
        write: (write) => node.send([write as unknown as NodeMessageInFlow, null]),
      });
    } catch (error) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('advice.status.invalid') });
      node.error(`${RED._('advice.errors.invalid')}: ${(error as Error).message}`);
      releaseAudit(dir); // a node that did not start holds no audit folder open
      return;
    }
    live.set(node.id, advisor);
    showStatus();

    node.on('input', (msg: NodeMessageInFlow & { principal?: unknown }, _send, done) => {
      const payload = msg.payload;
      try {
        if (isPlainObject(payload) && (typeof payload.outcome === 'string' || typeof payload.conduit === 'string')) {
          advisor.outcome(payload);
        } else if (!shared.log.writable) {
          // Nothing is proposed or approved while its steps cannot be audited (SR 2.10: fail closed).
          throw new AdviceRefusal(RED._('advice.errors.audit', { reason: shared.log.failureReason ?? '' }));
        } else if (isPlainObject(payload) && ('approve' in payload || 'reject' in payload)) {
          const decision = 'approve' in payload ? 'approve' : 'reject';
          advisor.decide(decision, payload[decision], principalOf(msg), typeof payload.reason === 'string' ? payload.reason : '');
        } else {
          advisor.propose(msg);
        }
        done();
      } catch (error) {
        done(error as Error);
      }
    });

    node.on('close', (done: () => void) => {
      advisor.close();
      live.delete(node.id);
      releaseAudit(dir);
      done();
    });
  }

  RED.nodes.registerType('uns-advice', AdviceNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};
