/**
 * Node-RED embedded in our own HTTP server: the editor and admin API (unless headless), HTTP-In
 * endpoints (when enabled), GET /healthz and GET /metrics. Node-RED's log goes to stdout.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { EventEmitter } from 'node:events';
import { dirname, join } from 'node:path';
import type { RequestListener } from 'node:http';
import { enableConnectionMetrics } from '../lib/runtime/connection-registry';
import { FlowsTracker, healthReport, type FlowsStatus } from '../lib/runtime/health';
import { enableProcessMetrics, gauge, metricsRegistry } from '../lib/runtime/metrics';
import { disableMqttNumberCache } from '../lib/runtime/mqtt-number-cache';
import { packageInfo } from '../lib/runtime/package-info';
import type { NodeRedSettings } from '../lib/runtime/settings';
import { closeServer, listen } from './listen';
import { log } from './log';

/** The parts of the `node-red` module's API (lib/red.js) used here. */
interface NodeRedModule {
  init(server: Server, settings: NodeRedSettings): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly events: EventEmitter;
  /** The runtime's node registry: getNode(id) is the running node, or null. */
  readonly nodes: { getNode(id: string): unknown };
  readonly httpAdmin: RequestListener;
  readonly httpNode: RequestListener;
}

interface ExpressApp extends RequestListener {
  disable(name: string): void;
  get(path: string, handler: RequestListener): void;
  use(pathOrHandler: string | RequestListener, handler?: RequestListener): void;
}

export interface NodeRedServer {
  /** Base URL, e.g. http://127.0.0.1:1880 */
  url: string;
  port: number;
  /** The flows' state once settled: started, or stopped with the runtime's reason. */
  flows: FlowsStatus;
  /** Stop the flows (nodes close their connections), then the HTTP server. */
  close(): Promise<void>;
}

function nodeRedDirectory(): string {
  return dirname(require.resolve('node-red/package.json'));
}

/**
 * The installed Node-RED's version from its package.json. RED.version() appends "-git" whenever a
 * `.git` directory sits four levels above @node-red/runtime/lib, which is the case for any
 * node_modules inside a git clone (this repository's too), not only for a Node-RED built from git.
 */
function nodeRedVersion(): string {
  return (require(join(nodeRedDirectory(), 'package.json')) as { version: string }).version;
}

/** A package as the installed Node-RED resolves it, so both share one copy. */
function requireFromNodeRed<T>(name: string): T {
  return require(require.resolve(name, { paths: [nodeRedDirectory()] })) as T;
}

/** The parts of @node-red/runtime and @node-red/util that node-red's lib/red.js wraps. */
interface NodeRedRuntime {
  init(settings: NodeRedSettings, server: Server): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly httpNode: RequestListener;
  readonly _: { readonly nodes: { getNode(id: string): unknown } };
}
interface NodeRedUtil { init(settings: NodeRedSettings): void; readonly events: EventEmitter }

/**
 * Node-RED without its editor, for a gateway with `httpAdminRoot: false`: what node-red's lib/red.js
 * does in that case (util and runtime initialised, the runtime started and stopped alone), without
 * requiring @node-red/editor-api, which lib/red.js loads whatever the settings (its express
 * middleware, passport, oauth2orize, bcrypt: docs/gateway.md § "What a headless gateway does not load").
 */
function headlessNodeRed(): NodeRedModule {
  const runtime = requireFromNodeRed<NodeRedRuntime>('@node-red/runtime');
  const util = requireFromNodeRed<NodeRedUtil>('@node-red/util');
  return {
    init(server, settings) {
      settings.coreNodesDir ??= dirname(require.resolve('@node-red/nodes', { paths: [nodeRedDirectory()] }));
      util.init(settings);
      runtime.init(settings, server);
    },
    start: () => runtime.start(),
    stop: () => runtime.stop(),
    events: util.events,
    get nodes() { return runtime._.nodes; },
    get httpAdmin(): RequestListener { throw new Error('headless: Node-RED has no admin API'); },
    get httpNode() { return runtime.httpNode; },
  };
}

/** Express as Node-RED itself resolves it, so both share one version. */
function createExpressApp(): ExpressApp {
  const express = requireFromNodeRed<() => ExpressApp>('express');
  const app = express();
  app.disable('x-powered-by');
  return app;
}

