/**
 * Quick codec measurement behind the codec decision in docs/sparkplug.md (the side-by-side
 * benchmark proper belongs in bench/). Run: `node --import tsx test/helpers/sparkplug-codec-measure.ts`
 * (`npx tsx` runs it in a child process measurably slower).
 *
 * Candidates, each on the same 1000-metric payloads:
 * - sparkplug-payload 1.0.3 (Eclipse Tahu, protobufjs 6 + long),
 * - protobufjs 7 on lib/sparkplug/sparkplug_b.proto, fed its own snake_case objects (no mapping
 *   from uns-edge's metric model and no Long → bigint/number conversion on decode: a lower bound
 *   of what a codec built on it would cost),
 * - uns-edge's codec (lib/sparkplug/payload.ts); its decode figure includes metricValue() per metric.
 *
 * Rounds alternate between candidates and the best round counts, because the machine is shared.
 */
import { DataType } from '../../lib/sparkplug/datatypes';
import { decodePayload, encodePayload, metricValue, type Metric } from '../../lib/sparkplug/payload';
import { OraclePayload } from './sparkplug-oracle';

const tahu = require('sparkplug-payload').get('spBv1.0') as { encodePayload(p: unknown): Uint8Array; decodePayload(b: Uint8Array): { metrics: unknown[] } };

const METRICS = 1000;
const ROUND_MS = 400;
const ROUNDS = 5;
const now = Date.now();

interface Case {
  title: string;
  ours: { metrics: Metric[]; omitDatatypes: boolean };
  tahu: unknown;
  protobufjs: Record<string, unknown>;
}

function makeCases(): Case[] {
  const floats = Array.from({ length: METRICS }, (_, i) => Math.fround(i * 1.5));
  const int64s = Array.from({ length: METRICS }, (_, i) => 9007199254740993n + BigInt(i) * 1000003n);
  return [
    {
      title: 'DATA: alias + Float + metric timestamp',
      ours: { metrics: floats.map((value, i) => ({ alias: i + 1, timestamp: now, datatype: DataType.Float, value })), omitDatatypes: true },
      tahu: { timestamp: now, seq: 5, metrics: floats.map((value, i) => ({ alias: i + 1, timestamp: now, type: 'Float', value })) },
      protobufjs: { timestamp: now, seq: 5, metrics: floats.map((value, i) => ({ alias: i + 1, timestamp: now, float_value: value })) },
    },
    {
      title: 'BIRTH: name + alias + datatype + Double + metric timestamp',
      ours: { metrics: floats.map((value, i) => ({ name: `Line 2/Drive ${i}/Speed`, alias: i + 1, timestamp: now, datatype: DataType.Double, value })), omitDatatypes: false },
      tahu: { timestamp: now, seq: 0, metrics: floats.map((value, i) => ({ name: `Line 2/Drive ${i}/Speed`, alias: i + 1, timestamp: now, type: 'Double', value })) },
      protobufjs: { timestamp: now, seq: 0, metrics: floats.map((value, i) => ({ name: `Line 2/Drive ${i}/Speed`, alias: i + 1, timestamp: now, datatype: 10, double_value: value })) },
    },
    {
      title: 'DATA: alias + Int64 beyond 2^53 + metric timestamp',
      ours: { metrics: int64s.map((value, i) => ({ alias: i + 1, timestamp: now, datatype: DataType.Int64, value })), omitDatatypes: true },
      // sparkplug-payload takes a Long (or a number, losing precision beyond 2^53); a decimal string is what it converts cheapest.
      tahu: { timestamp: now, seq: 5, metrics: int64s.map((value, i) => ({ alias: i + 1, timestamp: now, type: 'Int64', value: value.toString() })) },
      protobufjs: { timestamp: now, seq: 5, metrics: int64s.map((value, i) => ({ alias: i + 1, timestamp: now, long_value: value.toString() })) },
    },
  ];
}

function rate(fn: () => unknown): number {
  const start = process.hrtime.bigint();
  let runs = 0;
  while (Number(process.hrtime.bigint() - start) < ROUND_MS * 1e6) {
    fn();
    runs++;
  }
  return (runs * METRICS) / (Number(process.hrtime.bigint() - start) / 1e9);
}

function measure(candidates: Record<string, () => unknown>): Record<string, number> {
  const best: Record<string, number> = {};
  for (const fn of Object.values(candidates)) for (let i = 0; i < 50; i++) fn(); // warm up
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(candidates)) best[name] = Math.max(best[name] ?? 0, rate(fn));
  }
  return best;
}

const millions = (value: number): string => `${(value / 1e6).toFixed(2)} M/s`;

for (const c of makeCases()) {
  const ourPayload = { timestamp: now, seq: c.ours.omitDatatypes ? 5 : 0, metrics: c.ours.metrics };
  const ourBytes = encodePayload(ourPayload, { omitDatatypes: c.ours.omitDatatypes });
  const tahuBytes = tahu.encodePayload(c.tahu);
  const pbMessage = OraclePayload.fromObject(c.protobufjs);
  const pbBytes = OraclePayload.encode(pbMessage).finish();
  const encode = measure({
    'sparkplug-payload': () => tahu.encodePayload(c.tahu),
    protobufjs: () => OraclePayload.encode(OraclePayload.fromObject(c.protobufjs)).finish(),
    'uns-edge': () => encodePayload(ourPayload, { omitDatatypes: c.ours.omitDatatypes }),
  });
  const decode = measure({
    'sparkplug-payload': () => tahu.decodePayload(tahuBytes),
    protobufjs: () => OraclePayload.decode(pbBytes),
    'uns-edge': () => {
      const decoded = decodePayload(ourBytes);
      const datatype = c.ours.metrics[0].datatype;
      for (const metric of decoded.metrics) metricValue(metric, datatype);
    },
  });
  console.log(`\n${c.title} (${METRICS} metrics per payload)`);
  console.log('| codec | encode | decode | bytes/metric |');
  console.log('|---|---|---|---|');
  const sizes: Record<string, number> = { 'sparkplug-payload': tahuBytes.length, protobufjs: pbBytes.length, 'uns-edge': ourBytes.length };
  for (const name of Object.keys(encode)) {
    console.log(`| ${name} | ${millions(encode[name])} | ${millions(decode[name])} | ${(sizes[name] / METRICS).toFixed(1)} |`);
  }
  console.log(`uns-edge / sparkplug-payload: encode ×${(encode['uns-edge'] / encode['sparkplug-payload']).toFixed(2)}, decode ×${(decode['uns-edge'] / decode['sparkplug-payload']).toFixed(2)}`);
}
