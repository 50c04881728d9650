/**
 * uns-opcua-server's write guards fail closed (issue 11 review): a model or user list that is not
 * exactly right refuses to start with the field named, instead of falling back to something looser.
 */
import assert from 'node:assert/strict';
import { parseServerModel, ServerModelError } from '../../lib/opcua/server-model';
import type { DataValue } from 'node-opcua';
import type { MetricNode } from '../../lib/opcua/server-address-space';
import { usersFrom, WritePolicy, WriteStatus, type WriteCommand } from '../../lib/opcua/server-writes';
import { BuiltInType } from '../../lib/opcua/values';

const ASSET = 'acme/plant1/press/line2/cell1/drive1';
const modelWith = (metric: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ assets: { [ASSET]: { speedSetpoint: metric, motorCurrent: { type: 'Float' } } }, ...extra });

function modelProblems(text: string): string {
  try {
    parseServerModel(text);
  } catch (error) {
    assert.ok(error instanceof ServerModelError);
    return error.message;
  }
  assert.fail('the model was accepted');
}

describe('uns-opcua-server model: a hand-written mistake is refused whole', () => {
  it('a typo\'d range key on a writable metric ("rnage") is named, not a writable metric without range', () => {
    assert.match(modelProblems(modelWith({ type: 'Float', rnage: [0, 1800], writable: true })),
      /asset "acme\/plant1\/press\/line2\/cell1\/drive1" metric "speedSetpoint": unknown key "rnage"/);
  });

  it('a typo\'d writable key ("writeable") is named', () => {
    assert.match(modelProblems(modelWith({ type: 'Float', range: [0, 1800], writeable: true })), /metric "speedSetpoint": unknown key "writeable"/);
  });

  it('an unknown top-level key is named', () => {
    assert.match(modelProblems(modelWith({ type: 'Float' }, { asset: {} })), /unknown key "asset"/);
  });

  it('one bad type among good metrics: no model at all (so no writable metric)', () => {
    assert.match(modelProblems(modelWith({ type: 'float32', range: [0, 1800], writable: true })), /metric "speedSetpoint": type must be/);
  });

  it('the documented declaration keys are accepted', () => {
    const model = parseServerModel(modelWith({ type: 'Float', unit: 'rpm', range: [0, 1800], writable: true, description: 'speed' }));
    assert.deepEqual(model.assets.get(ASSET)?.get('speedSetpoint'), { type: 'Float', unit: 'rpm', range: { low: 0, high: 1800 }, writable: true, description: 'speed' });
  });
});

describe('uns-opcua-server users: never a write role by accident', () => {
  const passwords = JSON.stringify({ op: 'op-secret', viewer: 'view-secret' });
  const load = (rows: unknown[]) => {
    const problems: string[] = [];
    return { users: usersFrom(JSON.stringify(rows), passwords, problems), problems };
  };

  it('no role is read', () => {
    assert.deepEqual(load([{ kind: 'password', name: 'op' }]), { users: [{ kind: 'password', name: 'op', role: 'read', password: 'op-secret' }], problems: [] });
  });

  it('an unknown role string is a named problem (not read, not write)', () => {
    assert.deepEqual(load([{ kind: 'password', name: 'op', role: 'Write' }]).problems, ['user "op": role must be read or write, got "Write"']);
    assert.deepEqual(load([{ kind: 'password', name: 'op', role: 'admin' }]).problems, ['user "op": role must be read or write, got "admin"']);
  });

  it('an unknown kind is a named problem', () => {
    assert.match(load([{ kind: 'cert', name: 'op', role: 'read' }]).problems.join('; '), /user "op": kind must be password or certificate, got "cert"/);
  });

  it('the same user twice (read, then write) is a named problem', () => {
    assert.deepEqual(load([{ kind: 'password', name: 'op', role: 'read' }, { kind: 'password', name: 'op', role: 'write' }]).problems, ['user "op" is listed twice']);
  });

  it('a password user without a password in the credential is a named problem', () => {
    const problems: string[] = [];
    usersFrom(JSON.stringify([{ kind: 'password', name: 'op', role: 'write' }]), undefined, problems);
    assert.deepEqual(problems, ['user "op" has no password']);
  });
});

describe('uns-opcua-server write policy: who may write, and EURange', () => {
  const sent: WriteCommand[] = [];
  const policy = new WritePolicy({
    users: [{ kind: 'password', name: 'op', password: 'x', role: 'write' }, { kind: 'password', name: 'viewer', password: 'y', role: 'read' }],
    maxWritesPerSecond: 1000, timeoutMs: 50, maxPending: 10, idPrefix: 'n1', send: (c) => sent.push(c),
  });
  const metric = (builtIn: number, range?: { low: number; high: number }) =>
    ({ asset: ASSET, metric: 'count', variable: undefined, builtIn, writable: true, ...(range ? { range } : {}) }) as unknown as MetricNode;
  const as = (userName?: string) => ({ session: { nodeId: { toString: () => `s-${userName ?? 'anon'}` }, ...(userName !== undefined ? { userIdentityToken: { userName } } : { userIdentityToken: {} }) } });
  const value = (dataType: number, v: unknown) => ({ value: { dataType, arrayType: 0, value: v } }) as unknown as DataValue;
  beforeEach(() => { sent.length = 0; });

  it('anonymous, an unlisted user and a read user never write; nothing is sent', async () => {
    for (const who of [undefined, 'mallory', 'viewer']) {
      assert.equal(await policy.write(metric(BuiltInType.Int32), as(who), value(BuiltInType.Int32, 1)), WriteStatus.BadUserAccessDenied, String(who));
    }
    assert.equal(sent.length, 0);
  });

  it('an Int64 one above a 2^53 EURange high is out of range (compared exactly, not as a double)', async () => {
    const range = { low: 0, high: 2 ** 53 };
    assert.equal(await policy.write(metric(BuiltInType.Int64, range), as('op'), value(BuiltInType.Int64, [0x00200000, 1])), WriteStatus.BadOutOfRange);
    assert.equal(sent.length, 0);
    const atHigh = policy.write(metric(BuiltInType.Int64, range), as('op'), value(BuiltInType.Int64, [0x00200000, 0]));
    assert.equal(sent.length, 1, 'the high bound itself is in range');
    policy.settle({ opcuaWriteId: sent[0]!.opcuaWriteId });
    assert.equal(await atHigh, WriteStatus.Good);
  });
});
