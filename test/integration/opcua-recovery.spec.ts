/**
 * Self-healing of lib/opcua (connection + subscriber) against real node-opcua servers: killed and
 * restarted, session closed server-side, 30 s blackhole through a TCP proxy, address-space change.
 * Each: data resumes within 10 s of the server (or path) being back, and the server's monitored-item
 * count equals the configured count (no duplicates, no orphans).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toDer } from '../../lib/opcua/certificates';
import type { OpcUaConnection } from '../../lib/opcua/connection';
import { OpcUaSubscriber } from '../../lib/opcua/subscriber';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { newConnection, tempDir, trustBothWays, waitForState } from '../helpers/opcua-client-harness';
import { startServerProcess } from '../helpers/opcua-server-process';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';
import { startTcpProxy } from '../helpers/opcua-tcp-proxy';

const METRICS = [
  { name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' },
  { name: 'current', nodeId: 'ns=1;s=Drive1.Current' },
  { name: 'ghost', nodeId: 'ns=1;s=Drive1.Gone' },
];
const CONFIGURED_GOOD = 2;

describe('OPC UA recovery (real node-opcua servers)', function () {
  this.timeout(120_000);
  let connection: OpcUaConnection | undefined;
  let subscriber: OpcUaSubscriber | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];

  afterEach(async () => {
    await subscriber?.stop();
    await connection?.close();
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  function subscribe(endpointUrl: string, pkiRoot?: string) {
    const made = newConnection({ endpointUrl, keepAliveInterval: 1000, requestTimeout: 3000, maxBackoff: 2000 }, {}, pkiRoot);
    connection = made.connection;
    subscriber = new OpcUaSubscriber({ connection, topic: 'acme/p/a/l/c/drive1', metrics: METRICS, publishingInterval: 100, samplingInterval: 100, staleAfter: 2, reresolveMs: 1000 });
    const batches: Array<TagBatch & { at: number }> = [];
    subscriber.on('batch', (b: TagBatch) => batches.push({ ...b, at: Date.now() }));
    return { made, batches };
  }

  /** Resolve when a good `current` value arrives after `since`. */
  const goodDataAfter = (batches: Array<TagBatch & { at: number }>, since: number, ms = 10_000) => new Promise<number>((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const hit = batches.find((b) => b.at >= since && typeof b.payload.current === 'number' && b.meta?.current?.quality === 'good');
      if (hit) {
        clearInterval(poll);
        resolve(hit.at - since);
      } else if (Date.now() - started > ms) {
        clearInterval(poll);
        reject(new Error(`no good data within ${ms} ms`));
      }
    }, 20);
  });

  it('server killed (SIGKILL) and restarted on the same port: data back within 10 s, item count equals the configured count', async () => {
    const serverPki = tempDir('uns-opcua-srv-');
    let server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true });
    const port = server.port;
    cleanups.push(() => server.kill());
    const { made, batches } = subscribe(server.endpointUrl);
    const pki = await made.pki();
    await pki.certificateManager.trustCertificate(serverCertificate(serverPki));
    connection!.start();
    subscriber!.start();
    await waitForState(connection!, (s) => s === 'connected');
    await goodDataAfter(batches, 0);
    assert.equal(await server.ask('count'), CONFIGURED_GOOD);

    await server.kill();
    await waitForState(connection!, (s) => s !== 'connected');
    await new Promise((r) => setTimeout(r, 3000));
    server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, port });
    const back = Date.now();
    const resumedMs = await goodDataAfter(batches, back);
    assert.ok(resumedMs < 10_000, `data resumed ${resumedMs} ms after restart`);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await server.ask('count'), CONFIGURED_GOOD, 'no duplicate monitored items after recovery');
    assert.equal(await server.ask('sessions'), 1);
  });

  describe('in-process server', () => {
    let server: TestServer;
    beforeEach(async () => {
      server = await startTestServer({ trustAllClients: true });
      cleanups.push(() => server.dispose());
    });

    const connected = async (endpointUrl = server.endpointUrl) => {
      const s = subscribe(endpointUrl);
      await trustBothWays(await s.made.pki(), server);
      connection!.start();
      subscriber!.start();
      await waitForState(connection!, (st) => st === 'connected');
      await goodDataAfter(s.batches, 0);
      return s;
    };

    it('session closed server-side: data back within 10 s, same item count', async () => {
      const { batches } = await connected();
      assert.equal(server.monitoredItemCount(), CONFIGURED_GOOD);
      const closedAt = Date.now();
      await server.closeSessions();
      await goodDataAfter(batches, closedAt + 200);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(server.monitoredItemCount(), CONFIGURED_GOOD);
      assert.equal(server.sessionCount(), 1);
    });

    it('a node deleted and added back (address-space change): its metric turns bad, the others keep flowing, then it is monitored again', async () => {
      const { batches } = await connected();
      const deletedAt = Date.now();
      server.deleteNode('ns=1;s=Drive1.Current');
      await new Promise((r) => setTimeout(r, 1500));
      const afterDelete = batches.filter((b) => b.at >= deletedAt);
      assert.ok(afterDelete.some((b) => b.meta?.current?.quality === 'bad' && /BadNodeId(Invalid|Unknown)/.test(b.meta.current.reason ?? '')), 'current reported bad');
      assert.ok(afterDelete.some((b) => typeof b.payload.speed === 'number' && b.meta?.speed.quality === 'good'), 'speed keeps flowing');
      const addedAt = Date.now();
      server.addCurrent();
      await goodDataAfter(batches, addedAt);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(server.monitoredItemCount(), CONFIGURED_GOOD);
    });

    it('30 s blackhole through a TCP proxy (socket open, no bytes): values turn uncertain, data back within 10 s of the path coming back, same item count', async () => {
      const proxy = await startTcpProxy(server.port);
      cleanups.push(() => proxy.close());
      const { batches } = await connected(`opc.tcp://localhost:${proxy.port}`);
      const holedAt = Date.now();
      proxy.blackhole(true);
      await waitForState(connection!, (s) => s === 'reconnecting' || s === 'backoff', 15_000);
      await new Promise((r) => setTimeout(r, 30_000 - (Date.now() - holedAt)));
      assert.ok(batches.some((b) => b.at > holedAt && b.meta?.speed?.quality === 'uncertain' && /^stale:/.test(b.meta.speed.reason ?? '')), 'stale values turned uncertain');
      const backAt = Date.now();
      proxy.blackhole(false);
      const resumedMs = await goodDataAfter(batches, backAt);
      assert.ok(resumedMs < 10_000, `data resumed ${resumedMs} ms after the path came back`);
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(server.monitoredItemCount(), CONFIGURED_GOOD);
    });
  });
});

/** The DER of the certificate a test server created in its PKI folder. */
function serverCertificate(serverPki: string): Buffer {
  const folder = join(serverPki, 'pki', 'own', 'certs');
  const file = readdirSync(folder).find((f) => f.endsWith('.pem'));
  assert.ok(file, `no certificate in ${folder}`);
  return toDer(readFileSync(join(folder, file)));
}
