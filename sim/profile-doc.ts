/**
 * Renders the register map, control/status bits, fault table and ratings of a drive profile as
 * Markdown, and keeps the generated section of docs/simulated-plant.md in step with
 * profiles/simulated-drive.json (one source for code, profile and doc).
 *
 *   npx tsx sim/profile-doc.ts --write   rewrite the generated section
 *   npx tsx sim/profile-doc.ts --check   exit 1 when the doc is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LOAD, DEFAULT_PHYSICS } from './drive-model';
import { BitSpec, DriveProfile, ParameterSpec, registerCount, simulatedDriveProfile } from './profile';

export const GENERATED_BEGIN = '<!-- BEGIN GENERATED from profiles/simulated-drive.json and sim/drive-model.ts by sim/profile-doc.ts: do not edit by hand -->';
export const GENERATED_END = '<!-- END GENERATED -->';
export const SIMULATED_PLANT_DOC = join(__dirname, '..', 'docs', 'simulated-plant.md');

/** 1-based reference number in the customary notation (3x for input registers, 4x for holding). */
function reference(p: ParameterSpec): string {
  const base = p.table === 'holding' ? 40001 : 30001;
  const last = p.address + registerCount(p.type) - 1;
  return last === p.address ? String(base + p.address) : `${base + p.address}–${base + last}`;
}

function range(p: ParameterSpec): string {
  return p.min === undefined && p.max === undefined ? '' : `${p.min ?? ''}..${p.max ?? ''}`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => escapeCell(String(c))).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function bitsTable(bits: BitSpec[]): string {
  return table(['Bit', 'Name', 'Meaning'], [...bits].sort((a, b) => a.bit - b.bit).map((b) => [b.bit, `\`${b.name}\``, b.description]));
}

/** The generated Markdown (without the markers). */
export function renderProfileMarkdown(profile: DriveProfile): string {
  const parameters = [...profile.parameters].sort((a, b) => a.table.localeCompare(b.table) || a.address - b.address);
  const controlParameter = profile.parameters.find((p) => p.name === profile.controlWord.parameter) as ParameterSpec;
  const statusParameter = profile.parameters.find((p) => p.name === profile.statusWord.parameter) as ParameterSpec;
  return [
    `### Register map (profile \`${profile.profile}\` v${profile.version}, ${profile.model})`,
    '',
    'Address = zero-based PDU address (what goes on the wire); Ref = the 1-based 3x/4x notation of vendor manuals.',
    '',
    table(
      ['Address', 'Ref', 'Table', 'Name', 'Type', 'Word order', 'Scale', 'Unit', 'Range', 'R/W', 'Description'],
      parameters.map((p) => [
        p.address, reference(p), p.table, `\`${p.name}\``, p.type,
        registerCount(p.type) > 1 ? p.wordOrder : '—',
        p.scale, p.unit, range(p), p.access, p.description,
      ]),
    ),
    '',
    `### Control word (holding ${controlParameter.address}, \`${controlParameter.name}\`)`,
    '',
    bitsTable(profile.controlWord.bits),
    '',
    'Commands (values to write to the control word):',
    '',
    table(['Command', 'Value', 'Meaning'], profile.controlWord.commands.map((c) => [`\`${c.name}\``, `${c.value} (0x${c.value.toString(16).padStart(4, '0')})`, c.description])),
    '',
    `### Status word (input ${statusParameter.address}, \`${statusParameter.name}\`)`,
    '',
    bitsTable(profile.statusWord.bits),
    '',
    '### Fault codes (`faultCode`)',
    '',
    table(['Code', 'Name', 'Meaning'], profile.faults.map((f) => [f.code, `\`${f.name}\``, f.description])),
    '',
    '### Ratings and protection limits (`ratings`)',
    '',
    table(['Rating', 'Value'], Object.entries(profile.ratings).map(([k, v]) => [`\`${k}\``, v])),
    '',
    '### Simulation constants (`DEFAULT_PHYSICS`, `DEFAULT_LOAD` in sim/drive-model.ts; overridable per drive)',
    '',
    table(['Constant', 'Value'], [...Object.entries(DEFAULT_PHYSICS), ...Object.entries(DEFAULT_LOAD).map(([k, v]) => [`load.${k}`, v])]
      .map(([k, v]) => [`\`${k}\``, v])),
  ].join('\n');
}

/** The doc with its generated section replaced; throws when the markers are missing. */
export function withGeneratedSection(doc: string, profile: DriveProfile): string {
  const begin = doc.indexOf(GENERATED_BEGIN);
  const end = doc.indexOf(GENERATED_END);
  if (begin < 0 || end < begin) throw new Error(`docs/simulated-plant.md: generated-section markers not found (${GENERATED_BEGIN} … ${GENERATED_END})`);
  return `${doc.slice(0, begin + GENERATED_BEGIN.length)}\n${renderProfileMarkdown(profile)}\n${doc.slice(end)}`;
}

if (require.main === module) {
  const mode = process.argv[2];
  const current = readFileSync(SIMULATED_PLANT_DOC, 'utf8');
  const wanted = withGeneratedSection(current, simulatedDriveProfile);
  if (mode === '--write') {
    writeFileSync(SIMULATED_PLANT_DOC, wanted);
    console.log(`wrote ${SIMULATED_PLANT_DOC}`);
  } else if (mode === '--check') {
    if (current !== wanted) {
      console.error('docs/simulated-plant.md is stale: run npx tsx sim/profile-doc.ts --write');
      process.exitCode = 1;
    }
  } else {
    console.log(renderProfileMarkdown(simulatedDriveProfile));
  }
}
