/**
 * Listening on a TCP port, with the operator's fix in the error when the port is taken.
 */
import type { Server } from 'node:net';

/** A start-up failure the operator can fix; the CLI prints `message` and exits with `exitCode`. */
export class StartupError extends Error {
  constructor(message: string, readonly exitCode: number = 1) {
    super(message);
  }
}

/**
 * Listen on host:port and resolve with the bound port (useful with port 0). `what` names the
 * service and `setting` the flag or variable that moves it, both for the EADDRINUSE message.
 */
export function listen(server: Server, host: string, port: number, what: string, setting: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.removeListener('listening', onListening);
      if (error.code === 'EADDRINUSE') {
        reject(new StartupError(`${what}: port ${host}:${port} is already in use. Stop the program holding it or choose another port with ${setting}.`));
      } else if (error.code === 'EACCES') {
        reject(new StartupError(`${what}: not allowed to listen on ${host}:${port} (ports below 1024 need privileges); choose another with ${setting}.`));
      } else {
        reject(new StartupError(`${what}: cannot listen on ${host}:${port}: ${error.message}`));
      }
    };
    const onListening = (): void => {
      server.removeListener('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** Close a server, resolving once it has closed (an already-closed server counts as closed). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
