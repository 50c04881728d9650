/**
 * Report by exception at the source (lib/modbus/report-by-exception.ts): what uns-modbus-read and
 * uns-vfd send of each polled batch when the user picks "only changed values". Tag batches carry no
 * arrays (MetricValue: number | bigint | boolean | string | null), so none are tested here.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchReportByException, sendSettingsFrom } from '../../lib/modbus/report-by-exception';
import type { MetricDataType, MetricMeta, MetricValue, Quality } from '../../lib/uns/tag-batch';

type Metric = [value: MetricValue, type: MetricDataType, quality?: Quality, reason?: string];

function batch(metrics: Record<string, Metric>, timestamp = 1000) {
  const payload: Record<string, MetricValue> = {};
  const meta: Record<string, MetricMeta> = {};
  for (const [name, [value, type, quality = 'good', reason]] of Object.entries(metrics)) {
    payload[name] = value;
    meta[name] = { timestamp, quality, type, ...(reason ? { reason } : {}) };
  }
  return { topic: 'acme/plant1/line1/drive1', payload, meta, timestamp };
}

const sent = (b: ReturnType<typeof batch> | undefined) => (b === undefined ? undefined : b.payload);

describe('report by exception at the source (lib/modbus/report-by-exception.ts)', function () {
  it('sends the first batch whole, nothing when nothing changed, and only the changed metrics', function () {
    const rbe = new BatchReportByException({ deadbands: {}, refreshMs: 0 });
    const first = batch({ speed: [1500, 'Float'], current: [12.5, 'Float'], running: [true, 'Boolean'], state: ['run', 'String'] });
    assert.equal(rbe.filter(first, 0), first);
    assert.equal(rbe.filter(batch({ speed: [1500, 'Float'], current: [12.5, 'Float'], running: [true, 'Boolean'], state: ['run', 'String'] }), 100), undefined);
    const third = batch({ speed: [1500, 'Float'], current: [12.6, 'Float'], running: [true, 'Boolean'], state: ['ramp', 'String'] }, 2000);
    const out = rbe.filter(third, 200);
    assert.deepEqual(out, { topic: third.topic, timestamp: 2000, payload: { current: 12.6, state: 'ramp' }, meta: { current: third.meta.current, state: third.meta.state } });
    assert.deepEqual(third.payload.speed, 1500, 'the polled batch itself is left as it is');
  });

  it('a quality change (good → bad, bad → good) and a new reason are changes; the same failure is not', function () {
    const rbe = new BatchReportByException({ deadbands: {}, refreshMs: 0 });
    rbe.filter(batch({ speed: [1500, 'Float'], fault: [0, 'UInt16'] }), 0);
    assert.deepEqual(sent(rbe.filter(batch({ speed: [null, 'Float', 'bad', 'timeout'], fault: [0, 'UInt16'] }), 1)), { speed: null });
    assert.equal(rbe.filter(batch({ speed: [null, 'Float', 'bad', 'timeout'], fault: [0, 'UInt16'] }), 2), undefined);
    assert.deepEqual(sent(rbe.filter(batch({ speed: [null, 'Float', 'bad', 'Modbus exception 2 (illegal data address)'], fault: [0, 'UInt16'] }), 3)), { speed: null });
    assert.deepEqual(sent(rbe.filter(batch({ speed: [1500, 'Float'], fault: [0, 'UInt16'] }), 4)), { speed: 1500 }, 'good again with the value it had before the outage');
    // A scaled 4-20 mA value keeps its number while its quality goes uncertain (under range).
    assert.deepEqual(sent(rbe.filter(batch({ speed: [1500, 'Float', 'uncertain', 'under range'], fault: [0, 'UInt16'] }), 5)), { speed: 1500 });
    assert.deepEqual(sent(rbe.filter(batch({ speed: [1500, 'Float', 'uncertain', 'over range'], fault: [0, 'UInt16'] }), 6)), { speed: 1500 });
  });

  it('NaN (a float register with a NaN pattern) equals NaN and differs from every number; Infinity equals Infinity', function () {
    for (const deadbands of [{}, { Float: 0.5 }]) {
      const rbe = new BatchReportByException({ deadbands, refreshMs: 0 });
      rbe.filter(batch({ temperature: [NaN, 'Float'], flow: [Infinity, 'Float'] }), 0);
      assert.equal(rbe.filter(batch({ temperature: [NaN, 'Float'], flow: [Infinity, 'Float'] }), 1), undefined, `NaN/Infinity unchanged, ${JSON.stringify(deadbands)}`);
      assert.deepEqual(sent(rbe.filter(batch({ temperature: [21.5, 'Float'], flow: [Infinity, 'Float'] }), 2)), { temperature: 21.5 });
      assert.deepEqual(sent(rbe.filter(batch({ temperature: [NaN, 'Float'], flow: [3, 'Float'] }), 3)), { temperature: NaN, flow: 3 });
    }
  });

  it('an absolute deadband per data type, from the last value sent (a slow drift is sent once it exceeds it)', function () {
    const rbe = new BatchReportByException({ deadbands: { Float: 0.5, UInt16: 10 }, refreshMs: 0 });
    rbe.filter(batch({ current: [10, 'Float'], rpm: [100, 'UInt16'], count: [7, 'Int32'] }), 0);
    assert.equal(rbe.filter(batch({ current: [10.4, 'Float'], rpm: [110, 'UInt16'], count: [7, 'Int32'] }), 1), undefined, 'within the bands');
    assert.equal(rbe.filter(batch({ current: [10.5, 'Float'], rpm: [90, 'UInt16'], count: [7, 'Int32'] }), 2), undefined, '|Δ| = band is within');
    assert.deepEqual(sent(rbe.filter(batch({ current: [10.51, 'Float'], rpm: [111, 'UInt16'], count: [8, 'Int32'] }), 3)), { current: 10.51, rpm: 111, count: 8 }, 'Int32 has no band: any change');
    assert.equal(rbe.filter(batch({ current: [10.2, 'Float'], rpm: [111, 'UInt16'], count: [8, 'Int32'] }), 4), undefined, 'the reference is 10.51 now');
  });

  it('Int64 beyond 2^53 as BigInt: compared exactly (a deadband does not apply to BigInt values)', function () {
    const rbe = new BatchReportByException({ deadbands: { Int64: 1000 }, refreshMs: 0 });
    const big = 2n ** 60n;
    rbe.filter(batch({ energy: [big, 'Int64'] }), 0);
    assert.equal(rbe.filter(batch({ energy: [2n ** 60n, 'Int64'] }), 1), undefined);
    assert.deepEqual(sent(rbe.filter(batch({ energy: [big + 1n, 'Int64'] }), 2)), { energy: big + 1n });
    assert.deepEqual(sent(rbe.filter(batch({ energy: [5000, 'Int64'] }), 3)), { energy: 5000 }, 'BigInt → number');
    assert.equal(rbe.filter(batch({ energy: [5999, 'Int64'] }), 4), undefined, 'numbers of an Int64 do take its band');
  });

  it('sends the whole batch when the last whole one is refreshMs old, and after reset() (reconnect)', function () {
    const rbe = new BatchReportByException({ deadbands: {}, refreshMs: 1000 });
    const same = () => batch({ speed: [1500, 'Float'], running: [true, 'Boolean'] });
    assert.ok(rbe.filter(same(), 0));
    assert.equal(rbe.filter(same(), 999), undefined);
    const refreshed = same();
    assert.equal(rbe.filter(refreshed, 1000), refreshed, 'whole at 1000 ms');
    assert.equal(rbe.filter(same(), 1500), undefined);
    rbe.reset();
    const afterReconnect = same();
    assert.equal(rbe.filter(afterReconnect, 1600), afterReconnect, 'whole after reset()');
    assert.equal(rbe.filter(same(), 2599), undefined, 'the refresh period restarts at every whole batch');
    const never = new BatchReportByException({ deadbands: {}, refreshMs: 0 });
    never.filter(same(), 0);
    assert.equal(never.filter(same(), 86_400_000), undefined, 'refresh 0 = never');
  });

  it('reads the node settings: editor text or a flow object, defaults, and every problem at once', function () {
    assert.deepEqual(sendSettingsFrom({}), { send: 'every' });
    assert.deepEqual(sendSettingsFrom({ send: 'changes', deadbands: '', refresh: '' }), { send: 'changes', deadbands: {}, refreshMs: 60_000 });
    assert.deepEqual(sendSettingsFrom({ send: 'changes', deadbands: ' Float=0.5, UInt16 = 2\nDouble=0.01', refresh: '2.5' }),
      { send: 'changes', deadbands: { Float: 0.5, UInt16: 2, Double: 0.01 }, refreshMs: 2500 });
    assert.deepEqual(sendSettingsFrom({ send: 'changes', deadbands: { Int16: 3 }, refresh: 0 }), { send: 'changes', deadbands: { Int16: 3 }, refreshMs: 0 });
    assert.throws(() => sendSettingsFrom({ send: 'sometimes', deadbands: 'Float=-1, Boolean=1, speed', refresh: 'soon' }), (error: Error) => {
      for (const part of ['send must be every or changes', 'deadband of Float must be a number ≥ 0', 'deadband type Boolean is not one of', 'deadband "speed" is not TYPE=NUMBER', 'refresh must be']) {
        assert.ok(error.message.includes(part), `${part} in ${error.message}`);
      }
      return error instanceof RangeError;
    });
    assert.throws(() => sendSettingsFrom({ send: 'changes', deadbands: 'Float=' }), /deadband of Float must be a number/);
  });

  it('editor: both dialogs get the shared Send fields (editor-fragments plugin), each with a tooltip in the modbus locale', function () {
    const root = join(__dirname, '..', '..');
    const fragments = readFileSync(join(root, 'editor-theme', 'editor-fragments-plugin.html'), 'utf8');
    const start = fragments.indexOf('<script type="text/html" id="uns-edge-report-by-exception">');
    assert.ok(start >= 0, 'the fragment');
    const fragment = fragments.slice(start, fragments.indexOf('</script>', start));
    const locale = JSON.parse(readFileSync(join(root, 'nodes', 'modbus', 'locales', 'en-US', 'modbus.json'), 'utf8')) as { modbus: Record<string, Record<string, string>> };
    for (const field of ['send', 'deadbands', 'refresh']) {
      const row = fragment.split('<div class="form-row').find((r) => r.includes(`id="node-input-${field}"`));
      const key = row && /\[title\]uns-edge\/modbus:modbus\.tip\.(\w+)/.exec(row)?.[1];
      assert.ok(key && (locale.modbus.tip[key] ?? '').length > 20, `tooltip of ${field}`);
    }
    for (const [set, type] of [['modbus', 'uns-modbus-read'], ['drive', 'uns-vfd']]) {
      const html = readFileSync(join(root, 'nodes', set, `${set}.html`), 'utf8');
      const template = html.slice(html.indexOf(`data-template-name="${type}"`));
      assert.ok(template.slice(0, template.indexOf('</script>')).includes('<!-- uns-edge-editor: report by exception -->'), `${type}: the mark`);
      assert.ok(html.includes(`window.UnsEdgeEditor.reportFields('${type}')`), `${type}: reportFields()`);
      assert.match(html, /send: \{ value: 'every' \},\s*deadbands: \{ value: '', validate: window\.UnsEdgeEditor\.deadbandsValid \},\s*refresh: \{ value: 60,/);
    }
  });
});
