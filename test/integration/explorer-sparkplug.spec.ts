/**
 * The UNS explorer names Sparkplug DATA metrics through a host's birth cache (docs/explorer.md
 * § "Sparkplug"), on real Mosquitto: an edge node (lib/sparkplug/edge-node.ts) has sent its BIRTHs
 * before the explorer connects (brokers do not retain them), so DDATA by alias can be named only by
 * the host that saw the BIRTHs (SparkplugHost.birthMetric); an explorer without the host shows aliases.
 * Then in the built gateway: the explorer plugin finds the deployed uns-sparkplug-host on the same
 * broker and names the aliases through it.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsExplorer } from '../../lib/explorer/explorer';
import { SparkplugHost, pathTemplate } from '../../lib/sparkplug/host';
import { EditorGateway } from '../helpers/editor-gateway';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { startEdge, waitFor, type EdgeUnderTest } from '../helpers/sparkplug-harness';

const DEVICE = 'acme/Plant 1/gw-1/drive-1';
const DDATA = 'spBv1.0/Plant 1/DDATA/gw-1/drive-1';

describe('UNS explorer: Sparkplug DATA named through the host\'s birth cache (Mosquitto)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let dir: string;
  let host: SparkplugHost;
  let edge: EdgeUnderTest;
  const explorers: UnsExplorer[] = [];
  const mqtt = (port: number, clientId: string) => ({ host: '127.0.0.1', port, protocolVersion: 4 as const, clientId, keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } });

  before(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), 'uns-explorer-sparkplug-'));
    let batches = 0;
    host = new SparkplugHost({ hostId: 'explorer-test-host', groups: ['Plant 1'], mqtt: mqtt(broker.port, 'host'), assetPath: pathTemplate('acme/{group}/{edge}/{device}', 'acme/{group}/{edge}'), warn: () => undefined, info: () => undefined });
    host.on('batch', () => { batches++; });
    host.start();
    await waitFor('host online', () => host.state === 'online');
    edge = startEdge(broker.port, { bdSeqFile: join(dir, 'edge.json'), edgeNodeId: 'gw-1' });
    edge.addDevice({ deviceId: 'drive-1', assetPath: DEVICE }).handleBatch({ topic: DEVICE, payload: { Speed: 12.5, Mode: 'auto' }, meta: { Speed: { type: 'Float', unit: 'Hz' } } });
    edge.edge.start();
    await waitFor('the BIRTHs at the host', () => batches > 0);
  });

  after(async () => {
    for (const explorer of explorers) await explorer.close();
    await edge?.close();
    await host?.close();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an explorer started after the BIRTHs names DDATA aliases through the host; without it, it shows aliases', async () => {
    const withHost = new UnsExplorer({ mqtt: mqtt(broker.port, 'explorer-with-host'), birthLookup: () => host.birthMetric.bind(host) });
    const alone = new UnsExplorer({ mqtt: mqtt(broker.port, 'explorer-alone') });
    explorers.push(withHost, alone);
    for (const explorer of explorers) explorer.start();
    await waitFor('both explorers connected', () => explorers.every((explorer) => explorer.status().state === 'connected'));
    // 'connected' comes before the SUBACK: send DATA (every 200 ms) until both explorers have seen one.
    let speed = 12.5;
    let sentAt = 0;
    await waitFor('DDATA at both explorers', () => {
      if (Date.now() - sentAt >= 200) {
        sentAt = Date.now();
        edge.devices.get('drive-1')!.handleBatch({ topic: DEVICE, payload: { Speed: speed += 1 }, meta: { Speed: { type: 'Float', unit: 'Hz' } } });
      }
      return explorers.every((explorer) => (explorer.tree.level(DDATA)?.total ?? 0) > 0);
    });
    const named = withHost.tree.level(DDATA)!.items;
    assert.deepEqual(named.map((item) => item.name), ['Speed']);
    assert.equal(named[0]!.value!.type, 'Float');
    assert.match(named[0]!.value!.text, /^1\d\.5$/);
    assert.match(alone.tree.level(DDATA)!.items[0]!.name, /^alias \d+$/);
    assert.equal(withHost.status().sparkplugBirthMetrics, 0, 'the explorer saw no BIRTH itself');
  });
});

describe('UNS explorer in the gateway: a deployed uns-sparkplug-host\'s birth cache names DDATA aliases (Mosquitto)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let dir: string;
  let gateway: EditorGateway | undefined;
  let edge: EdgeUnderTest | undefined;
  let base = '';

  before(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), 'uns-explorer-sparkplug-gw-'));
    const brokerFields = { host: '127.0.0.1', port: String(broker.port), servers: '', serverOrder: 'ordered', protocolVersion: '4', clientId: '', keepalive: 30, usetls: false, tlsCa: '', tlsCert: '', tlsKey: '', tlsServername: '', tlsRejectUnauthorized: true, reconnectMin: 1, reconnectMax: 30 };
    const flows = join(dir, 'flows.json');
    writeFileSync(flows, JSON.stringify([
      { id: 'tab', type: 'tab', label: 'sparkplug' },
      { id: 'sp-uns-broker', type: 'uns-broker', z: 'tab', name: 'UNS', ...brokerFields, cleanSession: true, sessionExpiry: 0, storeEnabled: false, storeDir: '', storeMaxMB: 100, storeMaxAgeDays: 7, storeWindow: 20, zone: '', brokerProfile: 'standard' },
      { id: 'sp-host', type: 'uns-sparkplug-host', z: 'tab', name: 'SCADA host', hostId: 'scada', groups: 'Plant 1', devicePath: 'acme/{group}/{edge}/{device}', nodePath: 'acme/{group}/{edge}', reorderTimeout: 2, ...brokerFields, maxMetricsPerMessage: 10000, maxPayloadMB: 4, maxEdgeNodes: 1000, maxDevices: 10000, maxMetrics: 200000, zone: '', x: 200, y: 100, wires: [[], []] },
    ]));
    gateway = await EditorGateway.start({ flows, userDir: dir, readyMs: 45_000 });
    // The host is online when its STATE birth is retained at the broker.
    const observer = new UnsExplorer({ mqtt: { host: '127.0.0.1', port: broker.port, protocolVersion: 4, clientId: 'state-watch', keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } } });
    observer.start();
    await waitFor('host STATE online', () => /true/.test(observer.tree.level('spBv1.0/STATE')?.items[0]?.value?.text ?? ''), 20000)
      .catch((error: Error) => { throw new Error(`${error.message}: ${JSON.stringify(observer.tree.search('spBv1.0', 10).items)}\n${gateway!.output}`); });
    await observer.close();
    edge = startEdge(broker.port, { bdSeqFile: join(dir, 'edge.json'), edgeNodeId: 'gw-1' });
    edge.addDevice({ deviceId: 'drive-1', assetPath: DEVICE }).handleBatch({ topic: DEVICE, payload: { Speed: 12.5 }, meta: { Speed: { type: 'Float', unit: 'Hz' } } });
    edge.edge.start();
    base = gateway.url.replace(/\/$/, '');
  });

  after(async () => {
    await edge?.close();
    await gateway?.stop();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the explorer (started after the BIRTHs) names the device\'s DDATA metrics through the host node', async () => {
    const url = `${base}/uns-edge/explorer/brokers/sp-uns-broker/level?path=${encodeURIComponent(DDATA)}`;
    type Level = { total: number; items: Array<{ name: string; value?: { text: string; type?: string } }> };
    const fetchLevel = async (): Promise<Level | null> => ((await (await fetch(url)).json()) as { level: Level | null }).level;
    let speed = 12.5;
    const deadline = Date.now() + 20000;
    let level = await fetchLevel();
    while (level === null || level.total === 0) {
      assert.ok(Date.now() < deadline, `no DDATA at the explorer within 20 s:\n${gateway!.output}`);
      edge!.devices.get('drive-1')!.handleBatch({ topic: DEVICE, payload: { Speed: speed += 1 }, meta: { Speed: { type: 'Float', unit: 'Hz' } } });
      await new Promise((resolve) => setTimeout(resolve, 250));
      level = await fetchLevel();
    }
    assert.deepEqual(level.items.map((item) => item.name), ['Speed'], 'named by the host, not "alias n"');
    assert.equal(level.items[0]!.value!.type, 'Float');
  });
});
