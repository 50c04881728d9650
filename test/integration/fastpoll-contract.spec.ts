/**
 * One contract suite over both fast-poller implementations (the native addon and the TypeScript
 * worker fallback), against the simulated plant's Modbus TCP server and scripted faulty devices on
 * free ports. Timing assertions are loose on purpose (2-core VM); cycle counts are exact.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { startSimulatedPlant, SimulatedPlantHandle } from '../../sim';
import { describeWithLeakDetector } from '../helpers/leaks';
import {
  BatchCallback, CHANGE_RECORD_LENGTH, FallbackPoller, loadNative, PollerBinding, PollerEvent, PollerFactory, PollerOptions,
} from '../../lib/fastpoll';
import { freePort } from '../helpers/ports';

const native = loadNative({ UNS_EDGE_NATIVE_ADDON: process.env.UNS_EDGE_NATIVE_ADDON });
const implementations: Array<{ name: string; factory: PollerFactory | undefined; skip?: string }> = [
  { name: 'native', factory: native.ok ? native.factory : undefined, skip: native.ok ? undefined : native.reason },
  { name: 'fallback', factory: (options, onBatch) => new FallbackPoller(options, onBatch) },
];

interface Change { cycle: number; time: number; block: number; offset: number; value: number }

/** Collects what a poller hands over. */
class Recorder {
  readonly changes: Change[] = [];
  readonly events: PollerEvent[] = [];
  readonly onBatch: BatchCallback = (records, events) => {
    for (let i = 0; i < records.length; i += CHANGE_RECORD_LENGTH) {
      this.changes.push({ cycle: records[i], time: records[i + 1], block: records[i + 2], offset: records[i + 3], value: records[i + 4] });
    }
    this.events.push(...events);
  };
  latest(block: number, offset: number): number | undefined {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const c = this.changes[i];
      if (c.block === block && c.offset === offset) return c.value;
    }
    return undefined;
  }
  has(type: PollerEvent['type'], where: (e: PollerEvent) => boolean = () => true): boolean {
    return this.events.some((e) => e.type === type && where(e));
  }
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A TCP server that accepts and then does what `onData` says (nothing: a device that never answers). */
async function scriptedDevice(onData: (socket: net.Socket, data: Buffer) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (data) => onData(socket, data));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}


const openDescriptors = () => readdirSync('/proc/self/fd').length;

