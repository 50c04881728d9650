/**
 * The drive profiles a node can choose from: those shipped in the package's profiles/ folder and
 * those an integrator drops into `<userDir>/uns-edge/profiles/` (a user profile with the id of a
 * shipped one replaces it). Used by the editor's profile list and preview (an admin endpoint) and
 * by the node at deploy time, so both see the same profiles.
 */
import { statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DriveProfile, DriveProfileError, listDriveProfiles, loadDriveProfile, packagedProfilesDir } from './profile';

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

/** One line of the profile list. File names only: the editor needs no server paths. */
export interface CatalogEntry {
  id: string;
  version: number;
  vendor: string;
  family: string;
  models: string[];
  interface: string;
  origin: ProfileOrigin;
  file: string;
}

export interface CatalogProblem { origin: ProfileOrigin; file: string; problems: string[] }

export interface ProfileCatalog { profiles: CatalogEntry[]; errors: CatalogProblem[] }

function originOf(file: string, folders: readonly ProfileFolder[]): ProfileOrigin {
  const dir = resolve(dirname(file));
  return folders.find((f) => resolve(f.dir) === dir)?.origin ?? 'user';
}

/**
 * Profiles already checked, by file, kept while the file's size and modification time stay the
 * same: a deploy of many uns-vfd nodes validates each profile once, and an edited file is read again.
 */
const checked = new Map<string, { mtimeMs: number; size: number; result: DriveProfile | DriveProfileError }>();

function loadChecked(file: string): DriveProfile {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return loadDriveProfile(file); // reports the file as unreadable
  }
  let entry = checked.get(file);
  if (!entry || entry.mtimeMs !== stat.mtimeMs || entry.size !== stat.size) {
    let result: DriveProfile | DriveProfileError;
    try {
      result = loadDriveProfile(file);
    } catch (error) {
      if (!(error instanceof DriveProfileError)) throw error;
      result = error;
    }
    entry = { mtimeMs: stat.mtimeMs, size: stat.size, result };
    checked.set(file, entry);
  }
  if (entry.result instanceof DriveProfileError) throw entry.result;
  return entry.result;
}

function load(folders: readonly ProfileFolder[]): ReturnType<typeof listDriveProfiles> {
  return listDriveProfiles(folders.map((f) => f.dir), loadChecked);
}

/** Every usable profile (sorted by vendor, family) and every broken file with its problems. */
export function profileCatalog(folders: readonly ProfileFolder[]): ProfileCatalog {
  const { profiles: listing, errors } = load(folders);
  const profiles = listing.map(({ file, profile }) => ({
    id: profile.id,
    version: profile.version,
    vendor: profile.identity.vendor,
    family: profile.identity.family,
    models: profile.identity.models,
    interface: profile.identity.interface,
    origin: originOf(file, folders),
    file: basename(file),
  }));
  profiles.sort((a, b) => a.vendor.localeCompare(b.vendor) || a.family.localeCompare(b.family) || a.id.localeCompare(b.id));
  return {
    profiles,
    errors: errors.map((e) => ({ origin: originOf(e.file, folders), file: basename(e.file), problems: e.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)) })),
  };
}

/** The profile with this id (a user profile before a shipped one), or a clear error. */
export function findDriveProfile(id: string, folders: readonly ProfileFolder[]): { profile: DriveProfile; origin: ProfileOrigin; file: string } {
  const { profiles: listing, errors } = load(folders);
  const found = listing.find((entry) => entry.profile.id === id);
  if (found) return { profile: found.profile, origin: originOf(found.file, folders), file: basename(found.file) };
  const broken = errors.filter((e) => basename(e.file) === `${id}.json`);
  if (broken.length) throw new Error(`drive profile "${id}" is invalid:\n${broken.map((e) => e.message).join('\n')}`);
  const available = listing.map((entry) => entry.profile.id).join(', ') || 'none';
  throw new Error(`no drive profile with id "${id}" in ${folders.map((f) => f.dir).join(' or ')} (available: ${available})`);
}
