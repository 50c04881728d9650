import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { DriveProfile, loadDriveProfile, packagedProfilesDir } from '../../lib/drive/profile';
import { decodeStatusWord, describeFault } from '../../lib/drive/status';
import { SimulatedPlant } from '../../sim/plant';

const load = (id: string): DriveProfile => loadDriveProfile(join(packagedProfilesDir(), `${id}.json`));
const abb = load('abb-acs580');
const danfoss = load('danfoss-vlt-fc');
const siemens = load('siemens-sinamics-g120');
const eaton = load('eaton-m-max');
const sim = load('simulated-drive');

describe('drive status word decoding', () => {
  it('ABB Drives profile: states of the state diagram, uniform signals', () => {
    // RDY_ON + OFF_2_STA + OFF_3_STA: after 0x047E
    let s = decodeStatusWord(abb, 0x0031);
    assert.equal(s.state, 'READY TO SWITCH ON');
    assert.deepEqual(s.signals, { ready: true, running: false, fault: false, warning: false, reverse: null, atSetpoint: false, remote: false });
    assert.equal(s.bits.off2Inactive, true);
    // RDY_ON RDY_RUN RDY_REF OFF2/3 inactive AT_SETPOINT REMOTE: running at the reference
    s = decodeStatusWord(abb, 0x0337);
    assert.equal(s.state, 'OPERATING');
    assert.equal(s.signals.running, true);
    assert.equal(s.signals.atSetpoint, true);
    assert.equal(s.signals.remote, true);
    assert.equal(decodeStatusWord(abb, 0x0237).state, 'OPERATION ENABLED', 'not yet at the reference');
    assert.equal(decodeStatusWord(abb, 0x0070).state, 'SWITCH-ON INHIBITED');
    assert.equal(decodeStatusWord(abb, 0x0021).state, 'OFF2 ACTIVE');
    assert.equal(decodeStatusWord(abb, 0x0030).state, 'NOT READY TO SWITCH ON');
    assert.equal(decodeStatusWord(abb, 0x0000).state, 'OFF2 ACTIVE', 'bit 4 = 0 reads as OFF2 ACTIVE');
    s = decodeStatusWord(abb, 0x00f8);
    assert.equal(s.state, 'FAULT');
    assert.deepEqual([s.signals.fault, s.signals.warning], [true, true]);
  });

  it('a word decoded again is the same frozen result, per profile; an invalid word is still refused', () => {
    const first = decodeStatusWord(abb, 0x0337);
    assert.equal(decodeStatusWord(abb, 0x0337), first);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.bits) && Object.isFrozen(first.signals));
    assert.throws(() => { (first.signals as Record<string, unknown>).running = false; }, TypeError);
    assert.equal(decodeStatusWord(abb, 0x0337).signals.running, true, 'a caller cannot change what the next poll reads');
    assert.notEqual(decodeStatusWord(danfoss, 0x0337), first, 'another profile decodes the word by its own bits');
    for (let word = 0; word < 600; word++) decodeStatusWord(abb, word); // past the per-profile bound: still decoded right
    assert.equal(decodeStatusWord(abb, 0x0337).state, 'OPERATING');
    assert.throws(() => decodeStatusWord(abb, 0x10000), /status word must be an integer 0\.\.65535/);
    assert.throws(() => decodeStatusWord(abb, 1.5), RangeError);
  });

  it('Danfoss FC profile, SINAMICS ZSW1 and Eaton M-Max words', () => {
    assert.equal(decodeStatusWord(danfoss, 0x0b07).state, 'IN OPERATION');
    assert.equal(decodeStatusWord(danfoss, 0x0b07).signals.atSetpoint, true);
    assert.equal(decodeStatusWord(danfoss, 0x0048).state, 'TRIP LOCK');
    assert.equal(decodeStatusWord(danfoss, 0x0008).signals.fault, true);
    assert.equal(decodeStatusWord(danfoss, 0x0003).state, 'DRIVE READY');

    const zsw1 = decodeStatusWord(siemens, 0xa337); // bits 0,1,2,4,5,8,9 + active-low alarm bits 13, 15 clear of alarm
    assert.equal(zsw1.state, 'OPERATION ENABLED');
    assert.deepEqual([zsw1.bits.noMotorOvertemperatureAlarm, zsw1.bits.noInverterThermalOverloadAlarm], [true, true]);
    assert.equal(zsw1.signals.reverse, null, 'bit 14 reports the sign of the speed, not the command');
    assert.equal(decodeStatusWord(siemens, 0x0070).state, 'SWITCHING ON INHIBITED');

    const eatonRun = decodeStatusWord(eaton, 0x0027); // ready, run, REV, at setpoint
    assert.equal(eatonRun.state, 'RUN REV');
    assert.deepEqual([eatonRun.signals.reverse, eatonRun.signals.atSetpoint], [true, true]);
    assert.equal(decodeStatusWord(eaton, 0x0009).state, 'FAULT');
  });

  it('agrees with the simulated drive it reads from', () => {
    const plant = new SimulatedPlant({ drives: 1, seed: 4 });
    plant.step(20);
    const [word] = plant.read(1, 'input', 0, 1);
    const status = decodeStatusWord(sim, word);
    const model = plant.drive(1).status();
    assert.equal(status.state, 'RUNNING');
    assert.deepEqual(
      [status.signals.ready, status.signals.running, status.signals.fault, status.signals.reverse],
      [model.ready, model.running, model.fault, model.reverse],
    );
  });

  it('refuses what is not a 16-bit word', () => {
    for (const bad of [-1, 65536, 1.5, Number.NaN]) assert.throws(() => decodeStatusWord(abb, bad), /status word must be an integer 0\.\.65535/);
  });

  it('without state names, derives the state from the signals', () => {
    const bare: DriveProfile = { ...eaton, statusWord: { ...eaton.statusWord, states: [] } };
    assert.equal(decodeStatusWord(bare, 0x0007).state, 'RUNNING REVERSE');
    assert.equal(decodeStatusWord(bare, 0x0001).state, 'READY');
    assert.equal(decodeStatusWord(bare, 0x0000).state, 'NOT READY');
  });
});

describe('drive fault codes', () => {
  it('texts from the profile, with the vendor display code', () => {
    assert.deepEqual(describeFault(sim, 1), { code: 1, name: 'overcurrent', known: true, text: sim.faults.codes[1].description });
    const undervoltage = describeFault(eaton, 9);
    assert.equal(undervoltage.name, 'undervoltage');
    assert.match(undervoltage.text, /^F… 09 \/ AL 09: Undervoltage in the DC link/);
  });

  it('a code the profile lacks says so, and why the table is incomplete', () => {
    const unknown = describeFault(eaton, 77);
    assert.equal(unknown.known, false);
    assert.match(unknown.text, /fault code 77 \(0x4D\) is not in the eaton-m-max fault table \(the profile's fault table is incomplete: Only the two codes/);
    assert.match(describeFault(abb, 0x2310).text, /fault code 8976 \(0x2310\) is not in the abb-acs580 fault table .*neither that list nor the register/);
    assert.match(describeFault(sim, 99).text, /the vendor list in the profile has no such code/);
    assert.throws(() => describeFault(sim, -1), RangeError);
  });
});
