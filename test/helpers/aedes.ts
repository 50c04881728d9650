/**
 * An embedded aedes MQTT 3.1.1 broker on 127.0.0.1 and a free port, for node and integration
 * tests that need a real broker in-process. close() ends every client connection and the server.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type Aedes from 'aedes';
import { createBroker } from 'aedes';

export interface AedesBroker {
  broker: Aedes;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Start aedes on `port` (0 = a free one); pass a stopped broker's port to "restart" it there. */
export async function startAedes(port = 0): Promise<AedesBroker> {
  const broker = createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;
  return {
    broker,
    port: boundPort,
    url: `mqtt://127.0.0.1:${boundPort}`,
    close(): Promise<void> {
      closing ??= (async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
      })();
      return closing;
    },
  };
}
