/**
 * Engineering value ⇄ register words for the parameters of a drive profile: the profile's scale
 * on top of the typed encoding of lib/modbus/datatypes.ts (word order as the parameter says; bytes
 * in a register big-endian, Modbus Application Protocol v1.1b3 §4.2).
 */
import { decodeRegisters, encodeRegisters } from '../lib/modbus/datatypes';
import { ParameterSpec, RegisterType } from './profile';

const INTEGER_RANGE: Record<Exclude<RegisterType, 'float32'>, [number, number]> = {
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

type TypedSpec = Pick<ParameterSpec, 'type' | 'scale' | 'wordOrder'>;

/**
 * Words for an engineering value. Integers are rounded to the scale and saturate at the type's
 * range, as a drive clamps a displayed value rather than wrapping it.
 */
export function encodeValue(spec: TypedSpec, value: number): number[] {
  if (spec.type === 'float32') return encodeRegisters(value, 'float32', spec.wordOrder);
  const [min, max] = INTEGER_RANGE[spec.type];
  const raw = Math.min(max, Math.max(min, Math.round(value / spec.scale))) || 0; // NaN and -0 → 0
  return encodeRegisters(raw, spec.type, spec.wordOrder);
}

/** The engineering value of a parameter's words (as many as the type occupies). */
export function decodeValue(spec: TypedSpec, words: readonly number[]): number {
  const data = Buffer.alloc(2 * words.length);
  words.forEach((word, i) => data.writeUInt16BE(word, 2 * i));
  return Number(decodeRegisters(data, 0, spec.type, spec.wordOrder)) * spec.scale;
}
