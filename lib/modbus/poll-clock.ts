/**
 * Poll ticks shared by every poller of the process with the same period (what Kepware and Neuron call
 * a scan rate or group): one timer per period, and each tick polls every member in the same timer
 * callback. So the requests of all units of a link that poll at one rate are queued in the same
 * event-loop turn and leave in one socket write (lib/modbus/transport.ts flushes once per turn), and
 * their answers come back together, so their tag batches are published together (lib/mqtt/connection.ts
 * writes once per turn too). With a timer per poller, each unit's poll falls in a turn of its own
 * (docs/modbus.md: the system calls counted with strace, per poller and shared).
 *
 * Members are ticked in the order they joined. A link allowing one request in flight (the default)
 * queues the requests of one tick; its queue bound (ModbusClient queueLimit) applies as before.
 */
export class PollClock {
  private readonly rates = new Map<number, { timer: NodeJS.Timeout; members: Set<() => void> }>();

  /** Call `tick` every `periodMs` with every other member of that period, until the returned function is called. */
  join(periodMs: number, tick: () => void): () => void {
    const rate = this.rates.get(periodMs) ?? this.startRate(periodMs);
    const { members } = rate;
    members.add(tick);
    return () => {
      if (!members.delete(tick) || members.size > 0) return;
      clearInterval(rate.timer);
      if (this.rates.get(periodMs) === rate) this.rates.delete(periodMs);
    };
  }

  private startRate(periodMs: number): { timer: NodeJS.Timeout; members: Set<() => void> } {
    const members = new Set<() => void>();
    const timer = setInterval(() => {
      for (const member of members) member();
    }, periodMs);
    const rate = { timer, members };
    this.rates.set(periodMs, rate);
    return rate;
  }

  /** Periods with a timer running (for tests). */
  get periods(): number[] {
    return [...this.rates.keys()];
  }
}

/** The clock every ModbusPoller uses unless it is given another. */
export const processPollClock = new PollClock();
