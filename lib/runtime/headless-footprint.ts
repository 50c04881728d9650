/**
 * What a gateway without the editor need not load. Node-RED requires every core node file and
 * every Node-RED module it finds at start, whatever the flows use: the HTML parser pulls in
 * cheerio, XML xml2js, YAML and template js-yaml, JSON ajv, HTTP request got, and the optional
 * Dashboard 2 peer socket.io and its whole server (docs/gateway.md § "What a headless gateway does
 * not load"). Without the admin API nothing can deploy other flows than the file read at start, so
 * the node files whose types that file does not use are left out (Node-RED's `nodesExcludes`, by
 * file name), the dashboard is put on the palette deny list, and uns-edge's own node sets the flows
 * do not use are left out of a copy of its package manifest that `nodesDir` points at instead
 * (`nodesExcludes` cannot name a node set of a package). A node file is kept when its types cannot be read.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { isPlainObject } from '../values';

/** The optional peer (package.json peerDependencies) that only flows with its ui-* nodes need. */
export const DASHBOARD_MODULE = '@flowfuse/node-red-dashboard';

/** Core files the runtime itself relies on (unknown types, the global-config node it may create). */
const ALWAYS_LOADED = new Set(['98-unknown.js', '91-global-config.js']);

const REGISTER_TYPE = /registerType\(\s*["']([^"']+)["']/g;
/** Every node type has an edit dialog template in its set's .html file, named after the type. */
const TEMPLATE_NAME = /data-template-name=["']([^"']+)["']/g;
/** The prefix of every node type of uns-edge: a used type with it that no node set declares keeps them all. */
const OWN_TYPE_PREFIX = 'uns-';
/**
 * uns-edge plugins that do nothing without the admin API: the UNS explorer (admin endpoints, and
 * the MQTT clients they start) and the editor fragments. The theme (its start-up check) and the
 * zone lint (it logs findings when the flows start) are loaded headless too.
 */
const EDITOR_ONLY_PLUGINS = new Set(['uns-edge-explorer', 'uns-edge-editor-fragments']);

/** The node types a node file registers, read from its source; empty when none can be read. */
export function registeredTypes(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(REGISTER_TYPE)].map((match) => match[1]);
}

/** The node types of a flows file (subflow instances and config nodes included); undefined when it cannot be read. */
export function flowTypes(flowFile: string): Set<string> | undefined {
  if (!existsSync(flowFile)) return undefined;
  let flows: unknown;
  try {
    flows = JSON.parse(readFileSync(flowFile, 'utf8'));
  } catch {
    return undefined;
  }
  // A gateway's flows file is an array of nodes (settings.ts refuses anything else).
  if (!Array.isArray(flows)) return undefined;
  return new Set(flows.filter(isPlainObject).map((node) => node.type).filter((type): type is string => typeof type === 'string'));
}

function jsFilesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return jsFilesBelow(path);
    return entry.name.endsWith('.js') ? [path] : [];
  });
}

/** Core node files (base names, as `nodesExcludes` wants them) none of whose types are in `used`. */
export function unusedCoreNodeFiles(coreNodesDir: string, used: ReadonlySet<string>): string[] {
  return jsFilesBelow(join(coreNodesDir, 'core')).filter((file) => {
    const name = file.slice(file.lastIndexOf('/') + 1);
    if (ALWAYS_LOADED.has(name)) return false;
    const types = registeredTypes(file);
    return types.length > 0 && types.every((type) => !used.has(type));
  }).map((file) => file.slice(file.lastIndexOf('/') + 1)).sort();
}

/** Whether the flows use a node of the Node-RED module installed at `moduleDir` (unknown: true). */
export function moduleUsed(moduleDir: string, used: ReadonlySet<string>): boolean {
  const manifest = join(moduleDir, 'package.json');
  if (!existsSync(manifest)) return false;
  const section = (JSON.parse(readFileSync(manifest, 'utf8')) as { 'node-red'?: { nodes?: Record<string, string> } })['node-red'];
  const files = Object.values(section?.nodes ?? {}).map((file) => join(moduleDir, file));
  const types = files.flatMap((file) => (existsSync(file) ? registeredTypes(file) : []));
  return types.length === 0 || types.some((type) => used.has(type));
}

function resolvePackageDir(name: string, from: string): string | undefined {
  try {
    return dirname(require.resolve(`${name}/package.json`, { paths: [from] }));
  } catch {
    return undefined;
  }
}

