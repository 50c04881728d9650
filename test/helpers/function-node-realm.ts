/**
 * Values as a function node makes them: evaluated in a fresh `node:vm` context, so objects, arrays,
 * Dates and typed arrays get that context's prototypes, not this realm's (docs/tag-batch.md
 * § "Objects built in a function node"). For unit tests; node tests use the real core function node.
 */
import { runInNewContext } from 'node:vm';

/** JavaScript source text that rebuilds `value` (plain objects, arrays, primitives, BigInt, Date, Uint8Array). */
export function sourceOf(value: unknown): string {
  switch (typeof value) {
    case 'undefined': return 'undefined';
    case 'bigint': return `${value}n`;
    case 'number': return Object.is(value, -0) ? '-0' : String(value);
    case 'string': case 'boolean': return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map(sourceOf).join(',')}]`;
      if (value instanceof Date) return `new Date(${value.getTime()})`;
      if (value instanceof Uint8Array) return `new Uint8Array([${Array.from(value).join(',')}])`;
      // Computed keys: a literal "__proto__" key would set the prototype instead of a property.
      const entries = Object.entries(value).map(([key, v]) => `[${JSON.stringify(key)}]:${sourceOf(v)}`);
      return `{${entries.join(',')}}`;
    }
    default: throw new TypeError(`cannot rebuild a ${typeof value} in another realm`);
  }
}

/** `value` rebuilt inside a new vm context, as if a function node had built it. */
export function fromFunctionNode<T>(value: T): T {
  return runInNewContext(`(${sourceOf(value)})`) as T;
}
