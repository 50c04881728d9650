import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { MIN_TIMESTAMP, TagBatchError, assertTagBatch, metricNameProblem, tagBatchProblems } from '../../lib/uns/validate';
import { fromFunctionNode } from '../helpers/function-node-realm';

const schema = JSON.parse(readFileSync(join(__dirname, '../../docs/tag-batch.schema.json'), 'utf8'));
const validateSchema = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

const asset = 'acme/plant1/press/line2/cell1/drive7';

/** Samples that JSON can represent: the schema and the validator must give the same verdict. */
const good: Array<[string, unknown]> = [
  ['plain metrics', { topic: asset, payload: { Current: 12.5, Running: true, Mode: 'auto', Fault: null } }],
  ['metric name with "/"', { topic: asset, payload: { 'Node Control/Rebirth': false, 'Motor/Temp': 41 } }],
  ['meta and batch timestamp', {
    topic: asset, timestamp: 1718000000000,
    payload: { Current: 12.5, Count: 9007199254740993 },
    meta: { Current: { unit: 'A', quality: 'good', timestamp: 1718000000000, type: 'Float' }, Count: { type: 'Int64' } },
  }],
  ['bad quality with reason', { topic: 'a', payload: { x: 0 }, meta: { x: { quality: 'bad', reason: 'Modbus exception 2' } } }],
  ['meta for a metric not in payload (ignored)', { topic: 'a/b', payload: { x: 1 }, meta: { y: { unit: 'V' } } }],
  ['unicode levels', { topic: 'Usine/Bâtiment 2/Presse', payload: { 'Température': 20 } }],
  ['values that fit their declared types, null for any type', {
    topic: asset,
    payload: { i16: -32768, u8: 255, f: 3.4e38, b: true, s: 'x', bytes: 'AQI=', dt: 1718000000000, none: null },
    meta: {
      i16: { type: 'Int16' }, u8: { type: 'UInt8' }, f: { type: 'Float' }, b: { type: 'Boolean' }, s: { type: 'Text' },
      bytes: { type: 'Bytes' }, dt: { type: 'DateTime' }, none: { type: 'Int16', quality: 'bad' },
    },
  }],
  ['the earliest timestamp, 2000-01-01T00:00:00Z', { topic: asset, payload: { x: 1 }, timestamp: MIN_TIMESTAMP }],
  ['5,000 metrics (the default limit)', { topic: asset, payload: metrics(5000) }],
];

function metrics(count: number): Record<string, number> {
  const payload: Record<string, number> = {};
  for (let i = 0; i < count; i++) payload[`m${i}`] = i;
  return payload;
}

const bad: Array<[string, unknown, RegExp]> = [
  ['"+" in a path segment', { topic: 'acme/plant1/press/li+ne/cell1/drive7', payload: { x: 1 } }, /topic segment 4 "li\+ne" contains "\+"/],
  ['"#" in a path segment', { topic: 'acme/#', payload: { x: 1 } }, /topic segment 2 "#" contains "#"/],
  ['empty path segment', { topic: 'acme//press', payload: { x: 1 } }, /topic segment 2 "" is empty/],
  ['leading "/" in path', { topic: '/acme', payload: { x: 1 } }, /topic segment 1 "" is empty/],
  ['"$" topic', { topic: '$SYS/x', payload: { x: 1 } }, /starts with "\$"/],
  ['topic not a string', { topic: 42, payload: { x: 1 } }, /msg.topic must be the asset path as a string, got 42/],
  ['missing topic', { payload: { x: 1 } }, /msg.topic must be the asset path as a string, got undefined/],
  ['"#" in a metric name', { topic: asset, payload: { 'x#': 1 } }, /metric "x#" contains "#"/],
  ['"+" in a metric name', { topic: asset, payload: { 'a+b': 1 } }, /metric "a\+b" contains "\+"/],
  ['metric name starting with "/"', { topic: asset, payload: { '/x': 1 } }, /metric "\/x" starts with "\/"/],
  ['metric name ending with "/"', { topic: asset, payload: { 'x/': 1 } }, /metric "x\/" ends with "\/"/],
  ['empty level in metric name', { topic: asset, payload: { 'a//b': 1 } }, /contains an empty level/],
  ['empty metric name', { topic: asset, payload: { '': 1 } }, /metric "" is empty/],
  ['payload is a number', { topic: asset, payload: 12 }, /msg.payload must be an object of \{metric: value\}, got 12/],
  ['payload is an array', { topic: asset, payload: [1, 2] }, /got an array/],
  ['no metrics', { topic: asset, payload: {} }, /no metrics/],
  ['object value', { topic: asset, payload: { x: { v: 1 } } }, /value of "x" is an object/],
  ['array value', { topic: asset, payload: { x: [1] } }, /value of "x" is an array/],
  ['unknown quality', { topic: asset, payload: { x: 1 }, meta: { x: { quality: 'ok' } } }, /quality must be good, uncertain or bad/],
  ['unknown type', { topic: asset, payload: { x: 1 }, meta: { x: { type: 'Int128' } } }, /Sparkplug data type/],
  ['negative timestamp', { topic: asset, payload: { x: 1 }, timestamp: -1 }, /msg.timestamp must be ms since the epoch/],
  ['a timestamp before 2000 (a clock reset to 1970)', { topic: asset, payload: { x: 1 }, meta: { x: { timestamp: 5 } } },
    /meta "x".timestamp 5 is outside 2000-01-01T00:00:00.000Z … /],
  ['more than 5,000 metrics', { topic: asset, payload: metrics(5001) }, /msg.payload has 5001 metrics, more than 5000/],
  ['unit not a string', { topic: asset, payload: { x: 1 }, meta: { x: { unit: 5 } } }, /unit must be a string/],
  ['meta entry not an object', { topic: asset, payload: { x: 1 }, meta: { x: 'A' } }, /meta "x" must be an object/],
];

