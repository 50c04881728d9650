/** Sparkplug topic namespace, id rules (lib/sparkplug/topics.ts) and sequence numbers (lib/sparkplug/sequence.ts). */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BdSeqStore, SequenceCounter, bdSeqFile, fileSafeName } from '../../lib/sparkplug/sequence';
import {
  SparkplugIdError, checkSparkplugId, deviceTopic, nodeTopic, parseTopic, sparkplugIdProblem, stateTopic,
} from '../../lib/sparkplug/topics';

describe('sparkplug topics and ids', () => {
  it('builds node, device and STATE topics in the spBv1.0 namespace', () => {
    assert.equal(nodeTopic('Plant 1', 'NBIRTH', 'gw-7'), 'spBv1.0/Plant 1/NBIRTH/gw-7');
    assert.equal(deviceTopic('Plant 1', 'DDATA', 'gw-7', 'drive 3'), 'spBv1.0/Plant 1/DDATA/gw-7/drive 3');
    assert.equal(stateTopic('scada'), 'spBv1.0/STATE/scada');
  });

  it('parses what it builds and refuses what is not Sparkplug', () => {
    assert.deepEqual(parseTopic('spBv1.0/G/NCMD/E'), { kind: 'node', groupId: 'G', type: 'NCMD', edgeNodeId: 'E' });
    assert.deepEqual(parseTopic('spBv1.0/G/DCMD/E/D'), { kind: 'device', groupId: 'G', type: 'DCMD', edgeNodeId: 'E', deviceId: 'D' });
    assert.deepEqual(parseTopic('spBv1.0/STATE/h1'), { kind: 'state', hostId: 'h1' });
    for (const topic of ['spBv1.0/G/DCMD/E', 'spBv1.0/G/NCMD/E/D', 'spBv1.0/G/XDATA/E', 'spAv1.0/G/NDATA/E', 'spBv1.0//NDATA/E', 'STATE/h1', 'spBv1.0/G/DDATA/E/D/x']) {
      assert.equal(parseTopic(topic), undefined, topic);
    }
  });

  it('accepts UTF-8 ids with spaces, dots and non-ASCII letters', () => {
    for (const id of ['Plant 1', 'gw.7', 'Förderband-Süd', '工場', 'a:b;c']) assert.equal(sparkplugIdProblem(id), undefined, id);
  });

  it('rejects + / # , empty ids, control characters and lone surrogates with a message that names the id', () => {
    const cases: [unknown, RegExp][] = [
      ['a+b', /contains "\+"/], ['a/b', /contains "\/"/], ['a#', /contains "#"/], ['', /is empty/],
      ['a\u0000b', /control character/], ['tab\there', /control character/], ['x\ud800', /lone surrogate/], [42, /must be a string/],
    ];
    for (const [id, message] of cases) assert.match(sparkplugIdProblem(id) ?? '', message, String(id));
    assert.throws(() => checkSparkplugId('device id', 'drive/3'), (error: Error) =>
      error instanceof SparkplugIdError && error.message === 'Sparkplug device id "drive/3" contains "/" (not allowed: + / #)');
  });
});

describe('sparkplug sequence numbers', () => {
  it('seq: 0 at birth, then +1 per message, 255 → 0, and a new birth starts again at 0', () => {
    const seq = new SequenceCounter();
    assert.equal(seq.birth(), 0);
    const seen: number[] = [];
    for (let i = 0; i < 300; i++) seen.push(seq.next());
    assert.deepEqual(seen.slice(0, 3), [1, 2, 3]);
    assert.deepEqual(seen.slice(253, 258), [254, 255, 0, 1, 2]);
    assert.equal(seq.birth(), 0);
    assert.equal(seq.next(), 1);
  });

  describe('bdSeq store', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'uns-bdseq-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('starts at 0, advances only on an accepted connect, persists across instances, wraps 255 → 0', () => {
      const file = bdSeqFile(dir, 'G', 'E');
      const warnings: string[] = [];
      const store = new BdSeqStore(file, (m) => warnings.push(m));
      assert.equal(store.next, 0);
      store.accepted(store.next);
      assert.equal(store.next, 1);
      assert.equal(new BdSeqStore(file, (m) => warnings.push(m)).next, 1, 'a restart continues');
      store.accepted(255);
      assert.equal(store.next, 0);
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { next: 0 });
      assert.deepEqual(warnings, []);
    });

    it('a damaged file starts at 0 with one warning that names the file', () => {
      const file = bdSeqFile(dir, 'G', 'E');
      new BdSeqStore(file, () => undefined).accepted(4);
      for (const content of ['{"next": 300}', 'garbage', '{"next": 1.5}']) {
        writeFileSync(file, content);
        const warnings: string[] = [];
        assert.equal(new BdSeqStore(file, (m) => warnings.push(m)).next, 0);
        assert.equal(warnings.length, 1);
        assert.ok(warnings[0].includes(file), warnings[0]);
      }
    });

    it('file names cannot collide or leave the directory', () => {
      assert.equal(fileSafeName('..'), '%2E%2E');
      assert.equal(fileSafeName('a/b'), 'a%2Fb');
      assert.notEqual(fileSafeName('a b'), fileSafeName('a_b'));
      assert.equal(fileSafeName('ü'), '%C3%BC');
      assert.equal(bdSeqFile('/x', '..', 'E'), '/x/%2E%2E/E.bdseq.json');
    });
  });
});
