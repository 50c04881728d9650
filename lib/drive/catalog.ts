/**
 * The drive profiles a node can choose from: those shipped in the package's profiles/ folder and
 * those an integrator drops into `<userDir>/uns-edge/profiles/` (a user profile with the id of a
 * shipped one replaces it). Used by the editor's profile list and preview (an admin endpoint) and
 * by the node at deploy time, so both see the same profiles.
 *
 * Fail closed (docs/drive-profiles.md § "User profiles fail closed"): a file that does not validate
 * blocks the id it declares, and a file whose id cannot be read blocks every id; a blocked id is
 * never served by another file with that id (the shipped profile's guards may be looser).
 */
import { lstatSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DriveProfile, DriveProfileError, listDriveProfiles, loadDriveProfile, packagedProfilesDir, ProfileListing } from './profile';

export type ProfileOrigin = 'package' | 'user';

export interface ProfileFolder { origin: ProfileOrigin; dir: string }

/** The user's profile folder under a Node-RED user directory. */
export function userProfilesDir(userDir: string): string {
  return join(userDir, 'uns-edge', 'profiles');
}

export function driveProfileFolders(userDir: string | undefined): ProfileFolder[] {
  const folders: ProfileFolder[] = [{ origin: 'package', dir: packagedProfilesDir() }];
  if (userDir) folders.push({ origin: 'user', dir: userProfilesDir(userDir) });
  return folders;
}

/**
 * The name a person reads in the profile list: "ABB ACS580 general purpose drives", and
 * "uns-edge simulated VFD" rather than "uns-edge uns-edge simulated VFD" when the family already
 * starts with the vendor's name.
 */
export function profileLabel(vendor: string, family: string): string {
  const v = vendor.trim();
  const f = family.trim();
  if (!v) return f;
  if (f.toLowerCase() === v.toLowerCase() || f.toLowerCase().startsWith(`${v.toLowerCase()} `)) return f;
  return `${v} ${f}`;
}

/** One line of the profile list. File names only: the editor needs no server paths. */
export interface CatalogEntry {
  id: string;
  version: number;
  vendor: string;
  family: string;
  /** profileLabel(vendor, family) */
  label: string;
  models: string[];
  interface: string;
  origin: ProfileOrigin;
  file: string;
  /** Files that make this profile unusable (a broken file claiming its id, or one whose id cannot be read); [] when usable. */
  blockedBy: string[];
}

/**
 * A profile file that does not validate. `claims` is the id it declares; null when that cannot be
 * read (not JSON, a refused symbolic link, an unreadable file or folder): such a file could be
 * meant to override any profile, so it blocks them all.
 */
export interface CatalogProblem { origin: ProfileOrigin; file: string; claims: string | null; problems: string[] }

export interface ProfileCatalog { profiles: CatalogEntry[]; errors: CatalogProblem[] }

/**
 * The profile a node asked for cannot be used because profile files that do not validate claim
 * its id (or might: their id cannot be read). There is no fall back to another file with the id,
 * e.g. the shipped profile: its guards may be looser than the site's broken override.
 */
export class DriveProfileBlocked extends Error {
  constructor(readonly id: string, readonly blockers: readonly CatalogProblem[]) {
    super(`drive profile "${id}" cannot be used until ${blockers.length === 1 ? 'this file is fixed or removed' : 'these files are fixed or removed'} `
      + `(no fall back to another profile with this id): ${blockers.map(describeBlocker).join(' | ')}`);
    this.name = 'DriveProfileBlocked';
    Object.setPrototypeOf(this, DriveProfileBlocked.prototype);
  }

  /** The first problem, short enough for a node status: "site-sim.json: guards.setpointMax: must be ≤ 1800". */
  get summary(): string {
    const first = this.blockers[0];
    return `${first.file}: ${first.problems[0] ?? 'does not validate'}`;
  }
}

function describeBlocker(problem: CatalogProblem): string {
  const claim = problem.claims === null ? ' (its id cannot be read, so it may override any profile)' : '';
  return `${problem.origin} profile ${problem.file}${claim}: ${problem.problems.join('; ')}`;
}

