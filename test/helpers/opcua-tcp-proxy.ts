/**
 * A TCP proxy of the test's own between client and OPC UA server that can blackhole the path:
 * sockets stay open but no byte passes in either direction (a cut network, a half-open connection),
 * then the path comes back; or can send new connections to another server behind the same address
 * (`retarget`) and break the open ones (`cut`), as when a server is replaced; or stop reading what the
 * clients send (`stall`): their socket buffers fill as behind a slow server, nothing is lost.
 */
import { createConnection, createServer, Server, Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  blackhole(on: boolean): void;
  /** New connections go to `port` from now on (open ones keep their server). */
  retarget(port: number): void;
  /** Break every open connection (the client sees the socket close). */
  cut(): void;
  /** Stop (true) or resume reading from the clients. */
  stall(on: boolean): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let holed = false;
  let target = targetPort;
  const sockets = new Set<Socket>();
  const inbounds = new Set<Socket>();
  let stalled = false;
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port: target });
    inbounds.add(inbound);
    inbound.once('close', () => inbounds.delete(inbound));
    if (stalled) inbound.pause();
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.on('data', (d) => { if (!holed) outbound.write(d); });
    outbound.on('data', (d) => { if (!holed) inbound.write(d); });
  });
  await new Promise<void>((r) => server.listen(0, () => r()));
  return {
    port: (server.address() as { port: number }).port,
    blackhole: (on) => { holed = on; },
    retarget: (port) => { target = port; },
    cut: () => { for (const s of sockets) s.destroy(); },
    stall: (on) => {
      stalled = on;
      for (const inbound of inbounds) {
        if (on) inbound.pause();
        else inbound.resume();
      }
    },
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
