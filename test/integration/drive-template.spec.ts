/**
 * flows/vfd-template.json as a user imports it: loaded into Node-RED (node-red-node-test-helper,
 * with the core inject, debug, catch and comment nodes) with its Modbus link pointed at the
 * simulated plant and its broker at a real Mosquitto process. The drive's metrics arrive as
 * retained UNS topics; the template's command panel changes the drive, and a command the guard
 * refuses reaches the template's catch node with the reason while the drive keeps its setpoint.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { Mosquitto } from '../helpers/mosquitto';

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

type FlowNode = { id: string; type: string; x?: unknown; y?: unknown; z?: string; wires?: string[][]; [key: string]: unknown };
interface HelperNode { on(event: string, fn: (arg: unknown) => void): void; receive(msg: object): void }

const ROOT = join(__dirname, '..', '..');
const TEMPLATE = join(ROOT, 'flows', 'vfd-template.json');
const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const coreNode = (file: string): unknown => require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', file));
const CORE_NODES = ['20-inject.js', '21-debug.js', '25-catch.js', '90-comment.js'].map(coreNode);
const CORE_TYPES = ['tab', 'inject', 'debug', 'catch', 'comment'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flows/vfd-template.json on the simulated plant and Mosquitto', function () {
  this.timeout(30_000);
  let plant: SimulatedPlantHandle;
  let broker: Mosquitto;
  let subscriber: MqttClient;
  let userDir: string;
  /** Latest retained/live value per metric of the drive. */
  const uns = new Map<string, { value: unknown; unit?: string; quality?: string }>();
  const template = JSON.parse(readFileSync(TEMPLATE, 'utf8')) as FlowNode[];

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    broker = await Mosquitto.start();
    userDir = mkdtempSync(join(tmpdir(), 'uns-vfd-template-'));
    helper.settings({ userDir });
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
    await plant?.close();
    helper.settings({});
    rmSync(userDir, { recursive: true, force: true });
  });

  async function until(what: string, check: () => boolean, ms = 8000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; UNS has ${JSON.stringify(Object.fromEntries(uns))}`);
      await sleep(25);
    }
  }
  const press = (name: string) => {
    const inject = template.find((n) => n.type === 'inject' && n.name === name);
    assert.ok(inject, `the template has an inject "${name}"`);
    (helper.getNode(inject.id) as HelperNode).receive({});
  };

  it('is a flow a user can import: x/y on every flow node, known node types, wired to existing nodes', () => {
    const ids = new Set(template.map((n) => n.id));
    const ours = ['uns-broker', 'uns-out', 'uns-in', 'uns-modbus-link', 'uns-modbus-read', 'uns-vfd'];
    for (const n of template) {
      assert.ok(CORE_TYPES.includes(n.type) || ours.includes(n.type), `${n.id}: type ${n.type}`);
      // Config nodes (link, broker) sit on the tab too, so the tab's UNS_EDGE_* variables apply to them.
      const isConfig = n.type === 'uns-modbus-link' || n.type === 'uns-broker';
      if (n.z !== undefined && !isConfig) assert.ok(typeof n.x === 'number' && typeof n.y === 'number', `${n.id} (${n.type}) has x and y`);
      for (const target of (n.wires ?? []).flat()) assert.ok(ids.has(target), `${n.id} wires to ${target}`);
    }
    assert.ok(template.some((n) => n.type === 'comment' && String(n.info).length > 200), 'a comment explains the template');
    const drive = template.find((n) => n.type === 'uns-vfd');
    assert.ok(drive && ids.has(String(drive.link)) && (drive.wires ?? [])[0].some((id) => template.find((n) => n.id === id)?.type === 'uns-out'));
  });

  it('publishes the drive into the UNS; the command panel sets the speed; a refused command reaches the catch node and writes nothing', async () => {
    const flow = template.map((n) => {
      if (n.type === 'uns-modbus-link') return { ...n, host: plant.host, port: plant.port };
      if (n.type === 'uns-broker') return { ...n, host: '127.0.0.1', port: broker.port };
      return n;
    });
    await helper.load([...CORE_NODES, unsNodes, modbusNodes, driveNodes], flow);
    await until('running in the UNS', () => uns.get('running')?.value === true && uns.get('state')?.value === 'RUNNING');
    assert.deepEqual([uns.get('actualSpeed')?.unit, uns.get('actualSpeed')?.quality], ['rpm', 'good']);
    assert.equal(uns.get('faultText')?.value, 'No fault');

    press('setpoint 900 rpm');
    await until('the setpoint in the UNS', () => uns.get('speedSetpoint')?.value === 900);
    assert.equal(plant.drives[0].setpointRpm, 900);

    const rejected = template.find((n) => n.type === 'catch');
    const why = new Promise<{ error: { message: string } }>((resolve) => {
      (helper.getNode(String(rejected?.wires?.[0][0])) as HelperNode).on('input', (msg) => resolve(msg as { error: { message: string } }));
    });
    press('setpoint 1800 rpm');
    assert.match((await why).error.message, /setpoint 1800 rpm changes the setpoint by 900 rpm from 900 rpm; the ramp limit 300 rpm\/s allows/);
    assert.equal(plant.drives[0].setpointRpm, 900, 'nothing written');

    press('stop');
    await until('stopped in the UNS', () => uns.get('running')?.value === false || uns.get('actualSpeed')?.value === 0);
    assert.equal(plant.drives[0].control.run, false);
  });
});
