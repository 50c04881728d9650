/**
 * uns-vfd-twin in the real editor (the built gateway, `uns-edge run` with the editor on loopback, Debian
 * Chromium through playwright-core), running flows/predictive-maintenance.json against the simulated
 * plant: the status dot's texts from the locale file, the edit dialog's tabs with the template's
 * mapping and nameplate, and the "component replaced" button, which resets the deployed twin through
 * the admin endpoint (the reset is logged by the runtime with who did it). Needs the build (npm test builds first).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { freePort } from '../helpers/mosquitto';

const repo = join(__dirname, '..', '..');
const TWIN = 'pm-twin-2';

describe('uns-vfd-twin in the editor (headless Chromium)', function () {
  this.timeout(90_000);
  let plant: SimulatedPlantHandle;
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;
  let editor: string;
  const pageErrors: string[] = [];

  before(async function () {
    assert.ok(existsSync(join(repo, 'dist', 'nodes', 'twin', 'twin.js')), 'dist/ is missing the twin: run npm run build first (npm test does)');
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    userDir = mkdtempSync(join(tmpdir(), 'uns-twin-editor-'));
    const flows = join(userDir, 'flows.json');
    writeFileSync(flows, readFileSync(join(repo, 'flows', 'predictive-maintenance.json'), 'utf8'));
    const deadBroker = await freePort(); // uns-out stays disconnected: this test is about the twin
    gateway = await EditorGateway.start({ flows, userDir, env: { UNS_EDGE_SIM_HOST: plant.host, UNS_EDGE_SIM_PORT: String(plant.port), UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(deadBroker) } });
    editor = gateway.url;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(editor);
    await page.waitForSelector(`g.red-ui-flow-node-group[id="${TWIN}"]`, { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await plant?.close();
    rmSync(userDir, { recursive: true, force: true });
  });

  const statusText = () => page.locator(`g.red-ui-flow-node-group[id="${TWIN}"] .red-ui-flow-node-status-label`).textContent();
  async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('shows the worst part and the vibration zone with the locale texts (drive 2 is an old machine: zone C)', async () => {
    let text: string | null = '';
    await until('the twin status', async () => /^\w+ \d+\.\d % used · zone C$/.test((text = await statusText()) ?? ''));
    const fill = await page.locator(`g.red-ui-flow-node-group[id="${TWIN}"] .red-ui-flow-node-status`).getAttribute('class');
    assert.match(fill ?? '', /yellow/, `zone C is a warning: ${fill} (${text})`);
  });

  it('edit dialog: tabs with the mapping and nameplate of the template; the reset button resets the deployed twin', async () => {
    await page.locator(`g.red-ui-flow-node-group[id="${TWIN}"] rect.red-ui-flow-node`).dblclick();
    await page.waitForSelector('#uns-vfd-twin-tabs');
    const tabs = await page.locator('#uns-vfd-twin-tabs a').allInnerTexts();
    assert.deepEqual(tabs.map((t) => t.trim()), ['Inputs', 'Motor', 'Drive', 'Vibration', 'Alerts']);
    assert.equal(await page.locator('#node-input-windingTemperatureMetric').inputValue(), 'motorTemperature');
    assert.equal(await page.locator('#node-input-vibrationMetric').inputValue(), 'vibration');
    await page.locator('#uns-vfd-twin-tabs a', { hasText: 'Motor' }).click();
    assert.equal(await page.locator('#node-input-insulationClass').inputValue(), 'F');
    assert.equal(await page.locator('#node-input-bearingC').inputValue(), '42.3');
    await page.locator('#uns-vfd-twin-tabs a', { hasText: 'Vibration' }).click();
    assert.match(await page.locator('#node-input-machineGroup option:checked').innerText(), /ISO 10816-1 class I/);
    await page.locator('#uns-vfd-twin-tabs a', { hasText: 'Alerts' }).click();
    assert.equal(await page.locator('#node-input-timeScale').inputValue(), '${UNS_EDGE_TWIN_TIME_SCALE}');

    page.once('dialog', (dialog) => {
      assert.match(dialog.message(), /Reset the life consumed of bearing to 0 %\?/);
      void dialog.accept();
    });
    await page.selectOption('#uns-vfd-twin-replace', 'bearing');
    await page.locator('#uns-vfd-twin-reset').click();
    await until('the reset confirmed in the dialog', async () => /bearing reset\./.test(await page.locator('#uns-vfd-twin-reset-result').innerText()));
    await until('the reset in the runtime log', () => /bearing replaced: life consumed bearing \d+\.\d % → 0 % \(reset by editor\)/.test((gateway?.output ?? '')));
    await page.locator('#node-dialog-cancel').click();
    assert.deepEqual(pageErrors, []);
  });
});
