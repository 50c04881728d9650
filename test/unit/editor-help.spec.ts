/**
 * Editor help and dialog fields for a reader who has never seen the package (issue 14 item 6):
 * every node type that a nodes/<set>/<set>.html registers has help in nodes/<set>/locales/en-US/<set>.html
 * (`<script type="text/html" data-help-name="TYPE">`, where Node-RED looks for it) with an Inputs section when
 * the node has an input, an Outputs section when it has outputs (config nodes need neither) and an example
 * (the word "example", a <pre> or a <code> snippet); and every field of its dialog (`node-input-*`,
 * `node-config-input-*`) has a tooltip — a `title` on the field or its label, literal or through
 * `data-i18n="[title]key"` with a non-empty English text — or a line of help (`form-tips`) in its form row.
 * The fields the editor-fragments plugin (editor-theme/editor-fragments-plugin.html) puts into a dialog
 * through `window.UnsEdgeEditor.brokerTabs(type, options)` (the shared broker Connection and Security
 * fields) are checked in that dialog, filled with the set's options as the plugin fills them.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registeredDefinitions } from '../helpers/editor-definitions';

const nodesDir = join(__dirname, '..', '..', 'nodes');
const fragmentsHtml = readFileSync(join(__dirname, '..', '..', 'editor-theme', 'editor-fragments-plugin.html'), 'utf8');
/** Where brokerTabs() puts each fragment of the plugin into a dialog template. */
const BROKER_FRAGMENTS: Record<string, string> = {
  '<!-- uns-edge-editor: broker connection -->': 'uns-edge-broker-connection',
  '<!-- uns-edge-editor: broker security -->': 'uns-edge-broker-security',
};

interface Registered { type: string; category: string; inputs: number; outputs: number }

/** The types an editor file registers. */
function registeredTypes(html: string): Registered[] {
  return registeredDefinitions(html).map(({ type, definition: d }) =>
    ({ type, category: String(d.category), inputs: Number(d.inputs ?? 0), outputs: Number(d.outputs ?? 0) }));
}

/**
 * A dialog template with the plugin's broker fragments in place of their marks, filled with the options
 * of the set's brokerTabs() call as the plugin's fill() does (options given as expressions, per type: the input id
 * prefix as the dialog's own fields have it, the tab id prefix the type).
 */
