/**
 * The zone lint in the editor, in headless Chromium (issue 10 "Must show"): a gateway in strict mode
 * (`unsEdgeZoneLint: 'strict'` in a --settings file) with an enterprise broker and an OT Modbus link,
 * each in its zone. A user draws uns-in (IT broker) straight into uns-vfd (OT link): the Zones
 * sidebar lists the crossing and clicking it selects both nodes; the deploy is refused with the
 * finding; the wire is replaced by a uns-conduit from enterprise to the cell: the finding is gone and
 * the deploy goes through, with the conduit in the deployed flows.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, chromium, Locator, Page } from 'playwright-core';
import { freePort } from '../helpers/mosquitto';

const repo = join(__dirname, '..', '..');

/** The template's MES broker and Modbus link (every dialog property set), on the test's tab. */
function templateConfig(id: string, overrides: Record<string, unknown>): Record<string, unknown> {
  const template = JSON.parse(readFileSync(join(repo, 'flows', 'zones-and-conduits.json'), 'utf8')) as Array<Record<string, unknown>>;
  return { ...template.find((node) => node.id === id)!, z: 'e2e-tab', ...overrides };
}

/** The config nodes the user starts from: two zones, a broker in one, a Modbus link in the other. */
const START_FLOWS = [
  { id: 'e2e-tab', type: 'tab', label: 'Cell 1', disabled: false, info: '' },
  { id: 'e2e-zone-it', type: 'uns-zone', z: 'e2e-tab', name: 'enterprise', level: '4', slt: '1,1,1,1,1,1,1', colour: '#3a7bd5', description: '' },
  { id: 'e2e-zone-ot', type: 'uns-zone', z: 'e2e-tab', name: 'cell-1', level: '1', slt: '2,2,2,2,2,2,2', colour: '#c0392b', description: '' },
  templateConfig('zc-broker-it', { id: 'e2e-broker', name: 'MES broker', host: '127.0.0.1', port: 1, zone: 'e2e-zone-it' }),
  templateConfig('zc-link', { id: 'e2e-link', name: 'drives', host: '127.0.0.1', port: 1, zone: 'e2e-zone-ot' }),
];

type EditorWindow = { RED: {
  nodes: { eachNode(cb: (n: { id: string; type: string }) => void): void; eachLink(cb: (l: { source: { id: string }; target: { id: string } }) => void): void };
  view: { selection(): { nodes?: Array<{ id: string }> } };
} };

