/**
 * The zone lint in Node-RED (issue 10 item 4, docs/zones.md § "Zone lint"), a plugin of the
 * uns-edge package (package.json node-red.plugins). Runtime side; the editor side (the "Zones"
 * sidebar, the deploy warning, groups drawn as zones) is zones-lint-plugin.html beside it.
 *
 * - POST <admin>/uns-edge/zones/lint {flows}: the findings for the flows the editor holds (flows.read).
 *   Credentials: those the editor sends (changed in a dialog) over those of the deployed nodes.
 * - Strict mode (setting `unsEdgeZoneLint: 'strict'`, or env UNS_EDGE_ZONE_LINT=strict) refuses a
 *   deploy through POST <admin>/flows whose flows have an error finding: HTTP 400 with the findings,
 *   which the editor shows as "Deploy failed: …"; nothing is stopped or saved. Node-RED has no
 *   pre-deploy hook, so the check is an admin route placed before Node-RED's own admin API; it
 *   covers the editor's deploys and any client of POST /flows (CI deploy scripts), not the
 *   single-flow API (POST/PUT /flow). The default mode, 'warn', lets the deploy through and the
 *   editor warns after it.
 * - Every start of the flows (deploy, restart, a gateway's flows file) logs one line per finding,
 *   so a headless gateway's log says what the editor would show.
 */
import { failsCheck, formatFinding, FlowsFileError, lintZones, type CredentialsById, type LintSettings, type ZoneFinding } from '../lib/zones/lint';

type Handler = (req: LintRequest, res: LintResponse, next: (error?: unknown) => void) => void;
interface LintRequest { body?: unknown }
interface LintResponse {
  status(code: number): LintResponse;
  type(type: string): LintResponse;
  json(body: unknown): void;
  send(body: string): void;
}
interface ExpressLayer { name?: string }
interface AdminApp {
  post(path: string, ...handlers: Handler[]): void;
  _router?: { stack: ExpressLayer[] };
  router?: { stack: ExpressLayer[] };
  /** The app this one is mounted in (express sets it on app.use(subApp)). */
  parent?: AdminApp;
}
interface ZoneLintRuntime {
  plugins: { registerPlugin(id: string, definition: Record<string, unknown>): void };
  settings: LintSettings & { unsEdgeZoneLint?: unknown };
  log: { info(message: string): void; warn(message: string): void; error(message: string): void };
  events: { on(event: string, listener: (event: { config?: { flows?: unknown[] } }) => void): void };
  nodes: { getCredentials(id: string): Record<string, unknown> | undefined };
  httpAdmin?: AdminApp;
  auth?: { needsPermission(permission: string): Handler };
}

type ZoneLintMode = 'warn' | 'strict';
const LINT_PATH = '/uns-edge/zones/lint';
/** Findings logged per start of the flows; the rest are counted. */
const MAX_LOGGED_FINDINGS = 20;

function zoneLintMode(setting: unknown, env: NodeJS.ProcessEnv): ZoneLintMode {
  const value = setting ?? env.UNS_EDGE_ZONE_LINT;
  return value === 'strict' ? 'strict' : 'warn';
}

/** The flows of a POST /flows or lint body: `{ flows: [...] }` (API v2) or the array itself (v1). */
function flowsOf(body: unknown): unknown {
  if (Array.isArray(body)) return body;
  return typeof body === 'object' && body !== null ? (body as { flows?: unknown }).flows : undefined;
}

function credentialsOf(RED: ZoneLintRuntime, flows: unknown): CredentialsById {
  const credentials: CredentialsById = {};
  if (!Array.isArray(flows)) return credentials;
  for (const entry of flows as Array<{ id?: unknown; credentials?: unknown }>) {
    if (typeof entry?.id !== 'string') continue;
    const sent = typeof entry.credentials === 'object' && entry.credentials !== null ? entry.credentials as Record<string, unknown> : {};
    const stored = RED.nodes.getCredentials(entry.id) ?? {};
    credentials[entry.id] = { ...stored, ...sent };
  }
  return credentials;
}

