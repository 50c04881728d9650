/**
 * The gateway's health: the flows' state (followed from the Node-RED runtime's event bus), the
 * nodes that did not start or are failing, and the connection states config nodes report
 * (connection-registry.ts), rendered as the GET /healthz document. No Node-RED import: the event
 * bus is any EventEmitter, the runtime's node lookup and log are passed in as functions.
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

/** A node that is not doing its job, and why (in the node's own words where it said any). */
export interface NodeProblem {
  id: string;
  type?: string;
  name?: string;
  /**
   * `duplicate-id`: two entries of the flows share the id (Node-RED keeps one); `not-started`: in
   * the flows but not running; `error`: logged an error while the flows started; `status`: shows a red status now.
   */
  kind: 'duplicate-id' | 'not-started' | 'error' | 'status';
  message: string;
}

/** What Node-RED's log passes a log handler (@node-red/util log.js): numeric level, the node's id/type/name, the text or Error. */
export interface NodeRedLogEntry { level?: number; id?: string; type?: string; name?: string; msg?: unknown }

/** Node-RED's numeric log level of `error` (fatal is 10). */
export const LOG_LEVEL_ERROR = 20;

/** Entries of a flows configuration that are not nodes the runtime creates under their own id. */
const NOT_INSTANTIATED = new Set(['tab', 'subflow', 'group', 'junction']);

interface FlowEntry { id?: unknown; type?: unknown; z?: unknown; d?: unknown; disabled?: unknown; name?: unknown }

/**
 * The ids the runtime should be running after a start: every node and config node that is not
 * disabled, not on a disabled tab and not inside a subflow definition (those run under generated ids).
 */
function expectedNodes(flows: FlowEntry[]): FlowEntry[] {
  const disabledTabs = new Set(flows.filter((entry) => entry.type === 'tab' && entry.disabled === true).map((entry) => entry.id));
  const subflows = new Set(flows.filter((entry) => entry.type === 'subflow').map((entry) => entry.id));
  return flows.filter((entry) => typeof entry.id === 'string' && typeof entry.type === 'string' && !NOT_INSTANTIATED.has(entry.type) &&
    entry.d !== true && !disabledTabs.has(entry.z) && !subflows.has(entry.z));
}

/** Ids used by more than one entry, with the types that share each. */
function duplicateIds(flows: FlowEntry[]): NodeProblem[] {
  const types = new Map<string, string[]>();
  for (const entry of flows) {
    if (typeof entry.id !== 'string') continue;
    types.set(entry.id, [...(types.get(entry.id) ?? []), String(entry.type)]);
  }
  return [...types].filter(([, sharing]) => sharing.length > 1).map(([id, sharing]) => ({
    id, kind: 'duplicate-id' as const,
    message: `${sharing.length} entries of the flows share this id (${sharing.join(', ')}): Node-RED runs at most one of them, ` +
      'and a config node whose id is also its tab\'s stops the whole flow ("Circular config node dependency detected")',
  }));
}

function logText(message: unknown): string {
  return message instanceof Error ? message.message : typeof message === 'string' ? message : JSON.stringify(message);
}

/** Why the runtime names no types: a flows entry without a `type` (e.g. a flows file `[1,2,3]`). */
function missingTypesProblem(types: unknown[]): string {
  const named = types.filter((type): type is string => typeof type === 'string' && type !== '');
  const untyped = types.length - named.length;
  const parts = [
    ...(named.length ? [`missing node types: ${named.join(', ')}`] : []),
    ...(untyped ? ['flows entries without a "type" (every entry of a flows file must be a node object with "id" and "type")'] : []),
  ];
  return parts.join('; ') || 'missing node types';
}

/**
 * Follows the Node-RED runtime's `flows:*`, `runtime-event` and `node-status` events, and (through
 * logHandler()) its error log. `isRunning(id)` asks the runtime whether a node id is active
 * (RED.nodes.getNode): after each start, nodes of the configuration that are not running are
 * reported; Node-RED only prints why (e.g. "Circular config node dependency detected" when ids
 * collide) to the console.
 */
