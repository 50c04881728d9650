/**
 * One simulated variable frequency drive with its motor and load. Deterministic: the same seed and the
 * same sequence of step(dt) calls give the same values. No timers, no I/O: the plant (sim/plant.ts)
 * ticks it and maps it to registers.
 *
 * Physics in brief (docs/simulated-plant.md has the long form):
 *   speed      ramps to ±setpoint at the accel/decel rates while the output is on; coasts down on
 *              load + friction torque when it is off (fault, coast stop)
 *   torque     load torque (quadratic for a pump/fan, constant for a conveyor) + J·dω/dt
 *   current    √(I_mag² + I_q²), I_q ∝ torque (field-oriented view of an induction motor)
 *   frequency  f = (n ± slip)·p / 120, slip ∝ torque
 *   power      P = T·ω + motor losses; negative while regenerating
 *   DC bus     sags with motoring power, rises with regenerated power (no brake chopper)
 *   thermal    first order, T → T_amb + R_th·P_loss with time constant τ (motor: I²R + iron loss;
 *              heatsink: fixed + k·I²), integrated exactly for each sub-step
 *   vibration  grows with accumulated wear and with speed
 * Protection trips on its own: overcurrent, motor/heatsink overtemperature, DC overvoltage.
 */
import { DriveRatings, simulatedDriveProfile } from './profile';

export type LoadKind = 'quadratic' | 'constant';

/** What the motor drives. */
export interface LoadProfile {
  /** 'quadratic': centrifugal pump or fan, torque ∝ speed² (affinity laws); 'constant': conveyor. */
  kind: LoadKind;
  /** Load torque at rated speed, as a fraction of rated torque. */
  baseFraction: number;
  /** Amplitude of the slow sinusoidal variation, as a fraction of the base load. */
  variationFraction: number;
  variationPeriodS: number;
  /** Standard deviation of the torque noise, as a fraction of rated torque. */
  noiseFraction: number;
}

/** Simulation constants that a drive profile does not carry. */
export interface DrivePhysics {
  /** Motor + load inertia. */
  inertiaKgM2: number;
  frictionTorqueNm: number;
  ambientC: number;
  /** Share of the motor's rated losses, P_rated·(1/η − 1), that is iron loss (the rest is I²R at rated current). */
  motorIronLossShare: number;
  motorThermalResistanceKPerW: number;
  motorThermalTimeConstantS: number;
  heatsinkFixedLossW: number;
  /** Conduction + switching loss coefficient: P = k·I². */
  heatsinkLossWPerA2: number;
  heatsinkThermalResistanceKPerW: number;
  heatsinkThermalTimeConstantS: number;
  dcBusSagVPerKw: number;
  dcBusRiseVPerKw: number;
  dcBusTimeConstantS: number;
  /** Vibration of a new machine at rated speed. */
  baseVibrationMmS: number;
  /** Vibration added per hour of wear, at rated speed. */
  vibrationPerWearHourMmS: number;
  vibrationNoiseFraction: number;
  atSetpointBandRpm: number;
  /** Leakage current added by an injected output (insulation) fault. */
  injectedFaultCurrentA: number;
  /** Motor thermal resistance multiplier while a cooling failure is injected. */
  coolingFailureFactor: number;
  /** Longest internal integration step; step(dt) splits dt into equal sub-steps no longer than this. */
  maxSubStepS: number;
}

export const DEFAULT_PHYSICS: Readonly<DrivePhysics> = Object.freeze({
  inertiaKgM2: 0.5,
  frictionTorqueNm: 0.6,
  ambientC: 25,
  motorIronLossShare: 0.25,
  motorThermalResistanceKPerW: 0.12,
  motorThermalTimeConstantS: 300,
  heatsinkFixedLossW: 40,
  heatsinkLossWPerA2: 0.7,
  heatsinkThermalResistanceKPerW: 0.25,
  heatsinkThermalTimeConstantS: 120,
  dcBusSagVPerKw: 2,
  dcBusRiseVPerKw: 40,
  dcBusTimeConstantS: 0.05,
  baseVibrationMmS: 1.2,
  vibrationPerWearHourMmS: 0.001,
  vibrationNoiseFraction: 0.03,
  atSetpointBandRpm: 5,
  injectedFaultCurrentA: 40,
  coolingFailureFactor: 6,
  maxSubStepS: 0.1,
});

export const DEFAULT_LOAD: Readonly<LoadProfile> = Object.freeze({
  kind: 'quadratic',
  baseFraction: 0.7,
  variationFraction: 0.1,
  variationPeriodS: 120,
  noiseFraction: 0.02,
});

