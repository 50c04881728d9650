/**
 * The Sparkplug B codec (lib/sparkplug/payload.ts, datatypes.ts): golden bytes worked out by hand
 * from the protobuf encoding rules, byte-identical output to protobufjs on the same .proto,
 * every data type round trip, Int64/UInt64 exactness, and garbage/truncated input.
 */
import { strict as assert } from 'node:assert';
import { DataType, SparkplugValueError, packArray, unpackArray, valueProblem } from '../../lib/sparkplug/datatypes';
import {
  PayloadDecoder, SparkplugDecodeError, SparkplugEncodeError, countMetrics, decodePayload, encodePayload, metricValue,
  type DataSet, type Metric, type Payload, type Template,
} from '../../lib/sparkplug/payload';
import { oracleDecode, oracleEncode } from '../helpers/sparkplug-oracle';

const T = 1700000000000; // varint 80 d0 95 ff bc 31

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('sparkplug payload codec', () => {
  describe('golden bytes', () => {
    it('NDEATH: timestamp and the bdSeq metric only (Int64 in long_value)', () => {
      const bytes = encodePayload({ timestamp: T, metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 3 }] });
      assert.equal(hex(bytes),
        '08' + '80d095ffbc31' + // field 1 (timestamp), varint
        '12' + '0b' + // field 2 (metrics), 11 bytes
        '0a05' + Buffer.from('bdSeq').toString('hex') + // name
        '2004' + // datatype 4 = Int64
        '5803'); // field 11 long_value = 3
    });

    it('NBIRTH-like: Node Control/Rebirth without alias, a Float with alias, seq 0', () => {
      const bytes = encodePayload({
        timestamp: T,
        metrics: [
          { name: 'Node Control/Rebirth', timestamp: T, datatype: DataType.Boolean, value: false },
          { name: 'T', alias: 7, timestamp: T, datatype: DataType.Float, value: 21.5 },
        ],
        seq: 0,
      });
      assert.equal(hex(bytes), '0880d095ffbc3112210a144e6f646520436f6e74726f6c2f526562697274681880d095ffbc31200b700012130a015410071880d095ffbc312009650000ac411800');
    });

    it('DDATA-like without datatypes: Int32 −1 as uint32 two\'s complement, a null, a 2-byte alias', () => {
      const bytes = encodePayload({
        metrics: [{ alias: 1, datatype: DataType.Int32, value: -1 }, { alias: 300, datatype: DataType.Double, value: null }],
        seq: 5,
      }, { omitDatatypes: true });
      assert.equal(hex(bytes),
        '1208' + '1001' + '50ffffffff0f' + // alias 1, field 10 int_value = 4294967295
        '1205' + '10ac02' + '3801' + // alias 300, is_null = true, no value field
        '1805'); // seq 5
    });

    it('is byte-identical to protobufjs for the same message', () => {
      const ours = encodePayload({
        timestamp: T,
        seq: 42,
        uuid: 'u',
        metrics: [
          { name: 'a', alias: 1, timestamp: T, datatype: DataType.UInt64, value: 18446744073709551615n },
          { name: 'b', alias: 2, timestamp: T, datatype: DataType.String, value: 'hé' },
          { name: 'c', alias: 3, timestamp: T, datatype: DataType.Double, value: -0.125, isHistorical: true, isTransient: true },
          { name: 'd', datatype: DataType.Bytes, value: Buffer.from([1, 2, 3]) },
        ],
      });
      const theirs = oracleEncode({
        timestamp: T, seq: 42, uuid: 'u',
        metrics: [
          { name: 'a', alias: 1, timestamp: T, datatype: 8, long_value: '18446744073709551615' },
          { name: 'b', alias: 2, timestamp: T, datatype: 12, string_value: 'hé' },
          { name: 'c', alias: 3, timestamp: T, datatype: 10, is_historical: true, is_transient: true, double_value: -0.125 },
          { name: 'd', datatype: 17, bytes_value: Buffer.from([1, 2, 3]) },
        ],
      });
      assert.equal(hex(ours), hex(theirs));
    });
  });

  describe('Int64 / UInt64 / DateTime without precision loss', () => {
    const cases: [string, number, number | bigint, string][] = [
      ['Int64 max', DataType.Int64, 9223372036854775807n, '9223372036854775807'],
      ['Int64 min', DataType.Int64, -9223372036854775808n, '9223372036854775808'],
      ['Int64 −1', DataType.Int64, -1, '18446744073709551615'],
      ['Int64 2^53+1', DataType.Int64, 9007199254740993n, '9007199254740993'],
      ['UInt64 max', DataType.UInt64, 18446744073709551615n, '18446744073709551615'],
      ['UInt64 2^53−1 as number', DataType.UInt64, 9007199254740991, '9007199254740991'],
      ['DateTime', DataType.DateTime, T, String(T)],
    ];
    for (const [label, datatype, value, wire] of cases) {
      it(`${label}: long_value ${wire} on the wire, the same value back`, () => {
        const bytes = encodePayload({ metrics: [{ name: 'x', datatype, value }] });
        assert.equal(oracleDecode(bytes).metrics[0].long_value, wire);
        const back = metricValue(decodePayload(bytes).metrics[0]);
        assert.equal(back, value);
        assert.equal(typeof back, typeof value);
      });
    }

    it('64-bit header fields (seq, timestamp, alias) above 2^53 decode as exact bigint, below as number', () => {
      const bytes = oracleEncode({ timestamp: '18446744073709551615', seq: 7, metrics: [{ alias: '9007199254740993', int_value: 1 }] });
      const decoded = decodePayload(bytes);
      assert.equal(decoded.timestamp, 18446744073709551615n);
      assert.equal(decoded.seq, 7);
      assert.equal(decoded.metrics[0].alias, 9007199254740993n);
    });
  });

  describe('every scalar type, as the specification places it (§6.4.4)', () => {
    const cases: [string, number, unknown, string, unknown][] = [
      ['Int8 −1', DataType.Int8, -1, 'int_value', 4294967295],
      ['Int8 127', DataType.Int8, 127, 'int_value', 127],
      ['Int16 −32768', DataType.Int16, -32768, 'int_value', 4294934528],
      ['Int32 −2147483648', DataType.Int32, -2147483648, 'int_value', 2147483648],
      ['UInt8 255', DataType.UInt8, 255, 'int_value', 255],
      ['UInt16 65535', DataType.UInt16, 65535, 'int_value', 65535],
      ['UInt32 4294967295 (int_value, not long_value)', DataType.UInt32, 4294967295, 'int_value', 4294967295],
      ['Float', DataType.Float, 1.5, 'float_value', 1.5],
      ['Double', DataType.Double, 0.1, 'double_value', 0.1],
      ['Boolean', DataType.Boolean, true, 'boolean_value', true],
      ['String', DataType.String, 'ü/€', 'string_value', 'ü/€'],
      ['Text', DataType.Text, 'long text', 'string_value', 'long text'],
      ['UUID', DataType.UUID, '123e4567-e89b-12d3-a456-426614174000', 'string_value', '123e4567-e89b-12d3-a456-426614174000'],
    ];
    for (const [label, datatype, value, field, wire] of cases) {
      it(`${label} → ${field}`, () => {
        const bytes = encodePayload({ metrics: [{ name: 'm', datatype, value: value as Metric['value'] }] });
        const oracle = oracleDecode(bytes).metrics[0];
        assert.equal(oracle.value, field);
        assert.equal(oracle[field], wire);
        assert.equal(metricValue(decodePayload(bytes).metrics[0]), value);
      });
    }

    it('Bytes and File → bytes_value', () => {
      for (const datatype of [DataType.Bytes, DataType.File]) {
        const bytes = encodePayload({ metrics: [{ name: 'f', datatype, value: Buffer.from('abc'), metadata: { fileName: 'a.txt', size: 3, md5: 'x' } }] });
        const decoded = decodePayload(bytes).metrics[0];
        assert.deepEqual(Buffer.from(metricValue(decoded) as Uint8Array), Buffer.from('abc'));
        assert.deepEqual(decoded.metadata, { fileName: 'a.txt', size: 3, md5: 'x' });
      }
    });

    it('reads Int8/Int16 sent as N-bit two\'s complement by older peers (255 → −1) and UInt32 from long_value (sparkplug-payload)', () => {
      const bytes = oracleEncode({ metrics: [
        { name: 'a', datatype: 1, int_value: 255 },
        { name: 'b', datatype: 2, int_value: 65535 },
        { name: 'c', datatype: 7, long_value: 4294967295 },
      ] });
      assert.deepEqual(decodePayload(bytes).metrics.map((m) => metricValue(m)), [-1, -1, 4294967295]);
    });

    it('refuses a wire value out of range or in the wrong field instead of wrapping it', () => {
      const bytes = oracleEncode({ metrics: [
        { name: 'a', datatype: 1, int_value: 300 },
        { name: 'b', datatype: 3, string_value: '5' },
        { name: 'c', datatype: 6, int_value: 70000 },
        { name: 'd', datatype: 4, int_value: 1 },
        { name: 'e', datatype: 11 },
      ] });
      for (const metric of decodePayload(bytes).metrics) {
        assert.throws(() => metricValue(metric), SparkplugValueError, metric.name);
      }
    });

    it('a metric without datatype is read with the BIRTH\'s datatype', () => {
      const bytes = encodePayload({ metrics: [{ alias: 9, datatype: DataType.Int16, value: -2 }] }, { omitDatatypes: true });
      const metric = decodePayload(bytes).metrics[0];
      assert.equal(metric.datatype, undefined);
      assert.equal(oracleDecode(bytes).metrics[0].datatype, undefined);
      assert.equal(metricValue(metric, DataType.Int16), -2);
      assert.equal(metricValue(metric, DataType.UInt32), 4294967294);
      assert.throws(() => metricValue(metric), /no datatype/);
    });
  });

  describe('arrays (§6.4.17, little-endian in bytes_value)', () => {
    const cases: [string, number, unknown[], string][] = [
      ['Int8Array', DataType.Int8Array, [-23, 123], 'e97b'],
      ['Int16Array', DataType.Int16Array, [-30000, 30000], 'd08a3075'],
      ['Int32Array', DataType.Int32Array, [-1, 1], 'ffffffff01000000'],
      ['Int64Array', DataType.Int64Array, [-1, 9223372036854775807n], 'ffffffffffffffff' + 'ffffffffffffff7f'],
      ['UInt8Array', DataType.UInt8Array, [23, 250], '17fa'],
      ['UInt16Array', DataType.UInt16Array, [30, 52360], '1e0088cc'],
      ['UInt32Array', DataType.UInt32Array, [52, 3293969225], '3400000049fb55c4'],
      ['UInt64Array', DataType.UInt64Array, [52, 18446744073709551615n], '3400000000000000' + 'ffffffffffffffff'],
      ['FloatArray', DataType.FloatArray, [1.5, -2], '0000c03f' + '000000c0'],
      ['DoubleArray', DataType.DoubleArray, [1.5], '000000000000f83f'],
      ['BooleanArray', DataType.BooleanArray, [false, false, true, true, false, true, false, false, true, true, false, true], '0c000000' + '34d0'],
      ['StringArray', DataType.StringArray, ['ABC', 'hello'], '41424300' + '68656c6c6f00'],
      ['DateTimeArray', DataType.DateTimeArray, [T], '0068e5cf8b010000'],
    ];
    for (const [label, datatype, values, packed] of cases) {
      it(`${label}: ${packed}`, () => {
        assert.equal(packArray(datatype, values as never).toString('hex'), packed);
        const bytes = encodePayload({ metrics: [{ name: label, datatype, value: values as never }] });
        assert.equal(oracleDecode(bytes).metrics[0].bytes_value?.toString('hex'), packed);
        assert.deepEqual(metricValue(decodePayload(bytes).metrics[0]), values);
      });
    }

    it('refuses array bytes that do not fit the element size, a short BooleanArray, a StringArray without NUL', () => {
      assert.throws(() => unpackArray(DataType.Int32Array, Buffer.from('010203', 'hex')), /whole number/);
      assert.throws(() => unpackArray(DataType.BooleanArray, Buffer.from('09000000ff', 'hex')), /only 1 bytes/);
      assert.throws(() => unpackArray(DataType.StringArray, Buffer.from('4142', 'hex')), /NUL/);
    });

    it('an empty array round-trips', () => {
      for (const datatype of [DataType.Int32Array, DataType.BooleanArray, DataType.StringArray]) {
        const bytes = encodePayload({ metrics: [{ name: 'e', datatype, value: [] }] });
        assert.deepEqual(metricValue(decodePayload(bytes).metrics[0]), []);
      }
    });
  });

  describe('DataSet, Template, PropertySet', () => {
    it('a DataSet with a column of every basic type round-trips (sparkplug-payload throws on most of them)', () => {
      const dataSet: DataSet = {
        columns: ['i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64', 'f', 'd', 'b', 's', 'dt', 'txt'],
        types: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        rows: [
          [-1, -2, -3, -9223372036854775808n, 255, 65535, 4294967295, 18446744073709551615n, 0.5, 0.25, true, 'x', T, 't'],
          [1, 2, 3, 4, 5, 6, 7, 8, 1.5, 2.5, false, '', 0, null],
        ],
      };
      const bytes = encodePayload({ metrics: [{ name: 'ds', datatype: DataType.DataSet, value: dataSet }] });
      const oracle = oracleDecode(bytes).metrics[0].dataset_value as { num_of_columns: string; types: number[]; rows: unknown[] };
      assert.equal(oracle.num_of_columns, '14');
      assert.deepEqual(oracle.types, dataSet.types);
      assert.deepEqual(metricValue(decodePayload(bytes).metrics[0]), dataSet);
    });

    it('refuses a DataSet whose columns and types differ in number, a non-basic column type, a short row', () => {
      const bad: DataSet[] = [
        { columns: ['a', 'b'], types: [3], rows: [] },
        { columns: ['a'], types: [16], rows: [] },
        { columns: ['a', 'b'], types: [3, 3], rows: [[1]] },
      ];
      for (const value of bad) {
        assert.throws(() => encodePayload({ metrics: [{ name: 'ds', datatype: DataType.DataSet, value }] }), SparkplugEncodeError);
      }
    });

    it('a Template definition and an instance: is_definition always on the wire, template_ref only on the instance', () => {
      const definition: Template = {
        version: 'v1', isDefinition: true,
        metrics: [{ name: 'Speed', datatype: DataType.Float, value: 0 }, { name: 'Count', datatype: DataType.UInt64, value: 0 }],
        parameters: [{ name: 'Rated', type: DataType.Int32, value: -5 }],
      };
      const instance: Template = {
        templateRef: 'Motor', isDefinition: false,
        metrics: [{ name: 'Speed', datatype: DataType.Float, value: 12.5 }, { name: 'Count', datatype: DataType.UInt64, value: 18446744073709551615n }],
        parameters: [{ name: 'Rated', type: DataType.Int32, value: 7 }],
      };
      const bytes = encodePayload({ metrics: [
        { name: 'Motor', datatype: DataType.Template, value: definition },
        { name: 'Motor 1', datatype: DataType.Template, value: instance },
      ] });
      const oracle = oracleDecode(bytes).metrics.map((m) => m.template_value as Record<string, unknown>);
      assert.equal(oracle[0].is_definition, true);
      assert.equal(oracle[0].template_ref, undefined);
      assert.equal(oracle[1].is_definition, false);
      assert.equal(oracle[1].template_ref, 'Motor');
      const decoded = decodePayload(bytes).metrics.map((m) => metricValue(m) as Template<never>);
      assert.equal(decoded[0].version, 'v1');
      assert.deepEqual(decoded[0].parameters, [{ name: 'Rated', type: DataType.Int32, value: -5 }]);
      const members = (decoded[1] as unknown as Template<Parameters<typeof metricValue>[0]>).metrics;
      assert.deepEqual(members.map((m) => [m.name, metricValue(m)]), [['Speed', 12.5], ['Count', 18446744073709551615n]]);
    });

    it('property sets: Quality (Int32), engUnit, nested sets, a list, a null — keys.length == values.length', () => {
      const properties = {
        keys: ['Quality', 'engUnit', 'nested', 'list', 'gone'],
        values: [
          { type: DataType.Int32, value: 192 },
          { type: DataType.String, value: 'A' },
          { type: DataType.PropertySet, value: { keys: ['x'], values: [{ type: DataType.Int64, value: -7 }] } },
          { type: DataType.PropertySetList, value: [{ keys: ['y'], values: [{ type: DataType.Boolean, value: true }] }] },
          { type: DataType.Double, value: null },
        ],
      };
      const bytes = encodePayload({ metrics: [{ name: 'p', datatype: DataType.Int32, value: 1, properties }] });
      const oracle = oracleDecode(bytes).metrics[0].properties!;
      assert.equal(oracle.keys!.length, oracle.values!.length);
      assert.deepEqual(decodePayload(bytes).metrics[0].properties, properties);
    });

    it('refuses a property set with more keys than values', () => {
      assert.throws(() => encodePayload({ metrics: [{ name: 'p', properties: { keys: ['a', 'b'], values: [{ type: 3, value: 1 }] } }] }), /2 keys but 1 values/);
    });
  });

  describe('encoding refuses values that do not fit, naming the metric', () => {
    const cases: [string, Metric, RegExp][] = [
      ['a value without datatype', { name: 'x', value: 1 }, /"x" has a value but no datatype/],
      ['Int8 200', { name: 'x', datatype: DataType.Int8, value: 200 }, /out of range -128…127/],
      ['UInt16 −1', { name: 'x', datatype: DataType.UInt16, value: -1 }, /out of range/],
      ['Int32 1.5', { name: 'x', datatype: DataType.Int32, value: 1.5 }, /not an integer/],
      ['Int64 2^63', { name: 'x', datatype: DataType.Int64, value: 9223372036854775808n }, /out of range/],
      ['Float NaN', { name: 'x', datatype: DataType.Float, value: NaN }, /32-bit float/],
      ['Float 1e39', { name: 'x', datatype: DataType.Float, value: 1e39 }, /32-bit float/],
      ['Double Infinity', { name: 'x', datatype: DataType.Double, value: Infinity }, /not finite/],
      ['Boolean "true"', { name: 'x', datatype: DataType.Boolean, value: 'true' }, /not a boolean/],
      ['String 5', { name: 'x', datatype: DataType.String, value: 5 }, /not a string/],
      ['Int16Array with a string', { name: 'x', datatype: DataType.Int16Array, value: [1, 'a'] as never }, /element 1/],
      ['Unknown datatype', { name: 'x', datatype: DataType.Unknown, value: 1 }, /cannot carry a metric value/],
      ['PropertySet datatype', { name: 'x', datatype: DataType.PropertySet, value: 1 }, /cannot carry a metric value/],
    ];
    for (const [label, metric, message] of cases) {
      it(label, () => {
        assert.throws(() => encodePayload({ metrics: [metric] }), (error: Error) => error instanceof SparkplugEncodeError && message.test(error.message));
      });
    }

    it('valueProblem() accepts what the encoder accepts', () => {
      assert.equal(valueProblem(DataType.Int64, -5), undefined);
      assert.equal(valueProblem(DataType.UInt8, 255n), undefined);
      assert.equal(valueProblem(DataType.DateTime, new Date(T)), undefined);
      assert.match(valueProblem(DataType.DateTime, -1) ?? '', /out of range/);
    });
  });

  describe('decoding garbage and truncated input', () => {
    const valid = encodePayload({
      timestamp: T, seq: 3,
      metrics: [
        { name: 'Speed', alias: 1, timestamp: T, datatype: DataType.Float, value: 1.5, properties: { keys: ['Quality'], values: [{ type: 3, value: 192 }] } },
        { name: 'Rows', datatype: DataType.DataSet, value: { columns: ['a'], types: [DataType.String], rows: [['x'], ['y']] } },
        { name: 'Big', datatype: DataType.UInt64, value: 18446744073709551615n },
      ],
    });

    it('every truncation of a valid payload either decodes (a shorter valid message) or throws SparkplugDecodeError', () => {
      let errors = 0;
      for (let length = 0; length < valid.length; length++) {
        try {
          decodePayload(valid.subarray(0, length));
        } catch (error) {
          assert.ok(error instanceof SparkplugDecodeError, `length ${length}: ${(error as Error).stack}`);
          errors++;
        }
      }
      assert.ok(errors > valid.length / 2, `only ${errors} of ${valid.length} truncations were refused`);
    });

    it('random bytes never throw anything but SparkplugDecodeError (5000 seeded samples)', () => {
      let seed = 12345;
      const random = (): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x7fffffff;
      };
      for (let i = 0; i < 5000; i++) {
        const bytes = Buffer.alloc(1 + Math.floor(random() * 64));
        for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
        // Half the samples start like a payload, so the fuzz reaches the nested decoders.
        if (i % 2 === 0) valid.copy(bytes, 0, 0, Math.min(bytes.length, 1 + Math.floor(random() * valid.length)));
        try {
          decodePayload(bytes);
        } catch (error) {
          assert.ok(error instanceof SparkplugDecodeError, `${bytes.toString('hex')}: ${(error as Error).stack}`);
        }
      }
    });

    it('names what is wrong: wrong wire type, varint too long, a length past the end, groups, field 0', () => {
      const cases: [string, RegExp][] = [
        ['1001', /field 2 of Payload has wire type 0, expected 2/],
        ['08ffffffffffffffffffff01', /varint longer than 10 bytes/],
        ['1205', /length 5 runs past the end/],
        ['0b', /wire type 3/],
        ['0001', /field number 0/],
        ['08ff', /truncated varint/],
        ['12026500', /truncated float/],
      ];
      for (const [bytes, message] of cases) {
        assert.throws(() => decodePayload(Buffer.from(bytes, 'hex')), (error: Error) => error instanceof SparkplugDecodeError && message.test(error.message), bytes);
      }
    });

    it('refuses templates nested deeper than 32 levels (a stack-exhaustion payload)', () => {
      const nest = (levels: number): Buffer => {
        let metric = Buffer.alloc(0); // the innermost Metric is empty
        for (let i = 0; i < levels; i++) {
          const template = Buffer.concat([Buffer.from([0x12]), varint(metric.length), metric]); // Template.metrics (2)
          metric = Buffer.concat([Buffer.from([0x92, 0x01]), varint(template.length), template]); // Metric.template_value (18)
        }
        return Buffer.concat([Buffer.from([0x12]), varint(metric.length), metric]); // Payload.metrics (2)
      };
      assert.equal(decodePayload(nest(15)).metrics.length, 1);
      assert.throws(() => decodePayload(nest(40)), (error: Error) => error instanceof SparkplugDecodeError && /nested deeper than 32/.test(error.message));
    });

    it('skips fields it does not know (extensions, newer versions)', () => {
      // Payload field 6 (varint), Metric field 20 (length-delimited), then a normal metric.
      const bytes = Buffer.concat([Buffer.from('3001', 'hex'), encodePayload({ metrics: [{ name: 'a', datatype: DataType.Int32, value: 4 }] })]);
      assert.equal(metricValue(decodePayload(bytes).metrics[0]), 4);
      const metric = Buffer.from('a2010161' + '0a0161' + '2003' + '5004', 'hex'); // field 20 "a", name, datatype, int 4
      const payload = Buffer.concat([Buffer.from([0x12, metric.length]), metric]);
      assert.equal(metricValue(decodePayload(payload).metrics[0]), 4);
    });

    it('accepts a packed DataSet.types field (a proto2 parser must)', () => {
      // DataSet{ num_of_columns 1, columns "a", types packed [3], rows [{ elements [{int 5}] }] }
      const dataSet = Buffer.from('0801' + '120161' + '1a0103' + '2204' + '0a02' + '0805', 'hex');
      const metric = Buffer.concat([Buffer.from('0a01642010', 'hex'), Buffer.from([0x8a, 0x01, dataSet.length]), dataSet]);
      const payload = Buffer.concat([Buffer.from([0x12, metric.length]), metric]);
      assert.deepEqual(metricValue(decodePayload(payload).metrics[0]), { columns: ['a'], types: [3], rows: [[5]] });
    });
  });

  describe('counting and slicing before a full decode (a host refuses what is over its limits)', () => {
    const template = (members: number): Template => ({ isDefinition: false, templateRef: 'Motor', metrics: Array.from({ length: members }, (_, i) => ({ name: `m${i}`, datatype: DataType.Int32, value: i })) });
    const payload = encodePayload({
      timestamp: T, seq: 0,
      metrics: [
        { name: 'a', alias: 1, datatype: DataType.Double, value: 1, properties: { keys: ['engUnit'], values: [{ type: DataType.String, value: 'Hz' }] } },
        { name: 'Motor 1', datatype: DataType.Template, value: template(3) },
        { name: 'b', datatype: DataType.String, value: 'x' },
      ],
    });

    it('countMetrics counts top-level metrics and Template members, the same as the oracle decodes', () => {
      const decoded = oracleDecode(payload);
      const members = (decoded.metrics[1].template_value as { metrics: unknown[] }).metrics.length;
      assert.equal(countMetrics(payload, 100), decoded.metrics.length + members);
      assert.equal(countMetrics(Buffer.alloc(0), 100), 0);
    });

    it('countMetrics stops one past the limit, however many metrics follow', () => {
      const many = encodePayload({ metrics: Array.from({ length: 5000 }, (_, i) => ({ name: `m${i}`, datatype: DataType.Boolean, value: true })) });
      assert.equal(countMetrics(many, 10), 11);
      assert.equal(countMetrics(payload, 2), 3);
    });

    it('countMetrics throws SparkplugDecodeError on broken framing', () => {
      assert.throws(() => countMetrics(Buffer.from([0x12, 0x50, 0x0a]), 100), SparkplugDecodeError); // a metric of 80 bytes, 1 there
    });

    it('PayloadDecoder reads a slice of metrics per next() and ends with what decodePayload gives', () => {
      const decoder = new PayloadDecoder(payload);
      assert.equal(decoder.next(1), false);
      assert.equal(decoder.payload.metrics.length, 1);
      let calls = 2;
      while (!decoder.next(1)) calls++;
      assert.ok(calls <= 4, `${calls} calls for 3 metrics`);
      assert.deepEqual(decoder.payload, decodePayload(payload));
    });
  });

  it('a large payload (10,000 metrics, lengths beyond one varint byte) round-trips', () => {
    const metrics: Metric[] = [];
    for (let i = 0; i < 10000; i++) metrics.push({ name: `m${i}/${'x'.repeat(i % 200)}`, alias: i, timestamp: T + i, datatype: DataType.Double, value: i / 3 });
    const payload: Payload = { timestamp: T, seq: 255, metrics };
    const bytes = encodePayload(payload);
    assert.equal(oracleDecode(bytes).metrics.length, 10000);
    const decoded = decodePayload(bytes);
    assert.deepEqual(decoded.metrics.map((m) => [m.name, m.alias, m.timestamp, metricValue(m)]), metrics.map((m) => [m.name, m.alias, m.timestamp, m.value]));
  });
});

function varint(value: number): Buffer {
  const out: number[] = [];
  while (value > 0x7f) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return Buffer.from(out);
}
