/**
 * lib/modbus/mbap.ts: incremental MBAP framing (Implementation Guide v1.0b §3.1.3) and the framing
 * faults of security.md T-MB-01, T-MB-02, T-MB-05, T-MB-11.
 */
import { strict as assert } from 'node:assert';
import { MbapErrorCode, MbapFramer, writeMbapHeader } from '../../lib/modbus/mbap';

interface Frame { tid: number; unit: number; pdu: string }

function framer() {
  const frames: Frame[] = [];
  const errors: MbapErrorCode[] = [];
  const f = new MbapFramer(
    (tid, unit, pdu) => frames.push({ tid, unit, pdu: pdu.toString('hex') }),
    (e) => errors.push(e.code),
  );
  return { f, frames, errors };
}

const adu = (tid: number, unit: number, pdu: string): Buffer => {
  const body = Buffer.from(pdu, 'hex');
  const buf = Buffer.alloc(7 + body.length);
  writeMbapHeader(buf, 0, tid, unit, body.length);
  body.copy(buf, 7);
  return buf;
};

describe('modbus mbap framer', () => {
  it('writes the header of §3.1.3 (length = unit id + PDU)', () => {
    assert.deepEqual(adu(0x1234, 0xff, '0300000001'), Buffer.from('1234' + '0000' + '0006' + 'ff' + '0300000001', 'hex'));
  });

  it('delivers two ADUs that arrive in one segment', () => {
    const { f, frames, errors } = framer();
    f.push(Buffer.concat([adu(1, 1, '0300000002'), adu(2, 7, '8302')]));
    assert.deepEqual(frames, [{ tid: 1, unit: 1, pdu: '0300000002' }, { tid: 2, unit: 7, pdu: '8302' }]);
    assert.deepEqual(errors, []);
    assert.equal(f.bufferedBytes, 0);
  });

  it('reassembles an ADU split at every possible byte, and one dripped a byte at a time', () => {
    const whole = Buffer.concat([adu(5, 1, '030400010002'), adu(6, 1, '0300000001')]);
    for (let cut = 1; cut < whole.length; cut++) {
      const { f, frames, errors } = framer();
      f.push(whole.subarray(0, cut));
      f.push(whole.subarray(cut));
      assert.equal(frames.length, 2, `cut at ${cut}`);
      assert.deepEqual(errors, []);
    }
    const { f, frames } = framer();
    for (const byte of whole) f.push(Buffer.from([byte]));
    assert.deepEqual(frames, [{ tid: 5, unit: 1, pdu: '030400010002' }, { tid: 6, unit: 1, pdu: '0300000001' }]);
  });

  it('accepts the largest ADU (260 bytes, length 254)', () => {
    const { f, frames, errors } = framer();
    f.push(adu(1, 1, '03fb' + '00'.repeat(251)));
    assert.equal(frames.length, 1);
    assert.equal(frames[0].pdu.length / 2, 253);
    assert.deepEqual(errors, []);
  });

  const faults: Array<[string, string, MbapErrorCode]> = [
    ['protocol id ≠ 0', '0001 0001 0006 01 0300000001', 'protocol-id'],
    ['length 0', '0001 0000 0000 01', 'length-too-short'],
    ['length 1 (unit id, no function code)', '0001 0000 0001 01', 'length-too-short'],
    ['length 255', '0001 0000 00ff 01', 'length-too-long'],
    ['length 0xFFFF', '0001 0000 ffff 01', 'length-too-long'],
    ['HTTP garbage', Buffer.from('GET / HTTP/1.1').toString('hex'), 'protocol-id'],
  ];
  for (const [name, bytes, code] of faults) {
    it(`reports ${name} as ${code} and then ignores the stream`, () => {
      const { f, frames, errors } = framer();
      f.push(Buffer.from(bytes.replace(/ /g, ''), 'hex'));
      assert.deepEqual(errors, [code]);
      assert.ok(f.hasFailed);
      f.push(adu(1, 1, '0300000001'));
      assert.deepEqual(frames, []);
      assert.deepEqual(errors, [code], 'one error, not one per chunk');
      f.reset();
      f.push(adu(1, 1, '0300000001'));
      assert.equal(frames.length, 1, 'reset() starts a new stream');
    });
  }

  it('delivers the good ADU before a garbage one that arrives later', () => {
    const { f, frames, errors } = framer();
    f.push(adu(1, 1, '0300000001'));
    f.push(Buffer.from('00020005000601', 'hex'));
    assert.equal(frames.length, 1);
    assert.deepEqual(errors, ['protocol-id']);
  });

  it('does not deliver an ADU followed in its chunk by bytes that cannot start one: it may be a splice (issue 8)', () => {
    const { f, frames, errors } = framer();
    f.push(Buffer.concat([adu(1, 1, '0300000001'), Buffer.from('00020005000601', 'hex')]));
    assert.deepEqual(frames, []);
    assert.deepEqual(errors, ['out-of-step']);
  });

  it('never completes a truncated ADU with the next one: a chunk that is a whole ADU starts a new one (issue 8)', () => {
    // Seen with the chaos device: the first 9 bytes of an answer (header, FC 3, byte count 8), then a
    // whole late answer; joined, its header would read as registers [51, 0, 11, 259] under tid 7.
    const { f, frames, errors } = framer();
    f.push(adu(7, 1, '0308' + '0033ffcc00025a5a').subarray(0, 9));
    f.push(adu(51, 1, '0308' + '0034ffcb00025a5a'));
    assert.deepEqual(frames, [{ tid: 51, unit: 1, pdu: '0308' + '0034ffcb00025a5a' }]);
    assert.deepEqual(errors, []);
    assert.equal(f.truncatedDropped, 1);
    assert.equal(f.bufferedBytes, 0);
  });

  it('never completes a truncated ADU with the next one in the same chunk (pipelined answers, issue 8)', () => {
    // With several requests in flight a device writes its answers back to back, and a truncated one
    // reaches the client in one chunk with the next: joined, the next answer's header would read as
    // registers under the truncated answer's transaction id (still outstanding when pipelining).
    const truncatedAnswer = adu(10, 1, '0308' + '00d800d800d800d8');
    const nextAnswer = adu(11, 1, '0308' + '012cfed300065a5a');
    for (let kept = 1; kept < truncatedAnswer.length; kept++) {
      const { f, frames, errors } = framer();
      f.push(Buffer.concat([truncatedAnswer.subarray(0, kept), nextAnswer]));
      assert.deepEqual(frames.filter((frame) => frame.tid === 10 || frame.pdu !== '0308012cfed300065a5a'), [], `first ${kept} bytes`);
      assert.equal(errors.length + f.bufferedBytes > 0, true, `first ${kept} bytes: the stream is known to be out of step or waits`);
    }
  });

  it('never completes a truncated ADU with the first bytes of a truncated next one (pipelined answers, issue 8)', () => {
    // Seen with the chaos device and maxInFlight 2: 15 bytes of tid 0x016d's answer, then 8 bytes of
    // tid 0x016e's; joined, tid 0x016d read [1825, 1825, 1825, 366] (366: the next transaction id).
    const { f, frames, errors } = framer();
    f.push(Buffer.from('016d0000000b010308072107210721', 'hex'));
    f.push(Buffer.from('016e0000000b0103', 'hex'));
    assert.deepEqual(frames, []);
    assert.deepEqual(errors, ['out-of-step']);
  });

  it('waits for the rest when length announces more than has arrived (T-MB-01)', () => {
    const { f, frames, errors } = framer();
    f.push(Buffer.from('0001000000100103', 'hex'));
    assert.deepEqual(frames, []);
    assert.deepEqual(errors, []);
    assert.equal(f.bufferedBytes, 8);
  });
});
