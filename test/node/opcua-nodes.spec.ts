/**
 * The OPC UA node set in a Node-RED runtime (node-red-node-test-helper) against a real node-opcua
 * server on loopback (test/helpers/opcua-test-server.ts), SignAndEncrypt by default:
 * the two-sided trust flow end to end through the admin endpoints, subscribe/read/write/browse/method.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { StatusCodes } from 'node-opcua';
import opcuaNodes = require('../../nodes/opcua/opcua');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;
import { connectionStatuses } from '../../lib/runtime/connection-registry';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { makeCertificate } from '../helpers/opcua-client-harness';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';
import { metricsRegistry } from '../../lib/runtime/metrics';
import { helper, type Status } from '../helpers/node-red-runtime';

describe('opcua nodes', function () {
  this.timeout(60_000);
  let server: TestServer;
  let userDir: string;

  const endpoint = (extra: object = {}) => ({ id: 'ep', type: 'uns-opcua-endpoint', endpointUrl: server.endpointUrl, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', maxBackoff: 1000, ...extra });
  const metrics = [
    { name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' },
    { name: 'current', nodeId: 'ns=1;s=Drive1.Current' },
    { name: 'ghost', nodeId: 'ns=1;s=Drive1.DoesNotExist' },
  ];
  const subscribeFlow = (ep: object = {}) => [
    endpoint(ep),
    { id: 'sub', type: 'uns-opcua-subscribe', endpoint: 'ep', topic: 'acme/plant/area/line/cell/drive1', publishingInterval: 100, samplingInterval: 100, metrics, wires: [['out']] },
    { id: 'out', type: 'helper' },
  ];

  const next = (id: string, pred: (m: Record<string, unknown>) => boolean = () => true, ms = 15_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message at ${id}`)), ms);
      helper.getNode(id).on('input', (msg) => {
        if (pred(msg as Record<string, unknown>)) {
          clearTimeout(timer);
          resolve(msg as Record<string, unknown>);
        }
      });
    });

  const statusOf = (id: string, pred: (s: Status) => boolean, ms = 15_000): Promise<Status> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching status at ${id}`)), ms);
      helper.getNode(id).on('call:status', (call) => {
        const s = (call as { args: [Status] }).args[0];
        if (pred(s)) {
          clearTimeout(timer);
          resolve(s);
        }
      });
    });

  const trustEachOther = async () => {
    // our side: trust the server's certificate (as the trust tab does)
    const list = await helper.request().get('/uns-opcua-endpoint/trust');
    for (const c of list.body.certificates as Array<{ thumbprint: string; status: string }>) {
      if (c.status === 'rejected') await helper.request().post(`/uns-opcua-endpoint/trust/${c.thumbprint}/trust`).send({});
    }
  };

  before(() => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-userdir-'));
    helper.settings({ userDir });
  });
  after(() => rmSync(userDir, { recursive: true, force: true }));

  beforeEach(async () => {
    await new Promise<void>((r) => helper.startServer(() => r()));
  });
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    await server?.dispose();
  });

  it('trust flow: refused both ways with the side and thumbprint named, then trusted through the admin endpoints → data flows without redeploy', async () => {
    server = await startTestServer();
    await helper.load(opcuaNodes, subscribeFlow());
    // 1. we refuse the server
    await statusOf('sub', (s) => s.text === 'opcua.status.we-refused-server');
    const list = await helper.request().get('/uns-opcua-endpoint/trust');
    const rejected = (list.body.certificates as Array<{ status: string; thumbprint: string; applicationUri: string; offeredBy: string[]; subject: string; issuer: string; validTo: string }>)
      .filter((c) => c.status === 'rejected');
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].applicationUri, 'urn:localhost:uns-edge-test-server');
    assert.deepEqual(rejected[0].offeredBy, [server.endpointUrl]);
    assert.match(rejected[0].subject, /uns-edge test server/);
    assert.ok(rejected[0].issuer && rejected[0].validTo);
    const report = connectionStatuses().find((c) => c.id === 'ep');
    assert.equal(report?.state, 'refused');
    assert.match(report?.detail ?? '', new RegExp(`we refused the server: its certificate ${rejected[0].thumbprint} is not trusted`));

    // 2. trust it here → the server refuses us, naming OUR thumbprint
    const serverRefusesUs = statusOf('sub', (s) => s.text === 'opcua.status.server-refused-us');
    const trusted = await helper.request().post(`/uns-opcua-endpoint/trust/${rejected[0].thumbprint}/trust`).send({});
    assert.equal(trusted.status, 200);
    await serverRefusesUs;
    const own = (list.body.own as { thumbprint: string; applicationUri: string });
    assert.match(connectionStatuses().find((c) => c.id === 'ep')?.detail ?? '', new RegExp(`the server refused us \\(BadSecurityChecksFailed\\): trust our application certificate ${own.thumbprint}`));

    // 3. the admin downloads our DER and trusts it on the server → connects, no redeploy
    const der = await helper.request().get('/uns-opcua-endpoint/own-certificate.der').buffer(true).parse((res: NodeJS.ReadableStream & { setEncoding(e: string): void }, cb: (e: null, b: Buffer) => void) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    assert.equal(der.headers['content-type'], 'application/pkix-cert');
    await server.serverCertificateManager.trustCertificate(der.body);
    const batch = (await next('out', (m) => (m.payload as Record<string, unknown>).speed !== undefined)) as unknown as TagBatch;
    assert.equal(batch.topic, 'acme/plant/area/line/cell/drive1');
    assert.equal(typeof batch.payload.speed, 'number');
    assert.equal(batch.meta?.speed.quality, 'good');
    assert.equal(batch.meta?.speed.unit, 'r/min');
    assert.equal(batch.meta?.speed.type, 'Double');
  });

  it('invalid endpoint settings: every node using the endpoint shows the refusal, nothing connects', async () => {
    server = await startTestServer();
    const reader = (id: string) => ({ id, type: 'uns-opcua-read', endpoint: 'ep', topic: 'a/b/c/d/e/f', metrics: [{ name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }] });
    await helper.load(opcuaNodes, [endpoint({ securityPolicy: 'Basic256' }), reader('r1'), reader('r2')]);
    await new Promise((r) => setTimeout(r, 500));
    for (const id of ['r1', 'r2']) {
      const statuses = (helper.getNode(id) as unknown as { status: { getCalls(): Array<{ args: [Status] }> } }).status.getCalls().map((c) => c.args[0]);
      assert.deepEqual(statuses.at(-1), { fill: 'red', shape: 'dot', text: 'opcua.status.refused-detail' }, `${id}: ${JSON.stringify(statuses)}`);
    }
    assert.match(String(helper.getNode('ep').error.getCalls()[0]?.args[0]), /opcua\.errors\.invalid-endpoint/);
    assert.equal(server.sessionCount(), 0);
  });

  describe('connected (both sides trust each other)', () => {
    beforeEach(async () => {
      server = await startTestServer({ trustAllClients: true });
    });

    const connect = async (flow: object[], nodes: unknown = opcuaNodes) => {
      await helper.load(nodes, flow);
      await statusOf(String((flow[1] as { id: string }).id), (s) => s.text === 'opcua.status.we-refused-server' || s.fill === 'green');
      await trustEachOther();
    };

    it('subscribe: one bad NodeId is bad on its own metric, the others flow; one session and one subscription on the server', async () => {
      await connect(subscribeFlow());
      const bad = (await next('out', (m) => (m.payload as Record<string, unknown>).ghost !== undefined)) as unknown as TagBatch;
      assert.equal(bad.payload.ghost, null);
      assert.equal(bad.meta?.ghost.quality, 'bad');
      assert.equal(bad.meta?.ghost.reason, 'BadNodeIdUnknown');
      await next('out', (m) => typeof (m.payload as Record<string, unknown>).current === 'number');
      await next('out', (m) => typeof (m.payload as Record<string, unknown>).current === 'number');
      assert.equal(server.monitoredItemCount(), 2);
      assert.equal(server.sessionCount(), 1);
    });

    it('subscribe: queue size (default 10) and discard policy per node, each overridable per metric row; an older flow without them gets the defaults', async () => {
      const flow = [
        endpoint(),
        { id: 'sub', type: 'uns-opcua-subscribe', endpoint: 'ep', topic: 'acme/plant/area/line/cell/drive1', publishingInterval: 100, samplingInterval: 100,
          queueSize: 5, discardOldest: false,
          metrics: [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }, { name: 'current', nodeId: 'ns=1;s=Drive1.Current', queueSize: 3, discardOldest: true, samplingInterval: 200 }], wires: [['out']] },
        { id: 'old', type: 'uns-opcua-subscribe', endpoint: 'ep', topic: 'acme/plant/area/line/cell/drive1', publishingInterval: 100, samplingInterval: 100,
          metrics: [{ name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }], wires: [['out']] },
        { id: 'out', type: 'helper' },
      ];
      await connect(flow);
      await next('out', (m) => typeof (m.payload as Record<string, unknown>).current === 'number');
      while (server.monitoredItemCount() < 3) await new Promise((r) => setTimeout(r, 50));
      const granted = (id: string) => server.monitoredItems().find((i) => i.nodeId === id);
      assert.deepEqual(granted('ns=1;s=Drive1.Speed'), { nodeId: 'ns=1;s=Drive1.Speed', queueSize: 5, discardOldest: false, samplingInterval: 100 });
      assert.deepEqual(granted('ns=1;s=Drive1.Current'), { nodeId: 'ns=1;s=Drive1.Current', queueSize: 3, discardOldest: true, samplingInterval: 200 });
      assert.deepEqual(granted('ns=1;s=Drive1.Mode'), { nodeId: 'ns=1;s=Drive1.Mode', queueSize: 10, discardOldest: true, samplingInterval: 100 });
    });

    it('subscribe: a node queue size that is not a whole number ≥ 1 is refused (red ring), nothing is monitored', async () => {
      await helper.load(opcuaNodes, [endpoint(),
        { id: 'sub', type: 'uns-opcua-subscribe', endpoint: 'ep', topic: 't', queueSize: 0, metrics: [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }], wires: [[]] }]);
      const statuses = (helper.getNode('sub') as unknown as { status: { getCalls(): Array<{ args: [Status] }> } }).status.getCalls().map((c) => c.args[0]);
      assert.deepEqual(statuses.at(-1), { fill: 'red', shape: 'ring', text: 'opcua.status.invalid' });
      assert.equal(server.monitoredItemCount(), 0);
    });

    it('write: converts to the DataType, checks EURange, type and AccessLevel before sending; a bad command writes nothing; logs old → new and who', async () => {
      await connect([
        endpoint(),
        { id: 'w', type: 'uns-opcua-write', endpoint: 'ep', metrics: [
          { name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }, { name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' },
          { name: 'current', nodeId: 'ns=1;s=Drive1.Current' }, { name: 'name', nodeId: 'ns=1;s=Drive1.Name' }], wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]);
      await statusOf('w', (s) => s.fill === 'green');
      const w = helper.getNode('w');
      const modeNode = () => server.server.engine.addressSpace!.findNode('ns=1;s=Drive1.Mode') as unknown as { readValue(): { value: { value: number } } };
      const nameNode = () => server.server.engine.addressSpace!.findNode('ns=1;s=Drive1.Name') as unknown as { readValue(): { value: { value: string } } };

      // out of EURange (0..1500) with a good mode: nothing written at all
      w.receive({ payload: { mode: 5, speed: 2000 } });
      let out = await next('out');
      assert.equal(out.ok, false);
      assert.equal(modeNode().readValue().value.value, 1, 'mode not written because speed was refused');
      assert.deepEqual(out.problems, ['speed: 2000 is outside EURange 0..1500']);
      assert.match(String(w.error.getCalls().at(-1)?.args[0]), /opcua\.errors\.write-refused/);
      // wrong type, not an integer, read-only, unknown metric
      for (const [payload, pattern] of [
        [{ mode: 'fast' }, /mode: "fast" is not an integer \(Int32\)/],
        [{ mode: 1.5 }, /mode: 1\.5 is not an integer/],
        [{ mode: 2 ** 31 }, /outside the Int32 range/],
        [{ current: 5 }, /current: node ns=1;s=Drive1\.Current is read-only/],
        [{ nope: 1 }, /nope: is not a metric of this node/],
        [{ speed: Number.NaN }, /speed: NaN is not finite/],
      ] as Array<[object, RegExp]>) {
        w.receive({ payload });
        out = await next('out');
        assert.equal(out.ok, false, JSON.stringify(payload));
        assert.match(String(out.problems), pattern);
      }
      assert.equal(modeNode().readValue().value.value, 1);
      // a good command from a principal: written, logged old → new with who
      w.receive({ payload: { mode: 3, name: 'fan' }, principal: { via: 'mqtt', id: 'mqtt:scada-1 (user alice)' } });
      out = await next('out');
      assert.equal(out.ok, true);
      assert.equal(modeNode().readValue().value.value, 3);
      assert.equal(nameNode().readValue().value.value, 'fan');
      const logged = w.log.getCalls().map((c) => String(c.args[0]));
      assert.ok(logged.some((l) => l === 'opcua.log.write'), logged.join('\n'));
      assert.deepEqual((out.payload as Record<string, { status: string; old: unknown; written: string }>).mode, { status: 'ok', old: 1, written: '3' });
      // what a function node sends: an object from another JS realm
      w.receive({ payload: runInNewContext('({ mode: 4, speed: 1500 })') });
      out = await next('out');
      assert.equal(out.ok, true, JSON.stringify(out.problems));
      assert.equal(modeNode().readValue().value.value, 4);
    });

    it('write: a node whose EURange property the server will not give is refused (never written unchecked)', async () => {
      await connect([
        endpoint(),
        { id: 'w', type: 'uns-opcua-write', endpoint: 'ep', metrics: [{ name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }], wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]);
      await statusOf('w', (s) => s.fill === 'green');
      const speed = server.server.engine.addressSpace!.findNode('ns=1;s=Drive1.Speed') as unknown as {
        getChildByName(name: string): { readValue(): { value: unknown }; setValueFromSource(v: unknown, status: unknown): void };
        readValue(): { value: { value: number } };
      };
      const euRange = speed.getChildByName('EURange');
      euRange.setValueFromSource(euRange.readValue().value, StatusCodes.BadInternalError);
      // The test server moves Speed every 100 ms itself: "nothing written" is counted in Write requests, not read off the value.
      const writesBefore = server.writesReceived();
      helper.getNode('w').receive({ payload: { speed: 1499 } });
      const out = await next('out');
      assert.equal(out.ok, false);
      assert.match(String(out.problems), /speed: .*EURange.*BadInternalError/);
      assert.equal(server.writesReceived(), writesBefore, 'nothing written: no Write request reached the server');
      assert.notEqual(speed.readValue().value.value, 1499, 'nothing written');
    });

    it('write: commands built in a real function node — good ones are written with who; a throwing getter, a __proto__ key, a boxed number, an array, a Date, a 70k string write nothing', async () => {
      const func = `switch (msg.topic) {
        case 'good': msg.payload = { mode: 4, speed: 1500, name: 'fn' }; msg.principal = { via: 'mqtt', id: 'mqtt:mes-01' }; break;
        case 'getter': msg.payload = { mode: 7, get speed() { throw new Error('getter says no'); } }; break;
        case 'proto': msg.payload = JSON.parse('{"mode": 8, "__proto__": {"mode": 9}}'); break;
        case 'boxed': msg.payload = { mode: new Number(8) }; break;
        case 'array': msg.payload = [8]; break;
        case 'date': msg.payload = { mode: 8, name: new Date(0) }; break;
        case 'huge': msg.payload = { mode: 8, name: 'x'.repeat(70000) }; break;
      }
      return msg;`;
      await connect([
        endpoint(),
        { id: 'w', type: 'uns-opcua-write', endpoint: 'ep', metrics: [
          { name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }, { name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }, { name: 'name', nodeId: 'ns=1;s=Drive1.Name' }], wires: [['out']] },
        { id: 'fn', type: 'function', func, outputs: 1, wires: [['w']] },
        { id: 'out', type: 'helper' },
      ], [opcuaNodes, functionNode]);
      await statusOf('w', (s) => s.fill === 'green');
      const w = helper.getNode('w');
      const fn = helper.getNode('fn');
      const valueOf = (id: string) => (server.server.engine.addressSpace!.findNode(id) as unknown as { readValue(): { value: { value: unknown } } }).readValue().value.value;

      fn.receive({ topic: 'good' });
      let out = await next('out');
      assert.equal(out.ok, true, JSON.stringify(out.problems));
      // Speed is also moved by the test server every 100 ms: what was written is read off the Write request.
      assert.deepEqual([valueOf('ns=1;s=Drive1.Mode'), server.lastWrittenValue('ns=1;s=Drive1.Speed'), valueOf('ns=1;s=Drive1.Name')], [4, 1500, 'fn']);
      assert.ok(w.log.getCalls().length >= 3);

      for (const [topic, pattern] of [
        ['getter', /getter says no/],
        ['proto', /__proto__: is not a metric of this node/],
        ['boxed', /mode: an object is not an integer/],
        ['array', /must be an object/],
        ['date', /name: an object is not a String/],
        ['huge', /name: .* is longer than 65535 characters/],
      ] as Array<[string, RegExp]>) {
        fn.receive({ topic });
        out = await next('out');
        assert.equal(out.ok, false, topic);
        assert.match(String(out.problems), pattern, topic);
      }
      assert.deepEqual([valueOf('ns=1;s=Drive1.Mode'), valueOf('ns=1;s=Drive1.Name')], [4, 'fn'], 'no refused command wrote anything');
    });

    it('a server certificate that expires within 30 days turns the status yellow and is on /metrics', async () => {
      await server.dispose();
      const soon = await makeCertificate({ applicationUri: 'urn:localhost:uns-edge-test-server', startDate: new Date(Date.now() - 355 * 86_400_000), validityDays: 365 });
      server = await startTestServer({ trustAllClients: true, certificateFile: soon.certificateFile, privateKeyFile: soon.privateKeyFile });
      await connect([endpoint(), { id: 'r', type: 'uns-opcua-read', endpoint: 'ep', topic: 'a/b/c/d/e/f', interval: 200, metrics: [{ name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }] }]);
      await statusOf('r', (s) => s.fill === 'yellow' && s.text === 'opcua.status.expiring');
      const metrics = await metricsRegistry.metrics();
      assert.match(metrics, /uns_edge_opcua_certificate_expiry_days\{endpoint="[^"]+",whose="server"\} (9|10)\b/);
    });

    it('read: one batch per asset, bad NodeId on its own metric; browse and method', async () => {
      await connect([
        endpoint(),
        { id: 'r', type: 'uns-opcua-read', endpoint: 'ep', topic: 'acme/plant/area/line/cell/drive1', metrics: [
          { name: 'speed', nodeId: 'ns=1;s=Drive1.Speed' }, { name: 'broken', nodeId: 'ns=1;x=' },
          { name: 'mode', nodeId: 'ns=1;s=Drive1.Mode', topic: 'acme/plant/area/line/cell/drive2' }], wires: [['out']] },
        { id: 'b', type: 'uns-opcua-browse', endpoint: 'ep', nodeId: 'ns=1;s=Drive1', depth: 1, withValues: true, wires: [['bout']] },
        { id: 'm', type: 'uns-opcua-method', endpoint: 'ep', objectId: 'ns=1;s=Drive1', methodId: 'ns=1;s=Drive1.ResetFault', wires: [['mout']] },
        { id: 'm2', type: 'uns-opcua-method', endpoint: 'ep', objectId: 'ns=1;s=Drive1', methodId: 'ns=1;s=Drive1.SetRamp', wires: [['mout']] },
        { id: 'out', type: 'helper' }, { id: 'bout', type: 'helper' }, { id: 'mout', type: 'helper' },
      ]);
      await statusOf('r', (s) => s.fill === 'green');
      const batches: TagBatch[] = [];
      const got = new Promise<void>((resolve) => helper.getNode('out').on('input', (m) => {
        batches.push(m as TagBatch);
        if (batches.length === 2) resolve();
      }));
      helper.getNode('r').receive({ payload: 'go' });
      await got;
      const drive1 = batches.find((b) => b.topic.endsWith('drive1'))!;
      assert.equal(typeof drive1.payload.speed, 'number');
      assert.equal(drive1.meta?.broken.quality, 'bad');
      assert.match(drive1.meta?.broken.reason ?? '', /BadNodeIdInvalid/);
      assert.equal(batches.find((b) => b.topic.endsWith('drive2'))?.payload.mode, 1);

      helper.getNode('b').receive({});
      const browsed = await next('bout');
      const speed = (browsed.payload as Array<{ browseName: string; dataType?: string; access?: string; unit?: string }>).find((n) => n.browseName === '1:Speed');
      assert.deepEqual([speed?.dataType, speed?.access, speed?.unit], ['Double', 'rw', 'r/min']);

      helper.getNode('m').receive({ payload: [7] });
      const called = await next('mout');
      assert.deepEqual(called.payload, { done: true });
      helper.getNode('m').receive({ payload: ['seven'] });
      const refused = await next('mout');
      assert.equal(refused.ok, false);
      helper.getNode('m').receive({ payload: [] });
      const wrongCount = await next('mout');
      assert.equal(wrongCount.ok, false);
      assert.match(String(wrongCount.problems), /the method takes 1 argument\(s\) \(code\), got 0/);
      assert.match(String(refused.problems), /argument code: "seven" is not an integer \(Int32\)/);
      // an argument whose DataType is a subtype (Duration → Double), by name
      helper.getNode('m2').receive({ payload: { seconds: 2.5 } });
      const ramp = await next('mout');
      assert.equal(ramp.ok, true, JSON.stringify(ramp.problems));
      assert.deepEqual(ramp.payload, { applied: 2.5 });
    });

    it('admin: discover lists endpoints with policies, token types and the server certificate; browse goes through the deployed session', async () => {
      await connect(subscribeFlow());
      await next('out', (m) => typeof (m.payload as Record<string, unknown>).speed === 'number');
      const found = await helper.request().post('/uns-opcua-endpoint/discover').send({ endpointUrl: server.endpointUrl });
      assert.equal(found.status, 200, JSON.stringify(found.body));
      const rows = found.body.endpoints as Array<{ securityMode: string; securityPolicy: string; userTokenTypes: string[]; serverCertificate: { thumbprint: string } }>;
      assert.ok(rows.some((r) => r.securityMode === 'SignAndEncrypt' && r.securityPolicy === 'Aes256_Sha256_RsaPss'), JSON.stringify(rows));
      assert.ok(rows.every((r) => r.serverCertificate.thumbprint.length === 40));
      assert.ok(rows[0].userTokenTypes.includes('Anonymous'));
      const sessionsBefore = server.sessionCount();
      for (let i = 0; i < 5; i++) {
        const browsed = await helper.request().get('/uns-opcua-endpoint/ep/browse?nodeId=ns%3D1%3Bs%3DDrive1');
        assert.equal(browsed.status, 200);
        assert.ok((browsed.body.nodes as Array<{ browseName: string }>).some((n) => n.browseName === '1:Speed'));
      }
      assert.equal(server.sessionCount(), sessionsBefore, 'browsing opens no session');
      const search = await helper.request().get('/uns-opcua-endpoint/ep/browse?nodeId=ns%3D1%3Bs%3DDrive1&search=curr');
      assert.deepEqual((search.body.nodes as Array<{ browseName: string }>).map((n) => n.browseName), ['1:Current']);
    });

    it('admin: browse with a query parameter given twice or as an object answers 400 with the parameter named, not a 500', async () => {
      await connect(subscribeFlow());
      await next('out', (m) => typeof (m.payload as Record<string, unknown>).speed === 'number');
      // The helper loads no message catalog: RED._ answers the key.
      for (const query of ['search=a&search=b', 'nodeId=i%3D85&nodeId=i%3D84', 'search[x]=a&depth=2&depth=3']) {
        const answer = await helper.request().get(`/uns-opcua-endpoint/ep/browse?${query}`);
        assert.equal(answer.status, 400, `${query}: ${JSON.stringify(answer.body)}`);
        assert.deepEqual(answer.body, { ok: false, error: 'opcua.errors.bad-browse-query' });
      }
      const good = await helper.request().get('/uns-opcua-endpoint/ep/browse?nodeId=ns%3D1%3Bs%3DDrive1&search=curr');
      assert.equal(good.status, 200);
    });
  });
});
