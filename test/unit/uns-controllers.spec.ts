import assert from 'node:assert/strict';
import { ReportByException, type DeadbandOptions } from '../../lib/uns/deadband';
import { UnsOut, type UnsOutOptions } from '../../lib/uns/uns-out';
import { UnsIn } from '../../lib/uns/uns-in';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { TagBatchError } from '../../lib/uns/validate';
import { cutDeepNesting } from '../../lib/uns/nesting';
import { mqttPrincipal, senderOf } from '../../lib/principal';
import { fromFunctionNode } from '../helpers/function-node-realm';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { util: nodeRedUtil } = require('@node-red/util') as { util: { cloneMessage<T>(msg: T): T } };

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

/** A time in 2024: tag batch timestamps must lie in 2000-01-01 … now + 1 day. */
const T = 1718000000000;

for (const [realm, make] of [['', <T>(value: T): T => value], [' (batches made in a function node)', fromFunctionNode]] as const) {
  describe(`uns-out controller (lib/uns/uns-out.ts)${realm}`, () => {
    it('publishes one retained topic per metric with the UNS payload', () => {
      const { out, published } = unsOut();
      out.handle(make({ topic: asset, payload: { Current: 12.5, 'Motor/Temp': 41 }, meta: { Current: { unit: 'A', timestamp: T + 5 } }, timestamp: T + 9 }));
      assert.deepEqual(published, [
        [`${asset}/Current`, `{"value":12.5,"timestamp":${T + 5},"quality":"good","unit":"A"}`, 1, true],
        [`${asset}/Motor/Temp`, `{"value":41,"timestamp":${T + 9},"quality":"good"}`, 1, true],
      ]);
    });

    it('base topic, QoS 0 and non-retained on request; the batch time defaults to now', () => {
      const { out, published } = unsOut({ topicPrefix: 'uns/v1', qos: 0, retain: false });
      out.handle(make({ topic: asset, payload: { x: 1 } }), T);
      assert.deepEqual(published, [[`uns/v1/${asset}/x`, `{"value":1,"timestamp":${T},"quality":"good"}`, 0, false]]);
    });

    it('asset format: one JSON topic with every metric of the batch', () => {
      const { out, published } = unsOut({ format: 'asset' });
      out.handle(make({ topic: asset, payload: { a: 1, b: 'x' }, timestamp: T }));
      assert.deepEqual(published, [[asset, `{"timestamp":${T},"metrics":{"a":{"value":1,"timestamp":${T},"quality":"good"},"b":{"value":"x","timestamp":${T},"quality":"good"}}}`, 1, true]]);
    });

    it('both formats with a deadband: changed metrics per topic, the whole batch on the asset topic', () => {
      const { out, published } = unsOut({ format: 'both', deadband: { mode: 'absolute', band: 1, maxSilenceMs: 0, maxEntries: 100 } });
      out.handle(make({ topic: asset, payload: { a: 1, b: 1 }, timestamp: T + 1 }));
      published.length = 0;
      const result = out.handle(make({ topic: asset, payload: { a: 1.5, b: 5 }, timestamp: T + 2 }));
      assert.deepEqual({ ...result }, { reported: 1, suppressed: 1 });
      assert.deepEqual(published.map(([topic]) => topic), [`${asset}/b`, asset]);
      assert.match(published[1][1], /"a":\{"value":1.5/);
      published.length = 0;
      out.handle(make({ topic: asset, payload: { a: 1.6, b: 5 }, timestamp: T + 3 }));
      assert.deepEqual(published, [], 'nothing changed beyond the band: no asset topic either');
    });

    it('publishes nothing of a malformed batch and names every problem', () => {
      const { out, published } = unsOut();
      assert.throws(() => out.handle(make({ topic: asset, payload: { good: 1, 'bad#': 2, worse: NaN } })), (error: unknown) => {
        assert.ok(error instanceof TagBatchError);
        assert.equal(error.message, 'tag batch rejected: metric "bad#" contains "#"; value of "worse" is NaN (only finite numbers)');
        return true;
      });
      assert.deepEqual(published, []);
    });

    it('publishes nothing of a batch whose values contradict their declared types', () => {
      const { out, published } = unsOut();
      assert.throws(() => out.handle(make({ topic: asset, payload: { a: 'abc', b: 70000, ok: 1 }, meta: { a: { type: 'Int16' }, b: { type: 'Int16' }, ok: { type: 'Int16' } } })),
        /tag batch rejected: metric "a" \(Int16\): "abc" is not an integer; metric "b" \(Int16\): 70000 is out of range -32768…32767$/);
      assert.deepEqual(published, []);
    });

    it('refuses timestamps outside 2000-01-01 … now + 1 day by default', () => {
      const { out, published } = unsOut();
      assert.throws(() => out.handle(make({ topic: asset, payload: { x: 1 }, timestamp: 1e300 }), T), /msg.timestamp 1e\+300 is outside 2000-01-01T00:00:00.000Z … 2024-06-11T06:13:20.000Z/);
      assert.throws(() => out.handle(make({ topic: asset, payload: { x: 1 }, meta: { x: { timestamp: 5 } } }), T), /meta "x".timestamp 5 is outside/);
      assert.deepEqual(published, []);
    });

    it('timestamps "receive-time": publishes with the receive time, quality uncertain and a reason', () => {
      const { out, published } = unsOut({ timestamps: 'receive-time', format: 'both' });
      out.handle(make({ topic: asset, payload: { x: 1, y: 2, z: 3 }, meta: { x: { timestamp: 5, reason: 'clock reset' }, y: { quality: 'bad' } }, timestamp: 1e300 }), T);
      assert.deepEqual(published.map(([, payload]) => payload), [
        `{"value":1,"timestamp":${T},"quality":"uncertain","reason":"source timestamp 5 out of range, receive time used; clock reset"}`,
        `{"value":2,"timestamp":${T},"quality":"bad","reason":"source timestamp 1e+300 out of range, receive time used"}`,
        `{"value":3,"timestamp":${T},"quality":"uncertain","reason":"source timestamp 1e+300 out of range, receive time used"}`,
        `{"timestamp":${T},"metrics":{"x":${published[0][1]},"y":${published[1][1]},"z":${published[2][1]}}}`,
      ]);
      assert.throws(() => out.handle(make({ topic: asset, payload: { x: 1 }, timestamp: -1 })), /msg.timestamp must be ms since the epoch, got -1/);
    });

    it('batches of one shape reuse topics and payload tails, made again when quality, unit, type or reason changes', () => {
      const { out, published } = unsOut({ topicPrefix: 'uns', format: 'both' });
      const other = 'acme/plant1/press/line2/cell1/drive8';
      const steps: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
        [asset, { I: 1.5, On: true }, { I: { unit: 'A', type: 'Float' }, On: { type: 'Boolean' } }],
        [other, { I: 9, On: false }, { I: { unit: 'mA', type: 'Float' } }],
        [asset, { I: 2.5, On: false }, { I: { unit: 'A', type: 'Float' }, On: { type: 'Boolean' } }],
        [asset, { I: 3.5, On: true }, { I: { unit: 'kA', type: 'Float' }, On: { type: 'Boolean' } }],
        [asset, { I: 4.5, On: true }, { I: { unit: 'kA', type: 'Double' }, On: { type: 'Boolean' } }],
        [asset, { I: 5.5, On: true }, { I: { unit: 'kA', type: 'Double', reason: 'range' }, On: { type: 'Boolean' } }],
        [asset, { I: 6.5, On: true }, { I: { unit: 'kA', type: 'Double', reason: 'range', quality: 'uncertain' }, On: { type: 'Boolean' } }],
        [asset, { I: 7.5, On: true }, { I: { unit: 'kA', type: 'Double', quality: 'uncertain' }, On: { type: 'Boolean' } }],
        [asset, { I: 8.5, On: true }, { I: { unit: 'kA', type: 'Double', timestamp: T + 50 } }],
        [asset, { On: true, I: 9.5 }, { I: { type: 'Double' } }],
      ];
      const expected: Published[] = [];
      steps.forEach(([topic, payload, meta], step) => {
        out.handle(make({ topic, payload, meta, timestamp: T + step }));
        const metrics = Object.entries(payload).map(([name, value]) => {
          const m = (meta[name] ?? {}) as { unit?: string; type?: string; quality?: string; reason?: string; timestamp?: number };
          const text = `{"value":${JSON.stringify(value)},"timestamp":${m.timestamp ?? T + step},"quality":"${m.quality ?? 'good'}"` +
            `${m.unit === undefined ? '' : `,"unit":"${m.unit}"`}${m.type === undefined ? '' : `,"type":"${m.type}"`}${m.reason === undefined ? '' : `,"reason":"${m.reason}"`}}`;
          expected.push([`uns/${topic}/${name}`, text, 1, true]);
          return `"${name}":${text}`;
        });
        expected.push([`uns/${topic}`, `{"timestamp":${T + step},"metrics":{${metrics.join(',')}}}`, 1, true]);
      });
      assert.deepEqual(published, expected);
    });

    it('bounds the batch: metrics per batch and string bytes, configurable', () => {
      const many: Record<string, number> = {};
      for (let i = 0; i < 20000; i++) many[`m${i}`] = i;
      const { out, published } = unsOut();
      assert.throws(() => out.handle(make({ topic: asset, payload: many })), /msg.payload has 20000 metrics, more than 5000 \(the sink's limit per batch/);
      const small = unsOut({ maxMetrics: 2, maxStringBytes: 4 });
      assert.throws(() => small.out.handle(make({ topic: asset, payload: { a: 1, b: 2, c: 3 } })), /has 3 metrics, more than 2/);
      assert.throws(() => small.out.handle(make({ topic: asset, payload: { s: 'ééé' } })), /value of "s" is a string longer than 4 bytes/);
      small.out.handle(make({ topic: asset, payload: { s: 'éé' } }));
      assert.equal(small.published.length, 1);
      assert.deepEqual(published, []);
      assert.throws(() => unsOut({ maxMetrics: 0 }), /max metrics per batch must be an integer ≥ 1, got 0/);
    });
  });
}

describe('rejected messages stay reportable (lib/uns/nesting.ts)', () => {
  it('a message nested 5,000 levels deep: Node-RED cannot copy it for a Catch node until the nesting is cut', () => {
    let deep: Record<string, unknown> = { v: 1 };
    for (let i = 0; i < 5000; i++) deep = { a: deep };
    const msg: Record<string, unknown> = { topic: asset, payload: { x: deep, y: 1 }, _msgid: 'm1' };
    assert.throws(() => nodeRedUtil.cloneMessage(msg), RangeError);
    assert.equal(cutDeepNesting(msg), 1);
    const copy = nodeRedUtil.cloneMessage(msg);
    assert.equal((copy.payload as Record<string, unknown>).y, 1);
    let level = (copy.payload as Record<string, unknown>).x as Record<string, unknown>;
    for (let depth = 2; depth < 63; depth++) level = level.a as Record<string, unknown>;
    assert.equal(level.a, '[cut: nested deeper than 64 levels]');
  });

  it('leaves ordinary messages, Buffers and cycles alone', () => {
    const cycle: Record<string, unknown> = { n: 1 };
    cycle.self = cycle;
    const msg = { topic: asset, payload: { x: 1 }, meta: { x: { unit: 'A' } }, raw: Buffer.from('ab'), cycle, list: fromFunctionNode([[1], [2]]) };
    assert.equal(cutDeepNesting(msg), 0);
    assert.deepEqual(msg.payload, { x: 1 });
    assert.equal(msg.cycle.self, msg.cycle);
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

  it('marks values the broker sent from its retained store (msg.retain), never merged with live ones', () => {
    const { input, batches } = unsIn(50);
    input.handleMessage(`${asset}/speedSetpoint`, Buffer.from('{"value":1500}'), true);
    input.handleMessage(`${asset}/Current`, Buffer.from('{"value":12}'));
    input.handleMessage(asset, Buffer.from('{"metrics":{"mode":{"value":"auto"}}}'), true);
    input.flush();
    assert.deepEqual(batches, [
      { topic: asset, payload: { speedSetpoint: 1500, mode: 'auto' }, meta: { speedSetpoint: {}, mode: {} }, retain: true },
      { topic: asset, payload: { Current: 12 }, meta: { Current: {} } },
    ]);
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

  it('puts the subscribing connection on every batch as msg.principal, a copy each', () => {
    const batches: TagBatch[] = [];
    const principal = mqttPrincipal('gw-line2', 'alice');
    const input = new UnsIn({ topicPrefix: '', assetDepth: 6, mergeWindowMs: 0, principal }, (b) => batches.push(b), assert.fail);
    input.handleMessage(`${asset}/a`, Buffer.from('{"value":1}'));
    input.flush();
    input.handleMessage(`${asset}/a`, Buffer.from('{"value":2}'));
    input.flush();
    assert.deepEqual(batches.map((b) => b.principal), [
      { via: 'mqtt', id: 'mqtt:gw-line2 (user alice)', clientId: 'gw-line2', user: 'alice' },
      { via: 'mqtt', id: 'mqtt:gw-line2 (user alice)', clientId: 'gw-line2', user: 'alice' },
    ]);
    assert.notEqual(batches[0].principal, batches[1].principal);
    assert.equal(senderOf(batches[0]), 'mqtt:gw-line2 (user alice)');
  });

  it('skips a payload nested 100,000 levels deep with a warning, without a RangeError', () => {
    const { input, batches, warnings } = unsIn();
    const deep = '{"a":'.repeat(100000) + '9007199254740993' + '}'.repeat(100000);
    input.handleMessage(`${asset}/deep`, Buffer.from(`{"value":1,"x":${deep}}`));
    input.handleMessage(asset, Buffer.from(`{"metrics":{"m":{"value":${deep}}}}`));
    input.flush();
    assert.deepEqual(batches.map((b) => b.payload), [{ deep: 1 }]);
    assert.deepEqual(warnings, [`skipping messages on "${asset}": asset payload metric "m" "value" is an object (only number, bigint, boolean, string or null) (warned once per topic)`]);
  });

  it('what uns-out publishes, uns-in turns back into the same tag batch', () => {
    const { out, published } = unsOut({ topicPrefix: 'uns' });
    const batch = { topic: asset, payload: { Current: 12.5, 'Node Control/Rebirth': false, Count: 2n ** 62n, Mode: 'auto', Fault: null }, meta: { Current: { unit: 'A', quality: 'good' as const, timestamp: T } }, timestamp: T };
    out.handle(batch);
    const batches: TagBatch[] = [];
    const input = new UnsIn({ topicPrefix: 'uns/', assetDepth: 6, mergeWindowMs: 0 }, (b) => batches.push(b), assert.fail);
    for (const [topic, payload] of published) input.handleMessage(topic, Buffer.from(payload));
    input.flush();
    assert.equal(batches.length, 1);
    assert.equal(batches[0].topic, asset);
    assert.deepEqual(batches[0].payload, batch.payload);
    assert.deepEqual(batches[0].meta?.Current, { unit: 'A', quality: 'good', timestamp: T });
  });
});
