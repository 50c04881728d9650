/**
 * Read, write, browse and method call on a connected session (uns-opcua-read / -write / -browse /
 * -method and the editor's address-space browser). Every check of a write or a call is done
 * BEFORE anything is sent: a command with one bad value writes nothing (security.md T-VAL-01/02,
 * SR 3.5/3.6).
 */
import type { ClientSession, NodeId, StatusCode } from 'node-opcua';
import type { MetricMeta, MetricValue, TagBatch } from '../uns/tag-batch';
import { opcua } from './load';
import { NodeFacts, parseNodeId, readNodeFacts } from './nodes';
import { ACCESS_CURRENT_WRITE, builtInTypeName, coerceForWrite, fromVariant, qualityOf, tagTypeOf, VariantLike } from './values';

export interface MetricNode {
  name: string;
  nodeId: string;
  topic?: string;
}

/** Read the Value of every metric → one tag batch per asset. Unparsable/unknown NodeIds → that metric bad. */
export async function readMetrics(session: ClientSession, metrics: MetricNode[], topic: string, factsCache: Map<string, NodeFacts>): Promise<TagBatch[]> {
  const o = opcua();
  const now = Date.now();
  const batches = new Map<string, TagBatch & { meta: Record<string, MetricMeta> }>();
  const put = (m: MetricNode, value: MetricValue, meta: MetricMeta) => {
    const t = m.topic || topic;
    let batch = batches.get(t);
    if (!batch) batches.set(t, (batch = { topic: t, payload: {}, meta: {}, timestamp: now }));
    batch.payload[m.name] = value;
    batch.meta[m.name] = meta;
  };
  const readable: Array<{ m: MetricNode; nodeId: NodeId }> = [];
  for (const m of metrics) {
    const parsed = parseNodeId(m.nodeId.trim());
    if ('problem' in parsed) put(m, null, { timestamp: now, quality: 'bad', reason: parsed.problem });
    else readable.push({ m, nodeId: parsed.nodeId });
  }
  const unknown = readable.filter((r) => !factsCache.has(r.m.nodeId));
  if (unknown.length) {
    const facts = await readNodeFacts(session, unknown.map((r) => r.nodeId));
    unknown.forEach((r, i) => factsCache.set(r.m.nodeId, facts[i]));
  }
  const values = readable.length ? await session.read(readable.map((r) => ({ nodeId: r.nodeId, attributeId: o.AttributeIds.Value })), 0) : [];
  readable.forEach(({ m }, i) => {
    const dv = values[i];
    const facts = factsCache.get(m.nodeId);
    if (dv.statusCode.name === 'BadNodeIdUnknown' || dv.statusCode.name === 'BadNodeIdInvalid') factsCache.delete(m.nodeId);
    let quality = qualityOf(dv.statusCode.value);
    const converted = fromVariant(dv.value as unknown as VariantLike);
    let reason = quality === 'good' ? undefined : dv.statusCode.name;
    if (!converted.ok) {
      quality = 'bad';
      reason = converted.reason;
    }
    const type = (converted.ok ? converted.type : undefined) ?? (facts?.builtIn !== undefined ? tagTypeOf(facts.builtIn) : undefined);
    put(m, quality === 'bad' || !converted.ok ? null : converted.value, {
      timestamp: (dv.sourceTimestamp ?? dv.serverTimestamp ?? new Date(now)).getTime(),
      quality,
      ...(facts?.unit ? { unit: facts.unit } : {}),
      ...(type ? { type } : {}),
      ...(reason ? { reason } : {}),
      // as uns-opcua-subscribe does (docs/opcua.md): the server's time beside the source's
      ...(dv.serverTimestamp ? { serverTimestamp: dv.serverTimestamp.getTime() } : {}),
    } as MetricMeta);
  });
  return [...batches.values()];
}

export interface WriteProblem {
  name?: string;
  problem: string;
}

export interface WriteResult {
  status: 'ok' | 'failed' | 'not-sent';
  /** Status code name of a failed write. */
  code?: string;
  old?: MetricValue;
  written?: string;
}

export interface WriteOutcome {
  ok: boolean;
  problems?: WriteProblem[];
  results: Record<string, WriteResult>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null; // any realm's Object.prototype
}