/** Rules JSON Schema cannot state (a value against the type named in another object, a clock-relative range, UTF-8 bytes). */
const badBeyondSchema: Array<[string, unknown, RegExp]> = [
  ['text for an Int16', { topic: asset, payload: { x: 'abc' }, meta: { x: { type: 'Int16' } } }, /metric "x" \(Int16\): "abc" is not an integer/],
  ['70000 for an Int16', { topic: asset, payload: { x: 70000 }, meta: { x: { type: 'Int16' } } }, /metric "x" \(Int16\): 70000 is out of range -32768…32767/],
  ['-1 for a UInt8', { topic: asset, payload: { x: -1 }, meta: { x: { type: 'UInt8' } } }, /\(UInt8\): -1 is out of range 0…255/],
  ['1.5 for an Int64', { topic: asset, payload: { x: 1.5 }, meta: { x: { type: 'Int64' } } }, /\(Int64\): 1.5 is not an integer/],
  ['1e39 for a Float', { topic: asset, payload: { x: 1e39 }, meta: { x: { type: 'Float' } } }, /\(Float\): 1e\+39 does not fit a 32-bit float/],
  ['1 for a Boolean', { topic: asset, payload: { x: 1 }, meta: { x: { type: 'Boolean' } } }, /\(Boolean\): 1 is not a boolean/],
  ['5 for a String', { topic: asset, payload: { x: 5 }, meta: { x: { type: 'String' } } }, /\(String\): 5 is not a string/],
  ['text that is not base64 for Bytes', { topic: asset, payload: { x: 'not base64!' }, meta: { x: { type: 'Bytes' } } }, /\(Bytes\): is not base64 text/],
  ['a timestamp of 1e300', { topic: asset, payload: { x: 1 }, timestamp: 1e300 }, /msg.timestamp 1e\+300 is outside 2000-01-01T00:00:00.000Z … /],
  ['a timestamp two days ahead', { topic: asset, payload: { x: 1 }, meta: { x: { timestamp: Date.now() + 2 * 86400000 } } }, /meta "x".timestamp \d+ is outside .* \(the sink's clock \+ 24 h\)/],
  ['a string value over 64 KiB of UTF-8 (40,000 "é")', { topic: asset, payload: { x: 'é'.repeat(40000) } }, /value of "x" is a string longer than 65536 bytes/],
  ['a reason over 64 KiB', { topic: asset, payload: { x: 1 }, meta: { x: { reason: 'r'.repeat(65537) } } }, /meta "x".reason is longer than 65536 bytes/],
];

/** Every contract test runs twice: batches made here, and batches made in a function node's vm realm. */
const realms: Array<[string, <T>(value: T) => T]> = [
  ['', (value) => value],
  [' (made in a function node)', fromFunctionNode],
];

describe('tag batch validation (lib/uns/validate.ts)', () => {
  for (const [realm, make] of realms) {
    for (const [name, sample] of good) {
      it(`accepts ${name}, as does the JSON schema${realm}`, () => {
        assert.deepEqual(tagBatchProblems(make(sample)), []);
        assert.equal(validateSchema(sample), true, JSON.stringify(validateSchema.errors));
      });
    }

    for (const [name, sample, message] of bad) {
      it(`rejects ${name}, as does the JSON schema${realm}`, () => {
        assert.throws(() => assertTagBatch(make(sample)), (error: unknown) => {
          assert.ok(error instanceof TagBatchError);
          assert.match(error.message, /^tag batch rejected: /);
          assert.match(error.message, message);
          return true;
        });
        assert.equal(validateSchema(sample), false, `schema accepted ${JSON.stringify(sample)}`);
      });
    }

    for (const [name, sample, message] of badBeyondSchema) {
      it(`rejects ${name}${realm}`, () => {
        assert.throws(() => assertTagBatch(make(sample)), (error: unknown) => error instanceof TagBatchError && message.test(error.message));
      });
    }
  }

  it('rejects a BigInt beyond 64 bits (no data type holds it)', () => {
    assert.deepEqual(tagBatchProblems({ topic: asset, payload: { x: 2n ** 64n, y: -(2n ** 63n) - 1n, ok: 2n ** 64n - 1n } }), [
      'value of "x" is a BigInt outside the 64-bit range -2^63…2^64−1',
      'value of "y" is a BigInt outside the 64-bit range -2^63…2^64−1',
    ]);
  });

  it("limits are the sink's to set: metrics per batch, string bytes, no type check", () => {
    assert.match(tagBatchProblems({ topic: asset, payload: metrics(3) }, { maxMetrics: 2 }).join(), /has 3 metrics, more than 2/);
    assert.match(tagBatchProblems({ topic: asset, payload: { s: 'abcd' } }, { maxStringBytes: 3 }).join(), /longer than 3 bytes/);
    assert.deepEqual(tagBatchProblems({ topic: asset, payload: { x: 'abc' }, meta: { x: { type: 'Int16' } } }, { checkTypes: false }), []);
  });

  it('a batch nested 100,000 levels deep gets problems, not a RangeError', () => {
    let deep: Record<string, unknown> = { v: 1 };
    for (let i = 0; i < 100000; i++) deep = { a: deep };
    assert.deepEqual(tagBatchProblems({ topic: asset, payload: { x: deep, y: 1 }, meta: deep, timestamp: deep }), [
      'value of "x" is an object (only number, bigint, boolean, string or null)',
      'msg.timestamp must be ms since the epoch, got an object',
    ]);
  });

  it('rejects values JSON cannot carry: NaN, ±Infinity, undefined, functions, symbols', () => {
    for (const value of [NaN, Infinity, -Infinity, undefined, () => 1, Symbol('x')]) {
      const problems = tagBatchProblems({ topic: asset, payload: { x: value } });
      assert.equal(problems.length, 1, String(value));
      assert.match(problems[0], /^value of "x" is /);
    }
  });

  it('accepts BigInt values (Int64 beyond 2^53) and -0', () => {
    assert.deepEqual(tagBatchProblems({ topic: asset, payload: { big: 2n ** 63n - 1n, neg: -(2n ** 63n), z: -0 } }), []);
  });

  it('names every problem of a batch in one message', () => {
    const problems = tagBatchProblems({ topic: 'a/li+ne', payload: { 'x#': 1, y: NaN }, meta: { y: { quality: 'fine' } } });
    assert.equal(problems.length, 4);
    const message = new TagBatchError(problems).message;
    assert.equal(message, 'tag batch rejected: topic segment 2 "li+ne" contains "+"; metric "x#" contains "#"; value of "y" is NaN (only finite numbers); meta "y".quality must be good, uncertain or bad, got "fine"');
  });

  it('caps the message at ten problems', () => {
    const payload: Record<string, number> = {};
    for (let i = 0; i < 25; i++) payload[`m${i}#`] = 1;
    const message = new TagBatchError(tagBatchProblems({ topic: asset, payload })).message;
    assert.match(message, /; and 15 more$/);
  });

  it('rejects a topic longer than 65,535 bytes (MQTT v5.0 §1.5.4)', () => {
    const long = 'x'.repeat(40000);
    assert.deepEqual(tagBatchProblems({ topic: long, payload: { [long]: 1 } }).length, 1);
    assert.deepEqual(tagBatchProblems({ topic: long, payload: { short: 1 } }), []);
    assert.equal(tagBatchProblems({ topic: 'a', payload: { ['é'.repeat(32766)]: 1 } }).length, 0);
    assert.equal(tagBatchProblems({ topic: 'a', payload: { ['é'.repeat(32766)]: 1 } }, { prefixBytes: 10 }).length, 1);
  });

  it('metric names: "/" allowed inside, "__proto__" refused', () => {
    assert.equal(metricNameProblem('Node Control/Rebirth'), undefined);
    assert.equal(metricNameProblem('__proto__'), 'is "__proto__"');
  });
});
