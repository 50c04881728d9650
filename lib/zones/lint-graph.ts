/**
 * The wire walk of the zone lint (docs/zones.md § "Zone lint"): from every node that talks to a
 * zone, follow the wires through the nodes that only pass messages on (function, change, switch,
 * junctions, link nodes, subflows) until a node that talks to a zone or a conduit is reached. A
 * node of another zone reached that way is a crossing without a conduit.
 *
 * - `link out` → its `link in` nodes; a static `link call` enters its `link in` and a `link out` in
 *   return mode goes back to that call's outputs (with no call known: to every static link call).
 *   A dynamic link call picks its target per message and is not followed.
 * - A subflow instance enters its subflow's input; a subflow output leaves through the instance
 *   that was entered (a source inside the subflow leaves through every instance of it).
 * - A conduit passes what its policy allows from its source zone to its destination zone on
 *   output 1; output 2 carries decision records (no values) and is not followed.
 * - Disabled nodes and disabled tabs pass nothing. Catch, status and complete nodes receive
 *   messages without wires and are not followed (best effort).
 */
import { outputWires, type FlowEntry, type FlowIndex } from './lint-flows';
import { CONDUIT_TYPE, type Anchor, type Zone, type ZoneModel } from './lint-zone-model';

/** Nested link calls and subflows deeper than this are not followed (a loop of calls would never end). */
const MAX_CALL_DEPTH = 16;
/** Output port of a conduit that carries what passed; the other one carries decision records. */
const CONDUIT_PASSED_PORT = 0;

type Frame = { kind: 'link-call' | 'subflow'; id: string };

interface Arrival {
  id: string;
  frames: Frame[];
  /** The previous arrival, for the path of a finding. */
  from?: Arrival;
}

/** A path from a node that talks to a zone (or a conduit's output) to the next such node or conduit. */
export interface Reach {
  /** The node messages leave (a zoned node or a conduit). */
  source: string;
  /** The zone they carry: the source node's zone, or a conduit's destination zone. */
  zone: Zone;
  /** The zoned node or conduit reached. */
  target: string;
  /** Node ids from source to target, link/junction/subflow hops included. */
  path: string[];
}

export interface WalkResult {
  reaches: Reach[];
  /** Zone ids reaching each node that only passes messages on. */
  zonesThrough: Map<string, Set<string>>;
}

export class WireWalk {
  constructor(private readonly flows: FlowIndex, private readonly zones: ZoneModel, private readonly anchors: Map<string, Anchor>) {}

  /** Arrivals one hop after `node` leaves through `ports` (all ports when undefined). */
  private leave(node: FlowEntry, frames: Frame[], from: Arrival, ports?: number[]): Arrival[] {
    const next: Arrival[] = [];
    const wires = outputWires(node);
    wires.forEach((targets, port) => {
      if (ports && !ports.includes(port)) return;
      for (const id of targets) next.push({ id, frames, from });
    });
    next.push(...this.leaveSubflow(node, frames, from, ports));
    return next;
  }

  /** A node inside a subflow wired to the subflow's outputs leaves through the instance. */
  private leaveSubflow(node: FlowEntry, frames: Frame[], from: Arrival, ports?: number[]): Arrival[] {
    const subflow = typeof node.z === 'string' ? this.flows.containers.get(node.z) : undefined;
    if (subflow?.type !== 'subflow' || !Array.isArray(subflow.out)) return [];
    const next: Arrival[] = [];
    (subflow.out as Array<{ wires?: Array<{ id?: string; port?: number }> }>).forEach((output, outputPort) => {
      const fed = (output.wires ?? []).some((wire) => wire.id === node.id && (!ports || ports.includes(wire.port ?? 0)));
      if (fed) next.push(...this.throughInstances(subflow.id, outputPort, frames, from));
    });
    return next;
  }

  /** Out of subflow output `port`: through the instance that was entered, else through every instance. */
  private throughInstances(subflowId: string, port: number, frames: Frame[], from: Arrival): Arrival[] {
    const top = frames[frames.length - 1];
    const instances = top?.kind === 'subflow' && this.flows.active.get(top.id)?.type === `subflow:${subflowId}`
      ? [this.flows.active.get(top.id)!]
      : [...this.flows.active.values()].filter((entry) => entry.type === `subflow:${subflowId}`);
    const outer = top?.kind === 'subflow' ? frames.slice(0, -1) : frames;
    return instances.flatMap((instance) => (outputWires(instance)[port] ?? []).map((id) => ({ id, frames: outer, from })));
  }

