/**
 * The template set as a whole (issue 14 item 1; docs/templates.md § "One asset, one path"): a user
 * imports several templates into one runtime (Import ▸ Examples beside the running demo, or
 * `uns-edge new` twice), so no two templates may fight over the same retained topics.
 *
 * Each template's claims are computed from its nodes with the tab's variable defaults:
 * - uns-out (retained): the asset path of each node upstream that names one (`topic`, a Sparkplug
 *   host's device/node path), under the uns-out's topic prefix. The same path, or one inside
 *   another, in two templates is meant only when both publish the same asset the same way: the
 *   same drive of the simulated plant (Modbus unit N on ${UNS_EDGE_SIM_…} is OPC UA DriveN on
 *   ${UNS_EDGE_OPCUA_…}: one drive, one ISA-95 path) in the same payload format. Anything else
 *   writing there is a fight.
 * - Sparkplug identities, which are exclusive: an edge node (group/edge id: two sessions would kill
 *   each other's) and a host application's retained STATE topic.
 * And each template's info says what it shows (a first sentence, listed by `uns-edge templates`) and
 * how to adapt it (it names every variable its tab declares).
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { loadTemplates, type FlowNode, type FlowTemplate } from '../../lib/templates/templates';

const templates = loadTemplates(join(__dirname, '..', '..', 'flows'));

interface RetainedClaim {
  template: string;
  /** The asset path, variables resolved. */
  root: string;
  /** Who writes there: `simulated drive N`, else the publishing node itself (unique). */
  source: string;
  format: string;
  via: string;
}

/** A property's text with the template's ${VAR}s replaced by their defaults. */
function resolve(template: FlowTemplate, text: string): string {
  return text.replace(/\$\{(\w+)\}/g, (whole, name: string) => template.variables.find((v) => v.name === name)?.defaultValue ?? whole);
}

/** The simulated plant's drive a node reads, when it reads one through the template's plant variables. */
function simulatedDrive(node: FlowNode, byId: Map<string, FlowNode>): number | undefined {
  if (node.type === 'uns-vfd') {
    const link = byId.get(String(node.link));
    const onPlant = link?.host === '${UNS_EDGE_SIM_HOST}' && link.port === '${UNS_EDGE_SIM_PORT}';
    return onPlant ? Number(node.unitId) : undefined;
  }
  if (node.type === 'uns-opcua-subscribe') {
    const endpoint = byId.get(String(node.endpoint));
    const onPlant = String(endpoint?.endpointUrl).includes('${UNS_EDGE_OPCUA_HOST}');
    const drives = new Set(((node.metrics ?? []) as Array<{ nodeId: string }>).map((metric) => /^ns=2;s=Drive(\d+)\./.exec(metric.nodeId)?.[1]));
    return onPlant && drives.size === 1 && !drives.has(undefined) ? Number([...drives][0]) : undefined;
  }
  return undefined;
}

function joinTopic(prefix: string, topic: string): string {
  return [prefix, topic].filter(Boolean).join('/').replace(/\/+/g, '/');
}

/** The retained asset paths of every uns-out, from the nearest upstream node that names one. */
function retainedClaims(template: FlowTemplate): { claims: RetainedClaim[]; unresolved: string[] } {
  const byId = new Map(template.nodes.map((node) => [node.id, node]));
  const upstream = new Map<string, string[]>();
  for (const node of template.nodes) {
    for (const target of ((node.wires ?? []) as string[][]).flat()) upstream.set(target, [...(upstream.get(target) ?? []), node.id]);
  }
  const claims: RetainedClaim[] = [];
  const unresolved: string[] = [];
  for (const out of template.nodes.filter((node) => node.type === 'uns-out' && node.retain !== false)) {
    const seen = new Set<string>();
    const pending = [...(upstream.get(out.id) ?? [])];
    let found = 0;
    while (pending.length > 0) {
      const node = byId.get(pending.pop()!)!;
      if (seen.has(node.id)) continue;
      seen.add(node.id);
      const paths = node.type === 'uns-sparkplug-host'
        ? [String(node.devicePath), String(node.nodePath)].map((path) => path.replace('{group}', String(node.groups).split(',')[0]!.trim()).replace(/\/\{(edge|device)\}.*$/, ''))
        : typeof node.topic === 'string' && node.topic !== '' ? [node.topic] : [];
      if (paths.length === 0) {
        pending.push(...(upstream.get(node.id) ?? []));
        continue;
      }
      found += 1;
      const drive = simulatedDrive(node, byId);
      for (const path of paths) {
        claims.push({
          template: template.name, root: resolve(template, joinTopic(String(out.topicPrefix ?? ''), path)),
          source: drive === undefined ? `${template.name}: ${node.type} ${node.id}` : `simulated drive ${drive}`,
          format: String(out.format ?? 'metric'), via: `${node.type} ${node.id} → uns-out ${out.id}`,
        });
      }
    }
    if (found === 0) unresolved.push(`${template.name}: uns-out ${out.id}`);
  }
  return { claims, unresolved };
}

