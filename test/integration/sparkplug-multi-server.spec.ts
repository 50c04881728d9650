/**
 * Sparkplug B 3.0 with multiple MQTT servers (§5.9): two independent Mosquitto instances, our host
 * application (lib/sparkplug/host.ts, host id "scada") on each, and an edge node with the server list
 * [A, B] and "scada" as its primary host, feeding a device all along:
 *
 * - [tck-id-operational-behavior-edge-node-termination-host-offline-reconnect]
 *   [tck-id-operational-behavior-primary-application-state-with-multiple-servers-walk]: the host on A
 *   goes offline (its STATE) → NDEATH on A with the session's bdSeq, DISCONNECT, CONNECT to B with
 *   bdSeq + 1, births on B once the host there is online — although B's STATE timestamp is older than
 *   A's (the STATE timestamp is kept per server, [tck-id-operational-behavior-host-application-multi-server-timestamp]
 *   seen from the edge side);
 * - [tck-id-operational-behavior-primary-application-state-with-multiple-servers-single-server]: never
 *   born on two servers at once (the NDEATH on A comes before the NBIRTH on B);
 * - the walk goes on: the host on B offline → back to A, where the host is online again;
 * - values: every value fed to the device reaches one of the brokers (live, or from the store as
 *   is_historical after the new births), 0 lost, and the hosts bridge them into tag batches.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { SparkplugObserver, bdSeqOf, sleep, startEdge, waitFor, type EdgeUnderTest, type Observed } from '../helpers/sparkplug-harness';
import type { OracleMetric } from '../helpers/sparkplug-oracle';
import { SparkplugHost, pathTemplate } from '../../lib/sparkplug/host';
import type { TagBatch } from '../../lib/uns/tag-batch';

const HOST_ID = 'scada';
const ASSET = 'acme/plant1/press/line2/cell1/drive1';

interface HostOnServer {
  host: SparkplugHost;
  batches: TagBatch[];
}

function startHost(port: number): HostOnServer {
  const batches: TagBatch[] = [];
  const host = new SparkplugHost({
    hostId: HOST_ID,
    groups: [],
    mqtt: { host: '127.0.0.1', port, protocolVersion: 4, clientId: `host-${HOST_ID}-${port}`, keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
    assetPath: pathTemplate('acme/{group}/{edge}/{device}', 'acme/{group}/{edge}'),
    warn: () => undefined,
    info: () => undefined,
  });
  host.on('batch', (batch) => batches.push(batch));
  host.start();
  return { host, batches };
}

/** Values of the device metric `alias` in the DDATA of `messages`. */
function values(messages: Observed[], alias: string): { value: number; historical: boolean }[] {
  return messages.filter((m) => m.type === 'DDATA').flatMap((m) => m.decoded!.metrics.filter((x: OracleMetric) => x.alias === alias)
    .map((x) => ({ value: Number(x.int_value), historical: x.is_historical === true })));
}

