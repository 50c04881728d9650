/**
 * The lib/drive parts behind the uns-vfd node: telemetry from the read plan, message requests,
 * node settings, the profile catalog, reverse on drives that reverse by the setpoint sign, and
 * execute without a ticket.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatAuditRecord } from '../../lib/drive/audit';
import { driveProfileFolders, findDriveProfile, profileCatalog } from '../../lib/drive/catalog';
import { DriveCommander, RegisterAccess } from '../../lib/drive/commander';
import { formatStatusValue } from '../../lib/drive/controller';
import { CommandGuard } from '../../lib/drive/guard';
import { driveNodeSettings } from '../../lib/drive/node-settings';
import { DriveProfile, loadDriveProfile, packagedProfilesDir } from '../../lib/drive/profile';
import { DriveRequestError, parseDriveRequest } from '../../lib/drive/requests';
import { addDerivedMetrics, derivedMetricNames, derivedNameClashes, DriveBatch, profileMetricDefinitions } from '../../lib/drive/telemetry';
import { applyReadFailure, applyReadResponse, buildReadPlan, newTagBatch } from '../../lib/modbus/read-plan';
import { SimulatedPlant } from '../../sim/plant';

const load = (id: string): DriveProfile => loadDriveProfile(join(packagedProfilesDir(), `${id}.json`));
const sim = load('simulated-drive');
const abb = load('abb-acs580');
const eaton = load('eaton-m-max');

/** One poll of `unit` of a plant through the read plan, as the poller and DriveController do it (no socket). */
function poll(plant: SimulatedPlant, unit: number, profile: DriveProfile = sim, fail?: string): DriveBatch {
  const plan = buildReadPlan(profileMetricDefinitions(profile), { mergeGap: 0, addedNames: derivedMetricNames(profile) });
  const batch = newTagBatch('acme/site/area/line/cell/drive', 1000, plan.layout);
  for (const read of plan.requests) {
    if (fail && read.table === 'input') {
      applyReadFailure(read, fail, 1001, batch);
      continue;
    }
    const words = plant.read(unit, read.table, read.address, read.quantity);
    const data = Buffer.alloc(2 * words.length);
    words.forEach((w, i) => data.writeUInt16BE(w, 2 * i));
    applyReadResponse(read, data, 1001, batch);
  }
  return batch;
}

