/**
 * The server side of the OPC UA trust procedure for a node-opcua server's PKI folder (the simulated
 * plant's): client certificates the server rejected moved from `rejected/` into `trusted/certs/`, as
 * a person does with a file manager. A person never moves a file the server is still writing; a test
 * polling every few hundred ms can, and then node-opcua-pki's folder watcher reads an empty file in
 * `trusted/`, may never see the write that completes it (chokidar drops a change within 5 ms of the
 * rename and one that leaves mtime on the same clock tick), and the client stays refused for good.
 * So only a complete PEM certificate is moved.
 */
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

const PEM_END = '-----END CERTIFICATE-----';

/** Moves every completely written certificate in `<pki>/rejected` to `<pki>/trusted/certs`; returns how many. */
export function trustRejectedClientCertificates(pki: string): number {
  let moved = 0;
  for (const file of readdirSync(join(pki, 'rejected'))) {
    const from = join(pki, 'rejected', file);
    if (!readFileSync(from, 'utf8').trimEnd().endsWith(PEM_END)) continue; // still being written: next time
    renameSync(from, join(pki, 'trusted', 'certs', file));
    moved += 1;
  }
  return moved;
}
