/**
 * lib/audit/targets.ts and lib/audit/pacer.ts: a scan covers exactly what was listed (CIDR blocks
 * without host bits, ranges, host names, per-entry ports), refuses more than a /24 without the tick
 * and more than 4096 targets at all, names every bad entry; probes are paced on the monotonic clock.
 */
import { strict as assert } from 'node:assert';
import { ProbePacer } from '../../lib/audit/pacer';
import { LARGE_RANGE, MAX_SCAN_ADDRESSES, parseAddressList, parseUnitList, TargetListError } from '../../lib/audit/targets';

const list = (text: string, allowLargeRanges = false) => parseAddressList(text, { defaultPort: 502, allowLargeRanges, what: 'Modbus addresses' });
const hosts = (text: string, large = false) => list(text, large).map((t) => `${t.host}:${t.port}`);

describe('asset scan targets', () => {
  it('expands exactly what is listed', () => {
    assert.deepEqual(hosts('10.0.0.8/30'), ['10.0.0.9:502', '10.0.0.10:502'], 'network and broadcast skipped');
    assert.deepEqual(hosts('10.0.0.7/32, 10.0.0.20-22 plc-7.local:1502 [::1]:5020 ::1'), ['10.0.0.7:502', '10.0.0.20:502', '10.0.0.21:502', '10.0.0.22:502', 'plc-7.local:1502', '::1:5020', '::1:502']);
    assert.deepEqual(hosts('10.0.0.254-10.0.1.1'), ['10.0.0.254:502', '10.0.0.255:502', '10.0.1.0:502', '10.0.1.1:502']);
    assert.deepEqual(hosts('10.0.0.1 10.0.0.1'), ['10.0.0.1:502'], 'duplicates once');
    assert.equal(list('192.168.1.0/24').length, LARGE_RANGE - 2);
  });

  it('refuses what the user may not have meant, naming every entry', () => {
    const problems = (text: string, large = false) => {
      try {
        list(text, large);
      } catch (error) {
        return (error as TargetListError).problems;
      }
      return [];
    };
    assert.match(problems('10.0.0.0/23')[0], /covers 512 addresses, more than a \/24.*tick/);
    assert.match(problems('10.0.0.0-10.0.1.0')[0], /covers 257 addresses/);
    assert.match(problems('10.0.0.5/24')[0], /host bits are set: the \/24 block holding it starts at 10\.0\.0\.0/);
    assert.match(problems('10.0.0.0/8', true)[0], /use \/16 to \/32/);
    assert.match(problems('10.0.0.0/16', true)[0], new RegExp(`at most ${MAX_SCAN_ADDRESSES}`));
    assert.equal(problems('10.0.0.0/20', true).length, 0);
    assert.deepEqual(problems('300.1.1.1 10.0.0.9-3 a_b <x> 10.0.0.1:0').length, 5);
    assert.match(problems('10.0.0.1:99999')[0], /port 99999 is not 1\.\.65535/);
  });

  it('reads unit id lists', () => {
    assert.deepEqual(parseUnitList('1-3, 247 2'), [1, 2, 3, 247]);
    assert.throws(() => parseUnitList('0-256'), /0\.\.255/);
  });

  it('paces probes at the configured rate on the monotonic clock', async () => {
    let now = 0;
    const pacer = new ProbePacer(10, () => now);
    await pacer.next();
    const second = pacer.next();
    now = 100;
    await second;
    assert.equal(pacer.probes, 2);
    assert.throws(() => new ProbePacer(1000), /0\.1\.\.100 per second/);
    const controller = new AbortController();
    const slow = new ProbePacer(0.1);
    await slow.next();
    const aborted = slow.next(controller.signal);
    controller.abort();
    await assert.rejects(aborted, /abort/i);
  });
});
