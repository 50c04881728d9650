/**
 * Status word → named bits, the uniform signals every drive reports (ready, running, fault,
 * warning, reverse, atSetpoint, remote) and a state text; fault code → text. All from the profile:
 * bit positions, which bit carries which signal, and the vendor's state names.
 */
import { DriveProfile, formatWord, STATUS_SIGNALS, StatusCondition, StatusSignal } from './profile';

export interface DecodedStatus {
  word: number;
  /** Every bit the profile names, by name. */
  bits: Record<string, boolean>;
  /** The uniform flags; null where the profile has no bit for it. */
  signals: Record<StatusSignal, boolean | null>;
  /** The vendor's state name (statusWord.states), or one derived from the signals. */
  state: string;
  stateDescription?: string;
}

function checkWord(word: number, what: string): void {
  if (!Number.isInteger(word) || word < 0 || word > 0xffff) throw new RangeError(`${what} must be an integer 0..65535, got ${word}`);
}

/** Whether every bit named in `when` has the required value. */
export function statusMatches(bits: Readonly<Record<string, boolean>>, when: StatusCondition): boolean {
  return Object.entries(when).every(([name, value]) => bits[name] === value);
}

/** The state when the profile lists no state names (or none matches): from the signals. */
function stateFromSignals(signals: DecodedStatus['signals'], word: number): string {
  if (signals.fault) return 'FAULT';
  if (signals.running) return signals.reverse ? 'RUNNING REVERSE' : 'RUNNING';
  if (signals.ready) return 'READY';
  if (signals.ready === false) return 'NOT READY';
  return `STATUS ${formatWord(word)}`;
}

/**
 * Decoded status words per profile: a drive's word takes a handful of values, and every poll decodes
 * it. Bounded per profile (MAX_DECODED_WORDS; when full it is emptied and refilled); entries are frozen
 * because every caller shares them.
 */
const decodedWords = new WeakMap<DriveProfile, Map<number, DecodedStatus>>();
const MAX_DECODED_WORDS = 256;

/** The status word decoded by the profile (a shared, frozen object). */
export function decodeStatusWord(profile: DriveProfile, word: number): DecodedStatus {
  let decoded = decodedWords.get(profile);
  if (decoded === undefined) decodedWords.set(profile, decoded = new Map());
  const known = decoded.get(word);
  if (known !== undefined) return known;
  const status = decodeStatusWordOnce(profile, word);
  Object.freeze(status.bits);
  Object.freeze(status.signals);
  if (decoded.size >= MAX_DECODED_WORDS) decoded.clear();
  decoded.set(word, Object.freeze(status));
  return status;
}

function decodeStatusWordOnce(profile: DriveProfile, word: number): DecodedStatus {
  checkWord(word, `${profile.id} status word`);
  const bits: Record<string, boolean> = {};
  const signals = Object.fromEntries(STATUS_SIGNALS.map((s) => [s, null])) as DecodedStatus['signals'];
  for (const b of profile.statusWord.bits) {
    const set = (word & (1 << b.bit)) !== 0;
    bits[b.name] = set;
    if (b.signal) signals[b.signal] = set;
  }
  const state = profile.statusWord.states.find((s) => statusMatches(bits, s.when));
  if (state) return { word, bits, signals, state: state.name, stateDescription: state.description };
  return { word, bits, signals, state: stateFromSignals(signals, word) };
}

export interface FaultInfo {
  code: number;
  /** The profile's name for the code, or 'unknown'. */
  name: string;
  text: string;
  known: boolean;
}

function codeText(code: number): string {
  return code > 9 ? `${code} (0x${code.toString(16).toUpperCase()})` : String(code);
}

/** Text for a fault code; a code the profile lacks says so, with what the profile knows about the gap. */
export function describeFault(profile: DriveProfile, code: number): FaultInfo {
  if (!Number.isInteger(code) || code < 0) throw new RangeError(`${profile.id} fault code must be a non-negative integer, got ${code}`);
  const fault = profile.faults.codes.find((f) => f.code === code);
  if (fault) {
    return { code, name: fault.name, text: fault.vendorText ? `${fault.vendorText}: ${fault.description}` : fault.description, known: true };
  }
  const gap = profile.faults.complete ? 'the vendor list in the profile has no such code' : `the profile's fault table is incomplete: ${profile.faults.unknown}`;
  return { code, name: 'unknown', text: `fault code ${codeText(code)} is not in the ${profile.id} fault table (${gap})`, known: false };
}
