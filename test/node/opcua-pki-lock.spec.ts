/**
 * uns-opcua-endpoint when its PKI folder holds a lock left by a Node-RED killed while it created the
 * folder (node-opcua-pki's `mutex.lock`, taken over once 2 minutes old): the nodes using the endpoint
 * say why they wait, the log says it once, and the connect goes on by itself once the lock is stale.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import opcuaNodes = require('../../nodes/opcua/opcua');
import { startTestServer, TestServer } from '../helpers/opcua-test-server';
import { helper, type Status } from '../helpers/node-red-runtime';

describe('opcua nodes: a PKI folder locked by a killed process', function () {
  this.timeout(60_000);
  let server: TestServer;
  let userDir: string;

  before(async () => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-locked-userdir-'));
    helper.settings({ userDir });
    await new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(async () => {
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    await server?.dispose();
    helper.settings({});
    rmSync(userDir, { recursive: true, force: true });
  });

  it('the status says the connect waits for the PKI lock, one warning names it, then the trust flow starts without a redeploy', async () => {
    server = await startTestServer();
    const lock = join(userDir, 'uns-edge', 'opcua', 'pki', 'mutex.lock');
    mkdirSync(lock, { recursive: true });
    const leftAt = new Date(Date.now() - 117_000);
    utimesSync(lock, leftAt, leftAt);

    const statuses: Status[] = [];
    await helper.load(opcuaNodes, [
      { id: 'ep', type: 'uns-opcua-endpoint', endpointUrl: server.endpointUrl, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', maxBackoff: 1000 },
      { id: 'read', type: 'uns-opcua-read', endpoint: 'ep', topic: 'acme/plant/area/line/cell/drive1', metrics: [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }], wires: [[]] },
    ]);
    helper.getNode('read').on('call:status', (call: { args: [Status] }) => statuses.push(call.args[0]));

    // Once the lock is stale, node-opcua-pki takes it over, makes our certificate and the connect goes on: the server is not trusted yet.
    const deadline = Date.now() + 40_000;
    while (!statuses.some((s) => s.text === 'opcua.status.we-refused-server')) {
      assert.ok(Date.now() < deadline, `no refusal after the lock went stale: ${JSON.stringify(statuses)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const waiting = statuses.filter((s) => s.text === 'opcua.status.pki-locked');
    assert.ok(waiting.length >= 1, `no "waiting for the PKI lock" status before the refusal: ${JSON.stringify(statuses)}`);
    assert.deepEqual([waiting[0]!.fill, waiting[0]!.shape], ['yellow', 'ring']);
    assert.ok(statuses.indexOf(waiting[0]!) < statuses.findIndex((s) => s.text === 'opcua.status.we-refused-server'));

    const warnings = helper.log().args.map((a) => a[0] as { level: number; msg: unknown }).filter((e) => e.level === 30).map((e) => String(e.msg))
      .filter((msg) => msg.includes('mutex.lock'));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /^\[uns-opcua-endpoint\] the PKI folder .* is locked \(.*mutex\.lock, refreshed 1[12]\d s ago\): waiting for the process that holds it/);
  });
});
