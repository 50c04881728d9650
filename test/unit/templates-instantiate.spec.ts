/**
 * lib/templates: what `uns-edge templates` and `uns-edge new` do with a template (docs/templates.md):
 * fresh ids with every reference following, `--set` as the variable's new default (the process
 * environment still wins), unknown keys refused naming the known ones, the one-line summary.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import {
  findTemplate, instantiateTemplate, loadTemplates, parseSetting, parseTemplate, summaryOf, TemplateError, variableDefault, type FlowNode,
} from '../../lib/templates/templates';

const fallback = (name: string, value: string) => ({ name, type: 'jsonata', value: `$env("$parent.${name}") ? $env("$parent.${name}") : ${JSON.stringify(value)}` });

/** Every kind of reference Node-RED keeps between nodes: z, g, wires, config node, link, scope, group members. */
const SAMPLE: FlowNode[] = [
  { id: 't1', type: 'tab', label: 'sample', info: 'Shows a sample.\n\nAdapt it by setting UNS_EDGE_MQTT_HOST.', env: [fallback('UNS_EDGE_MQTT_HOST', '127.0.0.1'), { name: 'UNS_EDGE_LINE', type: 'str', value: 'line1' }] },
  { id: 'b1', type: 'uns-broker', z: 't1', host: '${UNS_EDGE_MQTT_HOST}' },
  { id: 'g1', type: 'group', z: 't1', nodes: ['i1', 'o1'] },
  { id: 'i1', type: 'inject', z: 't1', g: 'g1', x: 1, y: 1, wires: [['o1', 'lo']] },
  { id: 'o1', type: 'uns-out', z: 't1', g: 'g1', broker: 'b1', x: 2, y: 1, wires: [] },
  { id: 'lo', type: 'link out', z: 't1', links: ['li'], x: 3, y: 1, wires: [] },
  { id: 'li', type: 'link in', z: 't1', links: ['lo'], x: 4, y: 1, wires: [['o1']] },
  { id: 'c1', type: 'catch', z: 't1', scope: ['o1'], x: 5, y: 1, wires: [[]] },
];
const sample = () => parseTemplate('/x/sample.json', JSON.stringify(SAMPLE));

describe('templates (lib/templates)', () => {
  it('reads name, summary and the tab\'s variables with their defaults', () => {
    const template = sample();
    assert.equal(template.name, 'sample');
    assert.equal(template.summary, 'Shows a sample.');
    assert.deepEqual(template.variables, [{ name: 'UNS_EDGE_MQTT_HOST', defaultValue: '127.0.0.1' }, { name: 'UNS_EDGE_LINE', defaultValue: 'line1' }]);
    assert.equal(variableDefault(fallback('X', 'a "quoted" \\ value')), 'a "quoted" \\ value');
  });

  it('summary: the first sentence of the first paragraph, on one line; a colon that opens a list ends it', () => {
    assert.equal(summaryOf('Four drives\npublished. More here.\n\nSecond.'), 'Four drives published.');
    assert.equal(summaryOf('Three zones, as docs/zones.md describes:\n\n- one'), 'Three zones, as docs/zones.md describes.');
  });

  it('gives every node a fresh 16-hex-digit id and every reference follows it', () => {
    const flows = instantiateTemplate(sample(), new Map());
    const ids = new Map(SAMPLE.map((node, index) => [node.id, flows[index]!.id]));
    for (const id of ids.values()) assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(new Set(ids.values()).size, SAMPLE.length);
    const byOld = (id: string) => flows[SAMPLE.findIndex((node) => node.id === id)]!;
    assert.ok(flows.slice(1).every((node) => node.z === ids.get('t1')), 'z');
    assert.deepEqual(byOld('g1').nodes, [ids.get('i1'), ids.get('o1')]);
    assert.equal(byOld('i1').g, ids.get('g1'));
    assert.deepEqual(byOld('i1').wires, [[ids.get('o1'), ids.get('lo')]]);
    assert.equal(byOld('o1').broker, ids.get('b1'));
    assert.deepEqual(byOld('lo').links, [ids.get('li')]);
    assert.deepEqual(byOld('c1').scope, [ids.get('o1')]);
    assert.equal(byOld('b1').host, '${UNS_EDGE_MQTT_HOST}', 'other strings untouched');
  });

  it('two instances share no id, so both import into one runtime', () => {
    const first = new Set(instantiateTemplate(sample(), new Map()).map((node) => node.id));
    const second = instantiateTemplate(sample(), new Map()).map((node) => node.id);
    assert.deepEqual(second.filter((id) => first.has(id)), []);
  });

  it('--set replaces the default and keeps the process environment\'s precedence; a plain value is replaced', () => {
    const [tab] = instantiateTemplate(sample(), new Map([['UNS_EDGE_MQTT_HOST', 'broker "a"'], ['UNS_EDGE_LINE', 'line7']]));
    const env = tab!.env as Array<{ name: string; type: string; value: string }>;
    assert.deepEqual(env[0], fallback('UNS_EDGE_MQTT_HOST', 'broker "a"'));
    assert.equal(variableDefault(env[0]!), 'broker "a"');
    assert.deepEqual(env[1], { name: 'UNS_EDGE_LINE', type: 'str', value: 'line7' });
    assert.equal((SAMPLE[0]!.env as Array<{ value: string }>)[1]!.value, 'line1', 'the template itself is not changed');
  });

  it('refuses a key the template does not declare, naming those it does', () => {
    assert.throws(() => instantiateTemplate(sample(), new Map([['UNS_EDGE_SIM_PORT', '1']])),
      (error: Error) => error instanceof TemplateError && /no variable UNS_EDGE_SIM_PORT; its variables are: UNS_EDGE_MQTT_HOST, UNS_EDGE_LINE/.test(error.message));
  });

  it('KEY=VALUE: the value may hold "=" or be empty; no key is refused', () => {
    assert.deepEqual(parseSetting('A=b=c'), ['A', 'b=c']);
    assert.deepEqual(parseSetting('A='), ['A', '']);
    assert.throws(() => parseSetting('=x'), TemplateError);
    assert.throws(() => parseSetting('novalue'), TemplateError);
  });

  it('the shipped templates load; an unknown name is refused with the list', () => {
    const templates = loadTemplates(join(__dirname, '..', '..', 'flows'));
    assert.ok(templates.some((t) => t.name === 'demo'));
    assert.equal(findTemplate(templates, 'demo.json').name, 'demo');
    assert.throws(() => findTemplate(templates, 'nope'), (error: Error) => error instanceof TemplateError && /the templates are: .*demo/.test(error.message));
  });

  it('a file that is not a flows array is refused, naming the file', () => {
    assert.throws(() => parseTemplate('/x/bad.json', '{"id":1}'), /template bad \(\/x\/bad.json\): not a flows array/);
    assert.throws(() => parseTemplate('/x/bad.json', '[{'), /template bad .*not JSON/);
  });
});
