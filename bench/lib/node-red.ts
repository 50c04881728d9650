/**
 * One embedded Node-RED runtime for side-by-side benchmarks: headless (no HTTP), a temp userDir
 * holding the flow file, logging at warn, and this repository's built nodes loaded through
 * `nodesDir` (the package.json's node-red section, so `npm run build` must have run).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { EventEmitter } from 'node:events';
import { FlowsTracker } from '../../lib/runtime/health';

export const REPO_ROOT = resolve(__dirname, '..', '..');
/** The package whose built nodes are loaded: this repository, or a private build (UNS_EDGE_BENCH_PACKAGE, bench/README.md). */
const PACKAGE_DIR = process.env.UNS_EDGE_BENCH_PACKAGE ? resolve(process.env.UNS_EDGE_BENCH_PACKAGE) : REPO_ROOT;

/** The parts of a runtime node the benchmarks use. */
export interface RuntimeNode {
  readonly id: string;
  receive(msg: object): void;
}

/** The parts of the `node-red` module (lib/red.js) used here. */
interface NodeRedModule {
  init(server: null, settings: object): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly events: EventEmitter;
  readonly nodes: { getNode(id: string): unknown };
}

export interface EmbeddedNodeRed {
  readonly version: string;
  readonly userDir: string;
  /** A node of the running flow; throws when it does not exist (a typo must not measure nothing). */
  node<T = RuntimeNode>(id: string): T;
  stop(): Promise<void>;
}

/** Start Node-RED with `flow` (an array of node objects; flow nodes need x/y) and wait for the flows to start. */
export async function startNodeRed(flow: object[]): Promise<EmbeddedNodeRed> {
  if (!existsSync(join(PACKAGE_DIR, 'dist', 'nodes', 'uns', 'uns.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  const userDir = mkdtempSync(join(tmpdir(), 'uns-bench-nr-'));
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flow));
  const RED = require('node-red') as NodeRedModule;
  RED.init(null, {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: 'uns-edge-bench',
    httpAdminRoot: false,
    httpNodeRoot: false,
    nodesDir: [PACKAGE_DIR],
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    editorTheme: { palette: { catalogues: [] } },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
  });
  const flows = new FlowsTracker(RED.events);
  await RED.start();
  const settled = await flows.whenSettled();
  flows.close();
  if (settled.state !== 'started') {
    await RED.stop();
    throw new Error(`the benchmark flow did not start: ${settled.problem ?? settled.state}`);
  }
  return {
    // RED.version() says "4.1.15-git" when node-red is not installed from a release tarball.
    version: (require('node-red/package.json') as { version: string }).version,
    userDir,
    node<T>(id: string): T {
      const node = RED.nodes.getNode(id);
      if (node === null || node === undefined) throw new Error(`node "${id}" is not in the running flow (did it fail to load?)`);
      return node as T;
    },
    async stop() {
      await RED.stop();
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

/** Resolve once `condition()` holds; poll every 20 ms, fail after `ms`. */
export async function waitFor(what: string, condition: () => boolean, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
