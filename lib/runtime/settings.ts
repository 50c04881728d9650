/**
 * Node-RED settings for the uns-edge runtime modes, hardened for gateways (docs/security.md,
 * /work/shared/reference/security.md §3.3). The CLI builds them from flags and environment; the
 * repository's settings.ts builds them from the environment alone for a stock `node-red -s`.
 *
 * buildSettings() refuses (throws SettingsError with a message meant for the operator) when:
 * - the editor would listen on a non-loopback address without adminAuth (anyone on the network
 *   could deploy an exec flow: the exposure pattern in security.md §3.2), or adminAuth holds a
 *   password that is not a bcrypt hash (admin-guard.ts, which also re-checks after `-D` overrides);
 * - gateway mode needs UNS_EDGE_CREDENTIAL_SECRET (editor on, or a credentials file exists) and it
 *   is missing or short;
 * - a gateway's flows file is not a JSON array of node objects with unique ids, or is missing while headless.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { adminAuthProblem, adminGuard, exposureProblem, EXPOSURE_FIXES, hasAdminGuard, isLoopbackHost } from './admin-guard';
import { headlessTrim, writeTrimmedManifest } from './headless-footprint';
import { devOnlyNodeRedModules, packageInfo } from './package-info';
import { PALETTE_CATEGORIES } from './palette';
import { nodeRedFileStorage, withPrivateSessions } from './session-storage';

export { isLoopbackHost } from './admin-guard';
import { isPlainObject } from '../values';

export type RuntimeMode = 'demo' | 'gateway';

export interface RuntimeOptions {
  mode: RuntimeMode;
  /** Absolute path of the flows file. */
  flowFile: string;
  /** Absolute path of the Node-RED user directory (context store, runtime config, credentials file). */
  userDir: string;
  /** Address the HTTP server listens on (editor, /healthz, /metrics, HTTP-In). */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** No editor and no admin API (httpAdminRoot: false). */
  headless: boolean;
  /** Serve HTTP-In endpoints (httpNodeRoot '/'). */
  httpNode: boolean;
  credentialSecret?: string;
  /** Editor login from UNS_EDGE_ADMIN_USER / UNS_EDGE_ADMIN_PASSWORD_HASH. */
  adminUser?: { username: string; passwordHash: string };
  /** A settings file (.js or .json) merged over the built settings before the checks. */
  settingsFile?: string;
  logLevel: string;
}

/** Node-RED settings: the keys this module sets are typed, anything else passes through. */
export interface NodeRedSettings {
  uiHost: string;
  uiPort: number;
  userDir: string;
  flowFile: string;
  httpAdminRoot: string | false;
  httpNodeRoot: string | false;
  credentialSecret?: string | false;
  adminAuth?: unknown;
  httpNodeAuth?: unknown;
  https?: unknown;
  editorTheme: Record<string, unknown>;
  [key: string]: unknown;
}

export class SettingsError extends Error {}

export const DEFAULT_PORT = 1880;
export const DEFAULT_HOST = '127.0.0.1';
/** Shorter secrets are refused: the key protects every stored password and private key. */
export const MIN_SECRET_LENGTH = 16;
/** Token lifetime of an editor login: one shift (Node-RED's default is 7 days). */
const ADMIN_SESSION_SECONDS = 8 * 3600;

/** Node-RED keeps a flows file's credentials in `<userDir>/<flows base>_cred<ext>` (storage/localfilesystem). */
export function credentialsFileFor(flowFile: string, userDir: string): string {
  const extension = extname(flowFile);
  return join(userDir, `${basename(flowFile, extension)}_cred${extension}`);
}

function hasStoredCredentials(file: string): boolean {
  if (!existsSync(file)) return false;
  const text = readFileSync(file, 'utf8').trim();
  return text !== '' && text !== '{}';
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['', '0', 'false', 'no', 'off']);

export function parseFlag(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new SettingsError(`${name}=${value} is not a yes/no value (use 1/0, true/false, yes/no, on/off)`);
}

