/**
 * flows/multi-line-site.json as a user imports it: two lines of one site, each on its own Modbus TCP
 * gateway (the simulated plant on two ports, as `uns-edge simulate --ports` serves them) through its
 * own uns-modbus-link, into one UNS tree on a real Mosquitto under UNS_EDGE_SITE_ROOT. Each line's
 * drives arrive under their own path with their own values (a setpoint changed on line 2's drive 1
 * shows there only), and nothing else is written under the root.
 */
import { strict as assert } from 'node:assert';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { Mosquitto } from '../helpers/mosquitto';
import { coreNodes, readTemplate, TemplateRuntime, until, watchAsset, type UnsMetric } from '../helpers/template-runtime';

const ROOT = 'acme/site-test/packaging';
const CORE_NODES = coreNodes('90-comment.js');

describe('flows/multi-line-site.json on the simulated plant on two ports and Mosquitto', function () {
  this.timeout(40_000);
  let runtime: TemplateRuntime;
  let plant: SimulatedPlantHandle;
  let broker: Mosquitto;
  let watcher: { metrics: Map<string, UnsMetric>; end(): Promise<void> };
  /** Latest metric per `lineN/cellM/driveK/<metric>` below the site root. */
  let uns: Map<string, UnsMetric>;
  const template = readTemplate('multi-line-site.json');

  before(async () => {
    // Two ports, two drives each: port 1 is line 1 (plant drives 1-2), port 2 is line 2 (plant drives 3-4), unit ids 1-2 on each.
    plant = await startSimulatedPlant({ ports: [0, 0], drives: 4 });
    broker = await Mosquitto.start();
    runtime = await TemplateRuntime.start('multi-line');
    watcher = await watchAsset(broker.url, ROOT);
    uns = watcher.metrics;
  });
  after(async () => {
    await runtime?.stop(() => watcher?.end(), () => broker?.dispose(), () => plant?.close());
  });

  const untilInUns = (what: string, check: () => boolean) => until(what, check, 15_000, () => `UNS has ${JSON.stringify([...uns.keys()])}`);
  const drivePaths = ['line1/cell1/drive1', 'line1/cell1/drive2', 'line2/cell1/drive1', 'line2/cell1/drive2'];

  it('each line\'s drives arrive under their own path of one tree; a change on line 2 shows on line 2 only', async () => {
    runtime.setEnvironment({
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port),
      UNS_EDGE_LINE1_HOST: plant.host, UNS_EDGE_LINE1_PORT: String(plant.ports[0].port),
      UNS_EDGE_LINE2_HOST: plant.host, UNS_EDGE_LINE2_PORT: String(plant.ports[1].port),
      UNS_EDGE_SITE_ROOT: ROOT,
    });
    await runtime.load([...CORE_NODES, unsNodes, modbusNodes, driveNodes], template);
    await untilInUns('all four drives under the site root', () => drivePaths.every((path) => uns.get(`${path}/actualSpeed`)?.quality === 'good'));
    const assets = new Set([...uns.keys()].map((key) => key.split('/').slice(0, 3).join('/')));
    assert.deepEqual([...assets].sort(), drivePaths, 'nothing else written under the root');

    // Line 2's drive 1 is plant drive 3 (port 2, unit 1): its setpoint appears at line2/cell1/drive1 only.
    const line1Drive1 = uns.get('line1/cell1/drive1/speedSetpoint')?.value;
    plant.setSetpoint(3, 777);
    await untilInUns('line 2 drive 1 at 777 rpm', () => uns.get('line2/cell1/drive1/speedSetpoint')?.value === 777);
    assert.notEqual(line1Drive1, 777);
    assert.equal(uns.get('line1/cell1/drive1/speedSetpoint')?.value, line1Drive1, 'line 1 drive 1 keeps its own setpoint');
  });
});
