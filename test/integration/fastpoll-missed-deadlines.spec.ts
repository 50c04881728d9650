/**
 * A deadline an overrun skipped is a late cycle (issue 12 item 8): both fast-poller implementations
 * record its lateness, until the next cycle actually ran, in `missedLateness`, one entry per missed
 * deadline, so lateness over every deadline can be stated. A unit with comms loss makes every cycle
 * wait for its 20 ms timeout at a 1 ms period: each cycle overruns and skips ~20 deadlines.
 */
import assert from 'node:assert/strict';
import { startSimulatedPlant, SimulatedPlantHandle } from '../../sim';
import { FallbackPoller, loadNative, PollerFactory, RawPollerStats } from '../../lib/fastpoll';

const native = loadNative({ UNS_EDGE_NATIVE_ADDON: process.env.UNS_EDGE_NATIVE_ADDON });
const implementations: Array<{ name: string; factory: PollerFactory | undefined }> = [
  { name: 'native', factory: native.ok ? native.factory : undefined },
  { name: 'fallback', factory: (options, onBatch) => new FallbackPoller(options, onBatch) },
];

describe('fast poller: lateness of missed deadlines', function () {
  this.timeout(20_000);
  let plant: SimulatedPlantHandle;
  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 });
    plant.injectFault(1, 'commsLoss');
  });
  after(() => plant.close());

  for (const { name, factory } of implementations) {
    (factory ? it : it.skip)(`${name}: every missed deadline is in missedLateness, late by at least one period`, async () => {
      const poller = factory!({ host: plant.host, port: plant.port, unitId: 1, periodMs: 1, timeoutMs: 20, blocks: [{ fc: 4, address: 0, quantity: 2 }] }, () => {});
      poller.start();
      try {
        let stats: RawPollerStats | null = null;
        for (let waited = 0; waited < 10_000 && !(stats && stats.missedDeadlines >= 100); waited += 100) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          stats = poller.stats();
        }
        assert.ok(stats && stats.missedDeadlines >= 100, `missed deadlines: ${stats?.missedDeadlines}`);
        // The deadlines of the last overrun are recorded when the next cycle runs: at most one overrun's worth behind.
        const behind = stats.missedDeadlines - stats.missedLateness.total;
        assert.ok(behind >= 0 && behind <= 40, `${stats.missedLateness.total} recorded of ${stats.missedDeadlines} missed`);
        assert.ok(stats.missedLateness.maxNs >= 15e6, `the first deadline an overrun skipped waited for the timeout: max ${stats.missedLateness.maxNs} ns`);
        assert.ok(stats.missedLateness.sumNs / stats.missedLateness.total >= 1e6, 'a skipped deadline is at least a period late');
      } finally {
        await poller.stop();
      }
    });
  }
});
