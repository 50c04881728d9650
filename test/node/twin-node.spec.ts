/**
 * uns-vfd-twin in a Node-RED runtime (node-red-node-test-helper): batches built by the real core
 * function node (another JS realm) in, a twin batch at <asset>/twin out; alerts as tag batches on
 * output 2; state kept across a redeploy in <userDir>/uns-edge/twin/<id>.json; reset by message and
 * by the admin endpoint; bad messages refused with done(err); absurd values logged once; a stale
 * input published as uncertain; an unreadable state file reported and marked in every output;
 * invalid settings; no timer left after close.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import twinNodes = require('../../nodes/twin/twin');
// The real core function node: what it builds comes from its vm sandbox, another JS realm.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;
import type { TwinAlert } from '../../lib/twin';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { describeWithLeakDetector } from '../helpers/leaks';
import { helper, runtimePerTest, until as waitUntil, type Call, type HelperNode } from '../helpers/node-red-runtime';

type AlertMsg = TagBatch & { alert: TwinAlert };

const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A drive batch as a function node builds it, from a few fields of msg.payload. */
const FUNC = `
const p = msg.payload;
msg.topic = '${ASSET}';
msg.payload = { motorCurrent: p.current ?? 12, actualSpeed: p.speed ?? 1460, motorTemperature: p.temp ?? 165, heatsinkTemperature: 65, vibration: p.vib ?? 2 };
msg.meta = { motorTemperature: { unit: 'degC', quality: 'good' } };
return msg;`;