describe('sparkplug multiple MQTT servers: two Mosquitto instances, a primary host on each', function () {
  this.timeout(60000);
  let brokerA: Mosquitto;
  let brokerB: Mosquitto;
  let observerA: SparkplugObserver;
  let observerB: SparkplugObserver;
  let hostA: HostOnServer;
  let hostB: HostOnServer;
  let dut: EdgeUnderTest;
  let dir: string;
  let feeder: NodeJS.Timeout | undefined;
  let fed = 0;

  before(async () => {
    [brokerA, brokerB] = await Promise.all([startMosquitto(), startMosquitto()]);
    [observerA, observerB] = await Promise.all([SparkplugObserver.connect(brokerA.url), SparkplugObserver.connect(brokerB.url)]);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-multi-'));
    // B's host first: its STATE timestamp is older than A's.
    hostB = startHost(brokerB.port);
    await waitFor('host on B online', () => hostB.host.state === 'online');
    await sleep(20);
    hostA = startHost(brokerA.port);
    await waitFor('host on A online', () => hostA.host.state === 'online');
  });

  after(async () => {
    if (feeder !== undefined) clearInterval(feeder);
    await dut?.close();
    await hostA?.host.close();
    await hostB?.host.close();
    await observerA?.close();
    await observerB?.close();
    await brokerA?.dispose();
    await brokerB?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('walks A → B → A with NDEATH/NBIRTH and bdSeq per spec, one server at a time, 0 values lost', async () => {
    const servers = [{ host: '127.0.0.1', port: brokerA.port }, { host: '127.0.0.1', port: brokerB.port }];
    dut = startEdge(brokerA.port, {
      bdSeqFile: join(dir, 'bdseq.json'), edgeNodeId: 'gw-multi', primaryHostId: HOST_ID, store: { dir: join(dir, 'store') },
      mqtt: { host: '127.0.0.1', port: brokerA.port, servers, serverOrder: 'ordered', protocolVersion: 4, clientId: 'uns-edge-multi',
        keepaliveSec: 5, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
    });
    const device = dut.addDevice({ deviceId: 'drive-1' });
    const feed = (): void => {
      fed++;
      device.handleBatch({ topic: ASSET, payload: { Speed: fed }, meta: { Speed: { type: 'Int32' } } });
    };
    feed();
    dut.edge.start();
    const nbirthA = await observerA.waitFor('NBIRTH on A', (m) => m.type === 'NBIRTH' && m.topic.endsWith('/gw-multi'));
    const dbirthA = await observerA.waitFor('DBIRTH on A', (m) => m.type === 'DBIRTH');
    const alias = dbirthA.decoded!.metrics.find((m) => m.name === 'Speed')!.alias!;
    const bdSeq = Number(bdSeqOf(nbirthA.decoded));
    feeder = setInterval(feed, 20);
    await sleep(300);

    // The primary host leaves A (an offline STATE, newer than its online one).
    const markB = observerB.mark;
    await hostA.host.close();
    const ndeathA = await observerA.waitFor('NDEATH on A', (m) => m.type === 'NDEATH', nbirthA.index);
    assert.equal(Number(bdSeqOf(ndeathA.decoded)), bdSeq, 'NDEATH carries the session\'s bdSeq');
    const nbirthB = await observerB.waitFor('NBIRTH on B', (m) => m.type === 'NBIRTH', markB);
    assert.equal(Number(bdSeqOf(nbirthB.decoded)), (bdSeq + 1) % 256, 'the CONNECT to B has bdSeq + 1');
    assert.ok(ndeathA.receivedAt <= nbirthB.receivedAt, 'never born on both servers: NDEATH on A before NBIRTH on B');
    assert.equal(nbirthB.decoded!.seq, '0');
    await waitFor('host on B sees the values', () => hostB.batches.length > 5);

    // Then B's host leaves; A's host is back: the edge node walks back to A.
    hostA = startHost(brokerA.port);
    await waitFor('host on A online again', () => hostA.host.state === 'online');
    const markA = observerA.mark;
    await sleep(300);
    await hostB.host.close();
    const ndeathB = await observerB.waitFor('NDEATH on B', (m) => m.type === 'NDEATH', nbirthB.index);
    assert.equal(Number(bdSeqOf(ndeathB.decoded)), (bdSeq + 1) % 256);
    const nbirthA2 = await observerA.waitFor('NBIRTH on A again', (m) => m.type === 'NBIRTH', markA);
    assert.equal(Number(bdSeqOf(nbirthA2.decoded)), (bdSeq + 2) % 256);
    await sleep(300);
    clearInterval(feeder);
    feeder = undefined;
    const last = fed;
    const dbirthA2 = await observerA.waitFor('DBIRTH on A again', (m) => m.type === 'DBIRTH', markA);
    const lastIn = (observed: Observed[]): boolean => values(observed, alias).some((v) => v.value === last) ||
      Number(dbirthA2.decoded!.metrics.find((m) => m.name === 'Speed')!.int_value) === last;
    await waitFor('the last value on A', () => lastIn(observerA.log));
    await sleep(200);

    // 0 lost: every value fed is on one of the brokers (live DDATA, historical DDATA, or the DBIRTH's current value).
    const births = [...observerA.log, ...observerB.log].filter((m) => m.type === 'DBIRTH')
      .map((m) => Number(m.decoded!.metrics.find((x) => x.name === 'Speed')!.int_value));
    const seen = new Set([...values(observerA.log, alias), ...values(observerB.log, alias)].map((v) => v.value).concat(births));
    const missing = Array.from({ length: last }, (_, i) => i + 1).filter((v) => !seen.has(v));
    assert.deepEqual(missing, [], `${missing.length} of ${last} values lost`);
    assert.ok(values(observerB.log, alias).some((v) => v.historical) || values(observerA.log.slice(markA), alias).some((v) => v.historical),
      'values of the switch-over came from the store as is_historical');
    assert.equal(dut.edge.counts.droppedData, 0);
  });
});
