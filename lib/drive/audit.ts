/**
 * Audit trail of drive commands: one record for every write (who, what, old → new, when) and for
 * every command that was armed, rejected, cancelled or expired. Records go to a sink (the node's
 * log or a message output) and stay in a bounded ring for inspection; when the ring is full the
 * oldest record is dropped and counted, so memory stays flat.
 */
import { EngineeringValue } from './values';

export type AuditOutcome = 'armed' | 'cancelled' | 'rejected' | 'expired' | 'written' | 'failed';

export interface AuditValue { words: number[]; value: EngineeringValue }

export interface AuditRecord {
  /** ms since the epoch, and the same instant as ISO 8601. */
  timestamp: number;
  time: string;
  who: string;
  /** The drive: a label the owner chooses (asset path, unit id). */
  drive: string;
  /** The command as text, e.g. "startForward" or "setpoint 42.5". */
  command: string;
  outcome: AuditOutcome;
  parameter?: string;
  table?: 'holding';
  address?: number;
  /** The register before the write; null when it could not be read (see reason). */
  old?: AuditValue | null;
  new?: AuditValue;
  /** Index of the write within the command's sequence. */
  step?: number;
  ticket?: string;
  reason?: string;
}

export interface AuditTrailOptions {
  /** Records kept in memory (default 1000). */
  capacity?: number;
  /** Called with every record. A sink that throws does not stop the command; the error is counted. */
  sink?: (record: AuditRecord) => void;
  clock?: () => number;
}

export class AuditTrail {
  private readonly ring: AuditRecord[] = [];
  private readonly capacity: number;
  /** Records dropped from the full ring (they did reach the sink). */
  dropped = 0;
  sinkErrors = 0;
  lastSinkError?: Error;

  constructor(private readonly options: AuditTrailOptions = {}) {
    this.capacity = options.capacity ?? 1000;
    if (!(Number.isInteger(this.capacity) && this.capacity > 0)) throw new RangeError(`audit capacity must be a positive integer, got ${options.capacity}`);
  }

  record(entry: Omit<AuditRecord, 'timestamp' | 'time'>): AuditRecord {
    const timestamp = (this.options.clock ?? Date.now)();
    const record: AuditRecord = { timestamp, time: new Date(timestamp).toISOString(), ...entry };
    if (this.ring.length === this.capacity) {
      this.ring.shift();
      this.dropped++;
    }
    this.ring.push(record);
    try {
      this.options.sink?.(record);
    } catch (error) {
      this.sinkErrors++;
      this.lastSinkError = error as Error;
    }
    return record;
  }

  /** The records in memory, oldest first. */
  get records(): readonly AuditRecord[] {
    return this.ring;
  }
}

function formatValue(v: AuditValue | null | undefined): string {
  if (v === undefined) return '';
  if (v === null) return '?';
  return String(v.value);
}

/** Control characters (a newline in msg.user …) written as \uXXXX, so a message cannot forge a log line. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One log line for a record: "operator-7 startForward: written controlWord 0 → 1 (pump2)". */
export function formatAuditRecord(record: AuditRecord): string {
  const change = record.new ? ` ${record.parameter ?? ''} ${formatValue(record.old)} → ${formatValue(record.new)}` : '';
  const reason = record.reason ? `: ${record.reason}` : '';
  const ticket = record.ticket && (record.outcome === 'armed' || record.outcome === 'expired' || record.outcome === 'cancelled') ? ` [ticket ${record.ticket}]` : '';
  return oneLine(`audit ${record.drive}: ${record.who} ${record.command}: ${record.outcome}${change}${ticket}${reason}`);
}
