/**
 * The UNS explorer's topic tree (lib/explorer/tree.ts, docs/explorer.md): levels and their topic
 * counts, lazy listing with paging and filter, search, the bounds (nodes, depth, payload bytes, page
 * size) and the overflow policy (first topics kept, later ones counted at their deepest stored
 * ancestor, each once), clearing a retained topic, and what a value shows (quality, unit, source
 * time, retained flag); Sparkplug payloads decoded with metric names from births (lib/explorer/sparkplug.ts).
 */
import { strict as assert } from 'node:assert';
import { TopicTree } from '../../lib/explorer/tree';
import { describePayload } from '../../lib/explorer/values';
import { UnsExplorer } from '../../lib/explorer/explorer';
import { encodePayload } from '../../lib/sparkplug/payload';
import { DataType } from '../../lib/sparkplug/datatypes';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const metric = (value: unknown, extra: Record<string, unknown> = {}): Buffer => json({ value, timestamp: 1700000000000, quality: 'good', unit: 'A', ...extra });

describe('explorer topic tree', () => {
  it('lists a level lazily: children sorted with numbers as numbers, topic counts aggregated upwards', () => {
    const tree = new TopicTree({}, () => 5000);
    for (const drive of [1, 2, 10]) {
      for (const name of ['speed', 'current']) tree.update(`acme/plant1/line1/drive${drive}/${name}`, metric(drive), true);
    }
    tree.update('acme/plant1/line1', json({ note: 'a line with its own value' }), false);
    const top = tree.level('')!;
    assert.deepEqual(top.items.map((i) => [i.name, i.topics, i.children]), [['acme', 7, 1]]);
    const line = tree.level('acme/plant1/line1')!;
    assert.deepEqual(line.items.map((i) => i.name), ['drive1', 'drive2', 'drive10']);
    assert.equal(line.self.topics, 7);
    assert.equal(line.self.value?.format, 'json');
    assert.equal(line.self.value?.retained, false);
    const drive = tree.level('acme/plant1/line1/drive10')!;
    assert.deepEqual(drive.items.map((i) => i.path), ['acme/plant1/line1/drive10/current', 'acme/plant1/line1/drive10/speed']);
    const value = drive.items[0]!.value!;
    assert.deepEqual({ text: value.text, quality: value.quality, unit: value.unit, timestamp: value.timestamp, retained: value.retained, receivedAt: value.receivedAt, format: value.format },
      { text: '10', quality: 'good', unit: 'A', timestamp: 1700000000000, retained: true, receivedAt: 5000, format: 'uns' });
    assert.equal(tree.level('acme/nowhere'), undefined);
  });

  it('a topic delivered as retained stays marked retained when live updates arrive without the flag, until it is cleared', () => {
    const tree = new TopicTree();
    tree.update('a/retained', metric(1), true);
    tree.update('a/retained', metric(2), false);
    tree.update('a/live', metric(3), false);
    assert.deepEqual(tree.level('a')!.items.map((i) => [i.name, i.value!.retained, i.value!.text, i.value!.messages]), [['live', false, '3', 1], ['retained', true, '2', 2]]);
    tree.update('a/retained', Buffer.alloc(0), false);
    tree.update('a/retained', metric(4), false);
    assert.equal(tree.level('a')!.items[1]!.value!.retained, false);
  });

  it('pages and filters a level, at most maxPage children per answer', () => {
    const tree = new TopicTree({ maxPage: 50 });
    for (let i = 0; i < 300; i++) tree.update(`site/asset${i}`, metric(i), true);
    const first = tree.level('site', { limit: 1000 })!;
    assert.equal(first.total, 300);
    assert.equal(first.items.length, 50, 'capped at maxPage');
    const third = tree.level('site', { offset: 100, limit: 20 })!;
    assert.deepEqual([third.items[0]!.name, third.items.length], ['asset100', 20]);
    const filtered = tree.level('site', { filter: 'SET29' })!;
    assert.deepEqual(filtered.items.map((i) => i.name), ['asset29', 'asset290', 'asset291', 'asset292', 'asset293', 'asset294', 'asset295', 'asset296', 'asset297', 'asset298', 'asset299']);
    assert.equal(filtered.total, 11);
  });

  it('searches full paths, returns at most the limit and says when more matched', () => {
    const tree = new TopicTree();
    for (let i = 0; i < 40; i++) tree.update(`a/line${i % 4}/drive${i}/speed`, metric(i), true);
    const result = tree.search('LINE2/', 5);
    assert.equal(result.items.length, 5);
    assert.ok(result.truncated);
    assert.ok(result.items.every((item) => item.path.startsWith('a/line2/')));
    assert.deepEqual(tree.search('drive39/speed').items.map((i) => i.path), ['a/line3/drive39/speed']);
    assert.deepEqual(tree.search('   ').items, []);
  });

  it('keeps at most maxNodes: later new topics are counted at their deepest stored ancestor, each once, while stored ones keep updating', () => {
    const tree = new TopicTree({ maxNodes: 10 });
    // a, a/b, a/b/c0 … a/b/c7: 10 nodes.
    for (let i = 0; i < 8; i++) tree.update(`a/b/c${i}`, metric(i), true);
    assert.equal(tree.stats().nodes, 10);
    for (let round = 0; round < 3; round++) {
      for (let i = 8; i < 20; i++) tree.update(`a/b/c${i}`, metric(i), true);
      tree.update('x/y', metric(1), true);
    }
    const stats = tree.stats();
    assert.equal(stats.nodes, 10, 'no node over the bound');
    assert.equal(stats.topics, 8);
    assert.equal(stats.overflow, 13, '12 under a/b and x/y, each counted once');
    assert.ok(stats.overflowExact);
    assert.deepEqual(tree.level('')!.items.map((i) => [i.name, i.overflow]), [['a', 12]]);
    assert.equal(tree.level('a')!.items[0]!.overflow, 12);
    tree.update('a/b/c3', metric(333), true);
    assert.equal(tree.level('a/b', { filter: 'c3' })!.items[0]!.value?.text, '333', 'a stored topic still updates');
  });

  it('counts overflow approximately once more topics than maxOverflowTracked were not stored, and says so', () => {
    const tree = new TopicTree({ maxNodes: 2, maxOverflowTracked: 3 });
    tree.update('a/b', metric(1), true);
    for (let i = 0; i < 5; i++) tree.update(`z/${i}`, metric(i), true);
    tree.update('z/4', metric(4), true);
    const stats = tree.stats();
    assert.equal(stats.overflow, 6);
    assert.equal(stats.overflowExact, false);
  });

  it('counts topics deeper than maxDepth as overflow', () => {
    const tree = new TopicTree({ maxDepth: 3 });
    tree.update('a/b/c', metric(1), true);
    tree.update('a/b/c/d', metric(2), true);
    assert.deepEqual([tree.stats().nodes, tree.stats().overflow, tree.level('a/b')!.items[0]!.overflow], [3, 1, 1]);
  });

  it('an empty (retained-clearing) payload removes the topic, its empty levels and its count, and makes room', () => {
    const tree = new TopicTree({ maxNodes: 4 });
    tree.update('a/b/c', metric(1), true);
    tree.update('a/x', metric(2), true);
    tree.update('a/y', metric(3), true);
    assert.equal(tree.stats().overflow, 1);
    tree.update('a/b/c', Buffer.alloc(0), false);
    assert.deepEqual([tree.stats().nodes, tree.stats().topics], [2, 1]);
    assert.deepEqual(tree.level('a')!.items.map((i) => i.name), ['x']);
    tree.update('a/y', metric(3), true);
    assert.deepEqual(tree.level('a')!.items.map((i) => i.name), ['x', 'y']);
  });

  it('keeps at most maxPayloadBytes of a payload and says how large it was', () => {
    const tree = new TopicTree({ maxPayloadBytes: 16 });
    tree.update('big', Buffer.from('x'.repeat(5000)), false);
    const value = tree.level('')!.items[0]!.value!;
    assert.equal(value.bytes, 5000);
    assert.ok(value.cut);
    assert.match(value.text, /5000 bytes, first 16 kept/);
  });

  it('refuses limits that are not integers ≥ 1', () => {
    assert.throws(() => new TopicTree({ maxNodes: 0 }), /maxNodes/);
    assert.throws(() => new TopicTree({ maxPage: Number.NaN }), /maxPage/);
  });

  it('100,000 topics over a bound of 50,000 nodes: bounded, every level listed in a few milliseconds', () => {
    const tree = new TopicTree({ maxNodes: 50000 });
    const started = performance.now();
    let n = 0;
    for (let area = 0; area < 10; area++) {
      for (let line = 0; line < 10; line++) {
        for (let asset = 0; asset < 100; asset++) {
          for (let m = 0; m < 10; m++) tree.update(`acme/site/area${area}/line${line}/asset${asset}/m${m}`, metric(n++), true);
        }
      }
    }
    const fedMs = performance.now() - started;
    const stats = tree.stats();
    assert.ok(stats.nodes <= 50000);
    assert.equal(stats.topics + stats.overflow, 100000, 'every topic is stored or counted');
    const t0 = performance.now();
    const level = tree.level('acme/site/area0/line0')!;
    const levelMs = performance.now() - t0;
    assert.equal(level.items.length, 100);
    const t1 = performance.now();
    tree.search('asset99/m9', 100);
    const searchMs = performance.now() - t1;
    console.log(`      100,000 topics fed in ${fedMs.toFixed(0)} ms (${stats.nodes} nodes, ${stats.topics} topics stored, ${stats.overflow} counted); a level in ${levelMs.toFixed(2)} ms, a search over the tree in ${searchMs.toFixed(1)} ms`);
    assert.ok(levelMs < 50, `a level took ${levelMs} ms`);
  });
});

