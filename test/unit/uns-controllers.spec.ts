import assert from 'node:assert/strict';
import { ReportByException, type DeadbandOptions } from '../../lib/uns/deadband';
import { UnsOut, type UnsOutOptions } from '../../lib/uns/uns-out';
import { UnsIn } from '../../lib/uns/uns-in';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { TagBatchError } from '../../lib/uns/validate';

function rbe(options: Partial<DeadbandOptions>): ReportByException {
  return new ReportByException({ mode: 'absolute', band: 0, maxSilenceMs: 0, maxEntries: 1000, ...options });
}

/** Which of the values a deadband reports, fed one per second. */
function reported(filter: ReportByException, values: Array<number | string | null>, quality: Array<'good' | 'bad'> = []): Array<number | string | null> {
  return values.filter((value, i) => filter.shouldReport('k', value, quality[i] ?? 'good', i * 1000));
}

describe('report by exception (lib/uns/deadband.ts)', () => {
  it('absolute deadband: reports moves larger than the band from the last REPORTED value', () => {
    // 10.4 and 10.8 stay within 1 of 10; the slow drift to 11.2 is caught (compared with 10, not 10.8).
    assert.deepEqual(reported(rbe({ band: 1 }), [10, 10.4, 10.8, 11.2, 11.0, 9.9]), [10, 11.2, 9.9]);
  });

  it('percent deadband: relative to the last reported value; any change from 0', () => {
    assert.deepEqual(reported(rbe({ mode: 'percent', band: 10 }), [100, 105, 109, 111, 0, 0, 0.001]), [100, 111, 0, 0.001]);
  });

  it('change mode: any change; strings, booleans and null compare by value', () => {
    assert.deepEqual(reported(rbe({ mode: 'change' }), [1, 1, 2, 'a', 'a', null, null, 2]), [1, 2, 'a', null, 2]);
  });

  it('a quality change is always reported', () => {
    assert.deepEqual(reported(rbe({ band: 5 }), [1, 1, 1, 1], ['good', 'bad', 'bad', 'good']), [1, 1, 1]);
  });

  it('max silence republishes an unchanged value once it is N ms old', () => {
    assert.deepEqual(reported(rbe({ band: 100, maxSilenceMs: 3000 }), [1, 1, 1, 1, 1, 1, 1]).length, 3); // t = 0, 3 s, 6 s
  });

  it('bounds its cache: the oldest key is evicted and simply reported again', () => {
    const filter = rbe({ maxEntries: 2 });
    assert.equal(filter.shouldReport('a', 1, 'good', 0), true);
    assert.equal(filter.shouldReport('b', 1, 'good', 0), true);
    assert.equal(filter.shouldReport('c', 1, 'good', 0), true);
    assert.equal(filter.size, 2);
    assert.equal(filter.shouldReport('b', 1, 'good', 0), false);
    assert.equal(filter.shouldReport('a', 1, 'good', 0), true);
  });

  it('refuses nonsense settings', () => {
    assert.throws(() => rbe({ band: -1 }), /deadband must be a number ≥ 0/);
    assert.throws(() => rbe({ band: NaN }), /deadband must be a number ≥ 0/);
    assert.throws(() => rbe({ maxEntries: 0 }), /cache size/);
  });
});

const asset = 'acme/plant1/press/line2/cell1/drive7';
type Published = [topic: string, payload: string, qos: number, retain: boolean];

function unsOut(options: Partial<UnsOutOptions> = {}): { out: UnsOut; published: Published[] } {
  const published: Published[] = [];
  const out = new UnsOut({
    topicPrefix: '', qos: 1, retain: true, format: 'metric',
    deadband: { mode: 'off', band: 0, maxSilenceMs: 0, maxEntries: 1000 }, ...options,
  }, (topic, payload, qos, retain) => published.push([topic, payload, qos, retain]));
  return { out, published };
}

