/**
 * The flows of one simulated production line for bench/plant-scale.ts: the nodes of flows/demo.json
 * (uns-broker, uns-modbus-link, uns-vfd per drive, uns-out: per-metric retained topics, QoS 1),
 * with this line's own ids, MQTT client id, unit ids on the simulated plant, drive count, poll interval and
 * topic base `plant/<line>/...`, so N gateways run N independent lines against one broker.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './node-red';

export interface LineOptions {
  line: string;
  mqttPort: number;
  /** More broker URLs (a cluster's other nodes), tried in order after host:mqttPort. */
  moreServers?: string[];
  /** uns-broker's brokerProfile: 'standard', or 'nats' for NATS's MQTT rules (docs/scaling.md). */
  brokerProfile?: string;
  modbusPort: number;
  drives: number;
  /** Unit id of the line's first drive: all lines share one simulated plant process, each its own units. */
  firstUnit: number;
  intervalMs: number;
}

type FlowNode = Record<string, unknown> & { id: string; type: string };

const DEMO: FlowNode[] = JSON.parse(readFileSync(join(REPO_ROOT, 'flows', 'demo.json'), 'utf8')) as FlowNode[];
const demoNode = (type: string): FlowNode => {
  const node = DEMO.find((n) => n.type === type);
  if (!node) throw new Error(`flows/demo.json has no ${type}`);
  return node;
};

export const LINE_TOPIC_ROOT = 'plant';

export function lineFlows(o: LineOptions): FlowNode[] {
  const tab = `${o.line}-tab`;
  const broker = { ...demoNode('uns-broker'), id: `${o.line}-broker`, z: tab, name: `${o.line} UNS`, host: '127.0.0.1', port: String(o.mqttPort), clientId: `uns-edge-${o.line}`,
    servers: (o.moreServers ?? []).join('\n'), brokerProfile: o.brokerProfile ?? 'standard' };
  const link = { ...demoNode('uns-modbus-link'), id: `${o.line}-link`, z: tab, name: `${o.line} drives`, host: '127.0.0.1', port: String(o.modbusPort) };
  const out = { ...demoNode('uns-out'), id: `${o.line}-out`, z: tab, broker: broker.id, topicPrefix: `${LINE_TOPIC_ROOT}/${o.line}` };
  const drives = Array.from({ length: o.drives }, (_, i) => ({
    ...demoNode('uns-vfd'), id: `${o.line}-vfd-${i + 1}`, z: tab, name: `drive ${i + 1}`, link: link.id, unitId: o.firstUnit + i,
    interval: o.intervalMs, topic: `drive${i + 1}`, y: 60 * (i + 1), wires: [[out.id], []],
  }));
  return [{ id: tab, type: 'tab', label: o.line }, broker, link, ...drives, out];
}
