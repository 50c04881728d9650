/**
 * The flows file as the zone lint reads it (docs/zones.md § "Zone lint"): a Node-RED flows array
 * (`flows.json`, the editor's export, or GET /flows' `{ flows, rev }`), checked for shape and indexed
 * by id. Disabled nodes and the nodes of disabled tabs carry no messages, so they are left out of
 * the index the wire walk uses. No Node-RED import: the CLI, the admin endpoint and the tests share it.
 */

/** One entry of a flows file: every entry has an id and a type; flow nodes have `z`, `wires`, x/y. */
export interface FlowEntry {
  id: string;
  type: string;
  z?: string;
  name?: string;
  d?: boolean;
  disabled?: boolean;
  wires?: unknown;
  [property: string]: unknown;
}

export class FlowsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowsFileError';
    Object.setPrototypeOf(this, FlowsFileError.prototype);
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The entries of a flows file, or a FlowsFileError that says what is wrong with it. */
export function flowEntries(input: unknown): FlowEntry[] {
  const entries = typeof input === 'object' && input !== null && !Array.isArray(input) && Array.isArray((input as { flows?: unknown }).flows)
    ? (input as { flows: unknown[] }).flows
    : input;
  if (!Array.isArray(entries)) {
    throw new FlowsFileError(`not a Node-RED flows file: expected a JSON array of nodes, got ${describeValue(entries)}`);
  }
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new FlowsFileError(`not a Node-RED flows file: entry ${index} is ${describeValue(entry)}, not a node`);
    }
    const { id, type } = entry as { id?: unknown; type?: unknown };
    if (typeof id !== 'string' || id === '') throw new FlowsFileError(`not a Node-RED flows file: entry ${index} has no string id`);
    if (typeof type !== 'string' || type === '') throw new FlowsFileError(`not a Node-RED flows file: entry ${index} (${id}) has no string type`);
    if (seen.has(id)) throw new FlowsFileError(`bad flows file: the id ${id} is used twice (entry ${index})`);
    seen.add(id);
  });
  return entries as FlowEntry[];
}

/** Output port → target node ids, as written in `wires` (malformed wires are ignored, not guessed). */
export function outputWires(entry: FlowEntry): string[][] {
  if (!Array.isArray(entry.wires)) return [];
  return entry.wires.map((port) => (Array.isArray(port) ? port.filter((id): id is string => typeof id === 'string') : []));
}

/** The flows indexed for the lint. */
export class FlowIndex {
  /** Every entry, disabled or not (config nodes, tabs, subflows, groups included). */
  readonly byId = new Map<string, FlowEntry>();
  /** Tab and subflow definitions. */
  readonly containers = new Map<string, FlowEntry>();
  /** Nodes that carry messages: on a tab or in a subflow, with x/y or wires, not disabled. */
  readonly active = new Map<string, FlowEntry>();

  constructor(readonly entries: FlowEntry[]) {
    for (const entry of entries) {
      this.byId.set(entry.id, entry);
      if (entry.type === 'tab' || entry.type === 'subflow') this.containers.set(entry.id, entry);
    }
    for (const entry of entries) {
      if (this.isFlowNode(entry) && !this.isDisabled(entry)) this.active.set(entry.id, entry);
    }
  }

  /** A node drawn on a tab or in a subflow (Node-RED: a node without x/y and wires is a config node). */
  isFlowNode(entry: FlowEntry): boolean {
    if (entry.type === 'tab' || entry.type === 'subflow' || entry.type === 'group') return false;
    if (typeof entry.z !== 'string' || !this.containers.has(entry.z)) return false;
    return Array.isArray(entry.wires) || typeof entry.x === 'number';
  }

  isDisabled(entry: FlowEntry): boolean {
    if (entry.d === true) return true;
    const container = typeof entry.z === 'string' ? this.containers.get(entry.z) : undefined;
    return container?.type === 'tab' && container.disabled === true;
  }

  /** `"name" (type id) on "tab"`, how a finding names a node. */
  label(id: string): string {
    const entry = this.byId.get(id);
    if (!entry) return id;
    const name = typeof entry.name === 'string' && entry.name !== '' ? `"${entry.name}" ` : '';
    const container = typeof entry.z === 'string' ? this.containers.get(entry.z) : undefined;
    const where = container ? ` on ${container.type === 'tab' ? 'tab' : 'subflow'} "${String(container.label ?? container.name ?? container.id)}"` : '';
    return `${name}(${entry.type} ${entry.id})${where}`;
  }

  /** The short name of a node for a path: its name, else its type. */
  shortLabel(id: string): string {
    const entry = this.byId.get(id);
    if (!entry) return id;
    return typeof entry.name === 'string' && entry.name !== '' ? entry.name : entry.type;
  }
}
