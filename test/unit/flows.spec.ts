/**
 * The flow templates in flows/ (shown under Import ▸ Examples): every file imports into Node-RED as
 * written — an array of nodes, unique ids, x/y on every flow node (a node without them is treated as a
 * config node), wires and config references that resolve, only types that Node-RED core or this
 * package registers — and every palette node of the package appears in some template (Node-RED
 * scorecard N02).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const repo = join(__dirname, '..', '..');
const flowsDir = join(repo, 'flows');

interface FlowNode { id: string; type: string; z?: string; x?: unknown; y?: unknown; wires?: string[][]; [property: string]: unknown }

/** Types registered in editor files: `RED.nodes.registerType('<type>', { category: '<category>'`. */
function registeredTypes(htmlFiles: string[]): Map<string, string> {
  const types = new Map<string, string>();
  for (const file of htmlFiles) {
    const html = readFileSync(file, 'utf8');
    for (const match of html.matchAll(/registerType\(\s*["']([^"']+)["']\s*,\s*\{\s*category:\s*["']([^"']+)["']/g)) {
      types.set(match[1]!, match[2]!);
    }
  }
  return types;
}

function htmlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.html') && !file.includes('locales'))
    .map((file) => join(dir, file));
}

const packageTypes = registeredTypes(htmlFilesUnder(join(repo, 'nodes')));
const coreTypes = registeredTypes(htmlFilesUnder(join(dirname(require.resolve('@node-red/nodes/package.json')), 'core')));
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
        assert.ok(node.type === 'tab' || coreTypes.has(node.type) || packageTypes.has(node.type), `${where}: unknown type`);
        const isConfig = packageTypes.get(node.type) === 'config' || coreTypes.get(node.type) === 'config';
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

  it('every palette node of the package appears in some template (scorecard N02)', () => {
    const used = new Set(templates.flatMap((file) => (JSON.parse(readFileSync(join(flowsDir, file), 'utf8')) as FlowNode[]).map((node) => node.type)));
    const missing = [...packageTypes].filter(([type, category]) => category !== 'config' && !used.has(type)).map(([type]) => type);
    assert.deepEqual(missing, [], `not in any flows/*.json: ${missing.join(', ')}`);
  });
});
