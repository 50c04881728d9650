/**
 * "Test connection / read once": open a temporary client with link settings that may not be saved
 * yet, read one item, close the client. Time-bounded; answers with the value and the round trip,
 * or with the exact reason (refused, no such serial port, timeout, Modbus exception N, …).
 * Used by the uns-modbus-link editor dialog through an admin endpoint.
 */
import { ModbusClient, ModbusClientError } from './client';
import { ModbusException, ModbusTable } from './data-model';
import { decodeRegisters, ModbusDataType, registerCount, WordOrder } from './datatypes';
import { createModbusClient, describeLink, LinkSettings, validateLinkSettings } from './link-config';
import { bitAt, describeException, readFunctionOf } from './pdu';
import { validateMetricDefinitions } from './read-plan';

export interface ProbeTarget {
  unitId: number;
  table: ModbusTable;
  address: number;
  /** How to show the value; default uint16 (bit for coils and discrete inputs). */
  type?: ModbusDataType;
  wordOrder?: WordOrder;
}

export type ProbeFailure = 'invalid' | 'refused' | 'unreachable' | 'no-port' | 'port-busy' | 'connect-timeout' | 'timeout' | 'exception' | 'error';

export type ProbeResult =
  | {
    ok: true;
    /** The decoded value (BigInt as a decimal string, so it survives JSON). */
    value: number | boolean | string;
    /** The raw registers (or bit) as read. */
    raw: number[];
    /** Request to response, ms (connecting not included). */
    roundTripMs: number;
    connectMs: number;
    link: string;
  }
  | { ok: false; kind: ProbeFailure; error: string; exceptionCode?: number; link: string };

/** Most time a probe may take, whatever the settings say. */
export const PROBE_LIMIT_MS = 15_000;
const CONNECT_TIMEOUT_MS = 3000;

/** Which kind of connection failure an error message names (Node's errno codes and serialport's texts). */
function connectFailureKind(reason: string): ProbeFailure {
  if (/ECONNREFUSED/.test(reason)) return 'refused';
  if (/EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/.test(reason)) return 'unreachable';
  if (/ENOENT|No such file/i.test(reason)) return 'no-port';
  if (/lock|EBUSY|busy/i.test(reason)) return 'port-busy';
  if (/no connection within/.test(reason)) return 'connect-timeout';
  return 'error';
}

export async function probeLink(settings: LinkSettings, target: ProbeTarget): Promise<ProbeResult> {
  const link = describeLink(settings);
  const type = target.type ?? (target.table === 'coil' || target.table === 'discrete' ? 'bit' : 'uint16');
  const problems = [
    ...validateLinkSettings(settings),
    ...(Number.isInteger(target.unitId) && target.unitId >= 0 && target.unitId <= 255 ? [] : [`unit id must be an integer 0..255, got ${String(target.unitId)}`]),
    ...validateMetricDefinitions([{ name: 'probe', table: target.table, address: target.address, type, wordOrder: target.wordOrder }])
      .map((p) => p.replace(/^metric 1 "probe": /, '')),
  ];
  if (problems.length) return { ok: false, kind: 'invalid', error: problems.join('; '), link };

  const timeoutMs = Math.min(settings.timeoutMs ?? 1000, PROBE_LIMIT_MS - CONNECT_TIMEOUT_MS);
  const client = createModbusClient(settings, {
    timeoutMs, connectTimeoutMs: CONNECT_TIMEOUT_MS, reconnectMinMs: PROBE_LIMIT_MS, reconnectMaxMs: PROBE_LIMIT_MS,
  });
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, kind: 'timeout', error: `no result within ${PROBE_LIMIT_MS} ms`, link }), PROBE_LIMIT_MS);
  });
  try {
    return await Promise.race([readOnce(client, target, type, link), limit]);
  } finally {
    clearTimeout(timer);
    client.removeAllListeners();
    await client.close();
  }
}

function readOnce(client: ModbusClient, target: ProbeTarget, type: ModbusDataType, link: string): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    client.once('outage', (e) => resolve({ ok: false, kind: connectFailureKind(e.reason), error: e.reason, link }));
    const onState = (state: string) => {
      if (state !== 'connected') return;
      client.off('state', onState);
      const connectMs = performance.now() - started;
      const fc = readFunctionOf(target.table);
      const quantity = fc <= 2 ? 1 : registerCount(type);
      const sent = performance.now();
      client.submit(target.unitId, { fc, address: target.address, quantity }, (error, response) => {
        const roundTripMs = performance.now() - sent;
        if (error instanceof ModbusException) {
          resolve({ ok: false, kind: 'exception', exceptionCode: error.code, error: describeException(error.code), link });
        } else if (error) {
          resolve({ ok: false, kind: error instanceof ModbusClientError && error.code === 'timeout' ? 'timeout' : 'error', error: error.message, link });
        } else if (response && 'data' in response) {
          const raw = fc <= 2 ? [bitAt(response.data, 0)] : Array.from({ length: quantity }, (_, i) => response.data.readUInt16BE(2 * i));
          const decoded = fc <= 2 ? raw[0] === 1 : decodeRegisters(response.data, 0, type, target.wordOrder, quantity);
          resolve({ ok: true, value: typeof decoded === 'bigint' ? decoded.toString() : decoded, raw, roundTripMs, connectMs, link });
        }
      });
    };
    client.on('state', onState);
  });
}
