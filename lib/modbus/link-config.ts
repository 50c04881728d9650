/**
 * The settings of a Modbus link (the uns-modbus-link config node, docs/modbus.md) from the loose
 * values an editor dialog or a flow file holds (numbers as strings, empty for "default"), and the
 * client they describe: Modbus TCP or RTU over a serial port. The link node and the editor's
 * "test connection" endpoint read settings through this one function, so both mean the same.
 */
import { createModbusRtuClient, createModbusTcpClient, ModbusClient, ModbusClientOptions } from './client';
import { Parity, RTU_DEFAULTS, validateSerialSettings } from './rtu';

/** `transport`, not `type`: Node-RED keeps the node type in `type`. */
export type LinkTransport = 'tcp' | 'rtu';

/** Most requests in flight a link may be set to (the editor's limit too). */
export const MAX_IN_FLIGHT = 16;

export interface LinkSettings extends ModbusClientOptions {
  transport: LinkTransport;
  /** TCP */
  host: string;
  port: number;
  /** RTU */
  serialPath: string;
  baudRate: number;
  parity: Parity;
  dataBits: 8;
  stopBits: 1 | 2;
  /** Requests in flight at once on a TCP link (pipelining); 1 = one transaction at a time. */
  maxInFlight: number;
}

/** A number from a config field, or the default when empty/invalid. */
export function configNumber(value: unknown, fallback: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : fallback;
}

/** Settings from a uns-modbus-link config (or the dialog's unsaved values). */
export function linkSettingsFrom(config: Record<string, unknown>): LinkSettings {
  const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  return {
    transport: config.transport === 'rtu' ? 'rtu' : 'tcp',
    host: text(config.host),
    port: configNumber(config.port, 502),
    serialPath: text(config.serialPath),
    baudRate: configNumber(config.baudRate, RTU_DEFAULTS.baudRate),
    parity: (text(config.parity) || RTU_DEFAULTS.parity) as Parity,
    dataBits: configNumber(config.dataBits, RTU_DEFAULTS.dataBits) as 8,
    stopBits: configNumber(config.stopBits, RTU_DEFAULTS.stopBits) as 1 | 2,
    timeoutMs: configNumber(config.timeout, 1000),
    reconnectMinMs: configNumber(config.reconnect, 1000),
    reconnectMaxMs: configNumber(config.reconnectMax, 5000),
    unitFailureThreshold: configNumber(config.breakerTimeouts, 3),
    unitBackoffMs: configNumber(config.breakerBackoff, 5000),
    gapMs: configNumber(config.gap, 0),
    pauseAfterConnectMs: configNumber(config.connectPause, 0),
    maxRegistersPerRequest: Math.min(125, Math.max(1, configNumber(config.maxRegisters, 125))),
    queueLimit: Math.max(1, configNumber(config.queueLimit, 1000)),
    // Pipelining (TCP only: an RTU line carries one request at a time, RtuTransport.maxInFlight 1).
    maxInFlight: Math.min(MAX_IN_FLIGHT, Math.max(1, Math.floor(configNumber(config.maxInFlight, 1)))),
  };
}

/** `${NAME}` or the older `$(NAME)`, the whole value: what Node-RED substitutes in node properties. */
const ENV_REFERENCE = /^\$\{(\S+)\}$|^\$\((\S+)\)$/;

/**
 * The config with environment variable references substituted the way the Node-RED runtime does
 * it when it creates a node (@node-red/runtime flows/util.js mapEnvVarProperties): a string
 * property whose whole value is `${NAME}` (or `$(NAME)`) becomes the value `lookup` gives (the
 * flow's, then the process's environment); an unknown name leaves the text as it is. The "test
 * connection" endpoint gets the dialog's raw text, so it substitutes before reading settings.
 */
export function substituteEnvironment(config: Record<string, unknown>, lookup: (name: string) => unknown): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const match = typeof value === 'string' ? ENV_REFERENCE.exec(value) : null;
    const substituted = match ? lookup(match[1] ?? match[2]) : undefined;
    result[key] = substituted === undefined ? value : substituted;
  }
  return result;
}

/** Every problem with the settings (empty when a client can be made from them). */
export function validateLinkSettings(s: LinkSettings): string[] {
  if (s.transport === 'rtu') {
    return validateSerialSettings({ path: s.serialPath, baudRate: s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits });
  }
  const problems: string[] = [];
  if (/^\$[{(]/.test(s.host)) problems.push(`host ${s.host} names an environment variable that is not set`);
  else if (s.host === '') problems.push('host is empty');
  if (!(Number.isInteger(s.port) && s.port >= 1 && s.port <= 65535)) problems.push(`port must be an integer 1..65535, got ${s.port}`);
  return problems;
}

/** "192.168.0.10:502" or "/dev/ttyUSB0 19200 8E1": for labels and messages. */
export function describeLink(s: LinkSettings): string {
  return s.transport === 'rtu' ? `${s.serialPath} ${s.baudRate} 8${s.parity[0].toUpperCase()}${s.stopBits}` : `${s.host}:${s.port}`;
}

/** A started client for the settings (validate them first). */
export function createModbusClient(s: LinkSettings, overrides: ModbusClientOptions = {}): ModbusClient {
  const options = { ...s, ...overrides };
  return s.transport === 'rtu'
    ? createModbusRtuClient({ ...options, path: s.serialPath })
    : createModbusTcpClient(options);
}
