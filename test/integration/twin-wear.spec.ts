/**
 * Months of simulated wear at a sped-up clock drive maintenance alerts through the UNS, on the
 * shipped template flows/predictive-maintenance.json: the simulated plant (Modbus TCP) with its
 * wear clock sped up 2,000,000× (the plant's `wear` injection: its drives' vibration grows with wear)
 * → uns-vfd → uns-vfd-twin (time scale 2,000,000 through the template's UNS_EDGE_TWIN_TIME_SCALE)
 * → uns-out → a real Mosquitto → an MQTT subscriber. The subscriber sees drive 1's vibration move
 * from zone B through C to zone D (ISO 10816-1 class I) and its bearing cross an alert threshold,
 * each at `<asset>/twin/alert/<part>` with its reason, and the twin's metrics beside them.
 */
import { strict as assert } from 'node:assert';
import mqtt from 'mqtt';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import twinNodes = require('../../nodes/twin/twin');
import unsNodes = require('../../nodes/uns/uns');
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { Mosquitto } from '../helpers/mosquitto';
import { coreNodes, readTemplate, TemplateRuntime } from '../helpers/template-runtime';

interface Published { value: unknown; quality?: string; unit?: string; timestamp?: number }

const DRIVE1 = 'acme/plant1/packaging/line1/cell1/drive1';
/** Both clocks at the same speed: 2,000,000 twin (and wear) hours per real hour, 556 h a second. */
const SPEED_UP = 2_000_000;

describe('twin: months of simulated wear → maintenance alerts through the UNS (template, Mosquitto)', function () {
  this.timeout(90_000);
  let runtime: TemplateRuntime;
  let broker: Mosquitto;
  let plant: SimulatedPlantHandle;
  let subscriber: mqtt.MqttClient | undefined;

  before(async () => {
    broker = await Mosquitto.start();
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    runtime = await TemplateRuntime.start('twin-wear');
  });
  after(async () => {
    subscriber?.end(true);
    await runtime?.stop(() => plant?.close(), () => broker?.stop());
  });

  it('drive 1 ages months in seconds: vibration zone B → C → D and a bearing threshold alert reach an MQTT subscriber with their reasons', async () => {
    runtime.setEnvironment({
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port),
      UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port),
      UNS_EDGE_TWIN_TIME_SCALE: String(SPEED_UP),
    });

    // The subscriber is on the broker before the flow starts: every alert is seen as it is published.
    subscriber = mqtt.connect(broker.url, { clientId: 'twin-wear-watcher' });
    const seen = new Map<string, Published[]>();
    subscriber.on('message', (topic, payload) => {
      const list = seen.get(topic) ?? [];
      list.push(JSON.parse(payload.toString()) as Published);
      seen.set(topic, list);
    });
    await new Promise<void>((resolve, reject) => subscriber!.once('connect', () => subscriber!.subscribe(`${DRIVE1}/twin/#`, (error) => (error ? reject(error) : resolve()))));

    // The template as shipped, with one change a maintenance planner would make for this test: drive 1's
    // twin alerts at 3 % bearing life (months of wear at this duty) instead of 80 % (years).
    const flow = readTemplate('predictive-maintenance.json');
    const twin1 = flow.find((n) => n.id === 'pm-twin-1')!;
    assert.equal(twin1.timeScale, '${UNS_EDGE_TWIN_TIME_SCALE}');
    twin1.alertConsumed = 3;
    // The plant's wear clock at the same speed as the twin's (its vibration grows with wear hours).
    plant.injectFault(1, { kind: 'wear', multiplier: SPEED_UP });
    await runtime.load([unsNodes, modbusNodes, driveNodes, twinNodes, ...coreNodes('21-debug.js', '90-comment.js')], flow);

    const alertsOf = (part: string) => (seen.get(`${DRIVE1}/twin/alert/${part}`) ?? []).map((m) => String(m.value));
    const deadline = Date.now() + 75_000;
    while (!(alertsOf('vibration').some((a) => a.includes('zone D')) && alertsOf('bearing').length > 0)) {
      assert.ok(Date.now() < deadline, `no zone D and bearing alerts within 75 s: ${JSON.stringify(Object.fromEntries(seen), null, 1).slice(0, 3000)}`);
      await new Promise((resolve) => subscriber!.once('message', resolve));
    }

    const vibration = alertsOf('vibration');
    assert.match(vibration.find((a) => a.includes('zone C'))!, /^warning: vibration \d+\.\d\d mm\/s RMS moved from zone B to zone C \(1\.8 … 4\.5 mm\/s, ISO 10816-1:1995 Table B\.1, class I\): not for long-term operation: plan maintenance$/);
    assert.match(vibration.find((a) => a.includes('zone D'))!, /^alarm: vibration \d+\.\d\d mm\/s RMS moved from zone C to zone D \(≥ 4\.5 mm\/s, .*\): severe enough to cause damage$/);
    assert.match(alertsOf('bearing')[0], /^warning: bearing life consumed 3\.\d % reached the alert threshold 3 % \(ISO 281 L10 of a ball bearing, C = 42\.3 kN, Palmgren–Miner; \d+ h observed since /);

    // Months: the bearing's observed hours when its alert came (the reason says how many).
    const observed = Number(/; (\d+) h observed since/.exec(alertsOf('bearing')[0])![1]);
    assert.ok(observed > 1460, `more than two months of twin time, got ${observed} h`);
    // The twin's metrics are in the UNS beside the alerts, retained, with units and quality.
    const consumed = seen.get(`${DRIVE1}/twin/bearing/lifeConsumed`)?.at(-1);
    assert.ok(consumed && typeof consumed.value === 'number' && consumed.unit === '%', JSON.stringify(consumed));
    const zone = seen.get(`${DRIVE1}/twin/vibration/zone`)?.at(-1);
    assert.ok(zone && ['C', 'D'].includes(String(zone.value)), JSON.stringify(zone));
    assert.ok(seen.has(`${DRIVE1}/twin/drive/rul`), 'drive remaining life published');
  });
});
