/**
 * "Send: only changed values" (report by exception at the source, lib/modbus/report-by-exception.ts)
 * in a Node-RED runtime: uns-modbus-read against pymodbus (Debian python3-pymodbus, its own process)
 * and uns-vfd against the simulated plant. An unchanged poll sends nothing, a change sends only the
 * changed metrics, and the first poll after a reconnect sends everything again. The nodes poll on
 * demand (interval 0), so no poll fails during the outage: only the reconnect itself can make the
 * next batch whole.
 */
import { strict as assert } from 'node:assert';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import type { ModbusClient } from '../../lib/modbus/client';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { PymodbusServer, startPymodbusServer } from '../helpers/pymodbus';
import { helper } from '../helpers/node-red-runtime';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Every message that reaches the helper node `id` from now on. */
function collect(id: string): TagBatch[] {
  const seen: TagBatch[] = [];
  helper.getNode(id).on('input', (msg) => seen.push(msg as TagBatch));
  return seen;
}

const linkClient = () => (helper.getNode('link') as { client: ModbusClient }).client;

describe('report by exception at the source (send: only changed values)', function () {
  this.timeout(30_000);
  beforeEach(() => new Promise<void>((r) => helper.startServer(() => r())));
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
  });

  describe('uns-modbus-read with pymodbus', () => {
    let py: PymodbusServer;
    beforeEach(async () => {
      py = await startPymodbusServer({ units: [1], size: 100 });
    });
    afterEach(async () => {
      await py.close();
    });

    const flow = (send: string) => [
      { id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port: py.port, timeout: 500, reconnect: 50 },
      {
        id: 'read', type: 'uns-modbus-read', link: 'link', unitId: 1, interval: 0, topic: 'acme/site/area/line/cell/pump1',
        send, deadbands: 'Double=0.5', refresh: 0,
        metrics: [
          { name: 'speed', table: 'holding', address: 0, type: 'uint16', unit: 'rpm' },
          { name: 'current', table: 'holding', address: 1, type: 'int16', scale: 0.1, unit: 'A' },
          { name: 'running', table: 'coil', address: 0, type: 'bit' },
        ],
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ];
    /** Poll once and wait until both of its requests are answered (a batch, if any, is then on its way). */
    const poll = async () => {
      const answered = linkClient().stats.responses + 2;
      helper.getNode('read').receive({});
      await until('the poll answered', () => linkClient().stats.responses >= answered);
    };

    it('sends the first poll whole, nothing for unchanged polls, only what changed, and everything after a reconnect', async () => {
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [1500, 123] });
      await py.command({ cmd: 'set', unit: 1, table: 'coil', address: 0, values: [1] });
      await helper.load(modbusNodes, flow('changes'));
      const out = collect('out');
      await until('connected', () => linkClient().state === 'connected');

      await poll();
      await until('the first batch', () => out.length === 1);
      assert.deepEqual(out[0].payload, { speed: 1500, current: 12.3, running: true });
      await poll();
      await poll();
      // A deadband of 0.5 on Double: current (a scaled int16 is a Double) moving by 0.2 is within it.
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 1, values: [125] });
      await poll();
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [1501] });
      await poll();
      await until('the change', () => out.length >= 2);
      await sleep(50);
      assert.deepEqual(out.map((b) => b.payload), [{ speed: 1500, current: 12.3, running: true }, { speed: 1501 }],
        'unchanged polls and a change within the deadband sent nothing; the speed change only itself');
      assert.equal(out[1].topic, 'acme/site/area/line/cell/pump1');
      assert.deepEqual(Object.keys(out[1].meta ?? {}), ['speed']);

      const connects = linkClient().stats.connects;
      await py.command({ cmd: 'drop' });
      await until('reconnected', () => linkClient().stats.connects > connects && linkClient().state === 'connected');
      await poll();
      await until('the batch after the reconnect', () => out.length >= 3);
      assert.deepEqual(out[2].payload, { speed: 1501, current: 12.5, running: true }, 'everything after a reconnect');
    });

    it('sends every poll whole by default (send: every)', async () => {
      await py.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [1500, 123] });
      await helper.load(modbusNodes, flow(''));
      const out = collect('out');
      await until('connected', () => linkClient().state === 'connected');
      for (let i = 0; i < 3; i++) await poll();
      await until('three batches', () => out.length === 3);
      assert.ok(out.every((b) => Object.keys(b.payload).length === 3));
    });

    it('refuses invalid send settings at deploy with the reason, and does not poll', async () => {
      const bad = flow('changes');
      Object.assign(bad[1], { deadbands: 'Float=-1' });
      await helper.load(modbusNodes, bad);
      const read = helper.getNode('read') as { error: { getCalls(): Array<{ args: unknown[] }> } };
      await until('the error', () => read.error.getCalls().length > 0);
      assert.match(String(read.error.getCalls()[0].args[0]), /modbus\.errors\.invalid-send|deadband of Float must be a number/);
      assert.equal((helper.getNode('link') as { client: ModbusClient | undefined }).client, undefined, 'the link is not used');
    });
  });

  describe('uns-vfd on the simulated plant', () => {
    let plant: SimulatedPlantHandle | undefined;
    afterEach(async () => {
      await plant?.close();
      plant = undefined;
    });

    it('a setpoint command sends the changed setpoint, not the unchanged telemetry; everything after a reconnect', async () => {
      // A stopped drive: of its 24 metrics only the heatsink temperature moves (it cools down).
      plant = await startSimulatedPlant({ port: 0, drives: 1, autoStart: false });
      const port = plant.port;
      await helper.load([modbusNodes, driveNodes], [
        { id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port, timeout: 500, reconnect: 50 },
        {
          id: 'vfd', type: 'uns-vfd', link: 'link', unitId: 1, profile: 'uns-edge-simulated-drive', interval: 0,
          topic: 'acme/plant1/packaging/line1/cell1/drive1', send: 'changes', refresh: 0,
          maxRamp: 1800, // setpoint steps of 10 rpm a few ms apart
          wires: [['out'], []],
        },
        { id: 'out', type: 'helper' },
      ]);
      const out = collect('out');
      const vfd = helper.getNode('vfd');
      await until('connected', () => linkClient().state === 'connected');
      const setpoint = plant.plant.read(1, 'holding', 1, 1)[0];

      vfd.receive({ payload: { speedSetpoint: setpoint + 10 } });
      await until('the first batch', () => out.length === 1);
      const all = Object.keys(out[0].payload);
      assert.ok(all.length >= 20 && all.includes('ready') && all.includes('state'), all.join());

      vfd.receive({ payload: { speedSetpoint: setpoint + 20 } });
      await until('the second batch', () => out.some((b) => b.payload.speedSetpoint === setpoint + 20));
      const second = out.find((b) => b.payload.speedSetpoint === setpoint + 20)!;
      const sent = Object.keys(second.payload);
      assert.ok(sent.length <= 3 && !sent.includes('ready') && !sent.includes('state'), `only what changed: ${sent.join()}`);

      await plant.close();
      await until('the link down', () => linkClient().state !== 'connected');
      plant = await startSimulatedPlant({ port, drives: 1, autoStart: false });
      await until('reconnected', () => linkClient().state === 'connected');
      const before = out.length;
      vfd.receive({ payload: { speedSetpoint: setpoint + 10 } });
      await until('the batch after the reconnect', () => out.length > before);
      assert.deepEqual(Object.keys(out[before].payload).sort(), [...all].sort(), 'everything after a reconnect');
    });
  });
});
