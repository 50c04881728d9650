/**
 * flows/plant-audit.json deployed as shipped (node-red-node-test-helper) with its UNS_EDGE_* variables
 * pointing at the simulated plant, the simulated OPC UA server as `uns-edge simulate` starts it, and an
 * aedes broker (the demo's embedded broker): the scan that runs after deploy finds the four drives with
 * their FC 43 identity, the OPC UA endpoints and the broker's anonymous access; the counts reach the UNS
 * as retained metrics; the report files are written.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import auditNodes = require('../../nodes/audit/audit');
import unsNodes = require('../../nodes/uns/uns');
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { startSimulatedOpcUaServer, type SimulatedOpcUaServer } from '../../sim/opcua-server';
import { type AedesBroker, startAedes } from '../helpers/aedes';
import { coreNodes, readTemplate, TemplateRuntime, until } from '../helpers/template-runtime';

describe('plant-audit template against the simulated plant, its OPC UA server and the demo broker', function () {
  this.timeout(90_000);
  let runtime: TemplateRuntime;
  let plant: SimulatedPlantHandle;
  let opcua: SimulatedOpcUaServer;
  let broker: AedesBroker;

  before(async () => {
    runtime = await TemplateRuntime.start('plant-audit');
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    opcua = await startSimulatedOpcUaServer({ plant: plant.plant, pkiDir: join(runtime.dir, 'sim-pki'), port: 0, users: [{ username: 'operator', password: 'op-secret-1', role: 'write' }] });
    broker = await startAedes();
    runtime.setEnvironment({ UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port), UNS_EDGE_OPCUA_HOST: '127.0.0.1', UNS_EDGE_OPCUA_PORT: String(opcua.port), UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port) });
  });
  after(async () => {
    await runtime?.stop(() => broker?.close(), () => opcua?.close(), () => plant?.close());
  });

  it('scans after deploy: drives with FC 43 identity, OPC UA endpoints, anonymous broker; counts in the UNS; files written', async () => {
    const flow = readTemplate('plant-audit.json');
    const subscriber = await mqtt.connectAsync(broker.url);
    const uns = new Map<string, unknown>();
    subscriber.on('message', (topic, payload) => uns.set(topic, JSON.parse(payload.toString()).value));
    await subscriber.subscribeAsync('acme/plant1/security/#');
    try {
      await runtime.load([unsNodes, auditNodes, ...coreNodes('20-inject.js', '21-debug.js', '90-comment.js')], flow);
      const reports: any[] = [];
      runtime.getNode('audit-debug-report').on('input', (msg) => reports.push(msg));
      await until('the report and the UNS counts', () => reports.length > 0 && uns.has('acme/plant1/security/asset-scan/anonymousBrokers'), 60_000);
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
