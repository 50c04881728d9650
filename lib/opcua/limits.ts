/**
 * How much to ask of a server in one service call.
 *
 * - The server's own limits: ServerCapabilities.OperationLimits (OPC 10000-5 §6.3.11), read once per
 *   session. A request over MaxMonitoredItemsPerCall / MaxNodesPerRead /
 *   MaxNodesPerTranslateBrowsePathsToNodeIds is refused as a whole (BadTooManyOperations, Part 4
 *   §7.38.2). 0 or an unreadable value means "no limit stated"; we then cap at our own defaults.
 * - Time: a call that keeps a busy server's event loop for seconds also holds back the session's
 *   keep-alive read behind it, and node-opcua takes a keep-alive that gets no answer within the
 *   request timeout for a dead server (it breaks the channel: measured with 1000 items on a server
 *   needing 7 ms each). CallSizer keeps each call short: it starts small, doubles while calls are quick
 *   and halves when one is slow, never above the server's limit.
 */
import type { ClientSession } from 'node-opcua';
import { opcua } from './load';

export interface ServiceLimits {
  /** Items per CreateMonitoredItems / DeleteMonitoredItems (0: none stated). */
  monitoredItemsPerCall: number;
  /** Nodes per Read (0: none stated). */
  nodesPerRead: number;
  /** Browse paths per TranslateBrowsePathsToNodeIds (0: none stated). */
  nodesPerTranslate: number;
}

/** Our own caps where the server states none. */
export const DEFAULT_ITEMS_PER_CALL = 1000;
export const DEFAULT_NODES_PER_CALL = 500;

const NO_LIMITS: ServiceLimits = { monitoredItemsPerCall: 0, nodesPerRead: 0, nodesPerTranslate: 0 };
const perSession = new WeakMap<ClientSession, Promise<ServiceLimits>>();

function stated(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : 0;
}

/** The session's server limits, read once per session (a server without them: no limits stated). */
export function serviceLimits(session: ClientSession): Promise<ServiceLimits> {
  let limits = perSession.get(session);
  if (!limits) {
    const o = opcua();
    const ids = [
      o.VariableIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
      o.VariableIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
      o.VariableIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds,
    ];
    // One Read; a server without these nodes answers BadNodeIdUnknown for them: no limit stated.
    limits = session.read(ids.map((id) => ({ nodeId: o.makeNodeId(id), attributeId: o.AttributeIds.Value }))).then(([items, read, translate]) => ({
      monitoredItemsPerCall: stated(items.value?.value),
      nodesPerRead: stated(read.value?.value),
      nodesPerTranslate: stated(translate.value?.value),
    }), () => NO_LIMITS);
    perSession.set(session, limits);
  }
  return limits;
}

/** The smaller of the server's limit (0: none) and our cap. */
export function perCall(serverLimit: number, cap: number): number {
  return serverLimit > 0 ? Math.min(serverLimit, cap) : cap;
}

/**
 * Size of the next call of a long series: starts at `start` (≤ max), doubles after a call that took
 * less than half of `targetMs`, halves after one that took more than `targetMs` (never below 1).
 */
export class CallSizer {
  private current: number;

  constructor(readonly max: number, readonly targetMs: number, start = 100) {
    this.current = Math.max(1, Math.min(max, start));
  }

  get size(): number {
    return this.current;
  }

  /** Record how long a call of `count` items took. */
  record(count: number, ms: number): void {
    if (ms > this.targetMs) this.current = Math.max(1, Math.floor(Math.min(this.current, count) / 2));
    else if (ms < this.targetMs / 2 && count >= this.current) this.current = Math.min(this.max, this.current * 2);
  }
}
