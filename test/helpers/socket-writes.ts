/** Counting what reaches a socket, for tests of write coalescing. */
import * as net from 'node:net';

/** net.Socket#write calls made on sockets connected to `port` (the client side of a link), until restore(). */
export function countWritesTo(port: number): { readonly count: number; restore(): void } {
  const original = net.Socket.prototype.write;
  let count = 0;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port) count++;
    return (original as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof original;
  return {
    get count() {
      return count;
    },
    restore: () => {
      net.Socket.prototype.write = original;
    },
  };
}