/** The commands of the control word, by name (bit positions live in the profile). */
export interface DriveControl {
  run: boolean;
  reverse: boolean;
  faultReset: boolean;
  coastStop: boolean;
}

/** The flags of the status word, by name (bit positions live in the profile). */
export interface DriveStatus {
  ready: boolean;
  running: boolean;
  fault: boolean;
  warning: boolean;
  reverse: boolean;
  atSetpoint: boolean;
}

/** Fault names as in the profile's fault table; 'none' is code 0. */
export type DriveFaultName = 'none' | 'overcurrent' | 'motorOvertemperature' | 'heatsinkOvertemperature' | 'dcOvervoltage';
export const DRIVE_FAULT_NAMES: readonly DriveFaultName[] = ['none', 'overcurrent', 'motorOvertemperature', 'heatsinkOvertemperature', 'dcOvervoltage'];
export const DRIVE_CONTROL_NAMES: readonly (keyof DriveControl)[] = ['run', 'reverse', 'faultReset', 'coastStop'];
export const DRIVE_STATUS_NAMES: readonly (keyof DriveStatus)[] = ['ready', 'running', 'fault', 'warning', 'reverse', 'atSetpoint'];

/**
 * Conditions a test or demo can inject:
 * - overcurrent: an output insulation fault adds leakage current; trips at once while the output is on
 * - overtemperature: motor cooling fails (thermal resistance × coolingFailureFactor); trips once hot
 * - commsLoss: the unit stops answering on Modbus; the drive itself keeps running
 * - wear: wear accrues `multiplier` times faster (1 = normal)
 */
export type FaultInjection =
  | { kind: 'overcurrent' }
  | { kind: 'overtemperature' }
  | { kind: 'commsLoss' }
  | { kind: 'wear'; multiplier: number };
export type FaultInjectionKind = FaultInjection['kind'];

export interface DriveModelOptions {
  /** Seed of the noise generator (any 32-bit integer). */
  seed: number;
  ratings?: Partial<DriveRatings>;
  physics?: Partial<DrivePhysics>;
  load?: Partial<LoadProfile>;
  setpointRpm?: number;
  accelRpmPerS?: number;
  decelRpmPerS?: number;
  /** Wear already accumulated, in equivalent running hours at rated speed. */
  initialWearHours?: number;
  initialRunHours?: number;
  initialEnergyKwh?: number;
}

const RPM_TO_RAD_S = (2 * Math.PI) / 60;

/** mulberry32: a small, fast 32-bit PRNG; good enough for simulation noise and fully reproducible. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Move `value` toward `target` by the exact solution of dT/dt = (target − T)/τ over dt. */
function firstOrder(value: number, target: number, dt: number, tau: number): number {
  return target + (value - target) * Math.exp(-dt / tau);
}

