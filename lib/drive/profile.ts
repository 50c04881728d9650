/**
 * Drive profiles: load a profile (JSON), check it against lib/drive/drive-profile.schema.json and
 * against the rules JSON Schema cannot express, and return it normalised (hex words as numbers,
 * word order and scaling defaults filled in). docs/drive-profiles.md describes the format.
 *
 * Every problem is reported with the file and the JSON path of the offending value, e.g.
 *   profiles/abb-acs580.json: parameters[3].address: must be ≤ 65535
 * and all problems of a file are reported at once, so an author fixes a profile in one pass.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import Ajv2020, { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import { ModbusDataType, registerCount, WordOrder } from '../modbus/datatypes';
import { packageInfo } from '../runtime/package-info';
import profileSchema from './drive-profile.schema.json';
import { JsonDuplicateKeyError, parseJsonStrict } from '../json-strict';

export type RegisterTable = 'holding' | 'input';
export type ParameterType = Exclude<ModbusDataType, 'bit'>;
export type Access = 'R' | 'RW';
export type StatusSignal = 'ready' | 'running' | 'fault' | 'warning' | 'reverse' | 'atSetpoint' | 'remote';
export const STATUS_SIGNALS: readonly StatusSignal[] = ['ready', 'running', 'fault', 'warning', 'reverse', 'atSetpoint', 'remote'];
export type CommandName = 'startForward' | 'startReverse' | 'stop' | 'coastStop' | 'quickStop' | 'faultReset';
export const COMMAND_NAMES: readonly CommandName[] = ['startForward', 'startReverse', 'stop', 'coastStop', 'quickStop', 'faultReset'];
export type DirectionMethod = 'controlWord' | 'signedSetpoint' | 'none';

export interface Citation { source: string; section?: string; table?: string; page?: number | string; note?: string }

export interface SourceDocument {
  id: string;
  publisher: string;
  title: string;
  document: string;
  revision: string;
  date?: string;
  url?: string;
  consulted?: string;
  notes?: string;
}

export interface DriveParameter {
  name: string;
  /** Zero-based PDU address (Modbus Application Protocol v1.1b3 §4.4). */
  address: number;
  vendorRegister?: number;
  vendorName?: string;
  table: RegisterTable;
  type: ParameterType;
  /** Registers a string occupies; 1 for other types (unused). */
  length: number;
  wordOrder: WordOrder;
  /** engineering = raw × scale + offset. */
  scale: number;
  offset: number;
  unit: string;
  access: Access;
  /** Bounds of a write, engineering units (present for RW parameters). */
  min?: number;
  max?: number;
  description: string;
  cite?: Citation[];
}

export interface BitDefinition { bit: number; name: string; vendorName?: string; description: string; signal?: StatusSignal }
export type StatusCondition = Record<string, boolean>;

export interface CommandStep {
  controlWord: number;
  skipIf?: StatusCondition;
  awaitStatus?: { when: StatusCondition; timeoutMs: number };
  holdMs?: number;
  note?: string;
}
export interface CommandDefinition { description: string; steps: CommandStep[]; cite?: Citation[] }

export interface StateDefinition { name: string; when: StatusCondition; description?: string }
export interface FaultDefinition { code: number; name: string; vendorText?: string; description: string; cite?: Citation[] }

export interface GuardPolicy {
  setpointMin: number;
  setpointMax: number;
  /** Largest setpoint change per second (setpoint units); null = no rate limit. */
  maxRampPerSecond: number | null;
  onViolation: 'reject' | 'clamp';
  armRequired: boolean;
  armTimeoutMs: number;
  basis: string;
}

