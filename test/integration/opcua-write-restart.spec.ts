/**
 * A server restart while a write is in flight (issue 9, "Bad input and faults"): the write fails at
 * once with a message that says its outcome is unknown, and it is never carried out later — not by
 * node-opcua replaying it after the reconnection, not half (one Write request carries the command).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toDer } from '../../lib/opcua/certificates';
import type { OpcUaConnection } from '../../lib/opcua/connection';
import { writeCommand } from '../../lib/opcua/operations';
import { newConnection, tempDir, waitForState } from '../helpers/opcua-client-harness';
import { ServerProcess, startServerProcess } from '../helpers/opcua-server-process';

describe('OPC UA write during a server restart (real node-opcua server process)', function () {
  this.timeout(120_000);
  let connection: OpcUaConnection | undefined;
  let server: ServerProcess | undefined;

  afterEach(async () => {
    await connection?.close();
    await server?.kill();
  });

  it('server killed while the Write is held: the write fails as "outcome unknown", and after the restart nothing was written', async () => {
    const serverPki = tempDir('uns-opcua-srv-');
    server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, writeDelayMs: 3000 });
    const port = server.port;
    const made = newConnection({ endpointUrl: server.endpointUrl, keepAliveInterval: 1000, requestTimeout: 5000, maxBackoff: 1000 });
    connection = made.connection;
    await (await made.pki()).certificateManager.trustCertificate(toDer(readFileSync(join(serverPki, 'pki', 'own', 'certs', 'certificate.pem'))));
    connection.start();
    await waitForState(connection, (s) => s === 'connected');
    const metrics = new Map([['mode', { name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }], ['name', { name: 'name', nodeId: 'ns=1;s=Drive1.Name' }]]);
    const started = Date.now();
    const outcome = writeCommand(connection.session!, metrics, { mode: 7, name: 'fan' }).then(
      (result) => ({ result, error: undefined as Error | undefined, at: Date.now() }),
      (error: Error) => ({ result: undefined, error, at: Date.now() }),
    );
    while ((await server.ask('writes')) === 0) await new Promise((r) => setTimeout(r, 20));
    await server.kill();
    const { result, error, at } = await outcome;
    assert.equal(result, undefined, `the write must not report success: ${JSON.stringify(result)}`);
    assert.match(String(error?.message), /^no answer to the write \(.+\): the server may or may not have carried it out; it is not retried$/);
    assert.ok(at - started < 8000, `failed after ${at - started} ms`);

    server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, port });
    await waitForState(connection, (s) => s === 'connected', 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await server.ask('writes'), 0, 'no Write request reached the restarted server (node-opcua did not replay it)');
    assert.equal(await server.ask('mode'), 1);
  });

  it('a write issued while the connection is being repaired fails at once and is not replayed after it', async () => {
    const serverPki = tempDir('uns-opcua-srv-');
    server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true });
    const port = server.port;
    const made = newConnection({ endpointUrl: server.endpointUrl, keepAliveInterval: 1000, requestTimeout: 5000, maxBackoff: 1000 });
    connection = made.connection;
    await (await made.pki()).certificateManager.trustCertificate(toDer(readFileSync(join(serverPki, 'pki', 'own', 'certs', 'certificate.pem'))));
    connection.start();
    await waitForState(connection, (s) => s === 'connected');
    const session = connection.session!;
    await server.kill();
    await waitForState(connection, (s) => s !== 'connected');
    // A command that was read and checked just before the outage: its Write is sent now.
    const metrics = new Map([['mode', { name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }]]);
    const started = Date.now();
    const failed = await writeCommand(session, metrics, { mode: 7 }).then(() => undefined, (error: Error) => error);
    assert.match(String(failed?.message), /^the connection to the server was being repaired: nothing was written \(a write is never held for later\)$/);
    assert.ok(Date.now() - started < 8000, `failed after ${Date.now() - started} ms`);
    server = await startServerProcess({ pkiRoot: serverPki, trustAllClients: true, port });
    await waitForState(connection, (s) => s === 'connected', 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await server.ask('writes'), 0, 'nothing replayed after the repair');
    assert.equal(await server.ask('mode'), 1);
  });
});