function lintSettings(RED: ZoneLintRuntime): LintSettings {
  return { adminAuth: RED.settings.adminAuth, httpAdminRoot: RED.settings.httpAdminRoot, uiHost: RED.settings.uiHost };
}

/**
 * Route POST /flows through `handlers` before Node-RED's own handler. Plugins get the runtime's admin
 * app, which Node-RED mounts after its admin API in the editor API's app (`parent`): the route is
 * added there and moved before the first mounted sub-app (the editor, then the admin API), after
 * the body parsers and passport. False when the apps have another shape (nothing is added then).
 */
function routeBeforeAdminApi(app: AdminApp, handlers: Handler[]): boolean {
  const outer = app.parent;
  const stack = outer && (outer._router ?? outer.router)?.stack;
  const index = stack ? stack.findIndex((layer) => layer.name === 'mounted_app') : -1;
  if (!outer || !stack || index < 0) return false;
  outer.post('/flows', ...handlers);
  stack.splice(index, 0, stack.pop()!);
  return true;
}

function logFindings(RED: ZoneLintRuntime, findings: ZoneFinding[]): void {
  for (const finding of findings.slice(0, MAX_LOGGED_FINDINGS)) {
    (finding.severity === 'error' ? RED.log.warn : RED.log.info)(`[zone lint] ${formatFinding(finding)}`);
  }
  if (findings.length > MAX_LOGGED_FINDINGS) RED.log.warn(`[zone lint] and ${findings.length - MAX_LOGGED_FINDINGS} more findings`);
}

export = function registerZoneLint(RED: ZoneLintRuntime): void {
  const mode = zoneLintMode(RED.settings.unsEdgeZoneLint, process.env);
  const lint = (flows: unknown) => lintZones(flows, { settings: lintSettings(RED), credentials: credentialsOf(RED, flows) });
  RED.plugins.registerPlugin('uns-edge-zones-lint', { type: 'uns-edge-zones-lint' });

  RED.events.on('flows:started', (event) => {
    try {
      logFindings(RED, lint(event.config?.flows ?? []).findings);
    } catch (error) {
      RED.log.error(`[zone lint] ${(error as Error).message}`);
    }
  });

  const app = RED.httpAdmin;
  if (!app || !RED.auth) return; // headless: no editor and no admin API to serve or guard
  app.post(LINT_PATH, RED.auth.needsPermission('flows.read'), (req, res) => {
    try {
      res.json({ mode, ...lint(flowsOf(req.body)) });
    } catch (error) {
      if (error instanceof FlowsFileError) res.status(400).json({ code: 'invalid_flows', message: error.message });
      else res.status(500).json({ code: 'zone_lint_failed', message: (error as Error).message });
    }
  });
  if (mode !== 'strict') return;
  const checkDeploy: Handler = (req, res, next) => {
    let findings: ZoneFinding[];
    try {
      findings = lint(flowsOf(req.body)).findings;
    } catch (error) {
      // Not a flows body: Node-RED's own handler answers it.
      if (error instanceof FlowsFileError) return next();
      throw error;
    }
    if (!failsCheck(findings, false)) return next();
    const errors = findings.filter((finding) => finding.severity === 'error');
    RED.log.warn(`[zone lint] deploy refused (strict mode): ${errors.length} error finding(s): ${formatFinding(errors[0]!)}`);
    res.status(400).type('text/plain').send(`refused by the zone lint (strict mode), ${errors.length} error(s): ${errors.map(formatFinding).join(' | ')}`);
  };
  if (!routeBeforeAdminApi(app, [RED.auth.needsPermission('flows.write'), checkDeploy])) {
    RED.log.error('[zone lint] strict mode: the admin app has an unexpected shape, deploys are NOT checked (the editor still warns)');
  }
};