/**
 * Write a command `{ metric: value, ... }` (a tag batch payload, as uns-modbus-write takes) to the
 * metrics' nodes. Before sending: the command's shape, each metric defined, the node known, its
 * AccessLevel and UserAccessLevel allow CurrentWrite (Part 3 §8.57), the value converts to the
 * node's DataType and lies in its EURange. Any problem → nothing is written.
 *
 * A write is sent once, now, or not at all (security.md T-RPL-03): node-opcua holds requests made
 * while it repairs a connection and replays them when the repair is done, seconds or minutes later;
 * a command must not be carried out that late. So a session under repair refuses the command before
 * and just before the Write, and a Write that gets no answer is reported as of unknown outcome, never
 * retried. One Write request carries the whole command: the server applies it whole or not at all
 * as far as the connection is concerned.
 */
/**
 * Requests on a session under repair are held by node-opcua and replayed after it: a write must not be.
 * `repaired` says whether a repair ended while the command was being checked (its reads were held).
 */
function refuseWhileRepairing(session: ClientSession, repaired = false): void {
  if (session.isReconnecting || repaired) throw new Error('the connection to the server was being repaired: nothing was written (a write is never held for later)');
}

export async function writeCommand(session: ClientSession, metrics: ReadonlyMap<string, MetricNode>, command: unknown): Promise<WriteOutcome> {
  if (!isPlainObject(command)) return { ok: false, problems: [{ problem: 'the command must be an object { metric: value, ... } (msg.payload)' }], results: {} };
  const entries = Object.entries(command);
  if (entries.length === 0) return { ok: false, problems: [{ problem: 'the command names no metric' }], results: {} };
  const problems: WriteProblem[] = [];
  const targets: Array<{ name: string; value: unknown; nodeId: NodeId }> = [];
  for (const [name, value] of entries) {
    const m = metrics.get(name);
    if (!m || name === '__proto__') {
      problems.push({ name, problem: 'is not a metric of this node' });
      continue;
    }
    const parsed = parseNodeId(m.nodeId.trim());
    if ('problem' in parsed) problems.push({ name, problem: parsed.problem });
    else targets.push({ name, value, nodeId: parsed.nodeId });
  }
  const notSent = (): Record<string, WriteResult> => Object.fromEntries(entries.map(([name]) => [name, { status: 'not-sent' as const }]));
  if (problems.length) return { ok: false, problems, results: notSent() };
  refuseWhileRepairing(session);
  let repaired = false;
  const onRepaired = () => { repaired = true; };
  session.on('session_restored', onRepaired);
  try {
    return await checkAndWrite(session, targets, notSent, () => repaired);
  } finally {
    session.off('session_restored', onRepaired);
  }
}

