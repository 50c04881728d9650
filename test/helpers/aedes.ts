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

export async function startAedes(): Promise<AedesBroker> {
  const broker = createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;
  return {
    broker,
    port,
    url: `mqtt://127.0.0.1:${port}`,
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
