/**
 * uns-vfd in a Node-RED runtime (node-red-node-test-helper) on a uns-modbus-link, against the
 * simulated plant (sim/, real Modbus TCP on a free port): telemetry batches, commands and their
 * guards (limits, ramp, arm/execute and expiry) checked by reading the registers back, faults and
 * fault reset, one dead unit beside a live one on the same link, the admin endpoint of the
 * profile list, and no timer or socket left after close.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
// The real core function node: what it builds comes from its vm sandbox, another JS realm.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;
import type { AuditRecord } from '../../lib/drive/audit';
import { packagedProfilesDir } from '../../lib/drive/profile';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { describeWithLeakDetector } from '../helpers/leaks';
import { helper, runtimePerTest, until as waitUntil, type Call, type HelperNode, type Status } from '../helpers/node-red-runtime';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const NODES = [modbusNodes, driveNodes];

describeWithLeakDetector('uns-vfd on the simulated plant', function () {
  this.timeout(15_000);
  let plant: SimulatedPlantHandle;
  const userDir = runtimePerTest('uns-vfd-');

  const vfd = (id: string, props: object = {}) => ({
    id, type: 'uns-vfd', link: 'link', unitId: 1, profile: 'uns-edge-simulated-drive', interval: 100, topic: ASSET,
    statusParameter: 'actualSpeed', wires: [[`${id}-out`], [`${id}-audit`]], ...props,
  });
  const flow = (...drives: Array<{ id: string }>) => [
    { id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port: plant.port, timeout: 200, reconnect: 50 },
    ...drives.flatMap((d) => [d, { id: `${d.id}-out`, type: 'helper' }, { id: `${d.id}-audit`, type: 'helper' }]),
  ];
  const node = (id: string) => helper.getNode(id) as unknown as HelperNode;

  /** Resolve with the first message at `at` that satisfies `pred`. */
  function next<T>(at: string, pred: (m: T) => boolean = () => true, ms = 4000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message at ${at} within ${ms} ms`)), ms);
      node(at).on('input', (msg) => {
        if (!pred(msg as T)) return;
        clearTimeout(timer);
        resolve(msg as T);
      });
    });
  }
  const batch = (pred: (b: TagBatch) => boolean = () => true, id = 'vfd') => next<TagBatch>(`${id}-out`, pred);
  const audit = (pred: (r: AuditRecord) => boolean, id = 'vfd') => next<{ topic: string; payload: AuditRecord }>(`${id}-audit`, (m) => pred(m.payload)).then((m) => m);
  /** Every status the node shows from now on. */
  function statuses(id = 'vfd'): Status[] {
    const seen: Status[] = [];
    node(id).on('call:status', (call) => seen.push((call as Call).args[0] as Status));
    return seen;
  }
  /** Every error the node reports from now on (done(err) lands here too). */
  function errors(id = 'vfd'): string[] {
    const seen: string[] = [];
    node(id).on('call:error', (call) => seen.push(String((call as Call).args[0])));
    return seen;
  }
  const until = (what: string, check: () => boolean, ms = 4000) => waitUntil(what, check, ms, 20);
  /** A holding register of a unit, read from the plant's Modbus data model. */
  const holding = (unit: number, address: number) => plant.plant.read(unit, 'holding', address, 1)[0];

  afterEach(async () => {
    await plant?.close();
  });

  it('sends one tag batch per poll: every profile parameter, decoded status, state, fault code and text, with units, types and quality', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 2 }); // unit 1 runs at 1200 rpm
    await helper.load(NODES, flow(vfd('vfd')));
    const b = await batch((m) => m.payload.running === true);
    assert.equal(b.topic, ASSET);
    const profile = plant.profile;
    for (const p of profile.parameters) assert.ok(p.name in b.payload, `parameter ${p.name} in the batch`);
    assert.deepEqual(
      { ready: b.payload.ready, running: b.payload.running, fault: b.payload.fault, reverse: b.payload.reverse, state: b.payload.state, faultCode: b.payload.faultCode, faultText: b.payload.faultText },
      { ready: true, running: true, fault: false, reverse: false, state: 'RUNNING', faultCode: 0, faultText: 'No fault' },
    );
    assert.equal(typeof b.payload.warning, 'boolean');
    assert.equal(typeof b.payload.atSetpoint, 'boolean');
    assert.ok(!('remote' in b.payload), 'a signal the profile has no bit for is left out, not false');
    assert.equal(b.payload.speedSetpoint, 1200);
    assert.ok(Number(b.payload.motorCurrent) > 0, 'motor current of a running drive');
    const meta = b.meta ?? {};
    assert.deepEqual([meta.actualSpeed.unit, meta.motorCurrent.unit, meta.outputFrequency.unit, meta.energy.unit], ['rpm', 'A', 'Hz', 'kWh']);
    assert.deepEqual([meta.actualSpeed.type, meta.motorCurrent.type, meta.outputFrequency.type, meta.running.type, meta.state.type, meta.faultText.type], ['Int16', 'Float', 'Double', 'Boolean', 'String', 'String']);
    assert.ok(Object.values(meta).every((m) => m.quality === 'good' && typeof m.timestamp === 'number'), JSON.stringify(meta));
  });

  it('starts a stopped drive: audited with who, old → new; telemetry and status turn to running', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1, autoStart: false });
    await helper.load(NODES, flow(vfd('vfd')));
    const seen = statuses();
    await batch((m) => m.payload.state === 'READY');
    await until('grey stopped', () => seen.some((s) => s.fill === 'grey' && s.text === 'drive.status.stopped'));
    const written = audit((r) => r.outcome === 'written');
    node('vfd').receive({ payload: { command: 'start' }, user: 'operator-7' });
    const record = await written;
    assert.equal(record.topic, ASSET);
    assert.deepEqual(
      { who: record.payload.who, command: record.payload.command, parameter: record.payload.parameter, old: record.payload.old?.value, new: record.payload.new?.value },
      { who: 'operator-7', command: 'startForward', parameter: 'controlWord', old: 0, new: 1 },
    );
    assert.equal(holding(1, 0), 1, 'control word run bit written');
    await batch((m) => m.payload.running === true && Number(m.payload.actualSpeed) > 0);
    await until('green running', () => seen.some((s) => s.fill === 'green' && s.shape === 'dot' && s.text === 'drive.status.running'));
    const logged = (helper.getNode('vfd') as { log: { getCalls(): Call[] } }).log.getCalls().map((c) => String(c.args[0]));
    assert.ok(logged.some((l) => l.includes('operator-7 startForward: written controlWord 0 → 1')), logged.join('\n'));
  });

  it('writes a setpoint within the guard (tag batch form, as from uns-in or a DCMD) and the drive ramps to it', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    plant.plant.step(6); // up to its 1200 rpm (300 rpm/s) without waiting
    await helper.load(NODES, flow(vfd('vfd')));
    await batch((m) => m.payload.atSetpoint === true);
    const written = audit((r) => r.outcome === 'written');
    node('vfd').receive({ payload: { speedSetpoint: 1450 }, _msgid: 'dcmd-1' });
    const record = (await written).payload;
    assert.deepEqual([record.who, record.command, record.old?.value, record.new?.value], ['msg dcmd-1', 'setpoint 1450', 1200, 1450]);
    assert.equal(holding(1, 1), 1450, 'read back');
    const ramped = await batch((m) => Number(m.payload.actualSpeed) > 1400);
    assert.equal(ramped.payload.speedSetpoint, 1450);
  });

  it('rejects an out-of-range setpoint and one faster than the ramp limit, with the reason; nothing is written', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    await helper.load(NODES, flow(vfd('vfd', { setpointMax: 1500 })));
    const failed = errors();
    await batch();
    node('vfd').receive({ payload: { command: 'setpoint', value: 1600 } });
    await until('the limit error', () => failed.length === 1);
    assert.match(failed[0], /setpoint 1600 rpm is outside the guard limits 0\.\.1500 rpm/);
    assert.equal(holding(1, 1), 1200, 'register unchanged');

    const written = audit((r) => r.outcome === 'written');
    node('vfd').receive({ payload: { command: 'setpoint', value: 1350 } });
    await written;
    assert.equal(holding(1, 1), 1350);
    node('vfd').receive({ payload: { command: 'setpoint', value: 1500 } });
    await until('the ramp error', () => failed.length === 2);
    assert.match(failed[1], /changes the setpoint by 150 rpm from 1350 rpm; the ramp limit 300 rpm\/s allows/);
    assert.equal(holding(1, 1), 1350, 'register unchanged after the ramp rejection');

    node('vfd').receive({ payload: { speedSetpoint: 1400, actualSpeed: 3 } });
    await until('the read-only error', () => failed.length === 3);
    assert.match(failed[2], /actualSpeed is read-only/);
    node('vfd').receive({ payload: { accelRate: 600, decelRate: 0 } });
    await until('the parameter limit error', () => failed.length === 4);
    assert.match(failed[3], /decelRate 0 rpm\/s is outside 1\.\.10000 rpm\/s \(nothing of this message was written\)/);
    assert.equal(holding(1, 2), 300, 'a message with one bad value writes none of its values (accelRate unchanged)');
    node('vfd').receive({ payload: { command: 'jump' } });
    await until('the unknown command error', () => failed.length === 5);
    assert.match(failed[4], /unknown command "jump"/);
  });

  it('audits every refusal with who sent it, also those of the parser (hex string, NaN, __proto__, unknown command, a retained message); writes with msg.principal from a function node', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 }); // runs at 1200 rpm
    const func = `
      msg.principal = { via: 'mqtt', id: 'mqtt:hmi-7 (user alice)', clientId: 'hmi-7', user: 'alice' };
      if (msg.topic === 'nan') msg.payload = { speedSetpoint: NaN };
      if (msg.topic === 'proto') msg.payload = JSON.parse('{"__proto__": 1500}');
      if (msg.topic === 'retained') msg.retain = true;
      return msg;`;
    await helper.load([...NODES, functionNode], [...flow(vfd('vfd')), { id: 'fn', type: 'function', func, outputs: 1, wires: [['vfd']] }]);
    const failed = errors();
    await batch((m) => m.payload.running === true);
    const WHO = 'mqtt:hmi-7 (user alice)';
    const rejected = async (send: object, command: string, reason: RegExp) => {
      const record = audit((r) => r.outcome === 'rejected' && r.command === command);
      const before = failed.length;
      node('fn').receive(send);
      const { payload } = await record;
      assert.equal(payload.who, WHO);
      assert.match(payload.reason ?? '', reason);
      await until('the node error', () => failed.length === before + 1);
      assert.match(failed.at(-1) ?? '', /drive\.errors\.bad-request: /);
    };

    // "0x3E8" is 1000 to Number(), inside the guard (0..1800, ramp 300 rpm/s from 1200): refused, not written.
    await rejected({ payload: { command: 'setpoint', value: '0x3E8' } }, 'setpoint "0x3E8"', /got the string "0x3E8"/);
    await rejected({ payload: { speedSetpoint: '0x3E8' } }, 'write "speedSetpoint"', /speedSetpoint needs a finite number .* got the string "0x3E8"/);
    await rejected({ topic: 'nan', payload: {} }, 'write "speedSetpoint"', /got NaN$/);
    await rejected({ topic: 'proto', payload: {} }, 'write "__proto__"', /has no parameter "__proto__"/);
    await rejected({ payload: { command: 'jump\nforged' } }, '"jump\\nforged"', /^unknown command "jump\\nforged"/);
    // What uns-in delivers from the broker's retained store is replayed state, never a command (T-RPL-02).
    await rejected({ topic: 'retained', payload: { speedSetpoint: 1300 } }, 'write "speedSetpoint"', /retained MQTT message is state, not a command/);
    assert.equal(holding(1, 1), 1200, 'nothing written');
    const logged = (helper.getNode('vfd') as { log: { getCalls(): Call[] } }).log.getCalls().map((c) => String(c.args[0]));
    assert.ok(logged.includes(`audit ${ASSET}: ${WHO} "jump\\nforged": rejected: unknown command "jump\\nforged"; use one of ${'start'}, startForward, forward, reverse, startReverse, stop, coastStop, quickStop, faultReset, reset, setpoint, arm, execute, cancel`), logged.join('\n'));

    const written = audit((r) => r.outcome === 'written');
    node('fn').receive({ payload: { speedSetpoint: '1300' } });
    const record = (await written).payload;
    assert.deepEqual([record.who, record.command, record.new?.value], [WHO, 'setpoint 1300', 1300]);
    assert.equal(holding(1, 1), 1300);
  });

  it('with arm/execute on: refuses an unarmed command, executes an armed one, refuses an expired arm; shows armed in yellow', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1, autoStart: false });
    await helper.load(NODES, flow(vfd('vfd', { arm: 'on', armTimeout: 300 })));
    const failed = errors();
    const seen = statuses();
    await batch((m) => m.payload.state === 'READY');

    node('vfd').receive({ payload: { command: 'start' } });
    await until('not armed error', () => failed.length === 1);
    assert.match(failed[0], /this drive requires arm, then execute/);
    assert.equal(holding(1, 0), 0, 'nothing written');

    const armed = audit((r) => r.outcome === 'armed');
    node('vfd').receive({ payload: { command: 'start' }, arm: true, user: 'op' });
    const ticket = (await armed).payload.ticket;
    assert.ok(ticket);
    await until('yellow armed', () => seen.some((s) => s.fill === 'yellow' && s.shape === 'dot' && s.text === 'drive.status.armed'));
    assert.equal(holding(1, 0), 0, 'arming writes nothing');
    const written = audit((r) => r.outcome === 'written');
    node('vfd').receive({ payload: { command: 'execute', ticket }, user: 'op' });
    assert.equal((await written).payload.ticket, ticket);
    assert.equal(holding(1, 0), 1, 'executed');

    const armedStop = audit((r) => r.outcome === 'armed');
    node('vfd').receive({ payload: { command: 'arm', action: 'stop' } });
    await armedStop;
    await sleep(400);
    const expired = audit((r) => r.outcome === 'expired');
    node('vfd').receive({ payload: { command: 'execute' } });
    assert.match((await expired).payload.reason ?? '', /the arm expired 300 ms after it was armed/);
    await until('expired error', () => failed.length === 2);
    assert.match(failed[1], /arm expired/);
    assert.equal(holding(1, 0), 1, 'the expired stop wrote nothing');
  });

  it('shows a fault in red with its text; faultReset clears it once the cause is gone', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    await helper.load(NODES, flow(vfd('vfd')));
    const seen = statuses();
    await batch((m) => m.payload.running === true);
    plant.injectFault(1, 'overcurrent');
    const tripped = await batch((m) => m.payload.fault === true);
    assert.equal(tripped.payload.faultCode, 1);
    assert.match(String(tripped.payload.faultText), /^Output current above ratings\.overcurrentTripA/);
    assert.equal(tripped.payload.state, 'FAULT');
    await until('red fault', () => seen.some((s) => s.fill === 'red' && s.shape === 'dot' && s.text === 'drive.status.fault'));

    plant.drives[0].clearInjection('overcurrent'); // the cause is gone; the trip stays latched
    await sleep(300);
    assert.equal((await batch()).payload.fault, true, 'latched until reset');
    node('vfd').receive({ payload: { command: 'faultReset' } });
    const reset = await batch((m) => m.payload.fault === false);
    assert.deepEqual([reset.payload.faultCode, reset.payload.faultText, reset.payload.state], [0, 'No fault', 'READY']);
    await until('grey stopped', () => seen.at(-1)?.fill === 'grey');
  });

  it('a unit that stops answering turns only its own node red; the other drive on the link keeps polling, and it recovers', async function () {
    this.timeout(20_000);
    plant = await startSimulatedPlant({ port: 0, drives: 2 });
    await helper.load(NODES, flow(vfd('vfd'), vfd('vfd2', { unitId: 2, topic: `${ASSET}-2` })));
    const seen2 = statuses('vfd2');
    const seen1 = statuses('vfd');
    await batch(() => true, 'vfd2');
    plant.injectFault(2, 'commsLoss');
    const bad = await batch((m) => m.meta?.actualSpeed.quality === 'bad', 'vfd2');
    assert.equal(bad.payload.running, null, 'unknown, not false');
    assert.match(bad.meta?.running.reason ?? '', /no response from unit 2|unit 2 is suspended/);
    await until('red ring on vfd2', () => seen2.some((s) => s.fill === 'red' && s.shape === 'ring' && s.text === 'drive.status.comms'));

    let good = 0;
    node('vfd-out').on('input', (m) => { if ((m as TagBatch).meta?.actualSpeed.quality === 'good') good++; });
    await sleep(1500);
    assert.ok(good >= 10, `unit 1 kept polling at its 100 ms period: ${good} good batches in 1.5 s`);
    assert.ok(!seen1.some((s) => s.fill === 'red'), JSON.stringify(seen1));

    plant.clearFault(2, 'commsLoss');
    await batch((m) => m.meta?.actualSpeed.quality === 'good', 'vfd2').catch(async () => batch((m) => m.meta?.actualSpeed.quality === 'good', 'vfd2'));
    await until('vfd2 green again', () => seen2.at(-1)?.fill === 'green');
  });

  it('closing while a command is armed leaves no timer or socket (leak detector) and the link closes', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    await helper.load(NODES, flow(vfd('vfd', { arm: 'on' })));
    await batch();
    const armed = audit((r) => r.outcome === 'armed');
    node('vfd').receive({ payload: { command: 'stop' }, arm: true });
    await armed;
    await helper.unload();
    await sleep(50);
    assert.equal(plant.drives[0].control.run, true, 'the armed stop was never executed');
  });

  it('refuses a configuration outside the profile limits or with an unknown profile, and does not use the link', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    await helper.load(NODES, flow(vfd('vfd', { setpointMax: 5000 }), vfd('vfd2', { profile: 'no-such-drive' })));
    await sleep(100);
    /** The spies sit on the Node prototype: keep the calls made by this node. */
    const calls = (id: string, method: 'error' | 'status') => {
      const n = helper.getNode(id) as Record<typeof method, { getCalls(): Array<Call & { thisValue: unknown }> }>;
      return n[method].getCalls().filter((c) => c.thisValue === n).map((c) => c.args[0]);
    };
    assert.match(String(calls('vfd', 'error')[0]), /^drive\.errors\.invalid: .*guard setpoint range 0\.\.5000 must lie within what the drive accepts, 0\.\.1800/);
    assert.match(String(calls('vfd2', 'error')[0]), /^drive\.errors\.invalid: no drive profile with id "no-such-drive" in .* \(available: .*abb-acs580/);
    assert.deepEqual(calls('vfd', 'status').at(-1), { fill: 'red', shape: 'ring', text: 'drive.status.invalid' });
    assert.deepEqual(calls('vfd2', 'status').at(-1), { fill: 'red', shape: 'ring', text: 'drive.status.invalid' });
    const link = helper.getNode('link') as { client: unknown };
    assert.equal(link.client, undefined, 'no connection for invalid nodes');
  });

  it('refuses to start when a site override of its profile does not validate: red status with the file and JSON path, one error line, no write (never the shipped 0..1800 rpm profile)', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 }); // runs at 1200 rpm
    const dir = join(userDir(), 'uns-edge', 'profiles');
    mkdirSync(dir, { recursive: true });
    const shipped = readFileSync(join(packagedProfilesDir(), 'simulated-drive.json'), 'utf8');
    const site = JSON.parse(shipped);
    site.guards.setpointMax = 1000;
    site.guards.armRequired = true;
    site.guards.armTimeoutMs = '10 s'; // the one schema error
    writeFileSync(join(dir, 'site-sim.json'), JSON.stringify(site));
    // A valid profile of another id, to watch the setpoint register over Modbus from the same link.
    const watcher = JSON.parse(shipped);
    watcher.id = 'plant-watch';
    writeFileSync(join(dir, 'plant-watch.json'), JSON.stringify(watcher));
    await helper.load(NODES, flow(vfd('vfd'), vfd('watch', { profile: 'plant-watch', topic: `${ASSET}-watch` })));

    const calls = (method: 'error' | 'status') => {
      const n = helper.getNode('vfd') as Record<typeof method, { getCalls(): Array<Call & { thisValue: unknown }> }>;
      return n[method].getCalls().filter((c) => c.thisValue === n).map((c) => c.args[0]);
    };
    const status = calls('status').at(-1) as Status;
    assert.deepEqual([status.fill, status.shape], ['red', 'ring']);
    assert.equal(status.text, 'drive.status.profile-blocked: site-sim.json: guards.armTimeoutMs: must be an integer');
    const logged = calls('error').map(String);
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(logged[0], /^drive\.errors\.invalid: drive profile "uns-edge-simulated-drive" cannot be used until this file is fixed or removed \(no fall back to another profile with this id\): user profile site-sim\.json: guards\.armTimeoutMs: must be an integer$/);

    // The link is up (the watcher reads); a 1500 rpm setpoint, allowed by the shipped profile, writes nothing.
    let watched = 0;
    node('watch-out').on('input', () => { watched++; });
    await batch(() => true, 'watch');
    const audited: unknown[] = [];
    node('vfd-audit').on('input', (m) => audited.push(m));
    node('vfd').receive({ payload: { command: 'setpoint', value: 1500 }, user: 'operator-7' });
    node('vfd').receive({ payload: { speedSetpoint: 1500 } });
    const after = watched;
    await until('three more polls of the register', () => watched >= after + 3);
    const last = await batch(() => true, 'watch');
    assert.equal(last.payload.speedSetpoint, 1200, 'read over Modbus: the setpoint is unchanged');
    assert.equal(holding(1, 1), 1200, 'the register is unchanged');
    assert.deepEqual(audited, [], 'no command was carried out');
    assert.equal(calls('status').length, 1, 'the red status stays');

    // The editor's list shows the shipped profile as blocked and the override as broken; no preview is served.
    const list = (await helper.request().get('/uns-edge/drive-profiles')).body as { profiles: Array<{ id: string; blockedBy: string[] }>; errors: Array<{ file: string; claims: string | null; problems: string[] }> };
    assert.deepEqual(list.profiles.find((p) => p.id === 'uns-edge-simulated-drive')?.blockedBy, ['site-sim.json']);
    assert.deepEqual(list.errors, [{ origin: 'user', file: 'site-sim.json', claims: 'uns-edge-simulated-drive', problems: ['guards.armTimeoutMs: must be an integer'] }]);
    const one = await helper.request().get('/uns-edge/drive-profiles/uns-edge-simulated-drive');
    assert.equal(one.status, 404);
    assert.match((one.body as { error: string }).error, /cannot be used until this file is fixed or removed/);
    await sleep(1100); // Node's HTTP Date header cache timer (see the test below)
  });

  it('lists packaged and user profiles at GET /uns-edge/drive-profiles, reports a broken file, serves a profile for the preview', async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    const dir = join(userDir(), 'uns-edge', 'profiles');
    mkdirSync(dir, { recursive: true });
    const own = JSON.parse(readFileSync(join(packagedProfilesDir(), 'simulated-drive.json'), 'utf8'));
    own.id = 'plant-pump';
    own.identity.family = 'Our pump drive';
    own.guards.setpointMax = 1000;
    writeFileSync(join(dir, 'plant-pump.json'), JSON.stringify(own));
    copyFileSync(join(packagedProfilesDir(), 'abb-acs580.json'), join(dir, 'abb-copy.json'));
    writeFileSync(join(dir, 'broken.json'), '{"schemaVersion": 1, "id": "broken"}');
    await helper.load(NODES, flow(vfd('vfd', { profile: 'plant-pump' })));

    const list = await helper.request().get('/uns-edge/drive-profiles');
    assert.equal(list.status, 200);
    const body = list.body as { profiles: Array<{ id: string; origin: string; file: string; vendor: string }>; errors: Array<{ file: string; problems: string[] }> };
    const ids = body.profiles.map((p) => `${p.id}:${p.origin}`).sort();
    assert.deepEqual(ids, ['abb-acs580:user', 'danfoss-vlt-fc:package', 'eaton-m-max:package', 'plant-pump:user', 'siemens-sinamics-g120:package', 'uns-edge-simulated-drive:package']);
    assert.equal(body.errors.length, 1);
    assert.equal(body.errors[0].file, 'broken.json');
    assert.ok(body.errors[0].problems.some((p) => p === 'version: is required'), JSON.stringify(body.errors));
    assert.ok(!JSON.stringify(body).includes(userDir()), 'no server paths in the answer');

    const one = await helper.request().get('/uns-edge/drive-profiles/abb-acs580');
    assert.equal(one.status, 200);
    const served = one.body as { origin: string; profile: { parameters: unknown[]; sources: unknown[]; unknowns: unknown[] } };
    assert.equal(served.origin, 'user');
    assert.ok(served.profile.parameters.length > 0 && served.profile.sources.length > 0 && served.profile.unknowns.length > 0);
    const missing = await helper.request().get('/uns-edge/drive-profiles/nothing');
    assert.equal(missing.status, 404);
    assert.match((missing.body as { error: string }).error, /no drive profile with id "nothing"/);

    // The node runs on the user's profile, with its guard.
    const failed = errors();
    await batch();
    node('vfd').receive({ payload: { command: 'setpoint', value: 1100 } });
    await until('limit from the user profile', () => failed.length === 1);
    assert.match(failed[0], /outside the guard limits 0\.\.1000 rpm/);
    // Node's HTTP server caches its Date header for 1 s with an unref'd timer (node:internal/http
    // utcDate); let it lapse so the leak detector sees only our resources.
    await sleep(1100);
  });
});
