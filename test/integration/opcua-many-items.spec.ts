/**
 * Thousands of monitored items against real node-opcua servers (the 10,000-item benchmark case
 * found uns-opcua-subscribe delivering nothing for 120 s while a plain client worked):
 * - the server's OperationLimits.MaxMonitoredItemsPerCall is respected (a larger
 *   CreateMonitoredItems is refused as a whole with BadTooManyOperations);
 * - a server that is slow to create items (its event loop busy, as a loaded server's is) is not taken
 *   for a dead one: items are created in calls short enough for the session keep-alive, every item
 *   delivers, and the server holds exactly one monitored item per metric (no duplicates).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toDer } from '../../lib/opcua/certificates';
import type { OpcUaConnection } from '../../lib/opcua/connection';
import { OpcUaSubscriber } from '../../lib/opcua/subscriber';
import type { TagBatch } from '../../lib/uns/tag-batch';
import type { ApplicationPki } from '../../lib/opcua/pki';
import { newConnection, tempDir } from '../helpers/opcua-client-harness';
import { startServerProcess } from '../helpers/opcua-server-process';

describe('OPC UA subscribe: thousands of items (real node-opcua servers)', function () {
  this.timeout(180_000);
  let connection: OpcUaConnection | undefined;
  let subscriber: OpcUaSubscriber | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];

  afterEach(async () => {
    await subscriber?.stop();
    await connection?.close();
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function trustServer(made: { pki: () => Promise<ApplicationPki> }, serverPki: string): Promise<void> {
    const pki = await made.pki();
    await pki.certificateManager.trustCertificate(toDer(readFileSync(join(serverPki, 'pki', 'own', 'certs', 'certificate.pem'))));
  }

  /** Subscribe to Bulk.0 … Bulk.<items−1> with the endpoint defaults (keep-alive 2 s, request timeout 5 s). */
  function subscribeBulk(endpointUrl: string, items: number) {
    const made = newConnection({ endpointUrl });
    connection = made.connection;
    const metrics = Array.from({ length: items }, (_, i) => ({ name: `b${i}`, nodeId: `ns=1;s=Bulk.${i}` }));
    subscriber = new OpcUaSubscriber({ connection, topic: 'acme/p/a/l/c/bulk', metrics, publishingInterval: 200, samplingInterval: 1000, staleAfter: 3 });
    const values = new Map<string, unknown>();
    const outages: string[] = [];
    const warnings: string[] = [];
    subscriber.on('batch', (b: TagBatch) => {
      for (const [name, value] of Object.entries(b.payload)) if (b.meta?.[name]?.quality === 'good') values.set(name, value);
    });
    subscriber.on('warning', (w: string) => warnings.push(w));
    connection.on('outage', (reason: string) => outages.push(reason));
    /** Resolves when every metric has delivered a good value. */
    const allDelivered = (ms: number) => new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (values.size === items) {
          clearInterval(poll);
          resolve();
        } else if (Date.now() - started > ms) {
          clearInterval(poll);
          reject(new Error(`${values.size} of ${items} metrics delivered within ${ms} ms; outages: ${outages.join(' | ') || 'none'}; warnings: ${warnings.slice(0, 3).join(' | ') || 'none'}`));
        }
      }, 100);
    });
    return { made, values, outages, warnings, allDelivered };
  }

  it('5,000 items (server in its own process) with MaxMonitoredItemsPerCall = 1000 and = 400: every item delivers, the server holds 5,000', async () => {
    for (const limit of [1000, 400]) {
      const serverPki = tempDir('uns-opcua-srv-');
      const server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, bulkVariables: 5000, maxMonitoredItemsPerCall: limit });
      cleanups.push(() => server.kill());
      const run = subscribeBulk(server.endpointUrl, 5000);
      await trustServer(run.made, serverPki);
      connection!.start();
      subscriber!.start();
      await run.allDelivered(90_000);
      assert.equal(run.values.get('b4321'), 4321);
      assert.equal(await server.ask('count'), 5000, `limit ${limit}`);
      assert.equal(subscriber!.status.monitored, 5000);
      await subscriber!.stop();
      await connection!.close();
      subscriber = undefined;
      connection = undefined;
    }
  });

  it('a server that needs 7 ms per item to create them (1000 items = 7 s, more than the keep-alive allows): no outage, every item delivers once', async () => {
    const serverPki = tempDir('uns-opcua-srv-');
    const server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, bulkVariables: 2000, createMonitoredItemsMsPerItem: 7 });
    cleanups.push(() => server.kill());
    const run = subscribeBulk(server.endpointUrl, 2000);
    await trustServer(run.made, serverPki);
    connection!.start();
    subscriber!.start();
    await run.allDelivered(90_000);
    assert.deepEqual(run.outages, [], 'a slow CreateMonitoredItems is not a dead server');
    assert.equal(await server.ask('count'), 2000, 'one monitored item per metric on the server');
  });
});
