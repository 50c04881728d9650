/**
 * The simulated plant on a real socket, driven by an independent Modbus implementation: Debian's
 * pymodbus 3.0.0rc1 client (test/helpers/pymodbus.ts). Free ports only; everything is closed after.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { startSimulatedPlant, SimulatedPlantHandle, simulatedDriveProfile } from '../../sim/index';
import { PymodbusClient, startPymodbusClient } from '../helpers/pymodbus';

const profile = simulatedDriveProfile;
const command = (name: string): number => (profile.controlWord.commands.find((c) => c.name === name) as { value: number }).value;
const statusBit = (name: string): number => 1 << (profile.statusWord.bits.find((b) => b.name === name) as { bit: number }).bit;
const faultCode = (name: string): number => (profile.faults.find((f) => f.name === name) as { code: number }).code;
const address = (name: string): number => (profile.parameters.find((p) => p.name === name) as { address: number }).address;
const INPUT_REGISTERS = 16;

/** Decoded here by hand (not with sim/ or lib/ code), so the wire layout itself is checked. */
interface Telemetry { status: number; fault: number; speed: number; current: number; runHours: number; energy: number }
function decodeTelemetry(r: number[]): Telemetry {
  const float = Buffer.alloc(4);
  float.writeUInt16BE(r[4], 0); // float32, high word first (ABCD)
  float.writeUInt16BE(r[5], 2);
  return {
    status: r[0],
    fault: r[1],
    speed: (r[2] << 16) >> 16, // int16
    current: float.readFloatBE(0),
    runHours: (r[12] * 65536 + r[13]) * 0.001, // uint32 ABCD
    energy: (r[15] * 65536 + r[14]) * 0.1, // uint32 CDAB: low word first
  };
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 6000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('sim plant over Modbus TCP with a pymodbus client', function () {
  this.timeout(30_000);
  let plant: SimulatedPlantHandle;
  let client: PymodbusClient;

  async function telemetry(unit: number): Promise<Telemetry> {
    const answer = await client.request({ op: 'read_input_registers', address: 0, count: INPUT_REGISTERS, slave: unit });
    assert.ok(answer.ok && answer.registers, `unit ${unit}: ${JSON.stringify(answer)}`);
    return decodeTelemetry(answer.registers);
  }
  async function writeControl(unit: number, name: string): Promise<void> {
    const answer = await client.request({ op: 'write_register', address: address('controlWord'), value: command(name), slave: unit });
    assert.deepEqual(answer, { ok: true });
  }

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 3, seed: 3, tickMs: 50 });
    client = await startPymodbusClient(plant.host, plant.port);
  });
  after(async () => {
    await client?.close();
    await plant?.close();
  });

  it('serves live telemetry for every unit, typed as the register map says', async () => {
    await until('all drives to turn', async () => (await Promise.all(plant.unitIds.map(telemetry))).every((t) => t.speed > 100));
    for (const unit of plant.unitIds) {
      const drive = plant.drives[unit - 1];
      const t = await telemetry(unit);
      assert.ok(t.status & statusBit('ready') && t.status & statusBit('running'), `unit ${unit} status ${t.status}`);
      assert.equal(t.fault, 0);
      assert.ok(t.current >= drive.ratings.magnetisingCurrentA && t.current < drive.ratings.overcurrentTripA, `current ${t.current}`);
      assert.ok(Math.abs(t.runHours - drive.runHours) < 0.01, `run hours ${t.runHours} vs ${drive.runHours}`);
      assert.ok(Math.abs(t.energy - drive.energyKwh) < 0.5, `energy ${t.energy} vs ${drive.energyKwh}`);
      assert.ok(t.energy > 1000, 'demo drives come with history (a word-order mix-up would show here)');
    }
    const holding = await client.request({ op: 'read_holding_registers', address: 0, count: 4, slave: 2 });
    assert.deepEqual(holding, { ok: true, registers: [command('startForward'), plant.drives[1].setpointRpm, 300, 300] });
  });

  it('stops, starts, reverses and follows a new setpoint through the control word', async () => {
    const unit = 2;
    const ramps = await client.request({ op: 'write_registers', address: address('accelRate'), value: [1000, 1000], slave: unit });
    assert.deepEqual(ramps, { ok: true });
    await writeControl(unit, 'stop');
    await until('unit 2 to stop', async () => {
      const t = await telemetry(unit);
      return t.speed === 0 && !(t.status & statusBit('running'));
    });
    assert.ok((await telemetry(1)).status & statusBit('running'), 'unit 1 still runs');

    assert.deepEqual(await client.request({ op: 'write_register', address: address('speedSetpoint'), value: 600, slave: unit }), { ok: true });
    await writeControl(unit, 'startForward');
    await until('600 rpm at setpoint', async () => {
      const t = await telemetry(unit);
      return t.speed === 600 && (t.status & statusBit('atSetpoint')) !== 0;
    });
    await writeControl(unit, 'startReverse');
    await until('−600 rpm in reverse', async () => {
      const t = await telemetry(unit);
      return t.speed === -600 && (t.status & statusBit('reverse')) !== 0 && (t.status & statusBit('atSetpoint')) !== 0;
    });
  });

  it('answers bad requests with the right exception and changes nothing', async () => {
    const before = await client.request({ op: 'read_holding_registers', address: 0, count: 4, slave: 1 });
    assert.deepEqual(await client.request({ op: 'write_register', address: address('speedSetpoint'), value: 5000, slave: 1 }), { ok: false, exception: 3 });
    assert.deepEqual(await client.request({ op: 'write_registers', address: 0, value: [command('stop'), 1801], slave: 1 }), { ok: false, exception: 3 });
    assert.deepEqual(await client.request({ op: 'read_holding_registers', address: 0, count: 4, slave: 1 }), before);
    assert.deepEqual(await client.request({ op: 'read_input_registers', address: INPUT_REGISTERS, count: 1, slave: 1 }), { ok: false, exception: 2 });
    assert.deepEqual(await client.request({ op: 'write_register', address: 4, value: 1, slave: 1 }), { ok: false, exception: 2 });
    assert.deepEqual(await client.request({ op: 'read_coils', address: 0, count: 1, slave: 1 }), { ok: false, exception: 1 });
    assert.deepEqual(await client.request({ op: 'read_input_registers', address: 0, count: 1, slave: 9 }), { ok: false, exception: 0x0a });
  });

  it('a unit with comms loss times out while the others keep answering on the same connection', async () => {
    plant.injectFault(3, 'commsLoss');
    const started = Date.now();
    const silent = await client.request({ op: 'read_input_registers', address: 0, count: 2, slave: 3 });
    assert.equal(silent.ok, false);
    assert.ok(!('exception' in silent && silent.exception !== undefined), `no exception response, just silence: ${JSON.stringify(silent)}`);
    assert.ok(Date.now() - started >= 900, 'the client waited for its 1 s timeout');
    for (const unit of [1, 2]) assert.ok((await telemetry(unit)).status & statusBit('ready'));
    assert.ok(plant.drives[2].speedRpm > 0, 'the drive itself keeps running');
    assert.equal(plant.clearFault(3, 'commsLoss'), true);
    assert.ok((await telemetry(3)).speed > 0);
  });

  it('an injected overcurrent trips over the wire; fault reset and a new run command restart it', async () => {
    const unit = 1;
    plant.injectFault(unit, 'overcurrent');
    await until('the trip', async () => (await telemetry(unit)).fault === faultCode('overcurrent'));
    const tripped = await telemetry(unit);
    assert.ok(tripped.status & statusBit('fault'));
    assert.equal(tripped.status & (statusBit('ready') | statusBit('running')), 0);

    plant.drives[unit - 1].clearInjection('overcurrent');
    await writeControl(unit, 'faultReset');
    const reset = await telemetry(unit);
    assert.equal(reset.fault, 0);
    assert.ok(reset.status & statusBit('ready'));
    await writeControl(unit, 'stop');
    await writeControl(unit, 'startForward');
    await until('running again', async () => ((await telemetry(unit)).status & statusBit('running')) !== 0);
  });

  it('refuses a taken port with a message naming the port and UNS_EDGE_SIM_PORT', async () => {
    await assert.rejects(
      startSimulatedPlant({ port: plant.port }),
      new RegExp(`port ${plant.port} on 127\\.0\\.0\\.1 is already in use; .*UNS_EDGE_SIM_PORT`),
    );
  });
});