interface NodeRedManifest {
  name: string;
  version?: string;
  'node-red': { version?: string; nodes?: Record<string, string>; plugins?: Record<string, string> };
}

function readManifest(packageRoot: string): NodeRedManifest {
  return JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as NodeRedManifest;
}

/**
 * The node types of a node set of the package at `packageRoot` (`file` as its package.json names
 * it): the edit templates of its .html file and the literal registerType() calls of its .js file.
 */
export function nodeSetTypes(packageRoot: string, file: string): Set<string> {
  const script = join(packageRoot, file);
  const html = script.replace(/\.c?js$/, '.html');
  const types = new Set(existsSync(script) ? registeredTypes(script) : []);
  if (existsSync(html)) for (const match of readFileSync(html, 'utf8').matchAll(TEMPLATE_NAME)) types.add(match[1]);
  return types;
}

/**
 * The node sets of the package at `packageRoot` (names as in its package.json) none of whose types
 * are in `used`. None when a used uns-edge type is declared by no set (a type read wrongly must not
 * leave its set out) or a set's types cannot be read.
 */
export function unusedNodeSets(packageRoot: string, used: ReadonlySet<string>): string[] {
  const sets = Object.entries(readManifest(packageRoot)['node-red'].nodes ?? {}).map(([name, file]) => ({ name, types: nodeSetTypes(packageRoot, file) }));
  if (sets.some((set) => set.types.size === 0)) return [];
  const declared = new Set(sets.flatMap((set) => [...set.types]));
  if ([...used].some((type) => type.startsWith(OWN_TYPE_PREFIX) && !declared.has(type))) return [];
  return sets.filter((set) => [...set.types].every((type) => !used.has(type))).map((set) => set.name).sort();
}

/**
 * Write into `dir` a package.json for the package at `packageRoot` without the node sets
 * `leftOut` and the editor-only plugins, its file paths relative to `dir` so that Node-RED loads
 * the same files as from the package (module name, version, locales, icons unchanged). Written
 * beside and renamed over the old one, so a Node-RED reading it never sees half a file.
 */
export function writeTrimmedManifest(packageRoot: string, leftOut: readonly string[], dir: string): void {
  const manifest = readManifest(packageRoot);
  const keep = (entries: Record<string, string> | undefined, drop: (name: string) => boolean): Record<string, string> =>
    Object.fromEntries(Object.entries(entries ?? {}).filter(([name]) => !drop(name)).map(([name, file]) => [name, relative(dir, join(packageRoot, file))]));
  const section = manifest['node-red'];
  const trimmed: NodeRedManifest = {
    name: manifest.name,
    version: manifest.version,
    'node-red': {
      version: section.version,
      nodes: keep(section.nodes, (name) => leftOut.includes(name)),
      plugins: keep(section.plugins, (name) => EDITOR_ONLY_PLUGINS.has(name)),
    },
  };
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'package.json');
  writeFileSync(`${file}.${process.pid}`, `${JSON.stringify(trimmed, null, 2)}\n`);
  renameSync(`${file}.${process.pid}`, file);
}

export interface HeadlessTrim {
  /** Core node files to add to `nodesExcludes`. */
  nodesExcludes: string[];
  /** Modules to add to `externalModules.palette.denyList`. */
  denyList: string[];
  /** uns-edge's node sets the flows do not use (package.json names). */
  unusedNodeSets: string[];
}

/**
 * What to leave out for the flows in `flowFile`, the package at `packageRoot` (where Node-RED and
 * the dashboard are resolved from). Nothing when the flows file cannot be read: Node-RED then
 * reports it, and every node stays available.
 */
export function headlessTrim(flowFile: string, packageRoot: string): HeadlessTrim {
  const used = flowTypes(flowFile);
  if (!used) return { nodesExcludes: [], denyList: [], unusedNodeSets: [] };
  const nodeRedDir = resolvePackageDir('node-red', packageRoot);
  const coreNodesDir = nodeRedDir && resolvePackageDir('@node-red/nodes', nodeRedDir);
  const dashboardDir = resolvePackageDir(DASHBOARD_MODULE, packageRoot);
  return {
    nodesExcludes: coreNodesDir ? unusedCoreNodeFiles(coreNodesDir, used) : [],
    denyList: dashboardDir && !moduleUsed(dashboardDir, used) ? [DASHBOARD_MODULE] : [],
    unusedNodeSets: unusedNodeSets(packageRoot, used),
  };
}
