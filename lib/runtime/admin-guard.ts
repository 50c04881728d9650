/**
 * The guard in front of Node-RED's editor and admin API (docs/security.md "The admin guard").
 *
 * A refusal in the settings module alone is not enough: `node-red -s dist/settings.js -D uiHost=0.0.0.0`
 * changes the settings after the module was loaded. So the same rules are applied three times, on
 * the one settings object every path shares (Node-RED keeps and mutates the object the settings
 * module exported):
 * - when the settings are built (buildSettings: the CLI and the settings module refuse, exit 78);
 * - when Node-RED loads its plugins, after every `-D` override and before it listens
 *   (editor-theme/plugin.ts calls startupRefusal() and stops the process, exit 78);
 * - on every admin request, by the `httpAdminMiddleware` built here, which also answers for the
 *   address the connection really arrived on.
 *
 * No Node-RED import: the middleware is a plain `(request, response, next)` function.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** True for addresses only this machine can reach. `0.0.0.0` and `::` mean every interface. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare) || /^::ffff:127(\.\d{1,3}){3}$/.test(bare);
}

/** The settings the guard reads; it reads them on every call, so later changes (`-D`) count. */
export interface GuardedSettings {
  uiHost?: unknown;
  uiPort?: unknown;
  httpAdminRoot?: unknown;
  adminAuth?: unknown;
  /** Node-RED's deprecated basic-auth for the admin API (red.js): a login too. */
  httpAdminAuth?: unknown;
  httpAdminCors?: unknown;
}

export const EXPOSURE_FIXES =
  'Do one of: run headless (--headless or UNS_EDGE_HEADLESS=1, no editor), listen on loopback (--host 127.0.0.1 or ' +
  'UNS_EDGE_HOST=127.0.0.1, and no -D uiHost=...), or configure adminAuth (UNS_EDGE_ADMIN_USER and ' +
  'UNS_EDGE_ADMIN_PASSWORD_HASH, or adminAuth in a --settings / UNS_EDGE_SETTINGS file). See docs/security.md.';

function hasAdminLogin(settings: GuardedSettings): boolean {
  return Boolean(settings.adminAuth) || Boolean(settings.httpAdminAuth);
}

/**
 * Why the editor must not be served, or undefined: it is on, has no login, and `host` (the
 * configured uiHost, or the address a connection arrived on) is reachable from other machines.
 */
export function exposureProblem(settings: GuardedSettings, host: string = String(settings.uiHost ?? '0.0.0.0')): string | undefined {
  if (settings.httpAdminRoot === false || hasAdminLogin(settings) || isLoopbackHost(host)) return undefined;
  return `the editor would listen on ${host}:${String(settings.uiPort)}, which is not a loopback address, without adminAuth, ` +
    'so anyone who can reach it could deploy flows';
}

/** bcrypt's modular crypt format, as bcryptjs (Node-RED's adminAuth check) writes it: $2a$/$2b$/$2y$, cost, 53 characters. */
const BCRYPT_HASH = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

/**
 * Why adminAuth cannot work as configured, or undefined. Node-RED compares a login with
 * `bcrypt.compare(password, user.password)`: a plain-text password there is a mistake that either
 * locks everyone out or, worse, sits readable in a settings file. A `users` function is not checked.
 */
export function adminAuthProblem(settings: GuardedSettings): string | undefined {
  const auth = settings.adminAuth as { type?: unknown; users?: unknown } | undefined;
  if (!auth || typeof auth !== 'object' || auth.type !== 'credentials' || typeof auth.users === 'function') return undefined;
  const users = (Array.isArray(auth.users) ? auth.users : [auth.users]) as { username?: unknown; password?: unknown }[];
  for (const user of users) {
    if (!user || typeof user !== 'object') return 'adminAuth.users must be a list of {username, password, permissions}';
    if (typeof user.password !== 'string' || !BCRYPT_HASH.test(user.password)) {
      return `adminAuth user "${String(user.username)}" has a password that is not a bcrypt hash ($2b$..., 60 characters); ` +
        'store the hash, never the password: make it with `npx node-red admin hash-pw` (for UNS_EDGE_ADMIN_PASSWORD_HASH too)';
    }
  }
  return undefined;
}

/** What stops a start, checked on the final settings (after every override), or undefined. */
export function startupRefusal(settings: GuardedSettings): string | undefined {
  const exposure = exposureProblem(settings);
  if (exposure) return `${exposure}. ${EXPOSURE_FIXES}`;
  return adminAuthProblem(settings);
}

type Next = (error?: unknown) => void;
export type AdminMiddleware = ((request: IncomingMessage, response: ServerResponse, next: Next) => void) & { [ADMIN_GUARD]?: true };

const ADMIN_GUARD = Symbol.for('uns-edge.admin-guard');

/** True for a middleware built by adminGuard() (alone, or first in a list). */
export function hasAdminGuard(middleware: unknown): boolean {
  const first: unknown = Array.isArray(middleware) ? middleware[0] : middleware;
  return typeof first === 'function' && (first as AdminMiddleware)[ADMIN_GUARD] === true;
}

/** A request another site's page made (Fetch Metadata, sent by every current browser), other than following a link. */
function isCrossSite(request: IncomingMessage): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== 'cross-site' && site !== 'same-site') return false;
  const followingLink = request.headers['sec-fetch-mode'] === 'navigate' && (request.method === 'GET' || request.method === 'HEAD');
  return !followingLink;
}

function refuse(response: ServerResponse, message: string): void {
  response.statusCode = 403;
  response.setHeader('Content-Type', 'text/plain; charset=utf-8');
  response.setHeader('Cache-Control', 'no-store');
  response.end(`uns-edge: ${message}\n`);
}

/**
 * The `httpAdminMiddleware` of every uns-edge runtime. On each editor and admin API response:
 * - X-Frame-Options DENY and CSP `frame-ancestors 'none'` (no clickjacking of Deploy),
 *   X-Content-Type-Options nosniff;
 * - unless `httpAdminCors` is configured: removes the `Access-Control-Allow-Origin: *` that
 *   Node-RED's editor-api puts on every admin response, and refuses requests other sites' pages
 *   make (a form POST from any web page could otherwise deploy a flow to a loopback editor);
 * - refuses (403) when the editor has no login and either the settings' uiHost or the address the
 *   connection arrived on is not loopback; `onRefusal` hears about it once.
 */
export function adminGuard(settings: GuardedSettings, onRefusal: (message: string) => void = () => undefined): AdminMiddleware {
  let reported = false;
  const guard: AdminMiddleware = (request, response, next) => {
    response.setHeader('X-Frame-Options', 'DENY');
    response.setHeader('Content-Security-Policy', "frame-ancestors 'none'");
    response.setHeader('X-Content-Type-Options', 'nosniff');
    const exposure = exposureProblem(settings) ?? exposureProblem(settings, request.socket.localAddress ?? '127.0.0.1');
    if (exposure) {
      if (!reported) onRefusal(`refusing every editor and admin API request: ${exposure}. ${EXPOSURE_FIXES}`);
      reported = true;
      return refuse(response, `${exposure}; the admin API is refused. See docs/security.md.`);
    }
    if (!settings.httpAdminCors) {
      response.removeHeader('Access-Control-Allow-Origin');
      if (isCrossSite(request)) return refuse(response, 'the admin API does not answer requests from other sites\' pages (httpAdminCors is not set)');
    }
    next();
  };
  guard[ADMIN_GUARD] = true;
  return guard;
}
