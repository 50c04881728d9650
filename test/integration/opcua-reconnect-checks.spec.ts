/**
 * lib/opcua/connection.ts after node-opcua's own repairs, against real node-opcua servers:
 * - a server replaced behind the same address (TCP proxy of the test's own pointed at another
 *   server, open connections broken) is checked as at first connect: a certificate that node-opcua's
 *   PKI trusts but that fails our checks (host name, validity) ends the session, state refused with
 *   the first-connect explanation, one log line, no session and no data from the new server;
 * - a session the server closes while the channel stays up is rebuilt by node-opcua and said once
 *   per close, with the status code.
 */
import { strict as assert } from 'node:assert';
import type { ConnectionFailure, ConnectionState, OpcUaConnection } from '../../lib/opcua/connection';
import { OpcUaSubscriber } from '../../lib/opcua/subscriber';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { makeCertificate, MadeCertificate, newConnection, settled, trustBothWays, waitForState } from '../helpers/opcua-client-harness';
import { startTcpProxy, TcpProxy } from '../helpers/opcua-tcp-proxy';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';

const METRICS = [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }];
const SERVER_URI = 'urn:localhost:uns-edge-test-server';

describe('OPC UA checks after node-opcua reconnects (real node-opcua servers)', function () {
  this.timeout(120_000);
  let connection: OpcUaConnection | undefined;
  let subscriber: OpcUaSubscriber | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];

  afterEach(async () => {
    await subscriber?.stop();
    await connection?.close();
    subscriber = undefined;
    connection = undefined;
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
    const s = await startTestServer({ trustAllClients: true, ...options });
    cleanups.push(() => s.dispose());
    return s;
  }

  /** A connection + subscriber to `endpointUrl` with both sides trusting `trusted`; records what it says. */
  async function subscribed(endpointUrl: string, trusted: TestServer[]) {
    const made = newConnection({ endpointUrl, keepAliveInterval: 1000, requestTimeout: 3000, maxBackoff: 1000 });
    connection = made.connection;
    const pki = await made.pki();
    for (const s of trusted) await trustBothWays(pki, s);
    subscriber = new OpcUaSubscriber({ connection, topic: 'acme/p/a/l/c/drive1', metrics: METRICS, publishingInterval: 100, samplingInterval: 100, staleAfter: 2 });
    const goodAt: number[] = [];
    const outages: string[] = [];
    const states: Array<{ state: ConnectionState; failure?: ConnectionFailure }> = [];
    subscriber.on('batch', (b: TagBatch) => { if (b.meta?.speed?.quality === 'good') goodAt.push(Date.now()); });
    connection.on('outage', (reason: string) => outages.push(reason));
    connection.on('state', (state: ConnectionState, failure?: ConnectionFailure) => states.push({ state, failure }));
    connection.start();
    subscriber.start();
    await waitForState(connection, (s) => s === 'connected');
    await until('good data', () => goodAt.length > 0);
    return { made, goodAt, outages, states };
  }

  /** The explanation a first connect to `endpointUrl` ends with (a fresh connection and PKI trusting `s`). */
  async function firstConnectFailure(endpointUrl: string, s: TestServer): Promise<ConnectionFailure | undefined> {
    const made = newConnection({ endpointUrl, maxBackoff: 1000 });
    await trustBothWays(await made.pki(), s);
    made.connection.start();
    try {
      return await waitForState(made.connection, settled);
    } finally {
      await made.connection.close();
    }
  }

  async function replacedBehindProxy(certificate: MadeCertificate) {
    const a = await server();
    const b = await server({ certificateFile: certificate.certificateFile, privateKeyFile: certificate.privateKeyFile });
    const proxy: TcpProxy = await startTcpProxy(a.port);
    cleanups.push(() => proxy.close());
    const endpointUrl = `opc.tcp://localhost:${proxy.port}`;
    const run = await subscribed(endpointUrl, [a, b]); // B's certificate is in our trusted folder
    assert.equal(a.sessionCount(), 1);
    const outagesBefore = run.outages.length;
    // Server A replaced by B behind the same address: new connections go to B, the open one breaks.
    proxy.retarget(b.port);
    const replacedAt = Date.now();
    proxy.cut();
    const failure = await waitForState(connection!, (s) => s === 'refused', 60_000);
    // Several backoff retries (fresh clients, our first-connect path) while refused.
    await new Promise((r) => setTimeout(r, 4000));
    return { a, b, endpointUrl, run, failure, outagesBefore, replacedAt };
  }

  it('server replaced behind the same address by one whose (trusted) certificate does not name the host: refused after the reconnect as at first connect, no data from it', async () => {
    const otherHost = await makeCertificate({ applicationUri: SERVER_URI, dns: ['plc-17.example'] });
    const { b, endpointUrl, run, failure, outagesBefore, replacedAt } = await replacedBehindProxy(otherHost);
    assert.equal(failure?.kind, 'server-certificate-hostname', failure?.explanation);
    assert.equal(failure?.side, 'client');
    assert.match(failure!.explanation, /does not name host "localhost" \(it names plc-17\.example\)/);
    assert.equal(failure?.serverThumbprint, otherHost.thumbprint);
    assert.equal(connection!.state, 'refused');
    assert.equal(connection!.session, undefined);
    // The same explanation as a first connect to B through the same address, and one line that says it.
    assert.equal(failure!.explanation, (await firstConnectFailure(endpointUrl, b))?.explanation);
    assert.deepEqual(run.outages.slice(outagesBefore).filter((o) => o === failure!.explanation), [failure!.explanation], run.outages.join('\n'));
    assert.ok(run.outages.length - outagesBefore <= 2, `at most the connection loss and the refusal: ${run.outages.join('\n')}`);
    // Refused for good: no state after the refusal other than refused/connecting, no data from B, no session on B.
    const afterRefusal = run.states.slice(run.states.findIndex((s) => s.state === 'refused'));
    assert.ok(afterRefusal.every((s) => s.state === 'refused' || s.state === 'connecting'), afterRefusal.map((s) => s.state).join(' '));
    assert.ok(afterRefusal.every((s) => s.state !== 'refused' || s.failure?.explanation === failure!.explanation), 'one explanation');
    assert.deepEqual(run.goodAt.filter((t) => t > replacedAt + 200), [], 'no good value after the replacement');
    assert.equal(b.sessionCount(), 0, 'no session on the replaced server');
    assert.equal(b.monitoredItemCount(), 0);
  });

  it('server replaced behind the same address by one whose trusted certificate has expired: refused after the reconnect as at first connect', async () => {
    const expired = await makeCertificate({ applicationUri: SERVER_URI, startDate: new Date(Date.now() - 400 * 86_400_000), validityDays: 30 });
    const { b, endpointUrl, run, failure, replacedAt } = await replacedBehindProxy(expired);
    assert.equal(failure?.kind, 'server-certificate-time', failure?.explanation);
    assert.match(failure!.explanation, new RegExp(`^we refused the server: its certificate ${expired.thumbprint} expired on `));
    assert.equal(failure!.explanation, (await firstConnectFailure(endpointUrl, b))?.explanation);
    assert.equal(run.outages.filter((o) => o === failure!.explanation).length, 1, run.outages.join('\n'));
    assert.deepEqual(run.goodAt.filter((t) => t > replacedAt + 200), []);
    assert.equal(b.sessionCount(), 0);
  });

  it('session closed by the server while the channel stays up: one "session-closed" report with the status code per close, data resumes', async () => {
    const s = await server();
    const run = await subscribed(s.endpointUrl, [s]);
    const reports: Array<{ reason: string; code?: string }> = [];
    connection!.on('session-closed', (report: { reason: string; code?: string }) => reports.push(report));
    for (const round of [1, 2]) {
      const closedAt = Date.now();
      await s.closeSessions();
      await until(`data after close ${round}`, () => run.goodAt.some((t) => t > closedAt + 200), 15_000);
      await new Promise((r) => setTimeout(r, 1500)); // late repairs (subscription transfer, republish) say nothing more
      assert.equal(reports.length, round, JSON.stringify(reports));
      assert.equal(s.sessionCount(), 1);
      assert.equal(s.monitoredItemCount(), METRICS.length);
    }
    assert.match(reports[0].code ?? '', /^BadSession(IdInvalid|Closed)$/, JSON.stringify(reports[0]));
    assert.equal(connection!.state, 'connected');
    assert.deepEqual(run.outages, [], 'a rebuilt session is not an outage');
  });
});

async function until(what: string, pred: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

