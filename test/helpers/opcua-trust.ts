/**
 * The server side of the OPC UA trust procedure for a node-opcua server's PKI folder (the simulated
 * plant's): client certificates the server rejected moved from `rejected/` into `trusted/certs/`, as
 * a person does with a file manager, seconds after the refusal.
 *
 * Not sooner: node-opcua-pki 6.22 keeps an in-memory index of rejected/ and looks there before
 * trusted/ (CertificateManager #checkRejectedOrTrusted). The file it writes on a refusal is entered
 * into that index without the file name its folder watcher needs to drop the entry again, which the
 * watcher adds only when it reports the file itself. A file moved out before that report stays
 * "rejected" in the index until the server restarts, whatever is in trusted/: measured here, 2 of 3
 * certificates moved at once stayed refused, 0 of 3 moved after 1 s. So only a certificate that is
 * completely written and at least MIN_AGE_MS old is moved.
 */
import { readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

const PEM_END = '-----END CERTIFICATE-----';
const MIN_AGE_MS = 2000;

/** Moves every completely written certificate at least MIN_AGE_MS old in `<pki>/rejected` to `<pki>/trusted/certs`; returns how many. */
export function trustRejectedClientCertificates(pki: string): number {
  let moved = 0;
  for (const file of readdirSync(join(pki, 'rejected'))) {
    const from = join(pki, 'rejected', file);
    if (Date.now() - statSync(from).mtimeMs < MIN_AGE_MS) continue; // not yet seen by the server's watcher: next time
    if (!readFileSync(from, 'utf8').trimEnd().endsWith(PEM_END)) continue; // still being written: next time
    renameSync(from, join(pki, 'trusted', 'certs', file));
    moved += 1;
  }
  return moved;
}

/** What is in `<pki>/rejected` and `<pki>/trusted/certs` now, for a failure message. */
export function pkiFolderListing(pki: string): string {
  return ['rejected', join('trusted', 'certs')].map((folder) => {
    let files: string[];
    try {
      files = readdirSync(join(pki, folder)).map((file) => `${file} (${statSync(join(pki, folder, file)).size} B)`);
    } catch (error) {
      files = [(error as Error).message];
    }
    return `${folder}: ${files.join(', ') || '(empty)'}`;
  }).join('; ');
}
