/**
 * The bounded topic tree behind the UNS explorer (docs/explorer.md): every topic a broker sends, as
 * a tree of levels, each node with how many topics lie at and under it, and the last message of its
 * own topic, decoded only when a level is listed (so a burst of 100,000 retained messages costs a
 * tree walk and a copy each, not a JSON parse each).
 *
 * Bounds and overflow policy:
 * - At most `maxNodes` tree nodes. A topic that would need more is not stored: it is counted as
 *   overflow at its deepest stored ancestor and at every ancestor above (each distinct topic once,
 *   remembered by a 32-bit hash in a set of at most `maxOverflowTracked`; beyond that, or on a hash
 *   collision, the count is approximate and `overflowExact` says so). Topics already stored keep
 *   updating: the first topics seen are kept, later new ones are counted. A retained message
 *   cleared (empty payload) removes its topic and makes room.
 * - Levels deeper than `maxDepth` are overflow the same way.
 * - At most `maxPayloadBytes` of a payload are kept (larger ones are shown as their size).
 * - A listing returns at most `maxPage` children per request, a search at most `maxPage` topics
 *   after visiting at most every stored node once.
 */
import { describePayload, type TopicValue } from './values';

export interface TreeLimits {
  /** Most tree nodes kept (levels, not only topics). */
  maxNodes: number;
  /** Deepest level kept; deeper topics are overflow. */
  maxDepth: number;
  /** Bytes of a payload kept for display. */
  maxPayloadBytes: number;
  /** Distinct overflow topics remembered (for exact overflow counts). */
  maxOverflowTracked: number;
  /** Most children (or search hits) one request returns. */
  maxPage: number;
}

export const DEFAULT_TREE_LIMITS: Readonly<TreeLimits> = {
  maxNodes: 50000,
  maxDepth: 32,
  maxPayloadBytes: 2048,
  maxOverflowTracked: 200000,
  maxPage: 500,
};

/** The last message of one topic. */
interface Sample {
  /** The payload, or its first maxPayloadBytes. */
  payload: Buffer;
  /** Its size on the wire. */
  bytes: number;
  retained: boolean;
  receivedAt: number;
  messages: number;
  /** Set for values decoded on arrival (Sparkplug metrics); else describePayload() of `payload` on listing. */
  decoded?: TopicValue;
}

interface TreeNode {
  name: string;
  parent: TreeNode | undefined;
  children: Map<string, TreeNode> | undefined;
  /** Child names in display order; rebuilt on demand after a child was added or removed. */
  sorted: string[] | undefined;
  /** Topics (nodes with a sample) at and under this node. */
  topics: number;
  /** Topics under this node that were not stored (over a bound). */
  overflow: number;
  sample: Sample | undefined;
}

/** One row of a listing or a search. */
export interface TreeItem {
  name: string;
  /** The full topic (levels joined with `/`). */
  path: string;
  /** Direct children stored. */
  children: number;
  /** Topics at and under it. */
  topics: number;
  /** Topics under it not stored (over a bound). */
  overflow: number;
  /** The last message of this topic, when one arrived. */
  value?: TopicValue & { retained: boolean; receivedAt: number; bytes: number; messages: number };
}

export interface TreeStats {
  nodes: number;
  topics: number;
  /** Topics not stored, over all levels. */
  overflow: number;
  /** False once overflow topics were counted without being told apart (see the overflow policy). */
  overflowExact: boolean;
  messages: number;
  limits: TreeLimits;
}

export interface Level {
  path: string;
  /** Children of this level (matching the filter, when one was given). */
  total: number;
  offset: number;
  items: TreeItem[];
  /** This node itself (topics, overflow, its own value). */
  self: TreeItem;
}

export interface LevelQuery {
  offset?: number;
  limit?: number;
  /** Case-insensitive part of a child name. */
  filter?: string;
}

