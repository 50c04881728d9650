import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModbusException, ModbusExceptionCode } from '../../lib/modbus/data-model';
import { MAX_DRIVES, PlantClock, SimulatedPlant } from '../../sim/plant';
import { parseDriveProfile, ParameterSpec, registerCount, simulatedDriveProfile } from '../../sim/profile';
import { GENERATED_BEGIN, GENERATED_END, renderProfileMarkdown, withGeneratedSection } from '../../sim/profile-doc';
import { decodeValue, encodeValue } from '../../sim/register-codec';
import { DriveRegisterMap } from '../../sim/register-map';
import { drivesPerPort, resolveSimPort, SIM_PORT_ENV } from '../../sim/index';
import { parsePortList } from '../../cli/simulated-plant';

const profileJson = JSON.parse(readFileSync(join(__dirname, '../../profiles/simulated-drive.json'), 'utf8'));
const spec = (name: string): ParameterSpec => simulatedDriveProfile.parameters.find((p) => p.name === name) as ParameterSpec;
const command = (name: string): number => (simulatedDriveProfile.controlWord.commands.find((c) => c.name === name) as { value: number }).value;

function rejectsWith(code: ModbusExceptionCode, fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => error instanceof ModbusException && error.code === code, `expected exception ${code}`);
}

/** Decode one parameter from a read of the whole input table. */
function valueOf(words: number[], name: string): number {
  const p = spec(name);
  return decodeValue(p, words.slice(p.address, p.address + registerCount(p.type)));
}

describe('sim register codec', () => {
  it('encodes the IEEE 754 float32 and 32-bit word orders byte-exactly', () => {
    assert.deepEqual(encodeValue({ type: 'float32', scale: 1, wordOrder: 'ABCD' }, 1.5), [0x3fc0, 0x0000]);
    assert.deepEqual(encodeValue({ type: 'float32', scale: 1, wordOrder: 'CDAB' }, -2), [0x0000, 0xc000]);
    assert.deepEqual(encodeValue({ type: 'uint32', scale: 1, wordOrder: 'ABCD' }, 0x12345678), [0x1234, 0x5678]);
    assert.deepEqual(encodeValue({ type: 'uint32', scale: 0.1, wordOrder: 'CDAB' }, 7456.5), [0x2345, 0x0001]);
    assert.deepEqual(encodeValue({ type: 'int32', scale: 1, wordOrder: 'ABCD' }, -2), [0xffff, 0xfffe]);
    assert.deepEqual(encodeValue({ type: 'int16', scale: 0.01, wordOrder: 'ABCD' }, -1.5), [0xff6a]);
  });

  it('saturates integers at the type range instead of wrapping', () => {
    assert.deepEqual(encodeValue({ type: 'int16', scale: 1, wordOrder: 'ABCD' }, 40000), [0x7fff]);
    assert.deepEqual(encodeValue({ type: 'uint16', scale: 1, wordOrder: 'ABCD' }, -3), [0]);
    assert.deepEqual(encodeValue({ type: 'uint16', scale: 1, wordOrder: 'ABCD' }, Number.NaN), [0]);
  });

  it('decodes what it encodes for every type and word order', () => {
    for (const wordOrder of ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const) {
      for (const [type, scale, value] of [['uint16', 0.1, 6553.5], ['int16', 1, -32768], ['uint32', 0.001, 4294967.295], ['int32', 1, -123456], ['float32', 1, 3.25]] as const) {
        const p = { type, scale, wordOrder };
        assert.ok(Math.abs(decodeValue(p, encodeValue(p, value)) - value) < 1e-9, `${type} ${wordOrder}`);
      }
    }
  });
});

