/**
 * A misbehaving Modbus TCP device for bench/modbus-chaos.ts, in its own process (its timing is
 * not disturbed by the runtime under test, and its CPU is not counted as the client's).
 *
 * Every read request (FC3/FC4) draws one behaviour from a seeded PRNG (mulberry32), so a seed
 * gives the same sequence of behaviours per request, whatever client asks:
 *
 *   honest      the right answer
 *   exception   exception 4 (server device failure) or 6 (busy)
 *   silence     no answer
 *   late        the answer (poisoned values) 200–400 ms later, after a 150 ms client timeout
 *   wrongTid    a duplicate, stale answer (poisoned values) under the transaction id of one of the last
 *               100 requests this connection already answered (honest, exception, short or late answer);
 *               before the connection's first such answer, under an id 1–100 before its first request.
 *               Never the id of a request still waiting for its answer (a later id, or with pipelining an
 *               earlier request the device left unanswered): Modbus TCP matches an answer by transaction
 *               id only (Implementation Guide v1.0b §4.2.1), so an answer under the id of another
 *               outstanding request of the same unit and function is that request's answer for any client
 *   wrongUnit   an answer with another unit id (poisoned values)
 *   shortPdu    an answer whose byte count promises more registers than it carries (consistent MBAP length)
 *   truncated   the first bytes of an answer, the rest never comes (the stream is out of step after it)
 *   garbage     random bytes instead of an answer
 *   drop        the connection is closed without an answer
 * and now and then (1 % of requests) a silent spell of 0.5–1.5 s in which nothing is answered.
 *
 * Several requests in flight (pipelining, §4.2.1): each request draws its own behaviour, and a
 * connection's answers leave in the order of its requests, as from a gateway or a device that serves
 * a connection's requests one at a time: a late answer holds back the answers behind it on that
 * connection (they leave right after it), a silent or dropped request holds back nothing. Each
 * answer is its own socket write; answers written back to back may reach the client in one chunk.
 *
 * The registers are known to the bench: with `epoch` (ms since the Unix epoch) given by the parent,
 * the register at address a holds, at time t,
 *   a % 4 = 0: counter = floor((t − epoch) / 10) mod 65536      a % 4 = 1: counter XOR 0xFFFF
 *   a % 4 = 2: a                                                a % 4 = 3: 0x5A5A
 * An honest answer satisfies that; a poisoned one carries counter, counter (no XOR), so a client
 * that takes a late or mismatched answer as the reply delivers a value the bench sees as wrong.
 *
 * Parent side: startChaosDevice({seed, epoch}) → {port, pid, stats(), close()}. Child side (this
 * file run as a script): one JSON line {"port": n} when listening, then `stats` on stdin answers
 * one JSON line of counts per behaviour.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { createInterface } from 'node:readline';

export const BEHAVIOURS = [
  ['honest', 0.60], ['exception', 0.06], ['silence', 0.07], ['late', 0.06], ['wrongTid', 0.05], ['wrongUnit', 0.04],
  ['shortPdu', 0.04], ['truncated', 0.03], ['garbage', 0.03], ['drop', 0.02],
] as const;
export type Behaviour = (typeof BEHAVIOURS)[number][0];
const SILENT_SPELL_CHANCE = 0.01;
export const TICK_MS = 10;
export const FILLER = 0x5a5a;

export interface ChaosStats {
  requests: number;
  /** Requests that fell into a silent spell (not answered, not drawn). */
  spell: number;
  connections: number;
  behaviours: Record<Behaviour, number>;
}

export interface ChaosDevice {
  readonly port: number;
  readonly pid: number;
  stats(): Promise<ChaosStats>;
  close(): Promise<void>;
}

/** The counter register's value at time `t` (ms since the Unix epoch). */
export function counterAt(epoch: number, t: number): number {
  return Math.floor((t - epoch) / TICK_MS) & 0xffff;
}

