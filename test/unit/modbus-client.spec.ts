/**
 * lib/modbus/client.ts against lib/modbus/server.ts (and a raw socket server for responses no
 * correct server sends): state machine, queue policy, timeouts, per-unit breaker, reconnect,
 * response matching (security.md T-MB-02/03/04/11).
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { ModbusException } from '../../lib/modbus/data-model';
import {
  ConnectionState, createModbusTcpClient, ModbusClient, ModbusClientError, ModbusTcpClientOptions,
} from '../../lib/modbus/client';
import { MemoryDataModel } from '../../lib/modbus/memory-model';
import { MbapFramer, writeMbapHeader } from '../../lib/modbus/mbap';
import { valuesOf } from '../../lib/modbus/pdu';
import { ModbusTcpServer, startModbusTcpServer } from '../../lib/modbus/server';
import { TcpTransport } from '../../lib/modbus/transport';
import { freePort } from '../helpers/ports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
};
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error) => (e instanceof ModbusClientError ? e.code : e instanceof ModbusException ? `exception ${e.code}` : e.message));
const read = (c: ModbusClient, unit: number, address = 0, quantity = 1) =>
  c.request(unit, { fc: 3, address, quantity }).then((r) => valuesOf(r as Parameters<typeof valuesOf>[0]));

/** A port nobody listens on right now (probe: listen on 0, close). */

