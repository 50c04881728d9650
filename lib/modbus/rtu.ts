/**
 * Modbus RTU over a serial line (Modbus over Serial Line Specification and Implementation Guide
 * v1.02): CRC-16, the master's response framer, line timing and RtuTransport (a ModbusTransport on
 * the `serialport` package).
 *
 * RTU frame (§2.5.1): address (1 byte) + PDU + CRC-16 (2 bytes, low byte first), at most 256 bytes.
 * Frames are separated by a silent interval of at least 3.5 character times (§2.5.1.1); above
 * 19200 baud the fixed values t1.5 = 750 µs and t3.5 = 1.750 ms apply.
 *
 * How this master frames responses: the bus carries one request at a time (maxInFlight 1) and the
 * master knows which unit and function code must answer, so the response length follows from the
 * function code (exception 5 bytes, FC1–4 5 + byte count, FC5/6/15/16 8 bytes). Timing alone
 * cannot frame reliably in Node: timers and USB-serial adapters deliver bytes in bursts with
 * millisecond jitter, far above t1.5 at 19200 baud. Silence is still used where it is safe:
 * - before sending, the line must have been quiet for t3.5 since the last byte received and the end
 *   of our own last frame (§2.5.1.1), so a late answer still arriving delays the next request
 *   instead of being taken for its answer;
 * - bytes older than max(t3.5, 20 ms) when new bytes arrive are leftovers and are dropped (no valid
 *   frame has a gap above t1.5 inside it).
 * Resynchronisation: bytes that cannot start the expected response (wrong address, wrong function)
 * are dropped one at a time; a candidate with a bad CRC is counted (stats.crcErrors) and dropped
 * byte by byte as well, so garbage before a good frame does not lose the frame. Unit 0 (broadcast,
 * §2.1) gets no answer on RTU and is refused.
 */
import type { SerialPort as SerialPortClass } from 'serialport';
import { EXCEPTION_FLAG, encodeRequest, ModbusRequest, requestLength } from './pdu';
import { ModbusTransport, TransportHandlers } from './transport';

// ---------------------------------------------------------------------------------------------
// CRC-16 (Serial Line v1.02 §2.5.1.2 and Appendix B: polynomial 0xA001 reflected, preset 0xFFFF)

const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
    table[n] = crc;
  }
  return table;
})();

/** CRC-16/MODBUS of buf[start..end). Sent low byte first. */
export function crc16(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]) & 0xff];
  return crc;
}

/** §2.5.1: 256 bytes at most (address + 253-byte PDU + CRC). */
export const MAX_RTU_ADU_LENGTH = 256;

/** The RTU ADU of a request: unit id, PDU, CRC low byte, CRC high byte. */
export function encodeRtuRequest(unitId: number, request: ModbusRequest): Buffer {
  const adu = Buffer.allocUnsafe(requestLength(request) + 3);
  adu[0] = unitId;
  encodeRequest(request, adu, 1);
  const crc = crc16(adu, 0, adu.length - 2);
  adu[adu.length - 2] = crc & 0xff;
  adu[adu.length - 1] = crc >>> 8;
  return adu;
}

/**
 * Length of the response ADU starting at buf[0] for function code fc, once enough is known:
 * undefined while the byte count has not arrived yet, -1 for a function code without a known
 * response length.
 */
export function rtuResponseLength(buf: Uint8Array, length: number): number | undefined {
  const fc = buf[1];
  if (fc & EXCEPTION_FLAG) return 5; // address, fc|0x80, exception code, CRC (App Protocol §7)
  switch (fc) {
    case 1: case 2: case 3: case 4:
      return length < 3 ? undefined : 5 + buf[2]; // address, fc, byte count, data, CRC (§6.1–§6.4)
    case 5: case 6: case 15: case 16:
      return 8; // address, fc, address, value/quantity, CRC (§6.5, §6.6, §6.11, §6.12)
    default:
      return -1;
  }
}

// ---------------------------------------------------------------------------------------------
// Timing

