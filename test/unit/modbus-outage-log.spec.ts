/**
 * lib/modbus/outage-log.ts: a flapping device gets one summary line per window, not two lines per
 * outage (issue 8); a quiet window ends the damping.
 */
import { strict as assert } from 'node:assert';
import { OutageLine, OutageLog } from '../../lib/modbus/outage-log';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ADDRESS = 'tcp://10.0.0.5:502';

describe('modbus outage log', () => {
  const logs: OutageLog[] = [];
  afterEach(() => logs.splice(0).forEach((l) => l.close()));
  const outageLog = (windowMs: number) => {
    const lines: OutageLine[] = [];
    const log = new OutageLog({ windowMs, write: (line) => lines.push(line) });
    logs.push(log);
    return { log, lines };
  };
  const flap = (log: OutageLog, times: number, reason = 'connection closed by the device') => {
    for (let i = 0; i < times; i++) {
      log.outage({ address: ADDRESS, reason: `${reason} ${i}` });
      log.restored({ address: ADDRESS, downMs: 3 });
    }
  };

  it('writes the first outage and its end in full, then one summary per window while the device flaps', async () => {
    const { log, lines } = outageLog(150);
    flap(log, 20);
    assert.deepEqual(lines.map((l) => l.kind), ['outage', 'restored'], 'not two lines per outage');
    await sleep(200);
    assert.deepEqual(lines[2], {
      kind: 'flapping', address: ADDRESS, outages: 19, lastReason: 'connection closed by the device 19', windowMs: 150, connected: true,
    });
    flap(log, 5);
    log.outage({ address: ADDRESS, reason: 'connect ECONNREFUSED' });
    await sleep(150);
    assert.equal(lines.length, 4);
    assert.deepEqual(lines[3], { kind: 'flapping', address: ADDRESS, outages: 6, lastReason: 'connect ECONNREFUSED', windowMs: 150, connected: false });
  });

  it('a window without outages ends the damping: the next outage is written in full', async () => {
    const { log, lines } = outageLog(100);
    flap(log, 1);
    await sleep(130);
    assert.equal(lines.length, 2, 'no summary when nothing was suppressed');
    flap(log, 1);
    assert.deepEqual(lines.map((l) => l.kind), ['outage', 'restored', 'outage', 'restored']);
  });
});
