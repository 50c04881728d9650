/**
 * The demo flow's info text (flows/demo.json, the tab `npm start` opens) says where the editor, the broker and the
 * simulated plant are: the addresses `uns-edge demo` uses when started without options, as its own --help states
 * them, on the loopback address the CLI binds (DEFAULT_HOST). The tab's environment fallbacks agree with them.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_HOST } from '../../lib/runtime/settings';

const root = join(__dirname, '..', '..');

interface FlowNode { id: string; type: string; info?: string; env?: { name: string; value: string }[] }

/** The default of each option of `uns-edge demo`, read from its --help ("--port N  … default 1880)"). */
function demoDefaults(): Record<string, number> {
  const help = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'uns-edge.ts'), 'demo', '--help'], { encoding: 'utf8' });
  return Object.fromEntries([...help.matchAll(/^\s*--([\w-]+) N\b.*default (\d+)\)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

describe('demo flow info (npm start)', function () {
  this.timeout(30_000);
  const flow = JSON.parse(readFileSync(join(root, 'flows', 'demo.json'), 'utf8')) as FlowNode[];
  const tab = flow.find((n) => n.type === 'tab')!;
  let defaults: Record<string, number>;

  before(function () {
    defaults = demoDefaults();
  });

  it('npm start runs the demo without options', function () {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.start!, /uns-edge\.js demo$/);
    assert.deepEqual(Object.keys(defaults).sort(), ['mqtt-port', 'opcua-port', 'port', 'sim-port']);
  });

  it('states the editor URL, the broker, the Modbus and the OPC UA plant addresses the demo uses', function () {
    const info = tab.info ?? '';
    const expected = [
      `http://${DEFAULT_HOST}:${defaults.port}`,
      `mqtt://${DEFAULT_HOST}:${defaults['mqtt-port']}`,
      `-p ${defaults['mqtt-port']}`,
      `${DEFAULT_HOST}:${defaults['sim-port']}`,
      `opc.tcp://${DEFAULT_HOST}:${defaults['opcua-port']}`,
    ];
    assert.deepEqual(expected.filter((text) => !info.includes(text)), [], `the demo tab's info:\n${info}`);
  });

  it("the tab's environment fallbacks are the CLI's defaults", function () {
    const fallback = (name: string) => /: "([^"]*)"$/.exec(tab.env?.find((e) => e.name === name)?.value ?? '')?.[1];
    assert.equal(fallback('UNS_EDGE_MQTT_HOST'), DEFAULT_HOST);
    assert.equal(fallback('UNS_EDGE_MQTT_PORT'), String(defaults['mqtt-port']));
    assert.equal(fallback('UNS_EDGE_SIM_HOST'), DEFAULT_HOST);
    assert.equal(fallback('UNS_EDGE_SIM_PORT'), String(defaults['sim-port']));
  });
});