export type Parity = 'none' | 'even' | 'odd';

export interface SerialSettings {
  baudRate: number;
  dataBits: 8;
  parity: Parity;
  stopBits: 1 | 2;
}

export interface RtuTiming {
  /** One character (start + data + parity + stop bits), ms. */
  charMs: number;
  /** Longest gap allowed inside a frame, ms (§2.5.1.1). */
  t15Ms: number;
  /** Shortest silence between frames, ms (§2.5.1.1). */
  t35Ms: number;
}

/** §2.5.1.1: t1.5 and t3.5 from the character time; fixed 0.75 / 1.75 ms above 19200 baud. */
export function rtuTiming(s: SerialSettings): RtuTiming {
  const bits = 1 + s.dataBits + (s.parity === 'none' ? 0 : 1) + s.stopBits;
  const charMs = (bits * 1000) / s.baudRate;
  if (s.baudRate > 19200) return { charMs, t15Ms: 0.75, t35Ms: 1.75 };
  return { charMs, t15Ms: 1.5 * charMs, t35Ms: 3.5 * charMs };
}

// ---------------------------------------------------------------------------------------------
// Response framer (master side)

export interface RtuFramerStats {
  /** Candidates with the expected address, function and length whose CRC did not match. */
  crcErrors: number;
  /** Bytes dropped: noise, leftovers, answers nobody waits for, frames of another unit. */
  discardedBytes: number;
}

export class RtuResponseFramer {
  readonly stats: RtuFramerStats = { crcErrors: 0, discardedBytes: 0 };
  /** When the last byte arrived (performance.now() ms). */
  lastByteAt = -Infinity;
  private readonly buffer = Buffer.alloc(2 * MAX_RTU_ADU_LENGTH);
  private length = 0;
  private expected: { unitId: number; fc: number } | undefined;

  /** `staleMs`: bytes older than this when new ones arrive are leftovers. */
  constructor(private readonly onFrame: (unitId: number, pdu: Buffer) => void, private readonly staleMs: number) {}

  /** A request to `unitId` with function `fc` is on the wire: only its response is framed; older bytes are dropped. */
  expect(unitId: number, fc: number): void {
    this.discard(this.length);
    this.expected = { unitId, fc };
  }

  /** No response is awaited any more (timeout, close): everything that arrives is dropped. */
  cancel(): void {
    this.expected = undefined;
  }

  push(chunk: Buffer, now: number): void {
    if (this.length > 0 && now - this.lastByteAt > this.staleMs) this.discard(this.length);
    this.lastByteAt = now;
    let offset = 0;
    while (offset < chunk.length) {
      // Keep at most two ADUs: the oldest bytes go first when noise floods the line.
      if (this.length === this.buffer.length) this.discard(MAX_RTU_ADU_LENGTH);
      const n = Math.min(chunk.length - offset, this.buffer.length - this.length);
      chunk.copy(this.buffer, this.length, offset, offset + n);
      this.length += n;
      offset += n;
      this.scan();
    }
  }

  private scan(): void {
    while (this.length >= 2) {
      const expected = this.expected;
      if (!expected) {
        this.discard(this.length);
        return;
      }
      const b = this.buffer;
      if (b[0] !== expected.unitId || (b[1] !== expected.fc && b[1] !== (expected.fc | EXCEPTION_FLAG))) {
        this.discard(1);
        continue;
      }
      const need = rtuResponseLength(b, this.length);
      if (need === undefined) return;
      if (need < 5 || need > MAX_RTU_ADU_LENGTH) {
        this.discard(1);
        continue;
      }
      if (this.length < need) return;
      if (crc16(b, 0, need - 2) !== b.readUInt16LE(need - 2)) {
        this.stats.crcErrors++;
        this.discard(1);
        continue;
      }
      const pdu = Buffer.from(b.subarray(1, need - 2)); // a copy: the buffer is reused
      this.expected = undefined;
      this.remove(need);
      this.discard(this.length); // one answer per request: what follows it is noise
      this.onFrame(expected.unitId, pdu);
      return;
    }
  }

