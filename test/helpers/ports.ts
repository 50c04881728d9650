/**
 * A TCP port for a test server that is free now and that no outgoing connection will take before
 * the server binds it. `listen(0)` hands out ports from the kernel's ephemeral range
 * (/proc/sys/net/ipv4/ip_local_port_range, 32768–60999 by default), the same range the kernel uses
 * for the local side of outgoing connections, so between "read the port, close" and the server's own
 * listen a client socket of the same test could take it (EADDRINUSE, seen under load). Ports below
 * the ephemeral range are only ever taken by a listen that names them.
 */
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';

const FIRST = 20000;

function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && low > FIRST + 1000 ? low : 32768;
  } catch {
    return 32768;
  }
}

const LAST = ephemeralStart() - 1;
const given = new Set<number>();

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A free port outside the ephemeral range, not handed out before by this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIRST + Math.floor(Math.random() * (LAST - FIRST + 1));
    if (given.has(port)) continue;
    if (await bindable(port, host)) {
      given.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${FIRST}–${LAST}`);
}
