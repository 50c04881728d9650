/**
 * One warning per interval for a stream of the same kind of bad input (garbage commands from a
 * misbehaving host, say): the first is logged at once, the rest are counted and the count is
 * added to the next one logged, so a flood cannot flood the log.
 */
export class ThrottledWarning {
  private lastAt = Number.NEGATIVE_INFINITY;
  private held = 0;

  constructor(private readonly sink: (message: string) => void, private readonly intervalMs: number, private readonly now: () => number = Date.now) {}

  warn(message: string): void {
    const at = this.now();
    if (at - this.lastAt < this.intervalMs) {
      this.held++;
      return;
    }
    const held = this.held;
    this.held = 0;
    this.lastAt = at;
    this.sink(held > 0 ? `${message} (${held} more like it were not logged)` : message);
  }
}
