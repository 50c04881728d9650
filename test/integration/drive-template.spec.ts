/**
 * flows/vfd-template.json as a user imports it: loaded into Node-RED (node-red-node-test-helper,
 * with the core inject, debug, catch and comment nodes) with its Modbus link pointed at the
 * simulated plant and its broker at a real Mosquitto process. The drive's metrics arrive as
 * retained UNS topics; the template's command panel changes the drive, and a command the guard
 * refuses reaches the template's catch node with the reason while the drive keeps its setpoint.
 */
import { strict as assert } from 'node:assert';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { Mosquitto } from '../helpers/mosquitto';
import { coreNodes, readTemplate, TemplateRuntime, until, watchAsset, type UnsMetric } from '../helpers/template-runtime';

const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const CORE_NODES = coreNodes('20-inject.js', '21-debug.js', '25-catch.js', '90-comment.js');
const CORE_TYPES = ['tab', 'inject', 'debug', 'catch', 'comment'];

describe('flows/vfd-template.json on the simulated plant and Mosquitto', function () {
  this.timeout(30_000);
  let runtime: TemplateRuntime;
  let plant: SimulatedPlantHandle;
  let broker: Mosquitto;
  let watcher: { metrics: Map<string, UnsMetric>; end(): Promise<void> };
  /** Latest retained/live value per metric of the drive. */
  let uns: Map<string, UnsMetric>;
  const template = readTemplate('vfd-template.json');

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    broker = await Mosquitto.start();
    runtime = await TemplateRuntime.start('vfd-template');
    watcher = await watchAsset(broker.url, ASSET);
    uns = watcher.metrics;
  });
  after(async () => {
    await runtime?.stop(() => watcher?.end(), () => broker?.dispose(), () => plant?.close());
  });

  const untilInUns = (what: string, check: () => boolean) => until(what, check, 8000, () => `UNS has ${JSON.stringify(Object.fromEntries(uns))}`);
  const press = (name: string) => runtime.press(template, name);

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
    await runtime.load([...CORE_NODES, unsNodes, modbusNodes, driveNodes], flow);
    await untilInUns('running in the UNS', () => uns.get('running')?.value === true && uns.get('state')?.value === 'RUNNING');
    assert.deepEqual([uns.get('actualSpeed')?.unit, uns.get('actualSpeed')?.quality], ['rpm', 'good']);
    assert.equal(uns.get('faultText')?.value, 'No fault');

    press('setpoint 900 rpm');
    await untilInUns('the setpoint in the UNS', () => uns.get('speedSetpoint')?.value === 900);
    assert.equal(plant.drives[0].setpointRpm, 900);

    const rejected = template.find((n) => n.type === 'catch');
    const why = new Promise<{ error: { message: string } }>((resolve) => {
      runtime.getNode(String(rejected?.wires?.[0][0])).on('input', (msg) => resolve(msg as { error: { message: string } }));
    });
    press('setpoint 1800 rpm');
    assert.match((await why).error.message, /setpoint 1800 rpm changes the setpoint by 900 rpm from 900 rpm; the ramp limit 300 rpm\/s allows/);
    assert.equal(plant.drives[0].setpointRpm, 900, 'nothing written');

    press('stop');
    await untilInUns('stopped in the UNS', () => uns.get('running')?.value === false || uns.get('actualSpeed')?.value === 0);
    assert.equal(plant.drives[0].control.run, false);
  });
});
