import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import {
  DriveProfileError, jsonPath, listDriveProfiles, loadDriveProfile, packagedProfilesDir, validateDriveProfile,
} from '../../lib/drive/profile';
import schema from '../../lib/drive/drive-profile.schema.json';

const PROFILES = packagedProfilesDir();
const FILE = 'profiles/abb-acs580.json';
const abbJson = JSON.parse(readFileSync(join(PROFILES, 'abb-acs580.json'), 'utf8'));

type Json = typeof abbJson;

/** The problems a broken copy of the ABB profile is rejected with. */
function problemsOf(edit: (p: Json) => void): string[] {
  const copy = structuredClone(abbJson);
  edit(copy);
  try {
    validateDriveProfile(copy, FILE);
  } catch (error) {
    assert.ok(error instanceof DriveProfileError, String(error));
    return error.message.split('\n');
  }
  assert.fail('the broken profile was accepted');
}

function rejects(edit: (p: Json) => void, expected: string | RegExp): void {
  const problems = problemsOf(edit);
  const found = problems.some((p) => (typeof expected === 'string' ? p === expected : expected.test(p)));
  assert.ok(found, `expected ${String(expected)} among:\n${problems.join('\n')}`);
}

describe('drive profile schema and loader', () => {
  it('the schema is a valid draft 2020-12 schema under ajv strict mode', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });
    assert.ok(ajv.validateSchema(schema), JSON.stringify(ajv.errors));
    ajv.compile(schema);
  });

  it('every shipped profile validates, is named after its file, and says what it does not know', () => {
    const files = readdirSync(PROFILES).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 5, `the simulated drive and at least four real drive families: ${files}`);
    const { profiles, errors } = listDriveProfiles([PROFILES]);
    assert.deepEqual(errors.map((e) => e.message), []);
    assert.equal(profiles.length, files.length);
    for (const { file, profile } of profiles) {
      if (profile.id === 'uns-edge-simulated-drive') continue; // keeps the id the simulator has always had
      assert.equal(`${profile.id}.json`, file.split('/').pop());
      assert.ok(profile.unknowns.length > 0 || profile.faults.complete, `${profile.id} lists its gaps`);
      assert.ok(profile.sources.every((s) => s.document && s.revision), `${profile.id}: every source has a document number and revision`);
      assert.ok(profile.guards.armRequired, `${profile.id}: a real drive arms commands by default`);
      for (const p of profile.parameters.filter((q) => q.vendorRegister !== undefined)) {
        assert.equal(p.address, (p.vendorRegister as number) - profile.addressing.vendorOffset[p.table]!, `${profile.id}.${p.name}`);
      }
    }
  });

  it('normalises: hex control words become numbers, defaults are filled in', () => {
    const abb = loadDriveProfile(join(PROFILES, 'abb-acs580.json'));
    assert.deepEqual(abb.controlWord.commands.startForward.steps.map((s) => s.controlWord), [0x047e, 0x047f]);
    const status = abb.parameters.find((p) => p.name === 'statusWord');
    assert.deepEqual([status?.scale, status?.offset, status?.wordOrder, status?.length], [1, 0, 'ABCD', 1]);
  });

  it('names the file and the JSON path of a bad value', () => {
    rejects((p) => { p.parameters[3].address = 70000; }, 'profiles/abb-acs580.json: parameters[3].address: must be ≤ 65535');
    rejects((p) => { p.parameters[3].address = -1; }, 'profiles/abb-acs580.json: parameters[3].address: must be ≥ 0');
    rejects((p) => { p.parameters[0].address = '0'; }, 'profiles/abb-acs580.json: parameters[0].address: must be an integer');
  });

  it('refuses unknown types, bad word orders and unknown fields', () => {
    rejects((p) => { p.parameters[0].type = 'float16'; }, /^profiles\/abb-acs580\.json: parameters\[0\]\.type: must be one of int16, uint16, int32, uint32, int64, uint64, float32, float64, string$/);
    rejects((p) => { p.parameters[1].wordOrder = 'ABDC'; }, 'profiles/abb-acs580.json: parameters[1].wordOrder: must be one of ABCD, CDAB, BADC, DCBA');
    rejects((p) => { p.defaults.wordOrder = 'little'; }, 'profiles/abb-acs580.json: defaults.wordOrder: must be one of ABCD, CDAB, BADC, DCBA');
    rejects((p) => { p.parameters[0].adress = 0; }, /parameters\[0\]\.adress: is not a known field/);
    rejects((p) => { p.parameters[0].type = 'string'; }, 'profiles/abb-acs580.json: parameters[0].length: is required');
  });

  it('refuses a part without a citation, or one that cites nothing real', () => {
    rejects((p) => { delete p.controlWord.cite; }, 'profiles/abb-acs580.json: controlWord.cite: is required');
    rejects((p) => { p.statusWord.cite = []; }, 'profiles/abb-acs580.json: statusWord.cite: must cite at least one source');
    rejects((p) => { p.addressing.cite[0].source = 'acs800-fw'; }, /^profiles\/abb-acs580\.json: addressing\.cite\[0\]\.source: "acs800-fw" is not an id in sources/);
    rejects((p) => { p.setpoint.cite = [{ source: 'fw-other' }]; }, 'profiles/abb-acs580.json: setpoint.cite[0]: must name a section, table or page of the source');
    rejects((p) => { delete p.sources[0].revision; }, 'profiles/abb-acs580.json: sources[0].revision: is required');
    rejects((p) => { p.sources[1].id = p.sources[0].id; }, /sources\[1\]\.id: duplicate source id "fw-2016"/);
  });

  it('refuses overlapping registers, a value past 65535 and the 40001 off-by-one', () => {
    rejects((p) => { p.parameters[2].address = 1; p.parameters[2].vendorRegister = 400002; }, 'profiles/abb-acs580.json: parameters[2]: reference2: holding register 1 is already used by reference1');
    rejects((p) => { p.parameters[4].type = 'int32'; }, /parameters\[5\]: actual2: holding register 5 is already used by actual1/);
    rejects((p) => { p.parameters[5].type = 'float64'; p.parameters[5].address = 65534; delete p.parameters[5].vendorRegister; }, 'profiles/abb-acs580.json: parameters[5].address: a float64 at 65534 spans registers 65534..65537, beyond the last address 65535');
    rejects((p) => { p.parameters[3].address = 4; }, /parameters\[3\]\.address: is 4, but vendor register 400004 − offset 400001 = 3 .*an off-by-one\?/);
  });

  it('refuses writes to input registers, limits the type cannot carry and min above max', () => {
    rejects((p) => { p.parameters[3].table = 'input'; p.parameters[3].access = 'RW'; p.parameters[3].min = 0; p.parameters[3].max = 1; delete p.parameters[3].vendorRegister; },
      /parameters\[3\]\.table: only holding registers can be written/);
    rejects((p) => { delete p.parameters[0].max; }, 'profiles/abb-acs580.json: parameters[0].max: is required');
    rejects((p) => { p.parameters[1].max = 200; }, /parameters\[1\]\.max: 200 cannot be written as int16 with scale 0\.005/);
    rejects((p) => { p.parameters[0].min = 10; p.parameters[0].max = 5; }, 'profiles/abb-acs580.json: parameters[0].min: min 10 is above max 5');
  });

  it('checks commands, states, faults, setpoint and guards against the rest of the profile', () => {
    rejects((p) => { p.controlWord.commands.stop.steps[0].controlWord = '0x1FFFF'; }, /controlWord\.commands\.stop\.steps\[0\]\.controlWord: must match/);
    rejects((p) => { p.controlWord.commands.stop.steps[0].controlWord = 70000; }, 'profiles/abb-acs580.json: controlWord.commands.stop.steps[0].controlWord: must be ≤ 65535');
    rejects((p) => { p.controlWord.commands.startForward.steps[0].awaitStatus.when = { readyToSwitchOnn: true }; }, /awaitStatus\.when: "readyToSwitchOnn" is not a status word bit/);
    rejects((p) => { p.statusWord.states[0].when = { trippd: true }; }, /statusWord\.states\[0\]\.when: "trippd" is not a status word bit/);
    rejects((p) => { delete p.controlWord.commands.faultReset; }, 'profiles/abb-acs580.json: controlWord.commands.faultReset: is required');
    rejects((p) => { p.controlWord.direction = 'controlWord'; }, 'profiles/abb-acs580.json: controlWord.commands.startReverse: is required when direction is "controlWord"');
    rejects((p) => { p.controlWord.parameter = 'reference1'; }, 'profiles/abb-acs580.json: controlWord.parameter: reference1 must be a 16-bit register (uint16), not int16');
    rejects((p) => { p.statusWord.bits[1].signal = 'ready'; }, /statusWord\.bits\[1\]\.signal: signal "ready" is given to two bits/);
    rejects((p) => { p.statusWord.bits[1].bit = 0; }, /statusWord\.bits\[1\]\.bit: bit 0 is defined twice/);
    rejects((p) => { delete p.faults.unknown; }, 'profiles/abb-acs580.json: faults.unknown: is required');
    rejects((p) => { p.faults.parameter = 'faultCode'; }, 'profiles/abb-acs580.json: faults.parameter: no parameter named "faultCode"');
    rejects((p) => { p.setpoint.parameter = 'statusWord'; }, 'profiles/abb-acs580.json: setpoint.parameter: statusWord must be writable (access RW)');
    rejects((p) => { p.guards.setpointMax = 120; }, 'profiles/abb-acs580.json: guards.setpointMax: 120 is above setpoint.max 100');
    rejects((p) => { p.guards.maxRampPerSecond = 0; }, 'profiles/abb-acs580.json: guards.maxRampPerSecond: must be > 0');
  });

  it('reports every problem of a file at once', () => {
    const problems = problemsOf((p) => {
      p.parameters[3].address = 70000;
      p.parameters[0].type = 'float16';
      delete p.statusWord.cite;
    });
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  it('loads files: unreadable and malformed JSON are clear errors; a later folder overrides an id; a broken file hides no other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uns-edge-profiles-'));
    try {
      assert.throws(() => loadDriveProfile(join(dir, 'missing.json')), /missing\.json: cannot be read/);
      writeFileSync(join(dir, 'broken.json'), '{ "schemaVersion": 1, ');
      assert.throws(() => loadDriveProfile(join(dir, 'broken.json')), /broken\.json: is not valid JSON/);
      const override = structuredClone(abbJson);
      override.version = 7;
      writeFileSync(join(dir, 'abb-acs580.json'), JSON.stringify(override));
      const { profiles, errors } = listDriveProfiles([PROFILES, dir, join(dir, 'no-such-folder')]);
      assert.deepEqual(errors.map((e) => e.file), [join(dir, 'broken.json')]);
      const abb = profiles.find((p) => p.profile.id === 'abb-acs580');
      assert.equal(abb?.profile.version, 7);
      assert.equal(abb?.file, join(dir, 'abb-acs580.json'));
      assert.ok(profiles.some((p) => p.profile.id === 'siemens-sinamics-g120'), 'the packaged profiles are still listed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes JSON pointers as paths', () => {
    assert.equal(jsonPath('/parameters/3/address'), 'parameters[3].address');
    assert.equal(jsonPath('/controlWord/commands/stop', 'cite'), 'controlWord.commands.stop.cite');
    assert.equal(jsonPath('/statusWord/states/0/when/a~1b'), 'statusWord.states[0].when["a/b"]');
    assert.equal(jsonPath(''), '');
  });
});
