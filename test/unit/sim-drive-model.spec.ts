import { strict as assert } from 'node:assert';
import { DriveModel, DriveModelOptions } from '../../sim/drive-model';

/** A drive with a steady, noise-free load, so steady states can be computed by hand. */
function steadyDrive(options: Partial<DriveModelOptions> = {}): DriveModel {
  return new DriveModel({
    seed: 7,
    load: { kind: 'constant', baseFraction: 0.6, variationFraction: 0, noiseFraction: 0 },
    physics: { vibrationNoiseFraction: 0 },
    ...options,
  });
}

function runFor(drive: DriveModel, seconds: number, dt = 0.1): void {
  for (let t = 0; t < seconds - 1e-9; t += dt) drive.step(dt);
}

function snapshot(d: DriveModel): number[] {
  return [d.speedRpm, d.currentA, d.outputFrequencyHz, d.outputPowerKw, d.dcBusVoltageV, d.motorTemperatureC,
    d.heatsinkTemperatureC, d.vibrationMmS, d.runHours, d.energyKwh, d.wearHours];
}

describe('sim drive model: speed ramp', () => {
  it('reaches the setpoint after setpoint / accel seconds, not before', () => {
    const drive = steadyDrive({ setpointRpm: 1200, accelRpmPerS: 300 });
    drive.start();
    runFor(drive, 3.9);
    assert.ok(Math.abs(drive.speedRpm - 1170) < 1e-6, `at 3.9 s: ${drive.speedRpm}`);
    assert.equal(drive.status().atSetpoint, false);
    runFor(drive, 0.2);
    assert.equal(drive.speedRpm, 1200);
    assert.deepEqual(drive.status(), { ready: true, running: true, fault: false, warning: false, reverse: false, atSetpoint: true });
  });

  it('ramps down at the decel rate on stop and then switches the output off', () => {
    const drive = steadyDrive({ setpointRpm: 1200, accelRpmPerS: 1000, decelRpmPerS: 600 });
    drive.start();
    runFor(drive, 1.5);
    drive.stop();
    runFor(drive, 1);
    assert.ok(Math.abs(drive.speedRpm - 600) < 1e-6, `after 1 s of 2 s decel: ${drive.speedRpm}`);
    assert.equal(drive.status().running, true);
    runFor(drive, 1.2);
    assert.equal(drive.speedRpm, 0);
    assert.equal(drive.status().running, false);
    assert.equal(drive.currentA, 0);
    assert.equal(drive.fault, 'none');
  });

  it('reverses through zero: decel to 0, then accel to −setpoint, and reports reverse', () => {
    const drive = steadyDrive({ setpointRpm: 600, accelRpmPerS: 300, decelRpmPerS: 600 });
    drive.start();
    runFor(drive, 3);
    assert.equal(drive.speedRpm, 600);
    drive.start(true);
    runFor(drive, 1);
    assert.ok(Math.abs(drive.speedRpm) < 1e-6, `at zero after 1 s: ${drive.speedRpm}`);
    runFor(drive, 1);
    assert.ok(Math.abs(drive.speedRpm + 300) < 1e-6, `halfway: ${drive.speedRpm}`);
    runFor(drive, 1.1);
    assert.equal(drive.speedRpm, -600);
    assert.ok(drive.outputFrequencyHz < -19, `frequency follows speed in reverse: ${drive.outputFrequencyHz}`);
    assert.equal(drive.status().reverse, true);
    assert.equal(drive.status().atSetpoint, true);
  });

  it('output frequency follows speed by the pole count, plus slip under load', () => {
    const drive = steadyDrive({ setpointRpm: 1200, accelRpmPerS: 1000 });
    drive.start();
    runFor(drive, 2);
    const synchronous = (1200 * drive.ratings.poles) / 120; // 40 Hz for 4 poles
    assert.ok(drive.outputFrequencyHz > synchronous && drive.outputFrequencyHz < synchronous + 1.5, `${drive.outputFrequencyHz} Hz`);
  });
});