  /** Drop n bytes that are not (part of) the awaited response, counted. */
  private discard(n: number): void {
    if (n <= 0) return;
    this.stats.discardedBytes += n;
    this.remove(n);
  }

  private remove(n: number): void {
    this.buffer.copy(this.buffer, 0, n, this.length);
    this.length -= n;
  }

  reset(): void {
    this.length = 0;
    this.expected = undefined;
    this.lastByteAt = -Infinity;
  }
}

// ---------------------------------------------------------------------------------------------
// Transport

export interface RtuTransportOptions extends Partial<SerialSettings> {
  /** Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/… */
  path: string;
}

/** Serial defaults of Serial Line v1.02 §2.5.1 and §3.3.3: 19200 baud, 8 data bits, even parity, 1 stop bit. */
export const RTU_DEFAULTS: SerialSettings = { baudRate: 19200, dataBits: 8, parity: 'even', stopBits: 1 };

/** Problems with serial settings (empty when valid). */
export function validateSerialSettings(o: Partial<SerialSettings> & { path?: string }): string[] {
  const problems: string[] = [];
  if (typeof o.path !== 'string' || o.path.trim() === '') problems.push('serial port path is empty');
  if (o.baudRate !== undefined && !(Number.isInteger(o.baudRate) && o.baudRate >= 50 && o.baudRate <= 4_000_000)) {
    problems.push(`baud rate must be an integer 50..4000000, got ${String(o.baudRate)}`);
  }
  if (o.dataBits !== undefined && (o.dataBits as number) !== 8) {
    problems.push(`RTU needs 8 data bits (Serial Line §2.5.1), got ${String(o.dataBits)}; 7 bits is ASCII mode, which is not supported`);
  }
  if (o.parity !== undefined && !['none', 'even', 'odd'].includes(o.parity)) problems.push(`parity must be none, even or odd, got ${String(o.parity)}`);
  if (o.stopBits !== undefined && o.stopBits !== 1 && o.stopBits !== 2) problems.push(`stop bits must be 1 or 2, got ${String(o.stopBits)}`);
  return problems;
}

/** `serialport` is loaded on the first RTU open, so a platform without its binding still runs TCP links. */
function loadSerialPort(): typeof SerialPortClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('serialport') as typeof import('serialport')).SerialPort;
}

/** The serial ports the OS reports (for the editor's port list); loads serialport. */
export async function listSerialPorts(): Promise<Array<{ path: string; manufacturer?: string; serialNumber?: string }>> {
  const ports = await loadSerialPort().list();
  return ports.map((p) => ({ path: p.path, manufacturer: p.manufacturer, serialNumber: p.serialNumber }));
}

const STALE_BYTES_MIN_MS = 20;

export class RtuTransport implements ModbusTransport {
  readonly address: string;
  /** A serial line is a bus: one request at a time (Serial Line §2.1, unicast mode). */
  readonly maxInFlight = 1;
  readonly settings: SerialSettings;
  readonly timing: RtuTiming;
  private readonly framer: RtuResponseFramer;
  private port: SerialPortClass | undefined;
  private handlers: TransportHandlers | undefined;
  private transactionId = 0;
  /** When our last frame has left the UART (estimate from its length), performance.now() ms. */
  private transmitEndsAt = -Infinity;
  private sendTimer: NodeJS.Timeout | undefined;
  private destroyed = false;

  constructor(private readonly options: RtuTransportOptions) {
    this.settings = {
      baudRate: options.baudRate ?? RTU_DEFAULTS.baudRate,
      dataBits: 8,
      parity: options.parity ?? RTU_DEFAULTS.parity,
      stopBits: options.stopBits ?? RTU_DEFAULTS.stopBits,
    };
    const s = this.settings;
    this.address = `rtu://${options.path}@${s.baudRate},8${s.parity[0].toUpperCase()}${s.stopBits}`;
    this.timing = rtuTiming(s);
    this.framer = new RtuResponseFramer(
      (unitId, pdu) => this.handlers?.onFrame(this.transactionId, unitId, pdu),
      Math.max(this.timing.t35Ms, STALE_BYTES_MIN_MS),
    );
  }

