/**
 * Leak detection for tests, in the spirit of node-opcua's describeWithLeakDetector: every timer
 * (setTimeout/setInterval/setImmediate) and socket created by uns-edge code or MQTT.js while a
 * test runs must be cleared/closed by the time the test (and its afterEach unload) has finished.
 *
 * It uses async_hooks: `init` records resources of the tracked types whose creation stack passes
 * through the code under test; `destroy` (emitted when a timer fires or is cleared, when a handle
 * closes) removes them. Whatever is left after a short settle time leaked.
 */
import { createHook, type AsyncHook } from 'node:async_hooks';
import { resolve } from 'node:path';

const TRACKED_TYPES = new Set(['Timeout', 'Immediate', 'TCPWRAP', 'TLSWRAP', 'PIPEWRAP']);
/** Code whose resources must not outlive a test: the project's lib/ and nodes/, and MQTT.js. */
const ROOT = resolve(__dirname, '..', '..').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const CODE_UNDER_TEST = new RegExp(`${ROOT}[\\\\/](lib|nodes|dist)[\\\\/]|node_modules[\\\\/]mqtt[\\\\/]`);
const HELPER_FRAME = /[\\/]test[\\/]helpers[\\/]leaks\./;

export interface Leak {
  type: string;
  stack: string;
}

export class LeakDetector {
  private readonly live = new Map<number, Leak>();
  private readonly hook: AsyncHook;
  private readonly codePattern: RegExp;
  /** While stop() waits, its own timers are not the test's. */
  private settling = false;

  constructor(codePattern: RegExp = CODE_UNDER_TEST) {
    this.codePattern = codePattern;
    this.hook = createHook({
      init: (asyncId, type) => {
        if (this.settling || !TRACKED_TYPES.has(type)) return;
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 60;
        const stack = new Error().stack ?? '';
        Error.stackTraceLimit = limit;
        const frames = stack.split('\n').slice(2).filter((line) => !HELPER_FRAME.test(line) && !line.includes('node:internal/async_hooks'));
        if (!frames.some((line) => this.codePattern.test(line))) return;
        this.live.set(asyncId, { type, stack: frames.join('\n') });
      },
      destroy: (asyncId) => {
        this.live.delete(asyncId);
      },
    });
  }

  start(): void {
    this.live.clear();
    this.settling = false;
    this.hook.enable();
  }

  /** Wait for pending closes to land, stop tracking, and return what is still alive. */
  async stop(settleMs = 100): Promise<Leak[]> {
    this.settling = true;
    const deadline = Date.now() + settleMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    // Two turns more: destroy hooks are emitted asynchronously after a handle closes.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    this.hook.disable();
    return [...this.live.values()];
  }

  /** Throws with the creation stacks of whatever leaked. */
  async assertNoLeaks(settleMs = 100): Promise<void> {
    const leaks = await this.stop(settleMs);
    if (leaks.length === 0) return;
    const report = leaks.map((leak) => `${leak.type} created at\n${leak.stack}`).join('\n\n');
    throw new Error(`${leaks.length} timer(s)/socket(s) left behind after the test:\n${report}`);
  }
}

/**
 * A mocha describe() whose tests each fail if they leave a timer or socket behind. Hooks of `body`
 * (its afterEach with helper.unload(), say) run before the check.
 */
export function describeWithLeakDetector(title: string, body: (this: Mocha.Suite) => void): Mocha.Suite {
  return describe(title, function (this: Mocha.Suite) {
    const detector = new LeakDetector();
    beforeEach(() => detector.start());
    body.call(this);
    afterEach(async function () {
      // Leaks of a test that failed anyway are noise; still stop tracking.
      if (this.currentTest?.state === 'failed') {
        await detector.stop(0);
        return;
      }
      await detector.assertNoLeaks(500);
    });
  });
}
