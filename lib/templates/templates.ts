/**
 * The flow templates (flows/*.json, shipped as examples/ for Import ▸ Examples ▸ uns-edge) for
 * gateways without an editor: `uns-edge templates` lists them, `uns-edge new --template NAME
 * [--set KEY=VALUE …]` writes one as a flows file (docs/templates.md). Plain JSON work, no Node-RED.
 *
 * A template says where its peers are only through `${UNS_EDGE_…}` variables declared on its tab
 * (Flow properties ▸ Environment Variables) as `$env("$parent.NAME") ? $env("$parent.NAME") : "DEFAULT"`:
 * the process environment's value, else the default. `--set NAME=VALUE` replaces the default, so
 * the gateway's environment still wins, as it does for the shipped template.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  [property: string]: unknown;
}

/** An entry of a tab's `env` list, as Node-RED stores it. */
export interface EnvEntry { name: string; value: string; type: string }

export interface TemplateVariable {
  name: string;
  /** The value used when the process environment does not set the variable. */
  defaultValue: string;
}

export interface FlowTemplate {
  /** The file name without `.json`: what `--template` takes. */
  name: string;
  file: string;
  nodes: FlowNode[];
  /** The tabs' info texts (Markdown), joined. */
  info: string;
  /** The first sentence of the info: what the template shows. */
  summary: string;
  /** The variables its tabs declare, each once. */
  variables: TemplateVariable[];
}

/** A template or setting that cannot be used; the message names it and what would do. */
export class TemplateError extends Error {}

/** `$env("$parent.NAME") ? $env("$parent.NAME") : "DEFAULT"` (DEFAULT a JSON/JSONata string literal). */
const FALLBACK = /^\$env\("\$parent\.(\w+)"\) \? \$env\("\$parent\.(\w+)"\) : ("(?:[^"\\]|\\.)*")$/;

function fallbackExpression(name: string, defaultValue: string): string {
  return `$env("$parent.${name}") ? $env("$parent.${name}") : ${JSON.stringify(defaultValue)}`;
}

/** The value a tab variable has when the process environment does not set it. */
export function variableDefault(entry: EnvEntry): string {
  if (entry.type === 'jsonata') {
    const fallback = FALLBACK.exec(entry.value);
    if (fallback && fallback[1] === entry.name && fallback[2] === entry.name) return JSON.parse(fallback[3]!) as string;
  }
  return String(entry.value);
}

/**
 * Where the templates are: flows/ in a clone (the sources; examples/ there is a build copy that may
 * be stale), else examples/ of an installed package, which ships no flows/.
 */
export function templatesDir(packageRoot: string): string {
  const flows = join(packageRoot, 'flows');
  return existsSync(flows) ? flows : join(packageRoot, 'examples');
}

function tabsOf(nodes: FlowNode[]): FlowNode[] {
  return nodes.filter((node) => node.type === 'tab');
}

function envOf(tab: FlowNode): EnvEntry[] {
  return Array.isArray(tab.env) ? (tab.env as EnvEntry[]) : [];
}

/** The first sentence of the first paragraph, on one line. */
export function summaryOf(info: string): string {
  const paragraph = info.trim().split(/\n\s*\n/)[0]?.replace(/\s+/g, ' ').trim() ?? '';
  const sentence = /^(.*?[.!?])(?:\s|$)/.exec(paragraph)?.[1] ?? paragraph;
  // "… as docs/zones.md describes:" introduces a list: the sentence ends there.
  return sentence.replace(/:$/, '.');
}

export function parseTemplate(file: string, text: string): FlowTemplate {
  const name = basename(file, '.json');
  let nodes: unknown;
  try {
    nodes = JSON.parse(text);
  } catch (error) {
    throw new TemplateError(`template ${name} (${file}): not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(nodes) || nodes.some((node) => typeof node?.id !== 'string' || typeof node?.type !== 'string')) {
    throw new TemplateError(`template ${name} (${file}): not a flows array (each node with an id and a type)`);
  }
  const flow = nodes as FlowNode[];
  const tabs = tabsOf(flow);
  const info = tabs.map((tab) => (typeof tab.info === 'string' ? tab.info : '')).filter(Boolean).join('\n\n');
  const variables = new Map<string, TemplateVariable>();
  for (const entry of tabs.flatMap(envOf)) {
    if (!variables.has(entry.name)) variables.set(entry.name, { name: entry.name, defaultValue: variableDefault(entry) });
  }
  return { name, file, nodes: flow, info, summary: summaryOf(info), variables: [...variables.values()] };
}

/** Every `*.json` of the folder, by name. */
export function loadTemplates(dir: string): FlowTemplate[] {
  return readdirSync(dir).filter((file) => file.endsWith('.json')).sort()
    .map((file) => parseTemplate(join(dir, file), readFileSync(join(dir, file), 'utf8')));
}

export function findTemplate(templates: FlowTemplate[], name: string): FlowTemplate {
  const found = templates.find((template) => template.name === name || `${template.name}.json` === name);
  if (!found) throw new TemplateError(`no template "${name}"; the templates are: ${templates.map((t) => t.name).join(', ')}`);
  return found;
}

/** `KEY=VALUE` of `--set` (the value may contain `=` and be empty). */
export function parseSetting(text: string): [string, string] {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new TemplateError(`--set ${text}: expected KEY=VALUE`);
  return [text.slice(0, equals), text.slice(equals + 1)];
}

/** A Node-RED node id: 16 hex digits, as the editor's RED.nodes.id() makes them. */
export function generateNodeId(): string {
  return randomBytes(8).toString('hex');
}

/** Replace every string equal to an old id, in properties, arrays and nested objects. */
function remapIds(value: unknown, ids: Map<string, string>): unknown {
  if (typeof value === 'string') return ids.get(value) ?? value;
  if (Array.isArray(value)) return value.map((item) => remapIds(item, ids));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, remapIds(item, ids)]));
  }
  return value;
}

/**
 * The template as a flows file: every node under a fresh id, with every reference to it (z, wires,
 * config nodes, groups, links, catch/status scopes) following, so two templates, or one twice, share
 * a runtime without colliding; the variables in `settings` given their value. A setting the
 * template does not declare is refused, naming those it does.
 */
export function instantiateTemplate(template: FlowTemplate, settings: ReadonlyMap<string, string>, newId: () => string = generateNodeId): FlowNode[] {
  const known = template.variables.map((variable) => variable.name);
  const unknown = [...settings.keys()].filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new TemplateError(`template ${template.name} has no variable ${unknown.join(', ')}; its variables are: ${known.join(', ') || '(none)'}`);
  }
  const ids = new Map(template.nodes.map((node) => [node.id, newId()]));
  return template.nodes.map((original) => {
    const node = remapIds(original, ids) as FlowNode;
    if (node.type === 'tab' && Array.isArray(node.env)) {
      node.env = (node.env as EnvEntry[]).map((entry) => {
        const value = settings.get(entry.name);
        if (value === undefined) return entry;
        const fallback = entry.type === 'jsonata' && FALLBACK.test(entry.value);
        return fallback ? { ...entry, value: fallbackExpression(entry.name, value) } : { name: entry.name, type: 'str', value };
      });
    }
    return node;
  });
}
