/**
 * flows/opcua-drive.json as a user imports it, against the simulated plant's OPC UA server and a real
 * Mosquitto: the two-sided trust exchange done as the template's comment says (trust the server in
 * the gateway's PKI; the server refuses us until our certificate is moved from its rejected/ to its
 * trusted list), then drive 2's values in the UNS, the setpoint written and refused out of EURange,
 * ResetFault called. Nothing is auto-trusted on either side.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import opcuaNodes = require('../../nodes/opcua/opcua');
import unsNodes = require('../../nodes/uns/uns');
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { startSimulatedOpcUaServer, type SimulatedOpcUaServer } from '../../sim/opcua-server';
import { Mosquitto } from '../helpers/mosquitto';
import { coreNodes, readTemplate, TemplateRuntime, until, watchAsset, type UnsMetric } from '../helpers/template-runtime';

const ASSET = 'acme/plant1/packaging/line1/cell1/drive2';
const OPERATOR = { username: 'operator', password: 'op-secret-9', role: 'write' } as const;
const CORE_NODES = coreNodes('20-inject.js', '21-debug.js', '90-comment.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flows/opcua-drive.json on the simulated OPC UA drive and Mosquitto', function () {
  this.timeout(60_000);
  let runtime: TemplateRuntime;
  let plant: SimulatedPlantHandle;
  let sim: SimulatedOpcUaServer;
  let broker: Mosquitto;
  let watcher: { metrics: Map<string, UnsMetric>; end(): Promise<void> };
  let uns: Map<string, UnsMetric>;
  const template = readTemplate('opcua-drive.json');

  before(async () => {
    runtime = await TemplateRuntime.start('opcua-template');
    plant = await startSimulatedPlant({ port: 0, drives: 2 });
    sim = await startSimulatedOpcUaServer({ plant: plant.plant, pkiDir: join(runtime.dir, 'sim-pki'), port: 0, users: [OPERATOR] });
    broker = await Mosquitto.start();
    watcher = await watchAsset(broker.url, ASSET);
    uns = watcher.metrics;
  });
  after(async () => {
    await runtime?.stop(() => watcher?.end(), () => broker?.dispose(), () => sim?.close(), () => plant?.close());
  });

  const untilInUns = (what: string, check: () => boolean) => until(what, check, 20_000, () => `UNS has ${JSON.stringify(Object.fromEntries(uns))}`);
  const press = (name: string) => runtime.press(template, name);
  const nextOutput = (nodeType: string) => new Promise<unknown>((resolve) => {
    const node = template.find((n) => n.type === nodeType);
    runtime.getNode(String(node?.wires?.[0][0])).on('input', resolve);
  });

  it('after the two-sided trust, publishes drive 2, writes its setpoint within EURange and calls ResetFault', async () => {
    // Step 3 of the comment (trusting the server in the gateway's PKI), done as the Trust tab does it: into trusted/certs.
    const trusted = join(runtime.userDir, 'uns-edge', 'opcua', 'pki', 'trusted', 'certs');
    mkdirSync(trusted, { recursive: true });
    copyFileSync(sim.certificateFile, join(trusted, 'simulated-plant.pem'));

    const flow = template.map((n) => {
      if (n.type === 'uns-opcua-endpoint') return { ...n, endpointUrl: sim.endpointUrl, maxBackoff: 1000 };
      if (n.type === 'uns-broker') return { ...n, host: '127.0.0.1', port: broker.port };
      return n;
    });
    const endpoint = template.find((n) => n.type === 'uns-opcua-endpoint')!;
    await runtime.load([...CORE_NODES, unsNodes, opcuaNodes], flow, { [endpoint.id]: { user: OPERATOR.username, password: OPERATOR.password } });

    // Step 4: the server refused us and kept our certificate; trusting it lets the endpoint in on its next retry.
    await untilInUns('the server to refuse the gateway', () => sim.rejectedClientCertificates().length === 1);
    assert.equal(uns.size, 0, 'nothing before the server trusts us');
    assert.equal(await sim.trustRejectedClientCertificates(), 1);

    await untilInUns('drive 2 in the UNS', () => typeof uns.get('actualSpeed')?.value === 'number' && uns.get('running')?.value === true);
    assert.equal(uns.get('actualSpeed')?.quality, 'good');
    assert.ok(Math.abs(Number(uns.get('actualSpeed')?.value) - plant.drives[1].speedRpm) < 200, `speed ${JSON.stringify(uns.get('actualSpeed'))} vs ${plant.drives[1].speedRpm}`);

    const written = nextOutput('uns-opcua-write');
    press('setpoint 900 rpm');
    await written;
    assert.equal(plant.drives[1].setpointRpm, 900);
    await untilInUns('the setpoint in the UNS', () => uns.get('speedSetpoint')?.value === 900);

    const refused = nextOutput('uns-opcua-write');
    press('setpoint 2500 rpm (refused: EURange 0..1800)');
    await Promise.race([refused, sleep(3000)]);
    assert.equal(plant.drives[1].setpointRpm, 900, 'nothing written');

    plant.injectFault(2, 'overcurrent');
    await untilInUns('the trip', () => plant.drives[1].fault === 'overcurrent');
    plant.drives[1].clearInjection('overcurrent');
    const called = nextOutput('uns-opcua-method');
    press('reset fault (no arguments)');
    const answer = await called as { ok: boolean; payload: unknown };
    assert.deepEqual([answer.ok, answer.payload], [true, { FaultCleared: true }]);
    assert.equal(plant.drives[1].fault, 'none');
  });
});