export function parsePort(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SettingsError(`${name}=${value} is not a TCP port (0-65535)`);
  }
  return port;
}

/**
 * Options from the environment only (the stock `node-red -s dist/settings.js` path; the CLI lays
 * its flags over these). Mode: UNS_EDGE_MODE=gateway (default) or demo.
 */
export function runtimeOptionsFromEnv(env: NodeJS.ProcessEnv): RuntimeOptions {
  const mode = (env.UNS_EDGE_MODE ?? 'gateway') as RuntimeMode;
  if (mode !== 'gateway' && mode !== 'demo') throw new SettingsError(`UNS_EDGE_MODE=${mode}: use gateway or demo`);
  const userDir = resolve(env.UNS_EDGE_USER_DIR ?? join(homedir(), '.node-red'));
  const flows = env.UNS_EDGE_FLOWS ?? 'flows.json';
  const { UNS_EDGE_ADMIN_USER: username, UNS_EDGE_ADMIN_PASSWORD_HASH: passwordHash } = env;
  if ((username === undefined) !== (passwordHash === undefined)) {
    throw new SettingsError('set both UNS_EDGE_ADMIN_USER and UNS_EDGE_ADMIN_PASSWORD_HASH (a bcrypt hash: npx node-red admin hash-pw), or neither');
  }
  return {
    mode,
    userDir,
    flowFile: isAbsolute(flows) ? flows : join(userDir, flows),
    host: env.UNS_EDGE_HOST ?? DEFAULT_HOST,
    port: parsePort(env.UNS_EDGE_PORT, 'UNS_EDGE_PORT') ?? DEFAULT_PORT,
    headless: parseFlag(env.UNS_EDGE_HEADLESS, 'UNS_EDGE_HEADLESS') ?? false,
    httpNode: parseFlag(env.UNS_EDGE_HTTP_NODE, 'UNS_EDGE_HTTP_NODE') ?? mode === 'demo',
    credentialSecret: env.UNS_EDGE_CREDENTIAL_SECRET || undefined,
    adminUser: username !== undefined && passwordHash !== undefined ? { username, passwordHash } : undefined,
    settingsFile: env.UNS_EDGE_SETTINGS || undefined,
    logLevel: env.UNS_EDGE_LOG_LEVEL ?? 'info',
  };
}

/** Merge `overrides` into `base`: plain objects recursively, anything else (arrays too) replaced. */
export function mergeSettings<T extends Record<string, unknown>>(base: T, overrides: Record<string, unknown>): T {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    merged[key] = isPlainObject(value) && isPlainObject(merged[key])
      ? mergeSettings(merged[key] as Record<string, unknown>, value)
      : value;
  }
  return merged as T;
}

function loadSettingsFile(file: string): Record<string, unknown> {
  const path = resolve(file);
  if (!existsSync(path)) throw new SettingsError(`settings file ${path} not found`);
  // A user's settings module, .js or .json, loaded like Node-RED loads settings.js.
  const loaded: unknown = require(path);
  if (!isPlainObject(loaded)) throw new SettingsError(`settings file ${path} must export an object of Node-RED settings`);
  return loaded;
}

/**
 * Node-RED logs an `[audit]` line for every admin API request, each editor load a dozen. In the
 * console: on a gateway with the editor (who deployed what), in any mode at log level debug or
 * trace, never in the demo at the default level.
 */
function auditToConsole(options: RuntimeOptions): boolean {
  return (options.mode === 'gateway' && !options.headless) || options.logLevel === 'debug' || options.logLevel === 'trace';
}

