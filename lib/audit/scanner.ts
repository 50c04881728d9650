/**
 * The asset scan (docs/asset-scan.md): plan from the user's lists (lib/audit/targets.ts — nothing
 * beyond them), then Modbus TCP hosts, OPC UA servers and MQTT listeners one at a time, every probe
 * paced (lib/audit/pacer.ts), then findings (lib/audit/findings.ts). No Node-RED here: the
 * uns-asset-scan node adapts it, a test or a script can call it directly.
 */
import type { ApplicationPki } from '../opcua/pki';
import { packageInfo } from '../runtime/package-info';
import { assess, type Finding, type Severity, severityCounts } from './findings';
import type { Inventory } from './inventory';
import { scanModbusHost } from './modbus-scan';
import { type MqttProbeTarget, probeMqttListener } from './mqtt-scan';
import { scanOpcUaServer } from './opcua-scan';
import { DEFAULT_PROBES_PER_SECOND, ProbePacer } from './pacer';
import { parseAddressList, parsePortField, parseUnitList, type ScanTarget, TargetListError } from './targets';

export const DEFAULT_MODBUS_PORT = 502;
export const DEFAULT_OPCUA_PORT = 4840;
export const DEFAULT_MQTT_PORT = 1883;
export const DEFAULT_MQTT_TLS_PORT = 8883;
export const DEFAULT_UNITS = '1-16';
export const DEFAULT_TIMEOUT_MS = 1000;

/** What the user asked for, as text fields (the node's dialog, a script's options). Empty lists are skipped. */
export interface ScanSettings {
  title?: string;
  probesPerSecond?: number;
  timeoutMs?: number;
  /** The explicit tick: an entry may cover more than a /24. */
  allowLargeRanges?: boolean;
  modbusAddresses?: string;
  modbusPort?: string | number;
  modbusUnits?: string;
  opcuaAddresses?: string;
  opcuaPort?: string | number;
  mqttAddresses?: string;
  mqttPort?: string | number;
  /** Port of the TLS listener probed on each MQTT address; empty = none. */
  mqttTlsPort?: string | number;
  /** Brokers the flows use (uns-broker config nodes), added by the node when its tick is set. */
  flowBrokers?: MqttProbeTarget[];
}

export interface ScanPlan {
  title: string;
  probesPerSecond: number;
  timeoutMs: number;
  modbus: ScanTarget[];
  units: number[];
  opcua: ScanTarget[];
  mqtt: MqttProbeTarget[];
}

export interface ScanReport {
  title: string;
  startedAt: string;
  finishedAt: string;
  scanner: { version: string; probesPerSecond: number; probes: number; units: number[] };
  inventory: Inventory;
  findings: Finding[];
  summary: { findings: Record<Severity, number>; modbusDevices: number; opcuaServers: number; mqttListeners: number; anonymousBrokers: number };
  /** Targets of the plan that could not be scanned (why), e.g. unreachable hosts. */
  refused: string[];
}

export interface ScanProgress {
  done: number;
  total: number;
  what: string;
}

