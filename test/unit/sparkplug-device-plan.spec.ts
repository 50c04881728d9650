/**
 * The Sparkplug device's compiled plan (lib/sparkplug/device.ts) and the tag batch validator's
 * once-per-shape checks (lib/uns/validate.ts TagBatchValidator): the shortcuts must never accept what
 * the full checks refuse, must notice every change of shape, and must not allocate per metric.
 */
import { strict as assert } from 'node:assert';
import { SparkplugDevice, type DeviceHost } from '../../lib/sparkplug/device';
import { DataType } from '../../lib/sparkplug/datatypes';
import type { Metric } from '../../lib/sparkplug/payload';
import type { Principal } from '../../lib/principal';
import { TagBatchError, TagBatchValidator, tagBatchProblems } from '../../lib/uns/validate';
import { mulberry32 } from '../../sim/drive-model';
import { fromFunctionNode } from '../helpers/function-node-realm';

const ASSET = 'plant/area/line/pump-1';
const NOW = Date.UTC(2026, 0, 1);

interface Published { type: string; metrics: Metric[]; objects: Metric[] }

/** An online edge node that records what its devices publish (copies, and the objects themselves). */
function recordingHost(): DeviceHost & { published: Published[] } {
  let nextAlias = 1;
  const aliases = new Map<string, number>();
  const published: Published[] = [];
  return {
    published,
    online: true,
    addDevice() {},
    removeDevice() {},
    aliasFor(deviceId, name) {
      const key = `${deviceId}/${name}`;
      if (!aliases.has(key)) aliases.set(key, nextAlias++);
      return aliases.get(key)!;
    },
    publishDevice(type, _deviceId, metrics) {
      published.push({ type, metrics: metrics.map((m) => ({ ...m })), objects: [...metrics] });
      return true;
    },
    deviceChanged() {},
    commandRejected() {},
    commandPrincipal: { via: 'sparkplug', id: 'host' } as Principal,
  };
}

function newDevice(host = recordingHost()): { host: ReturnType<typeof recordingHost>; device: SparkplugDevice } {
  const device = new SparkplugDevice(host, { deviceId: 'pump-1', assetPath: ASSET, deathOnBadQuality: true, staleAfterMs: 0, writable: true, now: () => NOW });
  return { host, device };
}

type Batch = { topic: string; payload: Record<string, unknown>; meta?: Record<string, Record<string, unknown>>; timestamp?: unknown };

function batch(values: Record<string, unknown>, meta?: Record<string, Record<string, unknown>>, extra: Partial<Batch> = {}): Batch {
  return { topic: ASSET, payload: { ...values }, ...(meta ? { meta: structuredClone(meta) } : {}), ...extra };
}

const META = { speed: { type: 'Float', unit: 'rpm' }, current: { type: 'Float', unit: 'A' }, torque: { type: 'Int16' } };

