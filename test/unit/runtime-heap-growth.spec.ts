import { strict as assert } from 'node:assert';
import { DEFAULT_PERCENT, describeHeapGrowing, heapGrowingSetting } from '../../lib/runtime/heap-growth';
import { SettingsError } from '../../lib/runtime/settings';

const flagOf = (env: NodeJS.ProcessEnv, execArgv: string[] = []): string | undefined => heapGrowingSetting(env, execArgv)?.flag;

describe('runtime: V8 heap growth of a gateway process (UNS_EDGE_HEAP_GROWING_PERCENT)', () => {
  it('sets factor 2 by default (unset, empty), the chosen percent when given, nothing for v8', () => {
    assert.equal(DEFAULT_PERCENT, 100);
    assert.deepEqual(heapGrowingSetting({}, []), { flag: '--heap-growing-percent=100', percent: 100, chosen: false });
    assert.deepEqual(heapGrowingSetting({ UNS_EDGE_HEAP_GROWING_PERCENT: '' }, []), { flag: '--heap-growing-percent=100', percent: 100, chosen: false }, 'empty is not given');
    assert.deepEqual(heapGrowingSetting({ UNS_EDGE_HEAP_GROWING_PERCENT: '100' }, []), { flag: '--heap-growing-percent=100', percent: 100, chosen: true });
    assert.equal(flagOf({ UNS_EDGE_HEAP_GROWING_PERCENT: ' 50 ' }), '--heap-growing-percent=50');
    assert.equal(flagOf({ UNS_EDGE_HEAP_GROWING_PERCENT: '10' }), '--heap-growing-percent=10');
    assert.equal(flagOf({ UNS_EDGE_HEAP_GROWING_PERCENT: '300' }), '--heap-growing-percent=300');
    assert.equal(heapGrowingSetting({ UNS_EDGE_HEAP_GROWING_PERCENT: 'v8' }, []), undefined, "v8: V8's own heuristic");
  });

  it('says what it set and where it came from', () => {
    assert.equal(describeHeapGrowing(heapGrowingSetting({}, [])!),
      "V8 --heap-growing-percent=100 (the default; UNS_EDGE_HEAP_GROWING_PERCENT=v8 keeps V8's own heuristic): the old generation grows to at most 2× the live heap before a full GC");
    assert.equal(describeHeapGrowing(heapGrowingSetting({ UNS_EDGE_HEAP_GROWING_PERCENT: '50' }, [])!),
      'V8 --heap-growing-percent=50 (UNS_EDGE_HEAP_GROWING_PERCENT): the old generation grows to at most 1.5× the live heap before a full GC');
  });

  it("leaves a --heap-growing-percent on node's command line alone, in either spelling, chosen or default", () => {
    for (const env of [{ UNS_EDGE_HEAP_GROWING_PERCENT: '100' }, {}]) {
      assert.equal(flagOf(env, ['--heap-growing-percent=30']), undefined);
      assert.equal(flagOf(env, ['--max-old-space-size=512', '--heap_growing_percent=30']), undefined);
      assert.equal(flagOf(env, ['--heap-growing-percent-x']), '--heap-growing-percent=100', 'another flag is not it');
    }
  });

  it('refuses anything else with the setting named (the CLI exits 78)', () => {
    for (const setting of ['abc', '9', '301', '1.5', '-50', '0x40', '100%', 'V8']) {
      assert.throws(() => heapGrowingSetting({ UNS_EDGE_HEAP_GROWING_PERCENT: setting }, []),
        (error: Error) => error instanceof SettingsError && error.message.startsWith(`UNS_EDGE_HEAP_GROWING_PERCENT=${setting}: use a whole number 10..300`));
    }
  });
});
