/**
 * uns-vfd in the real editor (the built gateway, `uns-edge run` with the editor on loopback, Debian
 * Chromium through playwright-core), running flows/vfd-template.json against the simulated plant:
 * the status dot's texts from the locale file (running, fault), the edit dialog's profile list
 * from the admin endpoint, the guard placeholders from the profile, and the profile preview
 * (registers, status bits, commands, faults, sources, unknowns) for the simulated drive and after
 * switching to a real-drive profile. Needs the build (npm test builds first).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { freePort } from '../helpers/mosquitto';

const repo = join(__dirname, '..', '..');
const DRIVE = 'vfd-tpl-drive';

describe('uns-vfd in the editor (headless Chromium)', function () {
  this.timeout(90_000);
  let plant: SimulatedPlantHandle;
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;
  let editor: string;
  const pageErrors: string[] = [];

  before(async function () {
    assert.ok(existsSync(join(repo, 'dist', 'nodes', 'drive', 'drive.js')), 'dist/ is missing: run npm run build first (npm test does)');
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    userDir = mkdtempSync(join(tmpdir(), 'uns-vfd-editor-'));
    const flows = join(userDir, 'flows.json');
    const deadBroker = await freePort(); // uns-out stays disconnected: this test is about the drive
    const template = (JSON.parse(readFileSync(join(repo, 'flows', 'vfd-template.json'), 'utf8')) as Array<Record<string, unknown>>).map((n) => {
      if (n.type === 'uns-modbus-link') return { ...n, host: plant.host, port: plant.port };
      if (n.type === 'uns-broker') return { ...n, port: deadBroker, storeEnabled: false };
      return n;
    });
    writeFileSync(flows, JSON.stringify(template));
    // A site override of the Eaton profile that does not validate: the list must mark eaton-m-max blocked.
    mkdirSync(join(userDir, 'uns-edge', 'profiles'), { recursive: true });
    writeFileSync(join(userDir, 'uns-edge', 'profiles', 'eaton-site.json'), '{"schemaVersion": 1, "id": "eaton-m-max"}');
    gateway = await EditorGateway.start({ flows, userDir });
    editor = gateway.url;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(editor);
    await page.waitForSelector(`g.red-ui-flow-node-group[id="${DRIVE}"]`, { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await plant?.close();
    rmSync(userDir, { recursive: true, force: true });
  });

  /** The cells of every row of the preview's tables, as text. */
  const previewRows = () => page.locator('#uns-vfd-preview tr').evaluateAll((rows) => rows.map((row) => Array.from(row.children, (cell) => cell.textContent ?? '')));
  const rowOf = (rows: string[][], first: string) => rows.find((row) => row[0] === first);

  const statusText = () => page.locator(`g.red-ui-flow-node-group[id="${DRIVE}"] .red-ui-flow-node-status-label`).textContent();
  async function statusMatches(pattern: RegExp): Promise<void> {
    const deadline = Date.now() + 10_000;
    let text: string | null = '';
    while (Date.now() < deadline) {
      text = await statusText();
      if (pattern.test(text ?? '')) return;
      await page.waitForTimeout(100);
    }
    assert.fail(`status "${text}" never matched ${pattern}`);
  }

  it('shows the drive status with the locale texts: running with the speed, then the fault with its name', async () => {
    await statusMatches(/^running \d+ rpm$/);
    plant.injectFault(1, 'overcurrent');
    await statusMatches(/^fault 1: overcurrent$/);
    plant.drives[0].clearInjection('overcurrent');
    const reset = await page.request.post(`${editor}inject/vfd-tpl-reset`); // the template's "fault reset" button
    assert.equal(reset.status(), 200);
    await statusMatches(/^stopped \(READY\)$/);
  });

  it('edit dialog: profiles from the endpoint, guard placeholders from the profile, a preview of the whole profile', async () => {
    await page.locator(`g.red-ui-flow-node-group[id="${DRIVE}"] rect.red-ui-flow-node`).dblclick();
    await page.waitForSelector('#uns-vfd-tabs');
    await page.waitForFunction(() => document.querySelectorAll('#node-input-profile option').length >= 5);
    const options = await page.locator('#node-input-profile option').evaluateAll((list) => list.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual([...options].sort(), ['abb-acs580', 'danfoss-vlt-fc', 'eaton-m-max', 'siemens-sinamics-g120', 'uns-edge-simulated-drive']);
    assert.equal(await page.locator('#node-input-profile').inputValue(), 'uns-edge-simulated-drive');
    const label = (id: string) => page.locator(`#node-input-profile option[value="${id}"]`).innerText();
    assert.equal(await label('uns-edge-simulated-drive'), 'uns-edge simulated VFD (uns-edge-simulated-drive)', 'the vendor is not repeated');
    assert.equal(await label('abb-acs580'), 'ABB ACS580 general purpose drives (standard control program) (abb-acs580)');
    assert.match(await label('eaton-m-max'), /^Eaton M-Max Series adjustable frequency drives \(MMX\) \(eaton-m-max\) — BLOCKED by eaton-site\.json \(does not validate\)/);
    assert.match(await page.locator('#uns-vfd-profile-errors').innerText(), /user eaton-site\.json \(blocks eaton-m-max\): version: is required/);
    await page.waitForFunction(() => document.querySelector('#uns-vfd-preview table') !== null);
    assert.equal(await page.locator('#node-input-statusParameter').inputValue(), 'actualSpeed');

    await page.locator('#uns-vfd-tabs a', { hasText: 'Guards' }).click();
    assert.equal(await page.locator('#node-input-setpointMax').getAttribute('placeholder'), 'profile: 1800');
    assert.equal(await page.locator('#node-input-maxRamp').getAttribute('placeholder'), 'profile: 300');
    assert.match(await page.locator('#node-input-arm option[value="profile"]').innerText(), /as the profile says \(off\)/);

    await page.locator('#uns-vfd-tabs a', { hasText: 'Profile' }).click();
    const preview = page.locator('#uns-vfd-preview');
    const headings = await preview.locator('h4').allInnerTexts();
    for (const heading of ['Registers', 'Status bits', 'Commands', 'Faults', 'Guards', 'Sources', 'Unknowns']) assert.ok(headings.includes(heading), `${heading} in ${headings.join(', ')}`);
    const rows = await previewRows();
    assert.deepEqual(rowOf(rows, 'speedSetpoint')?.slice(0, 9), ['speedSetpoint', '1', '', 'holding', 'int16', '', 'rpm', 'RW', '0 … 1800']);
    assert.deepEqual(rowOf(rows, 'startForward')?.slice(0, 2), ['startForward', '0x0001']);
    assert.ok(rows.some((row) => row[1] === 'overcurrent' && row[2].startsWith('Output current above')), 'fault table');
    assert.match(await preview.textContent() ?? '', /The profile lists no unknowns\./);

    await page.locator('#uns-vfd-tabs a', { hasText: 'Settings' }).click();
    await page.selectOption('#node-input-profile', 'abb-acs580');
    await page.waitForFunction(() => /abb-acs580/.test(document.querySelector('#uns-vfd-preview h4')?.textContent ?? ''));
    const abbRows = await previewRows();
    assert.deepEqual(rowOf(abbRows, 'reference1 (EFB reference 1 (REF1))')?.slice(0, 7), ['reference1 (EFB reference 1 (REF1))', '1', '400002', 'holding', 'int16', '0.005', '%']);
    assert.match(rowOf(abbRows, 'startForward')?.[1] ?? '', /^0x047E .*→ await .*0x047F$/);
    const abb = await preview.textContent() ?? '';
    assert.match(abb, /No fault code register/);
    assert.match(abb, /3AXD50000016097/);
    assert.ok((await preview.locator('h4', { hasText: 'Unknowns' }).locator('xpath=following-sibling::table[1]//tr').count()) > 1, 'the ABB profile lists its unknowns');
    await page.locator('#uns-vfd-tabs a', { hasText: 'Guards' }).click();
    assert.equal(await page.locator('#node-input-setpointMax').getAttribute('placeholder'), 'profile: 100');
    assert.match(await page.locator('#node-input-arm option[value="profile"]').innerText(), /\(on\)/);
    await page.locator('#node-dialog-cancel').click();
    assert.deepEqual(pageErrors, []);
  });
});
