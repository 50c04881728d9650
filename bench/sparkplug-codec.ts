/**
 * Sparkplug B payload codec: uns-edge's (lib/sparkplug/payload.ts) vs sparkplug-payload 1.0.3
 * (Eclipse Tahu, protobufjs 6 inside), encode and decode metrics/s and bytes per metric, in one
 * process run, interleaved.
 *
 *   node --expose-gc --import tsx bench/sparkplug-codec.ts [--runs 7] [--metrics 1000] [--round-ms 300] [--write]
 *
 * Each run measures every (payload, operation, codec) once for `--round-ms`, the codec order
 * alternating between runs; a run's figure is metrics/s over that window. Reported: median and
 * min–max over the runs, and the median of the per-run ratios uns-edge / sparkplug-payload.
 * Before the clock, every payload is cross-checked: each codec decodes the other's bytes to the
 * same values (a codec that skipped work could not pass).
 */
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DataType } from '../lib/sparkplug/datatypes';
import { decodePayload, encodePayload, metricValue, type Metric, type MetricValue } from '../lib/sparkplug/payload';
import { writeSection } from './lib/results-doc';
import { LoadMeter, machineFacts, summarize, type Summary } from './lib/stats';

interface TahuCodec {
  encodePayload(payload: unknown): Uint8Array;
  decodePayload(bytes: Uint8Array): { metrics: Array<{ name?: string; alias?: unknown; type?: string; value: unknown }> };
}
const tahu = (require('sparkplug-payload') as { get(ns: string): TahuCodec }).get('spBv1.0');
const TAHU_VERSION = (require('sparkplug-payload/package.json') as { version: string }).version;
/** The `long` package sparkplug-payload itself uses (its own copy): Int64 values go in as these Long objects. */
const Long = require(require.resolve('long', { paths: [dirname(require.resolve('sparkplug-payload'))] })) as {
  fromString(text: string, unsigned?: boolean): unknown;
};

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const RUNS = argument('runs', 7);
const METRICS = argument('metrics', 1000);
const ROUND_MS = argument('round-ms', 300);
const WRITE = process.argv.includes('--write');
const NOW = Date.now();

type CodecName = 'uns-edge' | 'sparkplug-payload';
const CODECS: CodecName[] = ['uns-edge', 'sparkplug-payload'];

interface PayloadCase {
  id: string;
  title: string;
  /** uns-edge's input and encode options. */
  ours: { payload: { timestamp: number; seq: number; metrics: Metric[] }; omitDatatypes: boolean };
  /** sparkplug-payload's input: the same metrics in its object model. */
  tahu: unknown;
  /** Datatype of each metric as a host knows it (from the BIRTH), for reading alias-only DATA. */
  datatypes: number[];
  /** The value each metric must decode to, as a string (exact for Int64). */
  expected: string[];
}

const BIRTH_TYPES = [
  { datatype: DataType.Double, tahuType: 'Double', value: (i: number) => i * 1.25 },
  { datatype: DataType.Int32, tahuType: 'Int32', value: (i: number) => -1000 + i },
  { datatype: DataType.Boolean, tahuType: 'Boolean', value: (i: number) => i % 3 === 0 },
  { datatype: DataType.String, tahuType: 'String', value: (i: number) => `state ${i}` },
] as const;

function makeCases(): PayloadCase[] {
  const floats = Array.from({ length: METRICS }, (_, i) => Math.fround(i * 1.5 + 0.25));
  const int64s = Array.from({ length: METRICS }, (_, i) => 9007199254740993n + BigInt(i) * 1000003n);
  const births = Array.from({ length: METRICS }, (_, i) => BIRTH_TYPES[i % BIRTH_TYPES.length]);
  const birthName = (i: number) => `Line 2/Drive ${Math.floor(i / BIRTH_TYPES.length)}/${births[i].tahuType} ${i}`;
  return [
    {
      id: 'data-float',
      title: 'DDATA: alias + Float + metric timestamp',
      ours: { payload: { timestamp: NOW, seq: 5, metrics: floats.map((value, i) => ({ alias: i + 1, timestamp: NOW, datatype: DataType.Float, value })) }, omitDatatypes: true },
      // sparkplug-payload cannot encode a metric without `type` (docs/sparkplug.md), so its DATA carries datatypes.
      tahu: { timestamp: NOW, seq: 5, metrics: floats.map((value, i) => ({ alias: i + 1, timestamp: NOW, type: 'Float', value })) },
      datatypes: floats.map(() => DataType.Float),
      expected: floats.map(String),
    },
    {
      id: 'birth-mixed',
      title: 'DBIRTH: name + alias + datatype (Double, Int32, Boolean, String) + metric timestamp',
      ours: { payload: { timestamp: NOW, seq: 0, metrics: births.map((t, i) => ({ name: birthName(i), alias: i + 1, timestamp: NOW, datatype: t.datatype, value: t.value(i) })) }, omitDatatypes: false },
      tahu: { timestamp: NOW, seq: 0, metrics: births.map((t, i) => ({ name: birthName(i), alias: i + 1, timestamp: NOW, type: t.tahuType, value: t.value(i) })) },
      datatypes: births.map((t) => t.datatype),
      expected: births.map((t, i) => String(t.value(i))),
    },
    {
      id: 'data-int64',
      title: 'DDATA: alias + Int64 beyond 2^53 + metric timestamp',
      ours: { payload: { timestamp: NOW, seq: 5, metrics: int64s.map((value, i) => ({ alias: i + 1, timestamp: NOW, datatype: DataType.Int64, value })) }, omitDatatypes: true },
      // sparkplug-payload's natural Int64 input: a Long (a number loses precision beyond 2^53), built before the clock.
      tahu: { timestamp: NOW, seq: 5, metrics: int64s.map((value, i) => ({ alias: i + 1, timestamp: NOW, type: 'Int64', value: Long.fromString(value.toString()) })) },
      datatypes: int64s.map(() => DataType.Int64),
      expected: int64s.map(String),
    },
  ];
}