describe('drive telemetry', () => {
  it('sets every metric of the batch layout (parameters and derived metrics), read or failed, for each shipped profile', () => {
    for (const profile of [sim, abb, eaton]) {
      for (const fail of [undefined, 'no response from unit 1 within 200 ms']) {
        const plan = buildReadPlan(profileMetricDefinitions(profile), { mergeGap: 0, addedNames: derivedMetricNames(profile) });
        const batch = newTagBatch('acme/site/area/line/cell/drive', 1000, plan.layout);
        for (const read of plan.requests) {
          if (fail && read.table === 'input') applyReadFailure(read, fail, 1001, batch);
          else applyReadResponse(read, Buffer.alloc(2 * read.quantity), 1001, batch); // every register 0
        }
        addDerivedMetrics(profile, batch);
        const names = Object.keys(batch.payload);
        const derived = derivedMetricNames(profile).filter((name) => !profile.parameters.some((p) => p.name === name));
        assert.deepEqual(Object.keys(batch.meta), names, `${profile.id}: meta and payload name the same metrics`);
        assert.deepEqual(names, [...names.slice(0, profile.parameters.length), ...derived], `${profile.id}: derived metrics last`);
        assert.equal(names.length, profile.parameters.length + derived.length);
        for (const name of names) assert.ok(batch.meta[name] !== null && typeof batch.meta[name] === 'object', `${profile.id} ${fail ? 'failed' : 'read'}: ${name} has meta`);
      }
    }
  });

  it('reads every parameter with the profile types, units and scaling, in as few requests as the map allows', () => {
    const defs = profileMetricDefinitions(sim);
    assert.equal(defs.length, sim.parameters.length);
    assert.deepEqual(defs.find((d) => d.name === 'energy'), { name: 'energy', table: 'input', address: 14, type: 'uint32', wordOrder: 'CDAB', scale: 0.1, unit: 'kWh' });
    assert.equal(buildReadPlan(defs, { mergeGap: 0 }).requests.length, 2, 'holding 0..3 and input 0..15');
  });

  it('adds signals, state, fault code and text; a fault shows its code and the profile text', () => {
    const plant = new SimulatedPlant({ drives: 1 });
    plant.step(5);
    const running = poll(plant, 1);
    const snapshot = addDerivedMetrics(sim, running);
    assert.deepEqual(
      [running.payload.running, running.payload.fault, running.payload.state, running.payload.faultCode, running.payload.faultText, running.payload.speedSetpoint],
      [true, false, 'RUNNING', 0, 'No fault', 1200],
    );
    assert.equal(snapshot.fault, null);
    assert.deepEqual(running.meta.running, { type: 'Boolean', quality: 'good', timestamp: 1001 });
    plant.injectFault(1, { kind: 'overcurrent' });
    plant.step(0.1);
    const tripped = poll(plant, 1);
    const faulted = addDerivedMetrics(sim, tripped);
    assert.deepEqual([tripped.payload.fault, tripped.payload.running, tripped.payload.state, tripped.payload.faultCode], [true, false, 'FAULT', 1]);
    assert.deepEqual(faulted.fault, { code: 1, name: 'overcurrent', text: sim.faults.codes[1].description });
  });

  it('a failed status read gives null signals with bad quality and the reason, never false', () => {
    const plant = new SimulatedPlant({ drives: 1 });
    const batch = poll(plant, 1, sim, 'no response from unit 1 within 200 ms');
    const snapshot = addDerivedMetrics(sim, batch);
    assert.equal(snapshot.signals, null);
    assert.deepEqual([batch.payload.running, batch.payload.state, batch.payload.faultCode, batch.payload.faultText], [null, null, null, null]);
    assert.deepEqual(batch.meta.running, { type: 'Boolean', quality: 'bad', timestamp: 1001, reason: 'no response from unit 1 within 200 ms' });
  });

  it('an unlisted code reads as such; code 0 of a table without it is no fault; profiles without a fault register give no fault metrics', () => {
    const batch = (status: number, code: number): DriveBatch => ({
      topic: 't', timestamp: 5, payload: { statusWord: status, currentError: code }, meta: { statusWord: { quality: 'good' }, currentError: { quality: 'good', type: 'UInt16' } },
    });
    const b0 = batch(0, 0);
    addDerivedMetrics(eaton, b0);
    assert.equal(b0.payload.faultText, '');
    const b77 = batch(1 << 3, 77);
    assert.deepEqual(addDerivedMetrics(eaton, b77).fault?.code, 77);
    assert.match(String(b77.payload.faultText), /fault code 77 \(0x4D\) is not in the eaton-m-max fault table \(the profile's fault table is incomplete/);
    const abbBatch: DriveBatch = { topic: 't', payload: { statusWord: 0x0337 }, meta: { statusWord: { quality: 'good' } } };
    addDerivedMetrics(abb, abbBatch);
    assert.ok(!('faultCode' in abbBatch.payload) && !('faultText' in abbBatch.payload));
    assert.equal(abbBatch.payload.remote, true, 'ABB has a remote bit');
    assert.ok(!('reverse' in abbBatch.payload), 'ABB has no reverse bit: left out');
  });

  it('refuses a profile whose parameter names clash with derived metrics (the fault register may be faultCode)', () => {
    assert.deepEqual(derivedNameClashes(sim), []);
    const clash = structuredClone(sim);
    clash.parameters[2].name = 'running';
    assert.deepEqual(derivedNameClashes(clash), ['running']);
  });

  it('formats status values: integers whole, others to four significant digits', () => {
    assert.deepEqual([formatStatusValue(1200), formatStatusValue(1199.6), formatStatusValue(12.3456), formatStatusValue(null)], ['1200', '1200', '12.35', '?']);
  });
});

describe('drive requests from messages', () => {
  it('maps command words to profile commands and setpoints, with arm from msg.arm or the arm command', () => {
    assert.deepEqual(parseDriveRequest(sim, { command: 'start' }), { kind: 'commands', commands: [{ kind: 'startForward' }], arm: false });
    assert.deepEqual(parseDriveRequest(sim, { command: 'reverse' }, true), { kind: 'commands', commands: [{ kind: 'startReverse' }], arm: true });
    assert.deepEqual(parseDriveRequest(sim, 'stop'), { kind: 'commands', commands: [{ kind: 'stop' }], arm: false });
    assert.deepEqual(parseDriveRequest(sim, { command: 'setpoint', value: '1250' }), { kind: 'commands', commands: [{ kind: 'setpoint', value: 1250 }], arm: false });
    assert.deepEqual(parseDriveRequest(sim, { command: 'arm', action: 'faultReset' }), { kind: 'commands', commands: [{ kind: 'faultReset' }], arm: true });
    assert.deepEqual(parseDriveRequest(sim, { command: 'execute', ticket: 'abc' }), { kind: 'execute', ticket: 'abc' });
    assert.deepEqual(parseDriveRequest(sim, { command: 'cancel' }), { kind: 'cancel' });
    assert.deepEqual(parseDriveRequest(abb, { command: 'reverse' }), { kind: 'commands', commands: [{ kind: 'startReverse' }], arm: false }, 'ABB reverses by the setpoint sign');
  });

  it('maps a tag batch write to setpoint and parameter writes', () => {
    assert.deepEqual(parseDriveRequest(sim, { speedSetpoint: 900, accelRate: 500 }), {
      kind: 'commands', commands: [{ kind: 'setpoint', value: 900 }, { kind: 'write', parameter: 'accelRate', value: 500 }], arm: false,
    });
  });

  it('refuses bad messages as a whole, with the reason', () => {
    const refuses = (payload: unknown, pattern: RegExp, arm = false) => assert.throws(() => parseDriveRequest(sim, payload, arm), (e: unknown) => e instanceof DriveRequestError && pattern.test(e.message));
    refuses({ command: 'jump' }, /unknown command "jump"; use one of start, /);
    refuses({ command: 'setpoint', value: 'fast' }, /setpoint needs a finite number or a plain decimal string such as "1200", got the string "fast"/);
    refuses({ command: 'setpoint' }, /setpoint needs a finite number or a plain decimal string such as "1200", got undefined/);
    refuses({ command: 'quickStop' }, /uns-edge-simulated-drive has no quickStop command/);
    refuses({ speedSetpoint: 900, actualSpeed: 1 }, /actualSpeed is read-only \(writable: speedSetpoint, accelRate, decelRate\)/);
    refuses({ controlWord: 1 }, /controlWord is written only through commands/);
    refuses({ torque: 1 }, /has no parameter "torque"/);
    refuses({}, /names no command and no parameter/);
    refuses([1], /must be an object .* got an array/);
    refuses({ command: 'arm' }, /arm needs an action/);
    refuses({ speedSetpoint: 900, accelRate: 500 }, /arm one write at a time/, true);
    const noReverse = structuredClone(eaton);
    noReverse.controlWord.direction = 'none';
    assert.throws(() => parseDriveRequest(noReverse, { command: 'reverse' }), /cannot be reversed over this interface/);
  });
});

describe('uns-vfd settings', () => {
  it('empty guard fields keep the profile values; filled ones override', () => {
    assert.deepEqual(driveNodeSettings({ unitId: '3', interval: '', topic: ' a/b/c ', setpointMin: '', arm: 'profile' }), {
      unitId: 3, profileId: 'uns-edge-simulated-drive', intervalMs: 1000, topic: 'a/b/c', guard: {},
    });
    assert.deepEqual(driveNodeSettings({ setpointMin: '-50', setpointMax: 80, maxRamp: '5', onViolation: 'clamp', arm: 'off', armTimeout: '3000', statusParameter: 'actualSpeed' }).guard, {
      setpointMin: -50, setpointMax: 80, maxRampPerSecond: 5, onViolation: 'clamp', armRequired: false, armTimeoutMs: 3000,
    });
  });

  it('lists every problem at once', () => {
    assert.throws(() => driveNodeSettings({ unitId: 300, interval: 'x', topic: 'a/+/c', setpointMax: 'lots', arm: 'maybe', armTimeout: 5 }), (e: Error) => {
      assert.equal(e.message, 'unit id must be an integer 0..255, got 300; poll interval must be an integer 0..86400000, got x; asset path level 2 "+" contains "+"; '
        + 'setpoint maximum must be a number or empty (the profile\'s value), got lots; arm must be profile, on or off, got maybe; arm timeout (ms) must be an integer 100..600000, got 5');
      return true;
    });
  });
});

describe('drive profile catalog (packaged + user folder)', () => {
  let userDir: string;
  beforeEach(() => { userDir = mkdtempSync(join(tmpdir(), 'uns-drive-catalog-')); });
  afterEach(() => rmSync(userDir, { recursive: true, force: true }));

  it('lists the packaged profiles, a user profile replacing one with the same id, and broken files with their problems', () => {
    const dir = join(userDir, 'uns-edge', 'profiles');
    mkdirSync(dir, { recursive: true });
    const own = structuredClone(JSON.parse(JSON.stringify(load('eaton-m-max'))));
    own.version = 99;
    writeFileSync(join(dir, 'eaton.json'), JSON.stringify(own));
    writeFileSync(join(dir, 'bad.json'), '{"id": "bad-drive", "version": 1}');
    const catalog = profileCatalog(driveProfileFolders(userDir));
    assert.equal(catalog.profiles.length, 5);
    const eatonEntry = catalog.profiles.find((p) => p.id === 'eaton-m-max');
    assert.deepEqual([eatonEntry?.origin, eatonEntry?.file, eatonEntry?.version], ['user', 'eaton.json', 99]);
    assert.deepEqual(catalog.errors.map((e) => [e.origin, e.file]), [['user', 'bad.json']]);
    assert.deepEqual([catalog.errors[0].claims, catalog.errors[0].problems[0]], ['bad-drive', 'schemaVersion: is required']);
    assert.equal(findDriveProfile('eaton-m-max', driveProfileFolders(userDir)).profile.version, 99);
    own.version = 100;
    writeFileSync(join(dir, 'eaton.json'), JSON.stringify(own));
    assert.equal(findDriveProfile('eaton-m-max', driveProfileFolders(userDir)).profile.version, 100, 'an edited file is read again');
    assert.equal(findDriveProfile('eaton-m-max', driveProfileFolders(undefined)).origin, 'package');
  });

  it('names the invalid file when the chosen profile does not validate', () => {
    const dir = join(userDir, 'uns-edge', 'profiles');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'my-drive.json'), '{"id": "my-drive"}');
    assert.throws(() => findDriveProfile('my-drive', driveProfileFolders(userDir)), /drive profile "my-drive" cannot be used until this file is fixed or removed .*: user profile my-drive\.json: schemaVersion: is required/);
  });
});