describeWithLeakDetector('uns-vfd-twin node', function () {
  this.timeout(15_000);
  const userDir = runtimePerTest('uns-twin-');

  const twinNode = (props: object = {}) => ({
    id: 'twin', type: 'uns-vfd-twin', name: '', topic: '', timeScale: 3_600_000, publishInterval: 0, staleAfter: 60, machineGroup: 'group2', foundation: 'rigid',
    wires: [['out'], ['alerts']], ...props,
  });
  const flow = (props: object = {}) => [
    { id: 'fn', type: 'function', func: FUNC, outputs: 1, wires: [['twin']] },
    twinNode(props), { id: 'out', type: 'helper' }, { id: 'alerts', type: 'helper' },
  ];
  const node = (id: string) => helper.getNode(id) as HelperNode;
  const load = (props: object = {}) => helper.load([twinNodes, functionNode], flow(props));

  function collect<T>(id: string): T[] {
    const seen: T[] = [];
    node(id).on('input', (msg) => seen.push(msg as T));
    return seen;
  }
  function calls(id: string, event: string): string[] {
    const seen: string[] = [];
    node(id).on(`call:${event}`, (call) => {
      const arg = (call as Call).args[0];
      seen.push(arg instanceof Error ? arg.message : typeof arg === 'string' ? arg : JSON.stringify(arg));
    });
    return seen;
  }
  const until = (what: string, check: () => boolean, ms = 5000) => waitUntil(what, check, ms);
  /** Send drive telemetry through the function node and wait for the twin batch it causes. */
  async function feed(out: TagBatch[], payload: object = {}): Promise<TagBatch> {
    const count = out.length;
    node('fn').receive({ payload });
    await until('a twin batch', () => out.length > count);
    return out.at(-1)!;
  }

  it('turns drive batches from a function node into a twin batch at <asset>/twin with units and quality', async () => {
    await load();
    const out = collect<TagBatch>('out');
    await feed(out);
    await sleep(5);
    const b = await feed(out);
    assert.equal(b.topic, `${ASSET}/twin`);
    assert.ok((b.payload['insulation/lifeConsumed'] as number) > 0, JSON.stringify(b.payload));
    assert.equal(b.meta!['insulation/lifeConsumed'].unit, '%');
    assert.equal(b.meta!['bearing/rul'].unit, 'h');
    assert.equal(b.payload['vibration/zone'], 'B');
    assert.equal(b.meta!['insulation/agingFactor'].quality, 'good');
  });

  it('sends a threshold alert once on output 2 as a tag batch, with the reason', async () => {
    // 1 ms is one twin hour: class F at 165 °C uses 0.01 % per ms; alert at 0.5 %.
    await load({ alertConsumed: 0.5 });
    const out = collect<TagBatch>('out');
    const alerts = collect<AlertMsg>('alerts');
    await feed(out);
    await sleep(60);
    await feed(out);
    await until('an insulation alert', () => alerts.some((a) => a.alert.component === 'insulation'));
    const alert = alerts.find((a) => a.alert.component === 'insulation')!;
    assert.equal(alert.topic, `${ASSET}/twin`);
    assert.match(String(alert.payload['alert/insulation']), /^warning: insulation life consumed \d+\.\d % reached the alert threshold 0.5 %/);
    assert.equal(alert.meta!['alert/insulation'].type, 'String');
    await feed(out);
    assert.equal(alerts.filter((a) => a.alert.component === 'insulation' && a.alert.kind === 'threshold').length, 1, 'raised once');
  });

  it('keeps its state across a redeploy (file in userDir/uns-edge/twin) and resets a replaced part by message', async () => {
    await load();
    let out = collect<TagBatch>('out');
    await feed(out);
    await sleep(20);
    const before = (await feed(out)).payload['bearing/lifeConsumed'] as number;
    assert.ok(before > 0);
    await helper.unload();
    const file = join(userDir(), 'uns-edge', 'twin', 'twin.json');
    assert.ok(existsSync(file), 'state written on close');
    assert.ok(JSON.parse(readFileSync(file, 'utf8')).components.bearing.consumed * 100 >= before);

    await load();
    out = collect<TagBatch>('out');
    const alerts = collect<AlertMsg>('alerts');
    const after = (await feed(out)).payload['bearing/lifeConsumed'] as number;
    assert.ok(after >= before, `${after} continues from ${before}`);

    node('twin').receive({ reset: 'bearing', user: 'alice' });
    await until('the reset event', () => alerts.some((a) => a.alert.kind === 'reset'));
    const reset = alerts.find((a) => a.alert.kind === 'reset')!;
    assert.match(String(reset.payload['alert/bearing']), /^info: bearing replaced: life consumed bearing \d+\.\d+ % → 0 % \(reset by alice\)/);
    assert.equal(reset.alert.who, 'alice');
    assert.equal(reset.payload['alert/bearing'] !== undefined, true);

  });

  it('refuses a message that is not a tag batch with done(err); an absurd value is logged once and the twin holds', async () => {
    await load();
    const errors = calls('twin', 'error');
    const warnings = calls('twin', 'warn');
    const statuses: Array<{ shape?: string; text?: string }> = [];
    node('twin').on('call:status', (c) => statuses.push((c as Call).args[0] as { shape?: string }));
    node('twin').receive({ topic: ASSET, payload: 'hello' });
    await until('the error', () => errors.length > 0);
    assert.match(errors[0], /msg.payload must be a tag batch object of metrics, got a string/);
    const out = collect<TagBatch>('out');
    await feed(out);
    const held = await feed(out, { temp: 10_000 });
    await feed(out, { temp: 10_000 });
    assert.equal(warnings.filter((w) => w.includes('motorTemperature: 10000 degC is outside')).length, 1, warnings.join('\n'));
    assert.equal(held.meta!['insulation/lifeConsumed'].quality, 'uncertain');
    assert.match(held.meta!['insulation/lifeConsumed'].reason!, /motorTemperature: 10000 degC is outside -50 … 300 degC \(refused\)/);
    assert.equal(statuses.at(-1)!.shape, 'ring', 'held');
  });

  it('publishes the twin as uncertain when its input goes stale, without a new batch', async () => {
    await load({ staleAfter: 0.3 });
    const out = collect<TagBatch>('out');
    await feed(out);
    await until('an uncertain batch', () => out.some((b) => b.meta!['insulation/lifeConsumed'].quality === 'uncertain'), 5000);
    assert.match(out.at(-1)!.meta!['insulation/lifeConsumed'].reason!, /motorTemperature stale: no value for \d+ s \(held\)/);
  });

  it('an unreadable state file is reported and every count says it may be short', async () => {
    mkdirSync(join(userDir(), 'uns-edge', 'twin'), { recursive: true });
    writeFileSync(join(userDir(), 'uns-edge', 'twin', 'twin.json'), '{"version":1,');
    const flowNodes = flow();
    await helper.load([twinNodes, functionNode], flowNodes);
    const out = collect<TagBatch>('out');
    const b = await feed(out);
    assert.match(b.meta!['bearing/lifeConsumed'].reason!, /state file unreadable \(not JSON .*kept as .*twin\.json\.unreadable-/);
    assert.equal(b.meta!['bearing/lifeConsumed'].quality, 'uncertain');
  });

  it('a state folder it cannot write: one error, the twin keeps working and tries again', async () => {
    mkdirSync(join(userDir(), 'uns-edge'), { recursive: true });
    writeFileSync(join(userDir(), 'uns-edge', 'twin'), 'a file where the folder should be');
    await load({ alertConsumed: 0.5 });
    const logged = () => helper.log().args.map((a) => a[0] as { level: number; msg: unknown }).filter((e) => e.level === 20).map((e) => String(e.msg));
    const out = collect<TagBatch>('out');
    const alerts = collect<AlertMsg>('alerts');
    await feed(out);
    await sleep(60);
    await feed(out); // an alert: the state is saved at once, and fails
    node('twin').receive({ reset: 'fan' }); // saved at once again, fails again
    await until('the reset alert', () => alerts.some((a) => a.alert.kind === 'reset'));
    await until('the save error', () => logged().some((m) => m.startsWith('twin.errors.state-not-saved')));
    await sleep(20);
    assert.equal(logged().filter((m) => m.startsWith('twin.errors.state-not-saved')).length, 1, logged().join('\n'));
    assert.ok((await feed(out)).payload['insulation/lifeConsumed'] !== undefined, 'still working');
  });

  it('invalid settings: every problem in one error, and the node does nothing', async () => {
    await helper.load([twinNodes], [{ id: 'twin', type: 'uns-vfd-twin', bearingC: 'abc', timeScale: 0, wires: [[], []] }]);
    const logged = helper.log().args.map((a) => a[0] as { level: number; msg: unknown }).filter((e) => e.level === 20).map((e) => String(e.msg));
    const error = logged.find((m) => m.startsWith('twin.errors.invalid'));
    assert.ok(error, logged.join('\n'));
    assert.match(error, /bearing dynamic load rating C \(kN\) must be a number > 0 .* got "abc"; time scale must be a number ≥ 1/);
  });
});

// Outside the leak detector: an HTTP response arms Node's Date-header cache timer (node:internal/http,
// up to 1 s, unref'd), which is Node's, not the node's; the twin's own timers are checked above.
describe('uns-vfd-twin admin endpoint (the dialog\'s reset button)', function () {
  this.timeout(15_000);
  runtimePerTest('uns-twin-');

  it('resets a part of the deployed node; an unknown part is 400, an unknown node 404', async () => {
    await helper.load([twinNodes], [{ id: 'twin', type: 'uns-vfd-twin', wires: [[], ['alerts']] }, { id: 'alerts', type: 'helper' }]);
    const alerts: AlertMsg[] = [];
    (helper.getNode('alerts') as HelperNode).on('input', (msg) => alerts.push(msg as AlertMsg));
    const ok = await helper.request().post('/uns-edge/twin/twin/reset').send({ component: 'fan' });
    assert.equal(ok.status, 200);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].alert.kind, 'reset');
    assert.match(alerts[0].alert.reason, /fan replaced: .* \(reset by editor\)/);
    const unknown = await helper.request().post<{ error?: string }>('/uns-edge/twin/twin/reset').send({ component: 'gearbox' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error!, /reset "gearbox": not a component/);
    const missing = await helper.request().post('/uns-edge/twin/nope/reset').send({ component: 'fan' });
    assert.equal(missing.status, 404);
  });
});
