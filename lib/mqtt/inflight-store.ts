/**
 * MQTT.js outgoing store that uns-edge can read: the QoS 1/2 packets sent and not yet
 * acknowledged on one connection, in send order. MQTT.js keeps such packets until PUBACK/PUBCOMP
 * (MQTT v5.0 §4.3.2, §4.3.3); when the connection drops, MqttConnection takes them out of here
 * and hands the unacknowledged publishes to store-and-forward, so nothing accepted is lost and
 * no per-publish callback closure is needed to know what was in flight.
 */
import { Readable } from 'node:stream';
import type { IPublishPacket, IStore, Packet, PacketCallback } from 'mqtt';

type DoneCallback = (error?: Error) => void;

export class InflightStore implements IStore {
  private readonly packets = new Map<number, Packet>();
  /** Message id of the last publish put: read right after client.publish() returns. */
  lastPutMessageId = 0;

  put(packet: Packet, cb: DoneCallback): this {
    const messageId = (packet as { messageId?: number }).messageId ?? 0;
    this.packets.set(messageId, packet);
    this.lastPutMessageId = messageId;
    cb();
    return this;
  }

  createStream(): ReturnType<IStore['createStream']> {
    // MQTT.js replays these after a reconnect of the same client; uns-edge uses a new client per
    // connection, so this is empty in practice, but the contract is kept.
    // Node's Readable does what MQTT.js uses of readable-stream's (read, destroy, events).
    return Readable.from([...this.packets.values()], { objectMode: true }) as unknown as ReturnType<IStore['createStream']>;
  }

  del(packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    const stored = this.packets.get(packet.messageId ?? 0);
    if (stored === undefined) {
      cb(new Error('missing packet'));
      return this;
    }
    this.packets.delete(packet.messageId ?? 0);
    cb(undefined, stored);
    return this;
  }

  get(packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    const stored = this.packets.get(packet.messageId ?? 0);
    if (stored === undefined) cb(new Error('missing packet'));
    else cb(undefined, stored);
    return this;
  }

  close(cb: DoneCallback): void {
    cb();
  }

  /** Packets sent and not yet acknowledged. */
  get size(): number {
    return this.packets.size;
  }

  /** Remove and return the unacknowledged PUBLISH packets, oldest first. */
  takeUnackedPublishes(): IPublishPacket[] {
    const publishes: IPublishPacket[] = [];
    for (const packet of this.packets.values()) {
      if (packet.cmd === 'publish') publishes.push(packet);
    }
    this.packets.clear();
    return publishes;
  }
}
