import assert from 'node:assert/strict';
import { normalizePrefix, splitUnsTopic, topicFilterProblem, topicMatches, withoutSharePrefix } from '../../lib/uns/topics';
import { decodeAssetPayload, decodeMetricPayload, encodeMetricPayload, metricFromObject, AssetPayloadBuilder } from '../../lib/uns/wire';
import { parseJsonExact } from '../../lib/uns/json-exact';

const asset = 'acme/plant1/press/line2/cell1/drive7';

describe('UNS topic mapping (lib/uns/topics.ts)', () => {
  it('splits <asset path>/<metric> with the asset depth; "/" stays in the metric name', () => {
    assert.deepEqual(splitUnsTopic(`${asset}/Current`, '', 6), { assetPath: asset, metric: 'Current' });
    assert.deepEqual(splitUnsTopic(`${asset}/Node Control/Rebirth`, '', 6), { assetPath: asset, metric: 'Node Control/Rebirth' });
    assert.deepEqual(splitUnsTopic('site/a/b/c', '', 2), { assetPath: 'site/a', metric: 'b/c' });
  });

  it('a topic of exactly depth levels is the asset topic; fewer levels do not map', () => {
    assert.deepEqual(splitUnsTopic(asset, '', 6), { assetPath: asset, metric: undefined });
    assert.equal(splitUnsTopic('acme/plant1/press', '', 6), undefined);
  });

  it('strips the base topic and refuses topics outside it', () => {
    const prefix = normalizePrefix('/uns/v1/');
    assert.equal(prefix, 'uns/v1/');
    assert.deepEqual(splitUnsTopic(`uns/v1/${asset}/Speed`, prefix, 6), { assetPath: asset, metric: 'Speed' });
    assert.equal(splitUnsTopic(`other/${asset}/Speed`, prefix, 6), undefined);
    assert.equal(normalizePrefix(''), '');
    assert.throws(() => normalizePrefix('uns/+'), /base topic "uns\/\+" level 2 "\+" contains "\+"/);
  });

  it('round-trips every metric name the validator allows, without collisions', () => {
    const names = ['Current', 'Motor/Temp', 'Node Control/Rebirth', 'a/b/c/d', 'x y', 'Température', '$x'];
    const topics = new Set<string>();
    for (const name of names) {
      const topic = `${asset}/${name}`;
      topics.add(topic);
      assert.deepEqual(splitUnsTopic(topic, '', 6), { assetPath: asset, metric: name });
    }
    assert.equal(topics.size, names.length);
  });

  it('matches topic filters as MQTT v5.0 §4.7 says', () => {
    const cases: Array<[string, string, boolean]> = [
      ['a/b/c', 'a/b/c', true], ['a/b/c', 'a/b', false], ['a/+/c', 'a/b/c', true], ['a/+/c', 'a//c', true],
      ['a/+', 'a/b/c', false], ['a/#', 'a', true], ['a/#', 'a/b/c', true], ['#', 'a/b', true], ['+/+', 'a/b', true],
      ['+/b', '$SYS/b', false], ['#', '$SYS/x', false], ['$SYS/#', '$SYS/x', true], ['a/b/#', 'a/bc', false],
      ['+/+/+/+/+/+/#', `${asset}/Current`, true], ['+/+/+/+/+/+/#', asset, true], ['+/+/+/+/+/+/#', 'a/b/c', false],
    ];
    for (const [filter, topic, expected] of cases) assert.equal(topicMatches(filter, topic), expected, `${filter} vs ${topic}`);
  });

  it('shared subscriptions: strips $share/<group>/ and validates filters', () => {
    assert.equal(withoutSharePrefix('$share/gateways/acme/#'), 'acme/#');
    assert.equal(withoutSharePrefix('acme/#'), 'acme/#');
    assert.equal(topicFilterProblem('$share/g/+/+/#'), undefined);
    assert.equal(topicFilterProblem('$share//a'), 'has an invalid $share group');
    assert.equal(topicFilterProblem('a/#/b'), 'level 2 "#" misuses "#"');
    assert.equal(topicFilterProblem('a/b+'), 'level 2 "b+" misuses "+"');
    assert.equal(topicFilterProblem(''), 'is empty');
  });
});