// ---------------------------------------------------------------- the work measured

function encoder(c: PayloadCase, codec: CodecName): () => Uint8Array {
  return codec === 'uns-edge'
    ? () => encodePayload(c.ours.payload, { omitDatatypes: c.ours.omitDatatypes })
    : () => tahu.encodePayload(c.tahu);
}

/** Decode to typed values: uns-edge's decode includes metricValue() per metric (alias-only DATA read with the BIRTH's datatypes). */
function decoder(c: PayloadCase, codec: CodecName, bytes: Uint8Array): () => unknown[] {
  if (codec === 'uns-edge') {
    return () => {
      const decoded = decodePayload(bytes);
      const values: MetricValue[] = new Array(decoded.metrics.length);
      for (let i = 0; i < decoded.metrics.length; i++) values[i] = metricValue(decoded.metrics[i], c.datatypes[i]);
      return values;
    };
  }
  return () => tahu.decodePayload(bytes).metrics.map((metric) => metric.value);
}

// ---------------------------------------------------------------- cross-check (untimed)

function crossCheck(c: PayloadCase): void {
  const ourBytes = encoder(c, 'uns-edge')();
  const tahuBytes = encoder(c, 'sparkplug-payload')();
  const problems: string[] = [];
  const compare = (who: string, values: unknown[]) => {
    if (values.length !== METRICS) problems.push(`${who}: ${values.length} metrics, expected ${METRICS}`);
    for (let i = 0; i < Math.min(values.length, METRICS); i++) {
      const raw = values[i];
      // sparkplug-payload hands Int64 out as a Long; Float as a float32 read back to a double.
      const text = typeof raw === 'object' && raw !== null ? String((raw as { toString(): string }).toString()) : String(raw);
      if (text !== c.expected[i]) { problems.push(`${who}: metric ${i} is ${text}, expected ${c.expected[i]}`); break; }
    }
  };
  compare('uns-edge decoding its own bytes', decoder(c, 'uns-edge', ourBytes)());
  compare('uns-edge decoding sparkplug-payload bytes', decoder(c, 'uns-edge', tahuBytes)());
  compare('sparkplug-payload decoding its own bytes', decoder(c, 'sparkplug-payload', tahuBytes)());
  if (!c.ours.omitDatatypes) compare('sparkplug-payload decoding uns-edge bytes', decoder(c, 'sparkplug-payload', ourBytes)());
  // sparkplug-payload decodes a metric without datatype to null (docs/sparkplug.md), so alias-only DATA is checked one way.
  if (problems.length > 0) throw new Error(`${c.title}: cross-check failed:\n  ${problems.join('\n  ')}`);
}

// ---------------------------------------------------------------- measurement

/** Metrics per second of `fn` (one payload of METRICS metrics per call) over ROUND_MS. */
function rate(fn: () => unknown): number {
  const start = performance.now();
  let calls = 0;
  let elapsed = 0;
  do {
    fn();
    calls++;
    elapsed = performance.now() - start;
  } while (elapsed < ROUND_MS);
  return (calls * METRICS) / (elapsed / 1000);
}

type Op = 'encode' | 'decode';
const key = (caseId: string, op: Op, codec: CodecName) => `${caseId}/${op}/${codec}`;