describe('sim drive model: current, power and thermal model', () => {
  it('draws magnetising current only at no load', () => {
    const drive = steadyDrive({ setpointRpm: 0 });
    drive.start();
    runFor(drive, 1);
    assert.equal(drive.speedRpm, 0);
    assert.equal(drive.status().running, true);
    assert.equal(drive.currentA, drive.ratings.magnetisingCurrentA);
  });

  it('converges to the computed thermal steady state with the configured time constant', () => {
    const drive = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000 });
    const { ratings: r, physics: p } = drive;
    drive.start();
    runFor(drive, 2);
    const current = drive.currentA;
    // Constant load at rated speed: 0.6 × rated torque + friction, as torque current ⟂ magnetising current.
    const ratedTorque = (r.ratedPowerKw * 1000) / (r.ratedSpeedRpm * 2 * Math.PI / 60);
    const torque = 0.6 * ratedTorque + p.frictionTorqueNm;
    const expectedCurrent = Math.hypot(r.magnetisingCurrentA, Math.sqrt(r.ratedCurrentA ** 2 - r.magnetisingCurrentA ** 2) * torque / ratedTorque);
    assert.ok(Math.abs(current - expectedCurrent) < 1e-9, `${current} vs ${expectedCurrent}`);

    const ratedLoss = r.ratedPowerKw * 1000 * (1 / r.ratedEfficiency - 1);
    const ironLoss = ratedLoss * p.motorIronLossShare;
    const motorLoss = (ratedLoss - ironLoss) * (current / r.ratedCurrentA) ** 2 + ironLoss;
    const motorSteady = p.ambientC + p.motorThermalResistanceKPerW * motorLoss;
    const heatsinkSteady = p.ambientC + p.heatsinkThermalResistanceKPerW * (p.heatsinkFixedLossW + p.heatsinkLossWPerA2 * current ** 2);

    runFor(drive, p.motorThermalTimeConstantS - 2);
    const expectedAtTau = p.ambientC + (motorSteady - p.ambientC) * (1 - Math.exp(-1));
    assert.ok(Math.abs(drive.motorTemperatureC - expectedAtTau) < 0.3, `after τ: ${drive.motorTemperatureC} vs ${expectedAtTau}`);

    runFor(drive, 10 * p.motorThermalTimeConstantS, 1);
    assert.ok(Math.abs(drive.motorTemperatureC - motorSteady) < 0.01, `${drive.motorTemperatureC} vs ${motorSteady}`);
    assert.ok(Math.abs(drive.heatsinkTemperatureC - heatsinkSteady) < 0.01, `${drive.heatsinkTemperatureC} vs ${heatsinkSteady}`);
    assert.equal(drive.fault, 'none');
    // Output power = shaft power + motor losses.
    const shaftKw = (torque * 1460 * 2 * Math.PI) / 60 / 1000;
    assert.ok(Math.abs(drive.outputPowerKw - (shaftKw + motorLoss / 1000)) < 1e-9);
  });

  it('counts run hours while the output is on and energy delivered', () => {
    const drive = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000, initialRunHours: 10, initialEnergyKwh: 100 });
    drive.start();
    runFor(drive, 360, 1);
    assert.ok(Math.abs(drive.runHours - 10.1) < 1e-9, `${drive.runHours}`);
    assert.ok(Math.abs(drive.energyKwh - (100 + drive.outputPowerKw * 0.1)) < 0.01, `${drive.energyKwh}`);
    drive.stop();
    runFor(drive, 360, 1);
    const rampDownHours = 1460 / drive.decelRpmPerS / 3600;
    assert.ok(Math.abs(drive.runHours - (10.1 + rampDownHours)) < drive.physics.maxSubStepS / 3600, `run hours count the ramp down only: ${drive.runHours}`);
  });
});

