/**
 * "Send: every poll | only changed values" in the real editor (the built gateway with the editor on
 * loopback, Debian Chromium through playwright-core): the shared fragment of the editor-fragments plugin
 * lands in the uns-modbus-read and uns-vfd dialogs with its English tooltips, the deadband and refresh
 * rows show only for "only changed values", and the values are saved on the node. Also a tooltip on
 * the link dialog's fields (issue 14 item 6). Needs the build (npm test builds first).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { freePort } from '../helpers/mosquitto';

const repo = join(__dirname, '..', '..');

describe('Send: only changed values, in the editor (headless Chromium)', function () {
  this.timeout(90_000);
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;

  before(async function () {
    assert.ok(existsSync(join(repo, 'dist', 'nodes', 'modbus', 'modbus.js')), 'dist/ is missing: run npm run build first (npm test builds)');
    userDir = mkdtempSync(join(tmpdir(), 'uns-modbus-send-editor-'));
    const flows = join(userDir, 'flows.json');
    const deadDevice = await freePort(); // nothing listens: this test is about the dialogs
    writeFileSync(flows, JSON.stringify([
      { id: 'mb-tab', type: 'tab', label: 'modbus' },
      { id: 'mb-link', type: 'uns-modbus-link', name: 'plc', transport: 'tcp', host: '127.0.0.1', port: deadDevice, timeout: 300, reconnect: 1000 },
      {
        id: 'mb-read', type: 'uns-modbus-read', z: 'mb-tab', name: 'pump', link: 'mb-link', unitId: 1, interval: 0, topic: 'acme/site/area/line/cell/pump',
        mergeGap: 8, metrics: [{ name: 'speed', table: 'input', address: 2, type: 'int16' }], x: 200, y: 80, wires: [[]],
      },
      {
        id: 'mb-vfd', type: 'uns-vfd', z: 'mb-tab', name: 'drive', link: 'mb-link', unitId: 2, profile: 'uns-edge-simulated-drive', interval: 0,
        topic: 'acme/site/area/line/cell/drive', send: 'changes', deadbands: 'Float=0.5', refresh: 30, x: 200, y: 160, wires: [[], []],
      },
    ]));
    gateway = await EditorGateway.start({ flows, userDir });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    await page.goto(gateway.url);
    await page.waitForSelector('g.red-ui-flow-node-group[id="mb-read"]', { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  const title = (id: string) => page.locator(`label[for="${id}"]`).first().getAttribute('title');

  it('uns-modbus-read: every poll by default, the rows of "only changed values" with tooltips, saved on Done', async () => {
    await page.locator('g.red-ui-flow-node-group[id="mb-read"] rect.red-ui-flow-node').dblclick();
    await page.waitForSelector('#node-input-send');
    assert.equal(await page.locator('#node-input-send').inputValue(), 'every', 'a node saved before the option shows (and sends) every poll');
    assert.equal(await page.locator('#node-input-deadbands').isVisible(), false);
    assert.match(await title('node-input-send') ?? '', /report by exception|only the metrics whose value, quality or reason changed/);
    assert.match(await page.locator('#node-input-send option[value="changes"]').textContent() ?? '', /only changed values/);
    // Issue 14 item 6: the dialog's own fields carry tooltips too.
    assert.match(await title('node-input-mergeGap') ?? '', /default 8/);
    await page.locator('#node-input-send').selectOption('changes');
    assert.equal(await page.locator('#node-input-deadbands').isVisible(), true);
    assert.match(await title('node-input-deadbands') ?? '', /deadband per data type/);
    assert.match(await title('node-input-refresh') ?? '', /default 60, 0 = never/);
    const refresh = page.locator('#node-input-refresh');
    assert.equal((await refresh.inputValue()) || (await refresh.getAttribute('placeholder')), '60', 'empty means the default 60 s');
    await page.locator('#node-input-deadbands').fill('Double=0.5, Int16=2');
    await page.locator('#node-dialog-ok').click();
    await page.waitForSelector('#node-input-send', { state: 'detached' });
    const saved = await page.evaluate(() => {
      const n = (window as unknown as { RED: { nodes: { node(id: string): Record<string, unknown> } } }).RED.nodes.node('mb-read');
      return { send: n.send, deadbands: n.deadbands, refresh: n.refresh };
    });
    assert.equal(saved.send, 'changes');
    assert.equal(saved.deadbands, 'Double=0.5, Int16=2');
    assert.ok(saved.refresh === '' || saved.refresh === undefined || Number(saved.refresh) === 60, `refresh ${String(saved.refresh)}`);
  });

  it('uns-vfd: the same fields show its saved settings; an invalid deadband marks the field', async () => {
    await page.locator('g.red-ui-flow-node-group[id="mb-vfd"] rect.red-ui-flow-node').dblclick();
    await page.waitForSelector('#node-input-send');
    assert.equal(await page.locator('#node-input-send').inputValue(), 'changes');
    assert.equal(await page.locator('#node-input-deadbands').inputValue(), 'Float=0.5');
    assert.equal(await page.locator('#node-input-refresh').inputValue(), '30');
    assert.match(await title('node-input-send') ?? '', /first poll after a deploy or a reconnect sends everything/);
    await page.locator('#node-input-deadbands').fill('Float=-1');
    await page.locator('#node-input-deadbands').blur();
    await page.waitForSelector('#node-input-deadbands.input-error');
    await page.locator('#node-dialog-cancel').click();
    await page.waitForSelector('#node-input-send', { state: 'detached' });
  });

  it('uns-modbus-link: every field has a tooltip', async () => {
    await page.locator('g.red-ui-flow-node-group[id="mb-read"] rect.red-ui-flow-node').dblclick();
    await page.locator('#node-input-btn-link-edit').click();
    await page.waitForSelector('#node-config-input-breakerTimeouts');
    assert.match(await title('node-config-input-port') ?? '', /default 502/);
    assert.match(await title('node-config-input-maxInFlight') ?? '', /pipelining/);
    assert.match(await page.locator('#node-config-input-breakerBackoff').getAttribute('title') ?? '', /doubling up to 60 s/);
  });
});
