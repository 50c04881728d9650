/**
 * flows/plant-audit.json deployed as shipped (node-red-node-test-helper) with its UNS_EDGE_* variables
 * pointing at the simulated plant, the simulated OPC UA server as `uns-edge simulate` starts it, and an
 * aedes broker (the demo's embedded broker): the scan that runs after deploy finds the four drives with
 * their FC 43 identity, the OPC UA endpoints and the broker's anonymous access; the counts reach the UNS
 * as retained metrics; the report files are written.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import auditNodes = require('../../nodes/audit/audit');
import unsNodes = require('../../nodes/uns/uns');
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { startSimulatedOpcUaServer, type SimulatedOpcUaServer } from '../../sim/opcua-server';
import { type AedesBroker, startAedes } from '../helpers/aedes';

interface TestHelper {
  init(nodeRedPath: string): void;
  settings(settings: object): object;
  startServer(done: () => void): void;
  stopServer(done: () => void): void;
  load(nodes: unknown, flow: object[]): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): unknown;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));
const coreNode = (file: string): unknown => require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', file));

describe('plant-audit template against the simulated plant, its OPC UA server and the demo broker', function () {
  this.timeout(90_000);
  let dir: string;
  let plant: SimulatedPlantHandle;
  let opcua: SimulatedOpcUaServer;
  let broker: AedesBroker;
  const saved = new Map<string, string | undefined>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-plant-audit-'));
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    opcua = await startSimulatedOpcUaServer({ plant: plant.plant, pkiDir: join(dir, 'sim-pki'), port: 0, users: [{ username: 'operator', password: 'op-secret-1', role: 'write' }] });
    broker = await startAedes();
    const env = { UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port), UNS_EDGE_OPCUA_HOST: '127.0.0.1', UNS_EDGE_OPCUA_PORT: String(opcua.port), UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port) };
    for (const [name, value] of Object.entries(env)) {
      saved.set(name, process.env[name]);
      process.env[name] = value;
    }
    helper.settings({ userDir: join(dir, 'userDir') });
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  after(async () => {
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
    helper.settings({});
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await broker?.close();
    await opcua?.close();
    await plant?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scans after deploy: drives with FC 43 identity, OPC UA endpoints, anonymous broker; counts in the UNS; files written', async () => {
    const flow = JSON.parse(readFileSync(join(__dirname, '..', '..', 'flows', 'plant-audit.json'), 'utf8')) as object[];
    const subscriber = await mqtt.connectAsync(broker.url);
    const uns = new Map<string, unknown>();
    subscriber.on('message', (topic, payload) => uns.set(topic, JSON.parse(payload.toString()).value));
    await subscriber.subscribeAsync('acme/plant1/security/#');
    try {
      await helper.load([unsNodes, auditNodes, ...['20-inject.js', '21-debug.js', '90-comment.js'].map(coreNode)], flow);
      const reports: any[] = [];
      (helper.getNode('audit-debug-report') as { on(e: string, f: (m: any) => void): void }).on('input', (msg) => reports.push(msg));
      const deadline = Date.now() + 60_000;
      while (reports.length === 0 || !uns.has('acme/plant1/security/asset-scan/anonymousBrokers')) {
        if (Date.now() > deadline) throw new Error('no report and UNS counts within 60 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      const { payload: report, files } = reports[0];
      const [modbus] = report.inventory.modbus;
      assert.deepEqual(modbus.units.map((u: any) => [u.unitId, u.identity.vendorName, u.identity.productCode]), [1, 2, 3, 4].map((u) => [u, 'uns-edge', 'uns-edge-simulated-drive']));
      const [server] = report.inventory.opcua;
      assert.equal(server.endpoints.length, 3, server.problem);
      assert.ok(server.endpoints.every((e: any) => e.securityMode === 'SignAndEncrypt'));
      assert.equal(report.inventory.mqtt[0].anonymousAccepted, true);
      assert.ok(report.findings.some((f: any) => f.rule === 'mqtt-anonymous' && f.sr.includes('SR 1.1')));
      assert.equal(uns.get('acme/plant1/security/asset-scan/modbusDevices'), 4);
      assert.equal(uns.get('acme/plant1/security/asset-scan/anonymousBrokers'), 1);
      assert.ok(existsSync(files.json) && existsSync(files.html));
    } finally {
      await subscriber.endAsync();
    }
  });
});