describe('sparkplug device: compiled plan per batch shape', () => {
  it('checks every value of a batch of a known shape, refusing what a fresh device refuses, with the same words, and changes nothing', () => {
    const { host, device } = newDevice();
    device.handleBatch(batch({ speed: 1200, current: 14.5, torque: 20 }, META));
    assert.equal(host.published.length, 1);
    const bad: Batch[] = [
      batch({ speed: Number.NaN, current: 14.5, torque: 20 }, META),
      batch({ speed: 1e39, current: 14.5, torque: 20 }, META),
      batch({ speed: 1200, current: '14.5', torque: 20 }, META),
      batch({ speed: 1200, current: 14.5, torque: 70000 }, META),
      batch({ speed: 1200, current: 14.5, torque: 2.5 }, META),
      batch({ speed: 1200, current: 14.5, torque: 20 }, { ...META, speed: { ...META.speed, quality: 'meh' } }),
      batch({ speed: 1200, current: 14.5, torque: 20 }, { ...META, speed: { ...META.speed, timestamp: 5 } }),
      batch({ speed: 1200, current: 14.5, torque: 20 }, { ...META, current: { ...META.current, unit: 7 } }),
      batch({ speed: 1200, current: 14.5, torque: 20 }, { ...META, torque: { ...META.torque, reason: ['x'] } }),
      batch({ speed: 1200, current: 14.5, torque: 20 }, META, { timestamp: 'yesterday' }),
      batch({ speed: 1200, current: 14.5, torque: { value: 20 } }, META),
      fromFunctionNode(batch({ speed: 1200, current: 14.5, torque: -40000 }, META)),
    ];
    for (const [i, msg] of bad.entries()) {
      const fresh = newDevice().device;
      let expected: Error | undefined;
      try { fresh.handleBatch(msg); } catch (error) { expected = error as Error; }
      assert.ok(expected instanceof TagBatchError, `case ${i}: a fresh device refuses it`);
      // The limits in a timestamp problem name the sink's clock to the ms: compare without it.
      const words = (error: Error): string => error.message.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>');
      assert.throws(() => device.handleBatch(msg), (error: unknown) => error instanceof TagBatchError && words(error) === words(expected!), `case ${i}`);
    }
    assert.equal(host.published.length, 1, 'nothing published for a refused batch');
    device.handleBatch(batch({ speed: 1200, current: 15, torque: 20 }, META));
    assert.deepEqual(host.published[1].metrics.map((m) => [m.alias, m.value]), [[2, 15]], 'only the change since the last accepted batch');
  });

  it('a new metric, a changed meta.type, a reorder or a metric left out is a new shape, handled as before', () => {
    const { host, device } = newDevice();
    device.handleBatch(batch({ speed: 1200, current: 14.5 }, { speed: { type: 'Float' } }));
    device.handleBatch(batch({ speed: 1201, current: 14.5, power: 7 }, { speed: { type: 'Float' } }));
    assert.deepEqual(host.published.map((p) => p.type), ['DBIRTH', 'DBIRTH'], 'a new metric: DBIRTH');
    assert.deepEqual(host.published[1].metrics.map((m) => [m.name, m.datatype, m.value]), [['speed', DataType.Float, 1201], ['current', DataType.Double, 14.5], ['power', DataType.Double, 7]]);
    device.handleBatch(batch({ power: 8, current: 14.5, speed: 1201 }, { speed: { type: 'Float' } }));
    assert.equal(host.published[2].type, 'DDATA', 'reordered: same metrics, no DBIRTH');
    assert.deepEqual(host.published[2].metrics.map((m) => [m.alias, m.value]), [[3, 8]]);
    device.handleBatch(batch({ speed: 1201 }, { speed: { type: 'Float' } }));
    assert.equal(host.published.length, 3, 'fewer metrics, none changed: nothing');
    device.handleBatch(batch({ speed: 1202, current: 14.5, power: 8 }, { speed: { type: 'Double' } }));
    assert.equal(host.published[3].type, 'DBIRTH', 'a datatype changed: DBIRTH');
    assert.equal(host.published[3].metrics[0].datatype, DataType.Double);
    device.handleBatch(batch({ speed: 1203, current: 14.5, power: 8 }, { speed: { type: 'Double' }, current: { type: 'Double', quality: 'bad' } }));
    assert.deepEqual(host.published[4].metrics.map((m) => [m.alias, m.value, m.properties?.values[0].value]), [[1, 1203, undefined], [2, 14.5, 0]], 'a quality change is a change');
  });

  it('rewrites its DDATA metric objects in place instead of allocating them per message', () => {
    const { host, device } = newDevice();
    for (let i = 0; i < 4; i++) device.handleBatch(batch({ speed: 1200 + i, current: 14 + i, torque: 20 + i }, META));
    const [, first, second, third] = host.published;
    assert.deepEqual([first.type, second.type, third.type], ['DDATA', 'DDATA', 'DDATA']);
    assert.deepEqual(third.metrics.map((m) => m.value), [1203, 17, 23]);
    assert.deepEqual(first.metrics.map((m) => m.value), [1201, 15, 21], 'each message had its own values when published');
    for (let i = 0; i < 3; i++) assert.equal(second.objects[i], first.objects[i], `metric ${i}: the same object`);
  });
});

