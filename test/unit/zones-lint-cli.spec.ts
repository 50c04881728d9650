/**
 * `uns-edge check-zones flows.json [--strict] [--settings FILE]` as an integrator's CI runs it
 * (cli/uns-edge.ts from source through tsx): one line per finding on stdout, exit 0 clean,
 * 1 findings, 2 bad input with a message that says what the file is not; the encrypted
 * flows_cred.json beside the flows is read with UNS_EDGE_CREDENTIAL_SECRET.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsFileOf, decryptCredentials } from '../../lib/zones/lint-files';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'zones-lint');

function checkZones(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'uns-edge.ts'), 'check-zones', ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, UNS_EDGE_CREDENTIAL_SECRET: '', ...env }, timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, lines: result.stdout.split('\n').filter(Boolean) };
}

/** As Node-RED's runtime/lib/nodes/credentials.js writes flows_cred.json with a credentialSecret. */
function encryptCredentials(credentials: object, secret: string): { $: string } {
  const key = createHash('sha256').update(secret).digest();
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  return { $: iv.toString('hex') + cipher.update(JSON.stringify(credentials), 'utf8', 'base64') + cipher.final('base64') };
}

/** A DMZ zone with SL-T(IAC) 2 and a TLS broker that authenticates only by its user. */
const DMZ_FLOWS = [
  { id: 't1', type: 'tab', label: 'DMZ' },
  { id: 'z', type: 'uns-zone', name: 'dmz', level: '3.5', slt: '2,1,1,1,1,1,1' },
  { id: 'b', type: 'uns-broker', host: 'broker.dmz', port: 8883, usetls: true, zone: 'z' },
  { id: 'o', type: 'uns-out', z: 't1', broker: 'b', x: 100, y: 100, wires: [] },
];

describe('uns-edge check-zones', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'uns-check-zones-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints one line per finding and exits 1', () => {
    const { status, lines, stderr } = checkZones([join(FIXTURES, 'crossing.json')]);
    assert.equal(status, 1, stderr);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^error zone-crossing: "setpoints from MES" \(uns-in it-in\) on tab "Cell 1" in zone "enterprise" \(L4\) reaches "drive 1" \(uns-vfd vfd\) on tab "Cell 1" in zone "cell-1" \(L1\) without a conduit \(setpoints from MES → scale → drive 1\)$/);
    assert.match(stderr, /1 error, 0 warnings/);
  });

  it('exits 0 on flows without findings', () => {
    const file = join(dir, 'same-zone.json');
    writeFileSync(file, JSON.stringify(DMZ_FLOWS.map((entry) => (entry.id === 'z' ? { ...entry, slt: '1,1,1,1,1,1,1' } : entry))));
    const { status, stdout, stderr } = checkZones([file]);
    assert.equal(status, 0, stderr);
    assert.equal(stdout, '');
  });

  it('exits 2 with a clear message for a file that is not a flows file, or not JSON', () => {
    const notFlows = checkZones([join(ROOT, 'package.json')]);
    assert.equal(notFlows.status, 2);
    assert.match(notFlows.stderr, /package\.json: not a Node-RED flows file: expected a JSON array of nodes, got an object/);
    const notJson = join(dir, 'flows.txt');
    writeFileSync(notJson, 'flows: yes');
    const broken = checkZones([notJson]);
    assert.equal(broken.status, 2);
    assert.match(broken.stderr, /flows\.txt: not JSON/);
    const missing = checkZones([join(dir, 'nowhere.json')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /ENOENT/);
    const usage = checkZones([]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /check-zones takes 1 file argument\(s\), got 0/);
  });

  it('--strict fails on warnings; the encrypted credentials decide whether the broker authenticates', () => {
    const flowsDir = mkdtempSync(join(dir, 'dmz-'));
    const flows = join(flowsDir, 'flows.json');
    writeFileSync(flows, JSON.stringify(DMZ_FLOWS));
    // Without a credentials file nothing has a user: an error.
    assert.match(checkZones([flows]).lines[0]!, /^error no-authentication: \(uns-broker b\) connects without a user or client certificate, but zone "dmz" has SL-T\(IAC\) 2$/);
    const secret = 'ci-secret-0123456789';
    assert.equal(credentialsFileOf(flows), join(flowsDir, 'flows_cred.json'));
    writeFileSync(credentialsFileOf(flows), JSON.stringify(encryptCredentials({ b: { user: 'gw-dmz', password: 'x' } }, secret)));
    assert.deepEqual(decryptCredentials(encryptCredentials({ a: { user: 'u' } }, secret).$, secret), { a: { user: 'u' } });
    // Encrypted and no secret: not known, a warning, which only --strict fails on.
    const unknown = checkZones([flows]);
    assert.equal(unknown.status, 0, unknown.stderr);
    assert.match(unknown.lines[0]!, /^warning authentication-unknown:/);
    assert.match(unknown.stderr, /flows_cred\.json is encrypted and UNS_EDGE_CREDENTIAL_SECRET is not set/);
    assert.equal(checkZones([flows, '--strict']).status, 1);
    // With the gateway's secret the user is read: clean, even strict.
    const known = checkZones([flows, '--strict'], { UNS_EDGE_CREDENTIAL_SECRET: secret });
    assert.equal(known.status, 0, known.stdout + known.stderr);
    assert.deepEqual(known.lines, []);
  });

  it('--settings: an editor without adminAuth reaching an SL-T(IAC) 2 zone', () => {
    const flows = join(dir, 'dmz-cert.json');
    writeFileSync(flows, JSON.stringify(DMZ_FLOWS.map((entry) => (entry.id === 'b' ? { ...entry, tlsCert: '/etc/uns/gw.crt', tlsKey: '/etc/uns/gw.key' } : entry))));
    const settings = join(dir, 'settings.json');
    writeFileSync(settings, JSON.stringify({ uiHost: '0.0.0.0' }));
    const open = checkZones([flows, '--settings', settings]);
    assert.equal(open.status, 1);
    assert.match(open.lines[0]!, /^error editor-without-admin-auth: the editor has no adminAuth, but the flows reach zone "dmz" with SL-T\(IAC\) 2/);
    const guarded = join(dir, 'settings.js');
    writeFileSync(guarded, "module.exports = { uiHost: '0.0.0.0', adminAuth: { type: 'credentials', users: [] } };\n");
    assert.equal(checkZones([flows, '--settings', guarded]).status, 0);
  });
});