function nonNegativeFinite(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${what} must be a finite number ≥ 0, got ${value}`);
  return value;
}

export class DriveModel {
  readonly ratings: Readonly<DriveRatings>;
  readonly physics: Readonly<DrivePhysics>;
  readonly load: Readonly<LoadProfile>;

  private readonly random: () => number;
  private readonly loadPhase: number;
  private readonly ratedTorqueNm: number;
  private readonly ratedTorqueCurrentA: number;
  private readonly ratedCopperLossW: number;
  private readonly ironLossW: number;

  private controlState: DriveControl = { run: false, reverse: false, faultReset: false, coastStop: false };
  private setpoint: number;
  private accel: number;
  private decel: number;
  /** After a trip the drive restarts only on a new 0→1 edge of run (no unexpected restart, IEC 60204-1 §7.5). */
  private awaitingRunEdge = false;
  private injected = { overcurrent: false, overtemperature: false, commsLoss: false, wearMultiplier: 1 };

  private time = 0;
  private speed = 0;
  private outputOn = false;
  private accelerationRpmPerS = 0;
  private current = 0;
  private frequency = 0;
  private power = 0;
  private dcBus: number;
  private motorTemperature: number;
  private heatsinkTemperature: number;
  private vibration = 0;
  private wear: number;
  private hours: number;
  private energy: number;
  private activeFault: DriveFaultName = 'none';
  /** Bumped by every change a register could show (commands, parameters, faults, physics steps). */
  private changes = 0;

  constructor(options: DriveModelOptions) {
    this.ratings = Object.freeze({ ...simulatedDriveProfile.ratings, ...options.ratings });
    this.physics = Object.freeze({ ...DEFAULT_PHYSICS, ...options.physics });
    this.load = Object.freeze({ ...DEFAULT_LOAD, ...options.load });
    this.random = mulberry32(options.seed);
    this.loadPhase = this.random() * 2 * Math.PI;

    const r = this.ratings;
    this.ratedTorqueNm = (r.ratedPowerKw * 1000) / (r.ratedSpeedRpm * RPM_TO_RAD_S);
    this.ratedTorqueCurrentA = Math.sqrt(r.ratedCurrentA ** 2 - r.magnetisingCurrentA ** 2);
    const ratedLossW = r.ratedPowerKw * 1000 * (1 / r.ratedEfficiency - 1);
    this.ironLossW = ratedLossW * this.physics.motorIronLossShare;
    this.ratedCopperLossW = ratedLossW - this.ironLossW;

    this.setpoint = nonNegativeFinite(options.setpointRpm ?? 0, 'setpointRpm');
    this.accel = DriveModel.positiveRate(options.accelRpmPerS ?? 300, 'accelRpmPerS');
    this.decel = DriveModel.positiveRate(options.decelRpmPerS ?? 300, 'decelRpmPerS');
    this.wear = nonNegativeFinite(options.initialWearHours ?? 0, 'initialWearHours');
    this.hours = nonNegativeFinite(options.initialRunHours ?? 0, 'initialRunHours');
    this.energy = nonNegativeFinite(options.initialEnergyKwh ?? 0, 'initialEnergyKwh');
    this.dcBus = r.dcBusNominalV;
    this.motorTemperature = this.physics.ambientC;
    this.heatsinkTemperature = this.physics.ambientC;
    this.vibration = this.vibrationAt(0);
  }

  private static positiveRate(value: number, what: string): number {
    if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${what} must be a finite number > 0, got ${value}`);
    return value;
  }

  // ---- commands -------------------------------------------------------------------------------

  get control(): Readonly<DriveControl> { return { ...this.controlState }; }

  /** Apply a control word (by name). A 0→1 edge of faultReset resets a fault whose cause has cleared. */
  setControl(control: DriveControl): void {
    this.changes++;
    const resetEdge = control.faultReset && !this.controlState.faultReset;
    this.controlState = { ...control };
    if (!control.run) this.awaitingRunEdge = false;
    if (resetEdge) this.resetFault();
  }

  /** Run command as a 0→1 edge of run (so it also restarts after a reset trip). */
  start(reverse = false): void {
    this.setControl({ ...this.controlState, run: false, faultReset: false });
    this.setControl({ run: true, reverse, faultReset: false, coastStop: false });
  }
  stop(): void { this.setControl({ ...this.controlState, run: false, faultReset: false }); }

  /** Reset a latched fault if its cause has cleared; true when the drive is fault-free afterwards. */
  resetFault(): boolean {
    this.changes++;
    const r = this.ratings;
    const cleared: Record<DriveFaultName, boolean> = {
      none: true,
      overcurrent: true,
      motorOvertemperature: this.motorTemperature < r.motorTemperatureResetC,
      heatsinkOvertemperature: this.heatsinkTemperature < r.heatsinkTemperatureResetC,
      dcOvervoltage: this.dcBus < r.dcOvervoltageResetV,
    };
    if (cleared[this.activeFault]) this.activeFault = 'none';
    return this.activeFault === 'none';
  }

  get setpointRpm(): number { return this.setpoint; }
  set setpointRpm(rpm: number) { this.setpoint = nonNegativeFinite(rpm, 'setpointRpm'); this.changes++; }
  get accelRpmPerS(): number { return this.accel; }
  set accelRpmPerS(rate: number) { this.accel = DriveModel.positiveRate(rate, 'accelRpmPerS'); this.changes++; }
  get decelRpmPerS(): number { return this.decel; }
  set decelRpmPerS(rate: number) { this.decel = DriveModel.positiveRate(rate, 'decelRpmPerS'); this.changes++; }

  /** Changes so far: equal revisions mean equal registers, so a register image can be reused (sim/plant.ts). */
  get revision(): number { return this.changes; }

  injectFault(injection: FaultInjection): void {
    this.changes++;
    if (injection.kind === 'wear') this.injected.wearMultiplier = nonNegativeFinite(injection.multiplier, 'wear multiplier');
    else this.injected[injection.kind] = true;
  }

  /** Remove an injected condition (all when kind is omitted). A latched trip stays until a fault reset. */
  clearInjection(kind?: FaultInjectionKind): void {
    this.changes++;
    const all = kind === undefined;
    if (all || kind === 'overcurrent') this.injected.overcurrent = false;
    if (all || kind === 'overtemperature') this.injected.overtemperature = false;
    if (all || kind === 'commsLoss') this.injected.commsLoss = false;
    if (all || kind === 'wear') this.injected.wearMultiplier = 1;
  }

  /** Injected conditions now active. */
  get injections(): FaultInjection[] {
    const list: FaultInjection[] = [];
    if (this.injected.overcurrent) list.push({ kind: 'overcurrent' });
    if (this.injected.overtemperature) list.push({ kind: 'overtemperature' });
    if (this.injected.commsLoss) list.push({ kind: 'commsLoss' });
    if (this.injected.wearMultiplier !== 1) list.push({ kind: 'wear', multiplier: this.injected.wearMultiplier });
    return list;
  }

  /** False while comms loss is injected: the unit does not answer on the bus. */
  get answers(): boolean { return !this.injected.commsLoss; }

  // ---- telemetry ------------------------------------------------------------------------------

  get timeS(): number { return this.time; }
  /** Shaft speed, negative in reverse. */
  get speedRpm(): number { return this.speed; }
  get outputFrequencyHz(): number { return this.frequency; }
  get currentA(): number { return this.current; }
  get outputPowerKw(): number { return this.power; }
  get dcBusVoltageV(): number { return this.dcBus; }
  get motorTemperatureC(): number { return this.motorTemperature; }
  get heatsinkTemperatureC(): number { return this.heatsinkTemperature; }
  get vibrationMmS(): number { return this.vibration; }
  get wearHours(): number { return this.wear; }
  get runHours(): number { return this.hours; }
  get energyKwh(): number { return this.energy; }
  get fault(): DriveFaultName { return this.activeFault; }
  /** The speed the drive is heading for now: ±setpoint when running, 0 otherwise. */
  get targetSpeedRpm(): number {
    if (!this.enabled() || !this.controlState.run) return 0;
    return this.controlState.reverse ? -this.setpoint : this.setpoint;
  }

  status(): DriveStatus {
    const r = this.ratings;
    const running = this.outputOn;
    return {
      ready: this.activeFault === 'none',
      running,
      fault: this.activeFault !== 'none',
      warning: this.current > r.ratedCurrentA
        || this.motorTemperature > r.motorTemperatureWarningC
        || this.heatsinkTemperature > r.heatsinkTemperatureWarningC,
      reverse: this.speed < 0 || (this.speed === 0 && this.controlState.reverse),
      atSetpoint: running && this.controlState.run && Math.abs(this.speed - this.targetSpeedRpm) <= this.physics.atSetpointBandRpm,
    };
  }

  // ---- physics --------------------------------------------------------------------------------

  /** Advance the simulation by dtSeconds (split into equal sub-steps of at most physics.maxSubStepS). */
  step(dtSeconds: number): void {
    nonNegativeFinite(dtSeconds, 'dtSeconds');
    this.changes++;
    const count = Math.ceil(dtSeconds / this.physics.maxSubStepS);
    for (let i = 0; i < count; i++) this.subStep(dtSeconds / count);
  }

  private enabled(): boolean {
    return this.activeFault === 'none' && !this.controlState.coastStop && !this.awaitingRunEdge;
  }

  private subStep(h: number): void {
    const p = this.physics;
    const r = this.ratings;
    this.time += h;
    const before = this.speed;
    const loadTorque = this.loadTorqueNm(Math.abs(before));

    const enabled = this.enabled();
    // The output stays on while running, and while ramping down to standstill after a stop.
    this.outputOn = enabled && (this.controlState.run || before !== 0);
    if (this.outputOn) {
      this.speed = this.ramp(before, this.targetSpeedRpm, h);
    } else {
      const coastRpmPerS = ((loadTorque + p.frictionTorqueNm) / p.inertiaKgM2) / RPM_TO_RAD_S;
      this.speed = Math.sign(before) * Math.max(0, Math.abs(before) - coastRpmPerS * h);
    }
    this.accelerationRpmPerS = (this.speed - before) / h;

    let motorLossW = 0;
    if (this.outputOn) {
      const direction = Math.sign(this.speed !== 0 ? this.speed : this.targetSpeedRpm);
      const torque = direction * (loadTorque + p.frictionTorqueNm) + p.inertiaKgM2 * this.accelerationRpmPerS * RPM_TO_RAD_S;
      const torqueCurrent = this.ratedTorqueCurrentA * Math.abs(torque) / this.ratedTorqueNm;
      this.current = Math.hypot(r.magnetisingCurrentA, torqueCurrent) + (this.injected.overcurrent ? p.injectedFaultCurrentA : 0);
      motorLossW = this.ratedCopperLossW * (this.current / r.ratedCurrentA) ** 2 + this.ironLossW;
      const mechanicalW = torque * this.speed * RPM_TO_RAD_S;
      this.power = (mechanicalW + motorLossW) / 1000;
      const slipRpm = (120 * r.ratedFrequencyHz / r.poles - r.ratedSpeedRpm) * torque / this.ratedTorqueNm;
      this.frequency = ((this.speed + slipRpm) * r.poles) / 120;
    } else {
      this.current = 0;
      this.power = 0;
      this.frequency = 0;
    }

    const busTarget = r.dcBusNominalV - (this.power >= 0 ? p.dcBusSagVPerKw * this.power : p.dcBusRiseVPerKw * this.power);
    this.dcBus = firstOrder(this.dcBus, busTarget, h, p.dcBusTimeConstantS);

    const motorRth = p.motorThermalResistanceKPerW * (this.injected.overtemperature ? p.coolingFailureFactor : 1);
    this.motorTemperature = firstOrder(this.motorTemperature, p.ambientC + motorRth * motorLossW, h, p.motorThermalTimeConstantS);
    const heatsinkLossW = p.heatsinkFixedLossW + p.heatsinkLossWPerA2 * this.current ** 2;
    this.heatsinkTemperature = firstOrder(this.heatsinkTemperature, p.ambientC + p.heatsinkThermalResistanceKPerW * heatsinkLossW, h, p.heatsinkThermalTimeConstantS);

    const speedRatio = Math.abs(this.speed) / r.ratedSpeedRpm;
    this.wear += (h / 3600) * speedRatio * this.injected.wearMultiplier;
    this.vibration = this.vibrationAt(speedRatio) * (1 + p.vibrationNoiseFraction * this.gaussian());
    if (this.outputOn) this.hours += h / 3600;
    this.energy += (Math.max(0, this.power) * h) / 3600;

    this.protect();
  }

  /** Ramp toward target at the accel rate away from zero and the decel rate toward zero, through zero on reversal. */
  private ramp(speed: number, target: number, h: number): number {
    let remaining = h;
    while (remaining > 0 && speed !== target) {
      const reversing = speed !== 0 && Math.sign(target) !== Math.sign(speed);
      const slowing = reversing || (speed !== 0 && Math.abs(target) < Math.abs(speed));
      const goal = reversing ? 0 : target;
      const rate = slowing ? this.decel : this.accel;
      const needed = Math.abs(goal - speed) / rate;
      if (needed <= remaining) {
        speed = goal;
        remaining -= needed;
      } else {
        speed += Math.sign(goal - speed) * rate * remaining;
        remaining = 0;
      }
    }
    return speed;
  }

  /** Load torque at a shaft speed: base × slow sinusoid (+ noise), shaped by the load kind; never negative. */
  private loadTorqueNm(absSpeedRpm: number): number {
    const l = this.load;
    const variation = 1 + l.variationFraction * Math.sin((2 * Math.PI * this.time) / l.variationPeriodS + this.loadPhase);
    const shape = l.kind === 'quadratic' ? (absSpeedRpm / this.ratings.ratedSpeedRpm) ** 2 : absSpeedRpm > 0 ? 1 : 0;
    const noise = l.noiseFraction * this.gaussian();
    return Math.max(0, this.ratedTorqueNm * (l.baseFraction * variation * shape + (absSpeedRpm > 0 ? noise : 0)));
  }

  private vibrationAt(speedRatio: number): number {
    const p = this.physics;
    return (p.baseVibrationMmS + p.vibrationPerWearHourMmS * this.wear) * speedRatio;
  }

  /** Standard normal deviate (Box–Muller). */
  private gaussian(): number {
    const u = 1 - this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }

  /** The drive's own protection: trip on the first limit exceeded, output off, motor coasts. */
  private protect(): void {
    if (this.activeFault !== 'none') return;
    const r = this.ratings;
    const trip: DriveFaultName =
      this.current > r.overcurrentTripA ? 'overcurrent'
        : this.motorTemperature > r.motorTemperatureTripC ? 'motorOvertemperature'
          : this.heatsinkTemperature > r.heatsinkTemperatureTripC ? 'heatsinkOvertemperature'
            : this.dcBus > r.dcOvervoltageTripV ? 'dcOvervoltage'
              : 'none';
    if (trip === 'none') return;
    this.activeFault = trip;
    this.awaitingRunEdge = true;
    this.outputOn = false;
    this.current = 0;
    this.power = 0;
    this.frequency = 0;
  }
}
