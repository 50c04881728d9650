/**
 * The OPC UA nodes in the real editor (the built gateway, `uns-edge run` with the editor on loopback,
 * Debian Chromium through playwright-core) against a node-opcua server: the endpoint's status names
 * the side that refused and the thumbprint; the Trust tab lists the server certificate and one click
 * on "trust" connects without a redeploy; the subscribe dialog's browser shows the live address
 * space through the endpoint's session, three variables picked become metric rows, and after deploy
 * their values arrive on the UNS broker (aedes) through uns-out, one retained topic per metric.
 * Needs the build (npm test builds first).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Browser, Page } from 'playwright-core';
import { AedesBroker, startAedes } from '../helpers/aedes';
import { EditorGateway, launchChromium } from '../helpers/editor-gateway';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';

const repo = join(__dirname, '..', '..');

/** A node of flows/opcua-drive.json by type, without its id, tab, position and wires. */
function templateNode(type: string): Record<string, unknown> {
  const flow = JSON.parse(readFileSync(join(repo, 'flows', 'opcua-drive.json'), 'utf8')) as Array<Record<string, unknown>>;
  const { id: _id, z: _z, x: _x, y: _y, wires: _wires, ...node } = flow.find((n) => n.type === type)!;
  return node;
}

describe('OPC UA nodes in the editor (headless Chromium)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let broker: AedesBroker;
  let gateway: EditorGateway | undefined;
  let browser: Browser | undefined;
  let userDir: string;
  let page: Page;
  const pageErrors: string[] = [];

  before(async function () {
    assert.ok(existsSync(join(repo, 'dist', 'nodes', 'opcua', 'opcua.js')), 'dist/ is missing: run npm run build first (npm test does)');
    server = await startTestServer({ trustAllClients: true });
    broker = await startAedes();
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-editor-'));
    const flows = join(userDir, 'flows.json');
    writeFileSync(flows, JSON.stringify([
      { id: 'tab', type: 'tab', label: 'OPC UA' },
      { id: 'ep', type: 'uns-opcua-endpoint', endpointUrl: server.endpointUrl, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', maxBackoff: 1000 },
      { id: 'rd', type: 'uns-opcua-read', z: 'tab', x: 200, y: 100, endpoint: 'ep', topic: 'acme/p/a/l/c/drive1', interval: 500, metrics: [{ name: 'mode', nodeId: 'ns=1;s=Drive1.Mode' }], wires: [[]] },
      { id: 'sub', type: 'uns-opcua-subscribe', z: 'tab', x: 200, y: 200, endpoint: 'ep', topic: 'acme/p/a/l/c/drive1', publishingInterval: 200, samplingInterval: 100, staleAfter: 3, metrics: [], wires: [['out']] },
      // uns-broker and uns-out as the opcua-drive template sets them (every editor default: the deploy is not held
      // back by an "invalid nodes" confirmation), pointed at aedes.
      { ...templateNode('uns-broker'), id: 'broker', name: 'UNS', host: '127.0.0.1', port: String(broker.port) },
      { ...templateNode('uns-out'), id: 'out', z: 'tab', x: 450, y: 200, broker: 'broker', wires: [] },
    ]));
    gateway = await EditorGateway.start({ flows, userDir, readyMs: 30_000 });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(gateway.url);
    await page.waitForSelector('g.red-ui-flow-node-group[id="rd"]', { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await server?.dispose();
    await broker?.close();
    rmSync(userDir, { recursive: true, force: true });
  });

  async function statusMatches(id: string, pattern: RegExp, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    let text: string | null = '';
    while (Date.now() < deadline) {
      text = await page.locator(`g.red-ui-flow-node-group[id="${id}"] .red-ui-flow-node-status-label`).textContent();
      if (pattern.test(text ?? '')) return text ?? '';
      await page.waitForTimeout(100);
    }
    assert.fail(`status of ${id} "${text}" never matched ${pattern}\n${gateway?.output.slice(-2000)}`);
  }

  it('status names the refusing side; one click on "trust" in the Trust tab connects without a redeploy', async () => {
    const refused = await statusMatches('rd', /^we refused the server: BadCertificateUntrusted [0-9a-f]{8}…$/);
    await page.evaluate(() => (window as unknown as { RED: { editor: { editConfig(n: string, t: string, id: string, p: string): void } } }).RED.editor.editConfig('', 'uns-opcua-endpoint', 'ep', 'node-input'));
    await page.locator('#uns-opcua-endpoint-tabs a', { hasText: 'Trust' }).click();
    const row = page.locator('#uns-opcua-trust-list tr', { hasText: 'uns-edge test server' });
    await row.waitFor();
    assert.match(await row.innerText(), /rejected/);
    assert.ok((await row.innerText()).includes(refused.slice(-9, -1)), `the row shows the thumbprint of the status (${refused})`);
    assert.match(await page.locator('#uns-opcua-own').innerText(), /thumbprint\s+[0-9a-f]{40}/);
    await row.locator('button[data-action="trust"]').click();
    await page.locator('#uns-opcua-trust-list tr', { hasText: 'trusted' }).waitFor();
    await page.click('#node-config-dialog-cancel');
    await statusMatches('rd', /^read 1$/);
  });

  it('subscribe dialog: browse the live server, pick three variables, deploy → three items monitored, their values arrive on the UNS broker', async () => {
    // A UNS consumer on the broker: one retained topic per metric, <asset path>/<metric>.
    const consumer = mqtt.connect(broker.url, { clientId: 'opcua-editor-consumer', reconnectPeriod: 0 });
    const arrived = new Map<string, { value: unknown; quality: string; unit?: string }>();
    consumer.on('message', (topic, payload) => arrived.set(topic, JSON.parse(payload.toString()) as { value: unknown; quality: string; unit?: string }));
    await new Promise<void>((resolve, reject) => consumer.once('connect', () => consumer.subscribe('acme/p/a/l/c/drive1/#', { qos: 1 }, (error) => (error ? reject(error) : resolve()))).once('error', reject));
    await page.locator('g.red-ui-flow-node-group[id="sub"] rect.red-ui-flow-node').dblclick();
    await page.waitForSelector('#uns-opcua-browse-button');
    await page.click('#uns-opcua-browse-button');
    const objects = page.locator('#uns-opcua-browser li > span', { hasText: 'Drive1' }).first();
    await objects.click();
    for (const name of ['Speed', 'Current', 'Mode']) {
      const variable = page.locator('#uns-opcua-browser .uns-opcua-var', { hasText: name }).first();
      await variable.waitFor();
      if (name === 'Speed') assert.match(await variable.innerText(), /Double rw r\/min = \d+/);
      await variable.click();
    }
    const rows = await page.locator('#node-input-metrics-container .m-nodeId').evaluateAll((list) => list.map((i) => (i as HTMLInputElement).value));
    assert.deepEqual(rows, ['ns=1;s=Drive1.Speed', 'ns=1;s=Drive1.Current', 'ns=1;s=Drive1.Mode']);
    const names = await page.locator('#node-input-metrics-container .m-name').evaluateAll((list) => list.map((i) => (i as HTMLInputElement).value));
    assert.deepEqual(names, ['Speed', 'Current', 'Mode']);
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-dialog-ok', { state: 'detached' });
    await page.click('#red-ui-header-button-deploy');
    await statusMatches('sub', /^3 items$/);
    assert.equal(server.monitoredItemCount(), 3);
    const topics = ['acme/p/a/l/c/drive1/Speed', 'acme/p/a/l/c/drive1/Current', 'acme/p/a/l/c/drive1/Mode'];
    const deadline = Date.now() + 20_000;
    while (!topics.every((t) => arrived.has(t)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    consumer.end(true);
    assert.deepEqual(topics.filter((t) => !arrived.has(t)), [], `values on the broker: ${JSON.stringify([...arrived])}\n${gateway?.output.slice(-2000)}`);
    for (const topic of topics) {
      assert.equal(typeof arrived.get(topic)!.value, 'number', topic);
      assert.equal(arrived.get(topic)!.quality, 'good', topic);
    }
    assert.equal(arrived.get('acme/p/a/l/c/drive1/Mode')!.value, 1);
    assert.equal(arrived.get('acme/p/a/l/c/drive1/Speed')!.unit, 'r/min');
    assert.deepEqual(pageErrors, []);
  });
});
