/**
 * The byte-level link under a ModbusClient. The client owns queueing, timeouts, the connection
 * state machine and the per-unit breaker; a transport only opens a link, puts one request on the
 * wire and hands back the frames it receives. TCP is implemented here (MBAP framing, Modbus
 * Messaging on TCP/IP Implementation Guide v1.0b); an RTU transport over serialport implements the
 * same interface later (RTU framing by silent interval and CRC, Modbus over Serial Line v1.02
 * §2.5.1, with maxInFlight 1 and the transaction id of the single outstanding request echoed back).
 */
import * as net from 'node:net';
import { MbapFramer, MBAP_HEADER_LENGTH, writeMbapHeader } from './mbap';
import { encodeRequest, ModbusRequest, requestLength } from './pdu';

export interface TransportHandlers {
  /** The link is up; requests may be sent. */
  onOpen(): void;
  /** A response frame: the transaction id it carries (TCP) or echoes (RTU), unit id and PDU. */
  onFrame(transactionId: number, unitId: number, pdu: Buffer): void;
  /** The link is down (or could not be opened). Called once per open(). */
  onClose(error: Error | undefined): void;
  /**
   * Requests held for the end of the turn (see send) were put on the wire now. The client starts
   * their response timeout here: a device cannot answer a request before it is sent, and a loop
   * blocked between send() and the flush must not count against the device.
   */
  onWritten?(): void;
}

export interface ModbusTransport {
  /** Human-readable address, e.g. "tcp://10.0.0.5:502", for messages. */
  readonly address: string;
  /** How many requests the link can carry at once (TCP devices often take only 1). */
  readonly maxInFlight: number;
  open(handlers: TransportHandlers): void;
  /**
   * Encode and send one request. Throws ModbusPduError for a request the spec does not allow. A
   * transport may hold the bytes until the end of the event-loop turn and put every request of
   * the turn on the wire in one write.
   */
  send(transactionId: number, unitId: number, request: ModbusRequest): void;
  /** Tear the link down at once; onClose follows. */
  destroy(): void;
}

export interface TcpTransportOptions {
  host: string;
  port: number;
  /**
   * Outstanding transactions per connection (pipelining; Implementation Guide v1.0b §4.2.1 allows
   * several, answered by transaction id); default 1, since many devices take only one.
   */
  maxInFlight?: number;
  /** TCP keep-alive probe delay, ms (detects a pulled cable on an idle link); default 10 000. */
  keepAliveMs?: number;
}

export class TcpTransport implements ModbusTransport {
  readonly address: string;
  readonly maxInFlight: number;
  private socket: net.Socket | undefined;
  private readonly framer: MbapFramer;
  private handlers: TransportHandlers | undefined;
  /** Request ADUs encoded in this event-loop turn, written together by flush(). */
  private unsent: Buffer[] = [];
  private flushScheduled: NodeJS.Immediate | undefined;

  constructor(private readonly options: TcpTransportOptions) {
    this.address = `tcp://${options.host}:${options.port}`;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.framer = new MbapFramer(
      (tid, unit, pdu) => this.handlers?.onFrame(tid, unit, pdu),
      (error) => this.socket?.destroy(error),
    );
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.framer.reset();
    let failure: Error | undefined;
    // Implementation Guide §4.3.2: disable Nagle so each request leaves at once.
    const socket = net.connect({ host: this.options.host, port: this.options.port, noDelay: true });
    this.socket = socket;
    socket.on('connect', () => {
      socket.setKeepAlive(true, this.options.keepAliveMs ?? 10_000);
      handlers.onOpen();
    });
    socket.on('data', (chunk: Buffer) => this.framer.push(chunk));
    socket.on('error', (error) => {
      failure = error;
    });
    socket.on('close', () => {
      this.framer.stop();
      if (this.socket === socket) {
        this.socket = undefined;
        this.dropUnsent();
      }
      handlers.onClose(failure);
    });
  }

  send(transactionId: number, unitId: number, request: ModbusRequest): void {
    const socket = this.socket;
    if (!socket) throw new Error('transport is not open');
    const pduLength = requestLength(request);
    const adu = Buffer.allocUnsafe(MBAP_HEADER_LENGTH + pduLength);
    writeMbapHeader(adu, 0, transactionId, unitId, pduLength);
    encodeRequest(request, adu, MBAP_HEADER_LENGTH);
    this.unsent.push(adu);
    // One write (one syscall, usually one TCP segment) per event-loop turn, not one per request:
    // the flush runs in the check phase, after every timer and I/O callback of the turn queued
    // its requests.
    this.flushScheduled ??= setImmediate(() => this.flush());
  }

  destroy(): void {
    this.dropUnsent();
    this.socket?.destroy();
  }

  private flush(): void {
    this.flushScheduled = undefined;
    const unsent = this.unsent;
    if (unsent.length === 0) return;
    this.unsent = [];
    // A socket lost meanwhile: the client fails these requests as in flight on the lost link.
    if (!this.socket) return;
    this.socket.write(unsent.length === 1 ? unsent[0] : Buffer.concat(unsent));
    this.handlers?.onWritten?.();
  }

  private dropUnsent(): void {
    clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    this.unsent = [];
  }
}