describe('sim drive model: protection trips', () => {
  it('overtemperature: with motor cooling failed the winding heats until it trips; reset waits for it to cool', () => {
    const drive = steadyDrive({ setpointRpm: 1200, accelRpmPerS: 1000 });
    drive.start();
    runFor(drive, 60);
    drive.injectFault({ kind: 'overtemperature' });
    let seconds = 0;
    while (drive.fault === 'none' && seconds < 3600) {
      drive.step(1);
      seconds++;
    }
    assert.equal(drive.fault, 'motorOvertemperature');
    assert.ok(seconds > 30, `it climbs first (tripped after ${seconds} s)`);
    assert.ok(drive.motorTemperatureC > drive.ratings.motorTemperatureResetC, `hot: ${drive.motorTemperatureC}`);
    assert.deepEqual({ ...drive.status(), reverse: false }, { ready: false, running: false, fault: true, warning: true, reverse: false, atSetpoint: false });
    assert.equal(drive.currentA, 0);
    const speedAtTrip = drive.speedRpm;
    drive.step(0.5);
    assert.ok(drive.speedRpm > 0 && drive.speedRpm < speedAtTrip, `coasts: ${speedAtTrip} → ${drive.speedRpm}`);

    drive.clearInjection('overtemperature');
    assert.equal(drive.resetFault(), false, 'still hot');
    runFor(drive, 600, 1);
    assert.ok(drive.motorTemperatureC < drive.ratings.motorTemperatureResetC);
    drive.setControl({ ...drive.control, faultReset: true });
    assert.equal(drive.fault, 'none');
    runFor(drive, 1);
    assert.equal(drive.status().running, false, 'no restart without a new run edge (run bit still set)');
    drive.setControl({ run: false, reverse: false, faultReset: false, coastStop: false });
    drive.setControl({ run: true, reverse: false, faultReset: false, coastStop: false });
    runFor(drive, 1);
    assert.equal(drive.status().running, true);
  });

  it('heatsink overtemperature trips on its own under a sustained overload', () => {
    const drive = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 100, load: { kind: 'constant', baseFraction: 1.8, variationFraction: 0, noiseFraction: 0 } });
    drive.start();
    runFor(drive, 600, 1);
    assert.equal(drive.fault, 'heatsinkOvertemperature');
  });

  it('no trip at rated load for an hour', () => {
    const drive = steadyDrive({ setpointRpm: 1460, load: { kind: 'quadratic', baseFraction: 1, variationFraction: 0.1, noiseFraction: 0.02 } });
    drive.start();
    runFor(drive, 3600, 1);
    assert.equal(drive.fault, 'none');
    assert.equal(drive.status().atSetpoint, true);
  });

  it('overcurrent injected: trips at once, fault latched, motor coasts, restart trips again until cleared', () => {
    const drive = steadyDrive({ setpointRpm: 1200, accelRpmPerS: 1000 });
    drive.start();
    runFor(drive, 2);
    drive.injectFault({ kind: 'overcurrent' });
    drive.step(0.1);
    assert.equal(drive.fault, 'overcurrent');
    assert.equal(drive.status().running, false);
    const speedAtTrip = drive.speedRpm;
    runFor(drive, 1);
    assert.ok(drive.speedRpm > 0 && drive.speedRpm < speedAtTrip, `coasts: ${speedAtTrip} → ${drive.speedRpm}`);

    assert.equal(drive.resetFault(), true);
    drive.start();
    drive.step(0.1);
    assert.equal(drive.fault, 'overcurrent', 'the output fault is still there');
    drive.clearInjection();
    drive.resetFault();
    drive.start();
    runFor(drive, 2);
    assert.equal(drive.fault, 'none');
    assert.equal(drive.speedRpm, 1200);
  });

  it('overcurrent on its own: too steep a ramp for the inertia', () => {
    const gentle = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000 });
    gentle.start();
    runFor(gentle, 1);
    assert.equal(gentle.fault, 'none');
    const steep = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 3000 });
    steep.start();
    runFor(steep, 1);
    assert.equal(steep.fault, 'overcurrent');
    assert.ok(steep.speedRpm < 1460);
  });

  it('DC overvoltage on its own: too fast a deceleration regenerates into the bus', () => {
    const light = { kind: 'constant' as const, baseFraction: 0.2, variationFraction: 0, noiseFraction: 0 };
    const normal = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000, decelRpmPerS: 300, load: light });
    const fast = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000, decelRpmPerS: 1500, load: light });
    for (const drive of [normal, fast]) {
      drive.start();
      runFor(drive, 2);
      drive.stop();
    }
    let peakBus = 0;
    for (let t = 0; t < 6; t += 0.05) {
      normal.step(0.05);
      peakBus = Math.max(peakBus, normal.dcBusVoltageV);
    }
    assert.equal(normal.fault, 'none');
    assert.equal(normal.speedRpm, 0);
    assert.ok(peakBus > normal.ratings.dcBusNominalV, `regenerates a little: ${peakBus} V`);
    runFor(fast, 1);
    assert.equal(fast.fault, 'dcOvervoltage');
    assert.equal(fast.status().running, false);
  });

  it('coast stop switches the output off without a fault', () => {
    const drive = steadyDrive({ setpointRpm: 1200, accelRpmPerS: 1000 });
    drive.start();
    runFor(drive, 1);
    drive.setControl({ run: true, reverse: false, faultReset: false, coastStop: true });
    runFor(drive, 0.5);
    assert.equal(drive.status().running, false);
    assert.equal(drive.fault, 'none');
    assert.ok(drive.speedRpm > 0 && drive.speedRpm < 1200);
  });
});

