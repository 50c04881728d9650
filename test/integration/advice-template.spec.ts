/**
 * flows/guarded-advice.json deployed as shipped (node-red-node-test-helper) against the simulated plant
 * and an aedes broker: the inject stands in for the agent and proposes 1250 rpm; the proposal waits;
 * it is approved through the editor's admin API (as the dialog's Approve button does); the conduit lets
 * it through and the drive writes it; every step reaches the debug node.
 */
import { strict as assert } from 'node:assert';
import adviceNodes = require('../../nodes/advice/advice');
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import zonesNodes = require('../../nodes/zones/zones');
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { type AedesBroker, startAedes } from '../helpers/aedes';
import { coreNodes, readTemplate, TemplateRuntime, until } from '../helpers/template-runtime';

describe('guarded-advice template against the simulated plant', function () {
  this.timeout(60_000);
  let runtime: TemplateRuntime;
  let plant: SimulatedPlantHandle;
  let broker: AedesBroker;

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    broker = await startAedes();
    runtime = await TemplateRuntime.start('advice-template');
    runtime.setEnvironment({ UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port), UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port) });
  });
  after(async () => {
    await runtime?.stop(() => broker?.close(), () => plant?.close());
  });

  it('a proposal waits, is approved in the editor and written through the conduit and the drive', async () => {
    const flow = readTemplate('guarded-advice.json');
    await runtime.load([unsNodes, modbusNodes, driveNodes, zonesNodes, adviceNodes, ...coreNodes('20-inject.js', '21-debug.js', '90-comment.js')], flow);
    const steps: any[] = [];
    runtime.getNode('advice-debug-events').on('input', (msg) => steps.push(msg.payload));
    await until('the drive polled once', () => plant.drives[0].setpointRpm > 0);
    runtime.getNode('advice-inject').receive({});
    await until('proposed', () => steps.some((s) => s.step === 'proposed'));
    const pending = await runtime.request().get('/uns-edge/advice/advice-node/pending');
    assert.equal(pending.body.pending.length, 1);
    const [proposal] = pending.body.pending;
    assert.equal(proposal.principal, 'flow:speed-model');
    const decided = await runtime.request().post('/uns-edge/advice/advice-node/decide').send({ id: proposal.id, decision: 'approve' });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    await until('written', () => steps.some((s) => s.step === 'written' || s.step.startsWith('refused-by')));
    assert.deepEqual(steps.map((s) => s.step), ['proposed', 'approved', 'forwarded', 'written']);
    assert.equal(steps[1].approver, 'editor:anonymous');
    await until('the drive at 1250 rpm', () => plant.drives[0].setpointRpm === 1250);
  });
});