export interface SearchResult {
  query: string;
  items: TreeItem[];
  /** More topics matched than were returned. */
  truncated: boolean;
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** FNV-1a of a string: the key of an overflow topic. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class TopicTree {
  readonly limits: TreeLimits;
  private root: TreeNode = TopicTree.newNode('', undefined);
  private nodeCount = 0;
  private messageCount = 0;
  private overflowSeen = new Set<number>();
  private overflowExact = true;

  constructor(limits: Partial<TreeLimits> = {}, private readonly now: () => number = Date.now) {
    this.limits = { ...DEFAULT_TREE_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`explorer limit ${name} must be an integer ≥ 1, got ${String(value)}`);
    }
  }

  private static newNode(name: string, parent: TreeNode | undefined): TreeNode {
    return { name, parent, children: undefined, sorted: undefined, topics: 0, overflow: 0, sample: undefined };
  }

  /** A message of `topic`: an empty payload clears the topic (a retained message deleted, MQTT v5.0 §3.3.1.3). */
  update(topic: string, payload: Buffer, retained: boolean): void {
    const levels = topic.split('/');
    if (payload.length === 0) this.remove(levels);
    else this.put(levels, payload, retained, undefined);
  }

  /** A value decoded on arrival (a Sparkplug metric) at `levels`. */
  putDecoded(levels: string[], value: TopicValue, bytes: number, retained: boolean): void {
    this.put(levels, Buffer.alloc(0), retained, value, bytes);
  }

  /** Forget the topic at `levels` (and the levels above it that hold nothing else). */
  remove(levels: string[]): void {
    let node: TreeNode | undefined = this.root;
    for (const level of levels) {
      node = node.children?.get(level);
      if (node === undefined) return;
    }
    if (node.sample === undefined) return;
    node.sample = undefined;
    for (let n: TreeNode | undefined = node; n !== undefined; n = n.parent) n.topics--;
    this.prune(node);
  }

  /** Forget every topic under `levels` (the level itself included), e.g. the metrics of a Sparkplug message before its next BIRTH. */
  removeChildren(levels: string[]): void {
    let node: TreeNode | undefined = this.root;
    for (const level of levels) {
      node = node.children?.get(level);
      if (node === undefined) return;
    }
    if (node.children === undefined) return;
    const below = node.topics - (node.sample ? 1 : 0);
    let removedNodes = 0;
    const count = (n: TreeNode): void => {
      for (const child of n.children?.values() ?? []) {
        removedNodes++;
        count(child);
      }
    };
    count(node);
    node.children = undefined;
    node.sorted = undefined;
    this.nodeCount -= removedNodes;
    for (let n: TreeNode | undefined = node; n !== undefined; n = n.parent) n.topics -= below;
    this.prune(node);
  }

  clear(): void {
    this.root = TopicTree.newNode('', undefined);
    this.nodeCount = 0;
    this.messageCount = 0;
    this.overflowSeen = new Set();
    this.overflowExact = true;
  }

  stats(): TreeStats {
    return { nodes: this.nodeCount, topics: this.root.topics, overflow: this.root.overflow, overflowExact: this.overflowExact, messages: this.messageCount, limits: this.limits };
  }

  /** The children of the level at `path` ('' = the top), sorted by name (numbers in names compared as numbers); undefined when no such level is stored. */
  level(path: string, query: LevelQuery = {}): Level | undefined {
    const node = this.find(path);
    if (node === undefined) return undefined;
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    const limit = Math.min(this.limits.maxPage, Math.max(1, Math.floor(query.limit ?? 200)));
    let names = this.sortedNames(node);
    const filter = query.filter?.trim().toLowerCase();
    if (filter) names = names.filter((name) => name.toLowerCase().includes(filter));
    const prefix = path === '' ? '' : `${path}/`;
    const items = names.slice(offset, offset + limit).map((name) => this.item(node.children!.get(name)!, prefix + name));
    return { path, total: names.length, offset, items, self: this.item(node, path) };
  }