/** The checks that need the server (facts, current values), then one Write: writeCommand's second half. */
async function checkAndWrite(session: ClientSession, targets: Array<{ name: string; value: unknown; nodeId: NodeId }>,
  notSent: () => Record<string, WriteResult>, repaired: () => boolean): Promise<WriteOutcome> {
  const o = opcua();
  const problems: WriteProblem[] = [];
  const facts: NodeFacts[] = await readNodeFacts(session, targets.map((t) => t.nodeId), true);
  const old = await session.read(targets.map((t) => ({ nodeId: t.nodeId, attributeId: o.AttributeIds.Value })));
  const prepared: Array<{ name: string; nodeId: NodeId; builtIn: number; value: unknown; display: string; old: MetricValue }> = [];
  targets.forEach((t, i) => {
    const f = facts[i];
    if (f.problem) return problems.push({ name: t.name, problem: `node ${t.nodeId.toString()}: ${f.problem}` });
    if (!((f.accessLevel ?? 0) & ACCESS_CURRENT_WRITE)) return problems.push({ name: t.name, problem: `node ${t.nodeId.toString()} is read-only (AccessLevel has no CurrentWrite)` });
    if (!((f.userAccessLevel ?? 0) & ACCESS_CURRENT_WRITE)) return problems.push({ name: t.name, problem: `node ${t.nodeId.toString()} is not writable for this user (UserAccessLevel)` });
    if (f.builtIn === undefined) return problems.push({ name: t.name, problem: `node ${t.nodeId.toString()} has a data type uns-edge cannot write` });
    if (f.euRangeProblem) return problems.push({ name: t.name, problem: `node ${t.nodeId.toString()}: ${f.euRangeProblem}: the value cannot be checked, nothing is written` });
    const coerced = coerceForWrite(t.value, { builtIn: f.builtIn, ...(f.euRange ? { euRange: f.euRange } : {}) });
    if (!coerced.ok) return problems.push({ name: t.name, problem: coerced.problem });
    const previous = fromVariant(old[i].value as unknown as VariantLike);
    prepared.push({ name: t.name, nodeId: t.nodeId, builtIn: f.builtIn, value: coerced.value, display: coerced.display, old: previous.ok ? previous.value : null });
    return undefined;
  });
  if (problems.length) return { ok: false, problems, results: notSent() };
  refuseWhileRepairing(session, repaired());
  let statuses: StatusCode[];
  try {
    statuses = await session.write(prepared.map((p) => ({
      nodeId: p.nodeId,
      attributeId: o.AttributeIds.Value,
      value: { value: { dataType: p.builtIn, value: p.value } },
    })));
  } catch (error) {
    // A ServiceFault is an answer: the server refused the request as a whole, nothing was written.
    if ((error as { response?: unknown }).response) throw new Error(`the server refused the write: ${(error as Error).message}; nothing was written`);
    throw new Error(`no answer to the write (${(error as Error).message}): the server may or may not have carried it out; it is not retried`);
  }
  const results: Record<string, WriteResult> = {};
  prepared.forEach((p, i) => {
    const good = statuses[i].isGood();
    results[p.name] = { status: good ? 'ok' : 'failed', old: p.old, written: p.display, ...(good ? {} : { code: statuses[i].name }) };
  });
  return { ok: Object.values(results).every((r) => r.status === 'ok'), results };
}

export interface BrowsedNode {
  nodeId: string;
  browseName: string;
  displayName: string;
  nodeClass: string;
  /** Variables: built-in type name, access (r / rw), EU, current value. */
  dataType?: string;
  access?: string;
  unit?: string;
  value?: MetricValue;
  children?: BrowsedNode[];
}

export interface BrowseOptions {
  /** Levels below the start node (1 = its children). */
  depth: number;
  /** Stop after this many nodes (a server may answer with a huge result): `truncated` is then set. */
  maxNodes: number;
  /** Read DataType/AccessLevel/EU/value of variables. */
  withValues: boolean;
}

/** Browse hierarchical references from a node (Part 4 §5.8.2), bounded in depth and node count. */
export async function browseTree(session: ClientSession, start: string, options: BrowseOptions): Promise<{ nodes: BrowsedNode[]; truncated: boolean }> {
  const o = opcua();
  const parsed = parseNodeId(start.trim() || 'i=85');
  if ('problem' in parsed) throw new Error(parsed.problem);
  let count = 0;
  let truncated = false;
  const level = async (nodeIds: NodeId[], depth: number): Promise<BrowsedNode[][]> => {
    const results = await session.browse(nodeIds.map((nodeId) => ({
      nodeId, browseDirection: o.BrowseDirection.Forward, referenceTypeId: 'HierarchicalReferences', includeSubtypes: true,
      nodeClassMask: 0, resultMask: 63,
    })));
    const lists: BrowsedNode[][] = results.map((r) => {
      if (!r.statusCode.isGood()) throw new Error(`browse ${start}: ${r.statusCode.name}`);
      const out: BrowsedNode[] = [];
      for (const ref of r.references ?? []) {
        if (count >= options.maxNodes) {
          truncated = true;
          break;
        }
        count++;
        out.push({ nodeId: ref.nodeId.toString(), browseName: ref.browseName.toString(), displayName: ref.displayName.text ?? ref.browseName.name ?? '', nodeClass: o.NodeClass[ref.nodeClass] });
      }
      return out;
    });
    const flat = lists.flat();
    if (options.withValues) {
      const variables = flat.filter((n) => n.nodeClass === 'Variable');
      if (variables.length) {
        const ids = variables.map((v) => o.resolveNodeId(v.nodeId));
        const facts = await readNodeFacts(session, ids, true);
        const values = await session.read(ids.map((nodeId) => ({ nodeId, attributeId: o.AttributeIds.Value })));
        variables.forEach((v, i) => {
          const f = facts[i];
          if (f.builtIn !== undefined) v.dataType = builtInTypeName(f.builtIn);
          v.access = ((f.accessLevel ?? 0) & ACCESS_CURRENT_WRITE) ? 'rw' : 'r';
          if (f.unit) v.unit = f.unit;
          const c = fromVariant(values[i].value as unknown as VariantLike);
          if (c.ok) v.value = c.value;
        });
      }
    }
    if (depth > 1 && flat.length && !truncated) {
      const children = await level(flat.map((n) => o.resolveNodeId(n.nodeId)), depth - 1);
      flat.forEach((n, i) => {
        if (children[i].length) n.children = children[i];
      });
    }
    return lists;
  };
  const [nodes] = await level([parsed.nodeId], Math.max(1, options.depth));
  return { nodes, truncated };
}

