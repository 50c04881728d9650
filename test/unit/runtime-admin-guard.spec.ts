/**
 * lib/runtime/admin-guard.ts on a real HTTP server, and lib/runtime/session-storage.ts on Node-RED's
 * own file storage (docs/security.md "The admin guard").
 */
import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminAuthProblem, adminGuard, startupRefusal, type GuardedSettings } from '../../lib/runtime/admin-guard';
import { nodeRedFileStorage, SESSIONS_FILE, withPrivateSessions } from '../../lib/runtime/session-storage';

/** bcrypt of 'correct horse battery', cost 8 (Node-RED's bcryptjs). */
const HASH = '$2b$08$pE4kYVRsrXRQ3O/qUsF/GeSV/XXYcZHUhlXFjXRJT4UMBoeZxzwWi';
const lanAddress = Object.values(networkInterfaces()).flat().find((address) => address && !address.internal && address.family === 'IPv4')?.address;

function get(host: string, port: number, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host, port, path: '/flows', headers }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    }).on('error', reject).end();
  });
}

describe('admin guard', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((closed) => (server ? server.close(() => closed()) : closed()));
    server = undefined;
  });

  /** A server whose every request passes through the guard, then answers like Node-RED's editor-api (wildcard CORS). */
  async function serve(settings: GuardedSettings, host: string, refusals: string[] = []): Promise<number> {
    const guard = adminGuard(settings, (message) => refusals.push(message));
    server = createServer((req, res) => {
      res.setHeader('Access-Control-Allow-Origin', '*');
      guard(req, res, () => res.end('flows'));
    });
    await new Promise<void>((listening) => server?.listen(0, host, listening));
    const address = server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  it('serves a loopback editor with security headers and without the wildcard CORS header', async () => {
    const port = await serve({ uiHost: '127.0.0.1', uiPort: 1880, httpAdminRoot: '/' }, '127.0.0.1');
    const response = await get('127.0.0.1', port, { Origin: 'http://attacker.example' });
    assert.equal(response.status, 200);
    assert.equal(response.body, 'flows');
    assert.equal(response.headers['access-control-allow-origin'], undefined);
    assert.equal(response.headers['x-frame-options'], 'DENY');
    assert.equal(response.headers['content-security-policy'], "frame-ancestors 'none'");
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
  });

  it('keeps the CORS header when httpAdminCors is configured', async () => {
    const port = await serve({ uiHost: '127.0.0.1', httpAdminRoot: '/', httpAdminCors: { origin: '*' } }, '127.0.0.1');
    assert.equal((await get('127.0.0.1', port, { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'cors' })).headers['access-control-allow-origin'], '*');
  });

  it('refuses requests other sites\' pages make, but not following a link', async () => {
    const port = await serve({ uiHost: '127.0.0.1', httpAdminRoot: '/' }, '127.0.0.1');
    assert.equal((await get('127.0.0.1', port, { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'cors' })).status, 403);
    assert.equal((await get('127.0.0.1', port, { 'Sec-Fetch-Site': 'same-site', 'Sec-Fetch-Mode': 'no-cors' })).status, 403);
    assert.equal((await get('127.0.0.1', port, { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' })).status, 200);
    assert.equal((await get('127.0.0.1', port, { 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'cors' })).status, 200);
  });

  it('refuses an editor without login reached on a non-loopback address, even when the settings say loopback', async function () {
    if (!lanAddress) this.skip();
    const refusals: string[] = [];
    // Settings that passed every start-up check, on a server bound elsewhere (a `server` hook, a proxy setting, ...).
    const port = await serve({ uiHost: '127.0.0.1', uiPort: 1880, httpAdminRoot: '/' }, '0.0.0.0', refusals);
    const fromNetwork = await get(lanAddress as string, port);
    assert.equal(fromNetwork.status, 403);
    assert.match(fromNetwork.body, new RegExp(`the editor would listen on ${lanAddress}:1880, which is not a loopback address, without adminAuth`));
    await get(lanAddress as string, port);
    assert.equal(refusals.length, 1, 'reported once');
    assert.equal((await get('127.0.0.1', port)).status, 200, 'the same server still answers on loopback');
  });

  it('refuses every request once the settings are changed to a non-loopback host (-D uiHost=...)', async () => {
    const settings: GuardedSettings = { uiHost: '127.0.0.1', httpAdminRoot: '/' };
    const port = await serve(settings, '127.0.0.1');
    assert.equal((await get('127.0.0.1', port)).status, 200);
    settings.uiHost = '::';
    assert.equal((await get('127.0.0.1', port)).status, 403);
    settings.adminAuth = { type: 'credentials', users: [{ username: 'operator', password: HASH, permissions: '*' }] };
    assert.equal((await get('127.0.0.1', port)).status, 200, 'with a login the editor may be on the network');
  });

  it('adminAuth: a bcrypt hash passes; plain text, a missing password or a bad entry are refused without echoing the password', () => {
    const auth = (users: unknown): GuardedSettings => ({ adminAuth: { type: 'credentials', users } });
    assert.equal(adminAuthProblem(auth([{ username: 'operator', password: HASH, permissions: '*' }])), undefined);
    assert.equal(adminAuthProblem(auth({ username: 'operator', password: HASH, permissions: '*' })), undefined);
    assert.equal(adminAuthProblem(auth(() => Promise.resolve(null))), undefined);
    const plain = adminAuthProblem(auth([{ username: 'operator', password: HASH }, { username: 'viewer', password: 'letmein', permissions: 'read' }]));
    assert.match(plain ?? '', /adminAuth user "viewer" has a password that is not a bcrypt hash.*node-red admin hash-pw/);
    assert.doesNotMatch(plain ?? '', /letmein/);
    assert.match(adminAuthProblem(auth([{ username: 'operator' }])) ?? '', /"operator" has a password that is not a bcrypt hash/);
    assert.match(adminAuthProblem(auth([HASH])) ?? '', /list of \{username, password, permissions\}/);
    assert.match(adminAuthProblem(auth([{ username: 'a', password: HASH.slice(0, -1) }])) ?? '', /not a bcrypt hash/);
  });

  it('startupRefusal: the open editor first, then the login; headless or loopback editors pass', () => {
    assert.match(startupRefusal({ uiHost: '::', uiPort: 1880, httpAdminRoot: '/' }) ?? '', /listen on :::1880, which is not a loopback address.*--headless/);
    assert.match(startupRefusal({ httpAdminRoot: '/' }) ?? '', /listen on 0\.0\.0\.0/, "Node-RED's default uiHost");
    assert.equal(startupRefusal({ uiHost: '0.0.0.0', httpAdminRoot: false }), undefined);
    assert.equal(startupRefusal({ uiHost: '0.0.0.0', httpAdminRoot: '/', httpAdminAuth: { user: 'a', pass: HASH } }), undefined);
    assert.equal(startupRefusal({ uiHost: '[::1]', httpAdminRoot: '/' }), undefined);
  });
});

describe('private sessions storage', () => {
  let userDir: string;
  beforeEach(() => { userDir = mkdtempSync(join(tmpdir(), 'uns-edge-sessions-')); });
  afterEach(() => rmSync(userDir, { recursive: true, force: true }));

  it('writes .sessions.json with mode 0600 under a permissive umask, and reads it back through Node-RED\'s storage', async () => {
    const storage = withPrivateSessions(nodeRedFileStorage());
    await storage.init({ userDir }, {});
    const previous = process.umask(0o000);
    try {
      await Promise.all([storage.saveSessions?.({ a: { user: 'operator' } }), storage.saveSessions?.({ b: { user: 'viewer' } })]);
    } finally {
      process.umask(previous);
    }
    const file = join(userDir, SESSIONS_FILE);
    assert.equal((statSync(file).mode & 0o777).toString(8), '600');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { b: { user: 'viewer' } }, 'the later save wins, whole');
    assert.deepEqual(await (storage.getSessions as () => Promise<unknown>)(), { b: { user: 'viewer' } });
  });

  it('narrows a sessions file left readable by an earlier run at start-up', async () => {
    const file = join(userDir, SESSIONS_FILE);
    writeFileSync(file, '{}');
    chmodSync(file, 0o644);
    await withPrivateSessions(nodeRedFileStorage()).init({ userDir }, {});
    assert.equal((statSync(file).mode & 0o777).toString(8), '600');
  });
});
