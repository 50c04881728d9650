/** lib/modbus/datatypes.ts: every type in every word/byte order, scaling, 4–20 mA with NAMUR NE43. */
import { strict as assert } from 'node:assert';
import {
  applyScaling, compileScaling, decodeRegisters, encodeRegisters, ModbusDataType, ModbusValueError, RawValue, registerCount, scaleLinear, unscaleLinear, WORD_ORDERS, WordOrder,
} from '../../lib/modbus/datatypes';

const wire = (registers: number[]): Buffer => {
  const b = Buffer.alloc(2 * registers.length);
  registers.forEach((r, i) => b.writeUInt16BE(r, 2 * i));
  return b;
};

describe('modbus datatypes', () => {
  // 0x0102030405060708 spread over four registers in each order.
  const orders64: Record<WordOrder, number[]> = {
    ABCD: [0x0102, 0x0304, 0x0506, 0x0708],
    CDAB: [0x0708, 0x0506, 0x0304, 0x0102],
    BADC: [0x0201, 0x0403, 0x0605, 0x0807],
    DCBA: [0x0807, 0x0605, 0x0403, 0x0201],
  };
  // float32 123.456 = 0x42F6E979.
  const orders32: Record<WordOrder, number[]> = {
    ABCD: [0x42f6, 0xe979], CDAB: [0xe979, 0x42f6], BADC: [0xf642, 0x79e9], DCBA: [0x79e9, 0xf642],
  };

  for (const order of WORD_ORDERS) {
    it(`${order}: decodes and encodes 16-, 32- and 64-bit values`, () => {
      assert.equal(decodeRegisters(wire(orders64[order]), 0, 'uint64', order), 0x0102030405060708n);
      assert.deepEqual(encodeRegisters(0x0102030405060708n, 'uint64', order), orders64[order]);
      assert.ok(Math.abs((decodeRegisters(wire(orders32[order]), 0, 'float32', order) as number) - 123.456) < 1e-4);
      assert.deepEqual(encodeRegisters(123.456, 'float32', order), orders32[order]);
      assert.equal(decodeRegisters(wire(orders32[order]), 0, 'uint32', order), 0x42f6e979);
      const swapped16 = order === 'BADC' || order === 'DCBA';
      assert.equal(decodeRegisters(wire([0x1234]), 0, 'uint16', order), swapped16 ? 0x3412 : 0x1234);
      assert.deepEqual(encodeRegisters(0x1234, 'uint16', order), [swapped16 ? 0x3412 : 0x1234]);
    });
  }

  it('decodes signed values and reads at a register offset', () => {
    const data = wire([0xffff, 0xffff, 0xfffe, 0x8000, 0x3ff8, 0, 0, 0]);
    assert.equal(decodeRegisters(data, 0, 'int16'), -1);
    assert.equal(decodeRegisters(data, 1, 'int32'), -2);
    assert.equal(decodeRegisters(data, 3, 'int16'), -32768);
    assert.equal(decodeRegisters(data, 4, 'float64'), 1.5);
    assert.equal(decodeRegisters(wire([0xffff, 0xffff, 0xffff, 0xffff]), 0, 'int64'), -1);
  });

  it('returns a number up to 2^53 − 1 and a BigInt beyond (no precision lost)', () => {
    const safe = decodeRegisters(wire(encodeRegisters(2 ** 53 - 1, 'uint64')), 0, 'uint64');
    assert.equal(typeof safe, 'number');
    assert.equal(safe, 2 ** 53 - 1);
    const big = decodeRegisters(wire(encodeRegisters(2n ** 53n + 1n, 'uint64')), 0, 'uint64');
    assert.equal(big, 2n ** 53n + 1n);
    assert.equal(decodeRegisters(wire([0xffff, 0xffff, 0xffff, 0xffff]), 0, 'uint64'), 2n ** 64n - 1n);
    assert.equal(decodeRegisters(wire([0x8000, 0, 0, 0]), 0, 'int64'), -(2n ** 63n));
  });

  it('round-trips random values of every type in every order', () => {
    const samples: Array<[ModbusDataType, () => RawValue]> = [
      ['int16', () => Math.floor(Math.random() * 65536) - 32768],
      ['uint16', () => Math.floor(Math.random() * 65536)],
      ['int32', () => Math.floor(Math.random() * 2 ** 32) - 2 ** 31],
      ['uint32', () => Math.floor(Math.random() * 2 ** 32)],
      ['int64', () => BigInt.asIntN(64, BigInt(Math.floor(Math.random() * 2 ** 53)) * 4099n)],
      ['uint64', () => BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 53)) * 4099n)],
      ['float32', () => Math.fround((Math.random() - 0.5) * 1e6)],
      ['float64', () => (Math.random() - 0.5) * 1e300],
    ];
    for (const order of WORD_ORDERS) {
      for (const [type, sample] of samples) {
        for (let i = 0; i < 50; i++) {
          const v = sample();
          const regs = encodeRegisters(v, type, order);
          assert.equal(regs.length, registerCount(type));
          const back = decodeRegisters(wire(regs), 0, type, order);
          const safe = typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
          assert.equal(back, safe ? Number(v) : v, `${type} ${order} ${v}`);
        }
      }
    }
  });

  it('strings: two characters per register, byte-swapped in BADC/DCBA, trailing NULs trimmed', () => {
    assert.equal(decodeRegisters(wire([0x4142, 0x4300]), 0, 'string', 'ABCD', 2), 'ABC');
    assert.equal(decodeRegisters(wire([0x4241, 0x0043]), 0, 'string', 'BADC', 2), 'ABC');
    assert.deepEqual(encodeRegisters('ABC', 'string', 'ABCD', 3), [0x4142, 0x4300, 0]);
    assert.deepEqual(encodeRegisters('ABC', 'string', 'DCBA', 2), [0x4241, 0x0043]);
    assert.throws(() => encodeRegisters('ABCDE', 'string', 'ABCD', 2), ModbusValueError);
  });

  it('bits of a register: bit 0 is the least significant', () => {
    const data = wire([0b1000_0000_0000_0101]);
    assert.equal(decodeRegisters(data, 0, 'bit', 'ABCD', 1, 0), true);
    assert.equal(decodeRegisters(data, 0, 'bit', 'ABCD', 1, 1), false);
    assert.equal(decodeRegisters(data, 0, 'bit', 'ABCD', 1, 15), true);
  });

  it('refuses values that do not fit instead of wrapping (T-VAL-01/02)', () => {
    const bad: Array<[RawValue, ModbusDataType]> = [
      [32768, 'int16'], [-32769, 'int16'], [65536, 'uint16'], [-1, 'uint16'], [1.5, 'int32'], [2 ** 32, 'uint32'],
      [NaN, 'float32'], [Infinity, 'float64'], [1e39, 'float32'], ['1500', 'uint16'], [true, 'int16'],
      [2n ** 64n, 'uint64'], [-(2n ** 63n) - 1n, 'int64'], [2, 'bit'],
    ];
    for (const [v, type] of bad) assert.throws(() => encodeRegisters(v, type), ModbusValueError, `${String(v)} as ${type}`);
  });

  it('linear scaling: raw × scale + offset', () => {
    assert.deepEqual(applyScaling(1234, { scale: 0.1 }), { value: 123.4, quality: 'good' });
    assert.deepEqual(applyScaling(100, { scale: 0.5, offset: -10 }), { value: 40, quality: 'good' });
    assert.deepEqual(applyScaling(7, {}), { value: 7, quality: 'good' });
    assert.deepEqual(applyScaling(true, { scale: 2 }), { value: true, quality: 'good' });
  });

  it('4–20 mA to engineering units with NAMUR NE43 quality', () => {
    const s = { signal: '4-20mA' as const, euMin: 0, euMax: 200 };
    assert.deepEqual(applyScaling(4, s), { value: 0, quality: 'good' });
    assert.deepEqual(applyScaling(12, s), { value: 100, quality: 'good' });
    assert.deepEqual(applyScaling(20, s), { value: 200, quality: 'good' });
    // raw µA register with scale 0.001 → mA
    assert.deepEqual(applyScaling(16000, { ...s, scale: 0.001 }), { value: 150, quality: 'good' });
    assert.equal(applyScaling(3.7, s).quality, 'uncertain');
    assert.equal(applyScaling(20.8, s).quality, 'uncertain');
    for (const mA of [3.59, 0, 21.01, 24]) {
      const r = applyScaling(mA, s);
      assert.equal(r.quality, 'bad', `${mA} mA`);
      assert.equal(r.value, null, 'a failure signal is no measurement');
      assert.match(r.reason ?? '', /NAMUR NE43 failure signal/);
    }
    assert.equal(applyScaling(3.6, s).quality, 'uncertain');
    assert.equal(applyScaling(21, s).quality, 'uncertain');
  });
  describe('exact decimal scaling (no binary float noise)', () => {
    it('gives the decimal result, where plain doubles do not', () => {
      // The bug this guards: IEEE 754 gives 378 × 0.01 = 3.7800000000000002.
      assert.notEqual(378 * 0.01, 3.78);
      assert.equal(scaleLinear(378, 0.01), 3.78);
      assert.notEqual(259 * 0.1, 25.9);
      assert.equal(scaleLinear(259, 0.1), 25.9);
      assert.equal(applyScaling(259, { scale: 0.1 }).value, 25.9);
      assert.equal(scaleLinear(-123, 0.1), -12.3);
      assert.equal(scaleLinear(2741, 0.1, -273.15), 0.95);
      assert.equal(scaleLinear(1, 1e-7), 1e-7);
      assert.equal(scaleLinear(65535, 0.001, 0.5), 66.035);
    });

    it('every uint16 and int16 raw value with scales 0.1, 0.01, 0.001, 0.05 and an offset equals the decimal literal', () => {
      /** The decimal n / 10^digits written out as a literal ("-12.35") and parsed by Number(). */
      const literal = (n: number, digits: number): number => {
        const text = String(Math.abs(n)).padStart(digits + 1, '0');
        return Number(`${n < 0 ? '-' : ''}${text.slice(0, -digits)}.${text.slice(-digits)}`);
      };
      for (const [scale, digits, steps] of [[0.1, 1, 1], [0.01, 2, 1], [0.001, 3, 1], [0.05, 2, 5]] as const) {
        const s = compileScaling({ scale, offset: 0.5 });
        for (let raw = -32768; raw <= 65535; raw++) {
          const expected = literal(raw * steps + 5 * 10 ** (digits - 1), digits);
          const got = s.scale(raw).value;
          if (got !== expected) assert.fail(`raw ${raw} × ${scale} + 0.5: got ${String(got)}, expected ${expected}`);
        }
      }
    });

    it('scales non-integer raw values (float registers) on their shortest decimal form', () => {
      assert.equal(scaleLinear(1.1, 3), 3.3);
      assert.notEqual(1.1 * 3, 3.3);
      assert.equal(scaleLinear(0.1, 1, 0.2), 0.3);
    });

    it('falls back to doubles beyond the exact range, never to a wrong value', () => {
      const big = 2 ** 60;
      assert.equal(scaleLinear(big, 0.1), big * 0.1);
      assert.equal(scaleLinear(Math.fround(123.456), 0.1), Math.fround(123.456) * 0.1);
      assert.equal(scaleLinear(5, Math.PI), 5 * Math.PI);
    });

    it('inverts exactly for writes: engineering value → raw register value', () => {
      assert.equal(unscaleLinear(3.78, 0.01), 378);
      assert.equal(unscaleLinear(25.9, 0.1), 259);
      assert.equal(unscaleLinear(0.95, 0.1, -273.15), 2741);
      assert.equal(unscaleLinear(66.035, 0.001, 0.5), 65535);
      assert.equal(unscaleLinear(1, 0.3), 1 / 0.3);
      for (let raw = 0; raw <= 65535; raw += 7) assert.equal(unscaleLinear(scaleLinear(raw, 0.01, -40), 0.01, -40), raw);
    });

    it('4–20 mA without noise, both directions; an output outside euMin..euMax is refused', () => {
      const s = compileScaling({ scale: 0.001, signal: '4-20mA', euMin: -50, euMax: 150 });
      assert.deepEqual(s.scale(12345), { value: 54.3125, quality: 'good' });
      assert.notEqual((12.345 - 4) / 16 * 200 - 50, 54.3125);
      assert.equal(compileScaling({ signal: '4-20mA', euMin: 0, euMax: 0.3 }).scale(12).value, 0.15);
      assert.equal(s.unscale(54.3125), 12345);
      assert.equal(s.unscale(-50), 4000);
      assert.equal(s.unscale(150), 20000);
      assert.throws(() => s.unscale(150.1), ModbusValueError);
      assert.throws(() => s.unscale(-51), ModbusValueError);
      assert.equal(compileScaling({ scale: 0.01 }).unscale(3.78), 378);
    });
  });
});
