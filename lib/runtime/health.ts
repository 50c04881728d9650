/**
 * The gateway's health: the flows' state (followed from the Node-RED runtime's event bus) and the
 * connection states config nodes report (connection-registry.ts), rendered as the GET /healthz
 * document. No Node-RED import: the event bus is any EventEmitter.
 */
import type { EventEmitter } from 'node:events';
import { connectionStatuses, type ConnectionStatus } from './connection-registry';

export type FlowsState = 'starting' | 'started' | 'stopped';

export interface FlowsStatus {
  state: FlowsState;
  /** When `state` was entered (ms since epoch). */
  since: number;
  /** How many times the flows have started (1 after boot, +1 per full or partial deploy). */
  starts: number;
  /** Entries (nodes, config nodes, tabs) in the running configuration. */
  nodes: number;
  /** Why the flows are not running, when the runtime said so (missing node types, safe mode, ...). */
  problem?: string;
  /** A runtime warning that does not stop the flows, e.g. `credentials_load_failed` (wrong credentialSecret). */
  warning?: string;
}

/** Follows the Node-RED runtime's `flows:*` and `runtime-event` events. */
export class FlowsTracker {
  private status: FlowsStatus;
  private readonly listeners: [string, (event: unknown) => void][];
  private settledWaiters: ((status: FlowsStatus) => void)[] = [];

  constructor(private readonly events: EventEmitter, private readonly clock: () => number = Date.now) {
    this.status = { state: 'starting', since: clock(), starts: 0, nodes: 0 };
    this.listeners = [
      ['flows:starting', () => this.enter('starting')],
      ['flows:started', (event) => this.started(event)],
      ['flows:stopped', () => this.enter('stopped')],
      ['runtime-event', (event) => this.runtimeEvent(event)],
    ];
    for (const [name, listener] of this.listeners) events.on(name, listener);
  }

  current(): FlowsStatus {
    return { ...this.status };
  }

  /** Resolves once the flows have started, or the runtime said why it will not start them. */
  whenSettled(): Promise<FlowsStatus> {
    if (this.settled()) return Promise.resolve(this.current());
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  close(): void {
    for (const [name, listener] of this.listeners) this.events.removeListener(name, listener);
  }

  private settled(): boolean {
    return this.status.state === 'started' || (this.status.state === 'stopped' && this.status.problem !== undefined);
  }

  private notifySettled(): void {
    if (!this.settled()) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const resolve of waiters) resolve(this.current());
  }

  private enter(state: FlowsState, problem?: string): void {
    if (this.status.state !== state) this.status.since = this.clock();
    this.status.state = state;
    this.status.problem = problem;
  }

  private started(event: unknown): void {
    const flows = (event as { config?: { flows?: unknown[] } } | undefined)?.config?.flows;
    this.enter('started');
    this.status.starts += 1;
    this.status.nodes = Array.isArray(flows) ? flows.length : 0;
    this.notifySettled();
  }

  /** Node-RED reports why it did not start the flows as a retained `runtime-state` event. */
  private runtimeEvent(event: unknown): void {
    const { id, payload } = (event ?? {}) as { id?: string; payload?: { error?: string; types?: string[]; modules?: unknown[] } };
    if (id !== 'runtime-state' || !payload?.error) return;
    switch (payload.error) {
      case 'missing-types':
        this.enter('stopped', `missing node types: ${(payload.types ?? []).join(', ')}`);
        break;
      case 'missing-modules':
        this.enter('stopped', 'missing node modules');
        break;
      case 'safe-mode':
        this.enter('stopped', 'safe mode: flows not started');
        break;
      default:
        // e.g. credentials_load_failed: the flows still run, but without their credentials.
        this.status.warning = payload.error;
    }
    this.notifySettled();
  }
}

export type HealthStatus = 'ok' | 'degraded' | 'unavailable';

export interface HealthReport {
  status: HealthStatus;
  /** Seconds since the process started serving. */
  uptime: number;
  versions: { 'uns-edge': string; 'node-red': string; node: string };
  flows: FlowsStatus;
  connections: ConnectionStatus[];
}

export interface HealthInput {
  startedAt: number;
  now: number;
  unsEdgeVersion: string;
  nodeRedVersion: string;
  flows: FlowsStatus;
  connections?: ConnectionStatus[];
}

/**
 * `ok`: flows running and every reported connection connected. `degraded`: flows running, some
 * connection down (store-and-forward and reconnects are at work; restarting would not help).
 * `unavailable`: flows not running. HTTP 200 for ok/degraded, 503 for unavailable, so a container
 * or systemd health check restarts only a gateway that is really stuck.
 */
export function healthReport(input: HealthInput): { httpStatus: number; report: HealthReport } {
  const connections = input.connections ?? connectionStatuses();
  const status: HealthStatus = input.flows.state !== 'started'
    ? 'unavailable'
    : connections.every((connection) => connection.connected) ? 'ok' : 'degraded';
  return {
    httpStatus: status === 'unavailable' ? 503 : 200,
    report: {
      status,
      uptime: Math.round((input.now - input.startedAt) / 100) / 10,
      versions: { 'uns-edge': input.unsEdgeVersion, 'node-red': input.nodeRedVersion, node: process.version },
      flows: input.flows,
      connections,
    },
  };
}
