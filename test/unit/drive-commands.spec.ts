import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { DriveCommand, DriveCommandError, planCommand, PlannedWrite } from '../../lib/drive/commands';
import { CommandName, DriveProfile, loadDriveProfile, packagedProfilesDir, parameterNamed } from '../../lib/drive/profile';
import { decodeParameter } from '../../lib/drive/values';

const load = (id: string): DriveProfile => loadDriveProfile(join(packagedProfilesDir(), `${id}.json`));
const abb = load('abb-acs580');
const danfoss = load('danfoss-vlt-fc');
const siemens = load('siemens-sinamics-g120');
const eaton = load('eaton-m-max');
const sim = load('simulated-drive');

/** [address, words…] of each planned write. */
const writes = (plan: PlannedWrite[]): number[][] => plan.map((w) => [w.address, ...w.words]);
const controlWords = (profile: DriveProfile, kind: CommandName): number[] => planCommand(profile, { kind }).map((w) => w.words[0]);

describe('drive command sequences', () => {
  it('each profile writes the documented control-word sequence to its control word register', () => {
    const expected: Record<string, Partial<Record<CommandName, number[]>>> = {
      'abb-acs580': { startForward: [0x047e, 0x047f], stop: [0x047e], coastStop: [0x047c], quickStop: [0x047a], faultReset: [0x047e, 0x04fe, 0x047e] },
      'danfoss-vlt-fc': { startForward: [0x047c], startReverse: [0x847c], stop: [0x043c], coastStop: [0x0434], quickStop: [0x042c], faultReset: [0x043c, 0x04bc, 0x043c] },
      'siemens-sinamics-g120': { startForward: [0x047e, 0x047f], startReverse: [0x047e, 0x0c7f], stop: [0x047e], coastStop: [0x047c], quickStop: [0x047a], faultReset: [0x047e, 0x04fe, 0x047e] },
      'eaton-m-max': { startForward: [0x0001], startReverse: [0x0003], stop: [0x0000], coastStop: [0x0008], quickStop: [0x1000], faultReset: [0x0000, 0x0004, 0x0000] },
      'uns-edge-simulated-drive': { startForward: [1], startReverse: [3], stop: [0], coastStop: [8], faultReset: [4] },
    };
    for (const profile of [abb, danfoss, siemens, eaton, sim]) {
      const address = profile.parameters.find((p) => p.name === profile.controlWord.parameter)?.address;
      for (const [kind, words] of Object.entries(expected[profile.id])) {
        const plan = planCommand(profile, { kind: kind as CommandName });
        assert.deepEqual(plan.map((w) => w.words[0]), words, `${profile.id} ${kind}`);
        assert.ok(plan.every((w) => w.address === address && w.table === 'holding' && w.words.length === 1), `${profile.id} ${kind} address`);
      }
    }
    assert.deepEqual([danfoss, siemens, eaton].map((p) => planCommand(p, { kind: 'stop' })[0].address), [49999, 99, 2000], 'register 50000, 40100, 42001 minus the vendor offset');
  });

  it('start sequences wait for the state the manual names, and skip OFF1 when the drive already runs', () => {
    const [off1, on] = planCommand(abb, { kind: 'startForward' });
    assert.deepEqual(off1.awaitStatus, { when: { readyToSwitchOn: true }, timeoutMs: 2000 });
    assert.equal(on.awaitStatus, undefined);
    assert.deepEqual(controlWords(abb, 'startForward'), [0x047e, 0x047f]);
    assert.deepEqual(planCommand(abb, { kind: 'startForward' }, { status: 0x0337 }).map((w) => w.words[0]), [0x047f], 'operation enabled: no OFF1 glitch');
    assert.deepEqual(planCommand(abb, { kind: 'startForward' }, { status: 0x0031 }).map((w) => w.words[0]), [0x047e, 0x047f]);
    assert.deepEqual(planCommand(siemens, { kind: 'startReverse' }, { status: 0x0237 }).map((w) => w.words[0]), [0x0c7f]);
  });

  it('a drive that reverses by the setpoint sign writes the signed setpoint first', () => {
    // ABB REF1: 20000 = 100 %, two's complement below zero
    assert.deepEqual(writes(planCommand(abb, { kind: 'startReverse' }, { setpoint: 50 })), [[1, 0xd8f0], [0, 0x047e], [0, 0x047f]]);
    assert.deepEqual(writes(planCommand(abb, { kind: 'startForward' }, { setpoint: -30 })), [[1, 6000], [0, 0x047e], [0, 0x047f]]);
    assert.deepEqual(writes(planCommand(abb, { kind: 'startForward' }, { setpoint: 30 })), [[0, 0x047e], [0, 0x047f]], 'already positive: no setpoint write');
    assert.throws(() => planCommand(abb, { kind: 'startReverse' }), /abb-acs580 reverses by the sign of the setpoint: the current setpoint is needed/);
    const noReverse: DriveProfile = { ...eaton, controlWord: { ...eaton.controlWord, direction: 'none', commands: { ...eaton.controlWord.commands, startReverse: undefined } } };
    assert.throws(() => planCommand(noReverse, { kind: 'startReverse' }), /has no startReverse command: this drive cannot be reversed over this interface/);
    assert.throws(() => planCommand(sim, { kind: 'quickStop' }), /uns-edge-simulated-drive has no quickStop command: the profile does not define it/);
  });

  it('setpoints are encoded as the register says: type, scale, word order', () => {
    assert.deepEqual(writes(planCommand(danfoss, { kind: 'setpoint', value: 50 })), [[50009, 0x2000]]);
    assert.deepEqual(writes(planCommand(siemens, { kind: 'setpoint', value: 100 })), [[100, 0x4000]]);
    assert.deepEqual(writes(planCommand(siemens, { kind: 'setpoint', value: -100 })), [[100, 0xc000]]);
    assert.deepEqual(writes(planCommand(eaton, { kind: 'setpoint', value: 12.34 })), [[2002, 1234]]);
    assert.deepEqual(writes(planCommand(sim, { kind: 'setpoint', value: 1500 })), [[1, 1500]]);
    assert.equal(decodeParameter(parameterNamed(eaton, 'motorCurrent'), [378]), 3.78, 'exact decimal scaling, as the Modbus nodes do');
    assert.deepEqual(writes(planCommand(siemens, { kind: 'write', parameter: 'currentLimit', value: 25.9 })), [[320, 259]]);
    const rounded = planCommand(danfoss, { kind: 'setpoint', value: 33.3 })[0];
    assert.equal(rounded.words[0], 5456, '33.3 % × 16384 / 100 = 5455.87 → 5456');
    assert.ok(Math.abs(rounded.value - 33.3) < 0.01 && rounded.value !== 33.3, 'the plan carries the value the register really gets');
  });

  it('parameter writes go through the same encoding and refuse what the register cannot hold', () => {
    assert.deepEqual(writes(planCommand(siemens, { kind: 'write', parameter: 'rampUpTime', value: 10.5 })), [[321, 1050]]);
    assert.deepEqual(writes(planCommand(sim, { kind: 'write', parameter: 'accelRate', value: 600 })), [[2, 600]]);
    const refused = (command: DriveCommand, message: RegExp): void => assert.throws(() => planCommand(siemens, command), (e: unknown) => e instanceof DriveCommandError && message.test(e.message));
    refused({ kind: 'write', parameter: 'rampUpTime', value: 700 }, /rampUpTime: 700 s is raw 70000, 70000 is out of range for uint16/);
    refused({ kind: 'write', parameter: 'statusWord', value: 1 }, /statusWord is not writable/);
    refused({ kind: 'write', parameter: 'torque', value: 1 }, /siemens-sinamics-g120 has no parameter named "torque"/);
    refused({ kind: 'setpoint', value: Number.NaN }, /mainSetpoint needs a finite number/);
  });
});
