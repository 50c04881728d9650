/**
 * The admin endpoints of the OPC UA trust assistant, Discover and the address-space browser behind
 * Node-RED's permissions (issue 9): the built gateway with adminAuth (`uns-edge run` with
 * UNS_EDGE_ADMIN_USER / UNS_EDGE_ADMIN_PASSWORD_HASH) answers 401 to a request without a login, and
 * serves the trust list to a logged-in admin. Needs dist/ (npm test builds it first).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bcryptHash, EditorGateway } from '../helpers/editor-gateway';

const PASSWORD = 'opcua admin test password';
const THUMBPRINT = '0123456789abcdef0123456789abcdef01234567';

describe('OPC UA admin endpoints need a login (built gateway with adminAuth)', function () {
  this.timeout(90_000);
  let gateway: EditorGateway | undefined;
  let dir: string;

  before(async () => {
    assert.ok(existsSync(join(__dirname, '..', '..', 'dist', 'nodes', 'opcua', 'opcua.js')), 'dist/ is missing: run node scripts/build.mjs first (npm test does)');
    dir = mkdtempSync(join(tmpdir(), 'uns-opcua-auth-'));
    const flows = join(dir, 'flows.json');
    writeFileSync(flows, JSON.stringify([
      { id: 'tab', type: 'tab', label: 'OPC UA' },
      { id: 'ep', type: 'uns-opcua-endpoint', endpointUrl: 'opc.tcp://127.0.0.1:1', securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256' },
    ]));
    gateway = await EditorGateway.start({ flows, userDir: dir, env: { UNS_EDGE_ADMIN_USER: 'operator', UNS_EDGE_ADMIN_PASSWORD_HASH: bcryptHash(PASSWORD) }, readyMs: 45_000 });
  });

  after(async () => {
    await gateway?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without a login every trust, discover and browse request is refused with 401 and changes nothing; with one the trust list is served', async () => {
    const base = gateway!.url.replace(/\/$/, '');
    const requests: Array<[string, string, object?]> = [
      ['GET', '/uns-opcua-endpoint/trust'],
      ['GET', '/uns-opcua-endpoint/own-certificate.der'],
      ['POST', `/uns-opcua-endpoint/trust/${THUMBPRINT}/trust`, {}],
      ['POST', `/uns-opcua-endpoint/trust/${THUMBPRINT}/reject`, {}],
      ['POST', `/uns-opcua-endpoint/trust/${THUMBPRINT}/remove`, {}],
      ['POST', '/uns-opcua-endpoint/discover', { endpointUrl: 'opc.tcp://127.0.0.1:1' }],
      ['GET', '/uns-opcua-endpoint/ep/browse?nodeId=i%3D85'],
    ];
    for (const [method, path, body] of requests) {
      const response = await fetch(`${base}${path}`, { method, ...(body ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}) });
      assert.equal(response.status, 401, `${method} ${path}`);
    }
    const token = await gateway!.login('operator', PASSWORD);
    const authorized = { Authorization: `Bearer ${token}` };
    const list = await fetch(`${base}/uns-opcua-endpoint/trust`, { headers: authorized });
    assert.equal(list.status, 200);
    const body = (await list.json()) as { ok: boolean; own: { thumbprint: string }; certificates: unknown[] };
    assert.equal(body.ok, true);
    assert.match(body.own.thumbprint, /^[0-9a-f]{40}$/);
    assert.deepEqual(body.certificates, [], 'the refused requests changed nothing');
    const unknown = await fetch(`${base}/uns-opcua-endpoint/trust/${THUMBPRINT}/reject`, { method: 'POST', headers: { ...authorized, 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(unknown.status, 404, 'logged in, the request reaches the trust list');
  });
});