describe('explorer values', () => {
  it('shows UNS metric JSON, asset JSON, other JSON, text and bytes', () => {
    assert.deepEqual(describePayload(metric(12.5, { quality: 'uncertain', unit: 'Hz', type: 'Double' })),
      { text: '12.5', format: 'uns', quality: 'uncertain', unit: 'Hz', timestamp: 1700000000000, type: 'Double' });
    assert.equal(describePayload(json({ value: 'on' })).text, '"on"');
    assert.equal(describePayload(json({ value: 12345678901234567890n.toString() })).text, '"12345678901234567890"');
    assert.equal(describePayload(Buffer.from('{"value":12345678901234567890}')).text, '12345678901234567890', 'integers beyond 2^53 stay exact');
    assert.deepEqual(describePayload(json({ timestamp: 1, metrics: { speed: { value: 1 }, current: { value: 2 } } })),
      { text: '2 metrics: speed, current', format: 'uns-asset', timestamp: 1 });
    assert.equal(describePayload(json([1, 2])).format, 'json');
    assert.deepEqual(describePayload(Buffer.from('hello')), { text: 'hello', format: 'text' });
    assert.equal(describePayload(Buffer.from([0, 1, 2, 0xff])).format, 'binary');
    assert.equal(describePayload(Buffer.from('y'.repeat(500))).text.length, 160);
  });
});

