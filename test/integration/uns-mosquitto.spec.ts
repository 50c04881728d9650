/**
 * The UNS nodes against a real Mosquitto: TLS with a CA and a client certificate (certificates made
 * with openssl in a temp dir, the client key encrypted with a passphrase given as a credential),
 * refusal of a broker whose certificate does not verify (no plaintext fallback), and MQTT 5 shared
 * subscriptions splitting messages between two uns-in nodes.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type IClientOptions } from 'mqtt';
import unsNodes = require('../../nodes/uns/uns');
import { MqttConnection } from '../../lib/mqtt/connection';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { Mosquitto } from '../helpers/mosquitto';
import { helper } from '../helpers/node-red-runtime';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, condition: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate (key with passphrase). */
function makeCertificates(dir: string): Record<string, string> {
  const openssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }); };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const ca of ['ca', 'other-ca']) openssl('req', '-x509', ...ec, '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=uns-test-${ca}`);
  openssl('req', ...ec, '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  openssl('req', ...ec, '-keyout', 'client.key', '-passout', 'pass:key-pass-789', '-out', 'client.csr', '-subj', '/CN=gateway-1');
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2');
  const path = (name: string): string => join(dir, name);
  return { ca: path('ca.crt'), otherCa: path('other-ca.crt'), serverCert: path('server.crt'), serverKey: path('server.key'), clientCert: path('client.crt'), clientKey: path('client.key') };
}

const asset = 'acme/plant1/press/line2/cell1/drive7';

describe('UNS nodes against a real Mosquitto (TLS, MQTT 5 shared subscriptions)', function () {
  this.timeout(30000);
  let dir: string;
  let broker: Mosquitto | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-tls-'));
  });

  afterEach(async () => {
    await helper.unload();
    await broker?.dispose();
    broker = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('TLS with a client certificate: uns-out publishes over mqtts, the key passphrase comes from the credentials', async () => {
    const certs = makeCertificates(dir);
    broker = await Mosquitto.start({ tls: { caFile: certs.ca, certFile: certs.serverCert, keyFile: certs.serverKey, requireCertificate: true } });
    // MQTT.js hands TLS options (passphrase included) to tls.connect(); its type lacks `passphrase`.
    const subscriberOptions: IClientOptions & { passphrase: string } = { host: '127.0.0.1', port: broker.port, protocol: 'mqtts',
      ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey), passphrase: 'key-pass-789', reconnectPeriod: 0 };
    const sub = connect(subscriberOptions);
    const received: string[] = [];
    sub.on('message', (topic, payload) => received.push(`${topic} ${payload}`));
    await new Promise((r) => sub.once('connect', r));
    await sub.subscribeAsync('#', { qos: 1 });
    try {
      await helper.load(unsNodes, [
        { id: 'b1', type: 'uns-broker', host: '127.0.0.1', port: broker.port, protocolVersion: '5', usetls: true,
          tlsCa: certs.ca, tlsCert: certs.clientCert, tlsKey: certs.clientKey, tlsRejectUnauthorized: true, storeEnabled: false },
        { id: 'out', type: 'uns-out', broker: 'b1', wires: [] },
      ], { b1: { passphrase: 'key-pass-789' } });
      const statuses: Array<{ text?: string }> = [];
      helper.getNode('out').on('call:status', (call: { args: [{ text?: string }] }) => statuses.push(call.args[0]));
      await waitFor('connected over TLS', () => statuses.some((s) => s.text === 'uns.status.connected'));
      helper.getNode('out').receive({ topic: asset, payload: { Current: 12.5 }, timestamp: 1718000000000 });
      await waitFor('the message over TLS', () => received.length === 1);
      assert.equal(received[0], `${asset}/Current {"value":12.5,"timestamp":1718000000000,"quality":"good"}`);
    } finally {
      await sub.endAsync(true);
    }
  });

  it('refuses a broker whose certificate does not verify, and a login without client certificate', async () => {
    const certs = makeCertificates(dir);
    broker = await Mosquitto.start({ tls: { caFile: certs.ca, certFile: certs.serverCert, keyFile: certs.serverKey, requireCertificate: true } });
    const attempt = async (tls: object): Promise<string> => {
      const connection = new MqttConnection({
        host: '127.0.0.1', port: broker!.port, tls, protocolVersion: 4, clientId: 'tls-probe', keepaliveSec: 10, clean: true,
        connectTimeoutMs: 3000, backoff: { initialMs: 60000, maxMs: 60000, jitter: 0 },
      });
      const down = new Promise<string>((resolve) => connection.once('down', resolve));
      let connected = false;
      connection.once('connected', () => { connected = true; });
      connection.start();
      const reason = await down;
      await connection.close();
      assert.equal(connected, false);
      return reason;
    };
    const wrongCa = await attempt({ ca: readFileSync(certs.otherCa), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey), passphrase: 'key-pass-789' });
    assert.match(wrongCa, /certificate|self.signed/i);
    const noClientCert = await attempt({ ca: readFileSync(certs.ca) });
    assert.ok(noClientCert.length > 0);
  });

  it('MQTT 5: uns-in sets msg.principal from its own connection; a publisher\'s user properties are no identity', async () => {
    broker = await Mosquitto.start();
    await helper.load(unsNodes, [
      { id: 'b1', type: 'uns-broker', host: '127.0.0.1', port: broker.port, protocolVersion: '5', clientId: 'gw-line2', storeEnabled: false },
      { id: 'in', type: 'uns-in', broker: 'b1', topics: `${asset}/#`, wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ], { b1: { user: 'gateway' } });
    const batches: TagBatch[] = [];
    helper.getNode('h1').on('input', (msg: TagBatch) => batches.push(msg));
    const publisher = connect({ host: '127.0.0.1', port: broker.port, protocolVersion: 5, clientId: 'attacker', reconnectPeriod: 0 });
    try {
      await new Promise((r) => publisher.once('connect', r));
      // Retained: whenever uns-in's subscription is in place, it gets the message.
      await publisher.publishAsync(`${asset}/Setpoint`, '{"value":1500}', {
        qos: 1, retain: true, properties: { userProperties: { principal: 'admin', user: 'admin', clientId: 'scada' } },
      });
      await waitFor('the batch', () => batches.length === 1);
      assert.deepEqual(batches[0].payload, { Setpoint: 1500 });
      assert.deepEqual(batches[0].principal, { via: 'mqtt', id: 'mqtt:gw-line2 (user gateway)', clientId: 'gw-line2', user: 'gateway' });
    } finally {
      await publisher.endAsync(true);
    }
  });

  it('MQTT 5 shared subscription: two uns-in nodes in one $share group split the messages, none twice', async () => {
    broker = await Mosquitto.start();
    const brokerNode = (id: string): object => ({ id, type: 'uns-broker', host: '127.0.0.1', port: broker!.port, protocolVersion: '5', storeEnabled: false });
    await helper.load(unsNodes, [
      brokerNode('b1'), brokerNode('b2'), brokerNode('b3'),
      { id: 'in1', type: 'uns-in', broker: 'b1', topics: 'uns/#', shareGroup: 'gateways', topicPrefix: 'uns', wires: [['h1']] },
      { id: 'in2', type: 'uns-in', broker: 'b2', topics: 'uns/#', shareGroup: 'gateways', topicPrefix: 'uns', wires: [['h2']] },
      { id: 'out', type: 'uns-out', broker: 'b3', topicPrefix: 'uns', retain: false, wires: [] },
      { id: 'h1', type: 'helper' }, { id: 'h2', type: 'helper' },
    ]);
    const got: Record<string, string[]> = { h1: [], h2: [] };
    for (const id of ['h1', 'h2']) helper.getNode(id).on('input', (msg: TagBatch) => got[id].push(msg.topic));
    const outStatus: Array<{ text?: string }> = [];
    helper.getNode('out').on('call:status', (call: { args: [{ text?: string }] }) => outStatus.push(call.args[0]));
    await waitFor('uns-out connected', () => outStatus.some((s) => s.text === 'uns.status.connected'));
    await sleep(300); // both subscriptions in place
    for (let i = 0; i < 20; i++) helper.getNode('out').receive({ topic: `acme/plant1/press/line2/cell1/drive${i}`, payload: { Speed: i } });
    await waitFor('20 batches in total', () => got.h1.length + got.h2.length >= 20);
    await sleep(200);
    const all = [...got.h1, ...got.h2].sort();
    assert.equal(all.length, 20, 'no message delivered twice');
    assert.equal(new Set(all).size, 20);
    assert.ok(got.h1.length > 0 && got.h2.length > 0, `split ${got.h1.length}/${got.h2.length}`);
  });
});