describe('TagBatchValidator: tagBatchProblems once per shape', () => {
  /** A stream of batches: mostly one shape with new values, some of them bad, some of another shape. */
  function mutated(random: () => number, i: number): Batch {
    const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)];
    const msg = batch({ speed: 1000 + i, current: 10 + (i % 7), run: i % 2 === 0, label: `n${i}` },
      { speed: { type: 'Float', unit: 'rpm' }, current: { type: 'Double', quality: 'good' }, run: { type: 'Boolean' } });
    switch (random() < 0.3 ? Math.floor(random() * 13) : -1) {
      case 0: msg.payload.speed = pick([Number.NaN, Infinity, 1e39, 'fast', null, {}, 10n ** 30n]); break;
      case 1: msg.meta!.current.quality = pick(['meh', 3, undefined, 'bad']); break;
      case 2: msg.meta!.speed.timestamp = pick([0, -1, NOW, NOW + 1e12, '2026']); break;
      case 3: msg.timestamp = pick([NOW, 5, 'now', Number.NaN]); break;
      case 4: msg.payload.extra = 1; break;
      case 5: delete msg.payload.label; break;
      case 6: msg.meta!.speed.type = pick(['Double', 'Int8', 'Float32']); break;
      case 7: msg.topic = pick([ASSET, 'plant/+/x', '']); break;
      case 8: msg.meta!.ghost = pick<Record<string, unknown>>([{ quality: 'bad' }, { quality: 'worse' }, 3 as unknown as Record<string, unknown>]); break;
      case 9: msg.payload = { label: msg.payload.label, speed: msg.payload.speed, current: msg.payload.current, run: msg.payload.run }; break;
      case 10: msg.meta!.run.unit = pick(['-', 5, 'x'.repeat(70000)]); break;
      case 11: delete msg.meta; break;
      case 12: msg.payload.run = pick([1, 'yes', true]); break;
      default: break;
    }
    return random() < 0.2 ? fromFunctionNode(msg) : msg;
  }

  for (const checkTypes of [true, false]) {
    it(`gives the problems tagBatchProblems gives for every batch of a 3,000-batch stream (checkTypes ${checkTypes})`, () => {
      const random = mulberry32(12);
      const validator = new TagBatchValidator({ checkTypes, now: NOW });
      let fast = 0;
      for (let i = 0; i < 3000; i++) {
        const msg = mutated(random, i);
        const expected = tagBatchProblems(msg, { checkTypes, now: NOW });
        const shapeBefore = validator.shape;
        assert.deepEqual([...validator.problems(msg)], expected, `batch ${i}: ${JSON.stringify(msg, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
        if (expected.length === 0) {
          if (validator.shape === shapeBefore) fast++;
          const names = validator.shape!.names;
          assert.deepEqual(names, Object.keys(msg.payload));
          names.forEach((name, k) => {
            assert.equal(validator.values[k], msg.payload[name]);
            assert.equal(validator.entries[k], msg.meta?.[name]);
          });
        }
      }
      assert.ok(fast > 1500, `most valid batches took the once-per-shape path (${fast})`);
    });
  }

  it('keeps the once-per-shape path for assets fed round-robin, with uns-out\'s limits (prefix, receive-time policy)', () => {
    const random = mulberry32(7);
    const limits = { prefixBytes: 12, maxMetrics: 6, checkTimestampRange: false };
    const validator = new TagBatchValidator(limits);
    const assets = ['plant/area/line/pump-1', 'plant/area/line/pump-2', 'plant/area/line/fan'];
    const shapeOf = new Map<string, unknown>();
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      const msg = mutated(random, i);
      if (msg.topic === ASSET) msg.topic = assets[i % assets.length];
      if (msg.topic.endsWith('fan')) msg.payload.rpm = i; // another shape on this asset
      const now = NOW + i;
      const expected = tagBatchProblems(msg, { ...limits, now });
      assert.deepEqual([...validator.problems(msg, now)], expected, `batch ${i}`);
      if (expected.length === 0) {
        if (validator.shape === shapeOf.get(msg.topic)) fast++;
        shapeOf.set(msg.topic, validator.shape);
        const names = validator.shape!.names;
        assert.deepEqual(names, Object.keys(msg.payload));
        assert.equal(validator.values.length, names.length);
        names.forEach((name, k) => {
          assert.equal(validator.values[k], msg.payload[name]);
          assert.equal(validator.entries[k], msg.meta?.[name]);
        });
      }
    }
    assert.ok(fast > 1500, `most valid batches took the once-per-shape path (${fast})`);
  });
});
