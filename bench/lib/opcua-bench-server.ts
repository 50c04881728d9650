/**
 * The OPC UA server of bench/opcua-subscribe.ts, in its own process so the Node-RED process under
 * test holds only the clients (its CPU is the clients' CPU; the server's is read from /proc).
 *
 * Address space: `items` Double variables ns=1;s=v0 … v<items−1> under Objects/Bench. Every
 * `periodMs` one tick sets ALL of them to the tick number (setValueFromSource), so a client
 * notification carries the tick it belongs to and the server knows exactly what it sent:
 * ticks × items changes. Security as asked (SignAndEncrypt + Basic256Sha256 by default); the
 * server trusts every client certificate (a benchmark on loopback, never a pattern to copy) and
 * logs in user `bench` / `bench`.
 *
 * Parent side: `startOpcUaBenchServer({items, periodMs, securityMode})` → {endpointUrl, pid, tick(), close()}.
 * Child side (this file run as a script): one JSON line `{"port": n, "certificateFile": …}` on stdout once listening, then
 * one command per stdin line: `tick` → one JSON line {tick, tickAt, monitoredItems, sessions}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export type BenchSecurityMode = 'None' | 'SignAndEncrypt';

export interface OpcUaBenchServerOptions {
  items: number;
  periodMs: number;
  securityMode: BenchSecurityMode;
}

export interface OpcUaBenchServerState {
  /** Ticks done so far: values 1..tick have been sent. */
  tick: number;
  /** Date.now() when the last tick was set. */
  tickAt: number;
  monitoredItems: number;
  sessions: number;
}

export interface OpcUaBenchServer {
  readonly endpointUrl: string;
  /** The server's application certificate (PEM), for a client that must trust it first. */
  readonly certificateFile: string;
  readonly pid: number;
  readonly items: number;
  nodeId(index: number): string;
  state(): Promise<OpcUaBenchServerState>;
  close(): Promise<void>;
}

export const BENCH_USER = { username: 'bench', password: 'bench' } as const;

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function startOpcUaBenchServer(options: OpcUaBenchServerOptions): Promise<OpcUaBenchServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(line: string) => void> = [];
  // node-opcua prints warnings on stdout: only JSON lines are answers.
  lines.on('line', (line) => {
    if (line.startsWith('{')) waiting.shift()?.(line);
  });
  const nextLine = (what: string): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`OPC UA bench server: no answer to ${what} within 60 s`)), 60000);
    waiting.push((line) => { clearTimeout(timer); resolve(line); });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { children.delete(child); resolve(); }));
  const ready = await Promise.race([nextLine('start'), exited.then(() => { throw new Error('OPC UA bench server exited before listening'); })]);
  const { port, certificateFile } = JSON.parse(ready) as { port: number; certificateFile: string };
  return {
    endpointUrl: `opc.tcp://127.0.0.1:${port}`,
    certificateFile,
    pid: child.pid!,
    items: options.items,
    nodeId: (index) => `ns=1;s=v${index}`,
    async state() {
      const answer = nextLine('tick');
      child.stdin!.write('tick\n');
      return JSON.parse(await answer) as OpcUaBenchServerState;
    },
    async close() {
      child.stdin!.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------- child

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

async function childMain(options: OpcUaBenchServerOptions): Promise<void> {
  const opcua = await import('node-opcua');
  const pkiDir = mkdtempSync(join(tmpdir(), 'uns-bench-opcua-server-'));
  const port = await freePort();
  const certificateManager = new opcua.OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: true });
  const secure = options.securityMode === 'SignAndEncrypt';
  // Our own certificate naming 127.0.0.1 (node-opcua's default one names the machine's other addresses only).
  await certificateManager.initialize();
  const certificateFile = join(pkiDir, 'own', 'certs', 'certificate.pem');
  const applicationUri = 'urn:uns-edge:bench:opcua-server';
  await certificateManager.createSelfSignedCertificate({
    applicationUri, subject: '/CN=uns-edge OPC UA bench server', dns: ['localhost'], ip: ['127.0.0.1'],
    outputFile: certificateFile, startDate: new Date(), validity: 365,
  });
  const server = new opcua.OPCUAServer({
    port, host: '127.0.0.1', hostname: '127.0.0.1',
    serverCertificateManager: certificateManager,
    certificateFile, privateKeyFile: certificateManager.privateKey,
    serverInfo: { applicationUri },
    securityModes: [secure ? opcua.MessageSecurityMode.SignAndEncrypt : opcua.MessageSecurityMode.None],
    securityPolicies: [secure ? opcua.SecurityPolicy.Basic256Sha256 : opcua.SecurityPolicy.None],
    allowAnonymous: false,
    userManager: { isValidUser: (user: string, password: string) => user === BENCH_USER.username && password === BENCH_USER.password },
    serverCapabilities: { operationLimits: { maxMonitoredItemsPerCall: 100_000, maxNodesPerRead: 100_000 } },
    maxConnectionsPerEndpoint: 20,
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace!;
  const namespace = addressSpace.getOwnNamespace();
  const folder = namespace.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Bench' });
  const variables = Array.from({ length: options.items }, (_, i) => namespace.addVariable({
    componentOf: folder, nodeId: `s=v${i}`, browseName: `v${i}`, dataType: 'Double', minimumSamplingInterval: 0,
    value: { dataType: opcua.DataType.Double, value: 0 },
  }));
  await server.start();
  let tick = 0;
  let tickAt = Date.now();
  const timer = setInterval(() => {
    tick++;
    tickAt = Date.now();
    const variant = { dataType: opcua.DataType.Double, value: tick };
    for (const variable of variables) variable.setValueFromSource(variant, opcua.StatusCodes.Good);
  }, options.periodMs);
  process.stdout.write(JSON.stringify({ port, certificateFile }) + '\n');

  const monitoredItems = (): number => server.engine.getSessions()
    .flatMap((s) => s.publishEngine?.subscriptions ?? [])
    .reduce((sum, s) => sum + s.monitoredItemCount, 0);
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (line.trim() === 'tick') process.stdout.write(JSON.stringify({ tick, tickAt, monitoredItems: monitoredItems(), sessions: server.engine.currentSessionCount }) + '\n');
  });
  input.on('close', () => {
    clearInterval(timer);
    void server.shutdown(0).then(() => {
      rmSync(pkiDir, { recursive: true, force: true });
      process.exit(0);
    });
  });
}

if (require.main === module) {
  childMain(JSON.parse(process.argv[2]) as OpcUaBenchServerOptions).catch((error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
}