/** Settings that are the same in every mode. */
function commonSettings(options: RuntimeOptions): NodeRedSettings {
  const { root } = packageInfo();
  return {
    uiHost: options.host,
    uiPort: options.port,
    userDir: options.userDir,
    flowFile: options.flowFile,
    flowFilePretty: true,
    httpAdminRoot: options.headless ? false : '/',
    httpNodeRoot: options.httpNode ? '/' : false,
    // Loads this package's nodes and the editor theme plugin even when it is not in a node_modules.
    nodesDir: [root],
    // Every node that buffers messages (join, batch, sort, split, switch) stops at this many (SR 7.2).
    nodeMessageBufferMaxLength: 1000,
    contextStorage: {
      default: { module: 'memory' },
      file: { module: 'localfilesystem' },
    },
    paletteCategories: [...PALETTE_CATEGORIES],
    // Benchmark peers installed as devDependencies are not part of any runtime (palette, examples).
    externalModules: { palette: { denyList: devOnlyNodeRedModules() } },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: options.logLevel, metrics: false, audit: auditToConsole(options) } },
    editorTheme: {
      theme: 'uns-edge-theme',
      // No palette catalogue fetched from catalogue.nodered.org on each editor load: the runtimes work offline.
      palette: { catalogues: [] },
      page: { title: 'UNS Edge' },
      header: { title: 'UNS Edge' },
      projects: { enabled: false },
      tours: false,
      login: { image: join(root, 'dist', 'editor-theme', 'login.svg') },
    },
  };
}

/** Gateway mode closes every surface a running plant does not need (security.md §3.3). */
const GATEWAY_HARDENING: Record<string, unknown> = {
  diagnostics: { enabled: false, ui: false },
  runtimeState: { enabled: false, ui: false },
  externalModules: {
    autoInstall: false,
    palette: { allowInstall: false, allowUpload: false, allowUpdate: false },
    modules: { allowInstall: false },
  },
  functionExternalModules: false,
  // A function node stuck in a synchronous loop would freeze every poll and publish.
  globalFunctionTimeout: 5,
  // The exec node turns a deploy into a shell: the RCE path of security.md §3.2.
  nodesExcludes: ['90-exec.js'],
  exportGlobalContextKeys: false,
};

/** Something the operator should know that does not stop the start. */
export interface Notice { level: 'info' | 'warn'; message: string }

export interface BuiltSettings {
  settings: NodeRedSettings;
  notices: Notice[];
}

export function buildSettings(options: RuntimeOptions): BuiltSettings {
  let settings = commonSettings(options);
  if (options.mode === 'gateway') settings = mergeSettings(settings, GATEWAY_HARDENING);
  if (options.adminUser) {
    settings.adminAuth = {
      type: 'credentials',
      sessionExpiryTime: ADMIN_SESSION_SECONDS,
      users: [{ username: options.adminUser.username, password: options.adminUser.passwordHash, permissions: '*' }],
    };
  }
  if (options.credentialSecret !== undefined) settings.credentialSecret = options.credentialSecret;
  if (options.settingsFile) settings = mergeSettings(settings, loadSettingsFile(options.settingsFile));
  const trimNotices = settings.httpAdminRoot === false ? trimToFlows(settings) : [];
  guardAdminApi(settings);
  const notices = [...trimNotices, ...checkSettings(settings, options.mode)];
  return { settings, notices };
}

/** Where a headless gateway keeps the copy of uns-edge's package manifest with only the node sets its flows use. */
export const TRIMMED_PACKAGE_DIR = '.uns-edge-headless';

/**
 * Without the admin API no other flows can be deployed than the flows file's: the core node files,
 * the optional dashboard and uns-edge's node sets those flows do not use are not loaded
 * (headless-footprint.ts). When the trimmed manifest cannot be written, every node set loads.
 */