describe('UNS payloads (lib/uns/wire.ts)', () => {
  it('encodes the per-metric payload as the UNS contract says', () => {
    assert.equal(encodeMetricPayload(12.5, 1718000000000, 'good', { unit: 'A' }), '{"value":12.5,"timestamp":1718000000000,"quality":"good","unit":"A"}');
    assert.equal(encodeMetricPayload('a"b', 1, 'bad', { reason: 'timeout', type: 'String' }), '{"value":"a\\"b","timestamp":1,"quality":"bad","type":"String","reason":"timeout"}');
    assert.equal(encodeMetricPayload(null, 1, 'uncertain', undefined), '{"value":null,"timestamp":1,"quality":"uncertain"}');
    assert.equal(encodeMetricPayload(true, 1, 'good', undefined), '{"value":true,"timestamp":1,"quality":"good"}');
    for (const value of [0, -0, 1e21, -1.5e-7, 123456789.125]) {
      assert.deepEqual(JSON.parse(encodeMetricPayload(value, 1, 'good', undefined)).value, JSON.parse(JSON.stringify(value)));
    }
  });

  it('writes Int64 beyond 2^53 as an exact integer literal and reads it back exactly', () => {
    for (const big of [2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 9007199254740993n]) {
      const text = encodeMetricPayload(big, 1, 'good', { type: 'Int64' });
      assert.equal(text, `{"value":${big},"timestamp":1,"quality":"good","type":"Int64"}`);
      const decoded = decodeMetricPayload(text);
      assert.ok(typeof decoded !== 'string');
      assert.equal(decoded.value, big);
    }
    // Safe integers stay numbers; a Double that happens to be a big integer stays a number.
    assert.deepEqual(decodeMetricPayload('{"value":42}'), { value: 42, meta: {} });
    const double = decodeMetricPayload('{"value":100000000000000000000,"type":"Double"}');
    assert.ok(typeof double !== 'string' && double.value === 1e20);
    // An integer literal no 64-bit type holds was a double, typed or not.
    assert.deepEqual(decodeMetricPayload('{"value":100000000000000000000}'), { value: 1e20, meta: {} });
  });

  it('decodes metadata and says why a payload is not the UNS shape', () => {
    assert.deepEqual(decodeMetricPayload('{"value":1.5,"timestamp":7,"quality":"bad","unit":"Hz","reason":"x"}'),
      { value: 1.5, meta: { timestamp: 7, quality: 'bad', unit: 'Hz', reason: 'x' } });
    assert.equal(decodeMetricPayload('12.5'), 'is not an object with a "value" property');
    assert.equal(decodeMetricPayload('not json'), 'is not JSON');
    assert.equal(decodeMetricPayload('{"v":1}'), 'is not an object with a "value" property');
    assert.equal(decodeMetricPayload('{"value":[1]}'), '"value" is an array (only number, bigint, boolean, string or null)');
    assert.equal(decodeMetricPayload('{"value":1,"quality":"ok"}'), '"quality" is not good, uncertain or bad');
  });

  it('builds and decodes the asset-level JSON payload', () => {
    const builder = new AssetPayloadBuilder();
    builder.add('Current', encodeMetricPayload(12.5, 5, 'good', { unit: 'A' }));
    builder.add('Motor/Count', encodeMetricPayload(2n ** 60n, 5, 'good', undefined));
    const text = builder.finish(5);
    assert.equal(text, '{"timestamp":5,"metrics":{"Current":{"value":12.5,"timestamp":5,"quality":"good","unit":"A"},"Motor/Count":{"value":1152921504606846976,"timestamp":5,"quality":"good"}}}');
    const decoded = decodeAssetPayload(text);
    assert.ok(typeof decoded !== 'string');
    assert.equal(decoded.timestamp, 5);
    const count = metricFromObject(decoded.metrics['Motor/Count']);
    assert.ok(typeof count !== 'string' && count.value === 2n ** 60n);
    assert.equal(decodeAssetPayload('{"Current":1}'), 'is not an object with a "metrics" object');
  });

  it('parseJsonExact agrees with JSON.parse except for unsafe integers', () => {
    const text = '{"a":[1,2.5,-3e2,true,false,null,"x\\"\\u00e9"],"b":{"c":{}},"__proto__":1,"big":-9223372036854775808}';
    const exact = parseJsonExact(text) as Record<string, unknown>;
    const plain = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(exact.a, plain.a);
    assert.deepEqual(exact.b, plain.b);
    assert.equal(Object.getPrototypeOf(exact), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(exact, '__proto__')?.value, 1);
    assert.equal(exact.big, -(2n ** 63n));
    for (const broken of ['{"a":1', '[1,]', '{"a" 1}', '01', 'tru', '"x']) assert.throws(() => parseJsonExact(broken), SyntaxError, broken);
  });
});
