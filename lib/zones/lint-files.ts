/**
 * `uns-edge check-zones flows.json [--strict] [--settings FILE]` (docs/zones.md § "Zone lint"):
 * the zone lint on files, for integrators' CI. Reads the flows file, the credentials file Node-RED
 * keeps beside it (flows_cred.json: plain, or encrypted with UNS_EDGE_CREDENTIAL_SECRET, the secret
 * the gateway uses) so a broker's user counts as authentication, and optionally the settings file
 * (adminAuth, httpAdminRoot, uiHost).
 *
 * Exit codes: 0 no finding that fails (errors; warnings too with --strict), 1 findings that fail,
 * 2 bad input (unreadable file, not JSON, not a flows file).
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { failsCheck, FlowsFileError, formatFinding, lintZones, type CredentialsById, type LintSettings } from './lint';

export const CHECK_CLEAN = 0;
export const CHECK_FINDINGS = 1;
export const CHECK_BAD_INPUT = 2;

export interface CheckReport {
  exitCode: number;
  /** One line per finding (stdout). */
  lines: string[];
  /** Notes and the summary (stderr). */
  notes: string[];
}

/** Node-RED's credentials file for a flows file: flows.json → flows_cred.json. */
export function credentialsFileOf(flowsFile: string): string {
  const extension = extname(flowsFile);
  return join(dirname(flowsFile), `${basename(flowsFile, extension)}_cred${extension}`);
}

/** Node-RED's credential encryption (runtime/lib/nodes/credentials.js): aes-256-ctr, key sha256(secret), `$` = hex IV + base64. */
export function decryptCredentials(encrypted: string, secret: string): CredentialsById {
  const key = createHash('sha256').update(secret).digest();
  const decipher = createDecipheriv('aes-256-ctr', key, Buffer.from(encrypted.slice(0, 32), 'hex'));
  const text = decipher.update(encrypted.slice(32), 'base64', 'utf8') + decipher.final('utf8');
  return JSON.parse(text) as CredentialsById;
}

/** The credentials beside a flows file, or undefined (with a note) when they cannot be read. */
function readCredentials(flowsFile: string, secret: string | undefined, notes: string[]): CredentialsById | undefined {
  const file = credentialsFileOf(flowsFile);
  if (!existsSync(file)) return {};
  try {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    if (typeof stored.$ !== 'string') return stored as CredentialsById;
    if (!secret) {
      notes.push(`${file} is encrypted and UNS_EDGE_CREDENTIAL_SECRET is not set: users of brokers are not known (authentication-unknown)`);
      return undefined;
    }
    return decryptCredentials(stored.$, secret);
  } catch (error) {
    notes.push(`${file} not read (${(error as Error).message}): users of brokers are not known`);
    return undefined;
  }
}

function readSettings(file: string): LintSettings {
  const path = resolve(file);
  // A settings.js is code by nature (Node-RED requires it too); a .json file is parsed.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = (extname(path) === '.json' ? JSON.parse(readFileSync(path, 'utf8')) : require(path)) as Record<string, unknown>;
  return { adminAuth: settings.adminAuth, httpAdminRoot: settings.httpAdminRoot as string | false | undefined, uiHost: settings.uiHost as string | undefined };
}

export function checkZonesFile(flowsFile: string, options: { strict?: boolean; settingsFile?: string; credentialSecret?: string }): CheckReport {
  const notes: string[] = [];
  let flows: unknown;
  try {
    flows = JSON.parse(readFileSync(flowsFile, 'utf8'));
  } catch (error) {
    const reason = error instanceof SyntaxError ? `not JSON (${error.message})` : (error as Error).message;
    return { exitCode: CHECK_BAD_INPUT, lines: [], notes: [`${flowsFile}: ${reason}`] };
  }
  let settings: LintSettings | undefined;
  if (options.settingsFile) {
    try {
      settings = readSettings(options.settingsFile);
    } catch (error) {
      return { exitCode: CHECK_BAD_INPUT, lines: [], notes: [`${options.settingsFile}: settings not read (${(error as Error).message})`] };
    }
  }
  const credentials = readCredentials(flowsFile, options.credentialSecret, notes);
  let findings;
  try {
    ({ findings } = lintZones(flows, { ...(settings ? { settings } : {}), ...(credentials ? { credentials } : {}) }));
  } catch (error) {
    if (error instanceof FlowsFileError) return { exitCode: CHECK_BAD_INPUT, lines: [], notes: [`${flowsFile}: ${error.message}`] };
    throw error;
  }
  const strict = options.strict === true;
  const errors = findings.filter((finding) => finding.severity === 'error').length;
  const warnings = findings.length - errors;
  notes.push(`${flowsFile}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}${strict ? ' (strict: warnings fail)' : ''}`);
  return { exitCode: failsCheck(findings, strict) ? CHECK_FINDINGS : CHECK_CLEAN, lines: findings.map(formatFinding), notes };
}