function originOf(file: string, folders: readonly ProfileFolder[]): ProfileOrigin {
  const path = resolve(file);
  const dir = resolve(dirname(file));
  return folders.find((f) => resolve(f.dir) === dir || resolve(f.dir) === path)?.origin ?? 'user';
}

/**
 * Profiles already checked, by file, kept while the file (and a symbolic link to it) keeps its
 * size, modification time and inode: a deploy of many uns-vfd nodes validates each profile once,
 * and an edited or replaced file is read again.
 */
const checked = new Map<string, { key: string; result: DriveProfile | DriveProfileError }>();

function loadChecked(file: string): DriveProfile {
  let key: string;
  try {
    const link = lstatSync(file);
    const target = statSync(file);
    key = `${link.mtimeMs}/${target.dev}/${target.ino}/${target.mtimeMs}/${target.size}`;
  } catch {
    return loadDriveProfile(file); // reports the file as unreadable or its link as dangling
  }
  let entry = checked.get(file);
  if (!entry || entry.key !== key) {
    let result: DriveProfile | DriveProfileError;
    try {
      result = loadDriveProfile(file);
    } catch (error) {
      if (!(error instanceof DriveProfileError)) throw error;
      result = error;
    }
    entry = { key, result };
    checked.set(file, entry);
  }
  if (entry.result instanceof DriveProfileError) throw entry.result;
  return entry.result;
}

function problemLines(error: DriveProfileError): string[] {
  return error.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
}

/** Does this broken file take `id` out of use? Yes when it claims the id, or when its id cannot be read. */
function blocks(problem: CatalogProblem, id: string): boolean {
  return problem.claims === null || problem.claims === id;
}

function load(folders: readonly ProfileFolder[]): { listing: ProfileListing['profiles']; errors: CatalogProblem[] } {
  const { profiles, errors } = listDriveProfiles(folders.map((f) => f.dir), loadChecked);
  return {
    listing: profiles,
    errors: errors.map((e) => ({ origin: originOf(e.file, folders), file: basename(e.file), claims: e.claimedId ?? null, problems: problemLines(e) })),
  };
}

/** Every profile (sorted by vendor, family), each with the broken files that block it, and every broken file with its problems. */
export function profileCatalog(folders: readonly ProfileFolder[]): ProfileCatalog {
  const { listing, errors } = load(folders);
  const profiles = listing.map(({ file, profile }) => ({
    id: profile.id,
    version: profile.version,
    vendor: profile.identity.vendor,
    family: profile.identity.family,
    label: profileLabel(profile.identity.vendor, profile.identity.family),
    models: profile.identity.models,
    interface: profile.identity.interface,
    origin: originOf(file, folders),
    file: basename(file),
    blockedBy: errors.filter((e) => blocks(e, profile.id)).map((e) => e.file),
  }));
  profiles.sort((a, b) => a.vendor.localeCompare(b.vendor) || a.family.localeCompare(b.family) || a.id.localeCompare(b.id));
  return { profiles, errors };
}

/**
 * The profile with this id (a user profile before a shipped one). Throws DriveProfileBlocked when a
 * file that does not validate claims the id or has an id that cannot be read — never falling back
 * to another file with the id — and a plain Error when no file has the id.
 */
export function findDriveProfile(id: string, folders: readonly ProfileFolder[]): { profile: DriveProfile; origin: ProfileOrigin; file: string } {
  const { listing, errors } = load(folders);
  const blockers = errors.filter((e) => blocks(e, id));
  if (blockers.length) throw new DriveProfileBlocked(id, blockers);
  const found = listing.find((entry) => entry.profile.id === id);
  if (found) return { profile: found.profile, origin: originOf(found.file, folders), file: basename(found.file) };
  const available = listing.map((entry) => entry.profile.id).join(', ') || 'none';
  const broken = errors.length ? `; files that do not validate: ${errors.map((e) => e.file).join(', ')}` : '';
  throw new Error(`no drive profile with id "${id}" in ${folders.map((f) => f.dir).join(' or ')} (available: ${available}${broken})`);
}
