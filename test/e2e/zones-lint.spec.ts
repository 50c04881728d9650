/**
 * The zone lint in the editor, in headless Chromium (issue 10 "Must show"): a gateway in strict mode
 * (`unsEdgeZoneLint: 'strict'` in a --settings file) with an enterprise broker and an OT Modbus link,
 * each in its zone. A user draws uns-in (IT broker) straight into uns-vfd (OT link): the Zones
 * sidebar lists the crossing and clicking it selects both nodes; the deploy is refused with the
 * finding; the wire is replaced by a uns-conduit from enterprise to the cell: the finding is gone and
 * the deploy goes through, with the conduit in the deployed flows.
 * In the default mode (not strict) the same crossing deploys, the editor warns after the deploy with
 * the finding, and the gateway's log names it (a headless gateway says what the editor would show).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, Locator, Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';

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

/** Draw an IT uns-in straight into uns-vfd, as a user does, with the broker and link chosen. */
async function drawCrossing(page: Page): Promise<{ unsIn: Locator; vfd: Locator }> {
  await page.waitForSelector('.red-ui-palette-node[data-palette-type="uns-conduit"]', { timeout: 30_000 });
  const unsIn = await dragFromPalette(page, 'uns-in', 300, 260);
  const vfd = await dragFromPalette(page, 'uns-vfd', 800, 260);
  await wire(page, unsIn, vfd);
  await chooseConfig(page, unsIn, { broker: 'e2e-broker' });
  await chooseConfig(page, vfd, { link: 'e2e-link' });
  return { unsIn, vfd };
}

/** A gateway on START_FLOWS with `settings` (none: the default mode), Chromium, a page. */
function editorSession(settings?: Record<string, unknown>) {
  const session: { gateway?: EditorGateway; browser?: Browser; page?: Page; userDir: string } = { userDir: '' };
  before(async () => {
    session.userDir = mkdtempSync(join(tmpdir(), 'uns-edge-e2e-zones-'));
    const flows = join(session.userDir, 'flows.json');
    writeFileSync(flows, JSON.stringify(START_FLOWS));
    const args: string[] = [];
    if (settings) {
      const file = join(session.userDir, 'zones-settings.json');
      writeFileSync(file, JSON.stringify(settings));
      args.push('--settings', file);
    }
    session.gateway = await EditorGateway.start({ flows, userDir: session.userDir, args, readyMs: 30_000 });
    session.browser = await launchChromium();
    session.page = await session.browser.newPage({ viewport: { width: 1400, height: 900 } });
  });
  after(async () => {
    await session.browser?.close();
    await session.gateway?.stop();
    rmSync(session.userDir, { recursive: true, force: true });
  });
  return session;
}

async function deployedTypes(gateway: EditorGateway): Promise<string[]> {
  return ((await (await fetch(`${gateway.url}flows`)).json()) as Array<{ type: string }>).map((node) => node.type);
}

describe('zone lint in the editor, default mode: a deploy with findings goes through and is warned about (headless Chromium)', function () {
  this.timeout(180_000);
  const session = editorSession();

  it('deploys an IT uns-in drawn straight into uns-vfd, then warns with the crossing; the gateway log names it', async () => {
    const page = session.page!;
    const gateway = session.gateway!;
    await page.goto(gateway.url);
    await drawCrossing(page);
    await page.click('#red-ui-header-button-deploy');
    await page.locator('.red-ui-notification', { hasText: /Successfully deployed/i }).waitFor({ timeout: 20_000 });
    const types = await deployedTypes(gateway);
    assert.ok(types.includes('uns-in') && types.includes('uns-vfd'), `the crossing is deployed: ${types.join(', ')}`);

    // The warning after the deploy (editor-theme/zones-lint-plugin.html warnAfterDeploy), with the finding's text.
    const warning = page.locator('.red-ui-notification', { hasText: 'Zone lint: 1 error(s) in the deployed flows' });
    await warning.waitFor({ timeout: 20_000 });
    assert.match(await warning.innerText(), /\(uns-in [0-9a-f]+\) on tab "Cell 1" in zone "enterprise" \(L4\) reaches .*\(uns-vfd [0-9a-f]+\) on tab "Cell 1" in zone "cell-1" \(L1\) without a conduit/);
    await page.screenshot({ path: join(session.userDir, 'e2e-zones-warn.png') });
    // Its Show button opens the Zones sidebar on the same finding.
    await warning.locator('button', { hasText: 'Show' }).click();
    await page.locator('.uns-zones-lint-finding[data-code="zone-crossing"]').waitFor({ timeout: 20_000 });
    assert.match(await page.locator('.uns-zones-lint-summary').innerText(), /1 error\(s\)/);

    // The runtime path: the flows start logs the finding as a warning line.
    const logged = () => /\[zone lint\] error zone-crossing: .*\(uns-in [0-9a-f]+\).* without a conduit/.test(gateway.output);
    for (const deadline = Date.now() + 10_000; !logged() && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(logged(), `the gateway logs the crossing:\n${gateway.output}`);
  });
});

describe('zone lint in the editor (headless Chromium)', function () {
  this.timeout(180_000);
  const session = editorSession({ unsEdgeZoneLint: 'strict' });

  it('finds an IT uns-in drawn straight into uns-vfd, refuses its deploy, and deploys once a conduit is between', async () => {
    const page = session.page!;
    const gateway = session.gateway;
    const userDir = session.userDir;
    await page.goto(gateway!.url);
    const { unsIn, vfd } = await drawCrossing(page);

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
    assert.ok(!(await deployedTypes(gateway!)).includes('uns-in'), 'nothing of the refused flows deployed');

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
    const types = await deployedTypes(gateway!);
    assert.ok(types.includes('uns-conduit') && types.includes('uns-in') && types.includes('uns-vfd'), types.join(', '));
    await page.screenshot({ path: join(userDir, 'e2e-zones-conduit.png') });
  });
});
