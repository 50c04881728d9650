/**
 * The Sparkplug nodes in the real editor (gateway from dist/ + Debian Chromium via playwright-core +
 * Mosquitto): both types are in the "UNS Edge" palette, the edge node dialog refuses ids with + / #
 * with a readable message (i18n loaded), and a device dragged from the palette, configured in its
 * dialog and deployed brings its edge node online (NBIRTH on the broker, status in the editor).
 * Needs `npm run build` first (npm test does it).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { SparkplugObserver } from '../helpers/sparkplug-harness';

const repo = join(__dirname, '..', '..');
type EditorWindow = { RED: { nodes: { eachNode(cb: (n: { id: string; type: string }) => void): void; getType(t: string): { category: string; defaults: Record<string, { validate?: (v: string, opt?: object) => unknown }> } } } };

describe('sparkplug nodes in the editor (gateway + Chromium + Mosquitto)', function () {
  this.timeout(90000);
  let mosquitto: Mosquitto;
  let observer: SparkplugObserver;
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;

  before(async function () {
    if (!existsSync(join(repo, 'dist/nodes/sparkplug/sparkplug.html'))) throw new Error('dist/ is not built: run npm run build');
    userDir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-editor-'));
    mosquitto = await startMosquitto();
    observer = await SparkplugObserver.connect(mosquitto.url);
    const flows = join(userDir, 'flows.json');
    writeFileSync(flows, '[]');
    gateway = await EditorGateway.start({ flows, userDir });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(gateway.url);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="uns-sparkplug-device"]', { timeout: 30000 });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await observer?.close();
    await mosquitto?.dispose();
    rmSync(userDir, { recursive: true, force: true });
  });

  it('shows uns-sparkplug-device and uns-sparkplug-host in the UNS Edge category, uns-sparkplug-edge as a config node', async () => {
    for (const type of ['uns-sparkplug-device', 'uns-sparkplug-host']) {
      const entry = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
      assert.match(await entry.locator('xpath=ancestor::div[contains(@class,"red-ui-palette-category")]').first().locator('.red-ui-palette-header').innerText(), /UNS Edge/i, type);
    }
    assert.equal(await page.evaluate(() => (window as unknown as EditorWindow).RED.nodes.getType('uns-sparkplug-edge').category), 'config');
  });

  it('the id validators answer with the English message (catalog uns-edge/sparkplug loaded), and false for old editors that pass no options', async () => {
    const answers = await page.evaluate(() => {
      const defaults = (window as unknown as EditorWindow).RED.nodes.getType('uns-sparkplug-edge').defaults;
      return ['Plant/1', 'Plant+1', 'Plant#1', '', 'Plant 1'].map((v) => defaults.groupId.validate!(v, {}));
    });
    assert.deepEqual(answers, [
      'must not contain "/" (Sparkplug IDs exclude + / #)',
      'must not contain "+" (Sparkplug IDs exclude + / #)',
      'must not contain "#" (Sparkplug IDs exclude + / #)',
      'required',
      true,
    ]);
    assert.equal(await page.evaluate(() => (window as unknown as EditorWindow).RED.nodes.getType('uns-sparkplug-edge').defaults.groupId.validate!('a#b')), false);
  });

  /**
   * Type `text` into an input and wait until the editor marks it invalid (class input-error). The
   * editor validates on keyup/change; on a loaded machine the dialog may attach those handlers after
   * the first keys, so the text is typed again if it was cut, and a change event is sent again until
   * it has answered.
   */
  async function typeInvalid(selector: string, text: string): Promise<void> {
    const deadline = Date.now() + 5000;
    // A dialog still being prepared can reset the field while keys arrive: type until it holds the text.
    do {
      await page.fill(selector, '');
      await page.locator(selector).pressSequentially(text);
    } while (await page.inputValue(selector) !== text && Date.now() < deadline);
    while (!/input-error/.test(await page.getAttribute(selector, 'class') ?? '')) {
      assert.ok(Date.now() < deadline, `${selector} = "${await page.inputValue(selector)}" is not marked invalid`);
      await page.locator(selector).dispatchEvent('change');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Drag a palette entry to (x, y) and return its canvas node. */
  async function drop(type: string, x: number, y: number): Promise<ReturnType<Page['locator']>> {
    const entry = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
    await entry.scrollIntoViewIfNeeded();
    const box = (await entry.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(x, y, { steps: 12 });
    await page.mouse.up();
    const id = await page.evaluate((wanted) => {
      let found = '';
      (window as unknown as EditorWindow).RED.nodes.eachNode((node) => { if (node.type === wanted) found = node.id; });
      return found;
    }, type);
    return page.locator(`#red-ui-workspace-chart g.red-ui-flow-node-group[id="${id}"]`);
  }

  it('a device dragged from the palette, configured with a new edge node, and a host with its broker tabs, deployed: NBIRTH, STATE online, statuses', async () => {
    const host = await drop('uns-sparkplug-host', 500, 400);
    await host.dblclick();
    await page.waitForSelector('#node-input-hostId', { state: 'visible' });
    assert.equal(await page.inputValue('#node-input-host'), '127.0.0.1', 'the shared Connection tab is in the host dialog, filled with the default');
    assert.match(await page.locator('.red-ui-tray-titlebar').last().innerText(), /Edit sparkplug host node/);
    await typeInvalid('#node-input-hostId', 'scada#1');
    await page.fill('#node-input-hostId', 'scada-e2e');
    await page.fill('#node-input-groups', 'Plant 1');
    assert.equal(await page.locator('a[href="#uns-sparkplug-host-tab-limits"]').count(), 1, 'a Limits tab');
    assert.equal(await page.inputValue('#node-input-maxMetricsPerMessage'), '10000', 'the Limits tab\'s fields, with the defaults');
    await page.click('a[href="#uns-sparkplug-host-tab-connection"]');
    await page.fill('#node-input-port', String(mosquitto.port));
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-dialog-ok', { state: 'detached' }); // the tray has closed
    const node = await drop('uns-sparkplug-device', 500, 250);
    await node.dblclick();
    await page.waitForSelector('#node-input-deviceId', { state: 'visible' });
    await typeInvalid('#node-input-deviceId', 'drive#7');
    await page.fill('#node-input-deviceId', 'drive-7');
    await page.click('#node-input-btn-edge-add');
    await page.waitForSelector('#node-config-input-groupId', { state: 'visible' });
    // The config dialog is titled with the paletteLabel, not the type name ("Add new uns-sparkplug-edge config node").
    const title = await page.locator('.red-ui-tray-titlebar').last().innerText();
    assert.match(title, /Add new sparkplug edge node config node/);
    assert.doesNotMatch(title, /uns-sparkplug-edge/);
    await typeInvalid('#node-config-input-groupId', 'Plant/1');
    await page.fill('#node-config-input-groupId', 'Plant 1');
    await page.fill('#node-config-input-edgeNodeId', 'gw-editor');
    await page.click('a[href="#uns-sparkplug-edge-tab-connection"]');
    await page.fill('#node-config-input-host', '127.0.0.1');
    await page.fill('#node-config-input-port', String(mosquitto.port));
    await page.click('#node-config-dialog-ok');
    await page.click('#node-dialog-ok');
    await page.click('#red-ui-header-button-deploy');
    const nbirth = await observer.waitFor('NBIRTH', (m) => m.topic === 'spBv1.0/Plant 1/NBIRTH/gw-editor', 0, 20000);
    assert.equal(nbirth.decoded!.seq, '0');
    const state = await observer.waitFor('STATE of the host', (m) => m.topic === 'spBv1.0/STATE/scada-e2e', 0, 20000);
    assert.equal(JSON.parse(state.bytes.toString()).online, true);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#red-ui-workspace-chart .red-ui-flow-node-status-label'))
      .filter((e) => /online/.test(e.textContent ?? '')).length >= 2, undefined, { timeout: 20000 });
    await page.screenshot({ path: join(userDir, 'sparkplug-editor.png') });
  });
});
