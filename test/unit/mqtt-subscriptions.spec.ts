/**
 * MqttConnection's subscriptions against a real broker (aedes, test/helpers/aedes.ts):
 * - a SUBSCRIBE the broker refuses (SUBACK 0x80, MQTT v3.1.1 §3.9.3) or does not answer is sent
 *   again with backoff while connected: one 'subscribeFailed' per outage of the subscription, one
 *   'subscribed' with afterFailure when it is granted at last; unsubscribe() and close() stop it;
 * - a persistent session the broker resumes (CONNACK Session Present = 1, v3.1.1 §3.2.2.2) is not
 *   sent the subscriptions it holds again (no second SUBSCRIBE, so no retained message twice,
 *   §3.8.4 [MQTT-3.8.4-3]); a filter unsubscribed meanwhile is UNSUBSCRIBEd; a new session
 *   (Session Present = 0) gets every subscription; independent brokers of a server list (no shared
 *   session) get every subscription on a failover.
 */
import { strict as assert } from 'node:assert';
import { connect, type MqttClient } from 'mqtt';
import type { Client } from 'aedes';
import { startAedes, type AedesBroker } from '../helpers/aedes';
import { MqttConnection, type MqttConnectionOptions } from '../../lib/mqtt/connection';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function options(broker: AedesBroker, overrides: Partial<MqttConnectionOptions> = {}): MqttConnectionOptions {
  return {
    host: '127.0.0.1', port: broker.port, protocolVersion: 4, clientId: 'subscriber', keepaliveSec: 30, clean: true,
    connectTimeoutMs: 2000, backoff: { initialMs: 20, maxMs: 80, jitter: 0 }, ...overrides,
  };
}

/** What a connection reports about its subscriptions. */
function record(connection: MqttConnection): { failed: string[][]; subscribed: Array<[string, number, boolean]>; connacks: boolean[] } {
  const events = { failed: [] as string[][], subscribed: [] as Array<[string, number, boolean]>, connacks: [] as boolean[] };
  connection.on('subscribeFailed', (filter, reason) => events.failed.push([filter, reason]));
  connection.on('subscribed', (filter, qos, afterFailure) => events.subscribed.push([filter, qos, afterFailure]));
  connection.on('connected', (connack) => events.connacks.push(connack.sessionPresent));
  return events;
}

/** The broker drops the connection of `clientId` (as a node that restarts its listener would). */
function kick(broker: AedesBroker, clientId: string): void {
  // aedes keeps its connected clients by id (not in its type declarations).
  (broker.broker as unknown as { clients: Record<string, Client> }).clients[clientId].close();
}

