/**
 * The flow templates in flows/ (shown under Import ▸ Examples): every file imports into Node-RED as
 * written — an array of nodes, unique ids, x/y on every flow node (a node without them is treated as a
 * config node), wires and config references that resolve, only types that Node-RED core or this
 * package registers — and every palette node of the package appears in some template (Node-RED
 * scorecard N02). Imported as a user imports them (Import ▸ Examples does not fill in defaults), so
 * every node of the package sets every property its editor declares (a link without `transport`
 * opened with a blank Connection, issue 8 item 9); no template hard-codes where the broker or the
 * simulated plant is: hosts and ports are `${UNS_EDGE_…}` variables that the template's tab declares
 * with a default (docs/simulated-plant.md); every debug node is switched on (issue 8 item 11).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { registeredDefinitions } from '../helpers/editor-definitions';

const repo = join(__dirname, '..', '..');
const flowsDir = join(repo, 'flows');

interface FlowNode { id: string; type: string; z?: string; x?: unknown; y?: unknown; wires?: string[][]; [property: string]: unknown }

/** Types registered in editor files: `RED.nodes.registerType('<type>', { …, category: '<category>'`. */
function registeredTypes(htmlFiles: string[]): Map<string, string> {
  const types = new Map<string, string>();
  for (const file of htmlFiles) {
    const html = readFileSync(file, 'utf8');
    // `color` may come first (switch, change, function); Dashboard 2.0 widgets name their category through RED._(…).
    for (const match of html.matchAll(/registerType\(\s*["']([^"']+)["']\s*,\s*\{[^{}]*?category:\s*(?:["']([^"']+)["']|RED\._\()/g)) {
      types.set(match[1]!, match[2] ?? 'dashboard');
    }
  }
  return types;
}

function htmlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.html') && !file.includes('locales'))
    .map((file) => join(dir, file));
}

interface EditorDefinition { category: string; defaults: Record<string, { value?: unknown }> }

/** The node types the package's editor files register, with their category and `defaults`. */
function editorDefinitions(htmlFiles: string[]): Map<string, EditorDefinition> {
  const definitions = new Map<string, EditorDefinition>();
  for (const file of htmlFiles) {
    for (const { type, definition } of registeredDefinitions(readFileSync(file, 'utf8'))) {
      definitions.set(type, { category: String(definition.category), defaults: definition.defaults ?? {} });
    }
  }
  return definitions;
}

const packageDefinitions = editorDefinitions(htmlFilesUnder(join(repo, 'nodes')));
const packageTypes = new Map([...packageDefinitions].map(([type, { category }]) => [type, category]));
const coreTypes = registeredTypes(htmlFilesUnder(join(dirname(require.resolve('@node-red/nodes/package.json')), 'core')));
/** @flowfuse/node-red-dashboard, an optional peer dependency (the pilot-dashboard template). */
const dashboardTypes = registeredTypes(htmlFilesUnder(join(dirname(require.resolve('@flowfuse/node-red-dashboard/package.json')), 'nodes')));
const templates = readdirSync(flowsDir).filter((file) => file.endsWith('.json'));

describe('flow templates (flows/)', () => {
  it('the editor files register the package\'s node types', () => {
    assert.ok(packageTypes.has('uns-out') && packageTypes.get('uns-broker') === 'config', [...packageTypes.keys()].join(', '));
    assert.ok(coreTypes.has('inject') && coreTypes.has('debug'), 'core types found');
  });

  for (const file of templates) {
    it(`${file} imports as written`, () => {
      const flow = JSON.parse(readFileSync(join(flowsDir, file), 'utf8')) as FlowNode[];
      assert.ok(Array.isArray(flow) && flow.length > 0, 'an array of nodes');
      const ids = new Set(flow.map((node) => node.id));
      assert.equal(ids.size, flow.length, 'unique ids');
      for (const node of flow) {
        const where = `${file}: ${node.type} ${node.id}`;
        assert.ok(node.type === 'tab' || coreTypes.has(node.type) || packageTypes.has(node.type) || dashboardTypes.has(node.type), `${where}: unknown type`);
        const isConfig = [packageTypes, coreTypes, dashboardTypes].some((types) => types.get(node.type) === 'config');
        if (node.type === 'tab' || isConfig) continue;
        assert.ok(node.z && ids.has(node.z), `${where}: on a tab of the file`);
        assert.ok(typeof node.x === 'number' && typeof node.y === 'number', `${where}: x/y (without them Node-RED treats it as a config node)`);
        for (const target of (node.wires ?? []).flat()) assert.ok(ids.has(target), `${where}: wire to missing ${target}`);
        for (const property of ['broker', 'link', 'edge']) {
          const reference = node[property];
          if (typeof reference === 'string' && reference !== '') assert.ok(ids.has(reference), `${where}: ${property} ${reference} missing`);
        }
      }
    });
  }

  it('the editor defaults of the package\'s node types are read', () => {
    assert.ok('transport' in packageDefinitions.get('uns-modbus-link')!.defaults && 'port' in packageDefinitions.get('uns-sparkplug-edge')!.defaults);
  });

  for (const file of templates) {
    const flow = JSON.parse(readFileSync(join(flowsDir, file), 'utf8')) as FlowNode[];
    const tab = flow.find((node) => node.type === 'tab');

    it(`${file}: every node of the package sets every property of its editor defaults (the dialog opens complete)`, () => {
      for (const node of flow.filter((n) => packageDefinitions.has(n.type))) {
        const missing = Object.keys(packageDefinitions.get(node.type)!.defaults).filter((property) => !(property in node));
        assert.deepEqual(missing, [], `${file}: ${node.type} ${node.id} lacks ${missing.join(', ')}`);
      }
    });

    it(`${file}: hosts and ports are \${UNS_EDGE_…} variables with defaults on the tab, not 1883/5020`, () => {
      assert.ok(tab, 'one tab');
      const declared = new Map(((tab.env ?? []) as Array<{ name: string; value: string; type: string }>).map((v) => [v.name, v]));
      for (const node of flow.filter((n) => packageTypes.has(n.type))) {
        for (const property of ['host', 'port'] as const) {
          // An RTU link's TCP host/port are unused: its serial device is the variable (legacy-rtu-4-20ma).
          if (!(property in node) || (node.type === 'uns-modbus-link' && node.transport === 'rtu')) continue;
          const variable = /^\$\{(UNS_EDGE_\w+_(?:HOST|PORT))\}$/.exec(String(node[property]))?.[1];
          assert.ok(variable, `${file}: ${node.type} ${node.id} ${property} ${JSON.stringify(node[property])}: not a \${UNS_EDGE_…} variable`);
        }
        // Every ${VAR} property: declared on the tab (else Node-RED leaves the text as is when the
        // variable is set nowhere), and the node on the tab, since a config node without z is global.
        for (const [property, value] of Object.entries(node)) {
          const variable = /^\$\{(\w+)\}$/.exec(String(value))?.[1];
          if (!variable) continue;
          const where = `${file}: ${node.type} ${node.id} ${property} ${String(value)}`;
          assert.ok(declared.has(variable), `${where}: ${variable} is not declared on the tab`);
          assert.equal(node.z, tab.id, `${where}: on the tab, so the tab's variables apply`);
        }
      }
      const defaults: Record<string, string> = { UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: '1883', UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: '5020' };
      for (const [name, { value, type }] of declared) {
        assert.equal(type, 'jsonata', `${name}: a JSONata fallback`);
        const fallback = /^\$env\("\$parent\.(\w+)"\) \? \$env\("\$parent\.(\w+)"\) : "([^"]+)"$/.exec(value);
        assert.ok(fallback && fallback[1] === name && fallback[2] === name, `${name}: the process environment's value, else a default: ${value}`);
        if (name in defaults) assert.equal(fallback[3], defaults[name], `${name}: the default of uns-edge demo/simulate`);
      }
    });

    it(`${file}: every debug node is switched on`, () => {
      const off = flow.filter((node) => node.type === 'debug' && node.active !== true).map((node) => `${node.id} (${String(node.name)})`);
      assert.deepEqual(off, [], `${file}: debug nodes shipped switched off`);
    });
  }

  it('every palette node of the package appears in some template (scorecard N02)', () => {
    const used = new Set(templates.flatMap((file) => (JSON.parse(readFileSync(join(flowsDir, file), 'utf8')) as FlowNode[]).map((node) => node.type)));
    const missing = [...packageTypes].filter(([type, category]) => category !== 'config' && !used.has(type)).map(([type]) => type);
    assert.deepEqual(missing, [], `not in any flows/*.json: ${missing.join(', ')}`);
  });
});