/** The plan of a scan; throws TargetListError naming every bad field and entry. */
export function planScan(settings: ScanSettings): ScanPlan {
  const problems: string[] = [];
  const attempt = <T>(fallback: T, parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof TargetListError)) throw error;
      problems.push(...error.problems);
      return fallback;
    }
  };
  const large = settings.allowLargeRanges === true;
  const probesPerSecond = settings.probesPerSecond ?? DEFAULT_PROBES_PER_SECOND;
  const timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs >= 100 && timeoutMs <= 60_000)) problems.push(`timeout ${timeoutMs} ms: use 100..60000`);
  const list = (text: string | undefined, port: string | number | undefined, fallback: number, what: string): ScanTarget[] => attempt([], () =>
    (text?.trim() ? parseAddressList(text, { defaultPort: parsePortField(port, fallback, `${what} port`), allowLargeRanges: large, what }) : []));
  const modbus = list(settings.modbusAddresses, settings.modbusPort, DEFAULT_MODBUS_PORT, 'Modbus addresses');
  const units = attempt([], () => parseUnitList(settings.modbusUnits?.trim() || DEFAULT_UNITS));
  const opcua = list(settings.opcuaAddresses, settings.opcuaPort, DEFAULT_OPCUA_PORT, 'OPC UA addresses');
  const plain = list(settings.mqttAddresses, settings.mqttPort, DEFAULT_MQTT_PORT, 'MQTT addresses');
  const tlsPort = attempt(undefined, () => (String(settings.mqttTlsPort ?? '').trim() === '' ? undefined : parsePortField(settings.mqttTlsPort, DEFAULT_MQTT_TLS_PORT, 'MQTT TLS port')));
  const mqtt: MqttProbeTarget[] = [];
  const seen = new Set<string>();
  const addMqtt = (target: MqttProbeTarget) => {
    const key = `${target.host}|${target.port}|${target.tls}`;
    if (!seen.has(key)) mqtt.push(target);
    seen.add(key);
  };
  for (const t of plain) {
    addMqtt({ ...t, tls: false, source: 'address list' });
    if (tlsPort !== undefined) addMqtt({ host: t.host, port: tlsPort, tls: true, source: 'address list' });
  }
  for (const broker of settings.flowBrokers ?? []) addMqtt(broker);
  if (problems.length) throw new TargetListError(problems);
  if (modbus.length + opcua.length + mqtt.length === 0) throw new TargetListError(['nothing to scan: list Modbus, OPC UA or MQTT addresses']);
  return { title: settings.title?.trim() || 'Plant asset scan', probesPerSecond, timeoutMs, modbus, units, opcua, mqtt };
}

export interface RunOptions {
  /** The OPC UA client PKI (discovery sends the application certificate, even on a None channel). */
  opcuaPki: () => Promise<ApplicationPki>;
  signal?: AbortSignal;
  onProgress?: (progress: ScanProgress) => void;
  now?: () => number;
}

/** Run a plan; resolves with the report (a misbehaving target is in it, never a rejection), rejects only when aborted. */
export async function runScan(plan: ScanPlan, options: RunOptions): Promise<ScanReport> {
  const now = options.now ?? Date.now;
  const startedAt = new Date(now()).toISOString();
  const pacer = new ProbePacer(plan.probesPerSecond);
  const { signal } = options;
  const total = plan.modbus.length * plan.units.length + plan.opcua.length + plan.mqtt.length;
  let done = 0;
  const step = (what: string) => options.onProgress?.({ done: ++done, total, what });
  const inventory: Inventory = { modbus: [], opcua: [], mqtt: [] };
  const common = { timeoutMs: plan.timeoutMs, pacer, signal };
  for (const target of plan.modbus) {
    const doneAfter = done + plan.units.length;
    inventory.modbus.push(await scanModbusHost(target, { ...common, connectTimeoutMs: plan.timeoutMs * 3, units: plan.units, onUnit: (t, unit) => step(`modbus ${t.host}:${t.port} unit ${unit}`) }));
    done = doneAfter; // a host that stopped early counts as done
  }
  for (const target of plan.opcua) {
    inventory.opcua.push(await scanOpcUaServer(target, { ...common, pki: options.opcuaPki }));
    step(`opcua ${target.host}:${target.port}`);
  }
  for (const target of plan.mqtt) {
    inventory.mqtt.push(await probeMqttListener(target, common));
    step(`mqtt ${target.host}:${target.port}`);
  }
  const findings = assess(inventory, now());
  const refused = [
    ...inventory.modbus.filter((h) => h.problem).map((h) => `Modbus ${h.host}:${h.port}: ${h.problem}`),
    ...inventory.opcua.filter((s) => s.problem).map((s) => `OPC UA ${s.url}: ${s.problem}`),
    ...inventory.mqtt.filter((l) => !l.open).map((l) => `MQTT ${l.host}:${l.port}: ${l.problem ?? 'closed'}`),
  ];
  return {
    title: plan.title,
    startedAt,
    finishedAt: new Date(now()).toISOString(),
    scanner: { version: packageInfo().version, probesPerSecond: plan.probesPerSecond, probes: pacer.probes, units: plan.units },
    inventory,
    findings,
    summary: {
      findings: severityCounts(findings),
      modbusDevices: inventory.modbus.reduce((n, h) => n + h.units.length, 0),
      opcuaServers: inventory.opcua.filter((s) => s.reachable).length,
      mqttListeners: inventory.mqtt.filter((l) => l.mqtt).length,
      anonymousBrokers: inventory.mqtt.filter((l) => l.anonymousAccepted).length,
    },
    refused,
  };
}
