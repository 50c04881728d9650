/**
 * The Modbus dialogs in the real editor (the built gateway, `uns-edge run` with the editor on
 * loopback, Debian Chromium through playwright-core), issue 11: the metric rows of uns-modbus-read
 * have column headers and show a long metric name whole; the uns-modbus-link dialog is titled with
 * its label, not "uns-modbus-link", and offers the breaker and back-off settings. Needs the build
 * (npm test builds first).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { freePort } from '../helpers/mosquitto';

const repo = join(__dirname, '..', '..');
const LONG_NAME = 'motorWindingTemperatureL1';

describe('Modbus dialogs in the editor (headless Chromium)', function () {
  this.timeout(90_000);
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;

  before(async function () {
    assert.ok(existsSync(join(repo, 'dist', 'nodes', 'modbus', 'modbus.js')), 'dist/ is missing: run npm run build first (npm test builds)');
    userDir = mkdtempSync(join(tmpdir(), 'uns-modbus-editor-'));
    const flows = join(userDir, 'flows.json');
    const deadDevice = await freePort(); // nothing listens: this test is about the dialogs
    writeFileSync(flows, JSON.stringify([
      { id: 'mb-tab', type: 'tab', label: 'modbus' },
      { id: 'mb-link', type: 'uns-modbus-link', name: '', transport: 'tcp', host: '127.0.0.1', port: deadDevice, timeout: 300, reconnect: 1000 },
      {
        id: 'mb-read', type: 'uns-modbus-read', z: 'mb-tab', name: 'pump', link: 'mb-link', unitId: 1, interval: 0, topic: 'acme/site/area/line/cell/pump',
        mergeGap: 8, metrics: [{ name: LONG_NAME, table: 'input', address: 8, type: 'int16', scale: 0.1, unit: 'degC' }], x: 200, y: 80, wires: [[]],
      },
    ]));
    gateway = await EditorGateway.start({ flows, userDir });
    const editor = gateway.url;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    await page.goto(editor);
    await page.waitForSelector('g.red-ui-flow-node-group[id="mb-read"]', { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  it('the metric rows have column headers and show a long name whole', async () => {
    await page.locator('g.red-ui-flow-node-group[id="mb-read"] rect.red-ui-flow-node').dblclick();
    await page.waitForSelector('#node-input-metrics-container .m-name');
    const headers = await page.locator('.uns-modbus-metric-header span').allTextContents();
    assert.deepEqual(headers, ['name', 'table', 'address', 'type', 'order', 'scale', 'offset', 'unit']);
    const name = page.locator('#node-input-metrics-container .m-name').first();
    assert.equal(await name.inputValue(), LONG_NAME);
    const fits = await name.evaluate((input) => (input as HTMLInputElement).scrollWidth <= (input as HTMLInputElement).clientWidth);
    assert.ok(fits, `"${LONG_NAME}" is cut in its field`);
    // The header's name column sits over the name fields.
    const [header, field] = await Promise.all([
      page.locator('.uns-modbus-metric-header .m-name').boundingBox(),
      name.boundingBox(),
    ]);
    assert.ok(header && field && Math.abs(header.x - field.x) < 12, `header at ${header?.x}, field at ${field?.x}`);
  });


  it('the link dialog is titled with its label and offers the breaker and back-off settings', async () => {
    await page.locator('#node-input-btn-link-edit').click();
    await page.waitForSelector('#node-config-input-breakerTimeouts');
    const title = await page.locator('.red-ui-tray-titlebar').last().textContent();
    assert.match(title ?? '', /Modbus link/);
    assert.doesNotMatch(title ?? '', /uns-modbus-link/);
    // A link saved before these settings existed shows their defaults (value or placeholder: empty means default).
    const shown = async (id: string) => {
      const input = page.locator(`#node-config-input-${id}`);
      return (await input.inputValue()) || (await input.getAttribute('placeholder'));
    };
    assert.equal(await shown('breakerTimeouts'), '3');
    assert.equal(await shown('breakerBackoff'), '5000');
    assert.equal(await shown('reconnectMax'), '5000');
    const labels = await page.locator('#node-config-dialog-edit-form label, #node-config-dialog-edit-form span').allTextContents();
    assert.ok(labels.some((l) => /Suspend a unit after/.test(l)), labels.join(' | '));
  });
});
