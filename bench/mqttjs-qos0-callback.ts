/**
 * Why lib/mqtt publishes QoS 0 without a callback: MQTT.js 5.16 adds a once('drain') listener for
 * every QoS 0 publish that has a callback while the socket is back-pressured, and removing them is
 * quadratic. This measures plain MQTT.js against a real Mosquitto: N QoS 0 publishes with a callback
 * vs without, CPU µs per message until a QoS 1 sentinel published after them is acknowledged (so
 * both variants have written everything). Alternating order, medians.
 *
 *   npx tsx bench/mqttjs-qos0-callback.ts [--messages 100000] [--runs 5]
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startMosquitto } from '../test/helpers/mosquitto';
import { summarize } from './lib/stats';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } } });
const MESSAGES = Number(values.messages);
const RUNS = Number(values.runs);
const PAYLOAD = JSON.stringify({ value: 1480.25, timestamp: Date.now(), quality: 'good', unit: 'rpm' });

async function publishAll(client: mqtt.MqttClient, withCallback: boolean): Promise<number> {
  const noop = (): void => undefined;
  const cpu = process.cpuUsage();
  for (let i = 0; i < MESSAGES; i++) {
    const topic = `bench/mqttjs/${i % 5000}`;
    if (withCallback) client.publish(topic, PAYLOAD, { qos: 0 }, noop);
    else client.publish(topic, PAYLOAD, { qos: 0 });
  }
  await client.publishAsync('bench/mqttjs/sentinel', 'done', { qos: 1 });
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / MESSAGES;
}

async function main(): Promise<void> {
  const broker = await startMosquitto();
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  const perMessage: Record<'callback' | 'none', number[]> = { callback: [], none: [] };
  try {
    await publishAll(client, false); // warm-up
    for (let run = 0; run < RUNS; run++) {
      const order: Array<'callback' | 'none'> = run % 2 === 0 ? ['callback', 'none'] : ['none', 'callback'];
      for (const variant of order) perMessage[variant].push(await publishAll(client, variant === 'callback'));
    }
  } finally {
    await client.endAsync();
    await broker.stop();
  }
  for (const variant of ['callback', 'none'] as const) {
    const s = summarize(perMessage[variant]);
    console.log(`QoS 0 ${variant === 'callback' ? 'with a callback' : 'without a callback'}: ${s.median.toFixed(1)} µs CPU per message (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)}), ${MESSAGES} messages × ${RUNS} runs`);
  }
}

main().catch((error) => { console.error(error); process.exit(1); });
