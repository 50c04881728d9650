/**
 * OPC UA PubSub JSON through a real Mosquitto: uns-pubsub-out → broker → uns-pubsub-in (Node-RED
 * runtime, node-red-node-test-helper) gives back identical tag batches; every message on the wire
 * validates against the schemas in docs/; the Will carries PubSubState Error when the publisher
 * dies, a graceful close says Disabled.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import mqtt from 'mqtt';
import pubsubNodes = require('../../nodes/pubsub/pubsub');
import { PubSubConnection } from '../../lib/opcua/pubsub-mqtt';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { Mosquitto } from '../helpers/mosquitto';
import { helper } from '../helpers/node-red-runtime';

const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });
ajv.addFormat('date-time', { type: 'string', validate: (v: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)) });
const schemas: Record<string, ReturnType<typeof ajv.compile>> = Object.fromEntries(['data', 'metadata', 'status'].map((n) => [
  `ua-${n}`, ajv.compile(JSON.parse(readFileSync(join(__dirname, '../../docs', `pubsub-${n}.schema.json`), 'utf8'))),
]));

const T = Date.now() - 60_000;
function batches(): TagBatch[] {
  return [
    {
      topic: 'acme/plant1/press/line2/cell1/drive7',
      payload: { current: 12.5, running: true, mode: 'auto', energy: 9223372036854775807n, torque: -12, 'Motor/Temp': 41.5, fault: null },
      meta: {
        current: { timestamp: T, unit: 'A', type: 'Float' },
        running: { timestamp: T, type: 'Boolean' },
        mode: { timestamp: T, type: 'String' },
        energy: { timestamp: T, type: 'Int64', unit: 'Wh' },
        torque: { timestamp: T + 1, type: 'Int16', quality: 'uncertain', reason: 'Uncertain' },
        'Motor/Temp': { timestamp: T + 2, type: 'Double', unit: 'degC', quality: 'bad', reason: 'BadNoCommunication' },
        fault: { timestamp: T, type: 'UInt16', quality: 'bad', reason: 'BadNoCommunication' },
      },
      timestamp: T,
    },
    {
      topic: 'acme/plant1/press/line2/cell1/drive8',
      payload: { speed: 1450, stamp: T - 1000, raw: 'AAEC' },
      meta: { speed: { timestamp: T + 5, type: 'UInt32', unit: 'rpm' }, stamp: { timestamp: T + 5, type: 'DateTime' }, raw: { timestamp: T + 5, type: 'Bytes' } },
      timestamp: T + 5,
    },
  ];
}

describe('OPC UA PubSub JSON through Mosquitto', function () {
  this.timeout(30_000);
  let broker: Mosquitto;
  let watcher: mqtt.MqttClient;
  const wire: { topic: string; payload: string; retain: boolean }[] = [];

  before(async () => {
    broker = await Mosquitto.start();
    watcher = await mqtt.connectAsync(broker.url);
    watcher.on('message', (topic, payload, packet) => wire.push({ topic, payload: payload.toString(), retain: packet.retain }));
    await watcher.subscribeAsync('opcua/#');
    await new Promise<void>((r) => helper.startServer(() => r()));
  });
  after(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    await watcher?.endAsync();
    await broker?.stop();
  });

  it('uns-pubsub-out → Mosquitto → uns-pubsub-in: identical tag batches; every message validates against its schema', async () => {
    await helper.load(pubsubNodes, [
      { id: 'conn', type: 'uns-pubsub-connection', publisherId: 'gw-line2', writerGroup: 'uns', prefix: 'opcua', keyFrameCount: 10, keepAlive: 10, host: '127.0.0.1', port: broker.port, protocolVersion: '5', clientId: '', keepalive: 60, usetls: false, reconnectMin: 0.2, reconnectMax: 1 },
      { id: 'out', type: 'uns-pubsub-out', connection: 'conn' },
      { id: 'in', type: 'uns-pubsub-in', connection: 'conn', publisherFilter: 'gw-line2', maxFields: 10000, maxKiB: 1024, wires: [['sink']] },
      { id: 'sink', type: 'helper' },
    ]);
    const received: TagBatch[] = [];
    const twoBack = new Promise<void>((resolve) => helper.getNode('sink').on('input', (msg) => {
      const { _msgid: _id, principal, ...batch } = msg as TagBatch & { _msgid: string; principal: { via: string } };
      assert.equal(principal.via, 'mqtt');
      received.push(batch as TagBatch);
      if (received.length === 2) resolve();
    }));
    // Wait until the connection is up (its status message is on the wire), then publish.
    while (!wire.some((m) => m.topic === 'opcua/json/status/gw-line2')) await new Promise((r) => setTimeout(r, 20));
    for (const b of batches()) helper.getNode('out').receive(b);
    await twoBack;
    assert.deepEqual(received, batches());
    const kinds = new Set<string>();
    for (const m of wire) {
      const json = JSON.parse(m.payload) as { MessageType: string };
      kinds.add(json.MessageType);
      const validate = schemas[json.MessageType];
      assert.ok(validate(json), `${m.topic}: ${JSON.stringify(validate.errors)}`);
    }
    assert.deepEqual([...kinds].sort(), ['ua-data', 'ua-metadata', 'ua-status']);
    const metadata = wire.filter((m) => m.topic.startsWith('opcua/json/metadata/gw-line2/uns/'));
    assert.deepEqual(metadata.map((m) => m.topic).sort(), ['opcua/json/metadata/gw-line2/uns/acme.plant1.press.line2.cell1.drive7', 'opcua/json/metadata/gw-line2/uns/acme.plant1.press.line2.cell1.drive8']);
    await helper.unload();
  });

  it('a subscriber that joins late gets the retained metadata and decodes the next data', async () => {
    const publisher = new PubSubConnection({
      mqtt: { host: '127.0.0.1', port: broker.port, protocolVersion: 5, clientId: 'late-pub', keepaliveSec: 60, connectTimeoutMs: 5000, backoff: { initialMs: 200, maxMs: 1000, jitter: 0 } },
      publisher: { publisherId: 'late', writerGroupName: 'uns' },
    });
    publisher.start();
    while (!publisher.connection.connected) await new Promise((r) => setTimeout(r, 20));
    publisher.publish({ topic: 'a/b/c/d/e/f', payload: { x: 1 }, meta: { x: { type: 'Int32', timestamp: T } } });
    // The broker has the retained metadata once the watcher saw it.
    while (!wire.some((m) => m.topic === 'opcua/json/metadata/late/uns/a.b.c.d.e.f')) await new Promise((r) => setTimeout(r, 20));
    const subscriber = new PubSubConnection({
      mqtt: { host: '127.0.0.1', port: broker.port, protocolVersion: 5, clientId: 'late-sub', keepaliveSec: 60, connectTimeoutMs: 5000, backoff: { initialMs: 200, maxMs: 1000, jitter: 0 } },
      publisher: { publisherId: 'late-sub', writerGroupName: 'uns' },
    });
    const got = new Promise<TagBatch>((resolve) => subscriber.subscribe(['opcua/json/metadata/late/#', 'opcua/json/data/late/#'], resolve, (p) => assert.fail(p)));
    let granted = 0;
    const subscribed = new Promise<void>((resolve) => subscriber.connection.on('subscribed', () => { if (++granted === 2) resolve(); }));
    subscriber.start();
    await subscribed;
    publisher.publish({ topic: 'a/b/c/d/e/f', payload: { x: 2 }, meta: { x: { timestamp: T + 1 } } });
    const { timestamp, ...batch } = await got;
    assert.equal(typeof timestamp, 'number');
    assert.deepEqual(batch, { topic: 'a/b/c/d/e/f', payload: { x: 2 }, meta: { x: { timestamp: T + 1, type: 'Int32' } } });
    await publisher.close();
    await subscriber.close();
  });

  it('the Will: a publisher that dies leaves ua-status Error (retained); a graceful close says Disabled', async () => {
    const statusOf = async (publisherId: string): Promise<{ Status: number; IsCyclic: boolean }> => {
      const client = await mqtt.connectAsync(broker.url);
      const message = new Promise<{ Status: number; IsCyclic: boolean }>((resolve) => client.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
      await client.subscribeAsync(`opcua/json/status/${publisherId}`);
      const status = await message;
      await client.endAsync();
      assert.ok(schemas['ua-status'](status), JSON.stringify(schemas['ua-status'].errors));
      return status;
    };
    const make = (id: string) => new PubSubConnection({
      mqtt: { host: '127.0.0.1', port: broker.port, protocolVersion: 5, clientId: id, keepaliveSec: 60, connectTimeoutMs: 5000, backoff: { initialMs: 200, maxMs: 1000, jitter: 0 } },
      publisher: { publisherId: id, writerGroupName: 'uns' },
    });
    const dying = make('dying');
    dying.start();
    while (!dying.connection.connected) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await statusOf('dying')).Status, 2); // Operational
    await dying.close(true);
    // The broker publishes the Will (retained) after the connection ended: Error, IsCyclic false.
    let status = await statusOf('dying');
    for (let tries = 0; status.Status !== 3 && tries < 50; tries++) status = await statusOf('dying');
    assert.equal(status.Status, 3);
    assert.equal(status.IsCyclic, false);
    const leaving = make('leaving');
    leaving.start();
    while (!leaving.connection.connected) await new Promise((r) => setTimeout(r, 20));
    await leaving.close();
    assert.equal((await statusOf('leaving')).Status, 0); // Disabled
  });
});