function trimToFlows(settings: NodeRedSettings): Notice[] {
  const flowFile = String(settings.flowFile);
  const { root } = packageInfo();
  const { nodesExcludes, denyList, unusedNodeSets } = headlessTrim(isAbsolute(flowFile) ? flowFile : join(String(settings.userDir), flowFile), root);
  const palette = ((settings.externalModules ??= {}) as { palette?: { denyList?: string[] } }).palette ??= {};
  settings.nodesExcludes = [...new Set([...(settings.nodesExcludes as string[] | undefined ?? []), ...nodesExcludes])];
  palette.denyList = [...new Set([...(palette.denyList ?? []), ...denyList])];
  // No editor to serve node .html files to: Node-RED's registry then does not read them (node-red's own CLI sets this too).
  settings.disableEditor = true;
  const nodesDir = settings.nodesDir;
  if (!Array.isArray(nodesDir) || !nodesDir.includes(root)) return [];
  const trimmedDir = join(String(settings.userDir), TRIMMED_PACKAGE_DIR);
  try {
    writeTrimmedManifest(root, unusedNodeSets, trimmedDir);
  } catch (error) {
    return [{ level: 'info', message: `every uns-edge node set is loaded: the trimmed package manifest could not be written to ${trimmedDir} (${(error as Error).message})` }];
  }
  settings.nodesDir = nodesDir.map((dir) => (dir === root ? trimmedDir : dir));
  return [];
}

/**
 * The admin guard (admin-guard.ts) first in `httpAdminMiddleware`, before any middleware of a
 * settings file, and sessions written 0600 unless a settings file brings its own storage. The
 * guard reads `settings` itself on every request, so it sees what `-D` changes after loading.
 */
function guardAdminApi(settings: NodeRedSettings): void {
  const own = settings.httpAdminMiddleware;
  if (!hasAdminGuard(own)) {
    const guard = adminGuard(settings, (message) => console.error(`[uns-edge] error: ${message}`));
    settings.httpAdminMiddleware = own === undefined ? guard : [guard, ...(Array.isArray(own) ? own : [own])];
  }
  settings.storageModule ??= withPrivateSessions(nodeRedFileStorage());
}

/** The refusals and warnings, on the merged settings (a settings file may change host or auth). */
function checkSettings(settings: NodeRedSettings, mode: RuntimeMode): Notice[] {
  const notices: Notice[] = [];
  const warn = (message: string): void => { notices.push({ level: 'warn', message }); };
  const editorOn = settings.httpAdminRoot !== false;
  const where = `${settings.uiHost}:${settings.uiPort}`;
  const exposed = !isLoopbackHost(settings.uiHost);
  const exposure = exposureProblem(settings);
  if (exposure) throw new SettingsError(`refusing to start: ${exposure}. ${EXPOSURE_FIXES}`);
  const badLogin = adminAuthProblem(settings);
  if (badLogin) throw new SettingsError(`refusing to start: ${badLogin}`);
  if (editorOn && exposed && !settings.https) {
    warn(`the editor on ${where} is served over plain HTTP: logins and tokens cross the network in clear text; set https in a --settings file or put a TLS proxy in front`);
  }
  if (settings.httpNodeRoot !== false && exposed && !settings.httpNodeAuth) {
    warn(`HTTP-In endpoints on ${where} have no httpNodeAuth: any flow with an http-in node is open to the network`);
  }
  if (mode === 'gateway') notices.push(...checkFlowsFile(settings.flowFile, editorOn));
  if (mode === 'gateway') checkCredentialSecret(settings, editorOn);
  if (mode === 'gateway' && settings.credentialSecret === undefined) {
    // Headless and no credentials file: nothing to encrypt, and nothing can add credentials
    // without the editor. `false` keeps Node-RED from writing a generated key into the user dir.
    settings.credentialSecret = false;
    notices.push({
      level: 'info',
      message: 'no credentials file and no UNS_EDGE_CREDENTIAL_SECRET: nothing to encrypt (Node-RED logs "Using unencrypted credentials")',
    });
  }
  return notices;
}

/**
 * Node-RED starts a flows file that is not valid JSON as an empty flow set ("Existing flow file is
 * not valid json"): a gateway would run nothing and look healthy. Refuse that, and a headless
 * gateway without a flows file (nothing could ever create it).
 */