async function startGateway(userDir: string, port: number): Promise<ChildProcess> {
  const flows = join(userDir, 'flows.json');
  writeFileSync(flows, JSON.stringify(START_FLOWS));
  const settings = join(userDir, 'strict-zones.json');
  writeFileSync(settings, JSON.stringify({ unsEdgeZoneLint: 'strict' }));
  const gateway = spawn(process.execPath, [join(repo, 'dist/cli/uns-edge.js'), 'run', '--flows', flows, '--user-dir', userDir, '--port', String(port), '--host', '127.0.0.1', '--settings', settings], {
    env: { ...process.env, UNS_EDGE_CREDENTIAL_SECRET: 'e2e-test-secret-0123456789' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  gateway.stdout!.on('data', (chunk) => { output += chunk; });
  gateway.stderr!.on('data', (chunk) => { output += chunk; });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (gateway.exitCode !== null) throw new Error(`gateway exited early:\n${output}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/`)).ok) return gateway;
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  gateway.kill();
  throw new Error(`gateway did not serve the editor within 30 s:\n${output}`);
}

async function dragFromPalette(page: Page, type: string, x: number, y: number): Promise<Locator> {
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
  assert.ok(id, `a ${type} node on the canvas`);
  const node = page.locator(`#red-ui-workspace-chart g.red-ui-flow-node-group[id="${id}"]`);
  await node.waitFor();
  return node;
}

async function wire(page: Page, from: Locator, to: Locator, port = 0): Promise<void> {
  const out = (await from.locator('.red-ui-flow-port-output').nth(port).boundingBox())!;
  const input = (await to.locator('.red-ui-flow-port-input').boundingBox())!;
  await page.mouse.move(out.x + out.width / 2, out.y + out.height / 2);
  await page.mouse.down();
  await page.mouse.move(input.x + input.width / 2, input.y + input.height / 2, { steps: 12 });
  await page.mouse.up();
}

/** Open a node's dialog, choose a config node in a drop-down as a user does, and close it. */
async function chooseConfig(page: Page, node: Locator, choices: Record<string, string>): Promise<void> {
  await node.dblclick();
  for (const [property, value] of Object.entries(choices)) {
    await page.locator(`#node-input-${property}`).waitFor({ state: 'visible' });
    await page.selectOption(`#node-input-${property}`, value);
  }
  await page.click('#node-dialog-ok');
}

describe('zone lint in the editor (headless Chromium)', function () {
  this.timeout(180_000);
  let gateway: ChildProcess | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let port: number;
  let page: Page;

  before(async () => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-edge-e2e-zones-'));
    port = await freePort();
    gateway = await startGateway(userDir, port);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    gateway?.kill('SIGTERM');
    rmSync(userDir, { recursive: true, force: true });
  });

  it('finds an IT uns-in drawn straight into uns-vfd, refuses its deploy, and deploys once a conduit is between', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="uns-conduit"]', { timeout: 30_000 });
    const unsIn = await dragFromPalette(page, 'uns-in', 300, 260);
    const vfd = await dragFromPalette(page, 'uns-vfd', 800, 260);
    await wire(page, unsIn, vfd);
    await chooseConfig(page, unsIn, { broker: 'e2e-broker' });
    await chooseConfig(page, vfd, { link: 'e2e-link' });

    // The Zones sidebar lists the crossing, naming both nodes and zones.
    // The sidebar has more tabs than fit: open it from the action, as the sidebar's tab menu does.
    await page.evaluate(() => (window as unknown as { RED: { actions: { invoke(name: string): void } } }).RED.actions.invoke('uns-edge:show-zones-tab'));
    const crossing = page.locator('.uns-zones-lint-finding[data-code="zone-crossing"]');
    await crossing.waitFor({ timeout: 20_000 });
    assert.match(await crossing.innerText(), /\(uns-in [0-9a-f]+\) on tab "Cell 1" in zone "enterprise" \(L4\) reaches .*\(uns-vfd [0-9a-f]+\) on tab "Cell 1" in zone "cell-1" \(L1\) without a conduit/);
    await page.screenshot({ path: join(userDir, 'e2e-zones-crossing.png') });
    // Clicking it selects the two nodes.
    await crossing.click();
    const selected = await page.evaluate(() => ((window as unknown as EditorWindow).RED.view.selection().nodes ?? []).map((n) => n.id).sort());
    const ids = await Promise.all([unsIn, vfd].map((node) => node.getAttribute('id')));
    assert.deepEqual(selected, ids.sort());

    // Strict mode: the runtime refuses the deploy and the editor says why.
    await page.click('#red-ui-header-button-deploy');
    const refusal = page.locator('.red-ui-notification', { hasText: 'refused by the zone lint' });
    await refusal.waitFor({ timeout: 20_000 });
    assert.match(await refusal.innerText(), /zone-crossing/);
    const deployed = async () => (await (await fetch(`http://127.0.0.1:${port}/flows`)).json()) as Array<{ type: string }>;
    assert.ok(!(await deployed()).some((node) => node.type === 'uns-in'), 'nothing of the refused flows deployed');

    // Replace the wire by a conduit from enterprise to the cell.
    // Close the refusal (a click closes a notification), then select the wire and delete it.
    await refusal.click();
    await refusal.waitFor({ state: 'detached' });
    await page.locator('#red-ui-workspace-chart .red-ui-flow-link-background').first().click({ force: true });
    await page.waitForFunction(() => (window as unknown as { RED: { view: { selection(): { links?: unknown[] } } } }).RED.view.selection().links?.length === 1);
    await page.keyboard.press('Delete');
    const links = await page.evaluate(() => { let n = 0; (window as unknown as EditorWindow).RED.nodes.eachLink(() => { n += 1; }); return n; });
    assert.equal(links, 0, 'the direct wire is deleted');
    const conduit = await dragFromPalette(page, 'uns-conduit', 550, 380);
    await wire(page, unsIn, conduit);
    await wire(page, conduit, vfd, 0);
    await chooseConfig(page, conduit, { sourceZone: 'e2e-zone-it', destinationZone: 'e2e-zone-ot' });
    await page.waitForFunction(() => document.querySelectorAll('.uns-zones-lint-finding[data-code="zone-crossing"]').length === 0, undefined, { timeout: 20_000 });
    assert.match(await page.locator('.uns-zones-lint-summary').innerText(), /2 zone\(s\), 0 error\(s\)/);

    await page.click('#red-ui-header-button-deploy');
    await page.locator('.red-ui-notification', { hasText: /Successfully deployed/i }).waitFor({ timeout: 20_000 });
    const types = (await deployed()).map((node) => node.type);
    assert.ok(types.includes('uns-conduit') && types.includes('uns-in') && types.includes('uns-vfd'), types.join(', '));
    await page.screenshot({ path: join(userDir, 'e2e-zones-conduit.png') });
  });
});