for (const impl of implementations) {
  describeWithLeakDetector(`fast poller contract: ${impl.name}`, function () {
    this.timeout(20_000);
    let plant: SimulatedPlantHandle;
    const running: PollerBinding[] = [];

    before(function () {
      if (!impl.factory) {
        // Visible skip: the addon is not built here (docs/fast-poll.md says how to build it).
        this.skip();
      }
    });
    beforeEach(async () => {
      plant = await startSimulatedPlant({ port: 0, drives: 1, seed: 1 });
    });
    afterEach(async () => {
      for (const p of running.splice(0)) await p.stop();
      await plant?.close();
    });

    function start(options: Partial<PollerOptions> & Pick<PollerOptions, 'blocks'>, recorder: Recorder): PollerBinding {
      const poller = (impl.factory as PollerFactory)({ host: '127.0.0.1', port: plant.port, unitId: 1, periodMs: 2, ...options }, recorder.onBatch);
      running.push(poller);
      poller.start();
      return poller;
    }

    it(`reads holding and input registers every cycle (${impl.skip ?? 'available'})`, async () => {
      const r = new Recorder();
      const poller = start({ blocks: [{ fc: 3, address: 0, quantity: 4 }, { fc: 4, address: 0, quantity: 16 }] }, r);
      await waitFor('the setpoint', () => r.latest(0, 1) !== undefined);
      assert.equal(r.latest(0, 1), plant.drives[0].setpointRpm);
      assert.ok(r.has('connected'));
      await waitFor('50 cycles', () => (poller.stats()?.cycles ?? 0) >= 50);
      const stats = poller.stats();
      assert.ok(stats);
      assert.equal(stats.implementation, impl.name);
      // Cycles before the link is up read nothing; after that every cycle reads both blocks.
      assert.ok(stats.reads >= 2 * 25, `reads ${stats.reads}`);
      assert.equal(stats.readErrors, 0);
      assert.equal(stats.lateness.total, stats.cycles);
      assert.equal(stats.lateness.counts.reduce((a, b) => a + b, 0), stats.lateness.total);
    });

    it('reports a change only beyond the deadband', async () => {
      const r = new Recorder();
      start({ blocks: [{ fc: 3, address: 0, quantity: 4, deadbands: [0, 50, 0, 0] }] }, r);
      await waitFor('first values', () => r.latest(0, 1) === 1200);
      const reportedBefore = r.changes.filter((c) => c.offset === 1).length;
      plant.setSetpoint(1, 1230); // |Δ| = 30 ≤ 50: not reported
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(r.changes.filter((c) => c.offset === 1).length, reportedBefore);
      plant.setSetpoint(1, 1300); // |Δ| = 100 from the last reported 1200: reported
      await waitFor('the change beyond the deadband', () => r.latest(0, 1) === 1300);
    });

    it('writes between cycles (FC6 and FC16) and reports each result', async () => {
      const r = new Recorder();
      const poller = start({ blocks: [{ fc: 3, address: 0, quantity: 4 }] }, r);
      await waitFor('connected', () => r.has('connected'));
      assert.equal(poller.write(7, 6, 2, [123]), true);
      assert.equal(poller.write(8, 16, 2, [321, 456]), true);
      assert.equal(poller.write(9, 6, 0, [0xffff]), true); // reserved control-word bits: exception 3
      await waitFor('three write results', () => r.events.filter((e) => e.type === 'write').length === 3);
      const results = new Map(r.events.flatMap((e) => (e.type === 'write' ? [[e.id, e] as const] : [])));
      assert.equal(results.get(7)?.kind, 'ok');
      assert.equal(results.get(8)?.kind, 'ok');
      assert.equal(results.get(9)?.kind, 'exception');
      assert.equal(results.get(9)?.code, 3);
      await waitFor('written values read back', () => r.latest(0, 2) === 321 && r.latest(0, 3) === 456);
    });

    it('a trip rule fires within 2 cycles of the crossing and its write reaches the drive', async () => {
      const r = new Recorder();
      start({
        blocks: [{ fc: 3, address: 0, quantity: 4, signed: [false, true] }],
        // speedSetpoint (holding 1) above 1500 for 2 consecutive cycles → controlWord (holding 0) = 0: stop.
        trips: [{ block: 0, offset: 1, when: 'above', limit: 1500, cycles: 2, writeAddress: 0, writeValue: 0 }],
      }, r);
      await waitFor('running', () => r.latest(0, 0) === 1);
      plant.setSetpoint(1, 1600);
      await waitFor('the trip', () => r.has('trip'));
      const trip = r.events.find((e) => e.type === 'trip');
      assert.ok(trip && trip.type === 'trip');
      assert.equal(trip.kind, 'ok');
      assert.equal(trip.value, 1600);
      assert.equal(trip.cycle - trip.crossingCycle, 1, 'the 2nd consecutive cycle writes');
      assert.ok(trip.ackedTime !== undefined && trip.ackedTime >= trip.sentTime && trip.sentTime >= trip.crossingTime);
      await waitFor('the drive stopped', () => plant.drives[0].control.run === false);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(r.events.filter((e) => e.type === 'trip').length, 1, 'latched: one write while the condition holds');
    });

    it('a device that never answers: timeouts are reported once per outage, the poller keeps its deadlines', async () => {
      const device = await scriptedDevice(() => undefined);
      try {
        const r = new Recorder();
        const poller = start({ port: device.port, timeoutMs: 20, reconnectMinMs: 20, reconnectMaxMs: 40, blocks: [{ fc: 3, address: 0, quantity: 4 }] }, r);
        await waitFor('a timeout', () => r.has('read-error', (e) => e.kind === 'timeout'));
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(r.events.filter((e) => e.type === 'disconnected').length, 1, JSON.stringify(r.events));
        assert.equal(r.changes.length, 0);
        assert.ok((poller.stats()?.connects ?? 0) >= 2, 'it reconnects');
      } finally {
        await device.close();
      }
    });

    it('a device that answers garbage: reported as garbage, never taken as values', async () => {
      const device = await scriptedDevice((socket, data) => {
        const reply = Buffer.from(data);
        reply[7] = 0x03; reply[8] = 200; // byte count that does not match the request
        socket.write(reply);
      });
      try {
        const r = new Recorder();
        start({ port: device.port, timeoutMs: 50, blocks: [{ fc: 3, address: 0, quantity: 4 }] }, r);
        await waitFor('garbage', () => r.has('read-error', (e) => e.kind === 'garbage'));
        assert.equal(r.changes.length, 0);
      } finally {
        await device.close();
      }
    });

    it('a refused connection is reported, and polling recovers when the device comes up', async () => {
      const port = await freePort();
      const r = new Recorder();
      start({ port, reconnectMinMs: 20, reconnectMaxMs: 50, blocks: [{ fc: 3, address: 0, quantity: 4 }] }, r);
      await waitFor('refused', () => r.has('disconnected', (e) => e.kind === 'refused'));
      const late = await startSimulatedPlant({ port, drives: 1 });
      try {
        await waitFor('recovery', () => r.has('connected') && r.latest(0, 1) === 1200);
      } finally {
        await late.close();
      }
    });

    it('an exception answer is reported for its block only, with the code', async () => {
      const r = new Recorder();
      start({ blocks: [{ fc: 3, address: 0, quantity: 4 }, { fc: 3, address: 100, quantity: 2 }] }, r);
      await waitFor('exception 2', () => r.has('read-error', (e) => e.type === 'read-error' && e.block === 1 && e.kind === 'exception' && e.code === 2));
      await waitFor('block 0 values', () => r.latest(0, 1) === 1200);
      assert.equal(r.events.filter((e) => e.type === 'read-error').length, 1, 'one event per failing block, not one per cycle');
    });

    it('stop/restart leaks no descriptor and no thread', async () => {
      const before = openDescriptors();
      // A worker start costs ~0.4 s (tsx compiles it): fewer rounds for the fallback.
      for (let i = 0; i < (impl.name === 'native' ? 20 : 6); i++) {
        const r = new Recorder();
        const poller = (impl.factory as PollerFactory)({ host: '127.0.0.1', port: plant.port, periodMs: 1, blocks: [{ fc: 4, address: 0, quantity: 16 }] }, r.onBatch);
        poller.start();
        await waitFor('a value', () => r.changes.length > 0);
        await poller.stop();
        await poller.stop(); // idempotent
        assert.equal(poller.running, false);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(openDescriptors() <= before + 2, `descriptors ${before} → ${openDescriptors()}`);
    });

    it('rejects wrong argument types with TypeError and bad values with RangeError', () => {
      const factory = impl.factory as PollerFactory;
      const ok: PollerOptions = { host: '127.0.0.1', port: 502, blocks: [{ fc: 3, address: 0, quantity: 1 }] };
      const bad = (options: unknown, onBatch: unknown = () => undefined) => () => factory(options as PollerOptions, onBatch as BatchCallback);
      assert.throws(bad(undefined), TypeError);
      assert.throws(bad(ok, 'not a function'), TypeError);
      assert.throws(bad({ ...ok, host: 42 }), TypeError);
      assert.throws(bad({ ...ok, port: '502' }), TypeError);
      assert.throws(bad({ ...ok, blocks: 'x' }), TypeError);
      assert.throws(bad({ ...ok, blocks: [{ fc: 3, address: '0', quantity: 1 }] }), TypeError);
      assert.throws(bad({ ...ok, blocks: [{ fc: 3, address: 0, quantity: 1, deadbands: ['1'] }] }), TypeError);
      assert.throws(bad({ ...ok, trips: [{ block: 0, offset: 0, when: 1, limit: 1, writeAddress: 0, writeValue: 0 }] }), TypeError);
      assert.throws(bad({ ...ok, realtime: { lockMemory: 'yes' } }), TypeError);
      assert.throws(bad({ ...ok, port: 70000 }), RangeError);
      assert.throws(bad({ ...ok, blocks: [] }), RangeError);
      assert.throws(bad({ ...ok, blocks: [{ fc: 3, address: 0, quantity: 126 }] }), RangeError);
      assert.throws(bad({ ...ok, blocks: [{ fc: 7, address: 0, quantity: 1 }] }), RangeError);
      assert.throws(bad({ ...ok, trips: [{ block: 1, offset: 0, when: 'above', limit: 1, writeAddress: 0, writeValue: 0 }] }), RangeError);
      const poller = factory(ok, () => undefined);
      poller.start();
      running.push(poller);
      assert.throws(() => poller.write('1' as unknown as number, 6, 0, [1]), TypeError);
      assert.throws(() => poller.write(1, 6, 0, ['1' as unknown as number]), TypeError);
      assert.throws(() => poller.write(1, 3 as 6, 0, [1]), RangeError);
      assert.throws(() => poller.write(1, 6, 0, [70000]), RangeError);
    });
  });
}