function withBrokerFragments(html: string, type: string, template: string): string {
  if (!Object.keys(BROKER_FRAGMENTS).some((mark) => template.includes(mark))) return template;
  const call = /UnsEdgeEditor\.brokerTabs\([^{]*(\{[^}]*\})/.exec(html);
  assert.ok(call, 'a dialog with a broker mark and no brokerTabs() call in its set');
  const options: Record<string, string> = Object.fromEntries([...call[1]!.matchAll(/(\w+):\s*'([^']*)'/g)].map((m) => [m[1]!, m[2]!]));
  options.tabs ??= type;
  options.prefix ??= template.includes('id="node-config-input-') ? 'node-config-input' : 'node-input';
  let filled = template;
  for (const [mark, fragmentId] of Object.entries(BROKER_FRAGMENTS)) {
    const start = fragmentsHtml.indexOf(`<script type="text/html" id="${fragmentId}">`);
    assert.ok(start >= 0, `editor-fragments-plugin.html has the fragment ${fragmentId}`);
    const fragment = fragmentsHtml.slice(fragmentsHtml.indexOf('>', start) + 1, fragmentsHtml.indexOf('</script>', start))
      .replace(/\{(prefix|tabs|tabClass|i18n|tip|serversTip)\}/g, (_match, name: string) => {
        assert.ok(options[name] !== undefined, `brokerTabs() option ${name}`);
        return options[name]!;
      });
    filled = filled.replace(mark, fragment);
  }
  return filled;
}

function scriptBlock(html: string, attribute: 'data-template-name' | 'data-help-name', type: string): string | undefined {
  const start = html.indexOf(`<script type="text/html" ${attribute}="${type}">`);
  if (start < 0) return undefined;
  return html.slice(start, html.indexOf('</script>', start));
}

/** The English text of an i18n key of the set (`set.a.b` or `uns-edge/set:set.a.b`); core keys (`node-red:`) count as present. */
function localeText(locale: Record<string, unknown>, key: string): string {
  if (key.startsWith('node-red:')) return key;
  let value: unknown = locale;
  for (const part of key.replace(/^[^:]*:/, '').split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return typeof value === 'string' ? value.trim() : '';
}

function hasTooltip(tag: string, locale: Record<string, unknown>): boolean {
  if (/\stitle="[^"]*\S[^"]*"/.test(tag)) return true;
  const i18n = /data-i18n="([^"]*)"/.exec(tag)?.[1] ?? '';
  return i18n.split(';').some((entry) => {
    const match = /^\[title\](.+)$/.exec(entry.trim());
    return match !== null && localeText(locale, match[1]!) !== '';
  });
}

/** The dialog fields of a template without a tooltip or a line of help, as `type: id`. */
function fieldsWithoutHelp(type: string, template: string, locale: Record<string, unknown>): string[] {
  const missing: string[] = [];
  // A form row runs to the next one; a form-tips right after it (inside or as a sibling) belongs to it.
  for (const row of template.split(/(?=<div class="form-row)/)) {
    const tips = row.includes('form-tips');
    for (const field of row.matchAll(/<(input|select|textarea)\b[^>]*\sid="(node-(?:config-)?input-[^"]+)"[^>]*>/g)) {
      const [tag, , id] = field;
      if (/type="hidden"/.test(tag)) continue;
      const labels = [...row.matchAll(new RegExp(`<label\\b[^>]*for="${id}"[^>]*>`, 'g'))].map((m) => m[0]);
      if (tips || hasTooltip(tag, locale) || labels.some((label) => hasTooltip(label, locale))) continue;
      missing.push(`${type}: ${id}`);
    }
  }
  return missing;
}

/** What the help of a type lacks, as readable sentences. */
function helpGaps(node: Registered, help: string | undefined): string[] {
  if (help === undefined) return [`${node.type}: no help in locales/en-US`];
  const gaps: string[] = [];
  const config = node.category === 'config';
  if (!config && node.inputs > 0 && !/<h3>\s*Inputs?\s*<\/h3>/i.test(help)) gaps.push(`${node.type}: no Inputs section`);
  if (!config && node.outputs > 0 && !/<h3>\s*Outputs?\s*<\/h3>/i.test(help)) gaps.push(`${node.type}: no Outputs section`);
  if (!/example|<pre>|<code>/i.test(help)) gaps.push(`${node.type}: no example`);
  return gaps;
}

function gapsOfSet(set: string): string[] {
  const html = readFileSync(join(nodesDir, set, `${set}.html`), 'utf8');
  const helpFile = join(nodesDir, set, 'locales', 'en-US', `${set}.html`);
  const localeFile = join(nodesDir, set, 'locales', 'en-US', `${set}.json`);
  const helpHtml = existsSync(helpFile) ? readFileSync(helpFile, 'utf8') : '';
  const locale = existsSync(localeFile) ? JSON.parse(readFileSync(localeFile, 'utf8')) as Record<string, unknown> : {};
  const types = registeredTypes(html);
  assert.ok(types.length > 0, `${set}.html registers no node type`);
  return types.flatMap((node) => [
    ...helpGaps(node, scriptBlock(helpHtml, 'data-help-name', node.type)),
    ...fieldsWithoutHelp(node.type, withBrokerFragments(html, node.type, scriptBlock(html, 'data-template-name', node.type) ?? ''), locale),
  ]);
}

const sets = readdirSync(nodesDir).filter((set) => existsSync(join(nodesDir, set, `${set}.html`)));

describe('editor help and dialog fields (issue 14 item 6)', function () {
  it('finds the node sets', function () {
    assert.ok(sets.includes('uns') && sets.length >= 10, `sets found: ${sets.join(', ')}`);
  });
  it('every config node has a label for its dialog title ("Add new UNS broker config node", not the type name)', () => {
    // node-red editor-client getEditStackTitle(): the title uses _def.paletteLabel, else the type name.
    const titles: string[] = [];
    for (const set of sets) {
      for (const { type, definition } of registeredDefinitions(readFileSync(join(nodesDir, set, `${set}.html`), 'utf8'))) {
        if (definition.category !== 'config') continue;
        const paletteLabel = definition.paletteLabel;
        const label = (typeof paletteLabel === 'function' ? paletteLabel() : paletteLabel) || type;
        assert.notEqual(label, type, `${type} (nodes/${set}) has no paletteLabel: its dialog says "Add new ${type} config node"`);
        titles.push(`Add new ${label} config node`);
      }
    }
    assert.ok(titles.length >= 6, titles.join('; '));
  });
  for (const set of sets) {
    it(`nodes/${set}: help with inputs, outputs and an example; every dialog field with a tooltip or a line of help`, function () {
      assert.deepEqual(gapsOfSet(set), []);
    });
  }
});
