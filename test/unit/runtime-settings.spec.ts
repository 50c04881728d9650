/** lib/runtime/settings.ts: hardened Node-RED settings per mode, and the refusals (docs/security.md). */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildSettings, credentialsFileFor, isLoopbackHost, mergeSettings, runtimeOptionsFromEnv, SettingsError, type RuntimeOptions,
} from '../../lib/runtime/settings';
import { hasAdminGuard } from '../../lib/runtime/admin-guard';

const SECRET = '0123456789abcdef0123456789abcdef';
/** bcrypt of 'correct horse battery', cost 8. */
const HASH = '$2b$08$pE4kYVRsrXRQ3O/qUsF/GeSV/XXYcZHUhlXFjXRJT4UMBoeZxzwWi';

describe('runtime settings', () => {
  let dir: string;
  let gateway: RuntimeOptions;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-edge-settings-'));
    gateway = {
      mode: 'gateway', flowFile: join(dir, 'flows.json'), userDir: dir, host: '127.0.0.1', port: 1880,
      headless: true, httpNode: false, logLevel: 'info',
    };
    writeFileSync(gateway.flowFile, JSON.stringify([{ id: 'tab1', type: 'tab', label: 'line 1' }]));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('headless gateway: no admin API, no HTTP-In, every gateway surface off, bounded buffers', () => {
    const { settings } = buildSettings(gateway);
    assert.equal(settings.httpAdminRoot, false);
    assert.equal(settings.httpNodeRoot, false);
    assert.deepEqual(settings.diagnostics, { enabled: false, ui: false });
    assert.deepEqual(settings.runtimeState, { enabled: false, ui: false });
    assert.deepEqual(settings.telemetry, { enabled: false, updateNotification: false });
    assert.equal(settings.functionExternalModules, false);
    assert.deepEqual(settings.externalModules, {
      autoInstall: false,
      // The dashboard too, since these flows have no ui-* node (runtime-headless-footprint.spec.ts).
      palette: { denyList: ['node-red-contrib-modbus', 'node-red-contrib-opcua', '@flowfuse/node-red-dashboard'], allowInstall: false, allowUpload: false, allowUpdate: false },
      modules: { allowInstall: false },
    });
    assert.ok((settings.nodesExcludes as string[]).includes('90-exec.js'));
    assert.equal(settings.nodeMessageBufferMaxLength, 1000);
    assert.equal(settings.exportGlobalContextKeys, false);
    assert.deepEqual((settings.editorTheme.projects as { enabled: boolean }).enabled, false);
    assert.equal((settings.paletteCategories as string[])[0], 'UNS Edge');
    assert.deepEqual(settings.contextStorage, { default: { module: 'memory' }, file: { module: 'localfilesystem' } });
    assert.equal(settings.uiHost, '127.0.0.1');
  });

  it('headless gateway with no credentials file needs no secret and disables the generated key', () => {
    const { settings, notices } = buildSettings(gateway);
    assert.equal(settings.credentialSecret, false);
    assert.ok(notices.some((notice) => notice.level === 'info' && /nothing to encrypt/.test(notice.message)));
  });

  it('refuses a headless gateway whose credentials file holds credentials, until the secret is set', () => {
    writeFileSync(credentialsFileFor(gateway.flowFile, dir), JSON.stringify({ $: 'abc123' }));
    assert.throws(() => buildSettings(gateway), (error: Error) =>
      error instanceof SettingsError && /UNS_EDGE_CREDENTIAL_SECRET is not set/.test(error.message) && /flows_cred\.json holds node credentials/.test(error.message));
    assert.equal(buildSettings({ ...gateway, credentialSecret: SECRET }).settings.credentialSecret, SECRET);
  });

  it('refuses the editor in gateway mode without a secret, and a short secret', () => {
    const editor = { ...gateway, headless: false };
    assert.throws(() => buildSettings(editor), /UNS_EDGE_CREDENTIAL_SECRET is not set and the editor is on/);
    assert.throws(() => buildSettings({ ...editor, credentialSecret: 'short' }), /5 characters; use at least 16/);
    assert.equal(buildSettings({ ...editor, credentialSecret: SECRET }).settings.httpAdminRoot, '/');
  });

  it('refuses the editor on a non-loopback address without adminAuth, in every mode', () => {
    for (const mode of ['gateway', 'demo'] as const) {
      for (const host of ['0.0.0.0', '::', '192.168.1.20']) {
        assert.throws(() => buildSettings({ ...gateway, mode, headless: false, host, credentialSecret: SECRET }), (error: Error) =>
          error instanceof SettingsError && error.message.includes(`${host}:1880, which is not a loopback address, without adminAuth`));
      }
    }
    // Headless on every interface is fine: there is no editor to protect.
    assert.equal(buildSettings({ ...gateway, host: '0.0.0.0' }).settings.uiHost, '0.0.0.0');
  });

  it('accepts the editor on a non-loopback address with adminAuth from the environment, and warns about plain HTTP', () => {
    const { settings, notices } = buildSettings({
      ...gateway, headless: false, host: '0.0.0.0', credentialSecret: SECRET,
      adminUser: { username: 'admin', passwordHash: HASH },
    });
    assert.deepEqual(settings.adminAuth, {
      type: 'credentials', sessionExpiryTime: 28800,
      users: [{ username: 'admin', password: HASH, permissions: '*' }],
    });
    assert.ok(notices.some((notice) => notice.level === 'warn' && /plain HTTP/.test(notice.message)));
  });

  it('refuses an admin password that is not a bcrypt hash, from the environment or a settings file', () => {
    assert.throws(() => buildSettings({ ...gateway, headless: false, credentialSecret: SECRET, adminUser: { username: 'admin', passwordHash: 'secret' } }),
      (error: Error) => error instanceof SettingsError && /refusing to start: adminAuth user "admin" has a password that is not a bcrypt hash/.test(error.message));
    const file = join(dir, 'plain.json');
    writeFileSync(file, JSON.stringify({ adminAuth: { type: 'credentials', users: [{ username: 'ops', password: 'secret', permissions: '*' }] } }));
    assert.throws(() => buildSettings({ ...gateway, mode: 'demo', headless: false, settingsFile: file }), /adminAuth user "ops"/);
  });

  it('puts the admin guard first in httpAdminMiddleware, before a settings file\'s own, and writes sessions privately', () => {
    assert.ok(hasAdminGuard(buildSettings({ ...gateway, mode: 'demo', headless: false }).settings.httpAdminMiddleware));
    const file = join(dir, 'middleware.js');
    writeFileSync(file, 'module.exports = { httpAdminMiddleware: function own(req, res, next) { next(); } };');
    const { settings } = buildSettings({ ...gateway, mode: 'demo', headless: false, settingsFile: file });
    const chain = settings.httpAdminMiddleware as { name: string }[];
    assert.ok(Array.isArray(chain) && hasAdminGuard(chain) && chain[1].name === 'own');
    assert.equal(typeof (settings.storageModule as { saveSessions?: unknown }).saveSessions, 'function');
  });

  it('refuses a gateway flows file whose entries are not node objects, or share an id, naming the entries', () => {
    writeFileSync(gateway.flowFile, '[1,2,3]');
    assert.throws(() => buildSettings(gateway), (error: Error) => error instanceof SettingsError &&
      /must hold node objects, each with an "id" and a "type" string: entry 0 is the number 1, entry 1 is the number 2, entry 2 is the number 3$/.test(error.message));
    writeFileSync(gateway.flowFile, JSON.stringify([{ id: 'tab1', type: 'tab' }, null, { id: 'n1' }, { type: 'inject' }]));
    assert.throws(() => buildSettings(gateway), /entry 1 is null, entry 2 has no "type" string, entry 3 has no "id" string/);
    writeFileSync(gateway.flowFile, JSON.stringify([{ id: 'L1', type: 'tab' }, { id: 'L1', type: 'uns-modbus-link', z: 'L1' }]));
    assert.throws(() => buildSettings(gateway), /uses an id twice: "L1" \(entries 0 and 1\); every node, config node and tab needs its own id/);
  });

  it('every mode: benchmark peers (Node-RED modules among the devDependencies) denied, no palette catalogue, audit lines only where they help', () => {
    for (const mode of ['demo', 'gateway'] as const) {
      const { settings } = buildSettings({ ...gateway, mode, headless: false, credentialSecret: SECRET });
      assert.deepEqual((settings.externalModules as { palette: { denyList: string[] } }).palette.denyList, ['node-red-contrib-modbus', 'node-red-contrib-opcua']);
      assert.deepEqual((settings.editorTheme.palette as { catalogues: string[] }).catalogues, []);
    }
    const audit = (options: Partial<RuntimeOptions>): unknown => (buildSettings({ ...gateway, credentialSecret: SECRET, ...options }).settings.logging as { console: { audit: boolean } }).console.audit;
    assert.equal(audit({ mode: 'demo', headless: false }), false, 'the demo at the default level');
    assert.equal(audit({ mode: 'demo', headless: false, logLevel: 'debug' }), true);
    assert.equal(audit({ mode: 'gateway', headless: false }), true, 'who deployed what on a gateway');
    assert.equal(audit({ mode: 'gateway', headless: true }), false);
  });

  it('merges a settings file over the hardened settings and checks the result', () => {
    const file = join(dir, 'overrides.js');
    writeFileSync(file, `module.exports = { uiHost: '0.0.0.0', httpAdminRoot: '/admin',
      adminAuth: { type: 'credentials', users: [] }, editorTheme: { tours: true } };`);
    const { settings } = buildSettings({ ...gateway, headless: false, credentialSecret: SECRET, settingsFile: file });
    assert.equal(settings.httpAdminRoot, '/admin');
    assert.equal(settings.uiHost, '0.0.0.0');
    assert.equal(settings.editorTheme.tours, true);
    assert.equal(settings.editorTheme.theme, 'uns-edge-theme', 'nested objects merge, they are not replaced');
    const exposing = join(dir, 'exposing.json');
    writeFileSync(exposing, JSON.stringify({ uiHost: '0.0.0.0' }));
    assert.throws(() => buildSettings({ ...gateway, headless: false, credentialSecret: SECRET, settingsFile: exposing }), /without adminAuth/);
    assert.throws(() => buildSettings({ ...gateway, settingsFile: join(dir, 'absent.js') }), /absent\.js not found/);
  });

  it('refuses a gateway flows file that is not a JSON array, or missing while headless; warns when empty', () => {
    writeFileSync(gateway.flowFile, '[{"id":"tab1","type":"tab"},');
    assert.throws(() => buildSettings(gateway), /flows\.json is not valid JSON/);
    writeFileSync(gateway.flowFile, '{"flows":[]}');
    assert.throws(() => buildSettings(gateway), /must hold a JSON array of nodes/);
    writeFileSync(gateway.flowFile, '[]');
    assert.ok(buildSettings(gateway).notices.some((notice) => notice.level === 'warn' && /is empty: no flows will run/.test(notice.message)));
    rmSync(gateway.flowFile);
    assert.throws(() => buildSettings(gateway), /does not exist \(a headless gateway cannot create it\)/);
    const { notices } = buildSettings({ ...gateway, headless: false, credentialSecret: SECRET });
    assert.ok(notices.some((notice) => /Deploy in the editor creates it/.test(notice.message)));
    // The demo does not check: its flows file is prepared by the CLI.
    assert.equal(buildSettings({ ...gateway, mode: 'demo', headless: false }).settings.httpAdminRoot, '/');
  });

  it('demo mode keeps Node-RED\'s palette manager and exec node, serves HTTP-In, and has no secret rule', () => {
    const { settings } = buildSettings({ ...gateway, mode: 'demo', headless: false, httpNode: true });
    assert.equal(settings.httpAdminRoot, '/');
    assert.equal(settings.httpNodeRoot, '/');
    assert.deepEqual(Object.keys((settings.externalModules as { palette: object }).palette), ['denyList'], 'install, upload and update stay on');
    assert.equal(settings.nodesExcludes, undefined);
    assert.equal(settings.credentialSecret, undefined);
  });

  it('reads options from the environment and names the variable in errors', () => {
    const options = runtimeOptionsFromEnv({
      UNS_EDGE_USER_DIR: dir, UNS_EDGE_FLOWS: 'site.json', UNS_EDGE_HEADLESS: 'yes', UNS_EDGE_PORT: '1999', UNS_EDGE_HOST: '10.0.0.5',
    });
    assert.equal(options.flowFile, join(dir, 'site.json'));
    assert.equal(options.headless, true);
    assert.equal(options.port, 1999);
    assert.equal(options.host, '10.0.0.5');
    assert.equal(options.mode, 'gateway');
    assert.throws(() => runtimeOptionsFromEnv({ UNS_EDGE_PORT: '70000' }), /UNS_EDGE_PORT=70000 is not a TCP port/);
    assert.throws(() => runtimeOptionsFromEnv({ UNS_EDGE_HEADLESS: 'maybe' }), /UNS_EDGE_HEADLESS=maybe is not a yes\/no value/);
    assert.throws(() => runtimeOptionsFromEnv({ UNS_EDGE_ADMIN_USER: 'admin' }), /set both UNS_EDGE_ADMIN_USER and UNS_EDGE_ADMIN_PASSWORD_HASH/);
    assert.throws(() => runtimeOptionsFromEnv({ UNS_EDGE_MODE: 'production' }), /use gateway or demo/);
  });

  it('tells loopback from exposed addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.0.10', 'gateway.local', '128.0.0.1']) assert.equal(isLoopbackHost(host), false, host);
  });

  it('finds the credentials file where Node-RED keeps it: in the user dir, named after the flows file', () => {
    assert.equal(credentialsFileFor('/etc/uns-edge/site.json', '/var/lib/uns-edge'), '/var/lib/uns-edge/site_cred.json');
  });

  it('merges plain objects recursively and replaces arrays and scalars', () => {
    assert.deepEqual(mergeSettings({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: 2 }), { a: { b: 1, c: [3] }, d: 2 });
  });
});
