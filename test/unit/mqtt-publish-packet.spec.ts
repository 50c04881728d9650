/**
 * The one-Buffer QoS 0 PUBLISH (lib/mqtt/publish-packet.ts) against mqtt-packet's own encoder, byte
 * for byte, at every Remaining Length boundary and with multi-byte UTF-8; and MqttConnection's use of
 * it against a real Mosquitto, MQTT 3.1.1 and 5.0: what subscribers receive, that QoS 0 no longer goes
 * through MQTT.js's publish() while QoS 1 still does, and that it does again while MQTT.js holds
 * publishes back (the MQTT.js internals it reads exist, so an upgrade that renames them fails here).
 */
import { strict as assert } from 'node:assert';
import { connect, type IClientPublishOptions, type MqttClient } from 'mqtt';
import * as mqttPacket from 'mqtt-packet';
import { encodeQos0Publish, MAX_TOPIC_BYTES } from '../../lib/mqtt/publish-packet';
import { MqttConnection } from '../../lib/mqtt/connection';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { until } from '../helpers/wait';

function mqttPacketBytes(topic: string, payload: string | Buffer, retain: boolean, protocolVersion: 4 | 5): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain, dup: false }, { protocolVersion });
}

describe('encodeQos0Publish: the bytes mqtt-packet writes, in one Buffer', () => {
  const topic = 'acme/plant-1/line-2/drive-7';
  // Remaining Length = 2 + topic + (1 for MQTT 5) + payload; these payload sizes put it on each side
  // of the Variable Byte Integer's 1/2, 2/3 and 3/4-byte boundaries for both versions.
  const boundaries = [127, 128, 16_383, 16_384, 2_097_151, 2_097_152];
  for (const protocolVersion of [4, 5] as const) {
    for (const remaining of boundaries) {
      it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'}: Remaining Length ${remaining}`, () => {
        const payload = 'x'.repeat(remaining - 2 - Buffer.byteLength(topic) - (protocolVersion === 5 ? 1 : 0));
        const packet = encodeQos0Publish(topic, payload, false, protocolVersion);
        assert.ok(packet.equals(mqttPacketBytes(topic, payload, false, protocolVersion)));
        const parsed = mqttPacket.parser({ protocolVersion });
        let length = -1;
        parsed.on('packet', (p) => { length = p.length ?? -1; });
        parsed.parse(packet);
        assert.equal(length, remaining);
      });
    }
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'}: retain, UTF-8 topic and payload, a Buffer payload, an empty payload`, () => {
      const cases: Array<[string, string | Buffer, boolean]> = [
        ['werk/Grün/Ölpumpe/Δp', '{"value":"€ 12,5 — ok"}', true],
        ['a', Buffer.from([0, 1, 2, 255]), false],
        ['a/b', '', true],
        ['a/b', Buffer.alloc(0), false],
      ];
      for (const [t, payload, retain] of cases) {
        assert.ok(encodeQos0Publish(t, payload, retain, protocolVersion).equals(mqttPacketBytes(t, payload, retain, protocolVersion)), `${t} ${String(payload)}`);
      }
    });
  }
  it('refuses a topic longer than an MQTT string can be', () => {
    assert.throws(() => encodeQos0Publish('t'.repeat(MAX_TOPIC_BYTES + 1), '1', false, 4), /topic of 65536 bytes: a topic name is at most 65535 bytes/);
    assert.ok(encodeQos0Publish('t'.repeat(MAX_TOPIC_BYTES), '1', false, 4).equals(mqttPacketBytes('t'.repeat(MAX_TOPIC_BYTES), '1', false, 4)));
  });
});

