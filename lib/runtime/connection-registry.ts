/**
 * Connection states reported by config nodes (uns-broker, uns-modbus-link, ...), read by the gateway
 * runtime for GET /healthz and the `uns_edge_connection_up` gauge on /metrics.
 *
 * A config node calls reportConnection() on every transition of its connection state machine and
 * forgetConnection() in close(). Reporting is optional: with no gateway runtime (a stock Node-RED
 * install), the registry is simply never read. The registry lives on globalThis under a
 * Symbol.for() key, so two copies of this module (two installs of the package) still share one.
 */
import { gauge } from './metrics';

export interface ConnectionReport {
  /** Node-RED node id of the config node. */
  id: string;
  /** Node type, e.g. `uns-broker`. */
  type: string;
  /** The config node's name, or a description such as `mqtt://10.0.0.5:1883`. */
  name: string;
  /** The state machine's state name, e.g. `connecting`, `connected`, `backoff`. */
  state: string;
  /** True when the connection carries traffic. */
  connected: boolean;
  /** Last error or other short explanation of the state, if any. */
  detail?: string;
}

export interface ConnectionStatus extends ConnectionReport {
  /** When `state` was entered (ms since epoch). */
  since: number;
}

const registryKey = Symbol.for('uns-edge.connection-registry');
type GlobalWithRegistry = typeof globalThis & { [registryKey]?: Map<string, ConnectionStatus> };

function registry(): Map<string, ConnectionStatus> {
  const holder = globalThis as GlobalWithRegistry;
  holder[registryKey] ??= new Map();
  return holder[registryKey];
}

/** Record the current state of a config node's connection (call on every state transition). */
export function reportConnection(report: ConnectionReport, now: number = Date.now()): void {
  const previous = registry().get(report.id);
  const unchanged = previous !== undefined && previous.state === report.state && previous.connected === report.connected;
  registry().set(report.id, { ...report, since: unchanged ? previous.since : now });
}

/** Remove a config node from the registry (call in the config node's close()). */
export function forgetConnection(id: string): void {
  registry().delete(id);
}

/** Every reported connection, ordered by type then name. */
export function connectionStatuses(): ConnectionStatus[] {
  return [...registry().values()].sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
}

/** Expose the registry on /metrics as `uns_edge_connection_up{id,type,name}` (1 = connected). */
export function enableConnectionMetrics(): void {
  const connectionUp = gauge({
    name: 'uns_edge_connection_up',
    help: 'Connection state of uns-edge config nodes: 1 connected, 0 not connected',
    labelNames: ['id', 'type', 'name'],
    collect() {
      connectionUp.reset();
      for (const status of connectionStatuses()) {
        connectionUp.set({ id: status.id, type: status.type, name: status.name }, status.connected ? 1 : 0);
      }
    },
  });
}
