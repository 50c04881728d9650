/**
 * lib/json-strict.ts and the files that guard writes: a duplicate name in a drive profile, a zone
 * policy or the OPC UA server model is refused with its JSON path, never resolved silently to the last
 * one (JSON.parse's behaviour, RFC 8259 §4), which could loosen a limit.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriveProfileError, listDriveProfiles, packagedProfilesDir } from '../../lib/drive/profile';
import { JsonDuplicateKeyError, parseJsonStrict } from '../../lib/json-strict';
import { parseServerModel, ServerModelError } from '../../lib/opcua/server-model';
import { parsePolicy, PolicyError } from '../../lib/zones/policy';

function duplicateAt(text: string): string | undefined {
  try {
    parseJsonStrict(text);
    return undefined;
  } catch (error) {
    if (error instanceof JsonDuplicateKeyError) return error.path;
    throw error;
  }
}

describe('strict JSON for write-guarding configuration', () => {
  it('finds a duplicate name at any depth, after unescaping, with its path', () => {
    assert.equal(duplicateAt('{"max": 1000, "max": 1800}'), '$.max');
    assert.equal(duplicateAt('{"max": 1000, "\\u006dax": 1800}'), '$.max', 'an escaped spelling of the same name');
    assert.equal(duplicateAt('{"rules": [{"id": "a"}, {"id": "b", "allow": {"max": 1, "min": 0, "max": 2}}]}'), '$.rules[1].allow.max');
    assert.equal(duplicateAt('{"assets": {"a/b": {"x": 1}, "a/b": {}}}'), '$.assets["a/b"]');
    assert.equal(duplicateAt(' {\n\t"a" :\r\n {} , "a":null }'), '$.a', 'JSON whitespace everywhere');
  });

  it('accepts what is not a duplicate: the same name in sibling or nested objects, names that only look alike, braces and quotes inside strings', () => {
    for (const text of [
      '{"a": {"max": 1}, "b": {"max": 2}, "max": 3}',
      '[{"id": 1}, {"id": 2}]',
      '{"Max": 1, "max": 2, "max ": 3}',
      '{"a": "}{\\"a\\": 1, \\"a\\"", "b": "\\\\", "c": [], "d": {}, "e": [1, -2.5e3, true, false, null]}',
      '"just a string"', '42', '[]', '{}',
    ]) assert.deepEqual(parseJsonStrict(text), JSON.parse(text), text);
  });

  it('passes JSON.parse\'s own errors through', () => {
    assert.throws(() => parseJsonStrict('{"a": 1,'), SyntaxError);
  });

  it('refuses a hostile document nested deeper than the stack, saying so', () => {
    const depth = 200_000;
    assert.throws(() => parseJsonStrict(`${'['.repeat(depth)}${']'.repeat(depth)}`), (error: unknown) => error instanceof SyntaxError);
  });

  it('a drive profile with a second "max" is refused with the path, and blocks its id rather than loosening the shipped one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uns-edge-profiles-dup-'));
    try {
      const shipped = readFileSync(join(packagedProfilesDir(), 'simulated-drive.json'), 'utf8');
      const id = (JSON.parse(shipped) as { id: string }).id;
      // The user's site copy tightens the setpoint limit… and a stale line further down puts the old one back.
      const override = shipped.replace(/"max":\s*(\d+)/, (_all, max: string) => `"max": ${Math.floor(Number(max) / 2)}, "max": ${max}`);
      assert.notEqual(override, shipped, 'the shipped profile has a "max" to duplicate');
      writeFileSync(join(dir, 'site-drive.json'), override);
      const { profiles, errors } = listDriveProfiles([packagedProfilesDir(), dir]);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof DriveProfileError);
      assert.match(errors[0].message, /site-drive\.json: parameters\[\d+\]\.max: is a duplicate key/);
      assert.equal(errors[0].claimedId, id, 'the id it declares is blocked (uns-vfd refuses to start with it)');
      assert.equal(profiles.find((p) => p.profile.id === id)?.file, join(packagedProfilesDir(), 'simulated-drive.json'), 'listed from the shipped folder; the block is the caller\'s');
      writeFileSync(join(dir, 'site-drive.json'), override.replace(/"id":\s*"[^"]+"/, `"id": "${id}", "id": "another-id"`));
      assert.equal(listDriveProfiles([dir]).errors[0].claimedId, undefined, 'two ids: which one is unknown, so every id is blocked');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a zone policy with a duplicate bound is refused', () => {
    const text = '{"rules": [{"id": "r-speed", "operation": ["write"], "action": "allow", "value": {"type": "number", "min": 0, "max": 1000, "max": 1800}}]}';
    assert.equal((parsePolicy(JSON.parse(text)).rules[0] as unknown as { value: { max: number } }).value.max, 1800, 'as an object (last one kept) it is a valid, looser policy');
    assert.throws(() => parsePolicy(text), (error: unknown) => error instanceof PolicyError && /duplicate key "max" at \$\.rules\[0\]\.value\.max/.test(error.message));
  });

  it('an OPC UA server model declaring a metric twice is refused', () => {
    const text = '{"assets": {"acme/line1/drive1": {"Speed": {"type": "Float", "writable": false}, "Speed": {"type": "Float", "writable": true}}}}';
    assert.equal(parseServerModel(JSON.stringify(JSON.parse(text))).assets.get('acme/line1/drive1')?.get('Speed')?.writable, true, 'with the last one kept it is a valid model with Speed writable');
    assert.throws(() => parseServerModel(text), (error: unknown) => error instanceof ServerModelError && /duplicate key "Speed" at \$\.assets\["acme\/line1\/drive1"\]\.Speed/.test(error.message));
  });
});
