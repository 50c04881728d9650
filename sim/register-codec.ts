/**
 * Engineering value ⇄ 16-bit register words, for the typed parameters of a drive profile.
 * Bytes inside a register are big-endian (Modbus Application Protocol v1.1b3 §4.2); the order of the
 * two words of a 32-bit value is the parameter's wordOrder (the protocol leaves it to the device).
 */
import { ParameterSpec, RegisterType, registerCount } from './profile';

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
  const bytes = new DataView(new ArrayBuffer(4));
  if (spec.type === 'float32') {
    bytes.setFloat32(0, value);
  } else {
    const [min, max] = INTEGER_RANGE[spec.type];
    const raw = Math.min(max, Math.max(min, Math.round(value / spec.scale))) || 0; // NaN and -0 → 0
    if (registerCount(spec.type) === 1) return [raw & 0xffff];
    if (spec.type === 'uint32') bytes.setUint32(0, raw);
    else bytes.setInt32(0, raw);
  }
  const high = bytes.getUint16(0);
  const low = bytes.getUint16(2);
  return spec.wordOrder === 'big' ? [high, low] : [low, high];
}

/** The engineering value of a parameter's words (as many as registerCount(spec.type)). */
export function decodeValue(spec: TypedSpec, words: readonly number[]): number {
  if (spec.type === 'uint16') return words[0] * spec.scale;
  if (spec.type === 'int16') return ((words[0] << 16) >> 16) * spec.scale;
  const [high, low] = spec.wordOrder === 'big' ? [words[0], words[1]] : [words[1], words[0]];
  const bytes = new DataView(new ArrayBuffer(4));
  bytes.setUint16(0, high);
  bytes.setUint16(2, low);
  if (spec.type === 'float32') return bytes.getFloat32(0);
  return (spec.type === 'uint32' ? bytes.getUint32(0) : bytes.getInt32(0)) * spec.scale;
}
