/**
 * lib/runtime/startup-heap.ts: one full GC after the flows start, so that V8's memory reducer gives
 * back the young generation start-up grew (issue 12 item 5, docs/gateway.md § "V8 flags").
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO_ROOT = resolve(__dirname, '..', '..');

describe('runtime start-up heap', () => {
  it('collectStartupGarbage runs a full GC without --expose-gc, and leaves gc to no later context', function () {
    this.timeout(30_000);
    // A fresh process without --expose-gc, as the gateway runs; the GC is seen by a performance observer.
    const script = `
      const { PerformanceObserver, constants } = require('node:perf_hooks');
      const { runInNewContext } = require('node:vm');
      const { collectStartupGarbage } = require(${JSON.stringify(join(REPO_ROOT, 'lib', 'runtime', 'startup-heap.ts'))});
      const kinds = [];
      const observer = new PerformanceObserver((list) => { for (const entry of list.getEntries()) kinds.push(entry.detail.kind); });
      observer.observe({ entryTypes: ['gc'] });
      collectStartupGarbage();
      setTimeout(() => {
        observer.disconnect();
        console.log(JSON.stringify({ major: kinds.includes(constants.NODE_PERFORMANCE_GC_MAJOR), globalGc: typeof globalThis.gc, laterContextGc: runInNewContext('typeof gc') }));
      }, 100);`;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    assert.deepEqual(JSON.parse(output.trim().split('\n').pop() as string), { major: true, globalGc: 'undefined', laterContextGc: 'undefined' });
  });
});