describe('sim drive profile', () => {
  it('parses, and rejects overlapping registers, writable input registers and unknown types', () => {
    assert.equal(parseDriveProfile(profileJson).parameters.length, profileJson.parameters.length);
    const broken = (edit: (p: typeof profileJson) => void): typeof profileJson => {
      const copy = structuredClone(profileJson);
      edit(copy);
      return copy;
    };
    assert.throws(() => parseDriveProfile(broken((p) => { p.parameters[5].address = 5; })), /input register 5 is already used by (faultCode|motorCurrent)/);
    assert.throws(() => parseDriveProfile(broken((p) => { p.parameters[4].access = 'RW'; })), /only holding registers can be written/);
    assert.throws(() => parseDriveProfile(broken((p) => { p.parameters[0].type = 'float64'; })), /parameters\[0\]\.type: must be one of/);
    assert.throws(() => parseDriveProfile(broken((p) => { delete p.ratings.poles; })), /ratings\.poles/);
  });

  it('cannot drift from the code: a parameter, bit or fault the model lacks is refused', () => {
    const withExtra = structuredClone(profileJson);
    withExtra.parameters.push({ name: 'torque', address: 16, table: 'input', type: 'int16', scale: 0.1, unit: 'Nm', access: 'R', description: 'x' });
    assert.throws(() => new DriveRegisterMap(parseDriveProfile(withExtra)), /parameters .*not modelled: torque/);
    const withoutBit = structuredClone(profileJson);
    withoutBit.statusWord.bits.pop();
    assert.throws(() => new DriveRegisterMap(parseDriveProfile(withoutBit)), /status word bits .*not in the profile: atSetpoint/);
  });

  it('docs/simulated-plant.md carries the tables generated from the profile (run npx tsx sim/profile-doc.ts --write)', () => {
    const doc = readFileSync(join(__dirname, '../../docs/simulated-plant.md'), 'utf8');
    assert.equal(doc, withGeneratedSection(doc, simulatedDriveProfile));
    const generated = renderProfileMarkdown(simulatedDriveProfile);
    for (const p of simulatedDriveProfile.parameters) assert.match(generated, new RegExp(`\\| ${p.address} \\| [0-9–]+ \\| ${p.table} \\| \`${p.name}\` \\| ${p.type} \\|`));
    assert.ok(doc.indexOf(GENERATED_BEGIN) < doc.indexOf(GENERATED_END));
  });
});

