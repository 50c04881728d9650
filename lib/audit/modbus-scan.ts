/**
 * Modbus TCP part of the scan: per listed host and port, per listed unit id —
 *
 * 1. FC 43/14 Read Device Identification, regular stream (Modbus Application Protocol v1.1b3 §6.21):
 *    vendor, product code, revision and the optional regular objects. This is also the presence
 *    check: a timeout marks the unit silent, exception 0A/0B (gateway path unavailable / target
 *    failed to respond, §7) marks it absent; either way the unit gets no further request.
 * 2. A probe of which function codes answer, with requests that change nothing: FC 1, 2, 3, 4
 *    (read one item at address 0), FC 17 Report Server ID. Exception 01 means "not implemented";
 *    any other exception means the function exists (the address may just not be mapped).
 *    Writes (FC 5, 6, 15, 16, 22, 23) and diagnostics (FC 8: sub-function 4 forces listen-only
 *    mode) are never sent: a scan must not change the process.
 *
 * Every request waits for the pacer. A unit whose FC 43 answer is garbage gets no further request;
 * a target that answers garbage or resets the connection is reconnected for the next unit, at most MAX_RECONNECTS times per host; then the host's scan stops
 * with the reason. Nothing here throws for a misbehaving target: it ends up in the inventory.
 */
import { ModbusException } from '../modbus/data-model';
import { DeviceIdFormatError, readDeviceIdentification } from '../modbus/device-id';
import { EXCEPTION_FLAG, exceptionName } from '../modbus/pdu';
import type { FunctionCodeProbe, ModbusHost, ModbusUnit } from './inventory';
import { ProbeError, rawModbusSession, type RawModbusSession } from './modbus-session';
import type { ProbePacer } from './pacer';
import type { ScanTarget } from './targets';

/** The read-only probes: request PDU per function code. */
const FUNCTION_PROBES: ReadonlyArray<{ fc: number; pdu: Buffer }> = [
  { fc: 1, pdu: Buffer.from([1, 0, 0, 0, 1]) },
  { fc: 2, pdu: Buffer.from([2, 0, 0, 0, 1]) },
  { fc: 3, pdu: Buffer.from([3, 0, 0, 0, 1]) },
  { fc: 4, pdu: Buffer.from([4, 0, 0, 0, 1]) },
  { fc: 17, pdu: Buffer.from([17]) },
];
const FC_DEVICE_ID = 43;
const MAX_RECONNECTS = 3;
const ABSENT_EXCEPTIONS = new Set([0x0a, 0x0b]);

export interface ModbusScanOptions {
  units: readonly number[];
  timeoutMs: number;
  connectTimeoutMs: number;
  pacer: ProbePacer;
  signal?: AbortSignal;
  /** Called after each unit (progress). */
  onUnit?: (target: ScanTarget, unitId: number) => void;
}

/** The answer to one probe PDU, classified. */
function classify(fc: number, response: Buffer): FunctionCodeProbe {
  if (response[0] === fc) return { fc, answer: 'answers' };
  if (response[0] === (fc | EXCEPTION_FLAG) && response.length >= 2) {
    return response[1] === 1 ? { fc, answer: 'illegal-function' } : { fc, answer: 'exception', exception: response[1] };
  }
  return { fc, answer: 'garbage' };
}

export async function scanModbusHost(target: ScanTarget, options: ModbusScanOptions): Promise<ModbusHost> {
  const result: ModbusHost = { host: target.host, port: target.port, reachable: false, units: [], silentUnits: [], absentUnits: [] };
  let session: RawModbusSession | undefined;
  let reconnects = 0;
  const open = async (): Promise<RawModbusSession> => {
    if (session?.alive) return session;
    if (session && ++reconnects > MAX_RECONNECTS) throw new Error(`gave up after ${MAX_RECONNECTS} broken connections`);
    await options.pacer.next(options.signal);
    session = await rawModbusSession({ host: target.host, port: target.port, timeoutMs: options.timeoutMs, connectTimeoutMs: options.connectTimeoutMs });
    result.reachable = true;
    return session;
  };
  /** One paced exchange on a live session (reconnecting if the last one broke). */
  const exchange = async (unitId: number, pdu: Buffer): Promise<Buffer> => {
    const live = await open();
    await options.pacer.next(options.signal);
    return live.exchange(unitId, pdu);
  };

  try {
    for (const unitId of options.units) {
      options.signal?.throwIfAborted();
      let unit: Awaited<ReturnType<typeof scanUnit>>;
      try {
        unit = await scanUnit(unitId, exchange);
      } catch (error) {
        // A connection that broke under this unit (reset, garbage): noted, the next unit reconnects.
        if (!(error instanceof ProbeError) || !session) throw error;
        unit = { unitId, functionCodes: [], identityProblem: error.message };
      }
      if (unit === 'silent') result.silentUnits.push(unitId);
      else if (unit === 'absent') result.absentUnits.push(unitId);
      else result.units.push(unit);
      options.onUnit?.(target, unitId);
    }
  } catch (error) {
    if (options.signal?.aborted) throw error;
    result.problem = (error as Error).message;
  } finally {
    session?.close();
  }
  return result;
}

/** A unit: its identity and function codes, or 'silent' / 'absent'. A broken connection propagates (ProbeError). */
async function scanUnit(unitId: number, exchange: (unitId: number, pdu: Buffer) => Promise<Buffer>): Promise<ModbusUnit | 'silent' | 'absent'> {
  const unit: ModbusUnit = { unitId, functionCodes: [] };
  try {
    const read = await readDeviceIdentification(exchange, unitId);
    unit.identity = read.identity;
    unit.identityObjects = read.objects;
    unit.functionCodes.push({ fc: FC_DEVICE_ID, answer: 'answers' });
  } catch (error) {
    if (error instanceof ModbusException) {
      if (ABSENT_EXCEPTIONS.has(error.code)) return 'absent';
      unit.functionCodes.push(error.code === 1 ? { fc: FC_DEVICE_ID, answer: 'illegal-function' } : { fc: FC_DEVICE_ID, answer: 'exception', exception: error.code });
      unit.identityProblem = error.code === 1 ? 'FC 43/14 not supported (exception 01)' : `FC 43/14 answered exception ${error.code} (${exceptionName(error.code)})`;
    } else if (error instanceof ProbeError && error.kind === 'timeout') {
      return 'silent';
    } else if (error instanceof DeviceIdFormatError || (error instanceof ProbeError && error.kind === 'garbage')) {
      // Not Modbus, or not sensibly: no further request to it.
      unit.functionCodes.push({ fc: FC_DEVICE_ID, answer: 'garbage' });
      unit.identityProblem = `malformed FC 43/14 answer: ${error.message}`;
      return unit;
    } else {
      throw error;
    }
  }
  for (const probe of FUNCTION_PROBES) {
    try {
      unit.functionCodes.push(classify(probe.fc, await exchange(unitId, probe.pdu)));
    } catch (error) {
      if (!(error instanceof ProbeError)) throw error;
      if (error.kind === 'timeout') unit.functionCodes.push({ fc: probe.fc, answer: 'no-answer' });
      else if (error.kind === 'garbage') unit.functionCodes.push({ fc: probe.fc, answer: 'garbage' });
      else throw error;
    }
  }
  return unit;
}