/** The true value of register `address` at time `t`. */
export function registerValue(epoch: number, t: number, address: number): number {
  const counter = counterAt(epoch, t);
  switch (address % 4) {
    case 0: return counter;
    case 1: return counter ^ 0xffff;
    case 2: return address & 0xffff;
    default: return FILLER;
  }
}

/**
 * Why four registers read from `address` (a multiple of 4) at time `t` cannot be what the device
 * held within `maxAgeMs` before, or undefined when they can.
 */
export function wrongValue(epoch: number, t: number, address: number, values: readonly unknown[], maxAgeMs: number): string | undefined {
  if (values.length !== 4 || !values.every((v) => typeof v === 'number')) return `not 4 numbers: ${JSON.stringify(values)}`;
  const [counter, inverted, at, filler] = values as number[];
  if (inverted !== (counter ^ 0xffff) || at !== address + 2 || filler !== FILLER) return `inconsistent registers ${JSON.stringify(values)}`;
  const ageTicks = (counterAt(epoch, t) - counter) & 0xffff;
  if (ageTicks * TICK_MS > maxAgeMs) return `stale by ${ageTicks * TICK_MS} ms (counter ${counter})`;
  return undefined;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- parent

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function startChaosDevice(options: { seed: number; epoch: number }): Promise<ChaosDevice> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, String(options.seed), String(options.epoch)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (what: string): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chaos device: no answer to ${what} within 20 s`)), 20000);
    waiting.push((line) => { clearTimeout(timer); resolve(line); });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { children.delete(child); resolve(); }));
  const ready = await Promise.race([nextLine('start'), exited.then(() => { throw new Error('chaos device exited before listening'); })]);
  const { port } = JSON.parse(ready) as { port: number };
  return {
    port,
    pid: child.pid!,
    async stats() {
      const answer = nextLine('stats');
      child.stdin!.write('stats\n');
      return JSON.parse(await answer) as ChaosStats;
    },
    async close() {
      child.stdin!.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------- child

function frame(tid: number, unit: number, pdu: Buffer): Buffer {
  const adu = Buffer.alloc(7 + pdu.length);
  adu.writeUInt16BE(tid, 0);
  adu.writeUInt16BE(0, 2);
  adu.writeUInt16BE(pdu.length + 1, 4);
  adu.writeUInt8(unit, 6);
  pdu.copy(adu, 7);
  return adu;
}

function readAnswer(fc: number, quantity: number, values: (i: number) => number, claimed = quantity): Buffer {
  const pdu = Buffer.alloc(2 + 2 * quantity);
  pdu[0] = fc;
  pdu[1] = 2 * claimed;
  for (let i = 0; i < quantity; i++) pdu.writeUInt16BE(values(i), 2 + 2 * i);
  return pdu;
}

function childMain(seed: number, epoch: number): void {
  const random = mulberry32(seed);
  const stats: ChaosStats = {
    requests: 0, spell: 0, connections: 0,
    behaviours: Object.fromEntries(BEHAVIOURS.map(([name]) => [name, 0])) as Record<Behaviour, number>,
  };
  let silentUntil = 0;
  const draw = (): Behaviour => {
    let r = random();
    for (const [name, p] of BEHAVIOURS) {
      if (r < p) return name;
      r -= p;
    }
    return 'honest';
  };

  const server = net.createServer((socket) => {
    stats.connections++;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    const write = (bytes: Buffer) => {
      if (!socket.destroyed) socket.write(bytes);
    };
    /** This connection's answers not written yet, in request order; `at`: not before (a late answer). */
    const outbox: Array<{ at: number; act: () => void }> = [];
    let outboxTimer: NodeJS.Timeout | undefined;
    const drain = (): void => {
      outboxTimer = undefined;
      while (outbox.length > 0 && !socket.destroyed) {
        const wait = outbox[0].at - Date.now();
        if (wait > 0) {
          outboxTimer = setTimeout(drain, wait);
          return;
        }
        outbox.shift()!.act();
      }
    };
    const enqueue = (delayMs: number, act: () => void): void => {
      outbox.push({ at: Date.now() + delayMs, act });
      if (outboxTimer === undefined) drain();
    };
    socket.on('close', () => clearTimeout(outboxTimer));
    /** Transaction ids of the last 100 requests this connection answered (what a wrongTid duplicates). */
    const answered: number[] = [];
    let firstTid: number | undefined;
    const answerWith = (tid: number, unit: number, pdu: Buffer): void => {
      write(frame(tid, unit, pdu));
      answered.push(tid);
      if (answered.length > 100) answered.shift();
    };
    const answer = (tid: number, unit: number, fc: number, address: number, quantity: number): void => {
      stats.requests++;
      firstTid ??= tid;
      const arrived = Date.now();
      if (arrived < silentUntil) {
        stats.spell++;
        return;
      }
      if (random() < SILENT_SPELL_CHANCE) silentUntil = arrived + 500 + random() * 1000;
      const behaviour = draw();
      stats.behaviours[behaviour]++;
      // Every random number of a request is drawn on its arrival, so a seed gives the same answers
      // whatever the timing.
      const pick = random();
      // The registers of one answer are read at one instant (one clock reading: two could straddle a tick).
      const honest = (at = Date.now()) => readAnswer(fc, quantity, (i) => registerValue(epoch, at, address + i));
      const poisoned = (at = Date.now()) => readAnswer(fc, quantity, () => counterAt(epoch, at));
      switch (behaviour) {
        case 'honest': return enqueue(0, () => answerWith(tid, unit, honest()));
        case 'exception': return enqueue(0, () => answerWith(tid, unit, Buffer.from([fc | 0x80, pick < 0.5 ? 4 : 6])));
        case 'silence': return;
        case 'late': return enqueue(200 + pick * 200, () => answerWith(tid, unit, poisoned()));
        case 'wrongTid': return enqueue(0, () => {
          const duplicated = answered.length > 0
            ? answered[Math.floor(pick * answered.length)]
            : (firstTid! - 1 - Math.floor(pick * 100)) & 0xffff;
          write(frame(duplicated, unit, poisoned()));
        });
        case 'wrongUnit': return enqueue(0, () => write(frame(tid, (unit + 1) & 0xff, poisoned())));
        case 'shortPdu': return enqueue(0, () => {
          const at = Date.now();
          answerWith(tid, unit, readAnswer(fc, Math.max(1, quantity - 1), (i) => registerValue(epoch, at, address + i), quantity));
        });
        case 'truncated': return enqueue(0, () => {
          const bytes = frame(tid, unit, poisoned());
          write(bytes.subarray(0, 3 + Math.floor(pick * (bytes.length - 4))));
        });
        case 'garbage': {
          const bytes = Buffer.from(Array.from({ length: 5 + Math.floor(pick * 20) }, () => Math.floor(random() * 256)));
          return enqueue(0, () => write(bytes));
        }
        case 'drop': return enqueue(0, () => socket.destroy());
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 7) {
        const length = buffered.readUInt16BE(4);
        if (buffered.length < 6 + length) break;
        const tid = buffered.readUInt16BE(0);
        const unit = buffered[6];
        const pdu = buffered.subarray(7, 6 + length);
        buffered = buffered.subarray(6 + length);
        const fc = pdu[0];
        if ((fc === 3 || fc === 4) && pdu.length >= 5) answer(tid, unit, fc, pdu.readUInt16BE(1), Math.min(125, pdu.readUInt16BE(3)));
        else write(frame(tid, unit, Buffer.from([fc | 0x80, 1])));
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + '\n');
  });
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (line.trim() === 'stats') process.stdout.write(JSON.stringify(stats) + '\n');
  });
  input.on('close', () => process.exit(0));
}

if (require.main === module) childMain(Number(process.argv[2]), Number(process.argv[3]));
