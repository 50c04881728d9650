/**
 * flows/opcua-drive.json as a user imports it, against the simulated plant's OPC UA server and a real
 * Mosquitto: the two-sided trust exchange done as the template's comment says (trust the server in
 * the gateway's PKI; the server refuses us until our certificate is moved from its rejected/ to its
 * trusted list), then drive 2's values in the UNS, the setpoint written and refused out of EURange,
 * ResetFault called. Nothing is auto-trusted on either side.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import opcuaNodes = require('../../nodes/opcua/opcua');
import unsNodes = require('../../nodes/uns/uns');
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { startSimulatedOpcUaServer, type SimulatedOpcUaServer } from '../../sim/opcua-server';
import { Mosquitto } from '../helpers/mosquitto';

interface TestHelper {
  init(nodeRedPath: string): void;
  settings(settings: object): object;
  startServer(done: () => void): void;
  stopServer(done: () => void): void;
  load(nodes: unknown, flow: object[], credentials?: object): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): unknown;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));

type FlowNode = { id: string; type: string; name?: string; z?: string; wires?: string[][]; [key: string]: unknown };
interface HelperNode { on(event: string, fn: (arg: unknown) => void): void; receive(msg: object): void }

const ROOT = join(__dirname, '..', '..');
const TEMPLATE = join(ROOT, 'flows', 'opcua-drive.json');
const ASSET = 'acme/plant1/packaging/line1/cell1/drive2';
const OPERATOR = { username: 'operator', password: 'op-secret-9', role: 'write' } as const;
const coreNode = (file: string): unknown => require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', file));
const CORE_NODES = ['20-inject.js', '21-debug.js', '90-comment.js'].map(coreNode);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flows/opcua-drive.json on the simulated OPC UA drive and Mosquitto', function () {
  this.timeout(60_000);
  let dir: string;
  let plant: SimulatedPlantHandle;
  let sim: SimulatedOpcUaServer;
  let broker: Mosquitto;
  let subscriber: MqttClient;
  const uns = new Map<string, { value: unknown; quality?: string }>();
  const template = JSON.parse(readFileSync(TEMPLATE, 'utf8')) as FlowNode[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-opcua-template-'));
    plant = await startSimulatedPlant({ port: 0, drives: 2 });
    sim = await startSimulatedOpcUaServer({ plant: plant.plant, pkiDir: join(dir, 'sim-pki'), port: 0, users: [OPERATOR] });
    broker = await Mosquitto.start();
    helper.settings({ userDir: join(dir, 'node-red') });
    await new Promise<void>((r) => helper.startServer(() => r()));
    subscriber = connect(broker.url, { reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { subscriber.once('connect', () => resolve()); subscriber.once('error', reject); });
    subscriber.on('message', (topic, payload) => {
      if (topic.startsWith(`${ASSET}/`)) uns.set(topic.slice(ASSET.length + 1), JSON.parse(payload.toString()));
    });
    await subscriber.subscribeAsync(`${ASSET}/#`, { qos: 1 });
  });
  after(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    await subscriber?.endAsync();
    await broker?.dispose();
    await sim?.close();
    await plant?.close();
    helper.settings({});
    rmSync(dir, { recursive: true, force: true });
  });

  async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; UNS has ${JSON.stringify(Object.fromEntries(uns))}`);
      await sleep(50);
    }
  }
  const press = (name: string) => {
    const inject = template.find((n) => n.type === 'inject' && n.name === name);
    assert.ok(inject, `the template has an inject "${name}"`);
    (helper.getNode(inject.id) as HelperNode).receive({});
  };
  const nextOutput = (nodeType: string) => new Promise<unknown>((resolve) => {
    const node = template.find((n) => n.type === nodeType);
    (helper.getNode(String(node?.wires?.[0][0])) as HelperNode).on('input', resolve);
  });

  it('after the two-sided trust, publishes drive 2, writes its setpoint within EURange and calls ResetFault', async () => {
    // Step 3 of the comment (trusting the server in the gateway's PKI), done as the Trust tab does it: into trusted/certs.
    const trusted = join(dir, 'node-red', 'uns-edge', 'opcua', 'pki', 'trusted', 'certs');
    mkdirSync(trusted, { recursive: true });
    copyFileSync(sim.certificateFile, join(trusted, 'simulated-plant.pem'));

    const flow = template.map((n) => {
      if (n.type === 'uns-opcua-endpoint') return { ...n, endpointUrl: sim.endpointUrl, maxBackoff: 1000 };
      if (n.type === 'uns-broker') return { ...n, host: '127.0.0.1', port: broker.port };
      return n;
    });
    const endpoint = template.find((n) => n.type === 'uns-opcua-endpoint')!;
    await helper.load([...CORE_NODES, unsNodes, opcuaNodes], flow, { [endpoint.id]: { user: OPERATOR.username, password: OPERATOR.password } });

    // Step 4: the server refused us and kept our certificate; trusting it lets the endpoint in on its next retry.
    await until('the server to refuse the gateway', () => sim.rejectedClientCertificates().length === 1);
    assert.equal(uns.size, 0, 'nothing before the server trusts us');
    assert.equal(await sim.trustRejectedClientCertificates(), 1);

    await until('drive 2 in the UNS', () => typeof uns.get('actualSpeed')?.value === 'number' && uns.get('running')?.value === true);
    assert.equal(uns.get('actualSpeed')?.quality, 'good');
    assert.ok(Math.abs(Number(uns.get('actualSpeed')?.value) - plant.drives[1].speedRpm) < 200, `speed ${JSON.stringify(uns.get('actualSpeed'))} vs ${plant.drives[1].speedRpm}`);

    const written = nextOutput('uns-opcua-write');
    press('setpoint 900 rpm');
    await written;
    assert.equal(plant.drives[1].setpointRpm, 900);
    await until('the setpoint in the UNS', () => uns.get('speedSetpoint')?.value === 900);

    const refused = nextOutput('uns-opcua-write');
    press('setpoint 2500 rpm (refused: EURange 0..1800)');
    await Promise.race([refused, sleep(3000)]);
    assert.equal(plant.drives[1].setpointRpm, 900, 'nothing written');

    plant.injectFault(2, 'overcurrent');
    await until('the trip', () => plant.drives[1].fault === 'overcurrent');
    plant.drives[1].clearInjection('overcurrent');
    const called = nextOutput('uns-opcua-method');
    press('reset fault (no arguments)');
    const answer = await called as { ok: boolean; payload: unknown };
    assert.deepEqual([answer.ok, answer.payload], [true, { FaultCleared: true }]);
    assert.equal(plant.drives[1].fault, 'none');
  });
});
