/**
 * lib/fastpoll without a device: the histogram layout shared with native/src/histogram.h and its
 * percentiles, and the controller's checks of metric deadbands and trip rules.
 */
import { strict as assert } from 'node:assert';
import { bucketOf, bucketUpperNs, LatencyHistogram, summarize } from '../../lib/fastpoll/histogram';
import { FastPollController, FastPollSettings, FastPollSettingsError } from '../../lib/fastpoll';

describe('fast poller histogram', () => {
  it('buckets like histogram.h: exact below 16 ns, 16 sub-buckets per octave, ≤ 6.25 % wide', () => {
    assert.equal(bucketOf(0), 0);
    assert.equal(bucketOf(15), 15);
    assert.equal(bucketOf(16), 16);
    assert.equal(bucketOf(17), 17);
    assert.equal(bucketOf(32), 32); // exponent 5, mantissa 0 → 16 + 16
    for (const ns of [100, 1_000, 42_000, 1_000_000, 3.6e9, 2 ** 40]) {
      const i = bucketOf(ns);
      assert.ok(bucketUpperNs(i) > ns, `upper bound of ${ns}`);
      if (i > 16) assert.ok(bucketUpperNs(i - 1) <= ns, `lower bound of ${ns}`);
      if (ns >= 16) assert.ok((bucketUpperNs(i) - ns) / ns <= 0.0625 + 1e-9);
    }
    assert.equal(bucketOf(2 ** 60), 639, 'clamped to the last bucket');
  });

  it('percentiles are bucket upper bounds capped at the exact maximum', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.add(i * 1000); // 1..1000 µs
    const s = summarize(h.raw());
    assert.equal(s.count, 1000);
    assert.ok(s.p50Us >= 500 && s.p50Us <= 500 * 1.0625, `p50 ${s.p50Us}`);
    assert.ok(s.p99Us >= 990 && s.p99Us <= 1000, `p99 ${s.p99Us}`);
    assert.equal(s.maxUs, 1000);
    assert.equal(summarize(new LatencyHistogram().raw()).p99Us, 0);
  });
});

describe('fast poll controller settings', () => {
  const base: FastPollSettings = {
    host: '127.0.0.1', port: 1, unitId: 1, periodMs: 1, assetPath: 'a/b/c/d/e/f', implementation: 'fallback',
    metrics: [{ name: 'speed', table: 'holding', address: 1, type: 'int16', scale: 0.1 }],
  };

  it('refuses a period below 1 ms, a deadband on a multi-register metric and a trip on an unknown metric, naming each', () => {
    assert.throws(() => new FastPollController({ ...base, periodMs: 0.5 }), /at least 1 ms/);
    assert.throws(
      () => new FastPollController({ ...base, metrics: [{ name: 'current', table: 'input', address: 4, type: 'float32', deadband: 0.5 }] }),
      (e: unknown) => e instanceof FastPollSettingsError && /current.*deadband/.test(e.message),
    );
    assert.throws(
      () => new FastPollController({ ...base, trips: [{ metric: 'nope', when: 'above', limit: 1, writeAddress: 0, writeValue: 0 }] }),
      /trip rule on "nope": no such metric/,
    );
  });

  it('accepts a deadband and a trip on a scaled int16 metric; one block from the read plan; no thread before start()', () => {
    const c = new FastPollController({
      ...base,
      metrics: [{ name: 'speed', table: 'holding', address: 1, type: 'int16', scale: 0.1, deadband: 2 }],
      trips: [{ metric: 'speed', when: 'above', limit: 150, writeAddress: 0, writeValue: 0 }],
    });
    assert.equal(c.plan.requests.length, 1);
    assert.equal(c.implementation, 'fallback');
    // Not started: nothing to stop, no thread.
    assert.equal(c.stats(), undefined);
  });
});
