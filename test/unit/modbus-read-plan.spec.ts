/** lib/modbus/read-plan.ts: request merging, limits, validation, response → tag batch, failures → bad quality. */
import { strict as assert } from 'node:assert';
import { encodeRegisters } from '../../lib/modbus/datatypes';
import {
  applyReadFailure, applyReadResponse, buildReadPlan, MetricDefinition, newTagBatch, MetricDefinitionError,
} from '../../lib/modbus/read-plan';

const m = (name: string, address: number, type: MetricDefinition['type'] = 'uint16', table: MetricDefinition['table'] = 'holding', extra: Partial<MetricDefinition> = {}): MetricDefinition =>
  ({ name, table, address, type, ...extra });
const spans = (defs: MetricDefinition[], opts = {}) =>
  buildReadPlan(defs, opts).requests.map((r) => `${r.table}:${r.address}+${r.quantity}`);

describe('modbus read plan', () => {
  it('merges contiguous and overlapping metrics into one request, per table', () => {
    assert.deepEqual(spans([m('a', 0), m('b', 1, 'float32'), m('c', 3, 'uint64'), m('d', 2, 'uint16')]), ['holding:0+7']);
    assert.deepEqual(spans([m('a', 0), m('b', 0, 'uint16', 'input'), m('c', 5, 'bit', 'coil'), m('d', 9, 'bit', 'coil')]),
      ['coil:5+5', 'holding:0+1', 'input:0+1']);
  });

  it('bridges gaps up to mergeGap and splits beyond', () => {
    const defs = [m('a', 0), m('b', 9), m('c', 30)];
    assert.deepEqual(spans(defs), ['holding:0+10', 'holding:30+1']);
    assert.deepEqual(spans(defs, { mergeGap: 0 }), ['holding:0+1', 'holding:9+1', 'holding:30+1']);
    assert.deepEqual(spans(defs, { mergeGap: 19 }), ['holding:0+10', 'holding:30+1'], 'registers 10..29 are a hole of 20');
    assert.deepEqual(spans(defs, { mergeGap: 20 }), ['holding:0+31']);
  });

  it('respects max registers per request (≤ 125) and max bits (≤ 2000)', () => {
    const many = Array.from({ length: 300 }, (_, i) => m(`r${i}`, i));
    assert.deepEqual(spans(many), ['holding:0+125', 'holding:125+125', 'holding:250+50']);
    assert.deepEqual(spans(many, { maxRegisters: 100 }), ['holding:0+100', 'holding:100+100', 'holding:200+100']);
    assert.deepEqual(spans(many, { maxRegisters: 500 }).length, 3, 'clamped to 125');
    // a float32 never straddles two requests
    assert.deepEqual(spans([m('a', 0, 'float32'), m('b', 2, 'float32'), m('c', 4, 'float32')], { maxRegisters: 5 }), ['holding:0+4', 'holding:4+2']);
    const bits = Array.from({ length: 2500 }, (_, i) => m(`c${i}`, i, 'bit', 'coil'));
    assert.deepEqual(spans(bits), ['coil:0+2000', 'coil:2000+500']);
  });

  it('lists every problem of invalid definitions (clear deploy-time error, T-MB-10/12)', () => {
    const bad = [
      m('', 0), m('dup', 0), m('dup', 1), m('neg', -1), m('float', 1.5), m('undef', undefined as unknown as number),
      m('type', 0, 'int8' as never), m('coilint', 0, 'int16', 'coil'), m('past', 65535, 'float32'),
      m('order', 0, 'int32', 'holding', { wordOrder: 'XYZW' as never }), m('scale', 0, 'int16', 'holding', { scale: 0 }),
      m('ma', 0, 'int16', 'holding', { signal: '4-20mA', euMin: 5, euMax: 5 }), m('str', 0, 'string', 'holding', { length: 200 }),
      m('bit', 0, 'bit', 'holding', { bit: 16 }),
    ];
    assert.throws(() => buildReadPlan(bad), (e: unknown) => {
      assert.ok(e instanceof MetricDefinitionError);
      const text = e.problems.join('\n');
      for (const expected of ['name is empty', '"dup": duplicate name', '"neg": address', '"float": address', '"undef": address',
        '"type": type must be', '"coilint": coil holds bits', '"past": registers 65535..65536 run past 65535', '"order": word order',
        '"scale": scale', '"ma": 4-20mA', '"str": string length', '"bit": bit must be']) {
        assert.ok(text.includes(expected), `missing: ${expected}\n${text}`);
      }
      return true;
    });
    assert.throws(() => buildReadPlan([]), /no metrics defined/);
  });

  it('turns a response into payload values and meta (timestamp, quality, unit, Sparkplug type)', () => {
    const defs = [
      m('speed', 0, 'float32', 'holding', { unit: 'rpm', wordOrder: 'CDAB' }),
      m('current', 2, 'int16', 'holding', { unit: 'A', scale: 0.1 }),
      m('energy', 3, 'uint64', 'holding', { unit: 'Wh' }),
      m('name', 7, 'string', 'holding', { length: 2 }),
      m('running', 9, 'bit', 'holding', { bit: 3 }),
      m('level', 10, 'uint16', 'holding', { unit: '%', signal: '4-20mA', euMin: 0, euMax: 100, scale: 0.001 }),
    ];
    const plan = buildReadPlan(defs);
    assert.equal(plan.requests.length, 1);
    const regs = [...encodeRegisters(1480.5, 'float32', 'CDAB'), ...encodeRegisters(-123, 'int16'), ...encodeRegisters(2n ** 60n, 'uint64'),
      ...encodeRegisters('P1', 'string', 'ABCD', 2), 0b1000, 12000];
    const data = Buffer.alloc(regs.length * 2);
    regs.forEach((r, i) => data.writeUInt16BE(r, 2 * i));
    const batch = newTagBatch('acme/plant/area/line/cell/pump1', 1);
    applyReadResponse(plan.requests[0], data, 42, batch);
    assert.deepEqual(batch.payload, { speed: 1480.5, current: -12.3, energy: 2n ** 60n, name: 'P1', running: true, level: 50 });
    assert.deepEqual(batch.meta.speed, { timestamp: 42, quality: 'good', type: 'Float', unit: 'rpm' });
    assert.deepEqual(batch.meta.current, { timestamp: 42, quality: 'good', type: 'Double', unit: 'A' });
    assert.deepEqual(batch.meta.energy, { timestamp: 42, quality: 'good', type: 'UInt64', unit: 'Wh' });
    assert.equal(batch.meta.running.type, 'Boolean');
    assert.equal(batch.meta.level.quality, 'good');
    assert.equal(batch.topic, 'acme/plant/area/line/cell/pump1');
  });

  it('starts each batch from the plan\'s layout: every metric in plan order, then the names a consumer adds; a copy per batch', () => {
    const plan = buildReadPlan([m('b', 4, 'uint16', 'input'), m('a', 0), m('__proto__', 1), m('c', 9, 'bit', 'coil')], { addedNames: ['derived', 'a'] });
    const first = newTagBatch('t', 0, plan.layout);
    assert.deepEqual(Object.keys(first.payload), ['c', 'a', '__proto__', 'b', 'derived']);
    assert.deepEqual(Object.keys(first.meta), Object.keys(first.payload));
    for (const read of plan.requests) applyReadResponse(read, Buffer.from([0, 1, 0, 2, 0, 3, 0, 4, 0, 5]), 1, first);
    // A metric may be called __proto__: an own member of the batch, never the object's prototype.
    assert.equal(Object.getPrototypeOf(first.payload), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(first.payload, '__proto__')?.value, 2);
    assert.equal(first.payload.a, 1);
    const second = newTagBatch('t', 1, plan.layout);
    assert.deepEqual(Object.values(second.payload), [null, null, null, null, null], 'a new batch does not see the last one\'s values');
    assert.deepEqual(Object.values(plan.layout.payload), [null, null, null, null, null], 'the layout itself is never filled');
  });

  it('decodes coils and discrete inputs from packed bits', () => {
    const plan = buildReadPlan([m('a', 3, 'bit', 'coil'), m('b', 4, 'bit', 'coil'), m('c', 12, 'bit', 'coil')]);
    const batch = newTagBatch('t', 0);
    applyReadResponse(plan.requests[0], Buffer.from([0b0000_0010, 0b0000_0010]), 1, batch); // bits 1 and 9 of the span 3..12
    assert.deepEqual(batch.payload, { a: false, b: true, c: true });
  });

  it('a failed request marks only its own metrics bad, with null and the reason — never 0 (T-MB-06)', () => {
    const plan = buildReadPlan([m('a', 0, 'uint16', 'holding', { unit: 'Hz' }), m('b', 0, 'uint16', 'input')]);
    const batch = newTagBatch('t', 0);
    applyReadFailure(plan.requests[0], 'Modbus exception 2 (illegal data address)', 5, batch);
    applyReadResponse(plan.requests[1], Buffer.from([0, 7]), 6, batch);
    assert.deepEqual(batch.payload, { a: null, b: 7 });
    assert.deepEqual(batch.meta.a, { timestamp: 5, quality: 'bad', type: 'UInt16', unit: 'Hz', reason: 'Modbus exception 2 (illegal data address)' });
    assert.equal(batch.meta.b.quality, 'good');
  });
});
