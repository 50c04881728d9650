/**
 * flows/guarded-advice.json as a user runs it: the BUILT gateway (`uns-edge run --flows`) with adminAuth
 * (UNS_EDGE_ADMIN_USER / UNS_EDGE_ADMIN_PASSWORD_HASH), against the simulated plant and an aedes broker.
 * The operator logs in (POST /auth/token), presses the template's inject (POST /inject/<id>, as its
 * button does) so the stand-in agent proposes 1250 rpm, reads the pending proposal and approves it
 * through the uns-advice admin API (as the dialog's Approve button does). The conduit lets the write
 * through, the drive's setpoint becomes 1250 rpm, and the advice audit folder
 * (`<userDir>/uns-edge-advice-audit`, nodes/advice/advice.ts) names the proposer flow:speed-model and
 * the approver editor:operator, with its hash chain intact. Without a login, reading the proposals and
 * approving are refused by Node-RED (401) and nothing is audited or written (docs/advice.md: an
 * approval names who approved). Needs dist/ (npm test builds it first).
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditFiles, type AuditRecord } from '../../lib/zones/audit-log';
import { verifyAuditDir } from '../../lib/zones/audit-verify';
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { type AedesBroker, startAedes } from '../helpers/aedes';
import { bcryptHash, EditorGateway } from '../helpers/editor-gateway';

const ROOT = join(__dirname, '..', '..');
const USER = 'operator';
const PASSWORD = 'advice template test password';
const ADVICE = 'advice-node';
const INJECT = 'advice-inject';

/** Resolves once check() holds; after ms fails naming what it waited for and what it saw last. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000, context = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The advice audit records, oldest first (one JSON record a line). */
function auditRecords(dir: string): AuditRecord[] {
  if (!existsSync(dir)) return [];
  return auditFiles(dir).flatMap(({ name }) => readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditRecord));
}

describe('guarded-advice template in the built gateway with adminAuth', function () {
  this.timeout(120_000);
  let plant: SimulatedPlantHandle;
  let broker: AedesBroker;
  let gateway: EditorGateway | undefined;
  let dir: string;
  let auditDir: string;

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'nodes', 'advice', 'advice.js')), 'dist/ is missing: run node scripts/build.mjs first (npm test does)');
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    broker = await startAedes();
    dir = mkdtempSync(join(tmpdir(), 'uns-advice-template-'));
    const userDir = join(dir, 'node-red');
    auditDir = join(userDir, 'uns-edge-advice-audit');
    const flows = join(dir, 'flows.json');
    copyFileSync(join(ROOT, 'flows', 'guarded-advice.json'), flows);
    gateway = await EditorGateway.start({
      flows,
      userDir,
      env: {
        UNS_EDGE_ADMIN_USER: USER,
        UNS_EDGE_ADMIN_PASSWORD_HASH: bcryptHash(PASSWORD),
        UNS_EDGE_SIM_HOST: '127.0.0.1',
        UNS_EDGE_SIM_PORT: String(plant.port),
        UNS_EDGE_MQTT_HOST: '127.0.0.1',
        UNS_EDGE_MQTT_PORT: String(broker.port),
      },
      readyMs: 45_000,
    });
  });

  after(async () => {
    await gateway?.stop();
    await broker?.close();
    await plant?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a logged-in operator approves the proposal the inject makes; the drive is written and the audit names both; anonymous requests are refused', async () => {
    const output = () => `\ngateway output:\n${gateway!.output}`;
    const api = (path: string) => new URL(path, gateway!.url);
    const token = await gateway!.login(USER, PASSWORD);
    const authorized = { Authorization: `Bearer ${token}` };
    const asJson = { 'Content-Type': 'application/json' };
    const pendingList = async (): Promise<Response> => fetch(api(`uns-edge/advice/${ADVICE}/pending`), { headers: authorized });

    await until('the flows deployed (the uns-advice admin API answers)', async () => (await pendingList()).status === 200, 45_000, output);
    await until('the drive polled once', () => plant.drives[0].setpointRpm > 0, 30_000, output);
    const before = plant.drives[0].setpointRpm;
    assert.notEqual(before, 1250, 'the plant does not already run at the proposed speed');

    const pressed = await fetch(api(`inject/${INJECT}`), { method: 'POST', headers: authorized });
    assert.equal(pressed.status, 200, 'the inject button');
    let pending: Array<{ id: string; setpoint: number; principal: string }> = [];
    await until('the proposal pending', async () => {
      pending = ((await (await pendingList()).json()) as { pending: typeof pending }).pending;
      return pending.length > 0;
    }, 30_000, output);
    assert.equal(pending.length, 1);
    const [proposal] = pending;
    assert.equal(proposal.principal, 'flow:speed-model');
    assert.equal(proposal.setpoint, 1250);

    // Without a login Node-RED refuses before uns-advice sees the request: nothing is audited or written.
    const anonymousRead = await fetch(api(`uns-edge/advice/${ADVICE}/pending`));
    assert.equal(anonymousRead.status, 401, 'reading the proposals needs a login');
    const anonymousApproval = await fetch(api(`uns-edge/advice/${ADVICE}/decide`), { method: 'POST', headers: asJson, body: JSON.stringify({ id: proposal.id, decision: 'approve' }) });
    assert.equal(anonymousApproval.status, 401, 'approving needs a login');
    assert.deepEqual(auditRecords(auditDir).filter((r) => r.proposalId === proposal.id).map((r) => r.result), ['proposed'], 'the refused approval left no audit record');
    assert.equal(((await (await pendingList()).json()) as { pending: unknown[] }).pending.length, 1, 'the proposal still waits');
    assert.equal(plant.drives[0].setpointRpm, before, 'nothing was written');

    const decided = await fetch(api(`uns-edge/advice/${ADVICE}/decide`), { method: 'POST', headers: { ...authorized, ...asJson }, body: JSON.stringify({ id: proposal.id, decision: 'approve' }) });
    assert.equal(decided.status, 200, await decided.text());
    await until('the drive at 1250 rpm', () => plant.drives[0].setpointRpm === 1250, 30_000,
      () => `(setpoint ${plant.drives[0].setpointRpm} rpm; audit ${JSON.stringify(auditRecords(auditDir))})${output()}`);

    await until('the written step audited', () => auditRecords(auditDir).some((r) => r.proposalId === proposal.id && r.result === 'written'), 30_000, output);
    const steps = auditRecords(auditDir).filter((r) => r.proposalId === proposal.id);
    assert.deepEqual(steps.map((r) => r.result), ['proposed', 'approved', 'forwarded', 'written']);
    for (const step of steps) assert.equal(step.principal, 'flow:speed-model', `${step.result}: the proposer`);
    const approved = steps.find((r) => r.result === 'approved')!;
    assert.equal(approved.approver, `editor:${USER}`);
    assert.equal(approved.setpoint, 1250);
    const verified = verifyAuditDir(auditDir);
    assert.ok(verified.ok, JSON.stringify(verified.findings));
  });
});