  get stats(): RtuFramerStats {
    return this.framer.stats;
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.destroyed = false;
    this.framer.reset();
    const problems = validateSerialSettings({ ...this.settings, dataBits: this.options.dataBits, path: this.options.path });
    if (problems.length) {
      setImmediate(() => handlers.onClose(new Error(problems.join('; '))));
      return;
    }
    let SerialPort: typeof SerialPortClass;
    try {
      SerialPort = loadSerialPort();
    } catch (error) {
      setImmediate(() => handlers.onClose(new Error(`the serialport package could not load: ${(error as Error).message}`)));
      return;
    }
    const s = this.settings;
    const port = new SerialPort({
      path: this.options.path, baudRate: s.baudRate, dataBits: s.dataBits, parity: s.parity, stopBits: s.stopBits, autoOpen: false,
    });
    this.port = port;
    let failure: Error | undefined;
    let closed = false;
    const finish = (error: Error | undefined) => {
      if (closed) return;
      closed = true;
      clearTimeout(this.sendTimer);
      this.sendTimer = undefined;
      this.framer.cancel();
      if (this.port === port) this.port = undefined;
      port.removeAllListeners();
      port.on('error', () => undefined); // a late error of a port being torn down is not news
      handlers.onClose(error);
    };
    port.on('data', (chunk: Buffer) => this.framer.push(chunk, performance.now()));
    port.on('error', (error: Error) => {
      failure = error;
    });
    port.on('close', (error: Error | null) => finish(error ?? failure));
    port.open((error) => {
      if (error) {
        finish(error);
        return;
      }
      if (this.destroyed) {
        port.close(() => finish(undefined));
        return;
      }
      handlers.onOpen();
    });
  }

  send(transactionId: number, unitId: number, request: ModbusRequest): void {
    if (!this.port?.isOpen) throw new Error('serial port is not open');
    if (unitId === 0) throw new Error('unit 0 is broadcast on RTU and gets no response (Serial Line §2.1); use the unit\'s address 1..247');
    if (unitId > 247) throw new Error(`RTU unit addresses are 1..247 (Serial Line §2.2), got ${unitId}`);
    const adu = encodeRtuRequest(unitId, request);
    // One request on the bus: a new send means the previous one was answered or timed out. If the
    // previous one is still waiting for silence, it is dropped: the client has already failed it.
    clearTimeout(this.sendTimer);
    this.writeWhenQuiet(adu, transactionId, unitId, request.fc);
  }

  /**
   * §2.5.1.1: a frame starts after at least t3.5 of silence on the line (received or sent). Until
   * it leaves, a late answer to the previous request is still framed under the previous
   * transaction id (and discarded by the client), never under this one.
   */
  private writeWhenQuiet(adu: Buffer, transactionId: number, unitId: number, fc: number): void {
    this.sendTimer = undefined;
    const port = this.port;
    if (!port) return;
    const quietAt = Math.max(this.framer.lastByteAt, this.transmitEndsAt) + this.timing.t35Ms;
    const wait = quietAt - performance.now();
    if (wait > 0) {
      this.sendTimer = setTimeout(() => this.writeWhenQuiet(adu, transactionId, unitId, fc), Math.ceil(wait));
      return;
    }
    this.transactionId = transactionId;
    this.framer.expect(unitId, fc);
    port.write(adu, (error) => {
      if (error && this.port === port) this.destroy(); // a dead line: the client reconnects with back-off
    });
    this.transmitEndsAt = performance.now() + adu.length * this.timing.charMs;
    // The wait for a quiet line does not count against the device's response timeout.
    this.handlers?.onWritten?.();
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    const port = this.port;
    if (port?.isOpen) port.close();
  }
}
