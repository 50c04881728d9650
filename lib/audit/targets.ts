/**
 * What a scan may touch: the addresses, ports and Modbus unit ids the user listed, and nothing
 * beyond them (docs/asset-scan.md § "Targets and limits").
 *
 * An address list holds entries separated by commas, blanks or new lines:
 *   192.168.10.5          one IPv4 address
 *   192.168.10.5:1502     with its own port (else the protocol's port field)
 *   192.168.10.0/28       a CIDR block (prefix 16..32; host bits must be 0: "10.0.0.5/24" is refused,
 *                         since it does not say which block was meant). The network and broadcast
 *                         addresses of a block of 4 or more are skipped: they are not hosts.
 *   192.168.10.20-30      a range in the last octet; 192.168.10.20-192.168.11.10 a full range
 *   plc-7.local, [::1]    a host name or an IPv6 address: one target each (no IPv6 ranges)
 * An entry that covers more than a /24 (256 addresses) is refused unless `allowLargeRanges` is set
 * (the dialog's explicit tick), and a scan never covers more than MAX_SCAN_ADDRESSES targets.
 * Every problem names its entry; one bad entry refuses the whole list (nothing is scanned).
 */
import { isIPv6 } from 'node:net';

/** Addresses of one entry above which the explicit tick is needed: a /24. */
export const LARGE_RANGE = 256;
/** Targets of one protocol in one scan, even with the tick: a /20. */
export const MAX_SCAN_ADDRESSES = 4096;
/** Characters of a list: a list longer than this is not typed by a person. */
const MAX_LIST_LENGTH = 64 * 1024;

export interface ScanTarget {
  host: string;
  port: number;
}

export class TargetListError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'TargetListError';
    Object.setPrototypeOf(this, TargetListError.prototype);
  }
}

export interface AddressListOptions {
  /** Port of entries without their own. */
  defaultPort: number;
  /** The explicit tick: entries larger than a /24 are allowed. */
  allowLargeRanges?: boolean;
  /** What the list is, for messages ("Modbus addresses"). */
  what: string;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Split "host:port" (IPv6 in brackets); the port undefined when absent. */
function splitPort(entry: string): { host: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1], port: bracketed[2] };
  if (isIPv6(entry)) return { host: entry };
  const colon = entry.lastIndexOf(':');
  return colon < 0 ? { host: entry } : { host: entry.slice(0, colon), port: entry.slice(colon + 1) };
}

/** First and last address (as numbers) of an IPv4 CIDR or range entry; undefined when the entry is neither. */
function ipv4Span(host: string): { first: number; last: number; block: boolean } | string | undefined {
  const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(host);
  if (cidr) {
    const base = ipv4ToNumber(cidr[1]);
    const prefix = Number(cidr[2]);
    if (base === undefined) return `${cidr[1]} is not an IPv4 address`;
    if (prefix < 16 || prefix > 32) return `prefix /${prefix}: use /16 to /32`;
    const size = 2 ** (32 - prefix);
    if (base % size !== 0) return `host bits are set: the /${prefix} block holding it starts at ${numberToIpv4(base - (base % size))}`;
    return { first: base, last: base + size - 1, block: true };
  }
  const range = /^([\d.]+)-([\d.]+)$/.exec(host);
  if (range) {
    const first = ipv4ToNumber(range[1]);
    if (first === undefined) return `${range[1]} is not an IPv4 address`;
    const last = /^\d{1,3}$/.test(range[2]) ? ipv4ToNumber(`${range[1].split('.').slice(0, 3).join('.')}.${range[2]}`) : ipv4ToNumber(range[2]);
    if (last === undefined) return `${range[2]} is not an IPv4 address or last octet`;
    if (last < first) return 'the range ends before it starts';
    return { first, last, block: false };
  }
  return undefined;
}

/** The targets of an address list; throws TargetListError naming every bad entry. */
export function parseAddressList(text: string, options: AddressListOptions): ScanTarget[] {
  if (text.length > MAX_LIST_LENGTH) throw new TargetListError([`${options.what}: the list is longer than ${MAX_LIST_LENGTH} characters`]);
  const entries = text.split(/[\s,;]+/).filter(Boolean);
  const problems: string[] = [];
  const targets: ScanTarget[] = [];
  const seen = new Set<string>();
  const add = (host: string, port: number) => {
    const key = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (seen.has(key)) return;
    seen.add(key);
    targets.push({ host, port });
  };
  for (const entry of entries) {
    const problem = (why: string) => problems.push(`${options.what} "${entry.slice(0, 80)}": ${why}`);
    const { host, port: portText } = splitPort(entry);
    const port = portText === undefined ? options.defaultPort : parsePort(portText);
    if (port === undefined) {
      problem(`port ${portText} is not 1..65535`);
      continue;
    }
    const span = ipv4Span(host);
    if (typeof span === 'string') {
      problem(span);
      continue;
    }
    if (span) {
      const count = span.last - span.first + 1;
      if (count > LARGE_RANGE && !options.allowLargeRanges) {
        problem(`covers ${count} addresses, more than a /24 (${LARGE_RANGE}): tick "allow ranges larger than a /24" if that is meant`);
        continue;
      }
      if (count > MAX_SCAN_ADDRESSES) {
        problem(`covers ${count} addresses; a scan covers at most ${MAX_SCAN_ADDRESSES}`);
        continue;
      }
      const skipEdges = span.block && count >= 4;
      for (let n = span.first + (skipEdges ? 1 : 0); n <= span.last - (skipEdges ? 1 : 0); n++) add(numberToIpv4(n), port);
    } else if (ipv4ToNumber(host) !== undefined || isIPv6(host) || (HOST_NAME.test(host) && !/^[\d.]+$/.test(host))) {
      add(host, port);
    } else {
      problem('not an IPv4 address, CIDR block, range, IPv6 address or host name');
    }
    if (targets.length > MAX_SCAN_ADDRESSES) {
      problems.push(`${options.what}: more than ${MAX_SCAN_ADDRESSES} targets in all`);
      break;
    }
  }
  if (problems.length) throw new TargetListError(problems);
  return targets;
}

/** Modbus unit ids: "1-16, 247" (0..255, each at most once). */
export function parseUnitList(text: string): number[] {
  const units = new Set<number>();
  const problems: string[] = [];
  for (const part of text.split(/[\s,;]+/).filter(Boolean)) {
    const match = /^(\d{1,3})(?:-(\d{1,3}))?$/.exec(part);
    const first = match ? Number(match[1]) : NaN;
    const last = match?.[2] !== undefined ? Number(match[2]) : first;
    if (!match || first > 255 || last > 255 || last < first) {
      problems.push(`unit ids "${part.slice(0, 40)}": use numbers 0..255 or ranges such as 1-16`);
      continue;
    }
    for (let u = first; u <= last; u++) units.add(u);
  }
  if (problems.length) throw new TargetListError(problems);
  return [...units].sort((a, b) => a - b);
}

/** A port field: empty → the default; otherwise 1..65535. */
export function parsePortField(text: string | number | undefined, fallback: number, what: string): number {
  const value = String(text ?? '').trim();
  if (value === '') return fallback;
  const port = parsePort(value);
  if (port === undefined) throw new TargetListError([`${what}: ${value.slice(0, 40)} is not a port 1..65535`]);
  return port;
}
