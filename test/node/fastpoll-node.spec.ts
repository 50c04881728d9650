/**
 * uns-fast-poll in a Node-RED runtime (node-red-node-test-helper) against the simulated plant:
 * tag batches of changed metrics (scaled, with meta), a trip with its timestamps on output 2, the
 * status naming the implementation, /metrics, a configuration error, and clean close. Runs for
 * the implementation the environment gives (native when built, else the fallback) and once forced
 * to the fallback.
 */
import { strict as assert } from 'node:assert';
import fastpollNodes = require('../../nodes/fastpoll/fastpoll');
import { startSimulatedPlant, SimulatedPlantHandle } from '../../sim';
import { loadNative } from '../../lib/fastpoll';
import { metricsRegistry } from '../../lib/runtime/metrics';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { describeWithLeakDetector } from '../helpers/leaks';
import { helper, type Status } from '../helpers/node-red-runtime';

const PATH = 'acme/plant/area/line/cell/drive1';
const native = loadNative();

for (const implementation of ['auto', 'fallback'] as const) {
  const expected = implementation === 'auto' && native.ok ? 'native' : 'fallback';
  describeWithLeakDetector(`uns-fast-poll node (${implementation} → ${expected})`, function () {
    this.timeout(15_000);
    let plant: SimulatedPlantHandle;

    before((done) => { helper.startServer(done); });
    after((done) => { helper.stopServer(done); });
    beforeEach(async () => { plant = await startSimulatedPlant({ port: 0, drives: 1, seed: 1 }); });
    afterEach(async () => {
      await helper.unload();
      await plant.close();
    });

    const flow = (extra: object = {}) => [
      {
        id: 'fp', type: 'uns-fast-poll', host: '127.0.0.1', port: plant.port, unitId: 1, period: 2, topic: PATH, statsInterval: 1,
        implementation,
        metrics: JSON.stringify([
          { name: 'speedSetpoint', table: 'holding', address: 1, type: 'int16', unit: 'rpm', deadband: 20 },
          { name: 'controlWord', table: 'holding', address: 0, type: 'uint16' },
          { name: 'outputFrequency', table: 'input', address: 3, type: 'int16', scale: 0.01, unit: 'Hz' },
          { name: 'motorCurrent', table: 'input', address: 4, type: 'float32', unit: 'A' },
        ]),
        trips: JSON.stringify([{ metric: 'speedSetpoint', when: 'above', limit: 1500, cycles: 2, writeAddress: 0, writeValue: 0 }]),
        wires: [['batches'], ['side']], ...extra,
      },
      { id: 'batches', type: 'helper' },
      { id: 'side', type: 'helper' },
    ];

    it('sends tag batches of changed metrics, a trip with timestamps, stats; status names the implementation', async () => {
      await helper.load(fastpollNodes, flow());
      const fp = helper.getNode('fp');
      const statuses: Status[] = [];
      fp.on('call:status', (call) => statuses.push((call as { args: [Status] }).args[0]));
      const batches: TagBatch[] = [];
      const side: Array<{ topic: string; payload: Record<string, unknown> }> = [];
      helper.getNode('batches').on('input', (m) => batches.push(m as TagBatch));
      helper.getNode('side').on('input', (m) => side.push(m as { topic: string; payload: Record<string, unknown> }));
      await waitFor('first batch', () => batches.some((b) => b.payload.speedSetpoint === 1200));
      const first = batches.find((b) => b.payload.speedSetpoint === 1200) as TagBatch;
      assert.equal(first.topic, PATH);
      assert.equal(first.meta?.speedSetpoint.unit, 'rpm');
      assert.equal(first.meta?.speedSetpoint.quality, 'good');
      assert.ok(batches.some((b) => typeof b.payload.outputFrequency === 'number' && b.meta?.outputFrequency.type === 'Double'));

      plant.setSetpoint(1, 1210); // within the 20 rpm deadband
      await sleep(100);
      assert.ok(!batches.some((b) => b.payload.speedSetpoint === 1210));
      plant.setSetpoint(1, 1600); // beyond the deadband and the trip limit
      await waitFor('the trip', () => side.some((m) => m.topic === `${PATH}/$trip`));
      const trip = side.find((m) => m.topic === `${PATH}/$trip`)?.payload as Record<string, number | string | boolean>;
      assert.equal(trip.metric, 'speedSetpoint');
      assert.equal(trip.ok, true);
      assert.equal(trip.cycles, 1);
      assert.ok((trip.ackedTime as number) >= (trip.crossingTime as number));
      await waitFor('control word 0 reported', () => batches.some((b) => b.payload.controlWord === 0));

      // Under load the first statistics interval can end before the worker's first cycle: wait for one that counted cycles.
      const isStats = (m: { topic: string; payload: Record<string, unknown> }): boolean => m.topic === `${PATH}/$stats` && (m.payload.cycles as number) > 0;
      await waitFor('stats with cycles', () => side.some(isStats));
      const stats = side.find(isStats)?.payload as { implementation: string; lateness: { p99Us: number }; cycles: number };
      assert.equal(stats.implementation, expected);
      const last = statuses[statuses.length - 1];
      // The helper stubs RED._ (keys, not texts): the key names the implementation.
      assert.match(last.text ?? '', new RegExp(`^fastpoll\\.status\\.${expected} · p99 \\d`));
      assert.equal(last.fill, 'green');
      const metrics = await metricsRegistry.getSingleMetricAsString('uns_edge_fastpoll_lateness_seconds');
      assert.match(metrics, /node="fp"/);
    });

    it('a metric that cannot take a deadband: the node does not start and says so', async () => {
      await helper.load(fastpollNodes, flow({ metrics: JSON.stringify([{ name: 'i', table: 'input', address: 4, type: 'float32', deadband: 1 }]), trips: '[]' }));
      const fp = helper.getNode('fp');
      await waitFor('the error', () => fp.error.getCalls().length > 0);
      assert.equal(fp.error.getCalls()[0].args[0], 'fastpoll.error.config');
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, predicate: () => boolean, ms = 8000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
