/**
 * A Node-RED runtime for the node specs (node-red-node-test-helper): the helper typed (it ships no
 * type declarations) and initialised on the installed node-red, and the per-test set-up they share:
 * a fresh user directory, the server started before each test, and after it the flows unloaded, the
 * server stopped and the directory removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The part of node-red-node-test-helper the specs use. */
export interface TestHelper {
  init(nodeRedPath: string): void;
  settings(settings: object): object;
  startServer(done: () => void): void;
  stopServer(done: () => void): void;
  load(nodes: unknown, flow: object[], credentials?: object): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): unknown;
  log(): { args: unknown[][] };
  /** The admin API (supertest); bodies are whatever JSON the endpoint answers. */
  request(): {
    get(path: string): Promise<{ status: number; body: any }>;
    post(path: string): { send(body: unknown): Promise<{ status: number; body: any }> };
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));

/** A deployed node as the helper hands it out: its events (`input`, `call:status`, …) and receive(). */
export interface HelperNode {
  on(event: string, fn: (arg: unknown) => void): void;
  receive(msg: object): void;
}
/** What a `call:<method>` event carries (a sinon spy call). */
export type Call = { args: unknown[] };

/**
 * In the describe() that calls it: before each test a new user directory (`<tmp>/<prefix>…`) and the
 * server started on it; after each test the flows unloaded, the server stopped, the settings cleared
 * and the directory removed. Returns the current test's user directory.
 */
export function runtimePerTest(prefix: string): () => string {
  let userDir = '';
  beforeEach(async () => {
    userDir = mkdtempSync(join(tmpdir(), prefix));
    helper.settings({ userDir });
    await new Promise<void>((started) => helper.startServer(() => started()));
  });
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((stopped) => helper.stopServer(() => stopped()));
    helper.settings({});
    rmSync(userDir, { recursive: true, force: true });
  });
  return () => userDir;
}

/** Resolves once check() holds (looked at every `pollMs`); after `ms` fails naming what it waited for. */
export async function until(what: string, check: () => boolean, ms: number, pollMs = 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
