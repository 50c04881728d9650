/**
 * Engineering values ⇄ register words for the parameters of a drive profile: the typed encoding
 * of lib/modbus/datatypes.ts (word order as the parameter says; bytes in a register big-endian,
 * Modbus Application Protocol v1.1b3 §4.2) with the profile's linear scaling on top, through the
 * same exact decimal scaling (scaleLinear/unscaleLinear) as the Modbus nodes.
 */
import { decodeRegisters, encodeRegisters, ModbusValueError, RawValue, registerCount, scaleLinear, unscaleLinear } from '../modbus/datatypes';
import { DriveParameter } from './profile';

export type EngineeringValue = number | bigint | string;

/** Registers the parameter occupies. */
export function parameterSize(p: DriveParameter): number {
  return registerCount(p.type, p.length);
}

function wordsToBuffer(words: readonly number[]): Buffer {
  const data = Buffer.alloc(2 * words.length);
  words.forEach((word, i) => data.writeUInt16BE(word, 2 * i));
  return data;
}

/** The engineering value of a parameter's words (exactly as many as it occupies). */
export function decodeParameter(p: DriveParameter, words: readonly number[]): EngineeringValue {
  const size = parameterSize(p);
  if (words.length !== size) throw new RangeError(`${p.name}: needs ${size} register(s), got ${words.length}`);
  const raw: RawValue = decodeRegisters(wordsToBuffer(words), 0, p.type, p.wordOrder, p.length);
  if (typeof raw === 'string' || typeof raw === 'boolean') return String(raw);
  if (p.scale === 1 && p.offset === 0) return raw;
  return scaleLinear(Number(raw), p.scale, p.offset);
}

/**
 * Words for an engineering value. Integer types round to the nearest raw count; a value the type
 * cannot hold throws ModbusValueError (no silent wrap or saturation).
 */
export function encodeParameter(p: DriveParameter, value: EngineeringValue): number[] {
  if (p.type === 'string') {
    if (typeof value !== 'string') throw new ModbusValueError(`${p.name} needs a string, got ${typeof value}`);
    return encodeRegisters(value, 'string', p.wordOrder, p.length);
  }
  if (typeof value === 'string') throw new ModbusValueError(`${p.name} needs a number, got a string`);
  if (typeof value === 'bigint') {
    if (p.scale !== 1 || p.offset !== 0) throw new ModbusValueError(`${p.name} is scaled: give a number, not a BigInt`);
    return encodeRegisters(value, p.type, p.wordOrder);
  }
  if (!Number.isFinite(value)) throw new ModbusValueError(`${p.name} needs a finite number, got ${value}`);
  const exact = unscaleLinear(value, p.scale, p.offset);
  const raw = p.type === 'float32' || p.type === 'float64' ? exact : Math.round(exact);
  try {
    return encodeRegisters(raw, p.type, p.wordOrder);
  } catch (error) {
    if (error instanceof ModbusValueError) throw new ModbusValueError(`${p.name}: ${value}${p.unit ? ` ${p.unit}` : ''} is raw ${raw}, ${error.message}`);
    throw error;
  }
}
