/**
 * uns-advice in a Node-RED runtime without adminAuth (node-red-node-test-helper): the editor's
 * approve request comes in as `editor:anonymous`, which never approves even with `editor:*` on the
 * approver list (refused, audited, nothing sent); a proposal it may reject. A node whose settings are
 * refused at start does not keep the audit folder open.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import adviceNodes = require('../../nodes/advice/advice');
import { helper } from '../helpers/node-red-runtime';

const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';

function proposal(id: string) {
  return { topic: ASSET, principal: { via: 'mqtt', id: 'mqtt:llm-agent' }, payload: { id, setpoint: 900, reason: 'load forecast', timestamp: Date.now() } };
}

describe('uns-advice: the editor without adminAuth', () => {
  let dir: string;
  before((done) => { helper.startServer(done); });
  after((done) => { helper.stopServer(done); });
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'uns-advice-admin-')); });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  function flow(extra: Record<string, unknown> = {}) {
    return [
      { id: 'a', type: 'uns-advice', name: 'advice', mode: 'approval', approvers: 'editor:*', auditDir: dir, wires: [['writes'], ['events']], z: 'f1', ...extra },
      { id: 'writes', type: 'helper', z: 'f1' },
      { id: 'events', type: 'helper', z: 'f1' },
      { id: 'f1', type: 'tab' },
    ];
  }

  it('editor:anonymous never approves, even with editor:* on the list: 403 naming adminAuth, audited, nothing written; it may reject', async () => {
    await helper.load([adviceNodes], flow());
    const writes: unknown[] = [];
    helper.getNode('writes').on('input', (msg) => writes.push(msg));
    const advice = helper.getNode('a');
    advice.receive(proposal('p1'));
    advice.receive(proposal('p2'));
    const approve = await helper.request().post<{ error: string }>('/uns-edge/advice/a/decide').send({ id: 'p1', decision: 'approve' });
    assert.equal(approve.status, 403);
    assert.match(approve.body.error, /anonymous editor users cannot approve: turn on adminAuth/);
    const reject = await helper.request().post('/uns-edge/advice/a/decide').send({ id: 'p2', decision: 'reject' });
    assert.equal(reject.status, 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(writes.length, 0);
    await helper.unload();
    const steps = readFileSync(join(dir, 'audit-000001.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((r) => [r.step, r.proposalId, r.approver ?? null]);
    assert.deepEqual(steps, [['proposed', 'p1', null], ['proposed', 'p2', null], ['refused', 'p1', 'editor:anonymous'], ['rejected', 'p2', 'editor:anonymous']]);
  });

  it('settings refused at start (approval mode without approvers): the audit file is not left open across deploys', async () => {
    const openOnAudit = () => readdirSync('/proc/self/fd').filter((fd) => {
      try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir); } catch { return false; }
    }).length;
    for (let deploy = 0; deploy < 3; deploy++) {
      await helper.load([adviceNodes], flow({ approvers: '' }));
      await helper.unload();
    }
    assert.equal(openOnAudit(), 0);
  });
});