describe('uns-out controller (lib/uns/uns-out.ts)', () => {
  it('publishes one retained topic per metric with the UNS payload', () => {
    const { out, published } = unsOut();
    out.handle({ topic: asset, payload: { Current: 12.5, 'Motor/Temp': 41 }, meta: { Current: { unit: 'A', timestamp: 5 } }, timestamp: 9 });
    assert.deepEqual(published, [
      [`${asset}/Current`, '{"value":12.5,"timestamp":5,"quality":"good","unit":"A"}', 1, true],
      [`${asset}/Motor/Temp`, '{"value":41,"timestamp":9,"quality":"good"}', 1, true],
    ]);
  });

  it('base topic, QoS 0 and non-retained on request; the batch time defaults to now', () => {
    const { out, published } = unsOut({ topicPrefix: 'uns/v1', qos: 0, retain: false });
    out.handle({ topic: asset, payload: { x: 1 } }, 1234);
    assert.deepEqual(published, [[`uns/v1/${asset}/x`, '{"value":1,"timestamp":1234,"quality":"good"}', 0, false]]);
  });

  it('asset format: one JSON topic with every metric of the batch', () => {
    const { out, published } = unsOut({ format: 'asset' });
    out.handle({ topic: asset, payload: { a: 1, b: 'x' }, timestamp: 3 });
    assert.deepEqual(published, [[asset, '{"timestamp":3,"metrics":{"a":{"value":1,"timestamp":3,"quality":"good"},"b":{"value":"x","timestamp":3,"quality":"good"}}}', 1, true]]);
  });

  it('both formats with a deadband: changed metrics per topic, the whole batch on the asset topic', () => {
    const { out, published } = unsOut({ format: 'both', deadband: { mode: 'absolute', band: 1, maxSilenceMs: 0, maxEntries: 100 } });
    out.handle({ topic: asset, payload: { a: 1, b: 1 }, timestamp: 1 });
    published.length = 0;
    const result = out.handle({ topic: asset, payload: { a: 1.5, b: 5 }, timestamp: 2 });
    assert.deepEqual({ ...result }, { reported: 1, suppressed: 1 });
    assert.deepEqual(published.map(([topic]) => topic), [`${asset}/b`, asset]);
    assert.match(published[1][1], /"a":\{"value":1.5/);
    published.length = 0;
    out.handle({ topic: asset, payload: { a: 1.6, b: 5 }, timestamp: 3 });
    assert.deepEqual(published, [], 'nothing changed beyond the band: no asset topic either');
  });

  it('publishes nothing of a malformed batch and names every problem', () => {
    const { out, published } = unsOut();
    assert.throws(() => out.handle({ topic: asset, payload: { good: 1, 'bad#': 2, worse: NaN } }), (error: unknown) => {
      assert.ok(error instanceof TagBatchError);
      assert.equal(error.message, 'tag batch rejected: metric "bad#" contains "#"; value of "worse" is NaN (only finite numbers)');
      return true;
    });
    assert.deepEqual(published, []);
  });
});

describe('uns-in controller (lib/uns/uns-in.ts)', () => {
  function unsIn(mergeWindowMs = 0): { input: UnsIn; batches: TagBatch[]; warnings: string[] } {
    const batches: TagBatch[] = [];
    const warnings: string[] = [];
    const input = new UnsIn({ topicPrefix: '', assetDepth: 6, mergeWindowMs }, (batch) => batches.push(batch), (w) => warnings.push(w));
    return { input, batches, warnings };
  }

  it('merges metrics of one asset arriving in the same turn into one tag batch', async () => {
    const { input, batches } = unsIn();
    input.handleMessage(`${asset}/Current`, Buffer.from('{"value":12.5,"timestamp":5,"quality":"good","unit":"A"}'));
    input.handleMessage(`${asset}/Motor/Temp`, Buffer.from('{"value":41,"timestamp":5,"quality":"uncertain"}'));
    input.handleMessage('acme/plant1/press/line2/cell1/drive8/Current', Buffer.from('{"value":1}'));
    assert.equal(batches.length, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [
      { topic: asset, payload: { Current: 12.5, 'Motor/Temp': 41 }, meta: { Current: { timestamp: 5, quality: 'good', unit: 'A' }, 'Motor/Temp': { timestamp: 5, quality: 'uncertain' } } },
      { topic: 'acme/plant1/press/line2/cell1/drive8', payload: { Current: 1 }, meta: { Current: {} } },
    ]);
    input.close();
  });

  it('a second value of the same metric closes the pending batch: no value is overwritten', () => {
    const { input, batches } = unsIn(50);
    input.handleMessage(`${asset}/x`, Buffer.from('{"value":1}'));
    input.handleMessage(`${asset}/x`, Buffer.from('{"value":2}'));
    assert.deepEqual(batches.map((b) => b.payload), [{ x: 1 }]);
    input.flush();
    assert.deepEqual(batches.map((b) => b.payload), [{ x: 1 }, { x: 2 }]);
    input.close();
  });

  it('accepts the asset-level JSON topic', () => {
    const { input, batches } = unsIn();
    input.handleMessage(asset, Buffer.from('{"timestamp":3,"metrics":{"a":{"value":1},"b":{"value":9223372036854775807,"timestamp":4}}}'));
    input.flush();
    assert.deepEqual(batches, [{ topic: asset, payload: { a: 1, b: 2n ** 63n - 1n }, meta: { a: { timestamp: 3 }, b: { timestamp: 4 } } }]);
  });

  it('warns once per topic about payloads that are not UNS JSON, and skips them', () => {
    const { input, batches, warnings } = unsIn();
    for (let i = 0; i < 5; i++) input.handleMessage(`${asset}/raw`, Buffer.from('12.5'));
    input.handleMessage('too/short', Buffer.from('{"value":1}'));
    input.flush();
    assert.equal(batches.length, 0);
    assert.equal(input.ignored, 6);
    assert.deepEqual(warnings, [
      `skipping messages on "${asset}/raw": payload is not an object with a "value" property; expected {"value":…,"timestamp":…,"quality":…} (warned once per topic)`,
      'skipping messages on "too/short": does not have 6 asset path levels after the base topic "" (warned once per topic)',
    ]);
  });

  it('what uns-out publishes, uns-in turns back into the same tag batch', () => {
    const { out, published } = unsOut({ topicPrefix: 'uns' });
    const batch = { topic: asset, payload: { Current: 12.5, 'Node Control/Rebirth': false, Count: 2n ** 62n, Mode: 'auto', Fault: null }, meta: { Current: { unit: 'A', quality: 'good' as const, timestamp: 7 } }, timestamp: 7 };
    out.handle(batch);
    const batches: TagBatch[] = [];
    const input = new UnsIn({ topicPrefix: 'uns/', assetDepth: 6, mergeWindowMs: 0 }, (b) => batches.push(b), assert.fail);
    for (const [topic, payload] of published) input.handleMessage(topic, Buffer.from(payload));
    input.flush();
    assert.equal(batches.length, 1);
    assert.equal(batches[0].topic, asset);
    assert.deepEqual(batches[0].payload, batch.payload);
    assert.deepEqual(batches[0].meta?.Current, { unit: 'A', quality: 'good', timestamp: 7 });
  });
});
