/**
 * lib/modbus/rtu.ts without a serial port: CRC-16 against the spec's examples, request ADUs,
 * line timing (§2.5.1.1) and the master's response framer with noise, CRC errors, truncated and
 * foreign frames, split and stale bytes.
 */
import { strict as assert } from 'node:assert';
import {
  crc16, encodeRtuRequest, RtuResponseFramer, rtuResponseLength, rtuTiming, validateSerialSettings,
} from '../../lib/modbus/rtu';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** An RTU ADU: the bytes given plus their CRC, low byte first. */
const withCrc = (s: string) => {
  const body = hex(s);
  const crc = crc16(body);
  return Buffer.concat([body, Buffer.from([crc & 0xff, crc >>> 8])]);
};

describe('modbus rtu', () => {
  it('CRC-16: the examples of Serial Line v1.02 Appendix B and a well-known read frame', () => {
    // §6.2.2 / Appendix B: address 0x02, function 0x07 → CRC 0x1241, sent 0x41 then 0x12.
    assert.equal(crc16(hex('0207')), 0x1241);
    // Read 10 holding registers from 0 at unit 1: 01 03 00 00 00 0A C5 CD.
    assert.deepEqual(encodeRtuRequest(1, { fc: 3, address: 0, quantity: 10 }), hex('01 03 00 00 00 0A C5 CD'));
    // Write single register (App Protocol §6.6 example: register 2 ← 0x0003) at unit 17.
    assert.deepEqual(encodeRtuRequest(17, { fc: 6, address: 1, value: 3 }), withCrc('11 06 0001 0003'));
    assert.equal(crc16(encodeRtuRequest(5, { fc: 16, address: 100, values: [1, 2, 3] })), 0, 'a frame with its CRC has CRC 0');
  });

  it('response length follows from the function code (§6.1–§6.12, §7)', () => {
    assert.equal(rtuResponseLength(hex('0183'), 2), 5, 'exception');
    assert.equal(rtuResponseLength(hex('0103'), 2), undefined, 'byte count not yet there');
    assert.equal(rtuResponseLength(hex('010306'), 3), 11);
    assert.equal(rtuResponseLength(hex('0106'), 2), 8);
    assert.equal(rtuResponseLength(hex('0110'), 2), 8);
    assert.equal(rtuResponseLength(hex('0111'), 2), -1, 'unknown function');
  });

  it('timing: 3.5 characters up to 19200 baud, 1.75 ms above (§2.5.1.1)', () => {
    const slow = rtuTiming({ baudRate: 9600, dataBits: 8, parity: 'even', stopBits: 1 });
    assert.ok(Math.abs(slow.charMs - 11 / 9.6) < 1e-9, '11 bits per character');
    assert.ok(Math.abs(slow.t35Ms - 3.5 * 11 / 9.6) < 1e-9);
    assert.ok(Math.abs(rtuTiming({ baudRate: 19200, dataBits: 8, parity: 'none', stopBits: 1 }).t15Ms - 1.5 * 10 / 19.2) < 1e-9);
    const fast = rtuTiming({ baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 2 });
    assert.equal(fast.t35Ms, 1.75);
    assert.equal(fast.t15Ms, 0.75);
  });

  it('validates serial settings with clear messages', () => {
    assert.deepEqual(validateSerialSettings({ path: '/dev/ttyUSB0', baudRate: 9600, parity: 'even', stopBits: 1 }), []);
    assert.deepEqual(validateSerialSettings({ path: ' ', baudRate: 9600.5, parity: 'mark' as never, stopBits: 3 as never, dataBits: 7 as never }), [
      'serial port path is empty',
      'baud rate must be an integer 50..4000000, got 9600.5',
      'RTU needs 8 data bits (Serial Line §2.5.1), got 7; 7 bits is ASCII mode, which is not supported',
      'parity must be none, even or odd, got mark',
      'stop bits must be 1 or 2, got 3',
    ]);
  });

  describe('response framer', () => {
    let frames: Array<[number, string]>;
    let framer: RtuResponseFramer;
    let t: number;
    const push = (bytes: Buffer, after = 1) => {
      t += after;
      framer.push(bytes, t);
    };
    beforeEach(() => {
      frames = [];
      t = 1000;
      framer = new RtuResponseFramer((unit, pdu) => frames.push([unit, pdu.toString('hex')]), 20);
    });

    const answer = withCrc('01 03 04 00 0B 00 16');

    it('frames the expected response, also dripped byte by byte', () => {
      framer.expect(1, 3);
      push(answer);
      assert.deepEqual(frames, [[1, '0304000b0016']]);
      framer.expect(1, 3);
      for (const byte of answer) push(Buffer.from([byte]));
      assert.equal(frames.length, 2);
      assert.deepEqual(framer.stats, { crcErrors: 0, discardedBytes: 0 });
    });

    it('finds the response after garbage, and drops what follows it', () => {
      framer.expect(1, 3);
      push(Buffer.concat([hex('ff 00 01 55 03'), answer, hex('dead')]));
      assert.deepEqual(frames, [[1, '0304000b0016']]);
      assert.equal(framer.stats.discardedBytes, 7);
    });

    it('a bad CRC is counted and never delivered; the good frame after it is', () => {
      framer.expect(1, 3);
      const corrupt = Buffer.from(answer);
      corrupt[4] ^= 0x40;
      push(corrupt);
      assert.deepEqual(frames, []);
      assert.equal(framer.stats.crcErrors, 1);
      push(answer);
      assert.deepEqual(frames, [[1, '0304000b0016']]);
    });

    it('an exception response is 5 bytes', () => {
      framer.expect(7, 6);
      push(withCrc('07 86 02'));
      assert.deepEqual(frames, [[7, '8602']]);
    });

    it('drops a response of another unit or function, and bytes nobody waits for', () => {
      framer.expect(2, 3);
      push(answer); // unit 1
      push(withCrc('02 04 02 00 01')); // function 4
      assert.deepEqual(frames, []);
      framer.cancel();
      push(withCrc('02 03 02 00 01'));
      assert.deepEqual(frames, [], 'no request outstanding');
    });

    it('a truncated frame followed by silence is dropped as a leftover', () => {
      framer.expect(1, 3);
      push(answer.subarray(0, 5));
      framer.expect(1, 3); // the next request (after the timeout) starts from a clean buffer
      push(answer, 50);
      assert.deepEqual(frames, [[1, '0304000b0016']]);
      framer.expect(1, 3);
      push(answer.subarray(0, 5));
      push(answer, 30); // 30 ms > 20 ms stale limit: the old half frame is no prefix of this one
      assert.equal(frames.length, 2);
      assert.equal(framer.stats.crcErrors, 0, 'the leftover was dropped, not parsed as the start of a frame');
    });

    it('survives a flood longer than its buffer', () => {
      framer.expect(1, 3);
      push(Buffer.alloc(5000, 0x01)); // 01 01 01 …: address matches, function does not
      push(answer);
      assert.deepEqual(frames, [[1, '0304000b0016']]);
    });
  });
});
