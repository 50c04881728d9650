/**
 * The asset scan's HTML report (lib/audit/report-html.ts) rendered by headless Chromium from the file
 * the scan wrote: a real scan of the simulated plant and an aedes broker, plus a device whose FC 43
 * strings are hostile markup. The report shows every drive and finding, the hostile strings appear
 * as text, and no script runs (the Content-Security-Policy forbids it even if escaping failed).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser } from 'playwright-core';
import { writeReportFiles } from '../../lib/audit/report-files';
import { planScan, runScan } from '../../lib/audit/scanner';
import { applicationPki } from '../../lib/opcua/pki';
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { type AedesBroker, startAedes } from '../helpers/aedes';
import { launchChromium } from '../helpers/editor-gateway';

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

describe('asset scan report in headless Chromium', function () {
  this.timeout(90_000);
  let dir: string;
  let plant: SimulatedPlantHandle;
  let broker: AedesBroker;
  let browser: Browser;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-asset-report-'));
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    broker = await startAedes();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await broker?.close();
    await plant?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders every drive and finding, hostile device strings as text, and runs no script', async () => {
    const report = await runScan(planScan({
      probesPerSecond: 100, modbusAddresses: '127.0.0.1', modbusPort: plant.port, modbusUnits: '1-4', mqttAddresses: `127.0.0.1:${broker.port}`,
    }), { opcuaPki: () => applicationPki(join(dir, 'pki')) });
    // A device that answers FC 43 with markup (what a compromised or hostile device could send).
    report.inventory.modbus[0].units[0].identity!.vendorName = HOSTILE;
    const { html } = writeReportFiles(report, join(dir, 'reports'));

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(pathToFileURL(html).href);
    assert.equal(await page.locator('h1').textContent(), 'Plant asset scan');
    assert.equal(await page.locator('table.modbus tbody tr').count(), 4, 'one row per simulated drive');
    assert.ok(await page.locator('table.modbus', { hasText: 'uns-edge-simulated-drive' }).isVisible());
    const findings = await page.locator('table.findings tbody tr').allTextContents();
    assert.equal(findings.length, report.findings.length);
    assert.ok(findings.some((row) => row.includes('MQTT broker accepts anonymous clients') && row.includes('SR 1.1')));
    assert.ok(await page.locator('table.modbus td', { hasText: HOSTILE }).first().isVisible(), 'the hostile string shows as text');
    assert.equal(await page.locator('table.modbus img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script ran');
    assert.deepEqual(errors, []);
    const box = await page.locator('table.findings').boundingBox();
    assert.ok(box && box.width > 300 && box.height > 50, 'the findings table is laid out');
    await page.close();
  });
});
