/**
 * lib/runtime/headless-footprint.ts: a gateway without the admin API loads only the core node files
 * and the optional dashboard its flows use (issue 12 item 5, docs/gateway.md § "Footprint").
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSettings, type RuntimeOptions } from '../../lib/runtime/settings';
import { DASHBOARD_MODULE, headlessTrim } from '../../lib/runtime/headless-footprint';

const REPO_ROOT = resolve(__dirname, '..', '..');
const DEMO_FLOW = readFileSync(join(REPO_ROOT, 'flows', 'demo.json'), 'utf8');
const SECRET = '0123456789abcdef0123456789abcdef';

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
    assert.ok(!denied({ ...gateway, headless: false }).includes(DASHBOARD_MODULE));
    const settingsFile = join(dir, 'editor-on.json');
    writeFileSync(settingsFile, JSON.stringify({ httpAdminRoot: '/admin' }));
    assert.deepEqual(excludes({ ...gateway, settingsFile }), ['90-exec.js'], 'a settings file that turns the admin API back on');
    writeFileSync(gateway.flowFile, '[{"id": "broken"');
    assert.deepEqual(headlessTrim(gateway.flowFile, REPO_ROOT), { nodesExcludes: [], denyList: [] });
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
        console.log(JSON.stringify({ cheerio: has('cheerio'), dashboard: has(${JSON.stringify(DASHBOARD_MODULE)}), socketIo: has('socket.io'), xml2js: has('xml2js'), debug: loaded.some((f) => f.endsWith('21-debug.js')) }));
        return RED.stop();
      }).then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });`;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    const loaded = JSON.parse(output.trim().split('\n').pop() as string) as Record<string, boolean>;
    assert.deepEqual(loaded, { cheerio: false, dashboard: false, socketIo: false, xml2js: false, debug: true });
  });
});
