/**
 * uns-sparkplug-host (the Node-RED node, node-red-node-test-helper) with a server list [A, B] on two
 * independent Mosquitto instances (Sparkplug 3.0 §5.9, the host side of "multiple MQTT servers"):
 *
 * - broker A dies (SIGKILL) → the host moves to B, publishes its STATE birth there (retained,
 *   online, with the timestamp of the Will of its CONNECT to B:
 *   [tck-id-host-topic-phid-birth-payload-timestamp]), subscribes again and goes on receiving;
 * - a uns-sparkplug-edge with the same server list and "scada" as its primary host follows it to B and is
 *   born there only once the host's STATE on B says online; an edge node that lives on B only and
 *   was born before the host arrived is asked for a rebirth on its first DATA;
 * - values: every value fed to either edge node after the host is online on B reaches the host's
 *   output, in order; the status and /metrics name the server in use (host and edge node).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sparkplugNodes = require('../../nodes/sparkplug/sparkplug');
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { SparkplugObserver, startEdge, waitFor, type EdgeUnderTest } from '../helpers/sparkplug-harness';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { metricsRegistry } from '../../lib/runtime/metrics';
import { helper, type Status } from '../helpers/node-red-runtime';

const HOST_ID = 'scada';

/** The values of `metric` in the host's batches for `topic`, in output order. */
function valuesAt(batches: TagBatch[], topic: string, metric: string): number[] {
  return batches.filter((b) => b.topic === topic && metric in b.payload).map((b) => Number(b.payload[metric]));
}

