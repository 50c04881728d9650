/**
 * One Modbus TCP connection of the scanner: one request at a time, raw PDUs in and out, framed by
 * lib/modbus/mbap.ts. The gateway's ModbusClient is made for polling (queue, reconnects, breaker);
 * a scan wants the opposite — one attempt, no retry, and every way a target misbehaves told apart:
 *
 *   refused          nothing listens (ECONNREFUSED)
 *   connect-timeout  no answer to the connection attempt
 *   timeout          connected, no answer to a request
 *   garbage          bytes that are not MBAP (a wrong protocol id or length): the stream is lost,
 *                    the connection is closed (Implementation Guide v1.0b §3.1.3 has no resync)
 *   reset            the peer reset or closed the connection
 * A frame with another transaction or unit id is ignored (counted), never taken as the answer.
 */
import * as net from 'node:net';
import { MbapFramer, MBAP_HEADER_LENGTH, writeMbapHeader } from '../modbus/mbap';

export type ProbeErrorKind = 'refused' | 'unreachable' | 'connect-timeout' | 'timeout' | 'garbage' | 'reset' | 'closed';

export class ProbeError extends Error {
  constructor(readonly kind: ProbeErrorKind, message: string) {
    super(message);
    this.name = 'ProbeError';
    Object.setPrototypeOf(this, ProbeError.prototype);
  }
}

export interface RawSessionOptions {
  host: string;
  port: number;
  timeoutMs: number;
  connectTimeoutMs: number;
}

export interface RawModbusSession {
  /** Send a request PDU to a unit; resolves with the response PDU (an exception PDU too). */
  exchange(unitId: number, pdu: Buffer): Promise<Buffer>;
  readonly alive: boolean;
  /** Frames ignored because their transaction or unit id matched nothing asked. */
  readonly ignoredFrames: number;
  close(): void;
}

/** A socket error as a ProbeError kind. */
export function socketProblem(error: NodeJS.ErrnoException, where: string): ProbeError {
  switch (error.code) {
    case 'ECONNREFUSED': return new ProbeError('refused', `${where}: connection refused (nothing listens)`);
    case 'ECONNRESET': case 'EPIPE': return new ProbeError('reset', `${where}: connection reset by the peer`);
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'ENOTFOUND': case 'EAI_AGAIN':
      return new ProbeError('unreachable', `${where}: ${error.code === 'ENOTFOUND' ? 'host name not found' : 'unreachable'} (${error.code})`);
    default: return new ProbeError('reset', `${where}: ${error.message}`);
  }
}

export function rawModbusSession(options: RawSessionOptions): Promise<RawModbusSession> {
  const where = `${options.host}:${options.port}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port, noDelay: true });
    let connected = false;
    let alive = true;
    let ignored = 0;
    let transactionId = 0;
    let pending: { tid: number; unitId: number; resolve: (pdu: Buffer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
    const connectTimer = setTimeout(() => {
      socket.destroy();
      reject(new ProbeError('connect-timeout', `${where}: no answer to the connection attempt within ${options.connectTimeoutMs} ms`));
    }, options.connectTimeoutMs);

    const fail = (error: ProbeError) => {
      alive = false;
      socket.destroy();
      if (pending) {
        clearTimeout(pending.timer);
        pending.reject(error);
        pending = undefined;
      }
    };
    const framer = new MbapFramer(
      (tid, unitId, pdu) => {
        if (!pending || tid !== pending.tid || unitId !== pending.unitId) {
          ignored++;
          return;
        }
        clearTimeout(pending.timer);
        const { resolve: done } = pending;
        pending = undefined;
        done(Buffer.from(pdu));
      },
      (error) => fail(new ProbeError('garbage', `${where}: not Modbus TCP (${error.message})`)),
    );
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      const problem = socketProblem(error, where);
      if (!connected) reject(problem);
      else fail(problem);
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      fail(new ProbeError('reset', `${where}: connection closed by the peer`));
    });
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      connected = true;
      resolve({
        get alive() { return alive; },
        get ignoredFrames() { return ignored; },
        exchange(unitId, pdu) {
          if (!alive) return Promise.reject(new ProbeError('closed', `${where}: the connection is closed`));
          if (pending) return Promise.reject(new Error('one request at a time'));
          return new Promise<Buffer>((done, failed) => {
            transactionId = (transactionId + 1) & 0xffff;
            const adu = Buffer.alloc(MBAP_HEADER_LENGTH + pdu.length);
            writeMbapHeader(adu, 0, transactionId, unitId, pdu.length);
            pdu.copy(adu, MBAP_HEADER_LENGTH);
            const timer = setTimeout(() => {
              pending = undefined;
              failed(new ProbeError('timeout', `${where} unit ${unitId}: no answer within ${options.timeoutMs} ms`));
            }, options.timeoutMs);
            pending = { tid: transactionId, unitId, resolve: done, reject: failed, timer };
            socket.write(adu);
          });
        },
        close() {
          alive = false;
          if (pending) fail(new ProbeError('closed', `${where}: closed by the scanner`));
          socket.destroy();
        },
      });
    });
  });
}
