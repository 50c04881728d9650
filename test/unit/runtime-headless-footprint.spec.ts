/**
 * lib/runtime/headless-footprint.ts: a gateway without the admin API loads only the core node files,
 * the optional dashboard and the uns-edge node sets its flows use; cli/node-red-server.ts starts it
 * without Node-RED's editor API and without MQTT.js's number cache (issue 12 item 5, docs/gateway.md
 * § "What a headless gateway does not load"). The Node-RED cases need the build (npm run build).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSettings, TRIMMED_PACKAGE_DIR, type RuntimeOptions } from '../../lib/runtime/settings';
import { DASHBOARD_MODULE, headlessTrim, nodeSetTypes, unusedNodeSets } from '../../lib/runtime/headless-footprint';

const REPO_ROOT = resolve(__dirname, '..', '..');
const DEMO_FLOW = readFileSync(join(REPO_ROOT, 'flows', 'demo.json'), 'utf8');
const SECRET = '0123456789abcdef0123456789abcdef';
const MANIFEST = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string>; plugins: Record<string, string> } };
/** The node sets flows/demo.json uses: uns-broker/uns-out/uns-in, uns-modbus-link, uns-vfd. */
const DEMO_SETS = ['drive', 'modbus', 'uns'];

/** Run `script` (CommonJS, TypeScript sources through tsx) in a fresh process; its last stdout line as JSON. */
function freshProcess(script: string): Record<string, unknown> {
  const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(output.trim().split('\n').pop() as string) as Record<string, unknown>;
}

