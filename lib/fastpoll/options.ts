/**
 * Checks of PollerOptions for the TypeScript fallback, with the same outcome as the addon's checks
 * (native/src/addon.cc ParseConfig): TypeError for a wrong type, RangeError for a value out of
 * range. The contract suite checks that both reject the same inputs.
 */
import { PollerOptions } from './types';

function numberField(o: Record<string, unknown>, key: string, min: number, max: number, required = false, integer = true): void {
  const v = o[key];
  if (v === undefined && !required) return;
  if (typeof v !== 'number') throw new TypeError(`${key} must be a number`);
  if (!(v >= min && v <= max)) throw new RangeError(`${key} must be in ${min}..${max}`);
  if (integer && !Number.isInteger(v)) throw new RangeError(`${key} must be an integer`);
}

function arrayField(o: Record<string, unknown>, key: string, required: boolean): unknown[] {
  const v = o[key];
  if (v === undefined && !required) return [];
  if (!Array.isArray(v)) throw new TypeError(`${key} must be an array`);
  return v;
}

function objectAt(a: unknown[], i: number, what: string): Record<string, unknown> {
  const v = a[i];
  if (typeof v !== 'object' || v === null) throw new TypeError(`${what} must be objects`);
  return v as Record<string, unknown>;
}

export function checkPollerOptions(options: unknown, onBatch: unknown): asserts options is PollerOptions {
  if (typeof options !== 'object' || options === null || typeof onBatch !== 'function') {
    throw new TypeError('new FastPoller(options: object, onBatch: function)');
  }
  const o = options as Record<string, unknown>;
  if (typeof o.host !== 'string') throw new TypeError('host must be a string');
  numberField(o, 'port', 1, 65535, true);
  numberField(o, 'unitId', 0, 255);
  numberField(o, 'periodMs', 0.1, 3_600_000, false, false);
  numberField(o, 'timeoutMs', 1, 60_000);
  numberField(o, 'connectTimeoutMs', 1, 60_000);
  numberField(o, 'reconnectMinMs', 1, 600_000);
  numberField(o, 'reconnectMaxMs', (o.reconnectMinMs as number | undefined) ?? 100, 600_000);
  numberField(o, 'ringCapacity', 16, 1 << 22);
  const blocks = arrayField(o, 'blocks', true);
  if (blocks.length === 0) throw new RangeError('blocks must not be empty');
  const quantities: number[] = [];
  blocks.forEach((_, i) => {
    const b = objectAt(blocks, i, 'blocks');
    numberField(b, 'fc', 1, 4, true);
    numberField(b, 'address', 0, 65535, true);
    numberField(b, 'quantity', 1, (b.fc as number) <= 2 ? 2000 : 125, true);
    if ((b.address as number) + (b.quantity as number) > 65536) throw new RangeError('block runs past address 65535');
    const deadbands = arrayField(b, 'deadbands', false);
    const signed = arrayField(b, 'signed', false);
    if (deadbands.length > (b.quantity as number) || signed.length > (b.quantity as number)) throw new RangeError('deadbands/signed longer than the block');
    if (deadbands.some((d) => typeof d !== 'number')) throw new TypeError('deadbands must be numbers');
    quantities.push(b.quantity as number);
  });
  const trips = arrayField(o, 'trips', false);
  trips.forEach((_, i) => {
    const t = objectAt(trips, i, 'trips');
    numberField(t, 'block', 0, blocks.length - 1, true);
    numberField(t, 'offset', 0, quantities[t.block as number] - 1, true);
    if (typeof t.when !== 'string') throw new TypeError("trips[].when must be 'above' or 'below'");
    if (t.when !== 'above' && t.when !== 'below') throw new RangeError("trips[].when must be 'above' or 'below'");
    numberField(t, 'limit', -1e300, 1e300, true, false);
    numberField(t, 'cycles', 1, 1_000_000);
    numberField(t, 'writeFc', 5, 6);
    numberField(t, 'writeAddress', 0, 65535, true);
    numberField(t, 'writeValue', 0, 65535, true);
  });
  if (o.realtime !== undefined) {
    if (typeof o.realtime !== 'object' || o.realtime === null) throw new TypeError('realtime must be an object');
    const r = o.realtime as Record<string, unknown>;
    numberField(r, 'priority', 0, 99);
    numberField(r, 'cpu', -1, 1023);
    numberField(r, 'spinUs', 0, 1000);
    if (r.lockMemory !== undefined && typeof r.lockMemory !== 'boolean') throw new TypeError('realtime.lockMemory must be a boolean');
  }
}

/** The same checks as the addon's write(). */
export function checkWrite(id: unknown, fc: unknown, address: unknown, values: unknown): void {
  if (typeof id !== 'number' || typeof fc !== 'number' || typeof address !== 'number' || !Array.isArray(values)) {
    throw new TypeError('write(id: number, fc: number, address: number, values: number[])');
  }
  if (fc !== 5 && fc !== 6 && fc !== 15 && fc !== 16) throw new RangeError('fc must be 5, 6, 15 or 16');
  if (!(address >= 0 && address <= 65535)) throw new RangeError('address must be 0..65535');
  const max = fc === 15 || fc === 16 ? 123 : 1;
  if (values.length < 1 || values.length > max) throw new RangeError('wrong number of values for this function code');
  for (const v of values) {
    if (typeof v !== 'number') throw new TypeError('values must be numbers');
    if (!(v >= 0 && v <= 65535) || !Number.isInteger(v)) throw new RangeError('values must be integers 0..65535');
  }
}