function checkFlowsFile(flowFile: string, editorOn: boolean): Notice[] {
  if (!existsSync(flowFile)) {
    if (!editorOn) throw new SettingsError(`refusing to start: the flows file ${flowFile} does not exist (a headless gateway cannot create it)`);
    return [{ level: 'warn', message: `the flows file ${flowFile} does not exist yet: starting with no flows; Deploy in the editor creates it` }];
  }
  let flows: unknown;
  try {
    flows = JSON.parse(readFileSync(flowFile, 'utf8'));
  } catch (error) {
    throw new SettingsError(`refusing to start: the flows file ${flowFile} is not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(flows)) throw new SettingsError(`refusing to start: the flows file ${flowFile} must hold a JSON array of nodes`);
  const problem = flowsEntryProblem(flows);
  if (problem) throw new SettingsError(`refusing to start: the flows file ${flowFile} ${problem}`);
  return flows.length === 0 ? [{ level: 'warn', message: `the flows file ${flowFile} is empty: no flows will run` }] : [];
}

/** How many entries a message quotes at most. */
const QUOTED_ENTRIES = 5;

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `the ${typeof value} ${JSON.stringify(value)}`;
}

/**
 * Node-RED takes entries that are not node objects, or share an id, without a word: `[1,2,3]` stops
 * as "missing node types: " (no names), and a duplicated id makes it keep one node, or fail a whole
 * flow with "Circular config node dependency detected" printed to the console only.
 */
function flowsEntryProblem(flows: unknown[]): string | undefined {
  const malformed: string[] = [];
  const seen = new Map<string, number>();
  const duplicates = new Set<string>();
  flows.forEach((entry, index) => {
    const node = entry as { id?: unknown; type?: unknown };
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      malformed.push(`entry ${index} is ${describeValue(entry)}`);
    } else if (typeof node.id !== 'string' || node.id === '' || typeof node.type !== 'string' || node.type === '') {
      malformed.push(`entry ${index} has no ${typeof node.id !== 'string' || node.id === '' ? '"id"' : '"type"'} string`);
    } else if (seen.has(node.id)) {
      duplicates.add(`"${node.id}" (entries ${seen.get(node.id)} and ${index})`);
    } else {
      seen.set(node.id, index);
    }
  });
  const quote = (list: string[]): string =>
    list.slice(0, QUOTED_ENTRIES).join(', ') + (list.length > QUOTED_ENTRIES ? `, and ${list.length - QUOTED_ENTRIES} more` : '');
  if (malformed.length) return `must hold node objects, each with an "id" and a "type" string: ${quote(malformed)}`;
  if (duplicates.size) return `uses an id twice: ${quote([...duplicates])}; every node, config node and tab needs its own id`;
  return undefined;
}

function checkCredentialSecret(settings: NodeRedSettings, editorOn: boolean): void {
  const credentialsFile = credentialsFileFor(settings.flowFile, settings.userDir);
  const needed = editorOn || hasStoredCredentials(credentialsFile);
  const secret = settings.credentialSecret;
  if (needed && (typeof secret !== 'string' || secret === '')) {
    const why = editorOn ? 'the editor is on, so credentials can be deployed at any time' : `${credentialsFile} holds node credentials`;
    throw new SettingsError(
      `refusing to start: UNS_EDGE_CREDENTIAL_SECRET is not set and ${why}. Node credentials (passwords, private keys) ` +
      'are encrypted with this secret; without it Node-RED would store a generated key next to them. Set it to a long ' +
      'random string (e.g. `openssl rand -hex 32`) and keep it across restarts: a new secret makes existing credentials unreadable.');
  }
  if (typeof secret === 'string' && secret.length < MIN_SECRET_LENGTH) {
    throw new SettingsError(`refusing to start: UNS_EDGE_CREDENTIAL_SECRET is ${secret.length} characters; use at least ${MIN_SECRET_LENGTH} (e.g. \`openssl rand -hex 32\`)`);
  }
}
