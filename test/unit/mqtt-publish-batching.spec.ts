/**
 * MqttConnection puts every PUBLISH of one event-loop turn on the socket in one write, against a
 * real Mosquitto: Node-RED delivers each tag batch in its own setImmediate callback, so the batches
 * of one turn used to leave in one write each (mqtt-packet uncorks on the next tick). Order, QoS 1
 * acknowledgements and a connection lost before the turn ends (the corked QoS 1 packets are handed
 * out for store-and-forward) are checked with it.
 */
import { strict as assert } from 'node:assert';
import { connect, type IPublishPacket, type MqttClient } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { MqttConnection, type QoS } from '../../lib/mqtt/connection';

const BATCHES = 3;
const METRICS = 5;

function waitFor(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 5);
    };
    check();
  });
}

/** The socket under the connection's MQTT.js client, with a count of the writes that reach it. */
function countWrites(connection: MqttConnection): { writes: number } {
  const stream = (connection as unknown as { client: MqttClient }).client.stream as unknown as {
    _write: (...args: unknown[]) => void;
    _writev: (...args: unknown[]) => void;
  };
  const counted = { writes: 0 };
  const write = stream._write;
  const writev = stream._writev;
  stream._write = function (this: unknown, ...args: unknown[]) { counted.writes++; return write.apply(this, args); };
  stream._writev = function (this: unknown, ...args: unknown[]) { counted.writes++; return writev.apply(this, args); };
  return counted;
}

/** BATCHES tag batches of METRICS publishes, each batch in its own setImmediate callback of one turn. */
function publishBatchesInOneTurn(connection: MqttConnection, qos: QoS, acked: string[]): Promise<void> {
  return new Promise((resolve) => {
    for (let b = 0; b < BATCHES; b++) {
      setImmediate(() => {
        for (let m = 0; m < METRICS; m++) {
          const topic = `batching/q${qos}/a${b}/m${m}`;
          connection.publish(topic, `{"value":${b * METRICS + m}}`, qos, false, (error) => {
            if (error === undefined || error === null) acked.push(topic);
          });
        }
        if (b === BATCHES - 1) resolve();
      });
    }
  });
}

describe('MqttConnection: the publishes of one event-loop turn in one socket write (Mosquitto)', function () {
  this.timeout(20_000);
  let broker: Mosquitto;
  let connection: MqttConnection | undefined;
  let subscriber: MqttClient | undefined;
  const received: Array<[string, string]> = [];

  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker.stop();
  });
  beforeEach(async () => {
    received.length = 0;
    subscriber = connect({ host: '127.0.0.1', port: broker.port, clientId: `batching-sub-${Date.now()}`, reconnectPeriod: 0 });
    subscriber.on('message', (topic, payload) => received.push([topic, payload.toString()]));
    await new Promise<void>((resolve, reject) => {
      subscriber!.once('error', reject);
      subscriber!.on('connect', () => subscriber!.subscribe('batching/#', { qos: 1 }, (error) => (error ? reject(error) : resolve())));
    });
    connection = new MqttConnection({
      host: '127.0.0.1', port: broker.port, protocolVersion: 4, clientId: `batching-pub-${Date.now()}`, keepaliveSec: 30, clean: true,
      connectTimeoutMs: 2000, backoff: { initialMs: 20, maxMs: 80, jitter: 0 },
    });
    connection.start();
    await waitFor('the connection', () => connection!.connected);
  });
  afterEach(async () => {
    connection?.close();
    connection = undefined;
    await new Promise<void>((resolve) => (subscriber ? subscriber.end(true, {}, () => resolve()) : resolve()));
  });

  for (const qos of [0, 1] as const) {
    it(`QoS ${qos}: ${BATCHES} batches handled in one turn leave in one write, in order${qos === 1 ? ', each acknowledged' : ''}`, async () => {
      const writes = countWrites(connection!);
      const acked: string[] = [];
      await publishBatchesInOneTurn(connection!, qos, acked);
      await waitFor('every message at the subscriber', () => received.length === BATCHES * METRICS);
      assert.equal(writes.writes, 1, 'socket writes for the turn');
      const expected = Array.from({ length: BATCHES * METRICS }, (_, i): [string, string] => [`batching/q${qos}/a${Math.floor(i / METRICS)}/m${i % METRICS}`, `{"value":${i}}`]);
      assert.deepEqual(received, expected);
      if (qos === 1) {
        await waitFor('every PUBACK', () => acked.length === BATCHES * METRICS);
        assert.deepEqual(acked, expected.map(([topic]) => topic));
      }
    });
  }

  it('QoS 1 publishes still held in the turn when the socket is lost are handed out as lost, oldest first', async () => {
    const lost: IPublishPacket[] = [];
    connection!.on('lost', (packets) => lost.push(...packets));
    for (let m = 0; m < METRICS; m++) connection!.publish(`batching/lost/m${m}`, String(m), 1, false, () => undefined);
    (connection as unknown as { client: MqttClient }).client.stream.destroy();
    await waitFor('the lost publishes', () => lost.length === METRICS);
    assert.deepEqual(lost.map((packet) => packet.topic), Array.from({ length: METRICS }, (_, m) => `batching/lost/m${m}`));
  });
});