export class FlowsTracker {
  private status: FlowsStatus;
  private readonly listeners: [string, (event: unknown) => void][];
  private settledWaiters: ((status: FlowsStatus) => void)[] = [];
  private notStarted: NodeProblem[] = [];
  private duplicates: NodeProblem[] = [];
  /** Errors nodes logged while the flows were starting (a bad unit id, missing settings, ...), by node id. */
  private startErrors = new Map<string, NodeProblem>();
  /** Nodes whose status is red now, by node id. */
  private readonly redStatus = new Map<string, NodeProblem>();
  private readonly names = new Map<string, { type?: string; name?: string }>();

  constructor(
    private readonly events: EventEmitter,
    private readonly clock: () => number = Date.now,
    private readonly isRunning: (id: string) => boolean = () => true,
  ) {
    this.status = { state: 'starting', since: clock(), starts: 0, nodes: 0 };
    this.listeners = [
      ['flows:starting', () => this.starting()],
      ['flows:started', (event) => this.started(event)],
      ['flows:stopped', () => this.enter('stopped')],
      ['runtime-event', (event) => this.runtimeEvent(event)],
      ['node-status', (event) => this.nodeStatus(event)],
    ];
    for (const [name, listener] of this.listeners) events.on(name, listener);
  }

  /** A Node-RED log handler (`settings.logging.<name>.handler` returns it): keeps node errors logged during a start. */
  logHandler(): (entry: NodeRedLogEntry) => void {
    return (entry) => {
      if (this.status.state !== 'starting' || typeof entry.id !== 'string' || (entry.level ?? Infinity) > LOG_LEVEL_ERROR) return;
      if (this.startErrors.has(entry.id)) return;
      this.startErrors.set(entry.id, { id: entry.id, type: entry.type, name: entry.name || undefined, kind: 'error', message: logText(entry.msg) });
    };
  }