describe('MqttConnection subscriptions: retry of refused/unanswered SUBSCRIBEs, resumed sessions', () => {
  let brokers: AedesBroker[] = [];
  let connection: MqttConnection | undefined;
  let publisher: MqttClient | undefined;

  async function broker(): Promise<AedesBroker> {
    const started = await startAedes();
    brokers.push(started);
    return started;
  }
  async function publisherOn(on: AedesBroker): Promise<MqttClient> {
    publisher = connect(on.url, { clientId: 'publisher', reconnectPeriod: 0 });
    await new Promise((resolve) => publisher!.once('connect', resolve));
    return publisher;
  }

  afterEach(async () => {
    await connection?.close();
    connection = undefined;
    await publisher?.endAsync(true);
    publisher = undefined;
    for (const started of brokers) await started.close();
    brokers = [];
  });

  it('a refused subscription is retried with backoff until granted: one subscribeFailed per outage, then subscribed (afterFailure)', async () => {
    const aedes = await broker();
    let attempts = 0;
    let refuseUntil = 3;
    aedes.broker.authorizeSubscribe = (_client, subscription, callback) => {
      attempts++;
      callback(null, attempts <= refuseUntil ? null : subscription); // null: SUBACK 0x80
    };
    connection = new MqttConnection(options(aedes));
    const events = record(connection);
    const received: string[] = [];
    connection.subscribe('plant/#', 1, (_topic, payload) => received.push(payload.toString()));
    connection.start();
    await waitFor('the subscription granted', () => events.subscribed.length === 1);
    assert.equal(attempts, 4, 'three refusals, then the fourth SUBSCRIBE granted');
    assert.equal(events.failed.length, 1, `one subscribeFailed for the outage: ${JSON.stringify(events.failed)}`);
    assert.equal(events.failed[0][0], 'plant/#');
    assert.match(events.failed[0][1], /Unspecified error|0x80/);
    assert.deepEqual(events.subscribed, [['plant/#', 1, true]]);
    await (await publisherOn(aedes)).publishAsync('plant/a', 'one', { qos: 1 });
    await waitFor('the message', () => received.length === 1);

    // A new outage of the subscription (refused again on the next connection) is reported again.
    refuseUntil = attempts + 2;
    kick(aedes, 'subscriber');
    await waitFor('granted on the next connection', () => events.subscribed.length === 2);
    assert.equal(events.failed.length, 2, 'a second outage, a second subscribeFailed');
    assert.deepEqual(events.subscribed[1], ['plant/#', 1, true]);
    // And a plain grant is not an end of an outage.
    kick(aedes, 'subscriber');
    await waitFor('granted at once', () => events.subscribed.length === 3);
    assert.deepEqual(events.subscribed[2], ['plant/#', 1, false]);
    assert.equal(events.failed.length, 2);
  });

  it('a SUBSCRIBE without SUBACK within subackTimeoutMs is sent again, and the unanswered one is forgotten', async () => {
    const aedes = await broker();
    let attempts = 0;
    let held: (() => void) | undefined;
    aedes.broker.authorizeSubscribe = (_client, subscription, callback) => {
      attempts++;
      if (attempts === 1) held = () => callback(null, subscription); // answered only much later
      else callback(null, subscription);
    };
    connection = new MqttConnection(options(aedes, { subackTimeoutMs: 300 }));
    const events = record(connection);
    const received: string[] = [];
    connection.subscribe('plant/#', 1, (_topic, payload) => received.push(payload.toString()));
    connection.start();
    // Without a SUBACK timeout nothing would ever happen: the held SUBSCRIBE is released after 2 s at the latest.
    await waitFor('the first SUBSCRIBE at the broker', () => held !== undefined);
    const release = setTimeout(() => held?.(), 2000);
    try {
      await waitFor('subscribeFailed for the missing SUBACK', () => events.failed.length === 1, 1500);
    } finally {
      clearTimeout(release);
    }
    assert.deepEqual(events.failed, [['plant/#', 'no SUBACK within 0.3 s']]);
    held!(); // the broker gets to the first SUBSCRIBE at last; its SUBACK is no longer awaited
    await waitFor('the retry granted', () => events.subscribed.length === 1);
    assert.equal(attempts, 2);
    assert.deepEqual(events.subscribed, [['plant/#', 1, true]]);
    const client = connection['client'] as MqttClient;
    assert.deepEqual(Object.keys(client.outgoing), [], 'no SUBSCRIBE left waiting in MQTT.js');
    await (await publisherOn(aedes)).publishAsync('plant/a', 'one', { qos: 1 });
    await waitFor('the message', () => received.length === 1);
    assert.equal(events.failed.length, 1);
  });

  it('unsubscribe() and close() stop the retries of a refused subscription', async () => {
    const aedes = await broker();
    const attempts = new Map<string, number>();
    aedes.broker.authorizeSubscribe = (_client, subscription, callback) => {
      attempts.set(subscription.topic, (attempts.get(subscription.topic) ?? 0) + 1);
      callback(null, null);
    };
    connection = new MqttConnection(options(aedes));
    const events = record(connection);
    const handler = (): void => undefined;
    connection.subscribe('refused/a', 1, handler);
    connection.start();
    await waitFor('retries of refused/a', () => (attempts.get('refused/a') ?? 0) >= 3);
    connection.unsubscribe('refused/a', handler);
    const afterUnsubscribe = attempts.get('refused/a');
    connection.subscribe('refused/b', 1, handler);
    await waitFor('retries of refused/b', () => (attempts.get('refused/b') ?? 0) >= 3);
    await connection.close();
    const afterClose = attempts.get('refused/b');
    await sleep(500); // > 6 retry periods (maxMs 80)
    assert.equal(attempts.get('refused/a'), afterUnsubscribe, 'no SUBSCRIBE after unsubscribe()');
    assert.equal(attempts.get('refused/b'), afterClose, 'no SUBSCRIBE after close()');
    assert.deepEqual(events.failed.map(([filter]) => filter), ['refused/a', 'refused/b'], 'one subscribeFailed each');
  });

  it('a resumed persistent session (Session Present 1) is not sent its subscriptions again: no retained message twice; a filter dropped meanwhile is UNSUBSCRIBEd', async () => {
    const aedes = await broker();
    const subscribes: string[] = [];
    const unsubscribes: string[] = [];
    aedes.broker.on('subscribe', (subscriptions, client) => { if (client?.id === 'persistent') subscribes.push(...subscriptions.map((s) => s.topic)); });
    aedes.broker.on('unsubscribe', (filters, client) => { if (client?.id === 'persistent') unsubscribes.push(...filters); });
    const pub = await publisherOn(aedes);
    await pub.publishAsync('plant/state', 'retained-1', { qos: 1, retain: true });
    connection = new MqttConnection(options(aedes, { clientId: 'persistent', clean: false }));
    const events = record(connection);
    const received: string[] = [];
    const onMessage = (topic: string, payload: Buffer): void => { received.push(`${topic}=${payload.toString()}`); };
    connection.subscribe('plant/#', 1, onMessage);
    connection.subscribe('old/#', 1, onMessage);
    connection.start();
    await waitFor('the retained value', () => received.includes('plant/state=retained-1'));
    await waitFor('both granted', () => events.subscribed.length === 2);

    // The connection drops; old/# is removed while disconnected; the broker resumes the session.
    connection.once('down', () => connection!.unsubscribe('old/#', onMessage));
    kick(aedes, 'persistent');
    await waitFor('the session resumed', () => events.connacks.length === 2);
    assert.deepEqual(events.connacks, [false, true], 'Session Present on the second CONNACK');
    await pub.publishAsync('plant/live', 'live-1', { qos: 1 });
    await waitFor('a live value', () => received.includes('plant/live=live-1'));
    // A round trip through the broker after everything the reconnect sent (aedes answers in order).
    connection.subscribe('sync/#', 0, () => undefined);
    await waitFor('the sync SUBACK', () => events.subscribed.some(([filter]) => filter === 'sync/#'));
    assert.deepEqual(subscribes, ['plant/#', 'old/#', 'sync/#'], 'no second SUBSCRIBE for what the session holds');
    assert.deepEqual(received.filter((r) => r === 'plant/state=retained-1'), ['plant/state=retained-1'], 'the retained value once');
    assert.deepEqual(unsubscribes, ['old/#'], 'the filter dropped while disconnected is removed from the session');
    await pub.publishAsync('old/x', 'gone', { qos: 1 });
    await pub.publishAsync('plant/live', 'live-2', { qos: 1 });
    await waitFor('the next live value', () => received.includes('plant/live=live-2'));
    assert.ok(!received.includes('old/x=gone'));
  });

  it('a new session (Session Present 0: the broker lost it) gets every subscription again', async () => {
    let aedes = await broker();
    connection = new MqttConnection(options(aedes, { clientId: 'persistent', clean: false }));
    const events = record(connection);
    const received: string[] = [];
    connection.subscribe('plant/#', 1, (_topic, payload) => received.push(payload.toString()));
    connection.start();
    await waitFor('granted', () => events.subscribed.length === 1);
    const port = aedes.port;
    await aedes.close();
    brokers = [];
    aedes = await startAedes(port); // a new broker on the same port: no session
    brokers.push(aedes);
    await waitFor('reconnected', () => events.connacks.length === 2, 10000);
    assert.deepEqual(events.connacks, [false, false]);
    await waitFor('granted again', () => events.subscribed.length === 2);
    await (await publisherOn(aedes)).publishAsync('plant/a', 'after', { qos: 1 });
    await waitFor('the message', () => received.includes('after'));
  });

  it('independent brokers in a server list (a failover found no session): a session resumed on another server gets every subscription again', async () => {
    const a = await broker();
    const b = await broker();
    let refuseA = false;
    a.broker.authenticate = (_client, _user, _password, callback) => callback(null, !refuseA);
    const subscribesOnA: string[] = [];
    a.broker.on('subscribe', (subscriptions, client) => { if (client?.id === 'persistent') subscribesOnA.push(...subscriptions.map((s) => s.topic)); });
    connection = new MqttConnection(options(a, { clientId: 'persistent', clean: false, servers: [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }] }));
    const events = record(connection);
    const received: string[] = [];
    const onMessage = (topic: string): void => { received.push(topic); };
    connection.subscribe('x/#', 1, onMessage);
    connection.start();
    await waitFor('x/# granted on A', () => events.subscribed.length === 1);

    refuseA = true;
    kick(a, 'persistent');
    await waitFor('on B', () => events.connacks.length === 2 && connection!.description.endsWith(`:${b.port}`), 10000);
    assert.equal(events.connacks[1], false, 'B has no session');
    connection.subscribe('y/#', 1, onMessage);
    await waitFor('x/# and y/# granted on B', () => events.subscribed.length === 3);

    refuseA = false;
    kick(b, 'persistent');
    await waitFor('back on A', () => events.connacks.length === 3, 10000);
    assert.equal(events.connacks[2], true, 'A still holds its old session (x/# only)');
    await waitFor('y/# granted on A', () => subscribesOnA.includes('y/#'));
    await (await publisherOn(a)).publishAsync('y/1', 'v', { qos: 1 });
    await waitFor('a message on y/# through A', () => received.includes('y/1'));
  });
});
