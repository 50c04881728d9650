/**
 * Property test of the conduit evaluator (issue 10 "Must show"): 100,000 random messages across
 * random policies. An independent, naive oracle (written from docs/zones.md, not from the compiled
 * matcher) finds for every metric that passed the first rule that matches it; the properties are
 * 0 metrics passed without a matching allow rule and 0 allowed values outside that rule's bounds.
 */
import { strict as assert } from 'node:assert';
import { Conduit, type ZoneInfo } from '../../lib/zones/conduit';
import { parsePolicy, type Operation, type Rule } from '../../lib/zones/policy';

/** Deterministic PRNG (mulberry32), so a failure can be reproduced from the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ZONES: ZoneInfo[] = [{ name: 'ent', level: 4 }, { name: 'dmz', level: 3.5 }, { name: 'ops', level: 3 }, { name: 'cell', level: 1 }, { name: 'cell2', level: 1 }];
const ASSETS = ['acme/p1/press/l1/c1/d1', 'acme/p1/press/l1/c1/d2', 'acme/p2/paint/l3/c1/d1', 'other/x', 'spBv1.0/g/DCMD/e1/d1', 'spBv1.0/g/NDATA/e1'];
const ASSET_PATTERNS = ['acme/#', 'acme/+/press/#', 'acme/p1/press/l1/c1/d1', '#', 'acme/p*/+/l1/#', 'spBv1.0/+/DCMD/#', 'other/x'];
const METRICS = ['speed', 'Speed', 'Motor/Temp', 'Motor/Current', 'mode', 'start', 'stop', 'arm/start', '__proto__', 'x'.repeat(2000)];
const METRIC_PATTERNS = ['speed', 'Motor/*', 'Motor/#', '+', '#', 'S*', 'start', 'arm/+', 'mode'];
const PRINCIPALS = [undefined, { via: 'mqtt', id: 'mqtt:mes-01', clientId: 'mes-01', user: 'mes' }, { via: 'mqtt', id: 'mqtt:#', clientId: '#' },
  { via: 'opcua', id: 'opcua:operator', user: 'operator' }, { via: 'sparkplug', id: 'sparkplug-host:SCADA', hostId: 'SCADA' }, { via: 'flow', id: '*' }];
const HUGE = 'y'.repeat(1_000_000);
const SPECIALS: unknown[] = [NaN, Infinity, -Infinity, -0, 1e308, 1e309, 5e-324, HUGE, '0x5DC', '1500', '1e3', '', true, false, null, [], {}, 1n, 2n ** 70n, undefined, 'auto'];

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)];
}
function some<T>(rand: () => number, list: readonly T[]): T[] {
  const n = 1 + Math.floor(rand() * 2);
  return Array.from({ length: n }, () => pick(rand, list));
}

function randomRule(rand: () => number, i: number): Record<string, unknown> {
  const rule: Record<string, unknown> = { id: `r${i}`, action: pick(rand, ['allow', 'allow', 'deny', 'allow-and-alert']) };
  const maybe = (p: number) => rand() < p;
  if (maybe(0.3)) rule.direction = some(rand, ['it->ot', 'ot->it', 'lateral']);
  if (maybe(0.2)) rule.sourceZone = some(rand, ZONES.map((z) => z.name));
  if (maybe(0.2)) rule.destinationZone = some(rand, ZONES.map((z) => z.name));
  if (maybe(0.4)) rule.principal = pick(rand, [{ id: ['mqtt:mes-*'] }, { via: ['opcua'] }, { clientId: ['mes-01'] }, { hostId: ['SCADA'] }, { id: ['*'] }]);
  rule.operation = some(rand, ['read', 'write', 'command']);
  if (maybe(0.15)) rule.modbus = { fc: some(rand, [3, 6, 16]), address: pick(rand, ['0-99', '100-199']) };
  if (maybe(0.1)) rule.sparkplug = { messageType: some(rand, ['DCMD', 'NDATA']) };
  if (maybe(0.1)) rule.opcua = { service: some(rand, ['Read', 'Write', 'Call']) };
  if (maybe(0.5)) rule.asset = some(rand, ASSET_PATTERNS);
  if (maybe(0.6)) rule.metric = some(rand, METRIC_PATTERNS);
  if (maybe(0.1)) rule.window = { from: pick(rand, ['06:00', '22:00']), to: pick(rand, ['18:00', '04:00']) };
  if (maybe(0.2)) rule.rate = { count: 1 + Math.floor(rand() * 20), perSeconds: 1, per: pick(rand, ['rule', 'principal']) };
  const needsValue = (rule.action !== 'deny' && (rule.operation as string[]).includes('write')) || maybe(0.5);
  if (needsValue) {
    const type = pick(rand, ['number', 'integer', 'boolean', 'string', 'any']);
    const value: Record<string, unknown> = { type };
    if (type === 'number' || type === 'integer') {
      if (maybe(0.7)) value.min = pick(rand, [-100, 0, 10]);
      if (maybe(0.7)) value.max = pick(rand, [100, 1500, 1e300]);
      if (value.min !== undefined && value.max !== undefined && (value.min as number) > (value.max as number)) delete value.min;
      if (maybe(0.3)) value.maxStep = pick(rand, [1, 50, 100]);
    }
    if (type === 'string' && maybe(0.5)) value.maxLength = pick(rand, [0, 4, 100]);
    rule.value = value;
  }
  return rule;
}

