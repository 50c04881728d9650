/**
 * Type checks of values that come from flows, correct for values made in ANY JavaScript realm.
 *
 * A function node runs its code in a `node:vm` context: `{}`, `[]`, `new Date()` and
 * `new Uint8Array()` written there get that context's Object.prototype, Array.prototype, Date and
 * Uint8Array, not the main realm's. `Object.getPrototypeOf(x) === Object.prototype` and
 * `x instanceof Date` are then false for exactly what users send most (docs/tag-batch.md
 * § "Objects built in a function node"). Every such check in lib/ and nodes/ goes through here.
 */
import { types } from 'node:util';

/**
 * True for an object literal or `Object.create(null)`, whatever realm made it; false for arrays,
 * Buffers, Dates, Maps, class instances and every other object with a prototype chain of its own.
 *
 * A plain object's prototype is its realm's Object.prototype: the one object whose own prototype is
 * null and whose `constructor` is a function named "Object". Checking that shape (not the identity
 * of this realm's Object.prototype) is what makes the test realm-independent.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return true;
  if (typeof proto !== 'object' || proto === null || Object.getPrototypeOf(proto) !== null) return false;
  const constructor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
  return typeof constructor === 'function' && constructor.name === 'Object';
}

/** A Date from any realm (`instanceof Date` is false for one made in a function node). */
export function isDate(value: unknown): value is Date {
  return types.isDate(value);
}

/** A Uint8Array (Buffer included) from any realm. */
export function isBytes(value: unknown): value is Uint8Array {
  return types.isUint8Array(value);
}