  /** Nodes not doing their job: not started, errors while starting, red status now. One entry per node, the most telling first. */
  problems(): NodeProblem[] {
    if (this.status.state !== 'started') return [];
    const byNode = new Map<string, NodeProblem>();
    for (const problem of [...this.duplicates, ...this.notStarted, ...this.startErrors.values(), ...this.redStatus.values()]) {
      if (!byNode.has(problem.id)) byNode.set(problem.id, problem);
    }
    return [...byNode.values()];
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

  private starting(): void {
    this.enter('starting');
    this.startErrors = new Map();
  }

  private started(event: unknown): void {
    const flows = (event as { config?: { flows?: unknown[] } } | undefined)?.config?.flows;
    const entries = (Array.isArray(flows) ? flows : []).filter((entry): entry is FlowEntry => typeof entry === 'object' && entry !== null);
    this.enter('started');
    this.status.starts += 1;
    this.status.nodes = Array.isArray(flows) ? flows.length : 0;
    this.duplicates = duplicateIds(entries);
    const expected = expectedNodes(entries);
    this.names.clear();
    for (const entry of expected) this.names.set(entry.id as string, { type: entry.type as string, name: typeof entry.name === 'string' && entry.name ? entry.name : undefined });
    this.notStarted = expected.filter((entry) => !this.isRunning(entry.id as string)).map((entry) => ({
      id: entry.id as string, ...this.names.get(entry.id as string), kind: 'not-started' as const,
      message: this.startErrors.get(entry.id as string)?.message ?? 'in the flows but not running (its flow failed to start: see the log)',
    }));
    // A node removed by this deploy keeps no red status.
    for (const id of this.redStatus.keys()) if (!this.names.has(id)) this.redStatus.delete(id);
    this.notifySettled();
  }

  /** `node-status` {id, status}: a red dot or ring is a problem until the node shows another colour or clears it. */
  private nodeStatus(event: unknown): void {
    const { id, status } = (event ?? {}) as { id?: unknown; status?: { fill?: unknown; text?: unknown } };
    if (typeof id !== 'string') return;
    if (status?.fill === 'red') {
      const known = this.names.get(id);
      this.redStatus.set(id, { id, ...known, kind: 'status', message: typeof status.text === 'string' && status.text ? status.text : 'red status' });
    } else {
      this.redStatus.delete(id);
    }
  }

  /** Node-RED reports why it did not start the flows as a retained `runtime-state` event. */
  private runtimeEvent(event: unknown): void {
    const { id, payload } = (event ?? {}) as { id?: string; payload?: { error?: string; types?: unknown[]; modules?: unknown[] } };
    if (id !== 'runtime-state' || !payload?.error) return;
    switch (payload.error) {
      case 'missing-types':
        this.enter('stopped', missingTypesProblem(payload.types ?? []));
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
  /** Why the status is not `ok`, one line each, for people and alerts. Empty when ok. */
  reasons: string[];
  /** Seconds since the process started serving. */
  uptime: number;
  versions: { 'uns-edge': string; 'node-red': string; node: string };
  flows: FlowsStatus;
  /** Nodes not doing their job (FlowsTracker.problems()). */
  nodes: NodeProblem[];
  connections: ConnectionStatus[];
}

export interface HealthInput {
  startedAt: number;
  now: number;
  unsEdgeVersion: string;
  nodeRedVersion: string;
  flows: FlowsStatus;
  nodes?: NodeProblem[];
  connections?: ConnectionStatus[];
}

/** What Node-RED's runtime warnings mean for an operator. */
const WARNING_TEXT: Readonly<Record<string, string>> = {
  credentials_load_failed: 'the credentials file could not be decrypted (credentials_load_failed): nodes run without their passwords and keys; ' +
    'UNS_EDGE_CREDENTIAL_SECRET is not the secret they were encrypted with',
};

function describeNode(problem: NodeProblem): string {
  const who = `${problem.type ?? 'node'}${problem.name ? ` "${problem.name}"` : ''} (${problem.id})`;
  return problem.kind === 'not-started' ? `${who} did not start: ${problem.message}` : `${who}: ${problem.message}`;
}

/**
 * `ok`: flows running, every node started without an error and none shows a red status, every
 * reported connection connected, no runtime warning. `degraded`: flows running with any of those
 * (a node that did not start, a bad node configuration, missing credentials, a connection down);
 * `reasons` says which. `unavailable`: flows not running. HTTP 200 for ok/degraded, 503 for
 * unavailable, so a container or systemd health check restarts only a gateway that is really
 * stuck (a restart does not fix a node's configuration); alert on `degraded`.
 */
export function healthReport(input: HealthInput): { httpStatus: number; report: HealthReport } {
  const connections = input.connections ?? connectionStatuses();
  const nodes = input.nodes ?? [];
  const reasons: string[] = [];
  if (input.flows.state !== 'started') {
    reasons.push(`flows ${input.flows.state}${input.flows.problem ? `: ${input.flows.problem}` : ''}`);
  } else {
    if (input.flows.warning) reasons.push(WARNING_TEXT[input.flows.warning] ?? `runtime warning: ${input.flows.warning}`);
    reasons.push(...nodes.map(describeNode));
    for (const connection of connections) {
      if (!connection.connected) reasons.push(`${connection.type} "${connection.name}" (${connection.id}) ${connection.state}${connection.detail ? `: ${connection.detail}` : ''}`);
    }
  }
  const status: HealthStatus = input.flows.state !== 'started' ? 'unavailable' : reasons.length > 0 ? 'degraded' : 'ok';
  return {
    httpStatus: status === 'unavailable' ? 503 : 200,
    report: {
      status,
      reasons,
      uptime: Math.round((input.now - input.startedAt) / 100) / 10,
      versions: { 'uns-edge': input.unsEdgeVersion, 'node-red': input.nodeRedVersion, node: process.version },
      flows: input.flows,
      nodes,
      connections,
    },
  };
}
