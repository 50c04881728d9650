/**
 * flows/zones-and-conduits.json as shipped (issue 10 item 5): the zone lint passes on it (library and
 * `uns-edge check-zones`), and deployed into Node-RED (node-red-node-test-helper with the package's
 * nodes) against an aedes broker and the simulated plant it moves drive 1 telemetry up through the
 * read-only conduit to the DMZ broker, and passes an MES setpoint down to the drive only inside the
 * conduit rule's bounds and weekday time window (Europe/Berlin), with an out-of-bounds one denied.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import zonesNodes = require('../../nodes/zones/zones');
import { lintZones } from '../../lib/zones/lint';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { AedesBroker, startAedes } from '../helpers/aedes';
import { helper } from '../helpers/node-red-runtime';

const ROOT = join(__dirname, '..', '..');
const TEMPLATE = join(ROOT, 'flows', 'zones-and-conduits.json');
const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const SETPOINT_TOPIC = `mes/setpoints/${ASSET}/speedSetpoint`;
const debugNode = require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', '21-debug.js')) as unknown;
const catchNode = require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', '25-catch.js')) as unknown;
const commentNode = require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common', '90-comment.js')) as unknown;

type Decision = { result: string; ruleIds: string[]; reason?: string; dropped: Array<{ reason: string }> };

/** Whether the setpoint rule's window (Mon–Fri 06:00–22:00, Europe/Berlin) is open now. */
function setpointWindowOpen(now: Date): boolean {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(now).map((part) => [part.type, part.value]));
  const minutes = Number(parts.hour) * 60 + Number(parts.minute);
  return ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].includes(parts.weekday!) && minutes >= 6 * 60 && minutes < 22 * 60;
}

