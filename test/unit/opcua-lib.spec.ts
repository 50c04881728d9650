/**
 * The pure parts of lib/opcua (no server): settings validation, failure classification (which side
 * refused), certificate checks, value conversion for tag batches and writes.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { checkServerCertificate, describeCertificate } from '../../lib/opcua/certificates';
import { classifyFailure, needsAction } from '../../lib/opcua/errors';
import { applicationPki } from '../../lib/opcua/pki';
import { settingsFrom, validateSettings, securityWarnings } from '../../lib/opcua/settings';
import { DEFAULT_QUEUE_SIZE, monitoredMetricProblems, queueSizeProblem } from '../../lib/opcua/subscriber';
import { BuiltInType, coerceForWrite, fromVariant, qualityOf } from '../../lib/opcua/values';
import { makeCertificate } from '../helpers/opcua-client-harness';

describe('lib/opcua settings', () => {
  it('defaults to SignAndEncrypt + Basic256Sha256, anonymous, no TOFU, keep-alive 2 s', () => {
    const s = settingsFrom({ endpointUrl: 'opc.tcp://plc:4840' });
    assert.deepEqual([s.securityMode, s.securityPolicy, s.identity.type, s.trustOnFirstUse, s.keepAliveIntervalMs], ['SignAndEncrypt', 'Basic256Sha256', 'anonymous', false, 2000]);
    assert.deepEqual(validateSettings(s), []);
  });
  it('refuses deprecated policies without the tick, None policy with a secure mode, and non-opc.tcp URLs', () => {
    assert.match(validateSettings(settingsFrom({ endpointUrl: 'opc.tcp://plc:4840', securityPolicy: 'Basic256' })).join(), /deprecated .*allow deprecated policy/);
    assert.deepEqual(validateSettings(settingsFrom({ endpointUrl: 'opc.tcp://plc:4840', securityPolicy: 'Basic128Rsa15', allowDeprecated: true })), []);
    assert.match(validateSettings(settingsFrom({ endpointUrl: 'opc.tcp://plc:4840', securityPolicy: 'None' })).join(), /policy None goes with security mode None only/);
    assert.match(validateSettings(settingsFrom({ endpointUrl: 'http://plc:4840' })).join(), /must start with opc\.tcp/);
    assert.match(validateSettings(settingsFrom({ endpointUrl: 'opc.tcp://plc', userIdentity: 'username' }, { user: '' })).join(), /user name is empty/);
  });
  it('warns about None, deprecated policies and trust on first use', () => {
    const w = securityWarnings(settingsFrom({ endpointUrl: 'opc.tcp://p', securityMode: 'None', securityPolicy: 'None', trustOnFirstUse: true }));
    assert.equal(w.length, 2);
    assert.match(w.join('\n'), /security mode None.*\n.*trust on first use/);
  });
});

describe('lib/opcua monitored item parameters', () => {
  it('queue size: default 10 (1 loses changes when two fall into one publishing cycle); a whole number 1..100000 per node and per row', () => {
    assert.equal(DEFAULT_QUEUE_SIZE, 10);
    assert.equal(queueSizeProblem(1), undefined);
    assert.equal(queueSizeProblem(100_000), undefined);
    for (const bad of [0, 2.5, -1, '10', NaN, 100_001]) assert.match(String(queueSizeProblem(bad)), /queue size must be a whole number/);
    // rows built in a function node come from another JS realm
    const rows = runInNewContext(`[{ name: 'a', nodeId: 'i=1', queueSize: 5, discardOldest: false }, { name: 'b', nodeId: 'i=2', queueSize: 2.5 }, { name: 'c', nodeId: 'i=3', discardOldest: 'yes' }]`);
    assert.deepEqual(monitoredMetricProblems(rows), ['metric 2 "b": queue size must be a whole number 1..100000', 'metric 3 "c": discardOldest must be true or false']);
  });
});

describe('lib/opcua failure classification (which side refused)', () => {
  const cases: Array<[string, string, string]> = [
    ['server Certificate verification failed with err BadCertificateUntrusted (0x801a0000)', 'server-certificate-untrusted', 'client'],
    ['server Certificate verification failed with err BadCertificateTimeInvalid (0x80140000)', 'server-certificate-time', 'client'],
    ['server Certificate verification failed with err BadCertificateRevoked', 'server-certificate-revoked', 'client'],
    ['The connection has been rejected by server: BadSecurityChecksFailed (0x80130000)', 'client-certificate-rejected', 'server'],
    ['cannot find endpoint for securityMode=None policy=None', 'endpoint-not-offered', 'configuration'],
    ['BadUserAccessDenied (0x801f0000)', 'access-denied', 'server'],
    ['BadIdentityTokenRejected', 'user-certificate-rejected', 'server'],
    ['connect ECONNREFUSED 127.0.0.1:4840', 'unreachable', 'network'],
  ];
  for (const [message, kind, side] of cases) {
    it(`${kind}: ${message.slice(0, 60)}`, () => {
      const f = classifyFailure(new Error(message));
      assert.deepEqual([f.kind, f.side], [kind, side]);
    });
  }
  it('certificate, identity and policy refusals need a person; unreachable does not', () => {
    assert.equal(needsAction(classifyFailure(new Error('BadSecurityChecksFailed'))), true);
    assert.equal(needsAction(classifyFailure(new Error('ECONNREFUSED'))), false);
  });
});

describe('lib/opcua certificate checks', function () {
  this.timeout(30_000);
  it('names thumbprint, application URI and hosts; refuses a wrong URI, host and validity; warns 30 days ahead', async () => {
    const soon = await makeCertificate({ applicationUri: 'urn:plc:server', dns: ['plc.local'], startDate: new Date(Date.now() - 340 * 86_400_000), validityDays: 350 });
    const info = describeCertificate(soon.der);
    assert.equal(info.applicationUri, 'urn:plc:server');
    assert.deepEqual(info.dnsNames, ['plc.local']);
    assert.match(info.thumbprint, /^[0-9a-f]{40}$/);
    const ok = checkServerCertificate(soon.der, { host: 'plc.local', applicationUri: 'urn:plc:server' });
    assert.deepEqual(ok.problems, []);
    assert.ok(ok.expiresSoon && ok.expiresSoon.days <= 10, JSON.stringify(ok));
    const bad = checkServerCertificate(soon.der, { host: '10.0.0.9', applicationUri: 'urn:other', now: Date.now() + 30 * 86_400_000 });
    assert.deepEqual(bad.problems.map((p) => p.kind), ['expired', 'uri-mismatch', 'hostname-mismatch']);
  });
});

describe('lib/opcua values', () => {
  it('StatusCode classes → quality (Part 4 §7.39.1)', () => {
    assert.equal(qualityOf(0), 'good');
    assert.equal(qualityOf(0x40000000), 'uncertain');
    assert.equal(qualityOf(0x80340000), 'bad');
  });
  it('Variant → tag value: Int64 beyond 2^53 as BigInt, arrays and NaN refused', () => {
    assert.deepEqual(fromVariant({ dataType: BuiltInType.Int64, value: [0x7fffffff, 0xffffffff] }), { ok: true, value: 9223372036854775807n, type: 'Int64' });
    assert.deepEqual(fromVariant({ dataType: BuiltInType.Int64, value: [0xffffffff, 0xfffffffe] }), { ok: true, value: -2, type: 'Int64' });
    assert.equal(fromVariant({ dataType: BuiltInType.Double, value: NaN }).ok, false);
    assert.equal(fromVariant({ dataType: BuiltInType.Double, arrayType: 1, value: [1, 2] }).ok, false);
  });
  it('write coercion: strict types, integer ranges, Float range, EURange, BigInt to 64-bit words', () => {
    const int32 = { builtIn: BuiltInType.Int32 };
    assert.deepEqual(coerceForWrite(5, int32), { ok: true, value: 5, display: '5' });
    for (const v of ['5', 1.5, 2 ** 31, NaN, true, null, {}]) assert.equal(coerceForWrite(v, int32).ok, false, String(v));
    assert.equal(coerceForWrite(-1, { builtIn: BuiltInType.UInt16 }).ok, false);
    assert.equal(coerceForWrite(1e39, { builtIn: BuiltInType.Float }).ok, false);
    assert.equal(coerceForWrite(1500.0001, { builtIn: BuiltInType.Double, euRange: { low: 0, high: 1500 } }).ok, false);
    assert.equal(coerceForWrite(1500, { builtIn: BuiltInType.Double, euRange: { low: 0, high: 1500 } }).ok, true);
    assert.deepEqual(coerceForWrite(-1n, { builtIn: BuiltInType.Int64 }), { ok: true, value: [0xffffffff, 0xffffffff], display: '-1' });
    assert.equal(coerceForWrite(runInNewContext('1 === 1'), { builtIn: BuiltInType.Boolean }).ok, true);
  });
  it('a DateTime write takes a Date built in a function node (another realm); an invalid Date is refused', () => {
    const dateTime = { builtIn: BuiltInType.DateTime };
    const coerced = coerceForWrite(runInNewContext('new Date(Date.UTC(2026, 0, 2, 3, 4, 5))'), dateTime);
    assert.ok(coerced.ok, JSON.stringify(coerced));
    assert.equal(coerced.display, '2026-01-02T03:04:05.000Z');
    assert.ok(coerced.value instanceof Date && coerced.value.getTime() === Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(coerceForWrite(runInNewContext('new Date(NaN)'), dateTime).ok, false);
  });
});

describe('nodes/opcua start cost', function () {
  this.timeout(60_000);
  it('loading the node set does not load node-opcua (it is loaded on first use only)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const script = "require('./nodes/opcua/opcua.ts'); process.stdout.write(String(Object.keys(require.cache).filter((k) => /node_modules\\/node-opcua/.test(k)).length))";
    const loaded = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: `${__dirname}/../..`, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.equal(loaded.trim().split('\n').pop(), '0');
  });
});

describe('lib/opcua PKI lock left by a killed process', function () {
  this.timeout(60_000);

  it('the first initialisation of a locked folder says so once, naming the lock and its age, then goes on once the lock is stale', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'uns-pki-lock-')), 'pki');
    // What a gateway killed during its PKI's first initialisation leaves: node-opcua-pki's lock directory, no longer refreshed.
    const lock = join(root, 'mutex.lock');
    mkdirSync(lock, { recursive: true });
    const leftAt = new Date(Date.now() - 117_000);
    utimesSync(lock, leftAt, leftAt);
    const notices: string[] = [];
    const started = Date.now();
    const pki = await applicationPki(root, (message) => notices.push(message));
    assert.equal(notices.length, 1, notices.join('\n'));
    assert.match(notices[0], new RegExp(`^the PKI folder ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is locked \\(.*mutex\\.lock, refreshed 1[12]\\d s ago\\): waiting for the process that holds it, at most ~\\d+ s more if that process was killed`));
    assert.ok(Date.now() - started >= 1000, 'it waited for the lock to go stale');
    assert.ok(existsSync(pki.certificateFile), 'then created the application certificate');
    // The same folder again in this process: the initialised PKI, no second notice.
    await applicationPki(root, (message) => notices.push(message));
    assert.equal(notices.length, 1);
    await pki.dispose();
  });
});
