/**
 * Pieces shared by the Modbus benchmarks: the uns-edge nodes' flow objects for the simulated
 * drive, and a counter hooked on a runtime node's send() (the node's output, with no wire and no
 * extra node in the way, so counting costs both peers the same: one function call).
 */
import type { EmbeddedNodeRed } from './node-red';

/** Input registers 0..15 of the simulated drive (docs/simulated-plant.md), typed as the profile says. */
export const DRIVE_TYPED_METRICS = [
  { name: 'statusWord', table: 'input', address: 0, type: 'uint16' },
  { name: 'faultCode', table: 'input', address: 1, type: 'uint16' },
  { name: 'actualSpeed', table: 'input', address: 2, type: 'int16', unit: 'rpm' },
  { name: 'outputFrequency', table: 'input', address: 3, type: 'int16', scale: 0.01, unit: 'Hz' },
  { name: 'motorCurrent', table: 'input', address: 4, type: 'float32', unit: 'A' },
  { name: 'dcBusVoltage', table: 'input', address: 6, type: 'uint16', scale: 0.1, unit: 'V' },
  { name: 'outputPower', table: 'input', address: 7, type: 'int16', scale: 0.01, unit: 'kW' },
  { name: 'motorTemperature', table: 'input', address: 8, type: 'int16', scale: 0.1, unit: 'degC' },
  { name: 'heatsinkTemperature', table: 'input', address: 9, type: 'int16', scale: 0.1, unit: 'degC' },
  { name: 'vibration', table: 'input', address: 10, type: 'float32', unit: 'mm/s' },
  { name: 'runHours', table: 'input', address: 12, type: 'uint32', scale: 0.001, unit: 'h' },
  { name: 'energy', table: 'input', address: 14, type: 'uint32', wordOrder: 'CDAB', scale: 0.1, unit: 'kWh' },
] as const;

/** The same 16 registers as 16 raw uint16 metrics: exactly what the peer's modbus-read delivers. */
export const DRIVE_RAW_METRICS = Array.from({ length: 16 }, (_, i) => ({
  name: `ir${String(i).padStart(2, '0')}`, table: 'input', address: i, type: 'uint16',
}));

export interface LinkOptions {
  id: string;
  port: number;
  timeoutMs: number;
  reconnectMs: number;
  queueLimit?: number;
}

export function unsLink(o: LinkOptions): object {
  return {
    id: o.id, type: 'uns-modbus-link', name: `bench ${o.id}`, transport: 'tcp', host: '127.0.0.1', port: o.port, timeout: o.timeoutMs,
    reconnect: o.reconnectMs, gap: 0, connectPause: 0, maxRegisters: 125, queueLimit: o.queueLimit ?? 1000,
  };
}

export function unsRead(id: string, tab: string, link: string, unitId: number, intervalMs: number, metrics: readonly object[], y: number): object {
  return {
    id, type: 'uns-modbus-read', z: tab, name: id, link, unitId, interval: intervalMs, topic: `bench/site/area/line/cell/drive${unitId}`,
    mergeGap: 8, metrics, x: 200, y, wires: [],
  };
}

/** node-red-contrib-modbus `modbus-client` (TCP) with the defaults of its editor unless overridden. */
export function contribClient(id: string, port: number, overrides: Record<string, unknown> = {}): object {
  return {
    id, type: 'modbus-client', name: `bench ${id}`, clienttype: 'tcp', bufferCommands: true, stateLogEnabled: false,
    queueLogEnabled: false, failureLogEnabled: true, tcpHost: '127.0.0.1', tcpPort: String(port), tcpType: 'DEFAULT',
    serialPort: '/dev/ttyUSB', serialType: 'RTU-BUFFERD', serialBaudrate: '9600', serialDatabits: '8', serialStopbits: '1', serialParity: 'none',
    serialConnectionDelay: '100', serialAsciiResponseStartDelimiter: '0x3A', unit_id: '1', commandDelay: '1', clientTimeout: '1000',
    reconnectOnTimeout: true, reconnectTimeout: '2000', parallelUnitIdsAllowed: true, ...overrides,
  };
}

/** node-red-contrib-modbus `modbus-read`: input registers 0..15 of one unit every `intervalMs`. */
export function contribRead(id: string, tab: string, client: string, unitId: number, intervalMs: number, y: number): object {
  return {
    id, type: 'modbus-read', z: tab, name: id, topic: '', showStatusActivities: false, logIOActivities: false,
    showErrors: false, unitid: String(unitId), dataType: 'InputRegister', adr: '0', quantity: '16', rate: String(intervalMs), rateUnit: 'ms',
    delayOnStart: false, startDelayTime: '', server: client, useIOFile: false, ioFile: '', useIOForPayload: false, emptyMsgOnFail: false,
    x: 200, y, wires: [[], []],
  };
}

/** The values array of a contrib `modbus-read` output pair ([values msg, raw response msg]). */
export function contribValues(msg: unknown): unknown {
  return (msg as Array<{ payload?: unknown }> | undefined)?.[0]?.payload;
}

/** DC bus voltage of the simulated 400 V drive, about 540–600 V (input register 6, 0.1 V): a decoded value, not zeros. */
export const plausibleDcBus = (volts: number): boolean => volts > 300 && volts < 900;

/** Messages a node sent, counted at its send() (the message is not passed on: the node has no wires). */
export class SendCounter {
  count = 0;
  /** The last message sent, for the value check. */
  last: unknown;

  constructor(red: EmbeddedNodeRed, nodeId: string, public onMessage?: (msg: unknown) => void) {
    const node = red.node<{ send(msg: unknown): void }>(nodeId);
    node.send = (msg: unknown) => {
      this.count++;
      this.last = msg;
      this.onMessage?.(msg);
    };
  }
}