// ------------------------------------------------------------------ the oracle (naive, from the docs)

function topicMatches(pattern: string, value: string): boolean {
  const p = pattern.split('/');
  const v = value.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true;
    if (i >= v.length) return false;
    if (p[i] === '+') { if (v[i] === '') return false; continue; }
    if (p[i].includes('*')) {
      const [prefix, ...rest] = p[i].split('*');
      // single-star patterns only in this test: prefix*suffix within one level
      const suffix = rest.join('');
      if (!(v[i].startsWith(prefix) && v[i].endsWith(suffix) && v[i].length >= prefix.length + suffix.length)) return false;
      continue;
    }
    if (p[i] !== v[i]) return false;
  }
  return p.length === v.length;
}
function nameMatches(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const [prefix, suffix] = pattern.split('*');
  return value.startsWith(prefix) && value.endsWith(suffix);
}

const RANK: Record<Operation, number> = { read: 0, write: 1, command: 2 };
function operationOf(msg: Record<string, any>, source: ZoneInfo, destination: ZoneInfo): Operation {
  let op: Operation = destination.level < source.level ? 'write' : 'read';
  const raise = (o: Operation | undefined) => { if (o && RANK[o] > RANK[op]) op = o; };
  if (typeof msg.payload === 'string' || (msg.payload && typeof msg.payload === 'object' && Object.hasOwn(msg.payload, 'command'))) raise('command');
  if (msg.operation === 'write' || msg.operation === 'command') raise(msg.operation);
  if (msg.modbus && [5, 6, 15, 16, 21, 22, 23].includes(msg.modbus.fc)) raise('write');
  const spType = msg.topic.startsWith('spBv1.0/') ? msg.topic.split('/')[2] : undefined;
  if (spType === 'DCMD' || spType === 'NCMD') raise('write');
  if (msg.opcua?.service === 'Write') raise('write');
  if (msg.opcua?.service === 'Call') raise('command');
  return op;
}

function firstRule(rules: Rule[], msg: Record<string, any>, metric: string, source: ZoneInfo, destination: ZoneInfo, op: Operation, minute: number): Rule | undefined {
  const direction = destination.level < source.level ? 'it->ot' : destination.level > source.level ? 'ot->it' : 'lateral';
  const spType = msg.topic.startsWith('spBv1.0/') ? msg.topic.split('/')[2] : undefined;
  return rules.find((r) => {
    if (r.direction && !r.direction.includes(direction)) return false;
    if (r.sourceZone && !r.sourceZone.includes(source.name)) return false;
    if (r.destinationZone && !r.destinationZone.includes(destination.name)) return false;
    if (r.operation && !r.operation.includes(op)) return false;
    if (r.principal) {
      const p = msg.principal;
      if (!p) return false;
      for (const f of ['id', 'user', 'clientId', 'hostId', 'certificateCN'] as const) {
        const pats = r.principal[f];
        if (pats && !(p[f] !== undefined && pats.some((pat) => nameMatches(pat, p[f])))) return false;
      }
      if (r.principal.via && !r.principal.via.includes(p.via)) return false;
    }
    if (r.modbus) {
      const m = msg.modbus;
      if (!m || (r.modbus.fc && !r.modbus.fc.includes(m.fc))) return false;
      if (r.modbus.address && !r.modbus.address.some((a) => m.address >= a.from && m.address + (m.quantity ?? 1) - 1 <= a.to)) return false;
    }
    if (r.sparkplug && !(spType && r.sparkplug.messageType.includes(spType))) return false;
    if (r.opcua && !(msg.opcua && r.opcua.service.includes(msg.opcua.service))) return false;
    if (r.asset && !r.asset.some((a) => topicMatches(a, msg.topic))) return false;
    if (r.window) {
      const [fh, fm] = r.window.from.split(':').map(Number);
      const [th, tm] = r.window.to.split(':').map(Number);
      const from = fh * 60 + fm;
      const to = th * 60 + tm;
      const inside = from < to ? minute >= from && minute < to : minute >= from || minute < to;
      if (!inside) return false;
    }
    if (r.metric && !r.metric.some((m) => topicMatches(m, metric))) return false;
    return true;
  });
}

function withinBounds(r: Rule, value: unknown, previous: number | undefined): boolean {
  const b = r.value;
  if (!b) return true;
  const isNum = typeof value === 'number' && Number.isFinite(value);
  switch (b.type) {
    case 'number': if (!isNum) return false; break;
    case 'integer': if (!(typeof value === 'bigint' || (isNum && Number.isInteger(value)))) return false; break;
    case 'boolean': if (typeof value !== 'boolean') return false; break;
    case 'string': if (typeof value !== 'string' || value.length > (b.maxLength ?? 256)) return false; break;
    case 'any': if (!(isNum || typeof value === 'bigint' || typeof value === 'boolean' || (typeof value === 'string' && value.length <= 65536) || value === null)) return false; break;
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    const n = Number(value);
    if (b.min !== undefined && !(n >= b.min)) return false;
    if (b.max !== undefined && !(n <= b.max)) return false;
    if (b.maxStep !== undefined && previous !== undefined && !(Math.abs(n - previous) <= b.maxStep)) return false;
  }
  return true;
}

