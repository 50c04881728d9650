/**
 * `uns-opcua-endpoint` in a Node-RED runtime (node-red-node-test-helper) against a real node-opcua
 * server: a session the server closes while the channel stays up is rebuilt by node-opcua and said
 * in exactly one log line per close (no outage line), and the values resume.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import opcuaNodes = require('../../nodes/opcua/opcua');
import type { TagBatch } from '../../lib/uns/tag-batch';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';
import { helper } from '../helpers/node-red-runtime';

const until = async (what: string, pred: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('uns-opcua-endpoint: session closed by the server (real node-opcua server)', function () {
  this.timeout(120_000);
  let server: TestServer | undefined;
  let userDir: string;

  beforeEach(async () => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-session-userdir-'));
    helper.settings({ userDir });
    await new Promise<void>((r) => helper.startServer(() => r()));
  });
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    await server?.dispose();
    server = undefined;
    rmSync(userDir, { recursive: true, force: true });
  });

  /** The helper spies on Node.prototype: one node's own calls. The helper loads no catalog: RED._ answers the key. */
  const lines = (id: string, method: 'log' | 'warn') => {
    const node = helper.getNode(id);
    return node[method].getCalls().filter((c) => c.thisValue === node).map((c) => String(c.args[0]));
  };
  const count = (id: string, method: 'log' | 'warn', key: string) => lines(id, method).filter((l) => l === key).length;

  it('each server-side close: one log line from the endpoint, none from the subscriber, no outage; values resume', async () => {
    server = await startTestServer({ trustAllClients: true });
    await helper.load(opcuaNodes, [
      { id: 'ep', type: 'uns-opcua-endpoint', endpointUrl: server.endpointUrl, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', maxBackoff: 1000, keepAliveInterval: 1000, requestTimeout: 3000 },
      { id: 'sub', type: 'uns-opcua-subscribe', endpoint: 'ep', topic: 'acme/plant/area/line/cell/drive1', publishingInterval: 100, samplingInterval: 100, metrics: [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }], wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    // Trust the server through the admin endpoint (the trust tab's button).
    const trustList = async () => (await helper.request().get('/uns-opcua-endpoint/trust')).body.certificates as Array<{ thumbprint: string; status: string }>;
    await until('a rejected server certificate', async () => (await trustList()).some((c) => c.status === 'rejected'));
    for (const c of await trustList()) if (c.status === 'rejected') await helper.request().post(`/uns-opcua-endpoint/trust/${c.thumbprint}/trust`).send({});
    let lastGood = 0;
    helper.getNode('out').on('input', (m) => {
      if ((m as TagBatch).meta?.speed?.quality === 'good') lastGood = Date.now();
    });
    await until('data', () => lastGood > 0);
    const outagesBefore = count('ep', 'warn', 'opcua.log.outage');
    for (const round of [1, 2]) {
      const closedAt = Date.now();
      await server.closeSessions();
      await until(`data after close ${round}`, () => lastGood > closedAt + 200);
      await new Promise((r) => setTimeout(r, 1500)); // a late repair step would log now
      assert.equal(count('ep', 'warn', 'opcua.log.session-closed'), round, lines('ep', 'warn').join('\n'));
      assert.equal(server.sessionCount(), 1);
      assert.equal(server.monitoredItemCount(), 1);
    }
    assert.equal(count('ep', 'warn', 'opcua.log.outage'), outagesBefore, 'a rebuilt session is not an outage');
    assert.deepEqual(lines('sub', 'warn'), []);
  });
});
