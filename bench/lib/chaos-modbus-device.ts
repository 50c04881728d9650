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
 *   wrongTid    an answer with the id of a transaction 1–100 before (a duplicate or stale answer; poisoned
 *               values). Not a later id: a loaded machine can delay a request past its timeout, and an
 *               answer with the id of the client's next request is indistinguishable from the real one
 *   wrongUnit   an answer with another unit id (poisoned values)
 *   shortPdu    an answer whose byte count promises more registers than it carries (consistent MBAP length)
 *   truncated   the first bytes of an answer, the rest never comes (the stream is out of step after it)
 *   garbage     random bytes instead of an answer
 *   drop        the connection is closed without an answer
 * and now and then (1 % of requests) a silent spell of 0.5–1.5 s in which nothing is answered.
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
    const answer = (tid: number, unit: number, fc: number, address: number, quantity: number): void => {
      stats.requests++;
      const now = Date.now();
      if (now < silentUntil) {
        stats.spell++;
        return;
      }
      if (random() < SILENT_SPELL_CHANCE) silentUntil = now + 500 + random() * 1000;
      const behaviour = draw();
      stats.behaviours[behaviour]++;
      const honest = () => readAnswer(fc, quantity, (i) => registerValue(epoch, now, address + i));
      const poisoned = () => readAnswer(fc, quantity, () => counterAt(epoch, now));
      switch (behaviour) {
        case 'honest': return write(frame(tid, unit, honest()));
        case 'exception': return write(frame(tid, unit, Buffer.from([fc | 0x80, random() < 0.5 ? 4 : 6])));
        case 'silence': return;
        case 'late': {
          const bytes = frame(tid, unit, poisoned());
          setTimeout(() => write(bytes), 200 + random() * 200);
          return;
        }
        case 'wrongTid': return write(frame((tid - 1 - Math.floor(random() * 100)) & 0xffff, unit, poisoned()));
        case 'wrongUnit': return write(frame(tid, (unit + 1) & 0xff, poisoned()));
        case 'shortPdu': return write(frame(tid, unit, readAnswer(fc, Math.max(1, quantity - 1), (i) => registerValue(epoch, now, address + i), quantity)));
        case 'truncated': {
          const bytes = frame(tid, unit, poisoned());
          return write(bytes.subarray(0, 3 + Math.floor(random() * (bytes.length - 4))));
        }
        case 'garbage': return write(Buffer.from(Array.from({ length: 5 + Math.floor(random() * 20) }, () => Math.floor(random() * 256))));
        case 'drop': socket.destroy(); return;
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