describe('flows/zones-and-conduits.json', function () {
  this.timeout(60_000);
  const template = JSON.parse(readFileSync(TEMPLATE, 'utf8')) as Array<{ id: string; type: string; [property: string]: unknown }>;

  it('lints clean: no crossing, every connection in a zone, no zero-trust gap', () => {
    const { findings, zones, nodeZones } = lintZones(template, { credentials: {} });
    assert.deepEqual(findings, []);
    assert.deepEqual(zones.map((zone) => zone.name), ['OT cell 1', 'DMZ', 'enterprise']);
    assert.deepEqual(nodeZones['zc-drive'], ['zc-zone-cell']);
    assert.deepEqual(nodeZones['zc-in'], ['zc-zone-it']);
    const cli = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'uns-edge.ts'), 'check-zones', TEMPLATE, '--strict'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stdout + cli.stderr);
  });

  it('the lint finds the crossing when the MES input is wired straight to the drive', () => {
    const bypass = template.map((node) => (node.id === 'zc-in' ? { ...node, wires: [['zc-drive']] } : node));
    const { findings } = lintZones(bypass, { credentials: {} });
    assert.deepEqual(findings.map((finding) => finding.code), ['zone-crossing']);
    assert.deepEqual(findings[0]!.nodes, ['zc-in', 'zc-drive']);
  });

  describe('deployed against aedes and the simulated plant', () => {
    let plant: SimulatedPlantHandle;
    let broker: AedesBroker;
    let userDir: string;
    let client: mqtt.MqttClient;
    const variables = ['UNS_EDGE_MQTT_HOST', 'UNS_EDGE_MQTT_PORT', 'UNS_EDGE_SIM_HOST', 'UNS_EDGE_SIM_PORT'];
    const saved = Object.fromEntries(variables.map((name) => [name, process.env[name]]));

    before(async () => {
      plant = await startSimulatedPlant({ port: 0, drives: 4 });
      broker = await startAedes();
      userDir = mkdtempSync(join(tmpdir(), 'uns-zones-template-'));
      Object.assign(process.env, { UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port), UNS_EDGE_SIM_HOST: plant.host, UNS_EDGE_SIM_PORT: String(plant.port) });
      helper.settings({ userDir });
      await new Promise<void>((resolve) => helper.startServer(() => resolve()));
      client = mqtt.connect(broker.url, { clientId: 'mes-test' });
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    });
    after(async () => {
      client?.end(true);
      await helper.unload();
      await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
      await broker?.close();
      await plant?.close();
      helper.settings({});
      for (const name of variables) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
      rmSync(userDir, { recursive: true, force: true });
    });

    async function deploy(flows: object[]): Promise<{ decisions: Decision[]; telemetry: Map<string, number> }> {
      const telemetry = new Map<string, number>();
      client.removeAllListeners('message');
      client.on('message', (topic, payload) => {
        if (topic.startsWith(`${ASSET}/`)) telemetry.set(topic.slice(ASSET.length + 1), (JSON.parse(payload.toString()) as { value: number }).value);
      });
      await helper.unload();
      await helper.load([debugNode, catchNode, commentNode, unsNodes, modbusNodes, driveNodes, zonesNodes], flows);
      const decisions: Decision[] = [];
      helper.getNode('zc-decisions').on('input', (msg: { payload: Decision }) => decisions.push(msg.payload));
      return { decisions, telemetry };
    }

    async function until(what: string, check: () => boolean): Promise<void> {
      const deadline = Date.now() + 20_000;
      while (!check()) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }

    async function decisionAfter(decisions: Decision[], value: number): Promise<Decision> {
      const count = decisions.length + 1;
      client.publish(SETPOINT_TOPIC, JSON.stringify({ value, timestamp: Date.now() }));
      await until(`decision ${count}: ${JSON.stringify(decisions)}`, () => decisions.length >= count);
      return decisions[count - 1]!;
    }

    before(async () => {
      await new Promise<void>((resolve, reject) => client.subscribe(`${ASSET}/#`, (error) => (error ? reject(error) : resolve())));
    });

    it('as shipped: telemetry crosses up to the DMZ broker; a setpoint crosses down only in bounds and inside the weekday window', async () => {
      const { decisions, telemetry } = await deploy(template);
      // Up: the drive's batch passes the read-only conduit and is published by the DMZ broker's uns-out.
      await until(`telemetry in the UNS, got ${[...telemetry.keys()].join(', ')}`, () => telemetry.has('actualSpeed') && telemetry.has('speedSetpoint'));
      // Down: out of bounds is denied whatever the time.
      assert.equal((await decisionAfter(decisions, 5000)).result, 'deny');
      // In bounds (first value: no step check): allowed with an alert inside the window, denied outside.
      const open = setpointWindowOpen(new Date());
      const inBounds = await decisionAfter(decisions, 1000);
      assert.equal(inBounds.result, open ? 'allow' : 'deny', JSON.stringify(inBounds));
      if (open) await until('drive 1 setpoint 1000', () => plant.drives[0]!.setpointRpm === 1000);
      else assert.notEqual(plant.drives[0]!.setpointRpm, 1000);
    });

    it('the guarded path with its window opened (rule otherwise as shipped): bounds and max step per setpoint, the drive follows what passes', async () => {
      const anyTime = template.map((node) => {
        if (node.id !== 'zc-down') return node;
        const policy = JSON.parse(String(node.policy)) as { rules: Array<Record<string, unknown>> };
        delete policy.rules[0]!.window;
        return { ...node, policy: JSON.stringify(policy) };
      });
      const { decisions } = await deploy(anyTime);
      const audit: unknown[] = [];
      helper.getNode('zc-audit').on('input', (msg: { payload: unknown }) => audit.push(msg.payload));
      // The subscription is up once a message round-trips; retry the first write until it is decided.
      let first: Decision | undefined;
      for (let attempt = 0; !first; attempt++) {
        assert.ok(attempt < 40, 'uns-in subscribed');
        client.publish(SETPOINT_TOPIC, JSON.stringify({ value: 5000, timestamp: Date.now() }));
        await new Promise((resolve) => setTimeout(resolve, 250));
        first = decisions[0];
      }
      assert.equal(first.result, 'deny', 'above max 1500');
      assert.match(JSON.stringify(first.dropped), /1500|max/);
      const allowed = await decisionAfter(decisions, 1000);
      assert.equal(allowed.result, 'allow', JSON.stringify(allowed));
      assert.deepEqual(allowed.ruleIds, ['r-mes-speed']);
      await until('drive 1 setpoint 1000', () => plant.drives[0]!.setpointRpm === 1000);
      const firstWrite = Date.now();
      const tooFar = await decisionAfter(decisions, 1300);
      assert.equal(tooFar.result, 'deny', JSON.stringify(tooFar));
      assert.match(JSON.stringify(tooFar.dropped), /step/);
      // The drive profile ramps at most 300 rpm/s: the next 80 rpm step after 0.27 s at the earliest.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstWrite + 500 - Date.now())));
      assert.equal((await decisionAfter(decisions, 1080)).result, 'allow');
      await until(`drive 1 setpoint 1080 (${plant.drives[0]!.setpointRpm}), audit ${JSON.stringify(audit)}`, () => plant.drives[0]!.setpointRpm === 1080);
      assert.equal(plant.drives[0]!.setpointRpm, 1080);
    });
  });
});
