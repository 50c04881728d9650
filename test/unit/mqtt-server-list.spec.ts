/**
 * Server lists (lib/mqtt/server-list.ts) and how MqttConnection walks them when servers fail:
 * parsing as typed in a dialog, ordered/random rounds, every server down (bounded attempts, one
 * 'down', a clear reason), a server that accepts TCP and never answers CONNACK (connect timeout →
 * next server), and broker rules (lib/mqtt/broker-rules.ts). The servers here are plain TCP
 * listeners on loopback: one that closes every connection, one that never says a word.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server, type Socket } from 'node:net';
import { MqttConnection, type MqttConnectionOptions } from '../../lib/mqtt/connection';
import { ServerRotation, parseServerList, serverUrl } from '../../lib/mqtt/server-list';
import { BROKER_RULES, qosRefusal, reasonText, topicRefusal } from '../../lib/mqtt/broker-rules';

interface Listener {
  server: Server;
  port: number;
  connections: number;
  sockets: Set<Socket>;
}

/** A TCP listener on loopback: 'close' ends every connection at once, 'silent' accepts and says nothing. */
async function listener(kind: 'close' | 'silent'): Promise<Listener> {
  const result: Listener = { server: createServer(), port: 0, connections: 0, sockets: new Set() };
  result.server.on('connection', (socket) => {
    result.connections++;
    if (kind === 'close') socket.destroy();
    else {
      result.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => result.sockets.delete(socket));
    }
  });
  await new Promise<void>((resolve) => result.server.listen(0, '127.0.0.1', resolve));
  const address = result.server.address();
  result.port = typeof address === 'object' && address ? address.port : 0;
  return result;
}

async function closeListener(l: Listener): Promise<void> {
  for (const socket of l.sockets) socket.destroy();
  await new Promise((resolve) => l.server.close(resolve));
}

