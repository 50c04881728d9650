/**
 * The UNS explorer in a real browser (Debian Chromium, playwright-core) against `uns-edge demo`
 * (embedded broker, simulated plant, demo flow; dist/ built): the "UNS" sidebar shows the demo's
 * tree level by level, the drive's metrics with live values (value, unit, quality, age, retained),
 * the filter finds a topic anywhere in the tree, a row's button copies its path, another drops a
 * uns-in for the topic on the canvas (docs/explorer.md).
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../helpers/editor-gateway';
import { freePort } from '../helpers/mosquitto';

const ROOT = join(__dirname, '..', '..');
const DRIVE = 'acme/plant1/packaging/line1/cell1/drive1';

/** Start `uns-edge demo` on free ports; resolves once it says it is ready. */
async function startDemo(dir: string): Promise<{ child: ChildProcessWithoutNullStreams; port: number; output: () => string }> {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNS_EDGE_')));
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli/uns-edge.js'), 'demo'], {
    cwd: dir,
    env: { ...env, UNS_EDGE_PORT: String(port), UNS_EDGE_MQTT_PORT: String(await freePort()), UNS_EDGE_SIM_PORT: String(await freePort()), UNS_EDGE_OPCUA_SIM_PORT: '0', UNS_EDGE_DEMO_DIR: join(dir, 'demo') },
    stdio: 'pipe',
  });
  let output = '';
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`demo not ready within 45 s:\n${output}`)), 45_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/UNS Edge demo ready in/.test(output)) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => fail(new Error(`demo exited (${code}):\n${output}`)));
  });
  return { child, port, output: () => output };
}

function row(page: Page, path: string) {
  return page.locator(`.uns-explorer-row[data-path="${path}"]`);
}

describe('UNS explorer e2e (headless Chromium, uns-edge demo)', function () {
  this.timeout(150_000);
  let dir: string;
  let demo: Awaited<ReturnType<typeof startDemo>> | undefined;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-explorer-e2e-'));
    demo = await startDemo(dir);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://127.0.0.1:${demo.port}` });
    page = await context.newPage();
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="uns-in"]', { timeout: 60_000 });
  });

  after(async () => {
    await browser?.close();
    demo?.child.kill('SIGTERM');
    if (demo) await new Promise((exited) => demo!.child.once('exit', exited));
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the demo\'s tree level by level and the drive\'s metrics with live values, unit, quality, age and the retained flag', async () => {
    await page.evaluate(() => (window as unknown as { RED: { actions: { invoke(name: string): void } } }).RED.actions.invoke('uns-edge:show-explorer-tab'));
    await page.waitForSelector('.uns-explorer-broker option[value="demo-broker"]', { state: 'attached' });
    const levels = DRIVE.split('/');
    for (let depth = 1; depth <= levels.length; depth++) {
      const path = levels.slice(0, depth).join('/');
      await row(page, path).locator('.uns-explorer-name').click({ timeout: 20_000 });
      await row(page, depth < levels.length ? levels.slice(0, depth + 1).join('/') : `${DRIVE}/actualSpeed`).waitFor({ timeout: 20_000 });
    }
    const speed = row(page, `${DRIVE}/actualSpeed`);
    assert.match(await speed.locator('.uns-explorer-value').innerText(), /^-?\d+(\.\d+)?\s*rpm$/);
    assert.equal(await speed.locator('.uns-explorer-quality.good').count(), 1, 'quality good');
    assert.equal(await speed.locator('.uns-explorer-retained').innerText(), 'R', 'retained by uns-out');
    assert.match(await speed.locator('.uns-explorer-age').innerText(), /^\d+ s$/);
    assert.match(await row(page, `${DRIVE}/motorCurrent`).locator('.uns-explorer-unit').innerText(), /^A$/);
    assert.match(await page.locator('.uns-explorer-summary').innerText(), /connected · \d+ topics/);
    // Live: the drive is polled every second; its source timestamp (in the value's tooltip) moves on.
    const sourceTime = async (): Promise<string> => /source time (\S+)/.exec(await speed.locator('.uns-explorer-value').getAttribute('title') ?? '')?.[1] ?? '';
    const first = await sourceTime();
    assert.ok(first, 'a source time');
    const started = Date.now();
    while (await sourceTime() === first) {
      assert.ok(Date.now() - started < 15_000, 'the value updated within 15 s');
      await page.waitForTimeout(250);
    }
  });

  it('the filter finds a topic anywhere in the tree', async () => {
    await page.fill('.uns-explorer-filter', 'drive3/motorTemp');
    const hit = row(page, 'acme/plant1/packaging/line1/cell2/drive3/motorTemperature');
    await hit.waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('.uns-explorer-row[data-path]').count(), 1);
    assert.match(await hit.locator('.uns-explorer-unit').innerText(), /degC/);
    await page.fill('.uns-explorer-filter', '');
    await row(page, `${DRIVE}/actualSpeed`).waitFor({ timeout: 10_000 });
  });

  it('copies a path, and drops a uns-in for a topic on the canvas', async () => {
    const speed = row(page, `${DRIVE}/actualSpeed`);
    await speed.hover();
    await speed.locator('.uns-explorer-copy').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${DRIVE}/actualSpeed`);
    await speed.hover();
    await speed.locator('.uns-explorer-add').click();
    const added = await page.evaluate((topic) => {
      const found: Array<{ broker: string; topics: string; z: string; active: string }> = [];
      const { RED } = window as unknown as { RED: { nodes: { eachNode(cb: (n: { type: string; broker: string; topics: string; z: string }) => void): void }; workspaces: { active(): string } } };
      RED.nodes.eachNode((n) => { if (n.type === 'uns-in' && n.topics === topic) found.push({ broker: n.broker, topics: n.topics, z: n.z, active: RED.workspaces.active() }); });
      return found;
    }, `${DRIVE}/actualSpeed`);
    assert.equal(added.length, 1);
    assert.equal(added[0]!.broker, 'demo-broker');
    assert.equal(added[0]!.z, added[0]!.active, 'on the tab in view');
    // A level drops a uns-in for everything under it.
    const cell = row(page, 'acme/plant1/packaging/line1/cell1');
    await cell.hover();
    await cell.locator('.uns-explorer-add').click();
    const wildcard = await page.evaluate(() => {
      let topics = '';
      (window as unknown as { RED: { nodes: { eachNode(cb: (n: { type: string; topics: string }) => void): void } } }).RED.nodes.eachNode((n) => { if (n.type === 'uns-in' && n.topics.endsWith('/#')) topics = n.topics; });
      return topics;
    });
    assert.equal(wildcard, 'acme/plant1/packaging/line1/cell1/#');
  });
});
