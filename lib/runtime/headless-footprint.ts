/**
 * What a gateway without the editor need not load. Node-RED requires every core node file and
 * every Node-RED module it finds at start, whatever the flows use: the HTML parser pulls in
 * cheerio, XML xml2js, YAML and template js-yaml, JSON ajv, HTTP request got, and the optional
 * Dashboard 2 peer socket.io and its whole server (docs/gateway.md § "Footprint"). Without the
 * admin API nothing can deploy other flows than the file read at start, so the node files whose
 * types that file does not use are left out (Node-RED's `nodesExcludes`, by file name) and the
 * dashboard is put on the palette deny list. A node file is kept when its types cannot be read.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isPlainObject } from '../values';

/** The optional peer (package.json peerDependencies) that only flows with its ui-* nodes need. */
export const DASHBOARD_MODULE = '@flowfuse/node-red-dashboard';

/** Core files the runtime itself relies on (unknown types, the global-config node it may create). */
const ALWAYS_LOADED = new Set(['98-unknown.js', '91-global-config.js']);

const REGISTER_TYPE = /registerType\(\s*["']([^"']+)["']/g;

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

export interface HeadlessTrim {
  /** Core node files to add to `nodesExcludes`. */
  nodesExcludes: string[];
  /** Modules to add to `externalModules.palette.denyList`. */
  denyList: string[];
}

/**
 * What to leave out for the flows in `flowFile`, the package at `packageRoot` (where Node-RED and
 * the dashboard are resolved from). Nothing when the flows file cannot be read: Node-RED then
 * reports it, and every node stays available.
 */
export function headlessTrim(flowFile: string, packageRoot: string): HeadlessTrim {
  const used = flowTypes(flowFile);
  if (!used) return { nodesExcludes: [], denyList: [] };
  const nodeRedDir = resolvePackageDir('node-red', packageRoot);
  const coreNodesDir = nodeRedDir && resolvePackageDir('@node-red/nodes', nodeRedDir);
  const dashboardDir = resolvePackageDir(DASHBOARD_MODULE, packageRoot);
  return {
    nodesExcludes: coreNodesDir ? unusedCoreNodeFiles(coreNodesDir, used) : [],
    denyList: dashboardDir && !moduleUsed(dashboardDir, used) ? [DASHBOARD_MODULE] : [],
  };
}
