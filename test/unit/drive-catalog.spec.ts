/**
 * The drive profile catalog fails closed (docs/drive-profiles.md § "User profiles fail closed"):
 * a user profile that overrides a shipped id and does not validate blocks that id instead of
 * letting the shipped profile (looser guards) stand in; a file whose id cannot be read blocks every
 * id; no error text quotes a file that is not a profile (a symbolic link to /etc/shadow, a non-JSON
 * file). Also the label of the profile list.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { driveProfileFolders, DriveProfileBlocked, findDriveProfile, profileCatalog, profileLabel } from '../../lib/drive/catalog';
import { jsonSyntaxProblem, loadDriveProfile, packagedProfilesDir } from '../../lib/drive/profile';

const SIM_ID = 'uns-edge-simulated-drive';
const SECRET = 'root:$6$N0tAR3alHash$abcdefghijkl:19000:0:99999:7:::';

/** The shipped simulated drive, tightened by a site: max 1000 rpm, arm required. */
function siteOverride(): { guards: Record<string, unknown> } {
  const json = JSON.parse(readFileSync(join(packagedProfilesDir(), 'simulated-drive.json'), 'utf8'));
  json.guards.setpointMax = 1000;
  json.guards.armRequired = true;
  return json;
}

describe('drive profile catalog: user profiles fail closed', () => {
  let userDir: string;
  let dir: string;
  const folders = () => driveProfileFolders(userDir);
  const blockedError = (id: string): DriveProfileBlocked => {
    try {
      findDriveProfile(id, folders());
    } catch (error) {
      assert.ok(error instanceof DriveProfileBlocked, String(error));
      return error;
    }
    return assert.fail(`profile ${id} was served`);
  };

  beforeEach(() => {
    userDir = mkdtempSync(join(tmpdir(), 'uns-drive-catalog-'));
    dir = join(userDir, 'uns-edge', 'profiles');
    mkdirSync(dir, { recursive: true });
  });
  afterEach(() => rmSync(userDir, { recursive: true, force: true }));

  it('a valid site override of a shipped id is used, with its tighter guards', () => {
    writeFileSync(join(dir, 'site-sim.json'), JSON.stringify(siteOverride()));
    const found = findDriveProfile(SIM_ID, folders());
    assert.deepEqual([found.origin, found.file, found.profile.guards.setpointMax, found.profile.guards.armRequired], ['user', 'site-sim.json', 1000, true]);
  });

  it('a site override of a shipped id with one schema error blocks that id: no fall back to the shipped 0..1800 rpm profile', () => {
    const broken = siteOverride();
    broken.guards.armTimeoutMs = '10 s';
    writeFileSync(join(dir, 'site-sim.json'), JSON.stringify(broken));
    const error = blockedError(SIM_ID);
    assert.equal(error.summary, 'site-sim.json: guards.armTimeoutMs: must be an integer');
    assert.match(error.message, /^drive profile "uns-edge-simulated-drive" cannot be used until this file is fixed or removed \(no fall back to another profile with this id\): user profile site-sim\.json: guards\.armTimeoutMs: must be an integer$/);
    assert.ok(!error.message.includes(userDir), 'no server path');
    assert.equal(findDriveProfile('abb-acs580', folders()).origin, 'package', 'other ids are not affected');

    const catalog = profileCatalog(folders());
    assert.deepEqual(catalog.errors, [{ origin: 'user', file: 'site-sim.json', claims: SIM_ID, problems: ['guards.armTimeoutMs: must be an integer'] }]);
    const sim = catalog.profiles.find((p) => p.id === SIM_ID);
    assert.deepEqual([sim?.origin, sim?.blockedBy], ['package', ['site-sim.json']], 'the list shows the shipped profile as blocked by the broken override');
    assert.deepEqual(catalog.profiles.find((p) => p.id === 'abb-acs580')?.blockedBy, []);
  });

  it('a semantic error (beyond the schema) blocks the id the same way', () => {
    const broken = siteOverride();
    broken.guards.setpointMax = 5000; // above setpoint.max 1800
    writeFileSync(join(dir, 'site-sim.json'), JSON.stringify(broken));
    assert.equal(blockedError(SIM_ID).summary, 'site-sim.json: guards.setpointMax: 5000 is above setpoint.max 1800');
  });

  it('a broken new profile blocks only its own id', () => {
    writeFileSync(join(dir, 'my-drive.json'), '{"id": "my-drive"}');
    assert.match(blockedError('my-drive').message, /user profile my-drive\.json: schemaVersion: is required; version: is required/);
    assert.equal(findDriveProfile(SIM_ID, folders()).origin, 'package');
  });

  it('a file that is not JSON blocks every id (it may be meant to override any), and says where the JSON breaks without quoting it', () => {
    writeFileSync(join(dir, 'site-sim.json'), `{\n  "id": "${SIM_ID}",\n  "guards": { "setpointMax": 1000, },\n  "note": "${SECRET}"\n}`);
    for (const id of [SIM_ID, 'abb-acs580']) {
      const error = blockedError(id);
      assert.equal(error.summary, 'site-sim.json: is not valid JSON (line 3, column 36)');
      assert.match(error.message, /user profile site-sim\.json \(its id cannot be read, so it may override any profile\): is not valid JSON/);
      assert.ok(!error.message.includes('N0tAR3al'), error.message);
    }
    const catalog = profileCatalog(folders());
    assert.deepEqual(catalog.errors.map((e) => [e.file, e.claims]), [['site-sim.json', null]]);
    assert.ok(catalog.profiles.every((p) => p.blockedBy.join() === 'site-sim.json'), JSON.stringify(catalog.profiles));
  });

  it('a symbolic link to a file outside the folder is not read and its content never appears; it blocks every id', () => {
    const outside = join(userDir, 'shadow');
    writeFileSync(outside, `${SECRET}\n`);
    symlinkSync(outside, join(dir, 'site-sim.json'));
    const error = blockedError(SIM_ID);
    assert.equal(error.summary, 'site-sim.json: is a symbolic link to a file outside the profile folder; not read (copy the profile into the folder)');
    const catalog = JSON.stringify(profileCatalog(folders()));
    for (const text of [error.message, catalog]) {
      assert.ok(!text.includes('N0tAR3al') && !text.includes('root:') && !text.includes(outside), text);
    }
  });

  it('a symbolic link inside the folder is followed; to a non-JSON file it says so without quoting it', () => {
    writeFileSync(join(dir, 'notes.txt'), SECRET);
    symlinkSync(join(dir, 'notes.txt'), join(dir, 'linked.json'));
    const error = blockedError(SIM_ID);
    assert.equal(error.summary, 'linked.json: is not valid JSON', 'V8 names no position for an unexpected token, and its message quotes the text');
    assert.ok(!error.message.includes('N0tAR3al') && !error.message.includes('root'), error.message);
    writeFileSync(join(dir, 'profile.data'), JSON.stringify(siteOverride()));
    rmSync(join(dir, 'linked.json'));
    symlinkSync('profile.data', join(dir, 'linked.json'));
    assert.equal(findDriveProfile(SIM_ID, folders()).profile.guards.setpointMax, 1000, 'a relative link to a profile in the folder is used');
  });

  it('a dangling link, a folder named *.json and an unlistable profile folder block every id', () => {
    symlinkSync(join(userDir, 'gone.json'), join(dir, 'gone.json'));
    assert.equal(blockedError(SIM_ID).summary, 'gone.json: is a symbolic link whose target cannot be resolved (ENOENT); not read');
    rmSync(join(dir, 'gone.json'));
    mkdirSync(join(dir, 'folder.json'));
    assert.equal(blockedError(SIM_ID).summary, 'folder.json: is not a regular file; not read');
    rmSync(dir, { recursive: true });
    writeFileSync(dir, ''); // "profiles" is a file, not a folder (as root, permissions cannot make a folder unreadable)
    const error = blockedError('abb-acs580');
    assert.equal(error.summary, 'profiles: the profile folder cannot be listed (ENOTDIR)');
    assert.deepEqual(profileCatalog(folders()).errors, [{ origin: 'user', file: 'profiles', claims: null, problems: ['the profile folder cannot be listed (ENOTDIR)'] }]);
  });

  it('two valid files of the user folder with one id block it: which guards apply would be a guess', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify(siteOverride()));
    const looser = siteOverride();
    looser.guards.setpointMax = 1800;
    writeFileSync(join(dir, 'b.json'), JSON.stringify(looser));
    assert.equal(blockedError(SIM_ID).summary, `b.json: id: "${SIM_ID}" is also the id of a.json in the same folder; which one applies would be a guess`);
  });

  it('a missing user folder is no error', () => {
    rmSync(join(userDir, 'uns-edge'), { recursive: true });
    assert.equal(findDriveProfile(SIM_ID, folders()).origin, 'package');
    assert.deepEqual(profileCatalog(folders()).errors, []);
  });

  it('JSON syntax errors become a line and column, never the parser text, which quotes the file (V8 of Node 20.20 and 22 does)', () => {
    assert.deepEqual(jsonSyntaxProblem('{\n "a": x', new SyntaxError('Unexpected token x in JSON at position 8')), { path: '', message: 'is not valid JSON (line 2, column 7)' });
    assert.deepEqual(jsonSyntaxProblem(SECRET, new SyntaxError(`Unexpected token 'r', "${SECRET.slice(0, 10)}"... is not valid JSON`)), { path: '', message: 'is not valid JSON' });
    assert.deepEqual(jsonSyntaxProblem('{', new SyntaxError('Unexpected end of JSON input')), { path: '', message: 'is not valid JSON (it ends too early)' });
  });

  it('reads a profile saved with a byte order mark', () => {
    writeFileSync(join(dir, 'bom.json'), `\uFEFF${JSON.stringify(siteOverride())}`);
    assert.equal(loadDriveProfile(join(dir, 'bom.json')).guards.setpointMax, 1000);
  });
});

describe('profile list label', () => {
  it('does not repeat a vendor that the family already names', () => {
    assert.equal(profileLabel('uns-edge', 'uns-edge simulated VFD'), 'uns-edge simulated VFD');
    assert.equal(profileLabel('ABB', 'ACS580 general purpose drives (standard control program)'), 'ABB ACS580 general purpose drives (standard control program)');
    assert.equal(profileLabel('Siemens', 'SINAMICS G120 converters, Modbus RTU'), 'Siemens SINAMICS G120 converters, Modbus RTU');
    assert.equal(profileLabel('Danfoss', 'danfoss VLT'), 'danfoss VLT');
    assert.equal(profileLabel('Eaton', 'Eatonix drives'), 'Eaton Eatonix drives', 'only a whole word counts');
    assert.equal(profileLabel('Eaton', 'Eaton'), 'Eaton');
  });

  it('the catalog carries the label: the simulated drive reads "uns-edge simulated VFD"', () => {
    const sim = profileCatalog(driveProfileFolders(undefined)).profiles.find((p) => p.id === SIM_ID);
    assert.equal(sim?.label, 'uns-edge simulated VFD');
  });
});
