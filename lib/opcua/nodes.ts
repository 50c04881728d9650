/**
 * What the client needs to know about a variable before it monitors, reads or writes it:
 * NodeId parsing, DataType (as its built-in type), AccessLevel, EURange and EngineeringUnits
 * (AnalogItemType properties, OPC 10000-8 §5.3.2), resolved for many nodes in a few service calls.
 */
import type { ClientSession, NodeId } from 'node-opcua';
import { DEFAULT_NODES_PER_CALL, perCall, serviceLimits } from './limits';
import { opcua } from './load';

export interface NodeFacts {
  nodeId: NodeId;
  /** Status code name when the node cannot be used (BadNodeIdInvalid, BadNodeIdUnknown, …). */
  problem?: string;
  builtIn?: number;
  accessLevel?: number;
  userAccessLevel?: number;
  euRange?: { low: number; high: number };
  /** The node has an EURange property that could not be read as {low, high}: a write cannot be checked against it. */
  euRangeProblem?: string;
  unit?: string;
}

/** A NodeId from text ("ns=1;s=Drive1.Speed", "i=2258", "nsu=…;s=…"), or the reason it does not parse. */
export function parseNodeId(text: string): { nodeId: NodeId } | { problem: string } {
  try {
    const nodeId = opcua().resolveNodeId(text);
    return { nodeId };
  } catch (error) {
    return { problem: `BadNodeIdInvalid: "${text}" does not parse (${(error as Error).message})` };
  }
}

async function chunked<T, R>(items: T[], size: number, run: (chunk: T[]) => Promise<R[]>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await run(items.slice(i, i + size))));
  return out;
}

/**
 * Facts of every node; `withWriteFacts` adds AccessLevel/UserAccessLevel.
 * A node the server does not know gets problem BadNodeIdUnknown (or what the server said).
 */
export async function readNodeFacts(session: ClientSession, nodeIds: NodeId[], withWriteFacts = false): Promise<NodeFacts[]> {
  const o = opcua();
  const A = o.AttributeIds;
  const attributes = withWriteFacts ? [A.DataType, A.AccessLevel, A.UserAccessLevel] : [A.DataType];
  const reads = nodeIds.flatMap((nodeId) => attributes.map((attributeId) => ({ nodeId, attributeId })));
  // At most 500 nodes per call, fewer when the server says so (a larger request is refused whole).
  const limits = await serviceLimits(session);
  const readSize = perCall(limits.nodesPerRead, DEFAULT_NODES_PER_CALL);
  const values = await chunked(reads, readSize, (chunk) => session.read(chunk));
  const facts: NodeFacts[] = nodeIds.map((nodeId, i) => {
    const [dataType, access, userAccess] = values.slice(i * attributes.length, (i + 1) * attributes.length);
    if (!dataType.statusCode.isGood()) return { nodeId, problem: dataType.statusCode.name };
    const fact: NodeFacts = { nodeId };
    if (withWriteFacts) {
      fact.accessLevel = access.statusCode.isGood() ? Number(access.value.value) : 0;
      // An unreadable UserAccessLevel grants nothing (fail closed), it does not fall back to AccessLevel.
      fact.userAccessLevel = userAccess.statusCode.isGood() ? Number(userAccess.value.value) : 0;
    }
    return fact;
  });
  // Built-in type of each distinct DataType (a subtype such as Duration → Double is walked up once, not
  // once per node: 10,000 Double variables cost no extra request).
  const builtIns = new Map<string, number | undefined>();
  for (let i = 0; i < nodeIds.length; i++) {
    if (facts[i].problem) continue;
    const dataTypeId = values[i * attributes.length].value.value as NodeId | null;
    if (!dataTypeId) continue;
    const key = dataTypeId.toString();
    if (!builtIns.has(key)) {
      let builtIn: number | undefined;
      if (dataTypeId.namespace === 0 && typeof dataTypeId.value === 'number' && dataTypeId.value >= 1 && dataTypeId.value <= 25) builtIn = dataTypeId.value;
      else builtIn = await o.findBasicDataType(session, dataTypeId).then((t) => t as unknown as number, () => undefined);
      builtIns.set(key, builtIn);
    }
    facts[i].builtIn = builtIns.get(key);
  }
  // EURange and EngineeringUnits properties (AnalogItemType), where present.
  const usable = facts.filter((f) => !f.problem);
  const paths = usable.flatMap((f) => ['EURange', 'EngineeringUnits'].map((name) =>
    o.makeBrowsePath(f.nodeId, `.${name}`)));
  const targets = await chunked(paths, perCall(limits.nodesPerTranslate, DEFAULT_NODES_PER_CALL), (chunk) => session.translateBrowsePath(chunk));
  const propertyReads: Array<{ fact: NodeFacts; kind: 'EURange' | 'EngineeringUnits'; nodeId: NodeId }> = [];
  targets.forEach((t, i) => {
    const target = t.statusCode.isGood() ? t.targets?.[0]?.targetId : undefined;
    // Only "no such property" means no EURange; any other failure leaves the range unknown (fail closed for writes).
    if (i % 2 === 0 && !target && t.statusCode.name !== 'BadNoMatch') usable[Math.floor(i / 2)].euRangeProblem = `its EURange property could not be found (${t.statusCode.name})`;
    if (target) propertyReads.push({ fact: usable[Math.floor(i / 2)], kind: i % 2 === 0 ? 'EURange' : 'EngineeringUnits', nodeId: o.resolveNodeId(target.toString()) });
  });
  const propertyValues = await chunked(propertyReads, readSize, (chunk) => session.read(chunk.map((p) => ({ nodeId: p.nodeId, attributeId: A.Value }))));
  propertyReads.forEach((p, i) => {
    const value = propertyValues[i].value?.value as Record<string, unknown> | undefined;
    if (p.kind === 'EURange') {
      if (propertyValues[i].statusCode.isGood() && typeof value?.low === 'number' && typeof value.high === 'number') p.fact.euRange = { low: value.low, high: value.high };
      else p.fact.euRangeProblem = `its EURange property could not be read as {low, high} (${propertyValues[i].statusCode.name})`;
    }
    if (!value || !propertyValues[i].statusCode.isGood()) return;
    if (p.kind === 'EngineeringUnits') {
      const text = (value.displayName as { text?: string } | undefined)?.text;
      if (text) p.fact.unit = text;
    }
  });
  return facts;
}
