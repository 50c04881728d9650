import { strict as assert } from 'node:assert';
import { heapGrowingFlag } from '../../lib/runtime/heap-growth';
import { SettingsError } from '../../lib/runtime/settings';

describe('runtime: V8 heap growth of a gateway process (UNS_EDGE_HEAP_GROWING_PERCENT)', () => {
  it("keeps V8's heuristic unless asked (unset, empty, v8); sets the chosen percent when given", () => {
    assert.equal(heapGrowingFlag({}, []), undefined);
    assert.equal(heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: '' }, []), undefined, 'empty is not given');
    assert.equal(heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: '100' }, []), '--heap-growing-percent=100');
    assert.equal(heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: ' 50 ' }, []), '--heap-growing-percent=50');
    assert.equal(heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: '10' }, []), '--heap-growing-percent=10');
    assert.equal(heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: '300' }, []), '--heap-growing-percent=300');
    assert.equal(heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: 'v8' }, []), undefined);
  });

  it("leaves a --heap-growing-percent on node's command line alone, in either spelling", () => {
    const chosen = { UNS_EDGE_HEAP_GROWING_PERCENT: '100' };
    assert.equal(heapGrowingFlag(chosen, ['--heap-growing-percent=30']), undefined);
    assert.equal(heapGrowingFlag(chosen, ['--max-old-space-size=512', '--heap_growing_percent=30']), undefined);
    assert.equal(heapGrowingFlag(chosen, ['--heap-growing-percent-x']), '--heap-growing-percent=100', 'another flag is not it');
  });

  it('refuses anything else with the setting named (the CLI exits 78)', () => {
    for (const setting of ['abc', '9', '301', '1.5', '-50', '0x40', '100%']) {
      assert.throws(() => heapGrowingFlag({ UNS_EDGE_HEAP_GROWING_PERCENT: setting }, []),
        (error: Error) => error instanceof SettingsError && error.message.startsWith(`UNS_EDGE_HEAP_GROWING_PERCENT=${setting}: use a whole number 10..300`));
    }
  });
});