/** Node-RED's `https` setting: TLS options, or a function returning them (or a promise of them). */
async function httpsOptions(setting: unknown): Promise<HttpsOptions | undefined> {
  const value: unknown = typeof setting === 'function' ? await (setting as () => unknown)() : setting;
  return value && typeof value === 'object' ? value as HttpsOptions : undefined;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Initialise Node-RED on a new HTTP server, listen (failing fast when the port is taken, naming
 * `portSetting`), then start the flows and resolve once they have started (or the runtime said why
 * not: missing node types, ...). /healthz answers 503 until the flows are running.
 */
export async function startNodeRed(settings: NodeRedSettings, portSetting: string): Promise<NodeRedServer> {
  const begin = Date.now();
  disableMqttNumberCache();
  const RED = settings.httpAdminRoot === false ? headlessNodeRed() : require('node-red') as NodeRedModule;
  const tls = await httpsOptions(settings.https);
  const server = tls ? createHttpsServer(tls) : createServer();
  server.setMaxListeners(0);
  const flows = new FlowsTracker(RED.events, Date.now, (id) => RED.nodes.getNode(id) !== null);
  // Node errors while the flows start (a bad unit id, ...) reach /healthz through Node-RED's log.
  const healthLog = { level: 'error', metrics: false, audit: false, handler: () => flows.logHandler() };
  settings.logging = { ...(settings.logging as Record<string, unknown> | undefined), unsEdgeHealth: healthLog };
  RED.init(server, settings);
  const unsEdgeVersion = packageInfo().version;
  const nodeRed = nodeRedVersion();

  enableProcessMetrics();
  enableConnectionMetrics();
  const flowsRunning = gauge({
    name: 'uns_edge_flows_running',
    help: '1 while the Node-RED flows are started, 0 otherwise',
    collect() { flowsRunning.set(flows.current().state === 'started' ? 1 : 0); },
  });
  gauge({ name: 'uns_edge_build_info', help: 'uns-edge and Node-RED versions', labelNames: ['version', 'node_red'] })
    .set({ version: unsEdgeVersion, node_red: nodeRed }, 1);

  const app = createExpressApp();
  app.get('/healthz', (_request, response) => {
    const { httpStatus, report } = healthReport({
      startedAt: begin, now: Date.now(), unsEdgeVersion, nodeRedVersion: nodeRed, flows: flows.current(), nodes: flows.problems(),
    });
    response.writeHead(httpStatus, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    response.end(JSON.stringify(report));
  });
  app.get('/metrics', (_request, response) => {
    metricsRegistry.metrics().then((text) => {
      response.writeHead(200, { 'Content-Type': metricsRegistry.contentType });
      response.end(text);
    }, (error: Error) => {
      response.writeHead(500, { 'Content-Type': 'text/plain' });
      response.end(`metrics collection failed: ${error.message}\n`);
    });
  });
  if (settings.httpAdminRoot !== false) app.use(settings.httpAdminRoot, RED.httpAdmin);
  if (settings.httpNodeRoot !== false) app.use(settings.httpNodeRoot, RED.httpNode);
  app.use((_request, response) => {
    response.writeHead(404, { 'Content-Type': 'text/plain' });
    response.end('Not Found\n');
  });
  server.on('request', app);

  let port: number;
  try {
    port = await listen(server, settings.uiHost, settings.uiPort, 'HTTP server (editor, /healthz, /metrics)', portSetting);
  } catch (error) {
    flows.close();
    throw error;
  }
  await RED.start();
  const settledFlows = await flows.whenSettled();
  for (const problem of flows.problems()) log.warn(`/healthz degraded: ${problem.type ?? 'node'} ${problem.id}: ${problem.message}`);
  const url = `${tls ? 'https' : 'http'}://${urlHost(settings.uiHost)}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    flows: settledFlows,
    close() {
      closing ??= (async () => {
        try {
          await RED.stop();
        } catch (error) {
          log.error(`stopping Node-RED: ${(error as Error).message}`);
        }
        flows.close();
        server.closeAllConnections();
        await closeServer(server);
      })();
      return closing;
    },
  };
}