  /** Where a message arriving at a pass-through node goes next. */
  private onwards(arrival: Arrival, node: FlowEntry): Arrival[] {
    const { frames } = arrival;
    const links = Array.isArray(node.links) ? node.links.filter((id): id is string => typeof id === 'string') : [];
    if (node.type === 'link out') {
      if (node.mode !== 'return') return links.map((id) => ({ id, frames, from: arrival }));
      const top = frames[frames.length - 1];
      if (top?.kind === 'link-call') {
        const call = this.flows.active.get(top.id);
        return call ? this.leave(call, frames.slice(0, -1), arrival) : [];
      }
      return [...this.flows.active.values()].filter((entry) => entry.type === 'link call' && entry.linkType !== 'dynamic')
        .flatMap((call) => this.leave(call, frames, arrival));
    }
    if (node.type === 'link call') {
      if (node.linkType === 'dynamic' || frames.length >= MAX_CALL_DEPTH) return [];
      return links.map((id) => ({ id, frames: [...frames, { kind: 'link-call', id: node.id }], from: arrival }));
    }
    if (node.type.startsWith('subflow:')) {
      const subflow = this.flows.containers.get(node.type.slice('subflow:'.length));
      if (!subflow || frames.length >= MAX_CALL_DEPTH) return [];
      const inner: Frame[] = [...frames, { kind: 'subflow', id: node.id }];
      const inputs = Array.isArray(subflow.in) ? subflow.in as Array<{ wires?: Array<{ id?: string }> }> : [];
      const entered = inputs.flatMap((input) => (input.wires ?? []).map((wire) => wire.id)).filter((id): id is string => typeof id === 'string')
        .map((id) => ({ id, frames: inner, from: arrival }));
      // A subflow input wired straight to one of its outputs.
      const straight = Array.isArray(subflow.out)
        ? (subflow.out as Array<{ wires?: Array<{ id?: string }> }>).flatMap((output, port) => ((output.wires ?? []).some((wire) => wire.id === subflow.id) ? this.throughInstances(subflow.id, port, inner, arrival) : []))
        : [];
      return [...entered, ...straight];
    }
    return this.leave(node, frames, arrival);
  }

  private static pathOf(arrival: Arrival): string[] {
    const path: string[] = [];
    for (let at: Arrival | undefined = arrival; at; at = at.from) path.unshift(at.id);
    return path;
  }

  /** Breadth first from one source, so each target is reached by a shortest path. */
  private walkFrom(source: FlowEntry, zone: Zone, ports: number[] | undefined, result: WalkResult): void {
    const start: Arrival = { id: source.id, frames: [] };
    const queue = this.leave(source, [], start, ports);
    const seen = new Set<string>();
    const reached = new Set<string>();
    for (let index = 0; index < queue.length; index++) {
      const arrival = queue[index]!;
      const key = `${arrival.id}|${arrival.frames.map((frame) => frame.id).join(',')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const node = this.flows.active.get(arrival.id);
      if (!node) continue;
      if (this.anchors.has(node.id) || node.type === CONDUIT_TYPE) {
        if (!reached.has(node.id)) {
          reached.add(node.id);
          result.reaches.push({ source: source.id, zone, target: node.id, path: WireWalk.pathOf(arrival) });
        }
        continue;
      }
      let through = result.zonesThrough.get(node.id);
      if (!through) result.zonesThrough.set(node.id, (through = new Set()));
      through.add(zone.id);
      queue.push(...this.onwards(arrival, node));
    }
  }

  run(): WalkResult {
    const result: WalkResult = { reaches: [], zonesThrough: new Map() };
    for (const node of this.flows.active.values()) {
      const anchor = this.anchors.get(node.id);
      if (anchor?.kind === 'zone') this.walkFrom(node, anchor.zone, undefined, result);
      if (node.type === CONDUIT_TYPE) {
        const { destination } = this.zones.conduitZones(node);
        if (destination) this.walkFrom(node, destination, [CONDUIT_PASSED_PORT], result);
      }
    }
    return result;
  }
}
