import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { AuditRecord, AuditTrail } from '../../lib/drive/audit';
import { DriveCommander, DriveCommandFailed, RegisterAccess } from '../../lib/drive/commander';
import { CommandGuard, GuardRejection } from '../../lib/drive/guard';
import { DriveProfile, loadDriveProfile, packagedProfilesDir, RegisterTable } from '../../lib/drive/profile';
import { SimulatedPlant } from '../../sim/plant';

const load = (id: string): DriveProfile => loadDriveProfile(join(packagedProfilesDir(), `${id}.json`));
const sim = load('simulated-drive');
const abb = load('abb-acs580');

/** Register access to one unit of the simulated plant (its Modbus data model, no socket). */
function plantAccess(plant: SimulatedPlant, unit: number): RegisterAccess {
  return {
    read: async (table, address, count) => plant.read(unit, table, address, count),
    write: async (address, words) => plant.write(unit, 'holding', address, words),
  };
}

/**
 * An ACS580 as the ABB Drives profile state diagram describes it, for the registers this profile
 * uses: 0x047E (CW = …x110) leads to READY TO SWITCH ON — here only after `readyAfterPolls` status
 * reads, so the commander has to poll — and 0x047F (bits 0…6 + 10) to OPERATING. With
 * `readyAfterPolls` Infinity it stays SWITCH-ON INHIBITED.
 */
class AbbDrivesProfileModel implements RegisterAccess {
  readonly holding = [0, 0, 0, 0x0070, 0, 0]; // SWITCH-ON INHIBITED after power-up
  writes: number[][] = [];
  private pollsUntilReady = Infinity;

  constructor(private readonly readyAfterPolls: number) {}

  async read(table: RegisterTable, address: number, count: number): Promise<number[]> {
    assert.equal(table, 'holding');
    if (address <= 3 && address + count > 3 && this.pollsUntilReady-- <= 0 && (this.holding[0] & 0x7) === 0x6) this.holding[3] = 0x0031;
    return this.holding.slice(address, address + count);
  }

  async write(address: number, words: number[]): Promise<void> {
    this.writes.push([address, ...words]);
    words.forEach((w, i) => { this.holding[address + i] = w; });
    if (address !== 0) return;
    const cw = words[0];
    if ((cw & 0x7) === 0x6 && this.holding[3] !== 0x0337) this.pollsUntilReady = this.readyAfterPolls;
    if (cw === 0x047f && this.holding[3] === 0x0031) this.holding[3] = 0x0337;
    if ((cw & 0x1) === 0 && this.holding[3] === 0x0337) this.holding[3] = 0x0031;
  }
}

const outcomes = (records: readonly AuditRecord[]): string[] => records.map((r) => `${r.outcome} ${r.command}${r.parameter ? ` ${r.parameter}` : ''}`);

