/**
 * A generic Modbus TCP server (Modbus Messaging on TCP/IP Implementation Guide v1.0b §4): it frames
 * requests (lib/modbus/mbap.ts), decodes them (lib/modbus/pdu.ts) and asks a ModbusDataModel for
 * the answer. The simulated plant (sim/) and the tests serve their devices through it.
 *
 * Behaviour:
 * - a ModbusException thrown by the model is answered as an exception response (App Protocol §7);
 *   any other error thrown by the model is answered with 04 server device failure;
 * - unsupported function codes get 01 illegal function; bad quantities 03, bad spans 02 (§6.x);
 *   FC 43/14 Read Device Identification is answered for a model that is a DeviceIdentitySource
 *   (lib/modbus/device-id.ts);
 * - when `model.answers(unit)` is false nothing is sent (a silent device; the client times out);
 * - a connection that sends a malformed MBAP header (garbage) is closed, since a TCP stream has no
 *   way to find the next frame boundary (Implementation Guide §3.1.3).
 * Requests on one connection are answered in order, synchronously; pipelined requests are fine:
 * the answers to the requests that arrived in one chunk leave in one write, in request order.
 */
import * as net from 'node:net';
import { ModbusDataModel, ModbusException, ModbusExceptionCode } from './data-model';
import { answerReadDeviceId } from './device-id';
import { MbapFramer, MBAP_HEADER_LENGTH, writeMbapHeader } from './mbap';
import {
  decodeRequest, encodeException, encodeResponse, EXCEPTION_RESPONSE_LENGTH, ModbusRequest,
  ModbusResponseData, responseLength, tableOf,
} from './pdu';

export interface ModbusTcpServerOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 (default) picks a free port, reported in the handle. */
  port?: number;
  model: ModbusDataModel;
  /** Connections beyond this are refused (closed at once); default 64. */
  maxConnections?: number;
  /** Called when the model throws something that is not a ModbusException (a bug in the model). */
  onModelError?: (error: unknown) => void;
}

export interface ModbusTcpServer {
  readonly host: string;
  readonly port: number;
  /** Number of open client connections. */
  readonly connections: number;
  /** Destroy every open client connection (the server keeps listening): simulates a dropped link. */
  dropConnections(): void;
  /** Stop listening, destroy every connection; resolves once the listening socket is closed. */
  close(): Promise<void>;
}

export async function startModbusTcpServer(options: ModbusTcpServerOptions): Promise<ModbusTcpServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => serveConnection(socket, options, sockets));
  server.maxConnections = options.maxConnections ?? 64;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    host,
    port: address.port,
    get connections() {
      return sockets.size;
    },
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function serveConnection(socket: net.Socket, options: ModbusTcpServerOptions, sockets: Set<net.Socket>): void {
  sockets.add(socket);
  socket.setNoDelay(true); // Implementation Guide §4.3.2: send each response without Nagle delay
  // The answers to the requests of one received chunk (pipelined requests), written together.
  let answers: Buffer[] = [];
  const framer = new MbapFramer(
    (transactionId, unitId, pdu) => {
      const response = answer(options, unitId, pdu);
      if (!response) return;
      writeMbapHeader(response, 0, transactionId, unitId, response.length - MBAP_HEADER_LENGTH);
      answers.push(response);
    },
    () => socket.destroy(),
  );
  socket.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    if (answers.length === 0 || socket.destroyed) {
      answers = [];
      return;
    }
    socket.write(answers.length === 1 ? answers[0] : Buffer.concat(answers));
    answers = [];
  });
  socket.on('error', () => socket.destroy()); // ECONNRESET etc.: the client went away
  socket.on('close', () => {
    framer.stop();
    sockets.delete(socket);
  });
}

/** The whole response ADU (header space left for the caller), or undefined for a silent unit. */
function answer(options: ModbusTcpServerOptions, unitId: number, pdu: Buffer): Buffer | undefined {
  const model = options.model;
  try {
    if (!model.answers(unitId)) return undefined;
    // FC 43/14 for a model that identifies its units (lib/modbus/device-id.ts); others answer 01.
    const identification = answerReadDeviceId(model, unitId, pdu);
    if (identification) return Buffer.concat([Buffer.alloc(MBAP_HEADER_LENGTH), identification]);
    const data = execute(model, unitId, decodeRequest(pdu));
    const adu = Buffer.allocUnsafe(MBAP_HEADER_LENGTH + responseLength(data));
    encodeResponse(data, adu, MBAP_HEADER_LENGTH);
    return adu;
  } catch (error) {
    let code: number = ModbusExceptionCode.ServerDeviceFailure;
    if (error instanceof ModbusException) code = error.code;
    else options.onModelError?.(error);
    const adu = Buffer.allocUnsafe(MBAP_HEADER_LENGTH + EXCEPTION_RESPONSE_LENGTH);
    encodeException(pdu[0] ?? 0, code, adu, MBAP_HEADER_LENGTH);
    return adu;
  }
}

function execute(model: ModbusDataModel, unitId: number, req: ModbusRequest): ModbusResponseData {
  switch (req.fc) {
    case 1: case 2: case 3: case 4: {
      const values = model.read(unitId, tableOf(req.fc), req.address, req.quantity);
      if (!Array.isArray(values) || values.length !== req.quantity) {
        throw new Error(`data model returned ${Array.isArray(values) ? values.length : typeof values} values for quantity ${req.quantity}`);
      }
      return { fc: req.fc, values };
    }
    case 5:
      model.write(unitId, 'coil', req.address, [req.value ? 1 : 0]);
      return { fc: 5, address: req.address, value: req.value };
    case 6:
      model.write(unitId, 'holding', req.address, [req.value]);
      return { fc: 6, address: req.address, value: req.value };
    case 15:
      model.write(unitId, 'coil', req.address, Array.from(req.values, (v) => (v ? 1 : 0)));
      return { fc: 15, address: req.address, quantity: req.values.length };
    case 16:
      model.write(unitId, 'holding', req.address, Array.from(req.values));
      return { fc: 16, address: req.address, quantity: req.values.length };
  }
}