describe('sparkplug multiple MQTT servers: uns-sparkplug-host fails over from A to B', function () {
  this.timeout(60000);
  let brokerA: Mosquitto;
  let brokerB: Mosquitto;
  let observerB: SparkplugObserver;
  let dir: string;
  const edges: EdgeUnderTest[] = [];

  before(async () => {
    [brokerA, brokerB] = await Promise.all([startMosquitto(), startMosquitto()]);
    observerB = await SparkplugObserver.connect(brokerB.url);
    dir = mkdtempSync(join(tmpdir(), 'uns-sparkplug-host-failover-'));
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });

  after(async () => {
    await helper.unload();
    await Promise.all(edges.map((edge) => edge.close()));
    await new Promise<void>((resolve) => helper.stopServer(resolve));
    await observerB?.close();
    await brokerA?.dispose();
    await brokerB?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('A killed: STATE online on B, subscriptions again, the edge nodes on B reach the host output — every value after the switch, in order', async () => {
    // The follower: a uns-sparkplug-edge with the same server list and "scada" as its primary host.
    await helper.load(sparkplugNodes, [
      { id: 'host', type: 'uns-sparkplug-host', hostId: HOST_ID, groups: '', host: '127.0.0.1', port: brokerA.port, servers: brokerB.url,
        serverOrder: 'ordered', protocolVersion: '4', keepalive: 5, reconnectMin: 0.2, reconnectMax: 1,
        devicePath: 'acme/{group}/{edge}/{device}', nodePath: 'acme/{group}/{edge}', reorderTimeout: 1, wires: [['batches'], []] },
      { id: 'batches', type: 'helper' },
      { id: 'edge', type: 'uns-sparkplug-edge', groupId: 'Plant 1', edgeNodeId: 'gw-follow', primaryHostId: HOST_ID, host: '127.0.0.1', port: brokerA.port,
        servers: brokerB.url, serverOrder: 'ordered', protocolVersion: '4', keepalive: 5, reconnectMin: 0.1, reconnectMax: 0.5,
        bdSeqDir: dir, storeDir: join(dir, 'store') },
      { id: 'dev', type: 'uns-sparkplug-device', edge: 'edge', deviceId: 'drive-1', assetPath: 'acme/line1/drive1', deathOnBadQuality: true, period: 1, missedPeriods: 0, wires: [[]] },
    ]);
    const batches: TagBatch[] = [];
    const statuses: Status[] = [];
    helper.getNode('batches').on('input', (msg: never) => batches.push(msg));
    helper.getNode('host').on('call:status', (call: { args: [Status] }) => statuses.push(call.args[0]));
    await waitFor('host online on A', () => statuses.at(-1)?.text === 'sparkplug.status.host-online-on', 10000);

    // An edge node on B only (no primary host: born at once, before the host is there).
    const local = startEdge(brokerB.port, { bdSeqFile: join(dir, 'local.json'), edgeNodeId: 'gw-local' });
    edges.push(local);
    const localDevice = local.addDevice({ deviceId: 'drive-2' });
    let fed = 0;
    const feed = (): void => {
      fed++;
      helper.getNode('dev').receive({ topic: 'acme/line1/drive1', payload: { Speed: fed }, meta: { Speed: { type: 'Int32' } } });
      localDevice.handleBatch({ topic: 'acme/line2/drive2', payload: { Speed: fed }, meta: { Speed: { type: 'Int32' } } });
    };
    feed();
    local.edge.start();
    const followerTopic = 'acme/Plant 1/gw-follow/drive-1';
    const localTopic = 'acme/Plant 1/gw-local/drive-2';
    await waitFor('the follower\'s values at the host through A', () => valuesAt(batches, followerTopic, 'Speed').length > 0);
    assert.equal(valuesAt(batches, localTopic, 'Speed').length, 0, 'the host on A does not see the edge node on B');
    const localBirthsBefore = observerB.log.filter((m) => m.type === 'NBIRTH' && m.topic.endsWith('/gw-local')).length;

    const feeder = setInterval(feed, 20);
    try {
      const killedAt = Date.now();
      const statusMark = statuses.length;
      await brokerA.stop('SIGKILL');
      // The host's STATE birth on B: retained, online, with the Will timestamp of its CONNECT to B.
      const stateOnB = await observerB.waitFor('STATE online on B', (m) => m.type === 'STATE' && m.topic === `spBv1.0/STATE/${HOST_ID}` &&
        (JSON.parse(m.bytes.toString()) as { online: boolean }).online);
      const state = JSON.parse(stateOnB.bytes.toString()) as { online: boolean; timestamp: number };
      assert.ok(state.timestamp >= killedAt, `the STATE birth on B carries the CONNECT to B's timestamp (${state.timestamp} ≥ ${killedAt})`);
      await waitFor('host online on B', () => statuses.length > statusMark + 1 && statuses.at(-1)?.text === 'sparkplug.status.host-online-on', 15000);
      assert.ok(statuses.slice(statusMark).some((s) => s.text !== 'sparkplug.status.host-online-on'), 'the status left "online" while A was gone');
      // The follower is born on B after the host's STATE there; the local edge node is asked to rebirth.
      await observerB.waitFor('NBIRTH of the follower on B', (m) => m.type === 'NBIRTH' && m.topic.endsWith('/gw-follow'));
      await waitFor('a rebirth of the local edge node', () =>
        observerB.log.filter((m) => m.type === 'NBIRTH' && m.topic.endsWith('/gw-local')).length > localBirthsBefore, 15000);
      await waitFor('both edge nodes\' values at the host through B', () =>
        valuesAt(batches, localTopic, 'Speed').length > 0 && valuesAt(batches, followerTopic, 'Speed').some((v) => v > fed - 50), 15000);
    } finally {
      clearInterval(feeder);
    }
    const fromHere = fed + 1;
    for (let i = 0; i < 100; i++) feed();
    const last = fed;
    await waitFor('the last value of both edge nodes at the host', () =>
      valuesAt(batches, followerTopic, 'Speed').includes(last) && valuesAt(batches, localTopic, 'Speed').includes(last), 15000)
      .catch((error: Error) => { throw new Error(`${error.message}: statuses ${JSON.stringify(statuses.slice(-5))}`); });
    const expected = Array.from({ length: last - fromHere + 1 }, (_, i) => fromHere + i);
    for (const topic of [followerTopic, localTopic]) {
      assert.deepEqual(valuesAt(batches, topic, 'Speed').filter((v) => v >= fromHere), expected, `${topic}: every value after the switch, in order`);
    }
    // /metrics names the server the host uses now, and counts the failover.
    const connected = await metricsRegistry.getSingleMetricAsString('uns_edge_mqtt_server_connected');
    assert.match(connected, new RegExp(`uns_edge_mqtt_server_connected\\{broker="host",server="mqtt://127\\.0\\.0\\.1:${brokerB.port}"\\} 1`), connected);
    const failovers = await metricsRegistry.getSingleMetricAsString('uns_edge_mqtt_failovers_total');
    assert.match(failovers, /uns_edge_mqtt_failovers_total\{broker="host"\} 1/, failovers);
    assert.match(connected, new RegExp(`uns_edge_mqtt_server_connected\\{broker="edge",server="mqtt://127\\.0\\.0\\.1:${brokerB.port}"\\} 1`), connected);
    assert.match(failovers, /uns_edge_mqtt_failovers_total\{broker="edge"\} 1/, failovers);
  });
});
