/**
 * Pollers of one period share the ticks of one timer (lib/modbus/poll-clock.ts), so the units of a
 * link are polled in one event-loop turn and their requests leave in one socket write; a poller
 * that joins a running clock polls at once and not again before half a period, without counting a
 * skipped poll; the timer of a period stops with its last poller. Against lib/modbus/server.ts (the
 * simulated plant's server) over real TCP.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { createModbusTcpClient, ModbusClient } from '../../lib/modbus/client';
import { MemoryDataModel } from '../../lib/modbus/memory-model';
import { PollClock } from '../../lib/modbus/poll-clock';
import { ModbusPoller } from '../../lib/modbus/poller';
import { buildReadPlan } from '../../lib/modbus/read-plan';
import { ModbusTcpServer, startModbusTcpServer } from '../../lib/modbus/server';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { countWritesTo } from '../helpers/socket-writes';
import { sleep } from '../helpers/wait';

const UNITS = [1, 2, 3, 4, 5, 6];
const PERIOD_MS = 40;

describe('modbus poll clock: one timer per period, the units of a link polled in one turn', () => {
  let server: ModbusTcpServer;
  let client: ModbusClient;
  const plan = buildReadPlan([
    { name: 'speed', table: 'holding', address: 0, type: 'uint16' },
    { name: 'current', table: 'input', address: 0, type: 'uint16' },
  ]);

  beforeEach(async () => {
    const model = new MemoryDataModel({ units: UNITS, size: 16 });
    for (const unit of UNITS) model.write(unit, 'holding', 0, [unit * 10]);
    server = await startModbusTcpServer({ model });
    client = createModbusTcpClient({ host: server.host, port: server.port, maxInFlight: 32 });
    await new Promise<void>((resolve) => client.on('state', (s) => s === 'connected' && resolve()));
  });

  afterEach(async () => {
    await client.close();
    await server.close();
  });

  it(`${UNITS.length} units polling every ${PERIOD_MS} ms: one socket write per tick, every batch right`, async () => {
    const clock = new PollClock();
    const batches: TagBatch[] = [];
    const pollers = UNITS.map((unitId) => new ModbusPoller({ client, unitId, plan, topic: `a/unit-${unitId}`, intervalMs: PERIOD_MS, clock }));
    for (const poller of pollers) poller.on('batch', (batch) => batches.push(batch));
    // Started in different turns, as nodes deployed one by one are.
    for (const poller of pollers) {
      poller.start();
      await sleep(3);
    }
    assert.deepEqual(clock.periods, [PERIOD_MS], 'one timer for the period');
    await sleep(2 * PERIOD_MS); // past the first polls, each made at start
    const writes = countWritesTo(server.port);
    const before = pollers.map((p) => p.stats.polls);
    try {
      await sleep(10 * PERIOD_MS);
    } finally {
      writes.restore();
    }
    const polls = pollers.map((p, i) => p.stats.polls - before[i]);
    const ticks = Math.min(...polls);
    assert.ok(ticks >= 5, `each unit polled on the clock's ticks: ${polls.join(', ')}`);
    // One write per tick (two requests per unit, twelve per tick), give or take the window's edges;
    // a timer per poller takes one per unit and tick.
    assert.ok(writes.count <= Math.max(...polls) + 1, `${writes.count} socket writes for ${polls.join(', ')} polls per unit`);
    assert.deepEqual(pollers.map((p) => p.stats.skipped), UNITS.map(() => 0), 'no poll skipped');
    const last = new Map(batches.map((b) => [b.topic, b.payload.speed]));
    assert.deepEqual([...last.entries()].sort(), UNITS.map((u) => [`a/unit-${u}`, u * 10]));
    for (const poller of pollers) poller.stop();
    assert.deepEqual(clock.periods, [], 'the timer stops with the last poller');
  });

  it('a tick that finds the first poll still running within its period is not a skipped poll (a slow unit)', async () => {
    // A device that answers every read after 140 ms (zeros), against a period of 200 ms.
    const slow = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        for (let at = 0; at + 12 <= chunk.length; at += 12) {
          const quantity = chunk.readUInt16BE(at + 10);
          const answer = Buffer.alloc(9 + 2 * quantity);
          chunk.copy(answer, 0, at, at + 4); // transaction and protocol id
          answer.writeUInt16BE(3 + 2 * quantity, 4);
          answer[6] = chunk[at + 6];
          answer[7] = chunk[at + 7];
          answer[8] = 2 * quantity;
          setTimeout(() => socket.write(answer), 140);
        }
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowClient = createModbusTcpClient({ host: '127.0.0.1', port: (slow.address() as net.AddressInfo).port, maxInFlight: 4 });
    try {
      await new Promise<void>((resolve) => slowClient.on('state', (s) => s === 'connected' && resolve()));
      const clock = new PollClock();
      const first = new ModbusPoller({ client, unitId: 1, plan, topic: 'a/first', intervalMs: 200, clock });
      first.start();
      await sleep(90); // the clock's next tick is ~110 ms away: past half a period, before the slow answer
      const late = new ModbusPoller({ client: slowClient, unitId: 1, plan, topic: 'a/slow', intervalMs: 200, clock });
      late.start();
      await sleep(800); // the next tick at ~310 ms, its answer at ~450 ms
      first.stop();
      late.stop();
      assert.equal(late.stats.skipped, 0, 'the tick during the first poll');
      assert.ok(late.stats.polls >= 2, `polled at start and on a later tick: ${late.stats.polls}`);
    } finally {
      await slowClient.close();
      await new Promise((resolve) => slow.close(resolve));
    }
  });

  it('a poller joining a running clock polls at once and not again within half a period', async () => {
    const clock = new PollClock();
    const first = new ModbusPoller({ client, unitId: 1, plan, topic: 'a/first', intervalMs: 200, clock });
    first.start();
    await sleep(190); // the clock's next tick is ~10 ms away
    const late = new ModbusPoller({ client, unitId: 2, plan, topic: 'a/late', intervalMs: 200, clock });
    const times: number[] = [];
    const started = performance.now();
    late.on('batch', () => times.push(performance.now() - started));
    late.start();
    await sleep(250);
    first.stop();
    late.stop();
    assert.equal(late.stats.skipped, 0);
    assert.equal(times.length, 2, `polls at ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
    assert.ok(times[0] < 50, `first poll at once: ${times[0].toFixed(0)} ms`);
    assert.ok(times[1] >= 150, `second poll on the clock's tick after next: ${times[1].toFixed(0)} ms`);
  });
});