describe('sim plant as a Modbus data model', () => {
  it('serves unit ids 1..N, each drive its own telemetry, typed as the profile says', () => {
    const plant = new SimulatedPlant({ drives: 3, seed: 9 });
    plant.step(20);
    for (const unit of [1, 2, 3]) {
      const drive = plant.drive(unit);
      const words = plant.read(unit, 'input', 0, 16);
      assert.equal(words.length, 16);
      assert.ok(words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff));
      assert.equal(valueOf(words, 'actualSpeed'), Math.round(drive.speedRpm));
      assert.equal(valueOf(words, 'motorCurrent'), Math.fround(drive.currentA));
      assert.ok(Math.abs(valueOf(words, 'outputFrequency') - drive.outputFrequencyHz) <= 0.005);
      assert.ok(Math.abs(valueOf(words, 'runHours') - drive.runHours) <= 0.0005);
      assert.ok(Math.abs(valueOf(words, 'energy') - drive.energyKwh) <= 0.05);
      assert.ok(Math.abs(valueOf(words, 'motorTemperature') - drive.motorTemperatureC) <= 0.05);
      assert.equal(valueOf(words, 'faultCode'), 0);
      const status = valueOf(words, 'statusWord');
      assert.equal(status & 0b11, 0b11, 'ready and running');
    }
    const setpoints = plant.drives.map((d) => d.setpointRpm);
    assert.equal(new Set(setpoints).size, 3, `demo drives run at different setpoints: ${setpoints}`);
    assert.ok(plant.drives.every((d) => d.speedRpm > 0), 'running from the start');
  });

  it('a 32-bit value read alone, or one word of it, comes from the same encoding', () => {
    const plant = new SimulatedPlant({ drives: 1 });
    plant.step(5);
    const both = plant.read(1, 'input', spec('energy').address, 2);
    assert.deepEqual([plant.read(1, 'input', 14, 1)[0], plant.read(1, 'input', 15, 1)[0]], both);
  });

  it('control word, setpoint and ramps are holding registers that read back what was written', () => {
    const plant = new SimulatedPlant({ drives: 2, autoStart: false });
    assert.deepEqual(plant.read(2, 'holding', 0, 4), [0, 1440, 300, 300]);
    plant.write(2, 'holding', 1, [600, 1000, 1000]);
    plant.write(2, 'holding', 0, [command('startReverse')]);
    assert.deepEqual(plant.read(2, 'holding', 0, 4), [command('startReverse'), 600, 1000, 1000]);
    plant.step(1);
    assert.equal(plant.drive(2).speedRpm, -600);
    assert.equal(plant.drive(1).speedRpm, 0, 'unit 1 untouched');
    const status = plant.read(2, 'input', 0, 1)[0];
    const bit = (name: string) => (simulatedDriveProfile.statusWord.bits.find((b) => b.name === name) as { bit: number }).bit;
    assert.ok(status & (1 << bit('reverse')) && status & (1 << bit('atSetpoint')) && status & (1 << bit('running')));
  });

  it('refuses out-of-range writes with 03 and changes nothing, not even the registers before the bad one', () => {
    const plant = new SimulatedPlant({ drives: 1, autoStart: false });
    rejectsWith(ModbusExceptionCode.IllegalDataValue, () => plant.write(1, 'holding', 0, [command('startForward'), 1801]));
    rejectsWith(ModbusExceptionCode.IllegalDataValue, () => plant.write(1, 'holding', 1, [0xffff])); // int16 −1 rpm
    rejectsWith(ModbusExceptionCode.IllegalDataValue, () => plant.write(1, 'holding', 2, [0]));
    rejectsWith(ModbusExceptionCode.IllegalDataValue, () => plant.write(1, 'holding', 0, [0x0010])); // a reserved bit
    assert.deepEqual(plant.read(1, 'holding', 0, 4), [0, 1200, 300, 300]);
    assert.throws(() => plant.write(1, 'holding', 1, [1801]), /speedSetpoint 1801 rpm is outside 0 rpm\.\.1800 rpm/);
    rejectsWith(ModbusExceptionCode.IllegalDataValue, () => plant.setParameter(1, 'speedSetpoint', 5000));
    assert.throws(() => plant.setParameter(1, 'speedSetpoint', Number.NaN), RangeError);
    plant.setParameter(1, 'speedSetpoint', 1800);
    assert.equal(plant.drive(1).setpointRpm, 1800);
  });

  it('answers unmapped addresses with 02, bit tables with 01, unknown units with 0A', () => {
    const plant = new SimulatedPlant({ drives: 2 });
    rejectsWith(ModbusExceptionCode.IllegalDataAddress, () => plant.read(1, 'input', 16, 1));
    rejectsWith(ModbusExceptionCode.IllegalDataAddress, () => plant.read(1, 'input', 10, 7));
    rejectsWith(ModbusExceptionCode.IllegalDataAddress, () => plant.read(1, 'holding', 4, 1));
    rejectsWith(ModbusExceptionCode.IllegalDataAddress, () => plant.write(1, 'holding', 3, [100, 100]));
    rejectsWith(ModbusExceptionCode.IllegalFunction, () => plant.read(1, 'coil', 0, 1));
    rejectsWith(ModbusExceptionCode.IllegalFunction, () => plant.write(1, 'coil', 0, [1]));
    for (const unit of [0, 3, 255]) {
      assert.equal(plant.answers(unit), true);
      rejectsWith(ModbusExceptionCode.GatewayPathUnavailable, () => plant.read(unit, 'input', 0, 1));
    }
  });

  it('comms loss silences one unit; clearFault brings it back', () => {
    const plant = new SimulatedPlant({ drives: 3 });
    plant.injectFault(2, { kind: 'commsLoss' });
    assert.deepEqual([1, 2, 3].map((u) => plant.answers(u)), [true, false, true]);
    assert.equal(plant.clearFault(2, 'commsLoss'), true);
    assert.equal(plant.answers(2), true);
  });

  it('an injected trip shows in the status word and fault code, and resets through the control word', () => {
    const plant = new SimulatedPlant({ drives: 1 });
    plant.step(2);
    plant.injectFault(1, { kind: 'overcurrent' });
    plant.step(0.1);
    const faultBit = 1 << (simulatedDriveProfile.statusWord.bits.find((b) => b.name === 'fault') as { bit: number }).bit;
    const code = (simulatedDriveProfile.faults.find((f) => f.name === 'overcurrent') as { code: number }).code;
    const [status, fault] = plant.read(1, 'input', 0, 2);
    assert.ok(status & faultBit);
    assert.equal(fault, code);
    plant.drive(1).clearInjection();
    plant.write(1, 'holding', 0, [command('faultReset')]);
    assert.equal(plant.read(1, 'input', 1, 1)[0], 0);
    plant.write(1, 'holding', 0, [command('startForward')]);
    plant.step(1);
    assert.equal(plant.drive(1).status().running, true);
  });

  it('ticks in real time on an unref\'d timer and stops on stop()', async () => {
    const plant = new SimulatedPlant({ drives: 1, tickMs: 20 });
    plant.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    plant.stop();
    const t = plant.drive(1).timeS;
    assert.ok(t > 0.1 && t < 0.5, `simulated ${t} s in 0.2 s`);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(plant.drive(1).timeS, t, 'no tick after stop()');
  });

  it('a full port of 247 drives builds, every drive with a demo setpoint inside the profile range', () => {
    const speedSpec = spec('speedSetpoint');
    for (const firstDriveIndex of [0, MAX_DRIVES]) {
      const plant = new SimulatedPlant({ drives: MAX_DRIVES, firstDriveIndex });
      const setpoints = plant.drives.map((d) => d.setpointRpm);
      assert.ok(setpoints.every((rpm) => rpm >= 300 && rpm <= (speedSpec.max as number)), `setpoints ${Math.min(...setpoints)}..${Math.max(...setpoints)}`);
      assert.deepEqual(plant.read(MAX_DRIVES, 'holding', 1, 1), [setpoints[MAX_DRIVES - 1]]);
    }
    const second = new SimulatedPlant({ drives: 2, firstDriveIndex: 4 }).drives.map((d) => d.setpointRpm);
    assert.deepEqual(second, [1170, 1410], 'a second port continues the demo machines (round 2: 30 rpm lower)');
  });

  it('reads input registers from an image that follows every change of the drive at once', () => {
    const plant = new SimulatedPlant({ drives: 1 });
    plant.step(3);
    const first = plant.read(1, 'input', 0, 16);
    assert.deepEqual(plant.read(1, 'input', 0, 16), first, 'unchanged drive, same words');
    assert.notEqual(first, plant.read(1, 'input', 0, 16), 'a fresh array per read: the server may keep it');
    plant.injectFault(1, { kind: 'overcurrent' });
    plant.step(0.05);
    assert.notEqual(plant.read(1, 'input', 1, 1)[0], 0, 'tripped: fault code');
    plant.drive(1).clearInjection();
    plant.drive(1).resetFault(); // directly on the model, not through the plant
    assert.equal(plant.read(1, 'input', 1, 1)[0], 0, 'reset shows without a tick');
    plant.drive(1).setpointRpm = 700;
    assert.deepEqual(plant.read(1, 'holding', 1, 1), [700]);
  });

  it('one PlantClock steps the drives of several plants together', async () => {
    const plants = [new SimulatedPlant({ drives: 2 }), new SimulatedPlant({ drives: 3, firstDriveIndex: 2 })];
    const clock = new PlantClock(plants, 10);
    clock.start();
    await new Promise((resolve) => setTimeout(resolve, 120));
    clock.stop();
    const times = plants.flatMap((p) => p.drives.map((d) => d.timeS));
    assert.ok(times[0] > 0);
    assert.ok(times.every((t) => t === times[0]), `one clock, one time: ${times}`);
  });

  it('splits drives evenly over ports, at most 247 each', () => {
    assert.deepEqual(drivesPerPort(4, 1), [4]);
    assert.deepEqual(drivesPerPort(300, 2), [150, 150]);
    assert.deepEqual(drivesPerPort(5, 2), [3, 2]);
    assert.deepEqual(drivesPerPort(988, 4), [247, 247, 247, 247]);
    assert.throws(() => drivesPerPort(300, 1), /1\.\.247 for 1 port.*give more ports \(2 carry 300\)/);
    assert.throws(() => drivesPerPort(1, 2), /at least one per port/);
  });

  it('parses the CLI\'s --ports list and ranges', () => {
    assert.deepEqual(parsePortList('5020,5021'), [5020, 5021]);
    assert.deepEqual(parsePortList('5020-5023, 0'), [5020, 5021, 5022, 5023, 0]);
    assert.throws(() => parsePortList('5020,,5021'), /"" is not a port/);
    assert.throws(() => parsePortList('5023-5020'), /"5023-5020" is not a port/);
    assert.throws(() => parsePortList('70000'), /"70000"/);
  });

  it('checks its options', () => {
    assert.throws(() => new SimulatedPlant({ drives: 0 }), /1\.\.247/);
    assert.throws(() => new SimulatedPlant({ drives: 248 }), /1\.\.247/);
    assert.throws(() => new SimulatedPlant({ tickMs: 0 }), /tickMs/);
    assert.throws(() => new SimulatedPlant({ drives: 2 }).drive(3), /no drive at unit id 3/);
  });

  it('port: option, else the environment variable, else 5020', () => {
    assert.equal(resolveSimPort(undefined, {}), 5020);
    assert.equal(resolveSimPort(undefined, { [SIM_PORT_ENV]: '15020' }), 15020);
    assert.equal(resolveSimPort(0, { [SIM_PORT_ENV]: '15020' }), 0);
    assert.throws(() => resolveSimPort(undefined, { [SIM_PORT_ENV]: 'abc' }), /UNS_EDGE_SIM_PORT must be an integer in 0\.\.65535/);
    assert.throws(() => resolveSimPort(70000, {}), /port option/);
  });
});
