/**
 * The demo's MQTT broker: aedes (MQTT 3.1.1) on a TCP port, in memory, no authentication, so it
 * listens on loopback only unless told otherwise. aedes is loaded only by the demo, so a gateway
 * (`run`) does not pay its memory.
 */
import { createServer } from 'node:net';
import { closeServer, listen } from './listen';

export interface EmbeddedBroker {
  port: number;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(host: string, port: number, portSetting: string): Promise<EmbeddedBroker> {
  // MQTT 3.1.1 §3.1.3.1: a server MAY allow client identifiers longer than 23 characters.
  const { createBroker } = require('aedes') as typeof import('aedes');
  const broker = createBroker({ maxClientsIdLength: 256 });
  const server = createServer(broker.handle);
  let boundPort: number;
  try {
    boundPort = await listen(server, host, port, 'embedded MQTT broker', portSetting);
  } catch (error) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw error;
  }
  return {
    port: boundPort,
    async close() {
      // Closing the broker disconnects its clients, which lets the server close.
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closeServer(server);
    },
  };
}