export interface DriveProfile {
  schemaVersion: 1;
  id: string;
  version: number;
  identity: { vendor: string; family: string; models: string[]; firmware?: string; interface: string; prerequisites?: string[]; notes?: string };
  sources: SourceDocument[];
  addressing: {
    vendorOffset: { holding: number; input?: number };
    rule: string;
    evidence: 'manual-example' | 'manual-statement' | 'derived' | 'unverified';
    cite: Citation[];
  };
  defaults: { wordOrder: WordOrder; unitId?: number; serial?: string };
  registerMap: { cite: Citation[]; notes?: string };
  parameters: DriveParameter[];
  controlWord: {
    parameter: string;
    bits: BitDefinition[];
    direction: DirectionMethod;
    commands: Partial<Record<CommandName, CommandDefinition>> & Record<'startForward' | 'stop' | 'faultReset', CommandDefinition>;
    cite: Citation[];
    notes?: string;
  };
  statusWord: { parameter: string; bits: BitDefinition[]; states: StateDefinition[]; cite: Citation[]; notes?: string };
  faults: { parameter?: string; complete: boolean; codes: FaultDefinition[]; unknown?: string; cite: Citation[] };
  setpoint: {
    parameter: string;
    quantity: 'speed' | 'frequency' | 'percent';
    reference: string;
    signed: boolean;
    min: number;
    max: number;
    cite: Citation[];
    notes?: string;
  };
  guards: GuardPolicy;
  ratings?: Record<string, number>;
  unknowns: { topic: string; detail: string }[];
}

export interface ProfileProblem { path: string; message: string }

/** Reported problems stop at this many, so a garbage file does not make a megabyte message. */
const MAX_PROBLEMS_REPORTED = 20;

/**
 * A profile file that cannot be used. `claimedId` is the id the file declares when it could be
 * read (a string `id` in a JSON object); undefined when it could not — a file that cannot be read
 * or parsed might be meant to override any profile (lib/drive/catalog.ts blocks them all).
 */
export class DriveProfileError extends Error {
  constructor(readonly file: string, readonly problems: readonly ProfileProblem[], readonly claimedId?: string) {
    super(formatProblems(file, problems));
    this.name = 'DriveProfileError';
    Object.setPrototypeOf(this, DriveProfileError.prototype);
  }
}

function formatProblems(file: string, problems: readonly ProfileProblem[]): string {
  const lines = problems.slice(0, MAX_PROBLEMS_REPORTED).map((p) => `${file}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
  if (problems.length > MAX_PROBLEMS_REPORTED) lines.push(`${file}: … and ${problems.length - MAX_PROBLEMS_REPORTED} more problems`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// JSON Schema part

let compiledSchema: ValidateFunction | undefined;

/**
 * The profile schema compiled once. ajv strict mode also checks the schema itself, except
 * strictRequired, which would refuse the "if access is RW then min and max are required" rules.
 */
function schemaValidator(): ValidateFunction {
  compiledSchema ??= new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(profileSchema);
  return compiledSchema;
}

/** "/parameters/3/address" → "parameters[3].address" */
export function jsonPath(pointer: string, child?: string): string {
  let out = '';
  const segments = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) segments.push(child);
  for (const segment of segments) {
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

const TYPE_WORDS: Record<string, string> = {
  integer: 'an integer', number: 'a number', string: 'a string', object: 'an object', array: 'an array', boolean: 'true or false', null: 'null',
};

function describeType(type: string): string {
  return type.split(',').map((t) => TYPE_WORDS[t] ?? t).join(' or ');
}

/** A constraint whose schema has a description explains itself with it (ajv verbose mode). */
function describedBy(error: ErrorObject): string | undefined {
  const description = (error.parentSchema as { description?: unknown } | undefined)?.description;
  return typeof description === 'string' ? description : undefined;
}

/** One readable problem from one ajv error; undefined for errors that only repeat another. */
function problemFromSchemaError(error: ErrorObject): ProfileProblem | undefined {
  const path = jsonPath(error.instancePath);
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'if': return undefined; // always accompanies the 'required' error of its 'then'
    case 'required': return { path: jsonPath(error.instancePath, String(p.missingProperty)), message: 'is required' };
    case 'additionalProperties': return { path: jsonPath(error.instancePath, String(p.additionalProperty)), message: 'is not a known field (check the spelling; see docs/drive-profiles.md)' };
    case 'enum': return { path, message: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}` };
    case 'const': return { path, message: describedBy(error) ?? `must be ${JSON.stringify(p.allowedValue)}` };
    case 'type': return { path, message: `must be ${describeType(String(p.type))}` };
    case 'maximum': return { path, message: `must be ≤ ${String(p.limit)}` };
    case 'minimum': return { path, message: `must be ≥ ${String(p.limit)}` };
    case 'exclusiveMinimum': return { path, message: `must be > ${String(p.limit)}` };
    case 'minItems': return { path, message: path.endsWith('cite') ? 'must cite at least one source' : `must have at least ${String(p.limit)} item(s)` };
    case 'maxItems': return { path, message: `must have at most ${String(p.limit)} items` };
    case 'minLength': return { path, message: 'must not be empty' };
    case 'pattern': return { path, message: `must match ${String(p.pattern)}` };
    case 'propertyNames': return undefined; // the 'pattern' error of the name says it
    default: return { path, message: error.message ?? error.keyword };
  }
}

