/**
 * Zone lint (issue 10 item 4, docs/zones.md § "Zone lint"): reads a Node-RED flows array and finds
 * - wire paths from a node that talks to one zone to a node that talks to another with no
 *   `uns-conduit` between (IEC 62443-3-3 SR 5.2: the conduit is the only sanctioned path),
 * - conduits wired against their configured zones, nodes talking to two zones at once, zone
 *   references to a missing zone, connections without a zone in a flow that uses zones,
 * - zero-trust gaps at zone boundaries (lib/zones/lint-zero-trust.ts),
 * - groups drawn as one zone holding a node of another.
 * No Node-RED import: `uns-edge check-zones`, the editor's admin endpoint and the deploy check share it.
 */
import { FlowIndex, flowEntries, FlowsFileError, type FlowEntry } from './lint-flows';
import { WireWalk } from './lint-graph';
import { connectionGaps, editorGap, type CredentialsById, type LintSettings, type Severity } from './lint-zero-trust';
import { CONDUIT_TYPE, ZoneModel, type Anchor, type Zone } from './lint-zone-model';

export { FlowsFileError, type LintSettings, type CredentialsById, type Severity };

/** The group environment variable that binds a group to a zone (its name or id): the group is drawn as the zone. */
export const GROUP_ZONE_VARIABLE = 'UNS_EDGE_ZONE';

export type FindingCode =
  | 'zone-crossing' | 'conduit-zone-mismatch' | 'several-zones' | 'unknown-zone' | 'unzoned-connection'
  | 'group-zone-mismatch' | 'group-unknown-zone'
  | 'no-tls' | 'tls-unverified' | 'no-authentication' | 'authentication-unknown' | 'opcua-security-none' | 'editor-without-admin-auth';

export interface ZoneFinding {
  code: FindingCode;
  severity: Severity;
  /** One line, naming the nodes and zones. */
  message: string;
  /** The nodes to select in the editor: the ends of a crossing first, config nodes included. */
  nodes: string[];
  /** Zone ids involved. */
  zones: string[];
  /** For crossings: node ids from the source to the target. */
  path?: string[];
}

export interface ZoneLintOptions {
  settings?: LintSettings;
  credentials?: CredentialsById;
}

export interface ZoneLintResult {
  findings: ZoneFinding[];
  /** Every uns-zone of the flows, for the editor (colour, label). */
  zones: Zone[];
  /** The zone each node talks to, or the zones that reach it through wires (node id → zone ids). */
  nodeZones: Record<string, string[]>;
  /** Group id → the zone it is bound to by its UNS_EDGE_ZONE variable. */
  groupZones: Record<string, string>;
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1 };

function groupZoneReference(group: FlowEntry): string | undefined {
  if (!Array.isArray(group.env)) return undefined;
  const variable = (group.env as Array<{ name?: unknown; value?: unknown }>).find((entry) => entry?.name === GROUP_ZONE_VARIABLE);
  return typeof variable?.value === 'string' && variable.value.trim() !== '' ? variable.value.trim() : undefined;
}

class Lint {
  readonly findings: ZoneFinding[] = [];
  private readonly flows: FlowIndex;
  private readonly model: ZoneModel;
  private readonly anchors = new Map<string, Anchor>();

  constructor(input: unknown, private readonly options: ZoneLintOptions) {
    this.flows = new FlowIndex(flowEntries(input));
    this.model = new ZoneModel(this.flows);
    for (const node of this.flows.active.values()) {
      const anchor = this.model.anchorOf(node);
      if (anchor) this.anchors.set(node.id, anchor);
    }
  }

  private add(finding: ZoneFinding): void {
    this.findings.push(finding);
  }

  private zoneText(zone: Zone): string {
    return `zone ${this.model.describe(zone)}`;
  }

  private checkAnchors(): void {
    const reportedConnections = new Set<string>();
    for (const [id, anchor] of this.anchors) {
      if (anchor.kind === 'several') {
        this.add({ code: 'several-zones', severity: 'error', nodes: [id, ...anchor.via], zones: anchor.zones.map((zone) => zone.id),
          message: `${this.flows.label(id)} talks to ${anchor.zones.map((zone) => this.zoneText(zone)).join(' and ')} at once: split it, with a conduit between` });
      } else if (anchor.kind === 'unzoned' && !reportedConnections.has(anchor.via)) {
        reportedConnections.add(anchor.via);
        // A node that owns its connection (uns-sparkplug-host, uns-opcua-server) is its own via: named once.
        const users = [...this.anchors].filter(([user, other]) => other.kind === 'unzoned' && other.via === anchor.via && user !== anchor.via).map(([user]) => user);
        if (anchor.missingZone) {
          this.add({ code: 'unknown-zone', severity: 'error', nodes: [anchor.via, ...users], zones: [],
            message: `${this.flows.label(anchor.via)} names zone ${anchor.missingZone}, which is not in the flows` });
        } else if (this.model.zones.size > 0) {
          this.add({ code: 'unzoned-connection', severity: 'warning', nodes: [anchor.via, ...users], zones: [],
            message: `${this.flows.label(anchor.via)} has no zone, in flows that use zones: its messages are not checked for crossings` });
        }
      }
    }
  }

