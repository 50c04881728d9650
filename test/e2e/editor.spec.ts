/**
 * The editor in a real browser (Debian Chromium driven by playwright-core): the gateway starts with
 * the editor on loopback, the theme is applied, the "UNS Edge" palette shows every node type built so
 * far, and a uns-in → uns-out flow is dragged from the palette, wired, configured in its dialog,
 * deployed, and its status turns connected against a real Mosquitto broker. Every flow template
 * imports with no invalid node, and its Modbus links open with a Connection chosen (issue 8 item 9);
 * the fast-poll template's metric and trip rule rows are edited in uns-fast-poll's dialog, saved in
 * the stored format, deployed and polled against the simulated plant (issue 8 item 11).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { startMosquitto, MosquittoProcess } from '../helpers/mosquitto';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';

const repo = join(__dirname, '..', '..');

/** Every node type the package registers in its editor files (config types included). */
function registeredTypes(): string[] {
  const nodeSets = join(repo, 'nodes');
  // A node set is a folder with <set>.html (nodes/common holds shared runtime code only).
  return readdirSync(nodeSets).filter((set) => existsSync(join(nodeSets, set, `${set}.html`))).flatMap((set) => {
    const html = readFileSync(join(nodeSets, set, `${set}.html`), 'utf8');
    return [...html.matchAll(/RED\.nodes\.registerType\(\s*'([^']+)'/g)].map((match) => match[1]!);
  });
}

/** Drag a palette entry onto the canvas at (x, y), as a user does with the mouse. */
async function dragFromPalette(page: Page, type: string, x: number, y: number): Promise<void> {
  const entry = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
  await entry.scrollIntoViewIfNeeded();
  const box = (await entry.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(x, y, { steps: 12 });
  await page.mouse.up();
}

/** Canvas node group of the only node of a type on the canvas (the editor's SVG groups carry the node id). */
async function canvasNode(page: Page, type: string) {
  const id = await page.evaluate((wanted) => {
    let found = '';
    (window as unknown as { RED: { nodes: { eachNode(cb: (n: { id: string; type: string }) => void): void } } })
      .RED.nodes.eachNode((node) => { if (node.type === wanted) found = node.id; });
    return found;
  }, type);
  assert.ok(id, `a ${type} node on the canvas`);
  return page.locator(`#red-ui-workspace-chart g.red-ui-flow-node-group[id="${id}"]`);
}

type EditorWindow = {
  RED: {
    view: { importNodes(nodes: object[], options: object): void };
    nodes: {
      eachNode(cb: (n: { id: string; type: string; z: string; valid?: boolean }) => void): void;
      eachConfig(cb: (n: { id: string; type: string; z?: string; valid?: boolean }) => void): void;
      node(id: string): { id: string; metrics?: unknown; trips?: unknown; valid?: boolean; status?: { fill?: string } } | undefined;
    };
    editor: { edit(node: object): void; editConfig(name: string, type: string, id: string, prefix?: string): void };
  };
};

/**
 * Import the templates of flows/ as a user does with Import ▸ Examples (their ids kept: they are
 * unique across the templates); the nodes of each template as the editor holds them.
 */
async function importTemplates(page: Page): Promise<Record<string, Array<{ id: string; type: string; valid: boolean }>>> {
  const templates = readdirSync(join(repo, 'flows')).filter((file) => file.endsWith('.json'));
  const imported: Record<string, Array<{ id: string; type: string; valid: boolean }>> = {};
  for (const file of templates) {
    const flow = JSON.parse(readFileSync(join(repo, 'flows', file), 'utf8')) as Array<{ id: string }>;
    imported[file] = await page.evaluate(([nodes, ids]) => {
      const { RED } = window as unknown as EditorWindow;
      RED.view.importNodes(nodes as object[], { generateIds: false });
      // No named functions in here: the test's transpiler would wrap them in a helper the page lacks.
      const all: Array<{ id: string; type: string; valid?: boolean }> = [];
      RED.nodes.eachNode((n) => { all.push(n); });
      RED.nodes.eachConfig((n) => { all.push(n); });
      return all.filter((n) => (ids as string[]).includes(n.id)).map((n) => ({ id: n.id, type: n.type, valid: n.valid !== false }));
    }, [flow, flow.map((node) => node.id)] as const);
    assert.equal(imported[file]!.length, flow.filter((node) => (node as { type?: string }).type !== 'tab').length, `${file}: every node imported`);
  }
  return imported;
}

describe('editor e2e (headless Chromium)', function () {
  this.timeout(120_000);
  let mosquitto: MosquittoProcess;
  let plant: SimulatedPlantHandle;
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;

  before(async () => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-edge-e2e-'));
    mosquitto = await startMosquitto();
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    const flows = join(userDir, 'flows.json');
    writeFileSync(flows, '[]');
    // Where the imported templates find the broker and the plant (docs/simulated-plant.md).
    gateway = await EditorGateway.start({ flows, userDir, env: {
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(mosquitto.port), UNS_EDGE_SIM_HOST: plant.host, UNS_EDGE_SIM_PORT: String(plant.port),
    } });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await mosquitto?.stop();
    await plant?.close();
    rmSync(userDir, { recursive: true, force: true });
  });

  it('loads the editor with the UNS Edge theme and palette', async () => {
    await page.goto(gateway!.url);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="uns-out"]', { timeout: 30_000 });
    assert.match(await page.title(), /UNS Edge/);
    assert.match(await page.locator('#red-ui-header').innerText(), /UNS Edge/);
    const categories = await page.locator('.red-ui-palette-category .red-ui-palette-header').allInnerTexts();
    assert.match(categories[0] ?? '', /UNS Edge/i, `first palette category is ${categories[0]}`);
    const types = registeredTypes();
    const paletteTypes = await page.evaluate((all) => all.filter((type) =>
      (window as unknown as { RED: { nodes: { getType(t: string): { category: string } } } }).RED.nodes.getType(type).category !== 'config'), types);
    assert.ok(paletteTypes.includes('uns-in') && paletteTypes.includes('uns-out'), `palette types found: ${paletteTypes.join(', ')}`);
    for (const type of paletteTypes) {
      const entry = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
      assert.equal(await entry.count(), 1, `${type} in the palette`);
      assert.match(await entry.locator('xpath=ancestor::div[contains(@class,"red-ui-palette-category")]').first().locator('.red-ui-palette-header').innerText(), /UNS Edge/i, `${type} in the UNS Edge category`);
    }
  });

  it('builds, configures and deploys a uns-in → uns-out flow whose status turns connected', async () => {
    await dragFromPalette(page, 'uns-in', 420, 220);
    await dragFromPalette(page, 'uns-out', 720, 220);
    const unsIn = await canvasNode(page, 'uns-in');
    const unsOut = await canvasNode(page, 'uns-out');
    await unsIn.waitFor();
    await unsOut.waitFor();

    // Wire: drag from uns-in's output port to uns-out's input port.
    const from = (await unsIn.locator('.red-ui-flow-port-output').boundingBox())!;
    const to = (await unsOut.locator('.red-ui-flow-port-input').boundingBox())!;
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 12 });
    await page.mouse.up();
    const wires = await page.evaluate(() => {
      let count = 0;
      (window as unknown as { RED: { nodes: { eachLink(cb: () => void): void } } }).RED.nodes.eachLink(() => { count += 1; });
      return count;
    });
    assert.equal(wires, 1, 'one wire from uns-in to uns-out');

    // Configure uns-in: subscribe filter and a new broker config node pointing at Mosquitto.
    await unsIn.dblclick();
    await page.fill('#node-input-topics', 'e2e/#');
    await page.click('#node-input-btn-broker-add');
    await page.fill('#node-config-input-host', '127.0.0.1');
    await page.fill('#node-config-input-port', String(mosquitto.port));
    await page.click('#node-config-dialog-ok');
    await page.click('#node-dialog-ok');

    // Configure uns-out: choose the broker config node just created, as a user does in the drop-down.
    await unsOut.dblclick();
    const brokerChoices = await page.locator('#node-input-broker option').evaluateAll((options) =>
      options.map((option) => (option as HTMLOptionElement).value).filter((value) => value !== '_ADD_'));
    assert.equal(brokerChoices.length, 1, 'the broker created in the uns-in dialog is offered');
    await page.selectOption('#node-input-broker', brokerChoices[0]!);
    await page.click('#node-dialog-ok');

    await page.click('#red-ui-header-button-deploy');
    await page.waitForFunction(() => {
      const labels = Array.from(document.querySelectorAll('#red-ui-workspace-chart .red-ui-flow-node-status-label')).map((e) => e.textContent ?? '');
      return labels.length >= 2 && labels.every((text) => /connected/i.test(text) && !/dis/i.test(text));
    }, undefined, { timeout: 20_000 });
    await page.screenshot({ path: join(userDir, 'e2e-uns-in-out.png') });
  });

  it('imports every flow template with no invalid node; a template\'s Modbus link opens with its Connection chosen', async () => {
    const imported = await importTemplates(page);
    for (const [file, nodes] of Object.entries(imported)) {
      assert.ok(nodes.length > 0, `${file} imported`);
      const invalid = nodes.filter((n) => !n.valid).map((n) => `${n.type} ${n.id}`);
      assert.deepEqual(invalid, [], `${file}: nodes marked invalid in the editor`);
    }
    // Open each template's link dialog as the edit button beside "Modbus link" does: it shows the Connection
    // the template chose (TCP, or RTU for the RS-485 template) and the template's own address variables.
    for (const [file, nodes] of Object.entries(imported)) {
      const shippedLinks = (JSON.parse(readFileSync(join(repo, 'flows', file), 'utf8')) as Array<Record<string, unknown>>)
        .filter((n) => n.type === 'uns-modbus-link');
      for (const link of nodes.filter((n) => n.type === 'uns-modbus-link')) {
        const shipped = shippedLinks.find((n) => n.id === link.id)!;
        await page.evaluate((id) => (window as unknown as EditorWindow).RED.editor.editConfig('', 'uns-modbus-link', id, 'node-input'), link.id);
        const transport = page.locator('#node-config-input-transport');
        await transport.waitFor({ state: 'visible' });
        const chosen = await transport.evaluate((select) => {
          const element = select as HTMLSelectElement;
          return { value: element.value, text: element.selectedIndex >= 0 ? element.options[element.selectedIndex]!.text : '' };
        });
        assert.ok(shipped.transport === 'tcp' || shipped.transport === 'rtu', `${file}: link ${link.id} ships a transport`);
        assert.equal(chosen.value, shipped.transport, `${file}: link ${link.id} Connection`);
        assert.match(chosen.text, shipped.transport === 'tcp' ? /TCP/ : /RTU/, `${file}: the Connection dropdown shows ${JSON.stringify(chosen.text)}`);
        if (shipped.transport === 'tcp') assert.equal(await page.locator('#node-config-input-port').inputValue(), shipped.port);
        else assert.equal(await page.locator('#node-config-input-serialPath').inputValue(), shipped.serialPath);
        await page.click('#node-config-dialog-cancel');
        await transport.waitFor({ state: 'detached' });
      }
    }
  });

  it('edits the fast-poll template\'s metric and trip rule rows in their dialog, saves them as before, deploys and polls', async () => {
    const template = JSON.parse(readFileSync(join(repo, 'flows', 'fast-poll.json'), 'utf8')) as Array<Record<string, unknown>>;
    const shipped = template.find((node) => node.type === 'uns-fast-poll')!;
    const shippedMetrics = JSON.parse(String(shipped.metrics)) as Array<Record<string, unknown>>;
    const shippedTrips = JSON.parse(String(shipped.trips)) as Array<Record<string, unknown>>;
    await page.evaluate((id) => {
      const { RED } = window as unknown as EditorWindow;
      RED.editor.edit(RED.nodes.node(id)!);
    }, String(shipped.id));
    const metricRows = page.locator('#node-input-metrics-container .red-ui-editableList-item-content');
    const tripRows = page.locator('#node-input-trips-container .red-ui-editableList-item-content');
    await metricRows.first().waitFor();
    assert.equal(await metricRows.count(), shippedMetrics.length, 'one row per stored metric');
    assert.equal(await tripRows.count(), shippedTrips.length, 'one row per stored trip rule');
    const headers = await page.locator('.uns-fastpoll-header').allInnerTexts();
    assert.match(headers[0] ?? '', /Name\s+Table\s+Address\s+Type\s+Word order/);
    assert.match(headers[1] ?? '', /Metric\s+When\s+Limit \(EU\)\s+For cycles/);
    // Every name fits its field (issue 8: metric rows "cut names").
    const cut = await page.locator('#node-input-metrics-container [data-key="name"]').evaluateAll((fields) =>
      fields.filter((f) => (f as HTMLInputElement).scrollWidth > (f as HTMLInputElement).clientWidth).map((f) => (f as HTMLInputElement).value));
    assert.deepEqual(cut, [], 'names wider than their field');

    const speedRow = metricRows.nth(shippedMetrics.findIndex((m) => m.name === 'speedSetpoint'));
    assert.equal(await speedRow.locator('[data-key="deadband"]').inputValue(), '5');
    await speedRow.locator('[data-key="deadband"]').fill('20');
    // A bad address is marked at once, with the reason as tooltip; putting it right clears the mark.
    const address = speedRow.locator('[data-key="address"]');
    await address.fill('x1');
    assert.match(await address.getAttribute('class') ?? '', /input-error/);
    assert.match(await address.getAttribute('title') ?? '', /integer 0\.\.65535/);
    await address.fill('1');
    assert.doesNotMatch(await address.getAttribute('class') ?? '', /input-error/);
    // A deadband on a float32 metric cannot work in the poll thread: marked.
    const floatRow = metricRows.nth(shippedMetrics.findIndex((m) => m.type === 'float32'));
    await floatRow.locator('[data-key="deadband"]').fill('0.5');
    assert.match(await floatRow.locator('[data-key="deadband"]').getAttribute('class') ?? '', /input-error/);
    await floatRow.locator('[data-key="deadband"]').fill('');

    await tripRows.nth(1).locator('[data-key="limit"]').fill('1650');
    await page.locator('#node-input-trips-container').locator('xpath=ancestor::div[contains(concat(" ", @class, " "), " red-ui-editableList ")][1]')
      .locator('.red-ui-editableList-addButton').click();
    assert.equal(await tripRows.count(), shippedTrips.length + 1);
    const added = tripRows.last();
    await added.locator('[data-key="metric"]').fill('outputFrequency');
    await added.locator('[data-key="limit"]').fill('62');
    await added.locator('[data-key="writeValue"]').fill('8');
    const invalid = await page.locator('#dialog-form .input-error').count();
    assert.equal(invalid, 0, 'no field marked after the edits');
    await page.click('#node-dialog-ok');

    const saved = await page.evaluate((id) => {
      const node = (window as unknown as EditorWindow).RED.nodes.node(id)!;
      return { metrics: node.metrics, trips: node.trips, valid: node.valid };
    }, String(shipped.id));
    assert.equal(typeof saved.metrics, 'string', 'metrics stored as JSON text, as before');
    assert.equal(typeof saved.trips, 'string', 'trip rules stored as JSON text, as before');
    assert.equal(saved.valid, true);
    assert.deepEqual(JSON.parse(String(saved.metrics)), shippedMetrics.map((m) => (m.name === 'speedSetpoint' ? { ...m, deadband: 20 } : m)));
    assert.deepEqual(JSON.parse(String(saved.trips)), [
      shippedTrips[0],
      { ...shippedTrips[1], limit: 1650 },
      { metric: 'outputFrequency', when: 'above', limit: 62, cycles: 1, writeAddress: 0, writeValue: 8 },
    ]);

    // Deployed, the poller runs with the edited rows against the plant: its status turns green.
    await page.click('#red-ui-header-button-deploy');
    await page.waitForFunction((id) => (window as unknown as EditorWindow).RED.nodes.node(id)?.status?.fill === 'green', String(shipped.id), { timeout: 20_000 });
  });
});