function options(servers: { host: string; port: number }[], overrides: Partial<MqttConnectionOptions> = {}): MqttConnectionOptions {
  return {
    host: servers[0].host, port: servers[0].port, servers, protocolVersion: 4, clientId: 'server-list-test',
    keepaliveSec: 10, clean: true, connectTimeoutMs: 300, backoff: { initialMs: 200, maxMs: 800, jitter: 0 }, ...overrides,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('MQTT server lists', () => {
  describe('parseServerList', () => {
    it('reads host, host:port, [ipv6]:port and mqtt:// URLs, one per line or comma', () => {
      assert.deepEqual(parseServerList('a.example\nb:1884, mqtt://c:1885\n[::1]:1886\n\n', 1883, false), [
        { host: 'a.example', port: 1883 }, { host: 'b', port: 1884 }, { host: 'c', port: 1885 }, { host: '::1', port: 1886 },
      ]);
      assert.equal(serverUrl({ host: '::1', port: 1886 }, true), 'mqtts://[::1]:1886');
    });

    it('names the bad entry: a port out of range, a path, a scheme that contradicts the TLS setting', () => {
      assert.throws(() => parseServerList('ok:1883\nbad:70000', 1883, false), /server "bad:70000" has no valid port/);
      assert.throws(() => parseServerList('host:1883/path', 1883, false), /server "host:1883\/path" is not host\[:port\]/);
      assert.throws(() => parseServerList('mqtts://secure:8883', 1883, false), /says mqtts:\/\/ but TLS is off/);
      assert.deepEqual(parseServerList('mqtts://secure', 8883, true), [{ host: 'secure', port: 8883 }]);
    });
  });

  describe('ServerRotation', () => {
    const servers = [1, 2, 3, 4].map((port) => ({ host: 'h', port }));

    it('ordered: the configured order, round after round', () => {
      const rotation = new ServerRotation(servers, 'ordered');
      const seen = [rotation.current.port];
      for (let i = 0; i < 7; i++) seen.push(rotation.advance().port);
      assert.deepEqual(seen, [1, 2, 3, 4, 1, 2, 3, 4]);
    });

    it('random: every server once per round, a new order per round, never the failed server twice in a row', () => {
      let seed = 7;
      const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      const rotation = new ServerRotation(servers, 'random', random);
      const seen = [rotation.current.port];
      for (let i = 0; i < 39; i++) seen.push(rotation.advance().port);
      const rounds: number[][] = [];
      for (let i = 0; i < seen.length; i += 4) rounds.push(seen.slice(i, i + 4));
      for (const round of rounds) assert.deepEqual([...round].sort(), [1, 2, 3, 4]);
      assert.ok(new Set(rounds.map((round) => round.join())).size > 1, 'the order changes between rounds');
      for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1]);
    });
  });

  describe('MqttConnection with a server list', () => {
    const listeners: Listener[] = [];
    const connections: MqttConnection[] = [];
    afterEach(async () => {
      await Promise.all(connections.splice(0).map((c) => c.close()));
      await Promise.all(listeners.splice(0).map(closeListener));
    });

    it('every server down: tries each once per round, then backs off (bounded), one "down", a reason', async () => {
      const down = await Promise.all([listener('close'), listener('close'), listener('close')]);
      listeners.push(...down);
      const connection = new MqttConnection(options(down.map((l) => ({ host: '127.0.0.1', port: l.port }))));
      connections.push(connection);
      const downs: string[] = [];
      const tried: string[] = [];
      connection.on('down', (reason) => downs.push(reason));
      connection.on('state', (state) => { if (state === 'connecting') tried.push(connection.description); });
      connection.start();
      await sleep(1900);
      // Rounds of 3 immediate attempts separated by 200, 400, 800 ms (jitter 0): 4 rounds in 1.9 s at most.
      const attempts = down.reduce((sum, l) => sum + l.connections, 0);
      assert.ok(attempts >= 9 && attempts <= 12, `attempts ${attempts}`);
      for (const l of down) assert.ok(l.connections >= 3, 'every server was tried in every round');
      assert.deepEqual(tried.slice(0, 6), [...down, ...down].map((l) => `mqtt://127.0.0.1:${l.port}`));
      assert.equal(downs.length, 1);
      assert.equal(connection.state, 'backoff');
    });

    it('a server that accepts TCP and never answers CONNACK: connect timeout, then the next server', async () => {
      const silent = await listener('silent');
      const refusing = await listener('close');
      listeners.push(silent, refusing);
      const connection = new MqttConnection(options([{ host: '127.0.0.1', port: silent.port }, { host: '127.0.0.1', port: refusing.port }]));
      connections.push(connection);
      const details: string[] = [];
      connection.on('state', (state, detail) => { if (state === 'backoff' && detail !== undefined) details.push(detail); });
      const started = Date.now();
      connection.start();
      while (refusing.connections === 0 && Date.now() - started < 3000) await sleep(10);
      assert.equal(refusing.connections, 1, 'moved on to the second server');
      assert.ok(Date.now() - started >= 250, 'only after the 300 ms connect timeout');
      assert.match(details[0], /connack timeout/);
    });
  });

  describe('broker rules', () => {
    it('NATS: "." and space refused in topics, QoS 2 refused; the standard allows both', () => {
      assert.equal(topicRefusal(BROKER_RULES.nats, 'spBv1.0/G/NBIRTH/E'), 'NATS does not allow "." and space in MQTT topics: "spBv1.0/G/NBIRTH/E"');
      assert.match(topicRefusal(BROKER_RULES.nats, 'plant/line 2/speed') ?? '', /line 2/);
      assert.equal(topicRefusal(BROKER_RULES.nats, 'plant/line2/speed'), undefined);
      assert.equal(topicRefusal(BROKER_RULES.standard, 'spBv1.0/G/NBIRTH/E'), undefined);
      assert.equal(qosRefusal(BROKER_RULES.nats, 2), 'NATS does not support QoS 2 (at most QoS 1)');
      assert.equal(qosRefusal(BROKER_RULES.nats, 1), undefined);
      assert.equal(reasonText(0x90), 'reason code 0x90 (Topic Name invalid)');
    });
  });
});