describe('sim plant on several ports', function () {
  this.timeout(30_000);

  it('serves 300 drives as 2 ports × 150 unit ids, every drive its own, one clock for all', async () => {
    const plant = await startSimulatedPlant({ ports: [0, 0], drives: 300, seed: 5, tickMs: 20 });
    const clients: PymodbusClient[] = [];
    try {
      assert.equal(plant.drives.length, 300);
      assert.deepEqual(plant.ports.map((p) => [p.firstDrive, p.plant.drives.length]), [[1, 150], [151, 150]]);
      for (const { port } of plant.ports) clients.push(await startPymodbusClient(plant.host, port));
      for (const [i, { firstDrive }] of plant.ports.entries()) {
        for (const unit of [1, 127, 150]) {
          const drive = plant.drives[firstDrive + unit - 2];
          const holding = await clients[i].request({ op: 'read_holding_registers', address: 0, count: 4, slave: unit });
          assert.deepEqual(holding, { ok: true, registers: [command('startForward'), drive.setpointRpm, 300, 300] }, `port ${i + 1} unit ${unit}`);
        }
        assert.deepEqual(await clients[i].request({ op: 'read_input_registers', address: 0, count: 1, slave: 151 }), { ok: false, exception: 0x0a });
      }
      plant.setSetpoint(151 + 126, 555); // drive 277 = port 2, unit 127
      assert.deepEqual(await clients[1].request({ op: 'read_holding_registers', address: 1, count: 1, slave: 127 }), { ok: true, registers: [555] });
      await until('the clock to tick', async () => plant.drives[0].timeS > 0.1);
      const times = new Set(plant.drives.map((d) => d.timeS));
      assert.equal(times.size, 1, 'every drive stepped by the same clock');
      assert.match(plant.describe(), /300 drive\(s\) .* ports \d+, \d+\n port \d+: unit ids 1\.\.150 \(drives 1\.\.150\)/);
    } finally {
      for (const client of clients) await client.close();
      await plant.close();
    }
  });

  it('refuses more drives than the ports carry, listening on nothing', async () => {
    await assert.rejects(startSimulatedPlant({ port: 0, drives: 248 }), /give more ports \(2 carry 248\)/);
  });
});

describe('sim plant close()', () => {
  it('releases the port and stops the tick', async () => {
    const plant = await startSimulatedPlant({ port: 0, drives: 1 });
    await plant.close();
    const time = plant.drives[0].timeS;
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(plant.port, '127.0.0.1', resolve));
    await new Promise((resolve) => probe.close(resolve));
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(plant.drives[0].timeS, time);
  });
});