describe('runtime headless footprint', () => {
  let dir: string;
  let gateway: RuntimeOptions;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-edge-footprint-'));
    gateway = {
      mode: 'gateway', flowFile: join(dir, 'flows.json'), userDir: dir, host: '127.0.0.1', port: 1880,
      headless: true, httpNode: false, logLevel: 'info', credentialSecret: SECRET,
    };
    writeFileSync(gateway.flowFile, DEMO_FLOW);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const excludes = (options: RuntimeOptions): string[] => (buildSettings(options).settings.nodesExcludes as string[] | undefined) ?? [];
  const denied = (options: RuntimeOptions): string[] => (buildSettings(options).settings.externalModules as { palette: { denyList: string[] } }).palette.denyList;

  it('headless with the demo flow: the core node files it does not use and the dashboard are not loaded', () => {
    const left = excludes(gateway);
    for (const file of ['90-exec.js', '70-HTML.js', '70-XML.js', '70-YAML.js', '70-JSON.js', '80-template.js', '21-httprequest.js', '10-function.js', '10-mqtt.js']) {
      assert.ok(left.includes(file), `${file} left out`);
    }
    // The demo's debug and comment nodes, and what the runtime itself needs, stay.
    for (const file of ['21-debug.js', '90-comment.js', '98-unknown.js', '91-global-config.js']) assert.ok(!left.includes(file), `${file} kept`);
    assert.ok(denied(gateway).includes(DASHBOARD_MODULE));
  });

  it('keeps what the flows use: a type of a multi-type file, a config node, a dashboard widget', () => {
    writeFileSync(gateway.flowFile, JSON.stringify([
      { id: 't', type: 'tab' }, { id: 'l', type: 'link call', z: 't' }, { id: 'c', type: 'tls-config' },
      { id: 'h', type: 'html', z: 't' }, { id: 'b', type: 'ui-button', z: 't' },
    ]));
    const left = excludes(gateway);
    for (const file of ['60-link.js', '05-tls.js', '70-HTML.js']) assert.ok(!left.includes(file), `${file} kept`);
    assert.ok(left.includes('70-XML.js'));
    assert.ok(!denied(gateway).includes(DASHBOARD_MODULE));
  });

  it('leaves everything in when the editor can deploy other flows, or the flows file cannot be read', () => {
    assert.deepEqual(excludes({ ...gateway, headless: false }), ['90-exec.js']);
    assert.deepEqual(buildSettings({ ...gateway, headless: false }).settings.nodesDir, [REPO_ROOT]);
    assert.equal(buildSettings({ ...gateway, headless: false }).settings.disableEditor, undefined);
    assert.ok(!denied({ ...gateway, headless: false }).includes(DASHBOARD_MODULE));
    const settingsFile = join(dir, 'editor-on.json');
    writeFileSync(settingsFile, JSON.stringify({ httpAdminRoot: '/admin' }));
    assert.deepEqual(excludes({ ...gateway, settingsFile }), ['90-exec.js'], 'a settings file that turns the admin API back on');
    writeFileSync(gateway.flowFile, '[{"id": "broken"');
    assert.deepEqual(headlessTrim(gateway.flowFile, REPO_ROOT), { nodesExcludes: [], denyList: [], unusedNodeSets: [] });
  });

  it('headless with the demo flow: Node-RED loads uns-edge from a manifest with only the node sets the flows use', () => {
    const { settings } = buildSettings(gateway);
    const trimmedDir = join(dir, TRIMMED_PACKAGE_DIR);
    assert.deepEqual(settings.nodesDir, [trimmedDir]);
    assert.equal(settings.disableEditor, true, 'no node .html read into memory');
    const trimmed = JSON.parse(readFileSync(join(trimmedDir, 'package.json'), 'utf8')) as { name: string; 'node-red': { nodes: Record<string, string>; plugins: Record<string, string> } };
    assert.equal(trimmed.name, 'uns-edge');
    assert.deepEqual(Object.keys(trimmed['node-red'].nodes).sort(), DEMO_SETS);
    // The same files as the package's, so module name, locales and icons do not change.
    for (const set of DEMO_SETS) assert.equal(resolve(trimmedDir, trimmed['node-red'].nodes[set]), join(REPO_ROOT, MANIFEST['node-red'].nodes[set]));
    assert.deepEqual(Object.keys(trimmed['node-red'].plugins).sort(), ['uns-edge-theme', 'uns-edge-zones-lint'], 'the theme (start-up check) and the zone lint (logs findings) stay');
  });

  it('keeps a node set for any of its types, and every set when a used uns-* type is declared by none', () => {
    assert.deepEqual(unusedNodeSets(REPO_ROOT, new Set(['uns-vfd', 'uns-modbus-link', 'uns-broker', 'uns-out'])).sort(),
      Object.keys(MANIFEST['node-red'].nodes).filter((set) => !DEMO_SETS.includes(set)).sort());
    // uns-opcua-read is registered through a helper (no literal registerType): its edit template names it.
    assert.ok(!unusedNodeSets(REPO_ROOT, new Set(['uns-opcua-read'])).includes('opcua'));
    assert.ok(!unusedNodeSets(REPO_ROOT, new Set(['uns-conduit'])).includes('zones'));
    assert.deepEqual(unusedNodeSets(REPO_ROOT, new Set(['uns-vfd', 'uns-not-a-declared-type'])), []);
  });

  it('the node types read from each node set\'s files are the types it registers in Node-RED', function () {
    this.timeout(60_000);
    const registered = freshProcess(`
      const RED = require('node-red');
      const { mkdtempSync } = require('node:fs');
      const userDir = mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'uns-edge-sets-'));
      RED.init(null, { userDir, nodesDir: [${JSON.stringify(REPO_ROOT)}], httpAdminRoot: false, httpNodeRoot: false, logging: { console: { level: 'off' } } });
      RED.start().then(() => {
        const sets = RED.nodes.getNodeList().filter((set) => set.module === 'uns-edge');
        console.log(JSON.stringify(Object.fromEntries(sets.map((set) => [set.name, [...set.types].sort()]))));
        return RED.stop();
      }).then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });`);
    assert.deepEqual(Object.keys(registered).sort(), Object.keys(MANIFEST['node-red'].nodes).sort());
    for (const [set, file] of Object.entries(MANIFEST['node-red'].nodes)) {
      assert.deepEqual([...nodeSetTypes(REPO_ROOT, file)].sort(), registered[set], `types of the ${set} set`);
    }
  });

  it('Node-RED started headless with the demo flow requires neither cheerio nor the dashboard nor socket.io', function () {
    this.timeout(60_000);
    // A fresh process, so that the require cache shows what Node-RED's loader required.
    const script = `
      const { buildSettings } = require(${JSON.stringify(join(REPO_ROOT, 'lib', 'runtime', 'settings.ts'))});
      const { settings } = buildSettings(${JSON.stringify(gateway)});
      settings.logging = { console: { level: 'off' } };
      const RED = require('node-red');
      RED.init(null, settings);
      RED.start().then(() => {
        const loaded = Object.keys(require.cache);
        // Code, not the package.json files Node-RED's registry reads while it scans node_modules.
        const has = (name) => loaded.some((file) => file.includes('/node_modules/' + name + '/') && file.endsWith('.js'));
        const set = (name) => loaded.some((file) => file.endsWith('/dist/nodes/' + name + '/' + name + '.js'));
        console.log(JSON.stringify({ cheerio: has('cheerio'), dashboard: has(${JSON.stringify(DASHBOARD_MODULE)}), socketIo: has('socket.io'), xml2js: has('xml2js'), debug: loaded.some((f) => f.endsWith('21-debug.js')),
          unsEdgeSets: ${JSON.stringify(Object.keys(MANIFEST['node-red'].nodes))}.filter(set).sort(), explorer: loaded.some((f) => f.includes('/dist/lib/explorer/')) }));
        return RED.stop();
      }).then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });`;
    const loaded = freshProcess(script);
    assert.deepEqual(loaded, { cheerio: false, dashboard: false, socketIo: false, xml2js: false, debug: true, unsEdgeSets: DEMO_SETS.slice().sort(), explorer: false });
  });

  it('the headless runtime starts the demo flow without Node-RED\'s editor API and without MQTT.js\'s number cache', function () {
    this.timeout(60_000);
    const loaded = freshProcess(`
      const { buildSettings } = require(${JSON.stringify(join(REPO_ROOT, 'lib', 'runtime', 'settings.ts'))});
      const { startNodeRed } = require(${JSON.stringify(join(REPO_ROOT, 'cli', 'node-red-server.ts'))});
      const { mqttNumberCacheOn } = require(${JSON.stringify(join(REPO_ROOT, 'lib', 'runtime', 'mqtt-number-cache.ts'))});
      const { settings } = buildSettings(${JSON.stringify({ ...gateway, port: 0 })});
      settings.logging = { console: { level: 'off' } };
      startNodeRed(settings, '--port').then(async (server) => {
        const health = await fetch(server.url + '/healthz');
        const has = (name) => Object.keys(require.cache).some((file) => file.includes('/node_modules/' + name + '/') && file.endsWith('.js'));
        const registry = require(require.resolve('@node-red/registry', { paths: [require('node:path').dirname(require.resolve('node-red/package.json'))] }));
        const templates = registry.getNodeConfigs();
        console.log(JSON.stringify({ flows: server.flows.state, healthz: health.status, editorApi: has('@node-red/editor-api'), passport: has('passport'), numberCache: mqttNumberCacheOn(), nodeTemplates: templates.includes('data-template-name') }));
        await server.close();
      }).then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });`);
    assert.deepEqual(loaded, { flows: 'started', healthz: 200, editorApi: false, passport: false, numberCache: false, nodeTemplates: false });
  });
});
