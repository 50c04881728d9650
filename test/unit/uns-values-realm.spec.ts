/**
 * lib/values.ts: type checks that hold for values made in a function node's vm realm, and the
 * checks of other libraries that use them (Sparkplug data types, Modbus write commands).
 */
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { isBytes, isDate, isPlainObject } from '../../lib/values';
import { DataType, valueProblem } from '../../lib/sparkplug/datatypes';
import { fromFunctionNode } from '../helpers/function-node-realm';

describe('realm-independent value checks (lib/values.ts)', () => {
  it('isPlainObject: object literals and Object.create(null) from this realm and a function node', () => {
    for (const value of [{}, { a: 1 }, Object.create(null), fromFunctionNode({ a: 1 }), runInNewContext('Object.create(null)')]) {
      assert.equal(isPlainObject(value), true);
    }
  });

  it('isPlainObject: arrays, Dates, Maps, Buffers, class instances and primitives are not plain, in either realm', () => {
    const foreign = runInNewContext('class A {}; [[1], new Date(), new Map(), new A(), new Uint8Array(2), Object.create({})]') as unknown[];
    class Local {}
    const local = [[1], new Date(), new Map(), new Local(), Buffer.alloc(2), Object.create({}), null, undefined, 1, 'x', () => 1];
    for (const value of [...foreign, ...local]) assert.equal(isPlainObject(value), false, String(value));
  });

  it('isDate and isBytes hold for a function node\'s Date and Uint8Array', () => {
    assert.equal(isDate(runInNewContext('new Date(0)')), true);
    assert.equal(isBytes(runInNewContext('new Uint8Array(1)')), true);
    assert.equal(isDate({ getTime: () => 0 }), false);
    assert.equal(isBytes([1, 2]), false);
  });

  it('Sparkplug data type checks take a function node\'s Date (DateTime) and Uint8Array (Bytes)', () => {
    assert.equal(valueProblem(DataType.DateTime, runInNewContext('new Date(1718000000000)')), undefined);
    assert.equal(valueProblem(DataType.Bytes, fromFunctionNode(new Uint8Array([1, 2]))), undefined);
    assert.equal(valueProblem(DataType.DataSet, fromFunctionNode([1])), 'an array is not a DataSet');
  });
});
