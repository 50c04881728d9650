/**
 * Every template of flows/ deployed as shipped into a Node-RED runtime (node-red-node-test-helper,
 * with this package's nodes and the core nodes the templates use): the templates say where the
 * broker and the simulated plant are only through `${UNS_EDGE_MQTT_HOST}`, `${UNS_EDGE_MQTT_PORT}`,
 * `${UNS_EDGE_SIM_HOST}` and `${UNS_EDGE_SIM_PORT}`, the variables `uns-edge demo` sets
 * (docs/simulated-plant.md). With them pointing at an aedes broker (the demo's embedded broker) and a
 * simulated plant on free ports, every connection of every template comes up there; with none set, each template's
 * tab gives the defaults of `uns-edge simulate` and a local broker (127.0.0.1:5020 and :1883).
 */
import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import driveNodes = require('../../nodes/drive/drive');
import fastpollNodes = require('../../nodes/fastpoll/fastpoll');
import modbusNodes = require('../../nodes/modbus/modbus');
import sparkplugNodes = require('../../nodes/sparkplug/sparkplug');
import unsNodes = require('../../nodes/uns/uns');
import { connectionStatuses } from '../../lib/runtime/connection-registry';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { AedesBroker, startAedes } from '../helpers/aedes';
import { coreNodes, readTemplate, TemplateRuntime, until } from '../helpers/template-runtime';

const TEMPLATES = readdirSync(join(__dirname, '..', '..', 'flows')).filter((file) => file.endsWith('.json'));
/** Templates deployed by their own test, with the peer they need. */
const DEPLOYED_ELSEWHERE: Record<string, string> = {
  'opcua-drive.json': 'the simulated OPC UA server: test/integration/sim-opcua-template.spec.ts',
  'zones-and-conduits.json': 'the zone nodes, setpoints through the conduit: test/integration/zones-template.spec.ts',
  'predictive-maintenance.json': 'the twin nodes, months of wear to alerts through Mosquitto: test/integration/twin-wear.spec.ts',
  'plant-audit.json': 'the asset scan against the simulated plant, its OPC UA server and aedes: test/integration/audit-template.spec.ts',
  'guarded-advice.json': 'the advice, zone and drive nodes, approved through the admin API: test/integration/advice-template.spec.ts',
  'uns-to-opcua.json': 'the OPC UA server and PubSub nodes with a node-opcua client: test/integration/opcua-server-template.spec.ts',
  'pilot-dashboard.json': 'the Dashboard 2.0 nodes with a gateway serving /dashboard, live values in Chromium: test/e2e/pilot-dashboard.spec.ts',
  'legacy-rtu-4-20ma.json': 'an RS-485 bus (pymodbus RTU on a socat pty), 4–20 mA and NE43 faults: test/integration/legacy-rtu-template.spec.ts',
  'multi-line-site.json': 'the simulated plant on two ports, one per line: test/integration/multi-line-template.spec.ts',
};
const CORE_NODES = coreNodes('20-inject.js', '21-debug.js', '25-catch.js', '90-comment.js');
const PACKAGE_NODES = [unsNodes, modbusNodes, driveNodes, sparkplugNodes, fastpollNodes];
/** Node types that report their connection to the registry read by /healthz. */
const CONNECTING_TYPES = ['uns-broker', 'uns-modbus-link', 'uns-sparkplug-edge', 'uns-sparkplug-host'];
const VARIABLES = ['UNS_EDGE_MQTT_HOST', 'UNS_EDGE_MQTT_PORT', 'UNS_EDGE_SIM_HOST', 'UNS_EDGE_SIM_PORT'] as const;

describe('flow templates deployed as shipped (flows/*.json)', function () {
  this.timeout(60_000);
  let runtime: TemplateRuntime;
  let plant: SimulatedPlantHandle;
  let broker: AedesBroker;

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    broker = await startAedes();
    runtime = await TemplateRuntime.start('flow-templates');
  });
  afterEach(async () => {
    await runtime.unload();
    runtime.restoreEnvironment();
  });
  after(async () => {
    await runtime?.stop(() => broker?.close(), () => plant?.close());
  });

  for (const file of TEMPLATES.filter((name) => !(name in DEPLOYED_ELSEWHERE))) {
    it(`${file}: with UNS_EDGE_* set, connects to that broker and plant`, async () => {
      runtime.setEnvironment({
        UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port),
        UNS_EDGE_SIM_HOST: plant.host, UNS_EDGE_SIM_PORT: String(plant.port),
      });
      const template = readTemplate(file);
      await runtime.load([...CORE_NODES, ...PACKAGE_NODES], template);
      const connecting = template.filter((node) => CONNECTING_TYPES.includes(node.type)).map((node) => node.id);
      const connected = () => new Set(connectionStatuses().filter((s) => s.connected).map((s) => s.id));
      await until(`connected: ${connecting.join(', ')}; registry ${JSON.stringify(connectionStatuses())}`,
        () => connecting.every((id) => connected().has(id)), 15_000);
      // uns-fast-poll opens its own connection: a write through it reaches the plant.
      const poller = template.find((node) => node.type === 'uns-fast-poll');
      if (poller) {
        const inject = template.find((node) => node.type === 'inject' && (node.wires ?? []).flat().includes(poller.id));
        assert.ok(inject, 'an inject wired to the poller');
        const { address, value } = JSON.parse(String(inject.payload)) as { address: number; value: number };
        assert.equal(address, 1, 'the inject writes the speed setpoint');
        runtime.getNode(inject.id).receive({});
        await until(`setpoint ${value} in the plant`, () => plant.drives[0]!.setpointRpm === value, 15_000);
      }
      assert.ok(connecting.length > 0 || poller, `${file} connects to something`);
    });
  }

  for (const file of TEMPLATES) {
    it(`${file}: with no UNS_EDGE_* set, the tab's variables take their defaults (plant 127.0.0.1:5020, broker 127.0.0.1:1883)`, async () => {
      const tab = readTemplate(file).find((node) => node.type === 'tab')!;
      const variables = (tab.env ?? []) as Array<{ name: string; value: string }>;
      const declared = variables.map((v) => v.name);
      runtime.setEnvironment(Object.fromEntries([...VARIABLES, ...declared].map((name) => [name, undefined])));
      assert.ok(declared.length > 0, 'the tab declares its variables');
      // An inject on the template's tab reads the variables as any node there sees them.
      const probe = {
        id: 'probe', type: 'inject', z: tab.id, props: declared.map((name) => ({ p: name, v: name, vt: 'env' })),
        repeat: '', once: false, topic: '', x: 0, y: 0, wires: [['seen']],
      };
      await runtime.load(CORE_NODES, [tab, probe, { id: 'seen', type: 'debug', z: tab.id, active: false, x: 0, y: 0, wires: [] }]);
      const seen = new Promise<Record<string, unknown>>((resolve) => runtime.getNode('seen').on('input', (msg) => resolve(msg as Record<string, unknown>)));
      runtime.getNode('probe').receive({});
      const msg = await seen;
      const defaults: Record<string, string> = { UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: '1883', UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: '5020' };
      for (const { name, value } of variables) {
        // Other variables (another plant's address): the default the tab's expression names.
        const expected = defaults[name] ?? /: "([^"]+)"$/.exec(value)?.[1];
        assert.equal(msg[name], expected, name);
      }
    });
  }
});
