/**
 * The `uns-opcua-endpoint` config node in a Node-RED runtime (node-red-node-test-helper) against real
 * node-opcua servers on loopback, SignAndEncrypt: what issue 9 asks of the endpoint and the audit found
 * untested — one session shared by every node of an endpoint and released with the last one, one
 * subscription per publishing interval, Reject and Remove in the trust assistant, the expiry warning
 * logged once, one log line per outage and one on recovery, source and server timestamps in the tag batch.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opcua from 'node-opcua';
import opcuaNodes = require('../../nodes/opcua/opcua');
import type { OpcUaConnection } from '../../lib/opcua/connection';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { makeCertificate, tempDir } from '../helpers/opcua-client-harness';
import { startServerProcess, ServerProcess } from '../helpers/opcua-server-process';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';
import { helper, type Status } from '../helpers/node-red-runtime';

interface TrustEntry { thumbprint: string; status: string }

const until = async (what: string, pred: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('uns-opcua-endpoint in a Node-RED runtime (real node-opcua servers)', function () {
  this.timeout(120_000);
  let server: TestServer | undefined;
  let userDir: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  const endpoint = (endpointUrl: string) => ({ id: 'ep', type: 'uns-opcua-endpoint', endpointUrl, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', maxBackoff: 1000, keepAliveInterval: 1000, requestTimeout: 3000 });
  const subscriber = (id: string, publishingInterval: number, nodeId = 'ns=1;s=Drive1.Speed') =>
    ({ id, type: 'uns-opcua-subscribe', endpoint: 'ep', topic: `acme/plant/area/line/cell/${id}`, publishingInterval, samplingInterval: 100, metrics: [{ name: 'value', nodeId }], wires: [['out']] });
  const reader = (id: string) => ({ id, type: 'uns-opcua-read', endpoint: 'ep', topic: 'acme/plant/area/line/cell/reader', metrics: [{ name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }], wires: [['out']] });

  const trustList = async () => (await helper.request().get('/uns-opcua-endpoint/trust')).body.certificates as TrustEntry[];
  const trustAction = (thumbprint: string, action: string) => helper.request().post(`/uns-opcua-endpoint/trust/${thumbprint}/${action}`).send({});
  /** Trust every rejected server certificate through the admin endpoint (the trust tab's button). */
  const trustRejected = async () => {
    await until('a rejected server certificate', async () => (await trustList()).some((c) => c.status === 'rejected'));
    for (const c of await trustList()) if (c.status === 'rejected') assert.equal((await trustAction(c.thumbprint, 'trust')).status, 200);
  };
  /** The calls of one node's status/log/warn (the helper spies on Node.prototype: every node's calls are in one spy). */
  const callsOf = (id: string, method: 'status' | 'log' | 'warn') => {
    const node = helper.getNode(id);
    return node[method].getCalls().filter((c) => c.thisValue === node);
  };
  const lastStatus = (id: string) => callsOf(id, 'status').map((c) => c.args[0] as Status).at(-1);
  const lines = (id: string, method: 'log' | 'warn') => callsOf(id, method).map((c) => String(c.args[0]));
  const count = (id: string, method: 'log' | 'warn', text: string) => lines(id, method).filter((l) => l === text).length;
  const pkiFolder = () => join(userDir, 'uns-edge', 'opcua', 'pki');
  const certificateFiles = (folder: string) => (existsSync(folder) ? readdirSync(folder) : []);

  beforeEach(async () => {
    // A user dir (so a PKI) of its own per test: no certificate trusted or rejected by an earlier one.
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-endpoint-userdir-'));
    helper.settings({ userDir });
    cleanups.push(async () => rmSync(userDir, { recursive: true, force: true }));
    await new Promise<void>((r) => helper.startServer(() => r()));
  });
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await server?.dispose();
    server = undefined;
  });

  it('one session for every node of an endpoint, one subscription per publishing interval; the session ends with the last node', async () => {
    server = await startTestServer({ trustAllClients: true });
    const flow = [endpoint(server.endpointUrl), subscriber('sub1', 500), subscriber('sub2', 500, 'ns=1;s=Drive1.Current'), reader('r'), { id: 'out', type: 'helper' }];
    await helper.load(opcuaNodes, flow);
    await trustRejected();
    await until('both subscribers green', () => ['sub1', 'sub2'].every((id) => lastStatus(id)?.fill === 'green'));
    await until('2 monitored items', () => server!.monitoredItemCount() === 2);
    assert.equal(server.sessionCount(), 1, 'two subscribers and a reader share one session');
    assert.equal(server.subscriptionCount(), 1, 'two subscribers at 500 ms share one subscription');

    // A third subscriber at 1000 ms, deployed as a modified node: same session, a second subscription.
    await helper.setFlows([...flow, subscriber('sub3', 1000, 'ns=1;s=Drive1.Mode')], 'nodes');
    await until('3 monitored items', () => server!.monitoredItemCount() === 3);
    assert.equal(server.subscriptionCount(), 2, 'one subscription per publishing interval');
    assert.equal(server.sessionCount(), 1);

    // sub2 leaves: its items go, the 500 ms subscription stays for sub1.
    await helper.setFlows([endpoint(server.endpointUrl), subscriber('sub1', 500), reader('r'), subscriber('sub3', 1000, 'ns=1;s=Drive1.Mode'), { id: 'out', type: 'helper' }], 'nodes');
    await until('2 monitored items', () => server!.monitoredItemCount() === 2);
    assert.equal(server.subscriptionCount(), 2);
    assert.equal(server.sessionCount(), 1);

    // Every user removed, the endpoint itself unchanged (a "modified nodes" deploy does not restart it): no session left.
    await helper.setFlows([endpoint(server.endpointUrl), { id: 'out', type: 'helper' }], 'nodes');
    await until('no session', () => server!.sessionCount() === 0, 10_000);
    assert.equal(server.subscriptionCount(), 0);

    // A node comes back: the endpoint opens one session again; a full redeploy (close) releases it.
    await helper.setFlows([endpoint(server.endpointUrl), reader('r'), { id: 'out', type: 'helper' }], 'nodes');
    await until('one session again', () => server!.sessionCount() === 1);
    await helper.unload();
    await until('no session after close', () => server!.sessionCount() === 0, 10_000);
  });

  it('trust assistant: Reject moves a trusted certificate to rejected/ and Remove deletes it; each drops the connection, which stays refused', async () => {
    const refusedStatus = { fill: 'red', shape: 'dot', text: 'opcua.status.we-refused-server' };
    /** CreateSession requests the server has answered since it started (one closed at once counts too). */
    const sessionsCreated = () => server!.server.engine.cumulatedSessionCount;
    /** Every state the endpoint's connection has gone through (its 'state' events: what the node statuses show). */
    const states: string[] = [];
    /**
     * While refused the endpoint keeps retrying (maxBackoff 1 s), so that trusting the certificate connects
     * without a redeploy: each retry is 'connecting' until the server's certificate is refused again. So
     * "stays refused" is: from the trust action on (`since`, an index into `states`), refused, then two
     * retries each refused again, and the node's status the refusal when the last one has ended; never
     * connected, and no session created on the server meanwhile.
     */
    const staysRefused = async (since: number, sessionsBefore: number, statusesBefore: number) => {
      const after = () => states.slice(since);
      const retriesAfterRefusal = () => (after().includes('refused') ? after().slice(after().indexOf('refused')).filter((s) => s === 'connecting').length : 0);
      await until('two retries after the refusal, each refused again', () => retriesAfterRefusal() >= 2 && after().at(-1) === 'refused');
      assert.deepEqual(lastStatus('r'), refusedStatus);
      // The retries do not make the status flicker: once red (refused), it stays red through them.
      const shown = callsOf('r', 'status').slice(statusesBefore).map((c) => (c.args[0] as Status).text);
      const shownAfterRefusal = shown.slice(shown.indexOf(refusedStatus.text));
      assert.ok(shown.includes(refusedStatus.text) && shownAfterRefusal.every((text) => text === refusedStatus.text), `statuses since: ${shown.join(' → ')}`);
      assert.ok(!after().includes('connected'), `never connected: ${after().join(' → ')}`);
      assert.equal(sessionsCreated(), sessionsBefore, 'no session created since');
      assert.equal(server!.sessionCount(), 0);
    };
    server = await startTestServer({ trustAllClients: true });
    await helper.load(opcuaNodes, [endpoint(server.endpointUrl), reader('r')]);
    (helper.getNode('ep') as { connection: OpcUaConnection }).connection.on('state', (state: string) => states.push(state));
    await trustRejected();
    await until('connected', () => lastStatus('r')?.fill === 'green');
    assert.equal(server.sessionCount(), 1);
    const [entry] = (await trustList()).filter((c) => c.status === 'trusted');
    assert.ok(entry, 'the server certificate is trusted');
    const trustedFolder = join(pkiFolder(), 'trusted', 'certs');
    const rejectedFolder = join(pkiFolder(), 'rejected');
    const named = (files: string[]) => files.some((f) => f.includes(entry.thumbprint));

    // Reject: the certificate moves to rejected/, the session in use ends, the endpoint refuses the server.
    const sinceReject = states.length;
    const statusesBeforeReject = callsOf('r', 'status').length;
    const sessionsBeforeReject = sessionsCreated();
    const rejected = await trustAction(entry.thumbprint, 'reject');
    assert.equal(rejected.status, 200);
    assert.equal((rejected.body.certificate as TrustEntry).status, 'rejected');
    assert.ok(!named(certificateFiles(trustedFolder)), 'no longer in trusted/certs');
    assert.ok(named(certificateFiles(rejectedFolder)), 'in rejected/');
    assert.deepEqual((await trustList()).filter((c) => c.thumbprint === entry.thumbprint).map((c) => c.status), ['rejected']);
    await until('the session ended', () => server!.sessionCount() === 0, 10_000);
    await staysRefused(sinceReject, sessionsBeforeReject, statusesBeforeReject);

    // Trust again → connected; Remove: deleted from trusted/, the session ends, refused; offered again it waits in rejected/.
    assert.equal((await trustAction(entry.thumbprint, 'trust')).status, 200);
    await until('connected again', () => lastStatus('r')?.fill === 'green' && server!.sessionCount() === 1);
    const sinceRemove = states.length;
    const statusesBeforeRemove = callsOf('r', 'status').length;
    const sessionsBeforeRemove = sessionsCreated();
    const removed = await trustAction(entry.thumbprint, 'remove');
    assert.equal(removed.status, 200);
    assert.equal((removed.body.certificate as TrustEntry).status, 'removed');
    assert.ok(!named(certificateFiles(trustedFolder)), 'no longer in trusted/certs');
    await until('the session ended', () => server!.sessionCount() === 0, 10_000);
    await staysRefused(sinceRemove, sessionsBeforeRemove, statusesBeforeRemove);
    assert.deepEqual((await trustList()).filter((c) => c.thumbprint === entry.thumbprint).map((c) => c.status), ['rejected']);
  });

  it('a server certificate that expires within 30 days: the warning is logged once, also across reconnects', async () => {
    const soon = await makeCertificate({ applicationUri: 'urn:localhost:uns-edge-test-server', startDate: new Date(Date.now() - 355 * 86_400_000), validityDays: 365 });
    server = await startTestServer({ trustAllClients: true, certificateFile: soon.certificateFile, privateKeyFile: soon.privateKeyFile });
    await helper.load(opcuaNodes, [endpoint(server.endpointUrl), reader('r'), reader('r2')]);
    await trustRejected();
    await until('connected and yellow', () => lastStatus('r')?.text === 'opcua.status.expiring');
    const expiryLines = () => lines('ep', 'warn').filter((l) => /certificate .* expires in/.test(l));
    assert.deepEqual(expiryLines(), [`server certificate ${soon.thumbprint} expires in ${Math.floor((Date.parse(soon.validTo) - Date.now()) / 86_400_000)} days (${soon.validTo})`]);
    // Twice: the certificate rejected and trusted again (each time a new secure channel and session, whose checks see
    // the same certificate again): still one line.
    for (let i = 0; i < 2; i++) {
      const restored = count('ep', 'log', 'opcua.log.restored');
      assert.equal((await trustAction(soon.thumbprint, 'reject')).status, 200);
      await until('refused', () => lastStatus('r')?.text === 'opcua.status.we-refused-server' && server!.sessionCount() === 0);
      assert.equal((await trustAction(soon.thumbprint, 'trust')).status, 200);
      await until('reconnected', () => count('ep', 'log', 'opcua.log.restored') > restored && server!.sessionCount() === 1);
    }
    assert.equal(expiryLines().length, 1, expiryLines().join('\n'));
    assert.equal(lastStatus('r2')?.text, 'opcua.status.expiring');
  });

  it('server killed and restarted: exactly one log line for the outage and one for the recovery', async () => {
    const serverPki = tempDir('uns-opcua-srv-');
    let process: ServerProcess = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true });
    const port = process.port;
    cleanups.push(() => process.kill());
    await helper.load(opcuaNodes, [endpoint(process.endpointUrl), subscriber('sub1', 200), reader('r'), { id: 'out', type: 'helper' }]);
    await trustRejected();
    const out = helper.getNode('out');
    let lastGood = 0;
    out.on('input', (m) => {
      const batch = m as TagBatch;
      if (batch.topic.endsWith('sub1') && batch.meta?.value?.quality === 'good') lastGood = Date.now();
    });
    await until('data', () => lastGood > 0);
    // The first refusal (our side did not trust the server yet) was an outage of its own, and its end a recovery.
    const outagesBefore = count('ep', 'warn', 'opcua.log.outage');
    const restoredBefore = count('ep', 'log', 'opcua.log.restored');
    assert.equal(outagesBefore, restoredBefore);

    await process.kill();
    await until('outage seen', () => lastStatus('sub1')?.fill !== 'green');
    await new Promise((r) => setTimeout(r, 4000)); // several reconnect attempts while the server is down
    process = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, port });
    const back = Date.now();
    await until('data again', () => lastGood > back);
    await new Promise((r) => setTimeout(r, 3000)); // let any late repair (session, subscription transfer) finish
    assert.equal(await process.ask('sessions'), 1);
    assert.equal(count('ep', 'warn', 'opcua.log.outage') - outagesBefore, 1, lines('ep', 'warn').join('\n'));
    assert.equal(count('ep', 'log', 'opcua.log.restored') - restoredBefore, 1, lines('ep', 'log').join('\n'));
    // The nodes that use the endpoint log nothing of their own about it.
    for (const id of ['sub1', 'r']) assert.deepEqual(lines(id, 'warn'), [], id);
  });

  it('source and server timestamps: meta.timestamp is the source timestamp, meta.serverTimestamp the server\'s (subscribe and read)', async () => {
    server = await startTestServer({ trustAllClients: true });
    await helper.load(opcuaNodes, [endpoint(server.endpointUrl), subscriber('sub1', 200, 'ns=1;s=Drive1.Mode'), reader('r'), { id: 'out', type: 'helper' }]);
    await trustRejected();
    await until('connected', () => lastStatus('r')?.fill === 'green');
    const sourceTime = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000); // an hour ago, whole seconds
    const changed = Date.now();
    const batches: TagBatch[] = [];
    helper.getNode('out').on('input', (m) => batches.push(m as TagBatch));
    // As a gateway server passes on a device's value: the device's time as source timestamp, its own on receipt.
    const written = await (server.server.engine.addressSpace!.findNode('ns=1;s=Drive1.Mode') as opcua.UAVariable).writeValue(opcua.SessionContext.defaultContext,
      new opcua.DataValue({ value: { dataType: opcua.DataType.Int32, value: 42 }, sourceTimestamp: sourceTime, serverTimestamp: new Date() }));
    assert.equal(written.name, 'Good');
    await until('the change notified', () => batches.some((b) => b.topic.endsWith('sub1') && b.payload.value === 42));
    const notified = batches.find((b) => b.topic.endsWith('sub1') && b.payload.value === 42)!;
    const meta = notified.meta!.value as { timestamp: number; serverTimestamp?: number };
    assert.equal(meta.timestamp, sourceTime.getTime());
    assert.equal(typeof meta.serverTimestamp, 'number', JSON.stringify(meta));
    assert.ok(meta.serverTimestamp! >= changed - 1000 && meta.serverTimestamp! <= Date.now() + 1000, `server timestamp ${meta.serverTimestamp} is the time of the change`);

    helper.getNode('r').receive({ payload: 'go' });
    await until('read', () => batches.some((b) => b.topic.endsWith('reader')));
    const read = batches.find((b) => b.topic.endsWith('reader'))!;
    assert.equal(read.payload.mode, 42);
    const readMeta = read.meta!.mode as { timestamp: number; serverTimestamp?: number };
    assert.equal(readMeta.timestamp, sourceTime.getTime());
    assert.equal(typeof readMeta.serverTimestamp, 'number', JSON.stringify(readMeta));
    assert.ok(readMeta.serverTimestamp! > sourceTime.getTime());
  });
});
