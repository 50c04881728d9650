/**
 * The test OPC UA server (opcua-test-server.ts) in a child process, so a test can kill it with
 * SIGKILL (a crash, not a shutdown) and start it again on the same port with the same PKI.
 * Run as a child it starts the server from the JSON options in argv[2] and answers IPC requests.
 */
import { ChildProcess, fork } from 'node:child_process';
import { startTestServer, TestServerOptions } from './opcua-test-server';

/** count: monitored items; writes: Write requests received; mode: the value of ns=1;s=Drive1.Mode. */
type Request = 'count' | 'sessions' | 'closeSessions' | 'writes' | 'mode';

export interface ServerProcess {
  port: number;
  endpointUrl: string;
  ask(request: Request): Promise<number>;
  kill(): Promise<void>;
}

export function startServerProcess(options: TestServerOptions): Promise<ServerProcess> {
  const child: ChildProcess = fork(__filename, [JSON.stringify(options)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    // Loading node-opcua takes 2–20 s on a loaded 2-core machine; a server with thousands of variables more.
    const timer = setTimeout(() => reject(new Error('OPC UA server process did not start within 120 s')), 120_000);
    child.once('exit', (code) => reject(new Error(`OPC UA server process exited with ${code}`)));
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      let next = 0;
      resolve({
        port: m.port,
        endpointUrl: `opc.tcp://localhost:${m.port}`,
        ask: (request) => new Promise((res) => {
          const id = ++next;
          const on = (reply: { id: number; value: number }) => {
            if (reply.id !== id) return;
            child.off('message', on);
            res(reply.value);
          };
          child.on('message', on);
          child.send({ id, request });
        }),
        kill: () => new Promise((res) => {
          if (child.exitCode !== null || child.signalCode !== null) return res();
          child.removeAllListeners('exit');
          child.once('exit', () => res());
          child.kill('SIGKILL');
        }),
      });
    });
  });
}

if (require.main === module) {
  void (async () => {
    const server = await startTestServer(JSON.parse(process.argv[2]) as TestServerOptions);
    process.on('message', async (m: { id: number; request: Request }) => {
      let value = 0;
      if (m.request === 'count') value = server.monitoredItemCount();
      else if (m.request === 'sessions') value = server.sessionCount();
      else if (m.request === 'closeSessions') await server.closeSessions();
      else if (m.request === 'writes') value = server.writesReceived();
      else if (m.request === 'mode') value = Number((server.server.engine.addressSpace!.findNode('ns=1;s=Drive1.Mode') as import('node-opcua').UAVariable).readValue().value.value);
      process.send!({ id: m.id, value });
    });
    process.send!({ port: server.port });
  })();
}
