/**
 * A Node-RED runtime (node-red-node-test-helper) for the specs that deploy a template of flows/ as a
 * user imports it: a fresh scratch directory holding the runtime's user directory, the template read
 * from flows/, the core nodes it uses, the UNS_EDGE_* variables it reads set for a test and put back
 * after, and a subscriber that keeps the latest value of each metric of one asset.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { helper, type HelperNode, type TestHelper } from './node-red-runtime';

export type FlowNode = { id: string; type: string; name?: string; x?: unknown; y?: unknown; z?: string; wires?: string[][]; [key: string]: unknown };
/** A metric as uns-out publishes it. */
export interface UnsMetric { value: unknown; unit?: string; quality?: string }

const ROOT = join(__dirname, '..', '..');

/** flows/<file> as shipped. */
export function readTemplate(file: string): FlowNode[] {
  return JSON.parse(readFileSync(join(ROOT, 'flows', file), 'utf8')) as FlowNode[];
}

/** Node-RED's core nodes by file name in @node-red/nodes/core/common (e.g. '20-inject.js'). */
export function coreNodes(...files: string[]): unknown[] {
  const common = join(require.resolve('@node-red/nodes/package.json'), '..', 'core', 'common');
  return files.map((file) => require(join(common, file)) as unknown);
}

/** Resolves once check() holds; after ms fails naming what it waited for, and context() when given. */
export async function until(what: string, check: () => boolean, ms = 20_000, context?: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${context ? `; ${context()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Subscribes to `<asset>/#` before the flow starts; `metrics` keeps the latest value of each metric,
 * keyed by its topic below the asset.
 */
export async function watchAsset(brokerUrl: string, asset: string): Promise<{ metrics: Map<string, UnsMetric>; end(): Promise<void> }> {
  const client = connect(brokerUrl, { reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject); });
  const metrics = new Map<string, UnsMetric>();
  client.on('message', (topic, payload) => {
    if (topic.startsWith(`${asset}/`)) metrics.set(topic.slice(asset.length + 1), JSON.parse(payload.toString()) as UnsMetric);
  });
  await client.subscribeAsync(`${asset}/#`, { qos: 1 });
  return { metrics, end: () => client.endAsync() };
}

export class TemplateRuntime {
  /** Process environment values changed through setEnvironment(), as they were before. */
  private readonly saved = new Map<string, string | undefined>();

  private constructor(
    /** Scratch directory removed by stop(): the user directory and any peer's files (PKI) live in it. */
    readonly dir: string,
    /** Node-RED's user directory (`<dir>/node-red`). */
    readonly userDir: string,
  ) {}

  /** Starts the runtime in a fresh `<tmp>/uns-<name>-*` directory. */
  static async start(name: string): Promise<TemplateRuntime> {
    const dir = mkdtempSync(join(tmpdir(), `uns-${name}-`));
    const runtime = new TemplateRuntime(dir, join(dir, 'node-red'));
    helper.settings({ userDir: runtime.userDir });
    await new Promise<void>((resolve) => helper.startServer(() => resolve()));
    return runtime;
  }

  load(nodes: unknown[], flow: object[], credentials?: object): Promise<void> {
    return helper.load(nodes, flow, credentials);
  }

  unload(): Promise<void> {
    return helper.unload();
  }

  getNode(id: string): HelperNode {
    return helper.getNode(id);
  }

  /** The editor's admin API (supertest), as the dialogs call it. */
  request(): ReturnType<TestHelper['request']> {
    return helper.request();
  }

  /** Presses the inject named `name` of the deployed template, as a click on its button does. */
  press(template: FlowNode[], name: string): void {
    const inject = template.find((n) => n.type === 'inject' && n.name === name);
    assert.ok(inject, `the template has an inject "${name}"`);
    this.getNode(inject.id).receive({});
  }

  /** Sets (or, for undefined, deletes) process environment variables until restoreEnvironment(). */
  setEnvironment(changes: Record<string, string | undefined>): void {
    for (const [name, value] of Object.entries(changes)) {
      if (!this.saved.has(name)) this.saved.set(name, process.env[name]);
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }

  restoreEnvironment(): void {
    for (const [name, value] of this.saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    this.saved.clear();
  }

  /**
   * Stops the flows and the runtime, puts the environment back, then closes the peers in the order
   * given (after the nodes let go of them, before their files go) and removes the scratch directory.
   */
  async stop(...closePeers: Array<() => Promise<unknown> | unknown>): Promise<void> {
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    helper.settings({});
    this.restoreEnvironment();
    for (const close of closePeers) await close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