/** Exclusive identities: a Sparkplug edge node's session and a host application's retained STATE. */
function exclusiveClaims(template: FlowTemplate): Array<{ template: string; identity: string }> {
  return template.nodes.flatMap((node) => {
    if (node.type === 'uns-sparkplug-edge') return [{ template: template.name, identity: `spBv1.0/${resolve(template, String(node.groupId))} edge node ${resolve(template, String(node.edgeNodeId))}` }];
    if (node.type === 'uns-sparkplug-host') return [{ template: template.name, identity: `spBv1.0/STATE/${resolve(template, String(node.hostId))}` }];
    return [];
  });
}

const within = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

describe('the template set (flows/*.json) is consistent', () => {
  const computed = templates.map(retainedClaims);
  const claims = computed.flatMap((c) => c.claims);

  it('the claims are computed: every retained uns-out of a template resolves to asset paths', () => {
    assert.ok(claims.some((claim) => claim.template === 'demo' && claim.root === 'acme/plant1/packaging/line1/cell1/drive1' && claim.source === 'simulated drive 1'), JSON.stringify(claims));
    assert.deepEqual(computed.flatMap((c) => c.unresolved), [], 'a uns-out fed by no node naming an asset path');
  });

  it('no two templates fight over a retained UNS path: a shared path is the same asset, published the same way', () => {
    const fights: string[] = [];
    for (const [index, a] of claims.entries()) {
      for (const b of claims.slice(index + 1)) {
        if (a.template === b.template || !within(a.root, b.root)) continue;
        const sameAsset = a.root === b.root && a.source === b.source && a.format === b.format;
        if (!sameAsset) fights.push(`${a.template} (${a.via}: ${a.root}, ${a.source}, ${a.format}) vs ${b.template} (${b.via}: ${b.root}, ${b.source}, ${b.format})`);
      }
    }
    assert.deepEqual(fights, []);
  });

  it('the check catches a fight: another drive, or another format, on a path a template already writes', () => {
    const demo = templates.find((t) => t.name === 'demo')!;
    const tampered: FlowTemplate = { ...demo, name: 'tampered', nodes: demo.nodes.map((n) => (n.type === 'uns-vfd' && n.unitId === 1 ? { ...n, unitId: 3 } : n)) };
    const drive1 = (c: RetainedClaim) => c.root.endsWith('/drive1');
    assert.notEqual(retainedClaims(tampered).claims.find(drive1)!.source, retainedClaims(demo).claims.find(drive1)!.source);
  });

  it('Sparkplug edge node and host ids are each used by one template', () => {
    const exclusive = templates.flatMap(exclusiveClaims);
    const taken = new Map<string, string>();
    const clashes: string[] = [];
    for (const { template, identity } of exclusive) {
      if (taken.has(identity) && taken.get(identity) !== template) clashes.push(`${identity}: ${taken.get(identity)} and ${template}`);
      taken.set(identity, template);
    }
    assert.deepEqual(clashes, []);
  });

  for (const template of templates) {
    it(`${template.name}: its info says what it shows (one sentence for uns-edge templates) and how to adapt it (every variable named)`, () => {
      assert.ok(template.summary.length >= 30 && /[.!?]$/.test(template.summary), `${template.name}: the info's first sentence "${template.summary}"`);
      // Named in full, or as the shorthand UNS_EDGE_MQTT_HOST/PORT for UNS_EDGE_MQTT_PORT.
      const named = (name: string) => {
        const [, base, last] = /^(.*)_([A-Z0-9]+)$/.exec(name) ?? [];
        return template.info.includes(name) || (base !== undefined && new RegExp(`${base}_[A-Z0-9]+/${last}\\b`).test(template.info));
      };
      const unnamed = template.variables.map((v) => v.name).filter((name) => !named(name));
      assert.deepEqual(unnamed, [], `${template.name}: the info does not say what these variables set`);
      assert.ok(template.variables.length > 0, `${template.name}: declares where its peers are as variables`);
    });
  }
});
