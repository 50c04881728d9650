/**
 * A PubSubConnection on MQTT (OPC 10000-14 v1.05 §7.3.5; docs/pubsub.md): one MQTT connection per
 * PublisherId, whose Will is the `ua-status` message with PubSubState Error and IsCyclic false
 * (§7.3.4.7.7: the broker tells subscribers when the publisher is gone). On every connect: status
 * Operational and every writer's metadata (retained, §7.3.5.7), so a broker that lost its
 * retained messages learns them again. Data while disconnected is dropped and counted (PubSub data
 * is live data; the next key frame restores the full state). A graceful close publishes status
 * Disabled first, so a subscriber tells "switched off" from "crashed".
 */
import { EventEmitter } from 'node:events';
import { MqttConnection, type ConnectionState, type MqttConnectionOptions, type QoS } from '../mqtt/connection';
import type { TagBatch } from '../uns/tag-batch';
import { PubSubDecoder, type DecoderOptions } from './pubsub-decoder';
import { PubSubPublisher, type PubSubMessage, type PublisherOptions } from './pubsub-encoder';

export interface PubSubConnectionOptions {
  mqtt: Omit<MqttConnectionOptions, 'will' | 'clean' | 'sessionExpirySec'>;
  publisher: PublisherOptions;
  qos?: QoS;
}

interface Events {
  state: [ConnectionState, string | undefined];
  /** A value refused by the encoder (type change) — damped by the caller. */
  warning: [string];
}

export interface PubSubCounters {
  published: number;
  dropped: number;
}

export class PubSubConnection extends EventEmitter<Events> {
  readonly publisher: PubSubPublisher;
  readonly connection: MqttConnection;
  readonly counters: PubSubCounters = { published: 0, dropped: 0 };
  private readonly qos: QoS;
  private keepAliveTimer: NodeJS.Timeout | undefined;

  constructor(readonly options: PubSubConnectionOptions) {
    super();
    this.publisher = new PubSubPublisher(options.publisher);
    this.qos = options.qos ?? 1;
    const will = this.publisher.will();
    this.connection = new MqttConnection({
      ...options.mqtt,
      clean: true,
      will: () => ({ topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true }),
    });
    this.connection.on('state', (state, detail) => this.emit('state', state, detail));
    this.connection.on('connected', () => {
      this.send(this.publisher.status('Operational'));
      for (const m of this.publisher.allMetadata()) this.send(m);
    });
  }

  start(): void {
    this.connection.start();
    const keepAliveMs = this.options.publisher.keepAliveMs ?? 10_000;
    this.keepAliveTimer = setInterval(() => {
      for (const m of this.publisher.keepAlives()) this.send(m);
    }, Math.max(100, keepAliveMs / 2));
  }

  private send(message: PubSubMessage): boolean {
    if (!this.connection.connected) {
      this.counters.dropped++;
      return false;
    }
    this.connection.publish(message.topic, message.payload, this.qos, message.retain, () => undefined);
    this.counters.published++;
    return true;
  }

  /** Publish a (validated) tag batch; false when it was dropped (not connected). */
  publish(batch: TagBatch): boolean {
    const { messages, warnings } = this.publisher.publish(batch);
    for (const w of warnings) this.emit('warning', w);
    let all = true;
    for (const m of messages) all = this.send(m) && all;
    return all;
  }

  /**
   * Subscribe to PubSub JSON under `filters` (data and metadata topics: one decoder for both, so
   * the metadata names the data's fields); each decoded tag batch or refusal goes to the callbacks.
   * Returns the unsubscribe function.
   */
  subscribe(filters: readonly string[], onBatch: (batch: TagBatch) => void, onProblem: (problem: string, topic: string) => void, limits: DecoderOptions = {}): () => void {
    const decoder = new PubSubDecoder(limits);
    const handler = (topic: string, payload: Buffer) => {
      const { batches, problems } = decoder.decode(payload);
      for (const p of problems) onProblem(p, topic);
      for (const b of batches) onBatch(b);
    };
    for (const filter of filters) this.connection.subscribe(filter, 1, handler);
    return () => {
      for (const filter of filters) this.connection.unsubscribe(filter, handler);
    };
  }

  /** Status Disabled, then a normal DISCONNECT (no Will). `crash` skips both: for tests, the broker sends the Will. */
  async close(crash = false): Promise<void> {
    clearInterval(this.keepAliveTimer);
    if (crash) {
      await this.connection.close({ reasonCode: 0x04 }); // MQTT 5 §3.14.2.1: Disconnect with Will Message
      return;
    }
    if (this.connection.connected) {
      const status = this.publisher.status('Disabled');
      await new Promise<void>((resolve) => {
        this.connection.publish(status.topic, status.payload, 1, true, () => resolve());
        setTimeout(resolve, 1000).unref();
      });
    }
    await this.connection.close();
  }
}