describe('drive commander on the simulated plant', () => {
  it('starts a stopped drive and audits the write: who, what, old → new, when', async () => {
    const plant = new SimulatedPlant({ drives: 2, autoStart: false });
    const commander = new DriveCommander({ profile: sim, access: plantAccess(plant, 2), drive: 'site/line1/pump2' });
    const before = Date.now();
    const outcome = await commander.run({ kind: 'startForward' }, 'operator-7');
    plant.step(2);
    assert.equal(plant.drive(2).status().running, true);
    assert.equal(plant.drive(1).status().running, false, 'only unit 2');
    assert.equal(outcome.status, 'done');
    const [record] = commander.audit.records;
    assert.deepEqual(
      { who: record.who, drive: record.drive, command: record.command, outcome: record.outcome, parameter: record.parameter, address: record.address, old: record.old, new: record.new },
      { who: 'operator-7', drive: 'site/line1/pump2', command: 'startForward', outcome: 'written', parameter: 'controlWord', address: 0, old: { words: [0], value: 0 }, new: { words: [1], value: 1 } },
    );
    assert.ok(record.timestamp >= before && record.time === new Date(record.timestamp).toISOString());
    assert.equal((await commander.readStatus()).state, 'RUNNING');
  });

  it('writes a setpoint within the ramp limit, rejects a faster one and one outside the limits, and writes nothing then', async () => {
    const plant = new SimulatedPlant({ drives: 2 }); // unit 2 runs at 1440 rpm; sim guard: 0..1800 rpm, 300 rpm/s
    const commander = new DriveCommander({ profile: sim, access: plantAccess(plant, 2), drive: 'pump2' });
    await commander.run({ kind: 'setpoint', value: 1600 }, 'op');
    assert.equal(plant.drive(2).setpointRpm, 1600);
    await assert.rejects(commander.run({ kind: 'setpoint', value: 1800 }, 'op'), (e: unknown) => e instanceof GuardRejection && /changes the setpoint by 200 rpm from 1600 rpm; the ramp limit 300 rpm\/s allows/.test(e.reason));
    await assert.rejects(commander.run({ kind: 'setpoint', value: 2500 }, 'op'), /setpoint 2500 rpm is outside the guard limits 0\.\.1800 rpm/);
    assert.equal(plant.drive(2).setpointRpm, 1600);
    assert.deepEqual(outcomes(commander.audit.records), ['written setpoint 1600 speedSetpoint', 'rejected setpoint 1800', 'rejected setpoint 2500']);
    assert.deepEqual(commander.audit.records[0].old, { words: [1440], value: 1440 });
  });

  it('a setpoint takes three exchanges (status word and setpoint read together, the write): the setpoint read for the guard is the audit\'s old value', async () => {
    const plant = new SimulatedPlant({ drives: 2 }); // unit 2 runs at 1440 rpm
    const exchanges: string[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const access = plantAccess(plant, 2);
    const counted: RegisterAccess = {
      read: async (table, address, count) => {
        exchanges.push(`read ${table} ${address}+${count}`);
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
        return access.read(table, address, count);
      },
      write: async (address, words) => { exchanges.push(`write ${address}`); return access.write(address, words); },
    };
    const commander = new DriveCommander({ profile: sim, access: counted, drive: 'pump2' });
    await commander.run({ kind: 'setpoint', value: 1500 }, 'op');
    assert.deepEqual(exchanges, ['read input 0+1', 'read holding 1+1', 'write 1']);
    assert.equal(mostInFlight, 2, 'both reads submitted together');
    const [record] = commander.audit.records;
    assert.deepEqual({ old: record.old, new: record.new }, { old: { words: [1440], value: 1440 }, new: { words: [1500], value: 1500 } });
    assert.equal(plant.drive(2).setpointRpm, 1500);
  });

  it('with arm required: run is refused, submit arms, execute writes, a late execute expires — all audited', async () => {
    let now = 5_000_000;
    const plant = new SimulatedPlant({ drives: 1, autoStart: false });
    const guard = new CommandGuard(sim, { armRequired: true, armTimeoutMs: 1000 }, () => now);
    const commander = new DriveCommander({ profile: sim, access: plantAccess(plant, 1), drive: 'pump1', guard });
    await assert.rejects(commander.run({ kind: 'startForward' }, 'op'), /startForward rejected: this drive requires arm, then execute/);
    const armed = await commander.submit({ kind: 'startForward' }, 'op');
    assert.equal(armed.status, 'armed');
    const ticket = (armed as { ticket: { id: string } }).ticket.id;
    now += 999;
    await commander.execute(ticket, 'supervisor');
    assert.equal(plant.drive(1).control.run, true);
    const late = await commander.arm({ kind: 'stop' }, 'op');
    now += 1001;
    await assert.rejects(commander.execute(late.id, 'op'), /stop rejected: the arm expired 1000 ms after it was armed by op/);
    await assert.rejects(commander.execute('no-such-ticket', 'op'), /execute rejected: no command is armed/);
    assert.equal(plant.drive(1).control.run, true, 'the expired stop was not written');
    assert.deepEqual(outcomes(commander.audit.records), [
      'rejected startForward', 'armed startForward', 'written startForward controlWord', 'armed stop', 'expired stop', 'rejected execute',
    ]);
    assert.equal(commander.audit.records[2].who, 'supervisor');
    assert.equal(commander.audit.records[2].ticket, ticket);
  });

  it('a failed write is audited and reported with what was done before; the next command still runs', async () => {
    const plant = new SimulatedPlant({ drives: 1, autoStart: false });
    const access = plantAccess(plant, 1);
    let failWrites = true;
    const flaky: RegisterAccess = { read: access.read, write: async (a, w) => { if (failWrites) throw new Error('Modbus exception 6 (server device busy)'); return access.write(a, w); } };
    const commander = new DriveCommander({ profile: sim, access: flaky, drive: 'pump1' });
    await assert.rejects(commander.run({ kind: 'startForward' }, 'op'), (e: unknown) => e instanceof DriveCommandFailed
      && /startForward on pump1: write of controlWord \(holding 0\) failed: Modbus exception 6 \(server device busy\)/.test(e.message) && e.completed.length === 0);
    failWrites = false;
    await commander.run({ kind: 'startForward' }, 'op');
    assert.deepEqual(outcomes(commander.audit.records), ['failed startForward controlWord', 'written startForward controlWord']);
  });

  it('runs commands one at a time, in the order submitted', async () => {
    const plant = new SimulatedPlant({ drives: 1, autoStart: false });
    const commander = new DriveCommander({ profile: sim, access: plantAccess(plant, 1), drive: 'pump1', guard: new CommandGuard(sim, { maxRampPerSecond: null }) });
    await Promise.all([
      commander.run({ kind: 'setpoint', value: 600 }, 'a'),
      commander.run({ kind: 'startReverse' }, 'b'),
      commander.run({ kind: 'stop' }, 'c'),
    ]);
    assert.deepEqual(commander.audit.records.map((r) => r.who), ['a', 'b', 'c']);
    assert.deepEqual(commander.audit.records.map((r) => r.new?.value), [600, 3, 0]);
  });
});

describe('drive commander with a control-word sequence (ABB Drives profile)', () => {
  it('writes 0x047E, polls until READY TO SWITCH ON, then writes 0x047F', async () => {
    const drive = new AbbDrivesProfileModel(2);
    const commander = new DriveCommander({ profile: abb, access: drive, drive: 'acs580', guard: new CommandGuard(abb, { armRequired: false }), pollIntervalMs: 5 });
    await commander.run({ kind: 'startForward' }, 'op');
    assert.deepEqual(drive.writes, [[0, 0x047e], [0, 0x047f]]);
    assert.equal((await commander.readStatus()).state, 'OPERATING');
    assert.deepEqual(commander.audit.records.map((r) => [r.step, r.old?.words[0], r.new?.words[0]]), [[0, 0, 0x047e], [1, 0x047e, 0x047f]]);
  });

  it('reverses a running ACS580 by writing the negative reference, without an OFF1 glitch', async () => {
    const drive = new AbbDrivesProfileModel(0);
    drive.holding[1] = 10000; // REF1 = 50 %
    drive.holding[3] = 0x0337; // OPERATING
    const commander = new DriveCommander({ profile: abb, access: drive, drive: 'acs580', guard: new CommandGuard(abb, { armRequired: false, setpointMin: -100 }) });
    await commander.run({ kind: 'startReverse' }, 'op');
    assert.deepEqual(drive.writes, [[1, 0xd8f0], [0, 0x047f]]);
    assert.equal(commander.audit.records[0].new?.value, -50);
  });

  it('fails with the state it saw when the drive never gets ready, and audits it', async () => {
    const quick = structuredClone(abb);
    quick.controlWord.commands.startForward.steps[0].awaitStatus = { when: { readyToSwitchOn: true }, timeoutMs: 100 };
    const drive = new AbbDrivesProfileModel(Infinity);
    const commander = new DriveCommander({ profile: quick, access: drive, drive: 'acs580', guard: new CommandGuard(quick, { armRequired: false }), pollIntervalMs: 10 });
    const started = Date.now();
    await assert.rejects(commander.run({ kind: 'startForward' }, 'op'), (e: unknown) => e instanceof DriveCommandFailed
      && /after writing 0x047E the status word did not reach readyToSwitchOn=1 within 100 ms \(last 0x0070, SWITCH-ON INHIBITED\)/.test(e.message)
      && e.completed.length === 1);
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(drive.writes, [[0, 0x047e]], '0x047F is not written');
    assert.deepEqual(outcomes(commander.audit.records), ['written startForward controlWord', 'failed startForward statusWord']);
  });

  it('close() aborts a command that is waiting and refuses new ones', async () => {
    const drive = new AbbDrivesProfileModel(Infinity);
    const commander = new DriveCommander({ profile: abb, access: drive, drive: 'acs580', guard: new CommandGuard(abb, { armRequired: false }), pollIntervalMs: 20 });
    const waiting = commander.run({ kind: 'startForward' }, 'op');
    setTimeout(() => commander.close(), 30);
    const started = Date.now();
    await assert.rejects(waiting, /commander closed while a command was waiting/);
    assert.ok(Date.now() - started < 500, 'aborted, not timed out after 2 s');
    await assert.rejects(commander.run({ kind: 'stop' }, 'op'), /commander is closed/);
  });
});

describe('drive audit trail', () => {
  it('keeps a bounded ring, counts what it dropped, and survives a throwing sink', () => {
    const seen: string[] = [];
    const trail = new AuditTrail({ capacity: 2, sink: (r) => { seen.push(r.command); if (r.command === 'b') throw new Error('log full'); }, clock: () => 0 });
    for (const command of ['a', 'b', 'c']) trail.record({ who: 'op', drive: 'd', command, outcome: 'written' });
    assert.deepEqual(trail.records.map((r) => r.command), ['b', 'c']);
    assert.equal(trail.dropped, 1);
    assert.deepEqual(seen, ['a', 'b', 'c']);
    assert.equal(trail.sinkErrors, 1);
    assert.equal(trail.lastSinkError?.message, 'log full');
    assert.equal(trail.records[0].time, '1970-01-01T00:00:00.000Z');
    assert.throws(() => new AuditTrail({ capacity: 0 }), /positive integer/);
  });
});