  /**
   * Topics whose full path contains `query` (case-insensitive), depth first in display order; at
   * most `limit` (≤ maxPage), each stored node visited at most once.
   */
  search(query: string, limit = 200): SearchResult {
    const wanted = query.trim().toLowerCase();
    const max = Math.min(this.limits.maxPage, Math.max(1, Math.floor(limit)));
    const items: TreeItem[] = [];
    let truncated = false;
    if (wanted === '') return { query, items, truncated };
    const stack: Array<{ node: TreeNode; path: string }> = [{ node: this.root, path: '' }];
    while (stack.length > 0) {
      const { node, path } = stack.pop()!;
      if (node.sample !== undefined && path.toLowerCase().includes(wanted)) {
        if (items.length === max) {
          truncated = true;
          break;
        }
        items.push(this.item(node, path));
      }
      if (node.children === undefined) continue;
      const names = this.sortedNames(node);
      for (let i = names.length - 1; i >= 0; i--) {
        const name = names[i]!;
        stack.push({ node: node.children.get(name)!, path: path === '' ? name : `${path}/${name}` });
      }
    }
    return { query, items, truncated };
  }

  // ---- internals ----

  private put(levels: string[], payload: Buffer, retained: boolean, decoded: TopicValue | undefined, bytes = payload.length): void {
    this.messageCount++;
    let node = this.root;
    let depth = 0;
    for (const level of levels) {
      const child = node.children?.get(level);
      if (child !== undefined) {
        node = child;
        depth++;
        continue;
      }
      const needed = levels.length - depth;
      if (levels.length > this.limits.maxDepth || this.nodeCount + needed > this.limits.maxNodes) {
        this.countOverflow(node, levels.join('/'));
        return;
      }
      break;
    }
    for (let i = depth; i < levels.length; i++) {
      const child = TopicTree.newNode(levels[i]!, node);
      (node.children ??= new Map()).set(child.name, child);
      node.sorted = undefined;
      this.nodeCount++;
      node = child;
    }
    const kept = payload.length > this.limits.maxPayloadBytes ? payload.subarray(0, this.limits.maxPayloadBytes) : payload;
    const sample: Sample = {
      // A copy: MQTT.js may hand out a slice of a larger receive buffer, which must not stay alive.
      payload: Buffer.from(kept),
      bytes,
      // A broker delivers a retained message with the flag only when it is sent for a new subscription
      // (MQTT v3.1.1 §3.3.1.3, v5.0 without Retain As Published): later updates of the same retained
      // topic arrive without it, and the broker still holds the topic's latest value as retained.
      retained: retained || (node.sample?.retained ?? false),
      receivedAt: this.now(),
      messages: (node.sample?.messages ?? 0) + 1,
      decoded,
    };
    if (node.sample === undefined) {
      for (let n: TreeNode | undefined = node; n !== undefined; n = n.parent) n.topics++;
    }
    node.sample = sample;
  }

  private countOverflow(at: TreeNode, topic: string): void {
    if (this.overflowSeen.size < this.limits.maxOverflowTracked) {
      const key = hash32(topic);
      if (this.overflowSeen.has(key)) return;
      this.overflowSeen.add(key);
    } else {
      this.overflowExact = false;
    }
    for (let n: TreeNode | undefined = at; n !== undefined; n = n.parent) n.overflow++;
  }

  private prune(from: TreeNode): void {
    let node = from;
    while (node.parent !== undefined && node.sample === undefined && (node.children === undefined || node.children.size === 0)) {
      const parent = node.parent;
      parent.children!.delete(node.name);
      parent.sorted = undefined;
      this.nodeCount--;
      node = parent;
    }
  }

  private find(path: string): TreeNode | undefined {
    if (path === '') return this.root;
    let node: TreeNode | undefined = this.root;
    for (const level of path.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private sortedNames(node: TreeNode): string[] {
    if (node.children === undefined) return [];
    node.sorted ??= [...node.children.keys()].sort(collator.compare);
    return node.sorted;
  }

  private item(node: TreeNode, path: string): TreeItem {
    const item: TreeItem = { name: node.name, path, children: node.children?.size ?? 0, topics: node.topics, overflow: node.overflow };
    const sample = node.sample;
    if (sample !== undefined) {
      const value = sample.decoded ?? describePayload(sample.payload, sample.bytes);
      item.value = { ...value, retained: sample.retained, receivedAt: sample.receivedAt, bytes: sample.bytes, messages: sample.messages };
    }
    return item;
  }
}
