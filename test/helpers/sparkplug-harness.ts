/**
 * Harness of the Sparkplug edge conformance suite (test/integration/sparkplug-edge-*.spec.ts):
 *
 * - SparkplugObserver (SUB + HOST of reference/sparkplug.md §0): an MQTT 5 client connected before the
 *   device under test, subscribed to `spBv1.0/#` at QoS 1 with Retain As Published, that records
 *   every message with its delivered QoS and retain flag and decodes it with protobufjs (the oracle,
 *   not uns-edge's codec). It also publishes what a host application would: NCMD, DCMD, STATE.
 * - startEdge(): the device under test in this process, an edge node (lib/sparkplug) with devices,
 *   connected through the TAP (test/helpers/sparkplug-tap.ts).
 * - Checks shared by the spec files: seq continuity, birth maps.
 */
import { strict as assert } from 'node:assert';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { SparkplugDevice, type DeviceOptions, type WriteCommand } from '../../lib/sparkplug/device';
import { SparkplugEdgeNode, type EdgeNodeOptions } from '../../lib/sparkplug/edge-node';
import { parseTopic, type ParsedTopic } from '../../lib/sparkplug/topics';
import { oracleDecode, type OracleDecoded } from './sparkplug-oracle';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(what: string, condition: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

export interface Observed {
  topic: string;
  parsed: ParsedTopic | undefined;
  /** Message type (NBIRTH, DDATA, …, STATE) or '?' */
  type: string;
  qos: number;
  retain: boolean;
  bytes: Buffer;
  /** undefined when protobufjs could not decode it (or it is a STATE). */
  decoded: OracleDecoded | undefined;
  decodeError?: string;
  receivedAt: number;
  /** Index in the observer's log. */
  index: number;
}

export class SparkplugObserver {
  readonly log: Observed[] = [];

  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, options: IClientOptions = {}): Promise<SparkplugObserver> {
    const client = connect(url, { protocolVersion: 5, reconnectPeriod: 200, clientId: `observer-${process.pid}-${Math.random().toString(16).slice(2)}`, ...options });
    const observer = new SparkplugObserver(client);
    client.on('message', (topic, bytes, packet) => observer.record(topic, bytes, packet.qos, packet.retain));
    // On a reconnect (broker restart) MQTT.js subscribes again (resubscribe is on by default).
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync('spBv1.0/#', { qos: 1, rap: true });
    return observer;
  }

  private record(topic: string, bytes: Buffer, qos: number, retain: boolean): void {
    const parsed = parseTopic(topic);
    const type = parsed === undefined ? '?' : parsed.kind === 'state' ? 'STATE' : parsed.type;
    let decoded: OracleDecoded | undefined;
    let decodeError: string | undefined;
    if (type !== 'STATE') {
      try {
        decoded = oracleDecode(bytes);
      } catch (error) {
        decodeError = (error as Error).message;
      }
    }
    this.log.push({ topic, parsed, type, qos, retain, bytes, decoded, decodeError, receivedAt: Date.now(), index: this.log.length });
  }

  /** Messages of the edge node `edge` (its own and its devices'), optionally of some types, from index `from`. */
  of(edge: string, types?: readonly string[], from = 0): Observed[] {
    return this.log.slice(from).filter((m) => m.parsed !== undefined && m.parsed.kind !== 'state' && m.parsed.edgeNodeId === edge &&
      (types === undefined || types.includes(m.type)));
  }

  async waitFor(what: string, predicate: (m: Observed) => boolean, from = 0, ms = 10000): Promise<Observed> {
    let found: Observed | undefined;
    await waitFor(what, () => (found = this.log.slice(from).find(predicate)) !== undefined, ms);
    return found!;
  }

  /** Resolves once the observer's subscription delivers again (after a broker restart, say): a probe comes back. */
  async ready(ms = 10000): Promise<void> {
    const deadline = Date.now() + ms;
    const probe = `spBv1.0/probe/${Math.random().toString(16).slice(2)}`;
    while (!this.log.some((m) => m.topic === probe)) {
      if (Date.now() > deadline) throw new Error('observer did not get its probe back');
      if (this.client.connected) this.client.publish(probe, 'probe', { qos: 0 });
      await sleep(100);
    }
  }

  get mark(): number {
    return this.log.length;
  }

  /** HOST: publish a command (QoS 0, not retained, as a host application does). */
  async command(topic: string, payload: Buffer): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 0, retain: false });
  }

  /** HOST: publish a retained STATE (`payload` as given, so tests can send malformed ones). */
  async state(hostId: string, payload: string): Promise<void> {
    await this.client.publishAsync(`spBv1.0/STATE/${hostId}`, payload, { qos: 1, retain: true });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** bdSeq (as a decimal string) of an NBIRTH or NDEATH payload. */
export function bdSeqOf(decoded: OracleDecoded | undefined): string | undefined {
  return decoded?.metrics.find((m) => m.name === 'bdSeq')?.long_value;
}

/** Will payload bdSeq of a CONNECT seen by the TAP. */
export function willBdSeq(payload: Buffer | string | undefined): string | undefined {
  if (payload === undefined) return undefined;
  return bdSeqOf(oracleDecode(Buffer.isBuffer(payload) ? payload : Buffer.from(payload)));
}

/** Assert that seq runs (previous + 1) mod 256 across `messages`, starting at 0 on every NBIRTH. */
export function assertSeqContinuity(messages: Observed[]): void {
  let previous: number | undefined;
  for (const m of messages) {
    if (m.type === 'NDEATH' || m.type === 'NCMD' || m.type === 'DCMD') continue;
    assert.ok(m.decoded?.seq !== undefined, `${m.topic} #${m.index} has no seq`);
    const seq = Number(m.decoded!.seq);
    assert.ok(seq >= 0 && seq <= 255, `${m.topic} #${m.index} seq ${seq} out of 0…255`);
    if (m.type === 'NBIRTH') assert.equal(seq, 0, `NBIRTH #${m.index} seq`);
    else if (previous !== undefined) assert.equal(seq, (previous + 1) % 256, `${m.topic} #${m.index} seq after ${previous}`);
    previous = seq;
  }
}

/** name → {alias, datatype} of every metric in the births among `messages` (latest wins). */
export function birthMap(messages: Observed[]): Map<string, { name: string; alias?: string; datatype?: number }> {
  const map = new Map<string, { name: string; alias?: string; datatype?: number }>();
  for (const m of messages) {
    if (m.type !== 'NBIRTH' && m.type !== 'DBIRTH') continue;
    const owner = m.type === 'NBIRTH' ? '' : (m.parsed as { deviceId: string }).deviceId;
    for (const metric of m.decoded?.metrics ?? []) map.set(`${owner}\u0000${metric.name}`, { name: metric.name!, alias: metric.alias, datatype: metric.datatype });
  }
  return map;
}

export interface EdgeUnderTest {
  edge: SparkplugEdgeNode;
  devices: Map<string, SparkplugDevice>;
  writes: WriteCommand[];
  warnings: string[];
  infos: string[];
  addDevice(options: Partial<DeviceOptions> & { deviceId: string }): SparkplugDevice;
  close(): Promise<void>;
}

/** The device under test, in this process: an edge node on `port` (the TAP's), not started yet. */
export function startEdge(port: number, options: Partial<EdgeNodeOptions> & { bdSeqFile: string; protocolVersion?: 4 | 5 }): EdgeUnderTest {
  const warnings: string[] = [];
  const infos: string[] = [];
  const writes: WriteCommand[] = [];
  const { protocolVersion, ...rest } = options;
  const edge = new SparkplugEdgeNode({
    groupId: 'Plant 1',
    edgeNodeId: 'gw-1',
    software: 'uns-edge conformance',
    nodeMetricsIntervalMs: 100,
    deathTimeoutMs: 1000,
    mqtt: {
      host: '127.0.0.1',
      port,
      protocolVersion: protocolVersion ?? 4,
      clientId: `uns-edge-conformance-${options.edgeNodeId ?? 'gw-1'}`,
      keepaliveSec: 5,
      connectTimeoutMs: 2000,
      backoff: { initialMs: 100, maxMs: 500, jitter: 0 },
    },
    warn: (message) => warnings.push(message),
    info: (message) => infos.push(message),
    ...rest,
  });
  const devices = new Map<string, SparkplugDevice>();
  return {
    edge, devices, writes, warnings, infos,
    addDevice(deviceOptions) {
      const device = new SparkplugDevice(edge, { deathOnBadQuality: true, staleAfterMs: 0, writable: true, warn: (message) => warnings.push(message), ...deviceOptions });
      device.on('write', (command) => writes.push(command));
      devices.set(device.deviceId, device);
      return device;
    },
    async close() {
      await edge.close();
      for (const device of devices.values()) device.close();
    },
  };
}
