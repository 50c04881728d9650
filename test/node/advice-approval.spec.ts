/**
 * uns-advice in a Node-RED runtime, wired as docs/advice.md says: an agent's proposal (built in a real
 * core function node: another JS realm) → uns-advice → uns-conduit → uns-vfd on the simulated plant
 * over Modbus TCP; approvals come from the UNS (an MQTT client publishes on the aedes broker, uns-in
 * hands them over with its connection's principal); uns-vfd output 2 and the conduit's output 2 come
 * back to the advice node. A proposal waits, is approved by an allowed principal and written; another
 * is approved and refused by the drive's guard; refusals (no principal, replay, stale, an approver not
 * on the list, the proposer approving itself) write nothing; every step is in the verified audit folder.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import adviceNodes = require('../../nodes/advice/advice');
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import zonesNodes = require('../../nodes/zones/zones');
import { verifyAuditDir } from '../../lib/zones/audit-verify';
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { type AedesBroker, startAedes } from '../helpers/aedes';
import { helper } from '../helpers/node-red-runtime';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;

const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const AGENT = `msg.principal = { via: 'mqtt', id: 'mqtt:llm-agent' }; msg.topic = ${JSON.stringify(ASSET)};
  msg.payload = { id: msg.payload.id, setpoint: msg.payload.setpoint, reason: 'load forecast: ' + msg.payload.id, timestamp: msg.payload.timestamp ?? Date.now() };
  return msg;`;
const POLICY = {
  rules: [{ id: 'r-advice', direction: ['it->ot'], principal: { id: ['mqtt:llm-agent'] }, operation: ['write', 'command'], asset: [ASSET], metric: ['setpoint'], value: { type: 'number', min: 0, max: 1800 }, action: 'allow' }],
};

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('uns-advice: approval from the UNS, through the conduit and the drive guard', function () {
  this.timeout(60_000);
  let dir: string;
  let plant: SimulatedPlantHandle;
  let broker: AedesBroker;
  let supervisor: mqtt.MqttClient;
  before(async () => {
    await new Promise<void>((resolve) => helper.startServer(resolve));
    plant = await startSimulatedPlant({ port: 0, drives: 2 });
    broker = await startAedes();
    supervisor = await mqtt.connectAsync(broker.url, { clientId: 'someone-on-the-uns' });
  });
  after(async () => {
    await supervisor?.endAsync();
    await broker?.close();
    await plant?.close();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'uns-advice-')); });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a proposal waits, is approved from the UNS and written; another is refused by the guard; refusals write nothing; all audited', async () => {
    const flow = [
      { id: 'f1', type: 'tab' },
      { id: 'it', type: 'uns-zone', name: 'enterprise', level: '4', slt: '2,2,2,2,2,1,1' },
      { id: 'ot', type: 'uns-zone', name: 'cell', level: '1', slt: '2,2,2,2,2,1,1' },
      { id: 'b', type: 'uns-broker', z: 'f1', host: '127.0.0.1', port: String(broker.port), clientId: 'supervisor-console', protocolVersion: '4', keepalive: 30, cleanSession: true, usetls: false, reconnectMin: 1, reconnectMax: 5, storeEnabled: false },
      { id: 'approvals', type: 'uns-in', z: 'f1', broker: 'b', topics: 'approvals/#', topicPrefix: 'approvals', assetDepth: 6, mergeWindow: 0, qos: '1', wires: [['advice']], x: 100, y: 40 },
      { id: 'agent', type: 'function', z: 'f1', func: AGENT, outputs: 1, wires: [['advice']], x: 100, y: 100 },
      { id: 'advice', type: 'uns-advice', z: 'f1', name: 'speed advice', mode: 'approval', approvers: 'mqtt:supervisor-console*', approvalTimeout: '30', maxPending: '5', maxAge: '60', min: '', max: '', outcomeTimeout: '10', auditDir: join(dir, 'advice-audit'), wires: [['conduit'], ['events']], x: 300, y: 100 },
      { id: 'conduit', type: 'uns-conduit', z: 'f1', name: 'it-to-ot', sourceZone: 'it', destinationZone: 'ot', traffic: 'auto', policy: JSON.stringify(POLICY), auditDir: join(dir, 'conduit-audit'), wires: [['vfd'], ['advice']], x: 500, y: 100 },
      { id: 'link', type: 'uns-modbus-link', z: 'f1', transport: 'tcp', host: '127.0.0.1', port: String(plant.port), timeout: 1000, reconnect: 500, maxRegisters: 125, queueLimit: 1000 },
      { id: 'vfd', type: 'uns-vfd', z: 'f1', link: 'link', unitId: 1, profile: 'uns-edge-simulated-drive', interval: 0, topic: ASSET, setpointMin: '', setpointMax: '1500', maxRamp: '', onViolation: 'reject', arm: 'off', armTimeout: '', wires: [[], ['advice', 'vfdAudit']], x: 700, y: 100 },
      { id: 'events', type: 'helper', z: 'f1' },
      { id: 'vfdAudit', type: 'helper', z: 'f1' },
    ];
    await helper.load([unsNodes, modbusNodes, driveNodes, zonesNodes, adviceNodes, functionNode], flow, { b: { user: 'shift-lead' } });
    const events: any[] = [];
    helper.getNode('events').on('input', (msg: { payload: unknown }) => events.push(msg.payload));
    const steps = (id: string) => events.filter((e) => e.proposalId === id && e.step !== 'refused').map((e) => e.step);
    const agent = helper.getNode('agent');
    const advice = helper.getNode('advice');
    const approve = (id: string) => supervisor.publishAsync(`approvals/${ASSET}/approve`, JSON.stringify({ value: id }), { qos: 1 });
    await until('the approvals subscription', () => (broker.broker as any).connectedClients >= 2);
    await new Promise((r) => setTimeout(r, 300)); // uns-in subscribes right after connecting

    const before = plant.drives[0].setpointRpm;
    agent.receive({ payload: { id: 'p-1', setpoint: before + 50 } });
    await until('p-1 proposed', () => steps('p-1').includes('proposed'));
    assert.deepEqual(steps('p-1'), ['proposed'], 'waits for approval: nothing forwarded');

    // Refusals: no principal, a replayed id, a stale timestamp; an approver not on the list; nothing is written.
    advice.receive({ topic: ASSET, payload: { id: 'p-x', setpoint: 1000, reason: 'r', timestamp: Date.now() } });
    agent.receive({ payload: { id: 'p-1', setpoint: 1000 } });
    agent.receive({ payload: { id: 'p-old', setpoint: 1000, timestamp: Date.now() - 3_600_000 } });
    advice.receive({ payload: { approve: 'p-1' }, principal: { via: 'mqtt', id: 'mqtt:intruder' } });
    advice.receive({ payload: { approve: 'p-1' }, principal: { via: 'mqtt', id: 'mqtt:llm-agent' } });
    await until('five refusals', () => events.filter((e) => e.step === 'refused').length === 5);
    const reasons = events.filter((e) => e.step === 'refused').map((e) => e.reason).join('\n');
    assert.match(reasons, /needs msg\.principal/);
    assert.match(reasons, /replayed: proposal id p-1/);
    assert.match(reasons, /stale/);
    assert.match(reasons, /mqtt:intruder is not allowed to approve/);
    assert.match(reasons, /mqtt:llm-agent is not allowed to approve/);

    await approve('p-1');
    await until('p-1 written', () => steps('p-1').includes('written'), 20_000);
    assert.deepEqual(steps('p-1'), ['proposed', 'approved', 'forwarded', 'written']);
    const approved = events.find((e) => e.proposalId === 'p-1' && e.step === 'approved');
    assert.equal(approved.approver, 'mqtt:supervisor-console (user shift-lead)');
    await until('the drive at the new setpoint', () => plant.drives[0].setpointRpm === before + 50);

    agent.receive({ payload: { id: 'p-2', setpoint: 1700 } });
    await until('p-2 proposed', () => steps('p-2').includes('proposed'));
    await approve('p-2');
    await until('p-2 settled', () => steps('p-2').length >= 4, 20_000);
    assert.deepEqual(steps('p-2'), ['proposed', 'approved', 'forwarded', 'refused-by-guard']);
    assert.match(events.find((e) => e.step === 'refused-by-guard').reason, /outside the guard limits 0\.\.1500/);
    assert.equal(plant.drives[0].setpointRpm, before + 50, 'the refused setpoint was not written');

    const verified = verifyAuditDir(join(dir, 'advice-audit'));
    assert.equal(verified.findings.length, 0, JSON.stringify(verified.findings));
    assert.ok(verified.records >= 13, `${verified.records} advice audit records`);
  });
});