describe('sim drive model: wear, comms loss, determinism', () => {
  it('vibration grows with accumulated wear and with speed', () => {
    const normal = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000 });
    const worn = steadyDrive({ setpointRpm: 1460, accelRpmPerS: 1000 });
    worn.injectFault({ kind: 'wear', multiplier: 36000 });
    for (const d of [normal, worn]) {
      d.start();
      runFor(d, 60);
    }
    assert.ok(Math.abs(worn.wearHours - normal.wearHours * 36000) < 1e-6 * worn.wearHours);
    const expectedRise = worn.physics.vibrationPerWearHourMmS * (worn.wearHours - normal.wearHours);
    assert.ok(expectedRise > 0.5);
    assert.ok(Math.abs(worn.vibrationMmS - normal.vibrationMmS - expectedRise) < 1e-6, `${worn.vibrationMmS} vs ${normal.vibrationMmS}`);

    const atFull = worn.vibrationMmS;
    worn.clearInjection('wear');
    worn.setpointRpm = 730;
    worn.decelRpmPerS = 1000;
    runFor(worn, 1);
    assert.ok(Math.abs(worn.vibrationMmS - atFull / 2) < 0.01, `half speed, half vibration: ${worn.vibrationMmS} vs ${atFull}`);
  });

  it('comms loss silences the unit while the drive keeps running', () => {
    const drive = steadyDrive({ setpointRpm: 600 });
    drive.start();
    drive.injectFault({ kind: 'commsLoss' });
    assert.equal(drive.answers, false);
    runFor(drive, 1);
    assert.ok(drive.speedRpm > 0);
    assert.deepEqual(drive.injections, [{ kind: 'commsLoss' }]);
    drive.clearInjection('commsLoss');
    assert.equal(drive.answers, true);
  });

  it('is deterministic for a seed: same seed and steps give identical values, another seed differs', () => {
    const make = (seed: number) => new DriveModel({ seed, setpointRpm: 1300, load: { noiseFraction: 0.05 } });
    const a = make(42);
    const b = make(42);
    const c = make(43);
    for (const d of [a, b, c]) {
      d.start();
      runFor(d, 30);
    }
    assert.deepEqual(snapshot(a), snapshot(b));
    assert.notEqual(a.currentA, c.currentA);
  });

  it('one step of 1 s equals ten steps of 0.1 s', () => {
    const coarse = new DriveModel({ seed: 5, setpointRpm: 1300 });
    const fine = new DriveModel({ seed: 5, setpointRpm: 1300 });
    coarse.start();
    fine.start();
    for (let i = 0; i < 20; i++) coarse.step(1);
    runFor(fine, 20);
    assert.deepEqual(snapshot(coarse), snapshot(fine));
  });

  it('rejects nonsense settings', () => {
    const drive = steadyDrive();
    assert.throws(() => { drive.setpointRpm = -1; }, RangeError);
    assert.throws(() => { drive.accelRpmPerS = 0; }, RangeError);
    assert.throws(() => drive.step(Number.NaN), RangeError);
  });
});
