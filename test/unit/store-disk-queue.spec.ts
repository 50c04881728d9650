import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskQueue, type DiskQueueOptions, type DropReason } from '../../lib/store/disk-queue';

describe('store-and-forward disk queue (lib/store/disk-queue.ts)', () => {
  let dir: string;
  let queues: DiskQueue[];
  let warnings: string[];
  let drops: Record<DropReason, number>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uns-store-'));
    queues = [];
    warnings = [];
    drops = { overflow: 0, expired: 0, corrupt: 0 };
  });

  afterEach(() => {
    for (const queue of queues) queue.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function open(options: Partial<DiskQueueOptions> = {}): DiskQueue {
    const queue = new DiskQueue({
      dir, warn: (w) => warnings.push(w), dropped: (reason, count) => { drops[reason] += count; }, ...options,
    });
    queues.push(queue);
    return queue;
  }

  function fill(queue: DiskQueue, from: number, to: number, now = Date.now()): void {
    for (let i = from; i <= to; i++) queue.append(`t/${i % 3}`, `{"value":${i}}`, 1, i % 2 === 0, now);
  }

  function drain(queue: DiskQueue, ack = true): number[] {
    const values: number[] = [];
    for (let batch = queue.readNext(7); batch.length > 0; batch = queue.readNext(7)) {
      for (const record of batch) {
        values.push(JSON.parse(record.payload.toString()).value);
        if (ack) queue.ack(record.seq);
      }
    }
    return values;
  }

  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('hands records out in order with topic, QoS and retain intact, and forgets them once acknowledged', () => {
    const queue = open();
    fill(queue, 1, 50);
    assert.equal(queue.count, 50);
    const [first] = queue.readNext(1);
    assert.deepEqual({ topic: first.topic, payload: first.payload.toString(), qos: first.qos, retain: first.retain },
      { topic: 't/1', payload: '{"value":1}', qos: 1, retain: false });
    queue.ack(first.seq);
    assert.deepEqual(drain(queue), range(2, 50));
    assert.equal(queue.count, 0);
    assert.equal(queue.bytes, 0);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.log')), [], 'drained segments are deleted');
  });

  it('rolls segments and keeps order across them', () => {
    const queue = open({ maxBytes: 1024 * 1024, segmentBytes: 4096 });
    fill(queue, 1, 500);
    queue.flush();
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.log')).length > 3);
    assert.deepEqual(drain(queue), range(1, 500));
  });

  it('acknowledgements out of order advance the cursor only over the acknowledged prefix', () => {
    const queue = open();
    fill(queue, 1, 5);
    const records = queue.readNext(5);
    queue.ack(records[2].seq);
    queue.ack(records[1].seq);
    assert.equal(queue.count, 5);
    queue.ack(records[0].seq);
    assert.equal(queue.count, 2);
    queue.rewind();
    assert.deepEqual(drain(queue), [4, 5]);
  });

  it('rewind hands out every unacknowledged record again (at least once, no gap)', () => {
    const queue = open();
    fill(queue, 1, 10);
    const records = queue.readNext(6);
    queue.ack(records[0].seq);
    queue.ack(records[1].seq);
    queue.rewind();
    assert.deepEqual(drain(queue), range(3, 10));
  });

  it('survives a restart: the next process continues after the last acknowledged record', () => {
    const first = open();
    fill(first, 1, 100);
    for (const record of first.readNext(30)) first.ack(record.seq);
    first.close();
    const second = open();
    assert.equal(second.count, 70);
    fill(second, 101, 110);
    assert.deepEqual(drain(second), range(31, 110));
  });

  it('survives a crash (no close): nothing appended is lost, acknowledged records may repeat', async () => {
    const first = open();
    fill(first, 1, 100);
    await Promise.resolve(); // the microtask that writes appended records to the OS
    for (const record of first.readNext(40)) first.ack(record.seq);
    // No close(): the process "dies" here. Its fds stay open, which does not matter to a reader.
    const second = open();
    const values = drain(second);
    assert.ok(values[0] <= 41, `replay starts at or before the first unacknowledged record, got ${values[0]}`);
    assert.deepEqual(values, range(values[0], 100));
  });

  it('skips a truncated last record with one warning, and cuts the torn tail off', () => {
    const first = open();
    fill(first, 1, 20);
    first.close();
    const [segment] = readdirSync(dir).filter((f) => f.endsWith('.log'));
    const path = join(dir, segment);
    const size = statSync(path).size;
    truncateSync(path, size - 5);
    const second = open();
    assert.equal(second.count, 19);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /skipped \d+ damaged bytes \(torn last record, file truncated\)/);
    assert.equal(drops.corrupt, 1);
    assert.deepEqual(drain(second), range(1, 19));
  });

  it('skips a damaged record in the middle (CRC mismatch) and reads on after it', () => {
    const first = open();
    fill(first, 1, 20);
    first.close();
    const [segment] = readdirSync(dir).filter((f) => f.endsWith('.log'));
    const path = join(dir, segment);
    const data = readFileSync(path);
    const tenth = data.indexOf('{"value":10}');
    data[tenth + 9] ^= 0xff; // flip the digit's bits: the CRC no longer matches
    writeFileSync(path, data);
    const second = open();
    assert.equal(second.count, 19);
    assert.match(warnings[0], /skipped \d+ damaged bytes$/);
    assert.deepEqual(drain(second), [...range(1, 9), ...range(11, 20)]);
  });

  it('an unreadable cursor file replays everything with a warning instead of failing', () => {
    const first = open();
    fill(first, 1, 5);
    for (const record of first.readNext(2)) first.ack(record.seq);
    first.close();
    writeFileSync(join(dir, 'cursor.json'), '{garbage');
    const second = open();
    assert.match(warnings[0], /unreadable; replaying every stored message/);
    assert.deepEqual(drain(second), range(1, 5));
  });

  it('overflow: drops the oldest records, counts them, warns once per episode', () => {
    const queue = open({ maxBytes: 20 * 1024, segmentBytes: 4096 });
    fill(queue, 1, 2000);
    assert.ok(queue.bytes <= 20 * 1024, `bytes ${queue.bytes}`);
    assert.ok(drops.overflow > 0);
    assert.equal(queue.count + drops.overflow, 2000);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /store full \(20480 bytes .*drop-oldest/);
    const values = drain(queue);
    assert.deepEqual(values, range(2001 - values.length, 2000), 'the newest records are kept, in order');
  });

  it('age limit: records older than max age are dropped when read, and counted', () => {
    const queue = open({ maxAgeMs: 60000 });
    const now = Date.now();
    fill(queue, 1, 10, now - 120000);
    fill(queue, 11, 15, now);
    assert.deepEqual(drain(queue), range(11, 15));
    assert.equal(drops.expired, 10);
    assert.equal(queue.count, 0);
  });

  it('a message larger than the whole store is refused and counted, not stored', () => {
    const queue = open({ maxBytes: 4096 });
    queue.append('big', Buffer.alloc(5000), 1, false);
    assert.equal(queue.count, 0);
    assert.equal(drops.overflow, 1);
    assert.match(warnings[0], /larger than the whole store/);
  });
});