function schemaProblems(json: unknown): ProfileProblem[] {
  const validate = schemaValidator();
  if (validate(json)) return [];
  const problems: ProfileProblem[] = [];
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) {
    const problem = problemFromSchemaError(error);
    if (!problem) continue;
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rules beyond JSON Schema

/** A profile as written: optional fields absent, control words possibly hex strings. */
type RawProfile = Omit<DriveProfile, 'parameters' | 'controlWord' | 'statusWord'> & {
  parameters: (Omit<DriveParameter, 'length' | 'wordOrder' | 'scale' | 'offset'> & { length?: number; wordOrder?: WordOrder; scale?: number; offset?: number })[];
  controlWord: Omit<DriveProfile['controlWord'], 'commands'> & { commands: Record<string, { description: string; steps: (Omit<CommandStep, 'controlWord'> & { controlWord: number | string })[]; cite?: Citation[] }> };
  statusWord: Omit<DriveProfile['statusWord'], 'states'> & { states?: StateDefinition[] };
};

/** Raw integer range of a numeric type (engineering limits are checked against it). */
function rawRange(type: ParameterType): [number, number] | undefined {
  switch (type) {
    case 'int16': return [-0x8000, 0x7fff];
    case 'uint16': return [0, 0xffff];
    case 'int32': return [-0x80000000, 0x7fffffff];
    case 'uint32': return [0, 0xffffffff];
    case 'int64': return [-(2 ** 63), 2 ** 63 - 1];
    case 'uint64': return [0, 2 ** 64 - 1];
    default: return undefined; // floats and strings
  }
}

function toWord(value: number | string): number {
  return typeof value === 'number' ? value : Number.parseInt(value.slice(2), 16);
}

/** A 16-bit word as the manuals print it: 0x047F. */
export function formatWord(word: number): string {
  return `0x${word.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Checks that need the whole document: references, overlaps, citations, consistency. */
function semanticProblems(profile: DriveProfile): ProfileProblem[] {
  const problems: ProfileProblem[] = [];
  const problem = (path: string, message: string): void => { problems.push({ path, message }); };

  // Sources and citations: every cite names a declared source and says where in it.
  const sourceIds = new Set<string>();
  profile.sources.forEach((s, i) => {
    if (sourceIds.has(s.id)) problem(`sources[${i}].id`, `duplicate source id "${s.id}"`);
    sourceIds.add(s.id);
  });
  const checkCitations = (cite: Citation[] | undefined, path: string): void => {
    cite?.forEach((c, i) => {
      if (!sourceIds.has(c.source)) problem(`${path}[${i}].source`, `"${c.source}" is not an id in sources (${[...sourceIds].join(', ')})`);
      if (c.section === undefined && c.table === undefined && c.page === undefined) problem(`${path}[${i}]`, 'must name a section, table or page of the source');
    });
  };
  checkCitations(profile.addressing.cite, 'addressing.cite');
  checkCitations(profile.registerMap.cite, 'registerMap.cite');
  checkCitations(profile.controlWord.cite, 'controlWord.cite');
  checkCitations(profile.statusWord.cite, 'statusWord.cite');
  checkCitations(profile.faults.cite, 'faults.cite');
  checkCitations(profile.setpoint.cite, 'setpoint.cite');
  profile.parameters.forEach((p, i) => checkCitations(p.cite, `parameters[${i}].cite`));
  Object.entries(profile.controlWord.commands).forEach(([name, c]) => checkCitations(c.cite, `controlWord.commands.${name}.cite`));
  profile.faults.codes.forEach((f, i) => checkCitations(f.cite, `faults.codes[${i}].cite`));

  // Parameters: unique names, holding-only writes, limits the type can hold, the vendor number
  // agreeing with the address (the 40001 off-by-one), no overlapping registers.
  const parameters = new Map<string, DriveParameter>();
  const owners: Record<RegisterTable, Map<number, string>> = { holding: new Map(), input: new Map() };
  profile.parameters.forEach((p, i) => {
    const at = `parameters[${i}]`;
    if (parameters.has(p.name)) problem(`${at}.name`, `duplicate parameter name "${p.name}"`);
    parameters.set(p.name, p);
    if (p.scale === 0) problem(`${at}.scale`, 'must not be 0');
    const size = registerCount(p.type, p.length);
    const last = p.address + size - 1;
    if (last > 0xffff) problem(`${at}.address`, `a ${p.type} at ${p.address} spans registers ${p.address}..${last}, beyond the last address 65535`);
    if (p.min !== undefined && p.max !== undefined && p.min > p.max) problem(`${at}.min`, `min ${p.min} is above max ${p.max}`);
    const range = rawRange(p.type);
    if (range) {
      const { scale, offset } = p;
      const ends = [range[0] * scale + offset, range[1] * scale + offset];
      const [lo, hi] = [Math.min(...ends), Math.max(...ends)];
      for (const key of ['min', 'max'] as const) {
        const v = p[key];
        if (v !== undefined && (v < lo - 1e-9 || v > hi + 1e-9)) problem(`${at}.${key}`, `${v} cannot be written as ${p.type} with scale ${scale} and offset ${offset} (representable: ${lo}..${hi})`);
      }
    }
    if (p.vendorRegister !== undefined) {
      const offset = profile.addressing.vendorOffset[p.table];
      if (offset === undefined) problem(`${at}.vendorRegister`, `addressing.vendorOffset.${p.table} is needed to check it`);
      else if (p.vendorRegister - offset !== p.address) {
        problem(`${at}.address`, `is ${p.address}, but vendor register ${p.vendorRegister} − offset ${offset} = ${p.vendorRegister - offset} (addressing.vendorOffset.${p.table}); an off-by-one?`);
      }
    }
    for (let a = p.address; a <= Math.min(last, 0xffff); a++) {
      const other = owners[p.table].get(a);
      if (other !== undefined && other !== p.name) {
        problem(at, `${p.name}: ${p.table} register ${a} is already used by ${other}`);
        break;
      }
      owners[p.table].set(a, p.name);
    }
  });

  const wordParameter = (name: string, path: string, writable: boolean): void => {
    const p = parameters.get(name);
    if (!p) { problem(path, `no parameter named "${name}"`); return; }
    if (p.type !== 'uint16') problem(path, `${name} must be a 16-bit register (uint16), not ${p.type}`);
    if (writable && p.access !== 'RW') problem(path, `${name} must be writable (access RW)`);
  };

  // Bits: unique positions and names.
  const checkBits = (bits: BitDefinition[], path: string, allowSignals: boolean): Set<string> => {
    const names = new Set<string>();
    const positions = new Set<number>();
    const signals = new Set<string>();
    bits.forEach((b, i) => {
      if (positions.has(b.bit)) problem(`${path}[${i}].bit`, `bit ${b.bit} is defined twice`);
      if (names.has(b.name)) problem(`${path}[${i}].name`, `bit name "${b.name}" is used twice`);
      if (b.signal !== undefined) {
        if (!allowSignals) problem(`${path}[${i}].signal`, 'signals belong to status word bits');
        else if (signals.has(b.signal)) problem(`${path}[${i}].signal`, `signal "${b.signal}" is given to two bits`);
        signals.add(b.signal);
      }
      positions.add(b.bit);
      names.add(b.name);
    });
    return names;
  };

  // Control word: the register, and command steps that refer to real status bits.
  wordParameter(profile.controlWord.parameter, 'controlWord.parameter', true);
  checkBits(profile.controlWord.bits, 'controlWord.bits', false);
  const statusBitNames = checkBits(profile.statusWord.bits, 'statusWord.bits', true);
  wordParameter(profile.statusWord.parameter, 'statusWord.parameter', false);
  const checkCondition = (when: StatusCondition, path: string): void => {
    for (const name of Object.keys(when)) if (!statusBitNames.has(name)) problem(path, `"${name}" is not a status word bit (${[...statusBitNames].join(', ')})`);
  };
  for (const [name, command] of Object.entries(profile.controlWord.commands)) {
    command.steps.forEach((step, i) => {
      const at = `controlWord.commands.${name}.steps[${i}]`;
      if (step.skipIf) checkCondition(step.skipIf, `${at}.skipIf`);
      if (step.awaitStatus) checkCondition(step.awaitStatus.when, `${at}.awaitStatus.when`);
    });
  }
  if (profile.controlWord.direction === 'controlWord' && !profile.controlWord.commands.startReverse) {
    problem('controlWord.commands.startReverse', 'is required when direction is "controlWord"');
  }
  if (profile.controlWord.direction !== 'controlWord' && profile.controlWord.commands.startReverse) {
    problem('controlWord.commands.startReverse', `is only for direction "controlWord" (this profile reverses by ${profile.controlWord.direction})`);
  }
  if (profile.controlWord.direction === 'signedSetpoint' && !(profile.setpoint.signed && profile.setpoint.min < 0)) {
    problem('controlWord.direction', 'signedSetpoint needs a signed setpoint with a negative setpoint.min');
  }
  (profile.statusWord.states ?? []).forEach((s, i) => checkCondition(s.when, `statusWord.states[${i}].when`));

  // Faults.
  if (profile.faults.parameter !== undefined && !parameters.has(profile.faults.parameter)) problem('faults.parameter', `no parameter named "${profile.faults.parameter}"`);
  const codes = new Set<number>();
  const faultNames = new Set<string>();
  profile.faults.codes.forEach((f, i) => {
    if (codes.has(f.code)) problem(`faults.codes[${i}].code`, `code ${f.code} is listed twice`);
    if (faultNames.has(f.name)) problem(`faults.codes[${i}].name`, `fault name "${f.name}" is used twice`);
    codes.add(f.code);
    faultNames.add(f.name);
  });
  if (profile.faults.complete && profile.faults.codes.length === 0) problem('faults.complete', 'cannot be true with no codes');

  // Setpoint and guards: the guard lies inside what the drive accepts, which lies inside what
  // the register can be written with.
  const setpoint = parameters.get(profile.setpoint.parameter);
  if (!setpoint) problem('setpoint.parameter', `no parameter named "${profile.setpoint.parameter}"`);
  else if (setpoint.access !== 'RW') problem('setpoint.parameter', `${setpoint.name} must be writable (access RW)`);
  else {
    if (profile.setpoint.min < (setpoint.min ?? -Infinity)) problem('setpoint.min', `${profile.setpoint.min} is below ${setpoint.name}.min ${setpoint.min}`);
    if (profile.setpoint.max > (setpoint.max ?? Infinity)) problem('setpoint.max', `${profile.setpoint.max} is above ${setpoint.name}.max ${setpoint.max}`);
  }
  if (profile.setpoint.min > profile.setpoint.max) problem('setpoint.min', `min ${profile.setpoint.min} is above max ${profile.setpoint.max}`);
  if (!profile.setpoint.signed && profile.setpoint.min < 0) problem('setpoint.min', 'is negative but setpoint.signed is false');
  if (profile.guards.setpointMin < profile.setpoint.min) problem('guards.setpointMin', `${profile.guards.setpointMin} is below setpoint.min ${profile.setpoint.min}`);
  if (profile.guards.setpointMax > profile.setpoint.max) problem('guards.setpointMax', `${profile.guards.setpointMax} is above setpoint.max ${profile.setpoint.max}`);
  if (profile.guards.setpointMin > profile.guards.setpointMax) problem('guards.setpointMin', `${profile.guards.setpointMin} is above guards.setpointMax ${profile.guards.setpointMax}`);
  return problems;
}

function normalise(raw: RawProfile): DriveProfile {
  const commands = Object.fromEntries(Object.entries(raw.controlWord.commands).map(([name, c]) => [name, {
    ...c,
    steps: c.steps.map((s) => ({ ...s, controlWord: toWord(s.controlWord) })),
  }])) as DriveProfile['controlWord']['commands'];
  return {
    ...raw,
    parameters: raw.parameters.map((p) => ({
      ...p,
      length: p.type === 'string' ? p.length as number : 1,
      wordOrder: p.wordOrder ?? raw.defaults.wordOrder,
      scale: p.scale ?? 1,
      offset: p.offset ?? 0,
    })),
    controlWord: { ...raw.controlWord, commands },
    statusWord: { ...raw.statusWord, states: raw.statusWord.states ?? [] },
  };
}

export interface ValidationOptions {
  /** Further rules of a consumer that supports less than the schema allows (e.g. the simulator). */
  rules?: (profile: DriveProfile) => ProfileProblem[];
}

/**
 * Check a parsed profile document and return it normalised. `file` names the document in error
 * messages. Throws DriveProfileError listing every problem with its JSON path.
 */
export function validateDriveProfile(json: unknown, file = 'drive profile', options: ValidationOptions = {}): DriveProfile {
  const structural = schemaProblems(json);
  if (structural.length) throw new DriveProfileError(file, structural);
  const profile = normalise(json as RawProfile);
  const problems = [...semanticProblems(profile), ...(options.rules?.(profile) ?? [])];
  if (problems.length) throw new DriveProfileError(file, problems);
  return profile;
}

/** A profile file larger than this is refused unread (the shipped ones are about 20 kB). */
export const MAX_PROFILE_BYTES = 1024 * 1024;

/** The reason of a file system error without its message, which names server paths. */
function fsReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `(${code})` : '(unknown error)';
}

function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * The text of a profile file, read only when it is safe to show problems found in it: a symbolic
 * link is followed only to a file inside the same folder (a link to /etc/shadow is neither read nor
 * quoted), only regular files up to MAX_PROFILE_BYTES are read (not a FIFO, a device or a folder
 * named *.json). Problems name the file, never its target or a server path.
 */
function readProfileText(file: string, folder: string): string {
  const refuse = (message: string): never => { throw new DriveProfileError(file, [{ path: '', message }]); };
  let target = file;
  try {
    if (lstatSync(file).isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync(file);
      } catch (error) {
        return refuse(`is a symbolic link whose target cannot be resolved ${fsReason(error)}; not read`);
      }
      if (!isInside(realpathSync(folder), real)) return refuse('is a symbolic link to a file outside the profile folder; not read (copy the profile into the folder)');
      target = real;
    }
    const stat = statSync(target);
    if (!stat.isFile()) return refuse('is not a regular file; not read');
    if (stat.size > MAX_PROFILE_BYTES) return refuse(`is ${stat.size} bytes, more than a profile may have (${MAX_PROFILE_BYTES}); not read`);
    return readFileSync(target, 'utf8');
  } catch (error) {
    if (error instanceof DriveProfileError) throw error;
    return refuse(`cannot be read ${fsReason(error)}`);
  }
}

/**
 * Where JSON.parse stopped, as line and column, without the parser's message: V8 (Node 20.20, 22)
 * quotes the text around an unexpected token ("Unexpected token 'r', "root:$y$j9T"... is not valid JSON")
 * and then gives no position.
 */
export function jsonSyntaxProblem(text: string, error: Error): ProfileProblem {
  const at = /at position (\d+)/.exec(error.message);
  if (!at) return { path: '', message: /end of JSON input/.test(error.message) ? 'is not valid JSON (it ends too early)' : 'is not valid JSON' };
  const position = Number(at[1]);
  const before = text.slice(0, position).split('\n');
  return { path: '', message: `is not valid JSON (line ${before.length}, column ${before[before.length - 1].length + 1})` };
}

/** The id a parsed document declares, if it declares one. */
function declaredId(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const id = (json as Record<string, unknown>).id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Read, parse and check a profile file. `folder` is the profile folder it was listed in (a symbolic
 * link must stay inside it). A DriveProfileError carries the id the file declares when it could be
 * read, and never the content of a file that is not a profile.
 */
export function loadDriveProfile(file: string, folder = dirname(file)): DriveProfile {
  const text = readProfileText(file, folder).replace(/^\uFEFF/, ''); // a byte order mark some Windows editors write
  let json: unknown;
  try {
    json = parseJsonStrict(text);
  } catch (error) {
    if (error instanceof JsonDuplicateKeyError) throw new DriveProfileError(file, [{ path: error.path.replace(/^\$\.?/, ''), message: 'is a duplicate key (JSON keeps only the last one: remove one of them)' }],
        // Two "id"s: which id the file meant is unknown, so it blocks every id (as an unreadable id does).
        error.path === '$.id' ? undefined : declaredId(JSON.parse(text)));
    throw new DriveProfileError(file, [jsonSyntaxProblem(text, error as Error)]);
  }
  try {
    return validateDriveProfile(json, file);
  } catch (error) {
    if (error instanceof DriveProfileError) throw new DriveProfileError(file, error.problems, declaredId(json));
    throw error;
  }
}

/** The folder of the profiles that ship with uns-edge. */
export function packagedProfilesDir(): string {
  return join(packageInfo().root, 'profiles');
}

export interface ProfileListing { profiles: { file: string; profile: DriveProfile }[]; errors: DriveProfileError[] }

/**
 * Every *.json profile in the given folders (a missing folder is skipped; one that exists but
 * cannot be listed is an error without a claimed id). A broken file does not hide the others: it
 * lands in `errors`. A later folder's profile replaces an earlier one with the same id, so a user
 * folder can override a packaged profile; two files of one folder with the same id are an error
 * that claims that id (which one applies would be a guess). `load` reads one file (a caching
 * loader may stand in for loadDriveProfile).
 */
export function listDriveProfiles(dirs: readonly string[] = [packagedProfilesDir()], load: (file: string) => DriveProfile = loadDriveProfile): ProfileListing {
  const byId = new Map<string, { file: string; profile: DriveProfile }>();
  const errors: DriveProfileError[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') errors.push(new DriveProfileError(dir, [{ path: '', message: `the profile folder cannot be listed ${fsReason(error)}` }]));
      continue;
    }
    const inFolder = new Map<string, string>();
    for (const entry of entries.filter((f) => f.endsWith('.json')).sort()) {
      const file = join(dir, entry);
      try {
        const profile = load(file);
        const twin = inFolder.get(profile.id);
        if (twin !== undefined) {
          errors.push(new DriveProfileError(file, [{ path: 'id', message: `"${profile.id}" is also the id of ${twin} in the same folder; which one applies would be a guess` }], profile.id));
          continue;
        }
        inFolder.set(profile.id, entry);
        byId.set(profile.id, { file, profile });
      } catch (error) {
        if (error instanceof DriveProfileError) errors.push(error);
        else throw error;
      }
    }
  }
  return { profiles: [...byId.values()], errors };
}

// ---------------------------------------------------------------------------------------------
// Lookups used by the domain logic

export function parameterNamed(profile: DriveProfile, name: string): DriveParameter {
  const p = profile.parameters.find((q) => q.name === name);
  if (!p) throw new RangeError(`drive profile ${profile.id}: no parameter named "${name}"`);
  return p;
}