describe('MqttConnection: QoS 0 publishes as one Buffer each (Mosquitto)', function () {
  this.timeout(20_000);
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker.stop();
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'}: subscribers get every message as published; QoS 0 bypasses MQTT.js publish(), QoS 1 and publishes MQTT.js holds back do not`, async () => {
      const received: Array<[string, string, boolean]> = [];
      const subscriber = connect({ host: '127.0.0.1', port: broker.port, protocolVersion, clientId: `raw-sub-${protocolVersion}-${Date.now()}`, reconnectPeriod: 0 });
      subscriber.on('message', (topic, payload, packet) => received.push([topic, payload.toString(), packet.retain]));
      await new Promise<void>((resolve, reject) => {
        subscriber.once('error', reject);
        subscriber.on('connect', () => subscriber.subscribe(`raw/v${protocolVersion}/#`, { qos: 1 }, (error) => (error ? reject(error) : resolve())));
      });
      const connection = new MqttConnection({
        host: '127.0.0.1', port: broker.port, protocolVersion, clientId: `raw-pub-${protocolVersion}-${Date.now()}`, keepaliveSec: 30, clean: true,
        connectTimeoutMs: 2000, backoff: { initialMs: 20, maxMs: 80, jitter: 0 },
      });
      try {
        connection.start();
        await until('the connection', () => connection.connected, 10_000);
        const client = (connection as unknown as { client: MqttClient }).client;
        const viaMqttJs: Array<[string, IClientPublishOptions]> = [];
        const publish = client.publish.bind(client) as (...args: unknown[]) => MqttClient;
        (client as unknown as { publish: (...args: unknown[]) => MqttClient }).publish = (...args: unknown[]) => {
          viaMqttJs.push([args[0] as string, args[2] as IClientPublishOptions]);
          return publish(...args);
        };
        connection.publish(`raw/v${protocolVersion}/a/Grün`, '{"value":"€"}', 0, false, () => undefined);
        connection.publish(`raw/v${protocolVersion}/b`, Buffer.from('binary\u0000'), 0, true, () => undefined);
        connection.publish(`raw/v${protocolVersion}/c`, '{"value":1}', 1, false, () => undefined);
        assert.deepEqual(viaMqttJs.map(([topic]) => topic), [`raw/v${protocolVersion}/c`], 'publishes that went through MQTT.js publish()');
        // While MQTT.js resends its store after a connect it queues new publishes; one written past
        // them would overtake them, so QoS 0 goes through MQTT.js then, and leaves after them.
        const internals = client as unknown as { _storeProcessing: unknown; _storeProcessingQueue: unknown; _invokeAllStoreProcessingQueue(): void };
        assert.equal(internals._storeProcessing, false, 'MQTT.js MqttClient._storeProcessing (read by lib/mqtt/connection.ts)');
        assert.ok(Array.isArray(internals._storeProcessingQueue), 'MQTT.js MqttClient._storeProcessingQueue (read by lib/mqtt/connection.ts)');
        internals._storeProcessing = true;
        connection.publish(`raw/v${protocolVersion}/d`, '{"value":2}', 0, false, () => undefined);
        assert.equal((internals._storeProcessingQueue as unknown[]).length, 1, 'MQTT.js queued the publish it holds back');
        internals._storeProcessing = false;
        connection.publish(`raw/v${protocolVersion}/e`, '{"value":3}', 0, false, () => undefined);
        internals._invokeAllStoreProcessingQueue(); // what MQTT.js does when its store is resent
        connection.publish(`raw/v${protocolVersion}/f`, '{"value":4}', 0, false, () => undefined);
        assert.deepEqual(viaMqttJs.map(([topic]) => topic), [`raw/v${protocolVersion}/c`, `raw/v${protocolVersion}/d`, `raw/v${protocolVersion}/e`]);
        await until('the messages', () => received.length === 6, 10_000).catch((error: Error) => { throw new Error(`${error.message}: ${JSON.stringify(received)}`); });
        assert.deepEqual(received, [
          // A retained message reaches a subscription that exists already with RETAIN 0 (v3.1.1 §3.3.1.3, v5.0 §3.3.1.3).
          [`raw/v${protocolVersion}/a/Grün`, '{"value":"€"}', false], [`raw/v${protocolVersion}/b`, 'binary\u0000', false], [`raw/v${protocolVersion}/c`, '{"value":1}', false],
          [`raw/v${protocolVersion}/d`, '{"value":2}', false], [`raw/v${protocolVersion}/e`, '{"value":3}', false], [`raw/v${protocolVersion}/f`, '{"value":4}', false],
        ]);
      } finally {
        connection.close();
        await new Promise<void>((resolve) => subscriber.end(true, {}, () => resolve()));
      }
    });
  }
});