describe('zones: property test of the conduit evaluator', function () {
  this.timeout(120_000);

  it('100,000 random messages: 0 pass without a matching allow rule, 0 allowed values outside their rule’s bounds', () => {
    const seed = Number(process.env.ZONES_FUZZ_SEED ?? 6211);
    const rand = prng(seed);
    const MESSAGES = 100_000;
    const PER_POLICY = 250;
    let mono = 0;
    let wall = Date.UTC(2024, 5, 12, 0, 0);
    const clock = { monotonicMs: () => mono, wallMs: () => wall };
    let allowedMetrics = 0;
    let deniedMessages = 0;
    let partial = 0;
    const violations: string[] = [];
    for (let sent = 0; sent < MESSAGES;) {
      const rules = Array.from({ length: Math.floor(rand() * 12) }, (_, i) => randomRule(rand, i));
      const policy = parsePolicy({ rules });
      const source = pick(rand, ZONES);
      const destination = pick(rand, ZONES);
      const conduit = new Conduit(policy, { source, destination, clock });
      const last = new Map<string, number>();
      for (let k = 0; k < PER_POLICY && sent < MESSAGES; k++, sent++) {
        mono += rand() * 50;
        wall += Math.floor(rand() * 600_000);
        const msg: Record<string, any> = { topic: pick(rand, ASSETS), principal: pick(rand, PRINCIPALS) };
        const shape = rand();
        if (shape < 0.1) msg.payload = pick(rand, ['start', 'stop', 'faultReset']);
        else if (shape < 0.2) msg.payload = { command: pick(rand, ['start', 'arm', 'setpoint']), action: rand() < 0.5 ? 'start' : undefined, value: pick(rand, SPECIALS) };
        else if (shape < 0.23) msg.payload = pick(rand, SPECIALS);
        else {
          const payload: Record<string, unknown> = {};
          const n = 1 + Math.floor(rand() * 4);
          for (let i = 0; i < n; i++) {
            const value = rand() < 0.5 ? pick(rand, SPECIALS) : Math.round((rand() * 3200 - 200) * 10) / 10;
            Object.defineProperty(payload, pick(rand, METRICS), { value, enumerable: true, configurable: true, writable: true });
          }
          msg.payload = payload;
        }
        if (rand() < 0.1) msg.operation = pick(rand, ['read', 'write', 'command', 'delete']);
        if (rand() < 0.1) msg.modbus = { fc: pick(rand, [3, 6, 16, 8]), unit: 1, address: Math.floor(rand() * 220), quantity: 1 + Math.floor(rand() * 10) };
        if (rand() < 0.05) msg.opcua = { service: pick(rand, ['Read', 'Write', 'Call']) };
        if (rand() < 0.05) msg.retain = true;

        const decision = conduit.decide(msg);
        if (decision.result === 'deny') { deniedMessages++; continue; }
        if (decision.result === 'partial') partial++;
        const op = operationOf(msg, source, destination);
        if (op !== decision.operation) violations.push(`operation ${decision.operation} ≠ oracle ${op}`);
        if (op !== 'read' && msg.retain === true) violations.push('a retained write passed');
        const date = new Date(wall);
        const minute = date.getUTCHours() * 60 + date.getUTCMinutes();
        const isCommand = typeof msg.payload === 'string' || Object.hasOwn(msg.payload, 'command');
        for (const metric of decision.allowed) {
          allowedMetrics++;
          const value = isCommand ? (typeof msg.payload === 'string' ? undefined : msg.payload.value) : msg.payload[metric];
          const rule = firstRule(policy.rules, msg, metric, source, destination, op, minute);
          if (!rule || rule.action === 'deny') {
            violations.push(`seed ${seed}: metric ${metric.slice(0, 20)} of ${msg.topic} passed without a matching allow rule (first match: ${rule?.id ?? 'none'})`);
            continue;
          }
          const key = `${msg.topic}\u0000${metric}`;
          if (!withinBounds(rule, value, rule.value?.maxStep !== undefined ? last.get(key) : undefined)) {
            violations.push(`seed ${seed}: ${metric} = ${String(value).slice(0, 20)} outside the bounds of ${rule.id} ${JSON.stringify(rule.value)}`);
          }
          if (rule.value?.maxStep !== undefined) last.set(key, Number(value));
        }
      }
    }
    console.log(`      zones fuzz (seed ${seed}): ${MESSAGES} messages, ${allowedMetrics} metrics allowed, ${partial} partial batches, ${deniedMessages} messages denied, ${violations.length} violations`);
    assert.deepEqual(violations.slice(0, 10), []);
    assert.ok(allowedMetrics > 1_000, 'the random policies allow enough to make the property meaningful');
  });
});
