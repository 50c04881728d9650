/**
 * MQTT part of the scan, per broker listener (host, port, plain or TLS):
 *
 * - is the port open, and does it speak MQTT: a CONNECT of MQTT 3.1.1 (§3.1) with a fresh client id,
 *   clean session, no user name and no password, answered by a CONNACK (§3.2);
 * - anonymous login: CONNACK return code 0 = accepted; 4 (bad user name or password) or 5 (not
 *   authorised) = refused (§3.2.2.3). An accepted probe disconnects at once (DISCONNECT, §3.14): it
 *   never subscribes or publishes;
 * - TLS listeners: the server certificate (subject, issuer, validity, self-signed) and the TLS
 *   version, read without verifying the chain (a scan reports the certificate, it does not trust it).
 *
 * The packets are written by hand (a few bytes) so the probe controls every byte and timer: a target
 * that answers garbage, never answers or resets the connection ends up in `problem`.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { describeCertificate } from '../opcua/certificates';
import type { MqttListener } from './inventory';
import { certificateSummary } from './opcua-scan';
import { socketProblem } from './modbus-session';
import type { ProbePacer } from './pacer';

export interface MqttProbeTarget {
  host: string;
  port: number;
  tls: boolean;
  source: string;
}

export interface MqttScanOptions {
  timeoutMs: number;
  pacer: ProbePacer;
  signal?: AbortSignal;
}

/** CONNECT, MQTT 3.1.1 §3.1: protocol name "MQTT", level 4, flags clean session, keep alive 10 s. */
export function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x0a]);
  const remaining = variable.length + 2 + id.length;
  return Buffer.concat([Buffer.from([0x10, remaining]), variable, Buffer.from([id.length >> 8, id.length & 0xff]), id]);
}
const DISCONNECT = Buffer.from([0xe0, 0x00]);

const CONNACK_CODES: Record<number, string> = {
  0: 'accepted', 1: 'unacceptable protocol version', 2: 'identifier rejected', 3: 'server unavailable',
  4: 'bad user name or password', 5: 'not authorised',
};

export async function probeMqttListener(target: MqttProbeTarget, options: MqttScanOptions): Promise<MqttListener> {
  const result: MqttListener = { host: target.host, port: target.port, tls: target.tls, source: target.source, open: false, mqtt: false };
  await options.pacer.next(options.signal);
  const where = `${target.host}:${target.port}`;
  await new Promise<void>((resolve) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (problem?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (problem) result.problem = problem;
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(() => finish(result.open ? `${where}: no CONNACK within ${options.timeoutMs} ms` : `${where}: no answer to the connection attempt within ${options.timeoutMs} ms`), options.timeoutMs);
    const socket: net.Socket = target.tls
      ? tls.connect({ host: target.host, port: target.port, rejectUnauthorized: false, ...(net.isIP(target.host) ? {} : { servername: target.host }) })
      : net.connect({ host: target.host, port: target.port });
    socket.once(target.tls ? 'secureConnect' : 'connect', () => {
      result.open = true;
      if (socket instanceof tls.TLSSocket) {
        result.tlsProtocol = socket.getProtocol() ?? undefined;
        const peer = socket.getPeerX509Certificate();
        if (peer) result.certificate = certificateSummary(describeCertificate(peer));
      }
      socket.write(connectPacket(`uns-edge-scan-${randomBytes(4).toString('hex')}`));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]).subarray(0, 64);
      if (received.length < 4) return;
      if (received[0] !== 0x20 || received[1] !== 0x02) {
        finish(`${where}: answered ${received.subarray(0, 8).toString('hex')} to CONNECT: not an MQTT 3.1.1 CONNACK`);
        return;
      }
      result.mqtt = true;
      result.anonymousReturnCode = received[3];
      result.anonymousAccepted = received[3] === 0;
      if (received[3] > 5) result.problem = `${where}: CONNACK return code ${received[3]} is not defined by MQTT 3.1.1`;
      else if (received[3] !== 0) result.problem = `anonymous login refused: ${CONNACK_CODES[received[3]]}`;
      if (received[3] === 0) socket.write(DISCONNECT);
      socket.end();
      finish();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(socketProblem(error, where).message));
    socket.on('close', () => finish(result.open && !result.mqtt ? `${where}: closed the connection without a CONNACK` : undefined));
  });
  return result;
}
