/**
 * The log of a link's outages, damped for a flapping device. The client emits one 'outage' and
 * one 'restored' per outage; a device that drops its connection every second would still write
 * two lines a second. This keeps the first outage of a quiet period and its end in full, then
 * counts further outages and writes one summary line per window (default a minute) for as long
 * as the link keeps flapping. A window without a new outage ends the damping: the next outage is
 * written in full again.
 */

export type OutageLine =
  | { kind: 'outage'; address: string; reason: string }
  | { kind: 'restored'; address: string; downMs: number }
  /** `outages` more outages in the last `windowMs`; the last one's reason; whether the link is up now. */
  | { kind: 'flapping'; address: string; outages: number; lastReason: string; windowMs: number; connected: boolean };

export interface OutageLogOptions {
  /** Where the lines go (the node maps them to its log). */
  write(line: OutageLine): void;
  /** Length of a damping window, ms; default 60 000. */
  windowMs?: number;
}

export class OutageLog {
  private readonly windowMs: number;
  private windowTimer: NodeJS.Timeout | undefined;
  /** Outages counted (not written) in the current window. */
  private suppressed = 0;
  private lastReason = '';
  private address = '';
  private connected = true;

  constructor(private readonly options: OutageLogOptions) {
    this.windowMs = options.windowMs ?? 60_000;
  }

  outage(event: { address: string; reason: string }): void {
    this.connected = false;
    this.address = event.address;
    this.lastReason = event.reason;
    if (this.windowTimer) {
      this.suppressed++;
      return;
    }
    this.options.write({ kind: 'outage', ...event });
    this.openWindow();
  }

  restored(event: { address: string; downMs: number }): void {
    this.connected = true;
    // The end of the outage that was written in full is written too; later ones go in the summary.
    if (this.suppressed === 0) this.options.write({ kind: 'restored', ...event });
  }

  /** Stop the window timer (the link is closed); nothing more is written. */
  close(): void {
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
  }

  private openWindow(): void {
    this.windowTimer = setTimeout(() => {
      this.windowTimer = undefined;
      if (this.suppressed === 0) return; // quiet: the next outage is written in full
      this.options.write({
        kind: 'flapping', address: this.address, outages: this.suppressed, lastReason: this.lastReason,
        windowMs: this.windowMs, connected: this.connected,
      });
      this.suppressed = 0;
      this.openWindow();
    }, this.windowMs);
    this.windowTimer.unref();
  }
}
