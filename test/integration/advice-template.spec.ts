/**
 * flows/guarded-advice.json deployed as shipped (node-red-node-test-helper) against the simulated plant
 * and an aedes broker: the inject stands in for the agent and proposes 1250 rpm; the proposal waits;
 * it is approved through the editor's admin API (as the dialog's Approve button does); the conduit lets
 * it through and the drive writes it; every step reaches the debug node.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import adviceNodes = require('../../nodes/advice/advice');
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import zonesNodes = require('../../nodes/zones/zones');
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { type AedesBroker, startAedes } from '../helpers/aedes';

interface TestHelper {
  init(nodeRedPath: string): void;
  settings(settings: object): object;
  startServer(done: () => void): void;
  stopServer(done: () => void): void;
  load(nodes: unknown, flow: object[]): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): unknown;
  request(): { get(path: string): Promise<{ status: number; body: any }>; post(path: string): { send(body: unknown): Promise<{ status: number; body: any }> } };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));
const coreNode = (file: string): unknown => require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', file));

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('guarded-advice template against the simulated plant', function () {
  this.timeout(60_000);
  let dir: string;
  let plant: SimulatedPlantHandle;
  let broker: AedesBroker;
  const saved = new Map<string, string | undefined>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-advice-template-'));
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    broker = await startAedes();
    const env = { UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port), UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port) };
    for (const [name, value] of Object.entries(env)) {
      saved.set(name, process.env[name]);
      process.env[name] = value;
    }
    helper.settings({ userDir: dir });
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
    await plant?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a proposal waits, is approved in the editor and written through the conduit and the drive', async () => {
    const flow = JSON.parse(readFileSync(join(__dirname, '..', '..', 'flows', 'guarded-advice.json'), 'utf8')) as object[];
    await helper.load([unsNodes, modbusNodes, driveNodes, zonesNodes, adviceNodes, ...['20-inject.js', '21-debug.js', '90-comment.js'].map(coreNode)], flow);
    const steps: any[] = [];
    (helper.getNode('advice-debug-events') as { on(e: string, f: (m: any) => void): void }).on('input', (msg) => steps.push(msg.payload));
    await until('the drive polled once', () => plant.drives[0].setpointRpm > 0);
    (helper.getNode('advice-inject') as { receive(m: object): void }).receive({});
    await until('proposed', () => steps.some((s) => s.step === 'proposed'));
    const pending = await helper.request().get('/uns-edge/advice/advice-node/pending');
    assert.equal(pending.body.pending.length, 1);
    const [proposal] = pending.body.pending;
    assert.equal(proposal.principal, 'flow:speed-model');
    const decided = await helper.request().post('/uns-edge/advice/advice-node/decide').send({ id: proposal.id, decision: 'approve' });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    await until('written', () => steps.some((s) => s.step === 'written' || s.step.startsWith('refused-by')));
    assert.deepEqual(steps.map((s) => s.step), ['proposed', 'approved', 'forwarded', 'written']);
    assert.equal(steps[1].approver, 'editor:anonymous');
    await until('the drive at 1250 rpm', () => plant.drives[0].setpointRpm === 1250);
  });
});
