/**
 * Zones as the lint sees them: the `uns-zone` config nodes of a flows file, and which zone each
 * flow node talks to. A node's zone comes from the connection it uses: the `zone` property of its
 * config node (uns-broker, uns-modbus-link, uns-sparkplug-edge, uns-opcua-endpoint,
 * uns-pubsub-connection, or any later config node that has one), or its own `zone` property when
 * the node owns its connection (uns-sparkplug-host, and uns-opcua-server, the OPC UA boundary toward
 * SCADA/MES). docs/zones.md § "Zone lint".
 */
import type { FlowEntry, FlowIndex } from './lint-flows';

/** IEC 62443-3-3 foundational requirements, in the order of the SL-T vector (reference/security.md §1). */
export const FOUNDATIONAL_REQUIREMENTS = ['IAC', 'UC', 'SI', 'DC', 'RDF', 'TRE', 'RA'] as const;
export type FoundationalRequirement = typeof FOUNDATIONAL_REQUIREMENTS[number];

export const ZONE_TYPE = 'uns-zone';
export const CONDUIT_TYPE = 'uns-conduit';
/** Config nodes that own a connection and take a zone (issue 10 item 1); others count once they have `zone`. */
export const CONNECTION_CONFIG_TYPES: readonly string[] = ['uns-broker', 'uns-modbus-link', 'uns-sparkplug-edge', 'uns-opcua-endpoint', 'uns-pubsub-connection'];
/** Flow nodes that own their connection (a client, or a server others connect to) and so take a zone themselves. */
export const CONNECTION_NODE_TYPES: readonly string[] = ['uns-sparkplug-host', 'uns-opcua-server'];

export interface Zone {
  id: string;
  name: string;
  /** Purdue level 0…4, 3.5 for a DMZ; NaN when not set. */
  level: number;
  /** Target security level per FR, 1…4 (1 when missing or unreadable). */
  slt: Record<FoundationalRequirement, number>;
  colour?: string;
}

/** `"2,2,1,2,1,1,1"` → SL-T per FR; a single number applies to every FR. */
export function parseSecurityLevels(value: unknown): Record<FoundationalRequirement, number> {
  const parts = Array.isArray(value) ? value.map(Number) : String(value ?? '').split(/[,\s]+/).filter(Boolean).map(Number);
  const levels = parts.length === 1 ? FOUNDATIONAL_REQUIREMENTS.map(() => parts[0]!) : parts;
  return Object.fromEntries(FOUNDATIONAL_REQUIREMENTS.map((fr, index) => {
    const level = levels[index];
    return [fr, level !== undefined && Number.isInteger(level) && level >= 1 && level <= 4 ? level : 1];
  })) as Record<FoundationalRequirement, number>;
}

/** Where a flow node's zone comes from. */
export type Anchor =
  | { kind: 'zone'; zone: Zone; via: string }
  /** A connection without a zone, or with a zone id that names no uns-zone. */
  | { kind: 'unzoned'; via: string; missingZone?: string }
  /** Talks to two zones at once (two zoned config nodes). */
  | { kind: 'several'; zones: Zone[]; via: string[] };

export class ZoneModel {
  readonly zones = new Map<string, Zone>();

  constructor(private readonly flows: FlowIndex) {
    for (const entry of flows.entries) {
      if (entry.type !== ZONE_TYPE) continue;
      const name = typeof entry.name === 'string' && entry.name !== '' ? entry.name : entry.id;
      this.zones.set(entry.id, {
        id: entry.id,
        name,
        level: Number(entry.level),
        slt: parseSecurityLevels(entry.slt),
        ...(typeof entry.colour === 'string' && entry.colour !== '' ? { colour: entry.colour } : {}),
      });
    }
  }

  /** A node or config node that owns a connection (and so takes a zone). */
  ownsConnection(entry: FlowEntry): boolean {
    return entry.type !== CONDUIT_TYPE && entry.type !== ZONE_TYPE
      && (CONNECTION_CONFIG_TYPES.includes(entry.type) || CONNECTION_NODE_TYPES.includes(entry.type)
        || Object.prototype.hasOwnProperty.call(entry, 'zone'));
  }

  /** The zone a connection-owning entry names, or why it has none. */
  zoneOfConnection(entry: FlowEntry): { zone: Zone } | { missingZone?: string } {
    const reference = entry.zone;
    if (typeof reference !== 'string' || reference === '') return {};
    const zone = this.zones.get(reference);
    return zone ? { zone } : { missingZone: reference };
  }

  /** The zone a flow node talks to, or undefined for a node that only passes messages on. */
  anchorOf(node: FlowEntry): Anchor | undefined {
    const connections: FlowEntry[] = [];
    if (this.ownsConnection(node)) connections.push(node);
    if (node.type !== CONDUIT_TYPE) {
      for (const [property, value] of Object.entries(node)) {
        if (property === 'id' || property === 'z' || property === 'g' || typeof value !== 'string') continue;
        const config = this.flows.byId.get(value);
        if (config && config !== node && !this.flows.isFlowNode(config) && this.ownsConnection(config)) connections.push(config);
      }
    }
    if (connections.length === 0) return undefined;
    const zoned = new Map<string, { zone: Zone; via: string }>();
    let unzoned: Anchor | undefined;
    for (const connection of connections) {
      const found = this.zoneOfConnection(connection);
      if ('zone' in found) zoned.set(found.zone.id, { zone: found.zone, via: connection.id });
      else unzoned ??= { kind: 'unzoned', via: connection.id, ...(found.missingZone ? { missingZone: found.missingZone } : {}) };
    }
    if (zoned.size > 1) return { kind: 'several', zones: [...zoned.values()].map((z) => z.zone), via: [...zoned.values()].map((z) => z.via) };
    const [only] = zoned.values();
    return only ? { kind: 'zone', zone: only.zone, via: only.via } : unzoned;
  }

  /** The zones a conduit is configured between (undefined where not set or unknown). */
  conduitZones(conduit: FlowEntry): { source?: Zone; destination?: Zone } {
    const lookup = (value: unknown): Zone | undefined => (typeof value === 'string' ? this.zones.get(value) : undefined);
    const source = lookup(conduit.sourceZone);
    const destination = lookup(conduit.destinationZone);
    return { ...(source ? { source } : {}), ...(destination ? { destination } : {}) };
  }

  describe(zone: Zone): string {
    return Number.isNaN(zone.level) ? `"${zone.name}"` : `"${zone.name}" (L${zone.level})`;
  }
}
