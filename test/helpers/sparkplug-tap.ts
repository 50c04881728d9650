/**
 * TAP for the Sparkplug conformance suite (reference/sparkplug.md §0): a loopback TCP proxy in front
 * of the broker that parses both directions with mqtt-packet, so a test sees the device under test's
 * CONNECT flags, Will, SUBSCRIBE/SUBACK order and DISCONNECT reason code as the broker does (the TCK
 * gets the same view from HiveMQ interceptors). killConnections() drops the DUT's TCP without a
 * DISCONNECT, so the broker publishes its Will (KILL); blocked = true refuses new connections (the
 * broker looks unreachable to the DUT while it stays up for the observer).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import * as mqttPacket from 'mqtt-packet';
import type { IConnectPacket, Packet } from 'mqtt-packet';

export type TapDirection = 'edge→broker' | 'broker→edge';

export interface TapPacket {
  direction: TapDirection;
  packet: Packet;
  /** Which DUT TCP connection, counting from 1. */
  connection: number;
  at: number;
}

interface Pair {
  client: Socket;
  broker: Socket;
}

export class MqttTap {
  readonly packets: TapPacket[] = [];
  private readonly pairs = new Set<Pair>();
  private connections = 0;
  /** While true, new DUT connections are closed at once. */
  blocked = false;

  private constructor(private readonly server: Server, readonly port: number, private readonly brokerPort: number) {}

  /** Listen on a free loopback port and forward to 127.0.0.1:brokerPort. */
  static async start(brokerPort: number): Promise<MqttTap> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const tap = new MqttTap(server, typeof address === 'object' && address ? address.port : 0, brokerPort);
    server.on('connection', (client) => tap.accept(client));
    return tap;
  }

  /** Every CONNECT the DUT sent, in order. */
  get connects(): IConnectPacket[] {
    return this.packets.filter((p) => p.packet.cmd === 'connect').map((p) => p.packet as IConnectPacket);
  }

  /** Drop every DUT connection without DISCONNECT: the broker publishes the Will. */
  killConnections(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.broker.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.killConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.blocked) {
      client.destroy();
      return;
    }
    const connection = ++this.connections;
    const broker = createConnection({ port: this.brokerPort, host: '127.0.0.1' });
    const pair: Pair = { client, broker };
    this.pairs.add(pair);
    const fromEdge = mqttPacket.parser({ protocolVersion: 4 });
    const fromBroker = mqttPacket.parser({ protocolVersion: 4 });
    fromEdge.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') {
        // mqtt-packet's parser does not switch itself to the CONNECT's protocol level.
        const settings = { protocolVersion: (packet as IConnectPacket).protocolVersion ?? 4 };
        Object.assign((fromEdge as unknown as { settings: object }).settings, settings);
        Object.assign((fromBroker as unknown as { settings: object }).settings, settings);
      }
      this.packets.push({ direction: 'edge→broker', packet, connection, at: Date.now() });
    });
    fromBroker.on('packet', (packet: Packet) => this.packets.push({ direction: 'broker→edge', packet, connection, at: Date.now() }));
    client.on('data', (chunk: Buffer) => {
      fromEdge.parse(chunk);
      broker.write(chunk);
    });
    broker.on('data', (chunk: Buffer) => {
      fromBroker.parse(chunk);
      client.write(chunk);
    });
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      broker.destroy();
    };
    client.on('close', end);
    broker.on('close', end);
    client.on('error', end);
    broker.on('error', end);
  }
}
