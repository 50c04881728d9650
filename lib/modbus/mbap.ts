/**
 * MBAP framing for Modbus TCP (Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3).
 *
 *   transaction id (2) | protocol id (2, 0 = Modbus) | length (2) | unit id (1) | PDU (length − 1)
 *
 * `length` counts the unit id and the PDU, so a valid frame has 2 ≤ length ≤ 254 (a PDU of 1..253
 * bytes, §4.1 of the Application Protocol; the TCP ADU is at most 260 bytes).
 *
 * MbapFramer is incremental: feed it the chunks a TCP socket delivers, in order. It delivers every
 * complete ADU, whether two arrive in one segment or one is split over several, and reports
 * malformed input with a typed code. After an error the stream has lost sync and cannot be
 * re-framed (§3.1.3 has no resync marker), so the framer stops; the caller closes the connection.
 *
 * A truncated ADU (a device that sends the first bytes of an answer and never the rest) would
 * otherwise be completed by the first bytes of the next ADU: Modbus TCP has no checksum, so the
 * spliced frame could carry the next frame's header as register values under the truncated
 * frame's transaction id. A device writes each ADU at once, so a chunk that is on its own exactly
 * one or more whole, valid ADUs starts a new ADU: the partial bytes before it are dropped and
 * counted (truncatedDropped), never joined with it. With several requests in flight (§4.2.1) the
 * truncated ADU and the next answer often arrive in one chunk, or the next answer is truncated too:
 * the spliced ADU is then followed by the rest of the next one, bytes that cannot start an ADU. An
 * ADU followed by such bytes is not delivered (fail closed: the stream is out of step, whatever came
 * before it may be a splice) and the stream is reported out of step ('out-of-step'). A splice that
 * leaves fewer than 3 bytes after it cannot be told from a good ADU: Modbus TCP has no checksum.
 */

export const MBAP_HEADER_LENGTH = 7;
/** length field bounds: unit id + 1..253 PDU bytes. */
export const MBAP_MIN_LENGTH = 2;
export const MBAP_MAX_LENGTH = 254;
export const MAX_TCP_ADU_LENGTH = 6 + MBAP_MAX_LENGTH; // 260
const MODBUS_PROTOCOL_ID = 0;

export type MbapErrorCode = 'protocol-id' | 'length-too-short' | 'length-too-long' | 'out-of-step';

export class MbapFrameError extends Error {
  constructor(readonly code: MbapErrorCode, message: string) {
    super(message);
    this.name = 'MbapFrameError';
    Object.setPrototypeOf(this, MbapFrameError.prototype);
  }
}

/**
 * Called once per complete ADU. `pdu` is a view into the received bytes: it stays valid (the
 * framer never reuses memory it has delivered), so it may be kept without a copy.
 */
export type FrameHandler = (transactionId: number, unitId: number, pdu: Buffer) => void;
export type FrameErrorHandler = (error: MbapFrameError) => void;

export class MbapFramer {
  /** Partial ADUs dropped because the next chunk was a whole ADU of its own (a truncated frame). */
  truncatedDropped = 0;
  private pending: Buffer | undefined;
  private failed = false;

  constructor(private readonly onFrame: FrameHandler, private readonly onError: FrameErrorHandler) {}

  /** Bytes received but not yet framed (an incomplete ADU). */
  get bufferedBytes(): number {
    return this.pending ? this.pending.length : 0;
  }

  /** Whether a framing error was reported; the framer ignores further input. */
  get hasFailed(): boolean {
    return this.failed;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    if (this.pending && isWholeAdus(chunk)) {
      this.truncatedDropped++;
      this.pending = undefined;
    }
    // A partial ADU is at most 259 bytes, so joining it with the next chunk costs little; the
    // common case (whole ADUs per chunk) frames straight from the chunk without a copy.
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (buf.length - offset >= MBAP_HEADER_LENGTH) {
      const protocolId = (buf[offset + 2] << 8) | buf[offset + 3];
      const length = (buf[offset + 4] << 8) | buf[offset + 5];
      const error = protocolId !== MODBUS_PROTOCOL_ID
        ? new MbapFrameError('protocol-id', `MBAP protocol id ${protocolId}, expected 0`)
        : length < MBAP_MIN_LENGTH
          ? new MbapFrameError('length-too-short', `MBAP length ${length}, at least ${MBAP_MIN_LENGTH} expected`)
          : length > MBAP_MAX_LENGTH
            ? new MbapFrameError('length-too-long', `MBAP length ${length}, at most ${MBAP_MAX_LENGTH} allowed`)
            : undefined;
      if (error) {
        this.failed = true;
        this.onError(error);
        return;
      }
      const end = offset + 6 + length;
      if (end > buf.length) break;
      if (!startsAdu(buf, end)) {
        this.failed = true;
        this.onError(new MbapFrameError('out-of-step', 'MBAP stream out of step: a frame is followed by bytes that cannot start one (a truncated frame completed by the next?)'));
        return;
      }
      const transactionId = (buf[offset] << 8) | buf[offset + 1];
      this.onFrame(transactionId, buf[offset + 6], buf.subarray(offset + MBAP_HEADER_LENGTH, end));
      if (this.failed) return; // the handler stopped the framer (its connection closed)
      offset = end;
    }
    if (offset < buf.length) this.pending = buf.subarray(offset);
  }

  /** Forget any partial ADU and any error (a new connection starts a new stream). */
  reset(): void {
    this.pending = undefined;
    this.failed = false;
  }

  /** Stop framing: further input is ignored until reset(). */
  stop(): void {
    this.failed = true;
    this.pending = undefined;
  }
}

/** Whether `chunk` is exactly a sequence of whole ADUs with valid headers (no partial one at the end). */
function isWholeAdus(chunk: Buffer): boolean {
  let offset = 0;
  while (chunk.length - offset >= MBAP_HEADER_LENGTH) {
    const protocolId = (chunk[offset + 2] << 8) | chunk[offset + 3];
    const length = (chunk[offset + 4] << 8) | chunk[offset + 5];
    if (protocolId !== MODBUS_PROTOCOL_ID || length < MBAP_MIN_LENGTH || length > MBAP_MAX_LENGTH) return false;
    offset += 6 + length;
  }
  return offset === chunk.length;
}

/**
 * Whether the bytes of `buf` from `at` can be the start of an ADU (the header fields that have
 * arrived are valid); true at the end of `buf`.
 */
function startsAdu(buf: Buffer, at: number): boolean {
  const n = buf.length - at;
  // protocol id 0 (bytes 2–3), length ≤ 254 (byte 4 = 0, byte 5 ≥ 2)
  return !((n > 2 && buf[at + 2] !== 0) || (n > 3 && buf[at + 3] !== 0) || (n > 4 && buf[at + 4] !== 0) || (n > 5 && buf[at + 5] < MBAP_MIN_LENGTH));
}

/** Write the MBAP header for a PDU of `pduLength` bytes at `buf[offset]`. */
export function writeMbapHeader(buf: Buffer, offset: number, transactionId: number, unitId: number, pduLength: number): void {
  buf[offset] = (transactionId >>> 8) & 0xff;
  buf[offset + 1] = transactionId & 0xff;
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  const length = pduLength + 1;
  buf[offset + 4] = (length >>> 8) & 0xff;
  buf[offset + 5] = length & 0xff;
  buf[offset + 6] = unitId & 0xff;
}