  private checkWires(nodeZones: Record<string, string[]>): void {
    const walk = new WireWalk(this.flows, this.model, this.anchors).run();
    for (const [id, zones] of walk.zonesThrough) nodeZones[id] = [...zones];
    for (const reach of walk.reaches) {
      const source = this.flows.active.get(reach.source)!;
      const target = this.flows.active.get(reach.target)!;
      const pathText = reach.path.map((id) => this.flows.shortLabel(id)).join(' → ');
      if (target.type === CONDUIT_TYPE) {
        const { source: admits } = this.model.conduitZones(target);
        if (admits && admits.id !== reach.zone.id) {
          this.add({ code: 'conduit-zone-mismatch', severity: 'error', nodes: [reach.source, reach.target], zones: [reach.zone.id, admits.id], path: reach.path,
            message: `${this.flows.label(reach.target)} takes messages from ${this.zoneText(admits)}, but ${this.flows.label(reach.source)} feeds it from ${this.zoneText(reach.zone)} (${pathText})` });
        }
        continue;
      }
      const anchor = this.anchors.get(reach.target);
      if (anchor?.kind !== 'zone' || anchor.zone.id === reach.zone.id) continue;
      if (source.type === CONDUIT_TYPE) {
        this.add({ code: 'conduit-zone-mismatch', severity: 'error', nodes: [reach.source, reach.target], zones: [reach.zone.id, anchor.zone.id], path: reach.path,
          message: `${this.flows.label(reach.source)} passes into ${this.zoneText(reach.zone)}, but feeds ${this.flows.label(reach.target)} in ${this.zoneText(anchor.zone)} (${pathText})` });
        continue;
      }
      this.add({ code: 'zone-crossing', severity: 'error', nodes: [reach.source, reach.target], zones: [reach.zone.id, anchor.zone.id], path: reach.path,
        message: `${this.flows.label(reach.source)} in ${this.zoneText(reach.zone)} reaches ${this.flows.label(reach.target)} in ${this.zoneText(anchor.zone)} without a conduit (${pathText})` });
    }
  }

  private checkGaps(): void {
    const connections = new Map<string, Zone>();
    for (const anchor of this.anchors.values()) {
      if (anchor.kind === 'zone') connections.set(anchor.via, anchor.zone);
    }
    for (const [id, zone] of connections) {
      const connection = this.flows.byId.get(id)!;
      const users = [...this.anchors].filter(([, anchor]) => anchor.kind === 'zone' && anchor.via === id).map(([user]) => user);
      for (const gap of connectionGaps(connection, zone, this.options.credentials)) {
        this.add({ code: gap.code, severity: gap.severity, nodes: [id, ...users.filter((user) => user !== id)], zones: [zone.id], message: `${this.flows.label(id)} ${gap.message}` });
      }
    }
    if (this.options.settings) {
      const used = new Map([...connections.values()].map((zone) => [zone.id, zone]));
      const gap = editorGap(this.options.settings, [...used.values()]);
      if (gap) this.add({ code: gap.code, severity: gap.severity, nodes: [], zones: [...used.keys()], message: gap.message });
    }
  }

  private checkGroups(groupZones: Record<string, string>): void {
    const byName = new Map([...this.model.zones.values()].map((zone) => [zone.name, zone]));
    for (const group of this.flows.entries) {
      if (group.type !== 'group') continue;
      const reference = groupZoneReference(group);
      if (!reference) continue;
      const zone = this.model.zones.get(reference) ?? byName.get(reference);
      if (!zone) {
        this.add({ code: 'group-unknown-zone', severity: 'warning', nodes: [group.id], zones: [],
          message: `${this.flows.label(group.id)} is bound to zone "${reference}" (${GROUP_ZONE_VARIABLE}), which is not in the flows` });
        continue;
      }
      groupZones[group.id] = zone.id;
      for (const [id, anchor] of this.anchors) {
        if (this.flows.byId.get(id)?.g !== group.id || anchor.kind !== 'zone' || anchor.zone.id === zone.id) continue;
        this.add({ code: 'group-zone-mismatch', severity: 'warning', nodes: [id, group.id], zones: [zone.id, anchor.zone.id],
          message: `${this.flows.label(id)} talks to ${this.zoneText(anchor.zone)} but is drawn in ${this.flows.label(group.id)}, the group of ${this.zoneText(zone)}` });
      }
    }
  }

  run(): ZoneLintResult {
    const nodeZones: Record<string, string[]> = {};
    const groupZones: Record<string, string> = {};
    this.checkAnchors();
    this.checkWires(nodeZones);
    this.checkGaps();
    this.checkGroups(groupZones);
    for (const [id, anchor] of this.anchors) {
      if (anchor.kind === 'zone') nodeZones[id] = [anchor.zone.id];
      else if (anchor.kind === 'several') nodeZones[id] = anchor.zones.map((zone) => zone.id);
    }
    const findings = this.findings.map((finding, order) => ({ finding, order }))
      .sort((a, b) => SEVERITY_ORDER[a.finding.severity] - SEVERITY_ORDER[b.finding.severity] || a.order - b.order)
      .map(({ finding }) => finding);
    return { findings, zones: [...this.model.zones.values()], nodeZones, groupZones };
  }
}

/** Lint a flows array (or `{ flows }`); throws FlowsFileError when the input is not a flows file. */
export function lintZones(flows: unknown, options: ZoneLintOptions = {}): ZoneLintResult {
  return new Lint(flows, options).run();
}

/** Whether the findings fail a check: errors always, warnings too in strict mode. */
export function failsCheck(findings: ZoneFinding[], strict: boolean): boolean {
  return findings.some((finding) => finding.severity === 'error' || strict);
}

/** One line per finding, for the CLI and logs: `error zone-crossing: <message>`. */
export function formatFinding(finding: ZoneFinding): string {
  return `${finding.severity} ${finding.code}: ${finding.message}`;
}