function main(): void {
  const cases = makeCases();
  const bytesPerMetric: Record<string, number> = {};
  const work: Record<string, () => unknown> = {};
  for (const c of cases) {
    crossCheck(c);
    for (const codec of CODECS) {
      const bytes = encoder(c, codec)();
      bytesPerMetric[`${c.id}/${codec}`] = bytes.length / METRICS;
      work[key(c.id, 'encode', codec)] = encoder(c, codec);
      work[key(c.id, 'decode', codec)] = decoder(c, codec, bytes);
    }
  }
  for (const fn of Object.values(work)) for (let i = 0; i < 200; i++) fn(); // warm-up: JIT both codecs before any clock
  const rates: Record<string, number[]> = {};
  const load = new LoadMeter();
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? CODECS : [...CODECS].reverse();
    (globalThis as { gc?: () => void }).gc?.();
    for (const c of cases) {
      for (const op of ['encode', 'decode'] as Op[]) {
        for (const codec of order) (rates[key(c.id, op, codec)] ??= []).push(rate(work[key(c.id, op, codec)]));
      }
    }
    process.stdout.write(`run ${run + 1}/${RUNS} done\n`);
  }
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const ownCores = (cpu.user + cpu.system) / 1e6 / wallSeconds;
  const measuredLoad = load.describe(ownCores);

  const millions = (s: Summary) => `${(s.median / 1e6).toFixed(2)} M/s (${(s.min / 1e6).toFixed(2)}–${(s.max / 1e6).toFixed(2)})`;
  const ratio = (caseId: string, op: Op): Summary => summarize(rates[key(caseId, op, 'uns-edge')].map((ours, i) => ours / rates[key(caseId, op, 'sparkplug-payload')][i]));
  const ratioText = (s: Summary) => `**×${s.median.toFixed(2)}** (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
  const facts = machineFacts();
  const lines: string[] = [
    '## Sparkplug B payload codec: uns-edge vs sparkplug-payload',
    '',
    `\`node --expose-gc --import tsx bench/sparkplug-codec.ts --write\` — ${new Date().toISOString().slice(0, 16)} UTC, ${RUNS} runs, ` +
      `${METRICS}-metric payloads, ${ROUND_MS} ms per codec, payload and operation in each run, codec order alternating; ` +
      `uns-edge \`lib/sparkplug/payload.ts\` vs sparkplug-payload ${TAHU_VERSION} (Eclipse Tahu). ` +
      `Node ${facts.node}, ${facts.nproc} × ${facts.cpuModel}.`,
    '',
    `**Load during the runs** (measured): ${measuredLoad}. Absolute figures move with the load; ` +
      'the ratios, measured within each run, are the result.',
    '',
    '| payload | codec | encode metrics/s | decode metrics/s | bytes/metric |',
    '|---|---|---|---|---|',
  ];
  for (const c of cases) {
    for (const codec of CODECS) {
      const bold = (text: string) => (codec === 'uns-edge' ? `**${text}**` : text);
      lines.push(`| ${codec === CODECS[0] ? c.title : ''} | ${bold(codec === 'sparkplug-payload' ? `sparkplug-payload ${TAHU_VERSION}` : codec)} | ` +
        `${millions(summarize(rates[key(c.id, 'encode', codec)]))} | ${millions(summarize(rates[key(c.id, 'decode', codec)]))} | ` +
        `${bytesPerMetric[`${c.id}/${codec}`].toFixed(1)} |`);
    }
    lines.push(`| | uns-edge / sparkplug-payload | ${ratioText(ratio(c.id, 'encode'))} | ${ratioText(ratio(c.id, 'decode'))} | ` +
      `×${(bytesPerMetric[`${c.id}/uns-edge`] / bytesPerMetric[`${c.id}/sparkplug-payload`]).toFixed(2)} |`);
  }
  lines.push(
    '',
    'Medians of the runs, min–max in parentheses; the ratio row is the median of the per-run ratios.',
    '',
    '- **Same work**: before the clock each payload is decoded by both codecs from both codecs\' bytes (where',
    '  sparkplug-payload can: it reads a metric without datatype as null) and every value compared with the',
    '  input, exactly (Int64 as decimal text).',
    '- **Decode is to values**: uns-edge\'s figure includes `metricValue()` per metric (alias-only DATA read with',
    '  the BIRTH\'s datatypes, Int64 beyond 2^53 as an exact `bigint`); sparkplug-payload\'s output is its',
    '  decoded objects, with Int64 as `Long` objects, not converted.',
    '- **Bytes**: uns-edge leaves the datatype out of DATA (the specification recommends it,',
    '  [tck-id-payloads-metric-datatype-not-req]); sparkplug-payload cannot encode a metric without one, so',
    '  its DATA is 2 bytes per metric larger. BIRTH messages are byte-identical in size.',
    '- Input, each codec its natural one, built before the clock: uns-edge takes Int64 as `bigint`,',
    '  sparkplug-payload as `Long` objects (of the `long` package it uses itself; a JavaScript number loses',
    '  precision beyond 2^53). The bytes of both are checked to decode to the same values.',
  );
  const markdown = lines.join('\n');
  console.log('\n' + markdown);
  if (WRITE) {
    writeSection('sparkplug-codec', markdown);
    console.log('\nwritten to docs/benchmarks.md (section sparkplug-codec)');
  }
}

main();
