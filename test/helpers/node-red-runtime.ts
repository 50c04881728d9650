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
  /** Redeploys with a deploy type, as the editor's Deploy button does. */
  setFlows(flow: object[], type: 'full' | 'flows' | 'nodes', credentials?: object): Promise<void>;
  unload(): Promise<void>;
  /**
   * The deployed node with that id (null when there is none: the specs ask for nodes they deployed);
   * `T` for a spec that reads the node's own members (`client`, `controller`, …).
   */
  getNode<T = HelperNode>(id: string): T;
  /** The spy on the runtime's log: one call per line logged since load(), its argument the log message. */
  log(): { args: Array<[LogMessage]> };
  /** The admin API (supertest). */
  request(): {
    get<Body = Record<string, unknown>>(path: string): AdminRequest<Body>;
    post<Body = Record<string, unknown>>(path: string): AdminRequest<Body>;
  };
  /** The runtime's node registry (the helper's own member): getFlows() is the deployed flow config. */
  _redNodes: { getFlows(): unknown };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));

/** What the runtime logs: the level (20 error, 30 warn, 40 info, …) and, from a node, its id and type. */
export interface LogMessage { level: number; msg: unknown; id?: string; type?: string }

/**
 * A request to the admin API, awaited as it is or after send() (the body), set() (a header) or
 * buffer()/parse() (an answer that is not JSON). `Body` is what the spec expects the endpoint to answer.
 */
export interface AdminRequest<Body> extends Promise<AdminResponse<Body>> {
  send(body: unknown): AdminRequest<Body>;
  set(header: string, value: string): AdminRequest<Body>;
  buffer(buffered: boolean): AdminRequest<Body>;
  parse<Parsed>(parser: (res: NodeJS.ReadableStream, done: (error: Error | null, body: Parsed) => void) => void): AdminRequest<Parsed>;
}
export interface AdminResponse<Body> { status: number; headers: Record<string, string>; body: Body }

/**
 * A deployed node as the helper hands it out: its events (`input`, and `call:<method>` carrying a
 * {@link Call}), receive(), and the spies the helper puts on Node.prototype's log, warn, error and status
 * while flows are loaded. The spies sit on the prototype: their calls are those of every node, each
 * with its node as `thisValue`. `on` takes a callback of any one-argument type (`(call: Call) => …`,
 * `(msg: TagBatch) => …`): the spec knows what the event carries.
 */
export interface HelperNode {
  on(event: string, fn: (arg: never) => void): void;
  receive(msg: object): void;
  log: Spy;
  warn: Spy;
  error: Spy;
  status: Spy;
  /** The node's credentials, when its type declares some. */
  credentials?: Record<string, string>;
}
/** A sinon spy on a Node method. */
export interface Spy {
  getCalls(): SpyCall[];
  lastCall: SpyCall | null;
}
/** What a `call:<method>` event carries (a sinon spy call). */
export type Call = { args: unknown[] };
/** A spy call with the node it was made on. */
export type SpyCall = Call & { thisValue: unknown };
/** What a node passes to status(). */
export type Status = { fill?: string; shape?: string; text?: string };

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

export { until } from './wait';