/** Browse names below a node whose name contains `text` (the browser's search), bounded like browseTree. */
export function searchTree(nodes: BrowsedNode[], text: string): BrowsedNode[] {
  const needle = text.toLowerCase();
  const found: BrowsedNode[] = [];
  const walk = (list: BrowsedNode[]) => {
    for (const n of list) {
      if (n.browseName.toLowerCase().includes(needle) || n.displayName.toLowerCase().includes(needle)) found.push({ ...n, children: undefined });
      if (n.children) walk(n.children);
    }
  };
  walk(nodes);
  return found;
}

export interface MethodOutcome {
  ok: boolean;
  problems?: string[];
  code?: string;
  outputs?: Record<string, MetricValue>;
}

/**
 * Call a method with arguments typed from its InputArguments property (Part 3 §5.7): `args` is an
 * array in order or an object by argument name. Wrong count or types → nothing is called.
 */
export async function callMethod(session: ClientSession, objectId: string, methodId: string, args: unknown): Promise<MethodOutcome> {
  const object = parseNodeId(objectId.trim());
  const method = parseNodeId(methodId.trim());
  const problems: string[] = [];
  if ('problem' in object) problems.push(`object: ${object.problem}`);
  if ('problem' in method) problems.push(`method: ${method.problem}`);
  if ('problem' in object || 'problem' in method) return { ok: false, problems };
  const definition = await session.getArgumentDefinition(method.nodeId);
  const inputs = definition.inputArguments ?? [];
  let values: unknown[];
  if (Array.isArray(args)) values = args;
  else if (isPlainObject(args)) {
    values = inputs.map((a) => args[a.name ?? '']);
    const extra = Object.keys(args).filter((k) => !inputs.some((a) => a.name === k));
    if (extra.length) problems.push(`unknown argument(s) ${extra.join(', ')}`);
  } else if (args === undefined || args === null) values = [];
  else values = [args];
  if (values.length !== inputs.length) problems.push(`the method takes ${inputs.length} argument(s) (${inputs.map((a) => a.name).join(', ')}), got ${values.length}`);
  const variants: Array<{ dataType: number; value: unknown }> = [];
  for (let i = 0; i < Math.min(values.length, inputs.length); i++) {
    const a = inputs[i];
    let builtIn: number;
    try {
      // The argument's DataType may be a subtype (Duration → Double, an enumeration → Int32).
      builtIn = await opcua().findBasicDataType(session, a.dataType) as unknown as number;
    } catch {
      builtIn = -1;
    }
    if ((a.valueRank ?? -1) !== -1) {
      problems.push(`argument ${a.name}: arrays are not supported`);
      continue;
    }
    const c = coerceForWrite(values[i], { builtIn });
    if (!c.ok) problems.push(`argument ${a.name}: ${c.problem}`);
    else variants.push({ dataType: builtIn, value: c.value });
  }
  if (problems.length) return { ok: false, problems };
  const result = await session.call({ objectId: object.nodeId, methodId: method.nodeId, inputArguments: variants });
  if (!result.statusCode.isGood()) return { ok: false, code: result.statusCode.name };
  const outputs: Record<string, MetricValue> = {};
  (result.outputArguments ?? []).forEach((v, i) => {
    const c = fromVariant(v as unknown as VariantLike);
    outputs[definition.outputArguments?.[i]?.name ?? `output${i}`] = c.ok ? c.value : null;
  });
  return { ok: true, outputs };
}