describe('modbus client', () => {
  let model: MemoryDataModel;
  let server: ModbusTcpServer;
  const clients: ModbusClient[] = [];
  const client = (opts: Partial<ModbusTcpClientOptions> = {}) => {
    const c = createModbusTcpClient({ host: '127.0.0.1', port: server.port, timeoutMs: 150, reconnectMinMs: 50, reconnectMaxMs: 200, ...opts });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    model = new MemoryDataModel({ units: [1, 2, 3], size: 1000 });
    server = await startModbusTcpServer({ port: 0, model });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server.close();
  });

  it('goes idle → connecting → connected, reads and writes, and close() ends every request', async () => {
    const c = new ModbusClient(new TcpTransport({ host: '127.0.0.1', port: server.port }));
    clients.push(c);
    const states: ConnectionState[] = [c.state];
    c.on('state', (s) => states.push(s));
    c.start();
    model.set(1, 'holding', 10, [11, 12]);
    assert.deepEqual(await read(c, 1, 10, 2), [11, 12], 'a request made while connecting waits for the connection');
    await c.request(2, { fc: 16, address: 5, values: [7, 8] });
    assert.deepEqual(model.get(2, 'holding', 5, 2), [7, 8]);
    assert.equal(await codeOf(read(c, 1, 999, 2)), 'exception 2');
    assert.deepEqual(states, ['idle', 'connecting', 'connected']);
    await c.close();
    assert.equal(c.state, 'closed');
    assert.equal(await codeOf(read(c, 1)), 'closed');
    await until('server sees the close', () => server.connections === 0);
    assert.equal(c.stats.requests, 3);
    assert.equal(c.stats.exceptions, 1);
  });

  it('bounded queue: rejects the newest request when full and reports its depth', async () => {
    const c = client({ queueLimit: 5 });
    const results = Array.from({ length: 8 }, () => codeOf(read(c, 1)));
    assert.equal(c.queueDepth, 5);
    assert.equal(c.queueLimit, 5);
    assert.deepEqual(await Promise.all(results), ['ok', 'ok', 'ok', 'ok', 'ok', 'queue-full', 'queue-full', 'queue-full']);
    assert.equal(c.stats.rejectedQueueFull, 3);
    assert.equal(c.queueDepth, 0);
  });

  it('times a request out when the unit is silent, then answers again when it recovers', async () => {
    const c = client({ unitFailureThreshold: 10 });
    await read(c, 1);
    model.setSilent(1, true);
    const t0 = performance.now();
    assert.equal(await codeOf(read(c, 1)), 'timeout');
    const waited = performance.now() - t0;
    assert.ok(waited >= 140 && waited < 400, `timeout after ${waited} ms`);
    model.setSilent(1, false);
    model.set(1, 'holding', 0, [99]);
    assert.deepEqual(await read(c, 1), [99]);
    assert.equal(c.stats.timeouts, 1);
    assert.equal(c.state, 'connected');
  });

  it('suspends a dead unit after N timeouts so other units keep their rate, and probes it back', async () => {
    const c = client({ unitFailureThreshold: 2, unitBackoffMs: 300 });
    const suspended: number[] = [];
    const restored: number[] = [];
    c.on('unitSuspended', (e) => suspended.push(e.unitId));
    c.on('unitRestored', (e) => restored.push(e.unitId));
    await read(c, 1); // unit 1 shares the link: the breaker protects it
    model.setSilent(2, true);
    assert.equal(await codeOf(read(c, 2)), 'timeout');
    assert.equal(await codeOf(read(c, 2)), 'timeout');
    assert.deepEqual(suspended, [2]);
    assert.ok(c.isUnitSuspended(2));
    // Suspended: rejected at once, unit 1 is not delayed by it.
    const t0 = performance.now();
    const both = await Promise.all([codeOf(read(c, 2)), codeOf(read(c, 1)), codeOf(read(c, 2)), codeOf(read(c, 1))]);
    assert.deepEqual(both, ['unit-suspended', 'ok', 'unit-suspended', 'ok']);
    assert.ok(performance.now() - t0 < 100, 'unit 1 is served without waiting for unit 2');
    model.setSilent(2, false);
    await sleep(320);
    assert.ok(!c.isUnitSuspended(2));
    assert.equal(await codeOf(read(c, 2)), 'ok', 'the probe after the back-off gets through');
    assert.deepEqual(restored, [2]);
  });

  it('a probe that times out suspends the unit again for twice as long', async () => {
    const c = client({ unitFailureThreshold: 2, unitBackoffMs: 100, silentLinkTimeouts: 100 });
    const periods: number[] = [];
    c.on('unitSuspended', (e) => periods.push(e.forMs));
    await read(c, 1);
    model.setSilent(3, true);
    await codeOf(read(c, 3));
    await codeOf(read(c, 3));
    await sleep(110);
    assert.equal(await codeOf(read(c, 3)), 'timeout');
    assert.deepEqual(periods, [100, 200]);
  });

  it('reconnects at once after a working connection drops: a request made meanwhile waits and is answered (issue 8)', async () => {
    const c = client({ reconnectMinMs: 5000, reconnectMaxMs: 5000 });
    const outages: string[] = [];
    const states: ConnectionState[] = [];
    let restoredCount = 0;
    c.on('outage', (e) => outages.push(e.reason));
    c.on('restored', () => restoredCount++);
    await read(c, 1);
    c.on('state', (s) => states.push(s));
    server.dropConnections();
    await until('the drop is seen', () => outages.length === 1);
    const t0 = performance.now();
    assert.deepEqual(await read(c, 1), [0], 'queued for the immediate reconnect, not rejected as not-connected');
    assert.ok(performance.now() - t0 < 1000, 'no 5 s back-off before the first reconnect');
    assert.deepEqual(states, ['connecting', 'connected'], 'no back-off state');
    assert.equal(outages.length, 1);
    assert.equal(restoredCount, 1);
    assert.equal(c.stats.connects, 2);
  });

  it('backs off when the reconnect fails too (a device that accepts and drops at once gets no busy loop)', async () => {
    const c = client({ reconnectMinMs: 200, reconnectMaxMs: 200 });
    await read(c, 1);
    let accepted = 0;
    const dropper = net.createServer((s) => { accepted++; s.destroy(); });
    const port = server.port;
    await server.close();
    await new Promise<void>((r) => dropper.listen(port, '127.0.0.1', () => r()));
    try {
      await until('backoff', () => c.state === 'backoff', 2000);
      assert.equal(await codeOf(read(c, 1)), 'not-connected', 'no queueing into a real outage');
      const before = accepted;
      await sleep(450);
      // A few immediate retries (the device accepted: reachable), then 100–200 ms, 200–400 ms, …
      assert.ok(before <= 6, `${before} connections before the back-off`);
      assert.ok(accepted - before <= 4, `${accepted - before} connections in ~0.5 s of back-off`);
    } finally {
      await new Promise((r) => dropper.close(r));
      server = await startModbusTcpServer({ port, model });
    }
  });

  it('caps the reconnect back-off at 5 s by default, so a device that is back is polled again within seconds', () => {
    const c = new ModbusClient(new TcpTransport({ host: '127.0.0.1', port: 1 }));
    assert.equal((c as unknown as { reconnectMaxMs: number }).reconnectMaxMs, 5000);
  });

  it('keeps retrying with backoff while the device is down, one outage for many failed attempts', async () => {
    const port = await freePort();
    const c = createModbusTcpClient({ host: '127.0.0.1', port, timeoutMs: 150, reconnectMinMs: 20, reconnectMaxMs: 80 });
    clients.push(c);
    const outages: string[] = [];
    let attempts = 0;
    c.on('outage', (e) => outages.push(e.reason));
    c.on('state', (s) => { if (s === 'connecting') attempts++; });
    await sleep(400);
    assert.ok(attempts >= 4, `${attempts} attempts`);
    assert.equal(outages.length, 1);
    assert.match(outages[0], /ECONNREFUSED/);
    const late = await startModbusTcpServer({ port, model });
    try {
      await until('connected', () => c.state === 'connected');
      assert.deepEqual(await read(c, 1), [0]);
    } finally {
      await c.close();
      await late.close();
    }
  });

  it('reconnects a link on which nothing arrives any more (half-open), saying the client closed it', async () => {
    const c = client({ unitFailureThreshold: 100, silentLinkTimeouts: 3 });
    const outages: string[] = [];
    c.on('outage', (e) => outages.push(e.reason));
    await read(c, 1);
    model.setSilent(1, true);
    for (let i = 0; i < 3; i++) assert.equal(await codeOf(read(c, 1)), 'timeout');
    await until('reconnected', () => c.stats.connects === 2 && c.state === 'connected');
    assert.equal(outages.length, 1);
    assert.doesNotMatch(outages[0], /closed by the device/);
    assert.match(outages[0], /no answer to 3 requests in a row and nothing received: closed by the client/);
  });

  describe('circuit breaker: liveness, not tidy answers (issue 8)', () => {
    it('never suspends the only unit of a link: its polls keep going to the wire', async () => {
      const c = client({ unitFailureThreshold: 2, unitBackoffMs: 5000, silentLinkTimeouts: 100 });
      const suspended: number[] = [];
      c.on('unitSuspended', (e) => suspended.push(e.unitId));
      await read(c, 1);
      model.setSilent(1, true);
      for (let i = 0; i < 4; i++) assert.equal(await codeOf(read(c, 1)), 'timeout');
      assert.deepEqual(suspended, []);
      model.setSilent(1, false);
      assert.deepEqual(await read(c, 1), [0], 'answered at once when the unit is back');
      assert.equal(c.stats.rejectedSuspended, 0);
    });

    it('unitFailureThreshold 0 turns the breaker off', async () => {
      const c = client({ unitFailureThreshold: 0, silentLinkTimeouts: 100 });
      await read(c, 1);
      model.setSilent(2, true);
      for (let i = 0; i < 4; i++) assert.equal(await codeOf(read(c, 2)), 'timeout');
      assert.ok(!c.isUnitSuspended(2));
    });
  });

  it('waits pauseAfterConnectMs after connecting and gapMs between requests', async () => {
    const c = client({ pauseAfterConnectMs: 100, gapMs: 40 });
    const t0 = performance.now();
    await read(c, 1);
    assert.ok(performance.now() - t0 >= 95, 'first request after the pause');
    const t1 = performance.now();
    await Promise.all([read(c, 1), read(c, 1), read(c, 1)]);
    assert.ok(performance.now() - t1 >= 75, 'two gaps between three requests');
  });

  it('rejects bad unit ids and requests at once (T-MB-10)', async () => {
    const c = client();
    for (const unit of [undefined, null, 1.5, -1, 256]) {
      assert.equal(await codeOf(read(c, unit as unknown as number)), 'invalid-request');
    }
    assert.equal(await codeOf(c.request(1, { fc: 3, address: 0, quantity: 126 })), 'invalid-request');
    assert.equal(await codeOf(c.request(1, { fc: 6, address: undefined as unknown as number, value: 1 })), 'invalid-request');
    assert.deepEqual(await read(c, 1), [0], 'a bad request leaves the client working');
  });

  describe('against a device that answers wrongly', () => {
    let rogue: net.Server;
    let reply: (tid: number, unit: number, pdu: Buffer, socket: net.Socket) => void;
    const frame = (tid: number, unit: number, pdu: Buffer) => {
      const b = Buffer.alloc(7 + pdu.length);
      writeMbapHeader(b, 0, tid, unit, pdu.length);
      pdu.copy(b, 7);
      return b;
    };
    const rogueSockets = new Set<net.Socket>();
    beforeEach(async () => {
      rogue = net.createServer((s) => {
        rogueSockets.add(s);
        s.on('close', () => rogueSockets.delete(s));
        const f = new MbapFramer((tid, unit, pdu) => reply(tid, unit, pdu, s), () => s.destroy());
        s.on('data', (d) => f.push(d));
        s.on('error', () => undefined);
      });
      await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', () => r()));
    });
    afterEach(async () => {
      for (const s of rogueSockets) s.destroy();
      await new Promise((r) => rogue.close(r));
    });
    const rogueClient = () => client({ port: (rogue.address() as net.AddressInfo).port, unitFailureThreshold: 100, silentLinkTimeouts: 100 });

    it('discards and counts a wrong transaction id, unit id or function code, then takes the right answer', async () => {
      reply = (tid, unit, _pdu, s) => {
        s.write(frame(tid + 1, unit, Buffer.from([3, 2, 0, 66]))); // unsolicited transaction
        s.write(frame(tid, unit + 1, Buffer.from([3, 2, 0, 66]))); // wrong unit
        s.write(frame(tid, unit, Buffer.from([4, 2, 0, 66]))); // wrong function
        s.write(frame(tid, unit, Buffer.from([3, 2, 0, 42]))); // the answer
      };
      const c = rogueClient();
      assert.deepEqual(await read(c, 1), [42]);
      assert.equal(c.stats.discardedTransaction, 1);
      assert.equal(c.stats.discardedUnit, 1);
      assert.equal(c.stats.discardedFunction, 1);
    });

    it('never takes a wrong-id response as the answer: the request times out', async () => {
      reply = (tid, unit, _pdu, s) => s.write(frame(tid, unit + 1, Buffer.from([3, 2, 0, 66])));
      const c = rogueClient();
      assert.equal(await codeOf(read(c, 1)), 'timeout');
      assert.equal(c.stats.discardedUnit, 1);
    });

    it('a late reply or a reply with the wrong unit id proves the unit alive: no suspension (issue 8)', async () => {
      // Unit 1 answers every request late (after the 150 ms timeout), unit 2 answers with unit id 9:
      // both are alive, the breaker must not open; unit 3 answers properly and shares the link.
      reply = (tid, unit, _pdu, s) => {
        const answer = frame(tid, unit === 2 ? 9 : unit, Buffer.from([3, 2, 0, 66]));
        if (unit === 1) setTimeout(() => s.destroyed || s.write(answer), 200);
        else s.write(answer);
      };
      const c = client({ port: (rogue.address() as net.AddressInfo).port, unitFailureThreshold: 2, unitBackoffMs: 5000, silentLinkTimeouts: 100 });
      const suspended: number[] = [];
      c.on('unitSuspended', (e) => suspended.push(e.unitId));
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(await read(c, 3), [66]);
        assert.equal(await codeOf(read(c, 1)), 'timeout', 'a late reply is never the answer');
        assert.equal(await codeOf(read(c, 2)), 'timeout', 'nor one with the wrong unit id');
        await sleep(60); // the late reply arrives
      }
      assert.deepEqual(suspended, []);
      assert.ok(c.stats.discardedTransaction >= 3 && c.stats.discardedUnit === 4, JSON.stringify(c.stats));
    });

    it('rejects a malformed answer (byte count ≠ 2 × quantity) with a clear error (T-MB-04)', async () => {
      reply = (tid, unit, _pdu, s) => s.write(frame(tid, unit, Buffer.from([3, 4, 0, 1, 0, 2])));
      const c = rogueClient();
      const error = await read(c, 1).catch((e: Error) => e);
      assert.ok(error instanceof ModbusClientError && error.code === 'malformed-response', String(error));
      assert.match(error.message, /byte count 4, expected 2/);
    });

    it('maps unknown exception codes (0x07, 0xFF) to an exception, not to data (T-MB-06)', async () => {
      let code = 7;
      reply = (tid, unit, pdu, s) => s.write(frame(tid, unit, Buffer.from([pdu[0] | 0x80, code])));
      const c = rogueClient();
      const e7 = await read(c, 1).catch((e: Error) => e);
      assert.ok(e7 instanceof ModbusException && e7.code === 7);
      assert.equal(e7.message, 'Modbus exception 7 (unknown exception code)');
      code = 0xff;
      assert.equal(await codeOf(read(c, 1)), 'exception 255');
    });

    it('garbage proves the device alive: every reconnect after it is immediate, no back-off (issue 8)', async () => {
      reply = (_tid, _unit, _pdu, s) => s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
      const c = client({ port: (rogue.address() as net.AddressInfo).port, reconnectMinMs: 5000, reconnectMaxMs: 5000 });
      const states: ConnectionState[] = [];
      c.on('state', (s) => states.push(s));
      for (let i = 0; i < 3; i++) assert.equal(await codeOf(read(c, 1)), 'connection-lost');
      assert.ok(!states.includes('backoff'), states.join(' '));
    });

    it('a device that drops a fresh connection on its first request is retried at once, not after a back-off (issue 8)', async () => {
      let requests = 0;
      reply = (tid, unit, _pdu, s) => {
        if (++requests <= 2) s.destroy();
        else s.write(frame(tid, unit, Buffer.from([3, 2, 0, 9])));
      };
      const c = client({ port: (rogue.address() as net.AddressInfo).port, reconnectMinMs: 5000, reconnectMaxMs: 5000 });
      const states: ConnectionState[] = [];
      c.on('state', (s) => states.push(s));
      assert.equal(await codeOf(read(c, 1)), 'connection-lost');
      assert.equal(await codeOf(read(c, 1)), 'connection-lost');
      assert.deepEqual(await read(c, 1), [9]);
      assert.ok(!states.includes('backoff'), states.join(' '));
    });

    it('drops the connection on a garbage response and reconnects (T-MB-01)', async () => {
      let first = true;
      reply = (tid, unit, _pdu, s) => {
        if (first) s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
        else s.write(frame(tid, unit, Buffer.from([3, 2, 0, 5])));
        first = false;
      };
      const c = rogueClient();
      assert.equal(await codeOf(read(c, 1)), 'connection-lost');
      await until('reconnected', () => c.state === 'connected' && c.stats.connects === 2);
      assert.deepEqual(await read(c, 1), [5]);
    });
  });
});
