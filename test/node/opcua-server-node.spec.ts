/**
 * uns-opcua-server in a Node-RED runtime (node-red-node-test-helper): configuration refused with
 * every problem named, a malformed tag batch refused whole (Catch node sees it), the yellow status
 * when None is offered, results of unknown writes ignored, nothing left running after close.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import serverNodes = require('../../nodes/opcua-server/opcua-server');
import { freePort } from '../helpers/ports';
import { helper, type Call } from '../helpers/node-red-runtime';

/* eslint-disable @typescript-eslint/no-require-imports */
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

function serverDef(props: object = {}): object {
  return {
    id: 'srv', type: 'uns-opcua-server', listenHost: '127.0.0.1', hostname: 'localhost', policies: 'Basic256Sha256,Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss',
    allowNone: false, users: JSON.stringify([{ kind: 'password', name: 'op', role: 'write' }]), model: '', maxSessions: 50, maxConnections: 60,
    maxWritesPerSecond: 10, writeTimeout: 5000, maxVariables: 50000, wires: [[]], ...props,
  };
}

describe('uns-opcua-server node', function () {
  this.timeout(30_000);
  let userDir: string;
  beforeEach(async () => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-server-node-'));
    helper.settings({ userDir });
    await new Promise<void>((r) => helper.startServer(() => r()));
  });
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    rmSync(userDir, { recursive: true, force: true });
  });

  it('an invalid configuration: red ring, one error naming every problem, no server', async () => {
    const port = await freePort();
    await helper.load(serverNodes, [serverDef({
      listenPort: port, policies: 'Basic256Sha256,Basic128Rsa15', model: '{"assets": {"a/b": {"x": {"type": "Float", "range": [5, 1]}}}}',
      users: JSON.stringify([{ kind: 'password', name: 'op', role: 'write' }, { kind: 'certificate', role: 'read' }]),
    })]);
    const errors: string[] = [];
    // The constructor ran during load: read what it reported through the node's spies.
    const spied = helper.getNode('srv') as unknown as { error: { getCalls(): Call[] }; status: { getCalls(): Call[] } };
    for (const call of spied.error.getCalls()) errors.push(String(call.args[0]));
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^opcua-server.errors.invalid: /);
    assert.match(errors[0], /unknown security policy Basic128Rsa15/);
    assert.match(errors[0], /user "op" has no password/);
    assert.match(errors[0], /user 2 has no name/);
    assert.match(errors[0], /range must be \[low, high\]/);
    assert.deepEqual(spied.status.getCalls().map((c) => c.args[0]), [{ fill: 'red', shape: 'ring', text: 'opcua-server.status.invalid' }]);
    // Nothing listens.
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
    });
  });

  it('a malformed tag batch is refused whole (the catch node gets it); None offered: yellow ring', async () => {
    const port = await freePort();
    await helper.load([serverNodes, catchNode], [
      { id: 'f1', type: 'tab', label: 'flow' },
      { ...serverDef({ listenPort: port, allowNone: true }), z: 'f1', x: 100, y: 100 },
      { id: 'catch', type: 'catch', scope: ['srv'], uncaught: false, x: 100, y: 200, z: 'f1', wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f1' },
    ], { srv: { passwords: JSON.stringify({ op: 'secret' }) } });
    const srv = helper.getNode('srv') as unknown as { on(e: string, f: (c: Call) => void): void; receive(m: object): void };
    const yellow = new Promise<void>((resolve) => srv.on('call:status', (call) => {
      const s = call.args[0] as { fill?: string; text?: string };
      if (s.fill === 'yellow' && /opcua-server.status.none/.test(String(s.text))) resolve();
    }));
    await yellow;
    const caught = new Promise<{ error: { message: string } }>((resolve) => helper.getNode('caught').on('input', (m) => resolve(m as { error: { message: string } })));
    srv.receive({ topic: 'a/b+/c', payload: { x: Number.NaN } });
    const m = await caught;
    assert.match(m.error.message, /opcua-server.errors.batch: .*"b\+" contains "\+".*"x" is NaN/);
    // A result for a write this node never sent is ignored (no error).
    srv.receive({ opcuaWriteId: 'other:1' });
  });
});