describe('drive guard and commander additions', () => {
  /** Holding registers 0..5 of an ACS580 (ABB Drives profile) in OPERATING, REF1 = 50 %. */
  function acs580(): RegisterAccess & { holding: number[] } {
    const holding = [0x047f, 10000, 0, 0x0337, 0, 0];
    return {
      holding,
      read: async (_table, address, count) => holding.slice(address, address + count),
      write: async (address, words) => { words.forEach((w, i) => { holding[address + i] = w; }); },
    };
  }

  it('refuses reverse on a drive that reverses by the setpoint sign while the guard is forward only; allows it with a negative minimum', async () => {
    const forwardOnly = new CommandGuard(abb, { armRequired: false });
    const decision = forwardOnly.check({ kind: 'startReverse' }, { setpoint: 50 });
    assert.equal(decision.ok, false);
    assert.match((decision as { reason: string }).reason, /reverse needs a negative setpoint, and the guard limits are 0\.\.100 % \(forward only/);
    const drive = acs580();
    const commander = new DriveCommander({ profile: abb, access: drive, drive: 'acs580', guard: forwardOnly });
    await assert.rejects(commander.run({ kind: 'startReverse' }, 'op'), /reverse needs a negative setpoint/);
    assert.equal(drive.holding[1], 10000, 'nothing written');
    const narrow = new CommandGuard(abb, { armRequired: false, setpointMin: -30 });
    assert.match((narrow.check({ kind: 'startReverse' }, { setpoint: 50 }) as { reason: string }).reason, /startReverse writes the setpoint -50 % .* outside the guard limits -30\.\.100 %/);
    assert.equal(new CommandGuard(abb, { setpointMin: -100 }).check({ kind: 'startReverse' }, { setpoint: 50 }).ok, true);
    assert.equal(forwardOnly.check({ kind: 'startReverse' }).ok, false, 'forward only even without a setpoint');
  });

  it('executes the armed command without a ticket, and audits an expired one with its ticket', async () => {
    const plant = new SimulatedPlant({ drives: 1, autoStart: false });
    const access: RegisterAccess = { read: async (t, a, c) => plant.read(1, t, a, c), write: async (a, w) => plant.write(1, 'holding', a, w) };
    let now = 1_000_000;
    const commander = new DriveCommander({ profile: sim, access, drive: 'd', guard: new CommandGuard(sim, { armRequired: true, armTimeoutMs: 1000 }, () => now) });
    const ticket = await commander.arm({ kind: 'startForward' }, 'op');
    await commander.execute(undefined, 'op');
    assert.equal(plant.drive(1).control.run, true);
    const second = await commander.arm({ kind: 'stop' }, 'op');
    now += 1001;
    await assert.rejects(commander.execute(undefined, 'op'), /the arm expired 1000 ms after it was armed by op/);
    const last = commander.audit.records.at(-1);
    assert.deepEqual([last?.outcome, last?.ticket], ['expired', second.id]);
    assert.notEqual(ticket.id, second.id);
    assert.equal(formatAuditRecord(commander.audit.records[1]), 'audit d: op startForward: written controlWord 0 → 1');
    assert.match(formatAuditRecord(last!), /^audit d: op stop: expired \[ticket .+\]: the arm expired/);
  });
});