describe('explorer Sparkplug view', () => {
  const birth = encodePayload({
    timestamp: 1700000000000,
    seq: 0,
    metrics: [
      { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
      { name: 'Motor/Speed', alias: 1, datatype: DataType.Float, value: 1450, properties: { keys: ['engUnit', 'Quality'], values: [{ type: DataType.String, value: 'rpm' }, { type: DataType.Int32, value: 192 }] } },
      { name: 'Running', alias: 2, datatype: DataType.Boolean, value: true },
    ],
  });
  const data = encodePayload({ timestamp: 1700000001000, seq: 1, metrics: [{ alias: 1, datatype: DataType.Float, value: 1500 }, { alias: 2, datatype: DataType.Boolean, value: false }] }, { omitDatatypes: true });

  it('names DATA metrics by the aliases of the BIRTH it saw, with unit and quality', () => {
    const explorer = new UnsExplorer({ mqtt: { host: '127.0.0.1', port: 1, protocolVersion: 4, clientId: 't', keepaliveSec: 60, connectTimeoutMs: 1000, backoff: { initialMs: 1000, maxMs: 1000, jitter: 0 } } });
    explorer.onMessage('spBv1.0/G1/DBIRTH/E1/D1', birth, false);
    explorer.onMessage('spBv1.0/G1/DDATA/E1/D1', data, false);
    const dataLevel = explorer.tree.level('spBv1.0/G1/DDATA/E1/D1')!;
    assert.match(dataLevel.self.value!.text, /DDATA, 2 metric\(s\), seq 1/);
    assert.deepEqual(dataLevel.items.map((i) => i.name), ['Motor', 'Running']);
    assert.equal(dataLevel.items[1]!.value!.text, 'false');
    const speed = explorer.tree.level('spBv1.0/G1/DDATA/E1/D1/Motor')!.items[0]!;
    assert.deepEqual([speed.path, speed.value!.text, speed.value!.type], ['spBv1.0/G1/DDATA/E1/D1/Motor/Speed', '1500', 'Float']);
    const birthSpeed = explorer.tree.level('spBv1.0/G1/DBIRTH/E1/D1/Motor')!.items[0]!;
    assert.deepEqual([birthSpeed.value!.unit, birthSpeed.value!.quality], ['rpm', 'good']);
  });

  it('without a BIRTH shows aliases and wire values; a birth lookup (the host\'s cache) names them', () => {
    const options = { host: '127.0.0.1', port: 1, protocolVersion: 4 as const, clientId: 't', keepaliveSec: 60, connectTimeoutMs: 1000, backoff: { initialMs: 1000, maxMs: 1000, jitter: 0 } };
    const alone = new UnsExplorer({ mqtt: options });
    alone.onMessage('spBv1.0/G1/DDATA/E1/D1', data, false);
    assert.deepEqual(alone.tree.level('spBv1.0/G1/DDATA/E1/D1')!.items.map((i) => i.name), ['alias 1', 'alias 2']);
    const withHost = new UnsExplorer({
      mqtt: options,
      birthLookup: () => (group, edge, device, alias) => (group === 'G1' && edge === 'E1' && device === 'D1' && alias === '1' ? { name: 'Speed', datatype: DataType.Float } : undefined),
    });
    withHost.onMessage('spBv1.0/G1/DDATA/E1/D1', data, false);
    assert.deepEqual(withHost.tree.level('spBv1.0/G1/DDATA/E1/D1')!.items.map((i) => [i.name, i.value!.text]), [['alias 2', 'false (no BIRTH seen: datatype unknown)'], ['Speed', '1500']]);
  });

  it('an undecodable payload is shown as such, with bad quality, and nothing under it', () => {
    const explorer = new UnsExplorer({ mqtt: { host: '127.0.0.1', port: 1, protocolVersion: 4, clientId: 't', keepaliveSec: 60, connectTimeoutMs: 1000, backoff: { initialMs: 1000, maxMs: 1000, jitter: 0 } } });
    explorer.onMessage('spBv1.0/G1/NDATA/E1', Buffer.from([0x12, 0xff, 0xff]), false);
    const level = explorer.tree.level('spBv1.0/G1/NDATA/E1')!;
    assert.equal(level.self.value!.quality, 'bad');
    assert.match(level.self.value!.text, /undecodable/);
    assert.equal(level.total, 0);
  });
});
