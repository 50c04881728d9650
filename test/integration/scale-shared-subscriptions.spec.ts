/**
 * Consumers that scale out: MQTT 5 shared subscriptions (`$share/<group>/<filter>`, MQTT v5.0
 * §4.8.2) on Mosquitto 2, with three consumer processes (lib/mqtt/connection.ts, as uns-in uses it:
 * stable client id, QoS 1, clean start off, session expiry) splitting one stream:
 * - all up: every message handled exactly once across the group, each member gets a share;
 * - one member SIGKILLed mid-stream and started again: none lost (what the broker had sent it and
 *   not had acknowledged, and what it queued for its session, is delivered again: QoS 1);
 * - every member dead while messages are published (bad input: a group with no live member): the
 *   broker keeps them in the members' sessions; none lost once they are back.
 * Sparkplug hosts must not do this (seq is per edge node): docs/scaling.md shows partitioning by group.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, type MqttClient } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, condition: () => boolean, ms = 20000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** One consumer process: prints "ready" once subscribed, then one line per message handled. */
const MEMBER_SOURCE = `
import { MqttConnection } from ${JSON.stringify(resolve(__dirname, '../../lib/mqtt/connection.ts'))};
const [port, clientId] = process.argv.slice(2);
const connection = new MqttConnection({
  host: '127.0.0.1', port: Number(port), protocolVersion: 5, clientId, keepaliveSec: 5,
  clean: false, sessionExpirySec: 300, connectTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500, jitter: 0 },
});
connection.on('subscribed', () => process.stdout.write('ready\\n'));
connection.subscribe('$share/workers/plant/#', 1, (topic, payload) => process.stdout.write(topic + ' ' + payload.toString() + '\\n'));
connection.start();
`;

class Member {
  readonly handled: string[] = [];
  private child: ChildProcess | undefined;
  ready = false;

  constructor(readonly clientId: string, private readonly script: string, private readonly port: number) {}

  start(): void {
    this.ready = false;
    const child = spawn(process.execPath, ['--import', 'tsx', this.script, String(this.port), this.clientId], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') this.ready = true;
      else this.handled.push(line);
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}

describe('scale: MQTT 5 shared subscriptions on Mosquitto 2, three consumer processes', function () {
  this.timeout(120000);
  let broker: Mosquitto;
  let dir: string;
  let publisher: MqttClient;
  let members: Member[];
  let published = 0;

  /** Publish `count` messages, QoS 1, over 10 topics: payload = a running number. */
  async function publish(count: number, pauseEvery = 0): Promise<void> {
    for (let i = 0; i < count; i++) {
      const n = published++;
      await publisher.publishAsync(`plant/line${n % 10}/count`, String(n), { qos: 1 });
      if (pauseEvery > 0 && i % pauseEvery === 0) await sleep(5);
    }
  }

  const all = (): string[] => members.flatMap((m) => m.handled);
  const distinct = (): Set<string> => new Set(all());

  before(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), 'uns-shared-'));
    const script = join(dir, 'member.ts');
    writeFileSync(script, MEMBER_SOURCE);
    members = [1, 2, 3].map((i) => new Member(`gateway-${i}`, script, broker.port));
    for (const member of members) member.start();
    await waitFor('three members subscribed', () => members.every((m) => m.ready), 30000);
    publisher = connect(broker.url, { protocolVersion: 5, clientId: 'line-publisher' });
    await new Promise((r) => publisher.once('connect', r));
  });

  after(async () => {
    await publisher?.endAsync(true);
    for (const member of members ?? []) await member.kill();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('all members up: 1,500 messages, each handled exactly once across the group, every member gets a share', async () => {
    await publish(1500);
    await waitFor('1,500 handled', () => all().length >= 1500);
    await sleep(300);
    assert.equal(all().length, 1500, 'no message handled twice');
    assert.equal(distinct().size, 1500);
    for (const member of members) assert.ok(member.handled.length > 100, `${member.clientId} handled ${member.handled.length}`);
  });

  it('a member SIGKILLed mid-stream and restarted: none lost (QoS 1 redelivery from its persistent session)', async () => {
    const from = published;
    const stream = publish(1500, 10);
    await waitFor('the stream under way', () => published > from + 300);
    await members[1].kill();
    await stream;
    members[1].start();
    await waitFor('every message handled', () => distinct().size === published, 30000)
      .catch((error: Error) => { throw new Error(`${error.message}: ${distinct().size} of ${published}`); });
    // At least once: only what the killed member had received and not acknowledged may come twice.
    const duplicates = all().length - distinct().size;
    assert.ok(duplicates <= 20, `${duplicates} duplicates`);
  });

  it('every member dead while 300 messages are published: all delivered once they are back', async () => {
    for (const member of members) await member.kill();
    const before = distinct().size;
    await publish(300);
    for (const member of members) member.start();
    await waitFor('the 300 messages', () => distinct().size === before + 300, 30000)
      .catch((error: Error) => { throw new Error(`${error.message}: ${distinct().size - before} of 300`); });
  });
});
