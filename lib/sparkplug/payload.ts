/**
 * Sparkplug B payload codec: the Payload message of lib/sparkplug/sparkplug_b.proto (Sparkplug 3.0
 * §6.4) to and from bytes, written directly on the protobuf wire format (protobuf "Encoding":
 * varints, wire types 0/1/2/5). Why not sparkplug-payload or protobufjs: docs/sparkplug.md
 * ("Codec decision"); protobufjs on the .proto is the independent oracle the unit tests and the
 * conformance suite decode with.
 *
 * - 64-bit fields are exact: numbers up to 2^53−1, bigint beyond (never `Long`, never rounded).
 * - Every data type of §6.4.16: scalars, arrays (packed LE), DataSet, Template, PropertySet(List).
 * - Encoding checks every value against its datatype first and throws SparkplugEncodeError rather
 *   than wrapping or dropping it; `omitDatatypes` leaves Metric.datatype out of DATA/CMD messages
 *   ([tck-id-payloads-metric-datatype-not-req]).
 * - Decoding keeps metric values as on the wire (`valueKind` + `value`), because DATA and CMD
 *   metrics carry no datatype: metricValue() reads them with the datatype from the BIRTH. Garbage
 *   and truncated input throw SparkplugDecodeError naming the byte offset; nothing else escapes.
 */
import {
  DataType as DataTypeExport, ValueKind as ValueKindExport, SparkplugValueError, type ValueKind as ValueKindCode, dataTypeName, fromWireScalar, isArrayType, isBasicType, packArray,
  toUint64, toWireScalar, unpackArray, valueKindName, valueKindOf, valueProblem,
  type ArrayValue, type ScalarValue, type Uint64, type WireScalar,
} from './datatypes';

export interface MetaData {
  isMultiPart?: boolean;
  contentType?: string;
  size?: Uint64;
  seq?: Uint64;
  fileName?: string;
  fileType?: string;
  md5?: string;
  description?: string;
}

/** §6.4.8. `value: null` is sent as is_null = true. */
export interface PropertyValue {
  type: number;
  value: ScalarValue | PropertySet | PropertySet[] | null;
}

/** §6.4.7: keys[i] names values[i] ([tck-id-payloads-propertyset-keys-array-size]). */
export interface PropertySet {
  keys: string[];
  values: PropertyValue[];
}

/** §6.4.10: `types` are basic type codes (1…14), one per column; a null cell is an empty DataSetValue. */
export interface DataSet {
  columns: string[];
  types: number[];
  rows: (ScalarValue | null)[][];
}

/** §6.4.15 */
export interface TemplateParameter {
  name: string;
  type: number;
  value?: ScalarValue | null;
}

/** §6.4.13: a definition (isDefinition, no templateRef) or an instance (templateRef = definition name). */
export interface Template<M = Metric> {
  version?: string;
  templateRef?: string;
  isDefinition: boolean;
  metrics: M[];
  parameters?: TemplateParameter[];
}

export type MetricValue = ScalarValue | Date | Uint8Array | ArrayValue | DataSet | Template | null;

/** §6.4.4, to encode. A value needs `datatype`; `value: null` is sent as is_null = true. */
export interface Metric {
  name?: string;
  alias?: Uint64;
  timestamp?: Uint64;
  datatype?: number;
  isHistorical?: boolean;
  isTransient?: boolean;
  isNull?: boolean;
  metadata?: MetaData;
  properties?: PropertySet;
  value?: MetricValue;
}

/** §6.4.1 */
export interface Payload {
  timestamp?: Uint64;
  metrics?: Metric[];
  seq?: Uint64;
  uuid?: string;
  body?: Uint8Array;
}

/** A metric as decoded: its value still in wire form (see metricValue()). */
export interface DecodedMetric extends Omit<Metric, 'value'> {
  /** The oneof field that carried the value; undefined when none did. */
  valueKind?: ValueKind;
  value?: WireScalar | DataSet | Template<DecodedMetric>;
}

export interface DecodedPayload extends Omit<Payload, 'metrics'> {
  metrics: DecodedMetric[];
}

export interface EncodeOptions {
  /** Leave Metric.datatype off the wire (DATA and CMD messages); values are still checked against it. */
  omitDatatypes?: boolean;
}

export class SparkplugEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SparkplugEncodeError';
    Object.setPrototypeOf(this, SparkplugEncodeError.prototype);
  }
}

export class SparkplugDecodeError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = 'SparkplugDecodeError';
    Object.setPrototypeOf(this, SparkplugDecodeError.prototype);
  }
}

// Module-local copies: transpilers (tsx/esbuild) turn imported bindings into getters, a call per
// access that showed as a third of the encode time in the hot loop.
const DataType = { ...DataTypeExport };
const ValueKind = { ...ValueKindExport };
type ValueKind = ValueKindCode;

/** Templates and property sets nest; a hostile payload must not be able to exhaust the stack. */
const MAX_DEPTH = 32;

// Protobuf wire types.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

// ======================================================================= encoding

/** A growable byte buffer with protobuf primitives. One per module: encoding is synchronous. */
class Writer {
  buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** A varint of a non-negative integer ≤ 2^53−1. */
  varint(value: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    let v = value;
    while (v >= 0x80000000) {
      b[p++] = (v & 0x7f) | 0x80; // ToInt32 keeps the low 32 bits, so the low 7 are right
      v = Math.floor(v / 128);
    }
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  uint64(value: Uint64): void {
    if (typeof value === 'number') {
      this.varint(value);
      return;
    }
    // Two 32-bit halves, then 7 bits at a time: two bigint operations instead of ten.
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    let lo = Number(value & 0xffffffffn);
    let hi = Number((value >> 32n) & 0xffffffffn);
    while (hi !== 0) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  tag(field: number, wireType: number): void {
    const tag = (field << 3) | wireType;
    if (tag < 0x80) {
      this.ensure(1);
      this.buf[this.pos++] = tag;
    } else {
      this.varint(tag);
    }
  }

  /** Reserve one byte for the length of what follows; end() fills it in (and moves the body if longer). */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  end(start: number): void {
    const length = this.pos - start - 1;
    if (length < 0x80) {
      this.buf[start] = length;
      return;
    }
    let extra = 0;
    for (let v = length >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copy(this.buf, start + 1 + extra, start + 1, this.pos);
    const body = this.pos;
    this.pos = start;
    this.varint(length);
    this.pos = body + extra;
  }

  string(field: number, value: string): void {
    this.tag(field, LENGTH);
    if (value.length < 43) {
      // At most 3 UTF-8 bytes per UTF-16 unit: the length fits one byte.
      this.ensure(1 + value.length * 3);
      const b = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < value.length; i++) {
        // ASCII byte by byte: several times faster than Buffer.write for names this short.
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        b[start + i] = c;
      }
      const written = i === value.length ? i : i + b.write(value.slice(i), start + i, 'utf8');
      this.buf[this.pos] = written;
      this.pos += 1 + written;
      return;
    }
    const length = Buffer.byteLength(value, 'utf8');
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, LENGTH);
    this.varint(value.byteLength);
    this.ensure(value.byteLength);
    this.buf.set(value, this.pos);
    this.pos += value.byteLength;
  }

  bool(field: number, value: boolean): void {
    this.tag(field, VARINT);
    this.ensure(1);
    this.buf[this.pos++] = value ? 1 : 0;
  }

  float(field: number, value: number): void {
    this.tag(field, FIXED32);
    this.ensure(4);
    this.pos = this.buf.writeFloatLE(value, this.pos);
  }

  double(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(value, this.pos);
  }
}

const writer = new Writer();

/** Encode a payload; throws SparkplugEncodeError if a value does not fit its datatype. */
export function encodePayload(payload: Payload, options: EncodeOptions = {}): Buffer {
  const w = writer;
  w.reset();
  if (payload.timestamp !== undefined) {
    w.tag(1, VARINT);
    w.uint64(payload.timestamp);
  }
  const metrics = payload.metrics;
  if (metrics !== undefined) {
    const omitDatatypes = options.omitDatatypes === true;
    for (let i = 0; i < metrics.length; i++) {
      w.tag(2, LENGTH);
      const start = w.begin();
      writeMetric(w, metrics[i], omitDatatypes, 0);
      w.end(start);
    }
  }
  if (payload.seq !== undefined) {
    w.tag(3, VARINT);
    w.uint64(payload.seq);
  }
  if (payload.uuid !== undefined) w.string(4, payload.uuid);
  if (payload.body !== undefined) w.bytes(5, payload.body);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function metricLabel(metric: Metric): string {
  if (metric.name !== undefined) return `metric "${metric.name}"`;
  return metric.alias !== undefined ? `metric alias ${metric.alias}` : 'metric';
}

function writeMetric(w: Writer, metric: Metric, omitDatatype: boolean, depth: number): void {
  if (depth > MAX_DEPTH) throw new SparkplugEncodeError(`templates/metrics nested deeper than ${MAX_DEPTH} levels`);
  if (metric.name !== undefined) w.string(1, metric.name);
  if (metric.alias !== undefined) {
    w.tag(2, VARINT);
    w.uint64(metric.alias);
  }
  if (metric.timestamp !== undefined) {
    w.tag(3, VARINT);
    w.uint64(metric.timestamp);
  }
  const datatype = metric.datatype;
  if (datatype !== undefined && !omitDatatype) {
    w.tag(4, VARINT);
    w.varint(datatype >>> 0);
  }
  if (metric.isHistorical) w.bool(5, true);
  if (metric.isTransient) w.bool(6, true);
  const value = metric.value;
  // [tck-id-operational-behavior-data-publish-nbirth-values]: a null value is is_null = true and no value field.
  if (metric.isNull || value === null) w.bool(7, true);
  if (metric.metadata !== undefined) {
    w.tag(8, LENGTH);
    const start = w.begin();
    writeMetaData(w, metric.metadata);
    w.end(start);
  }
  if (metric.properties !== undefined) {
    w.tag(9, LENGTH);
    const start = w.begin();
    writePropertySet(w, metric.properties, depth + 1);
    w.end(start);
  }
  if (value === undefined || value === null || metric.isNull) return;
  if (datatype === undefined) throw new SparkplugEncodeError(`${metricLabel(metric)} has a value but no datatype`);
  const kind = valueKindOf(datatype);
  switch (kind) {
    case ValueKind.DataSet:
      w.tag(17, LENGTH);
      writeNested(w, () => writeDataSet(w, value as DataSet, metricLabel(metric)));
      return;
    case ValueKind.Template:
      w.tag(18, LENGTH);
      writeNested(w, () => writeTemplate(w, value as Template, depth + 1));
      return;
    case ValueKind.Bytes: {
      const problem = valueProblem(datatype, value);
      if (problem !== undefined) throw new SparkplugEncodeError(`${metricLabel(metric)} (${dataTypeName(datatype)}): ${problem}`);
      w.bytes(16, isArrayType(datatype) ? packArray(datatype, value as ArrayValue) : value as Uint8Array);
      return;
    }
    case undefined:
    case ValueKind.PropertySet:
    case ValueKind.PropertySetList:
      throw new SparkplugEncodeError(`${metricLabel(metric)}: datatype ${dataTypeName(datatype)} cannot carry a metric value`);
    default:
      writeScalar(w, 10, datatype, value as ScalarValue, metricLabel(metric));
  }
}

function writeNested(w: Writer, body: () => void): void {
  const start = w.begin();
  body();
  w.end(start);
}

/**
 * A basic-type value in the oneof fields int/long/float/double/boolean/string, which every
 * message numbers consecutively from `base` (Metric 10, PropertyValue 3, DataSetValue 1, Parameter 3).
 */
function writeScalar(w: Writer, base: number, datatype: number, value: ScalarValue | Date, label: string): void {
  // The hot path (Float/Double in NDATA/DDATA) is checked inline; the rest by valueProblem().
  if (datatype === DataType.Float && typeof value === 'number' && Math.abs(value) <= 3.4028234663852886e38) {
    w.float(base + 2, value);
    return;
  }
  if (datatype === DataType.Double && typeof value === 'number' && Number.isFinite(value)) {
    w.double(base + 3, value);
    return;
  }
  const problem = valueProblem(datatype, value);
  if (problem !== undefined) throw new SparkplugEncodeError(`${label} (${dataTypeName(datatype)}): ${problem}`);
  const wire = toWireScalar(datatype, value);
  switch (valueKindOf(datatype)) {
    case ValueKind.Int:
      w.tag(base, VARINT);
      w.varint(wire as number);
      return;
    case ValueKind.Long:
      w.tag(base + 1, VARINT);
      w.uint64(wire as Uint64);
      return;
    case ValueKind.Float:
      w.float(base + 2, wire as number);
      return;
    case ValueKind.Double:
      w.double(base + 3, wire as number);
      return;
    case ValueKind.Boolean:
      w.bool(base + 4, wire as boolean);
      return;
    default:
      w.string(base + 5, wire as string);
  }
}

function writeMetaData(w: Writer, m: MetaData): void {
  if (m.isMultiPart !== undefined) w.bool(1, m.isMultiPart);
  if (m.contentType !== undefined) w.string(2, m.contentType);
  if (m.size !== undefined) {
    w.tag(3, VARINT);
    w.uint64(toUint64(m.size));
  }
  if (m.seq !== undefined) {
    w.tag(4, VARINT);
    w.uint64(toUint64(m.seq));
  }
  if (m.fileName !== undefined) w.string(5, m.fileName);
  if (m.fileType !== undefined) w.string(6, m.fileType);
  if (m.md5 !== undefined) w.string(7, m.md5);
  if (m.description !== undefined) w.string(8, m.description);
}

function writePropertySet(w: Writer, set: PropertySet, depth: number): void {
  if (depth > MAX_DEPTH) throw new SparkplugEncodeError(`property sets nested deeper than ${MAX_DEPTH} levels`);
  // [tck-id-payloads-propertyset-keys-array-size] [tck-id-payloads-propertyset-values-array-size]
  if (set.keys.length !== set.values.length) {
    throw new SparkplugEncodeError(`property set has ${set.keys.length} keys but ${set.values.length} values`);
  }
  for (const key of set.keys) w.string(1, key);
  for (let i = 0; i < set.values.length; i++) {
    w.tag(2, LENGTH);
    writeNested(w, () => writePropertyValue(w, set.values[i], `property "${set.keys[i]}"`, depth));
  }
}

function writePropertyValue(w: Writer, property: PropertyValue, label: string, depth: number): void {
  const type = property.type;
  w.tag(1, VARINT);
  w.varint(type >>> 0);
  const value = property.value;
  if (value === null) {
    w.bool(2, true);
    return;
  }
  if (type === DataType.PropertySet) {
    w.tag(9, LENGTH);
    writeNested(w, () => writePropertySet(w, value as PropertySet, depth + 1));
    return;
  }
  if (type === DataType.PropertySetList) {
    if (!Array.isArray(value)) throw new SparkplugEncodeError(`${label}: a PropertySetList needs an array of property sets`);
    w.tag(10, LENGTH);
    writeNested(w, () => {
      for (const set of value as PropertySet[]) {
        w.tag(1, LENGTH);
        writeNested(w, () => writePropertySet(w, set, depth + 1));
      }
    });
    return;
  }
  // [tck-id-payloads-metric-propertyvalue-type-value]: basic types only, besides the two above.
  if (!isBasicType(type)) throw new SparkplugEncodeError(`${label}: type ${dataTypeName(type)} is not allowed for a property value`);
  writeScalar(w, 3, type, value as ScalarValue, label);
}

function writeDataSet(w: Writer, dataSet: DataSet, label: string): void {
  const { columns, types, rows } = dataSet;
  // [tck-id-payloads-dataset-column-num-headers] [tck-id-payloads-dataset-types-num]
  if (!Array.isArray(columns) || !Array.isArray(types) || !Array.isArray(rows) || columns.length !== types.length) {
    throw new SparkplugEncodeError(`${label}: a DataSet needs as many types as columns, and rows`);
  }
  w.tag(1, VARINT);
  w.varint(columns.length); // [tck-id-payloads-dataset-column-size]
  for (const column of columns) w.string(2, column);
  for (const type of types) {
    // [tck-id-payloads-dataset-types-value]: basic types 1…14.
    if (!isBasicType(type)) throw new SparkplugEncodeError(`${label}: DataSet column type ${dataTypeName(type)} is not a basic type`);
    w.tag(3, VARINT);
    w.varint(type);
  }
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    if (!Array.isArray(row) || row.length !== columns.length) {
      throw new SparkplugEncodeError(`${label}: DataSet row ${r} does not have ${columns.length} elements`);
    }
    w.tag(4, LENGTH);
    writeNested(w, () => {
      for (let c = 0; c < row.length; c++) {
        w.tag(1, LENGTH);
        const start = w.begin();
        if (row[c] !== null) writeScalar(w, 1, types[c], row[c] as ScalarValue, `${label} DataSet row ${r} column "${columns[c]}"`);
        w.end(start);
      }
    });
  }
}

function writeTemplate(w: Writer, template: Template, depth: number): void {
  if (depth > MAX_DEPTH) throw new SparkplugEncodeError(`templates/metrics nested deeper than ${MAX_DEPTH} levels`);
  if (template.version !== undefined) w.string(1, template.version);
  for (const member of template.metrics ?? []) {
    w.tag(2, LENGTH);
    // Members keep their datatype: they are matched by name, never through a BIRTH alias map.
    writeNested(w, () => writeMetric(w, member, false, depth + 1));
  }
  for (const parameter of template.parameters ?? []) {
    w.tag(3, LENGTH);
    writeNested(w, () => {
      w.string(1, parameter.name); // [tck-id-payloads-template-parameter-name-required]
      // [tck-id-payloads-template-parameter-type-value]: basic types only.
      if (!isBasicType(parameter.type)) throw new SparkplugEncodeError(`template parameter "${parameter.name}": type ${dataTypeName(parameter.type)} is not a basic type`);
      w.tag(2, VARINT);
      w.varint(parameter.type);
      if (parameter.value !== undefined && parameter.value !== null) {
        writeScalar(w, 3, parameter.type, parameter.value, `template parameter "${parameter.name}"`);
      }
    });
  }
  // [tck-id-payloads-template-definition-ref]: a definition has no template_ref.
  if (template.templateRef !== undefined && !template.isDefinition) w.string(4, template.templateRef);
  w.bool(5, template.isDefinition); // [tck-id-payloads-template-is-definition]: always present
}

// ======================================================================= decoding

class Reader {
  pos: number;

  constructor(readonly buf: Buffer, start: number, readonly end: number) {
    this.pos = start;
  }

  fail(message: string, at = this.pos): never {
    throw new SparkplugDecodeError(message, at);
  }

  /** A varint as an unsigned 64-bit value: a number up to 2^53−1, a bigint above. */
  uint64(): Uint64 {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    let value = 0;
    let scale = 1;
    // Up to 7 bytes (49 bits) fit a double exactly.
    for (let i = 0; i < 7; i++) {
      if (p >= this.end) this.fail('truncated varint', start);
      const byte = buf[p++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = p;
        return value;
      }
      scale *= 128;
    }
    // Bytes 8…10 carry bits 49…69 (a uint64 uses up to bit 63; the rest is dropped).
    let high = 0;
    scale = 1;
    for (let i = 7; i < 10; i++) {
      if (p >= this.end) this.fail('truncated varint', start);
      const byte = buf[p++];
      high += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = p;
        if (high < 16) return value + high * 562949953421312; // < 2^53: exact as a double (2^49 · high + value)
        return BigInt.asUintN(64, (BigInt(high) << 49n) | BigInt(value));
      }
      scale *= 128;
    }
    return this.fail('varint longer than 10 bytes', start);
  }

  /** A uint32 field: the low 32 bits of the varint (protobuf "Encoding": uint32 truncates). */
  uint32(): number {
    const buf = this.buf;
    const p = this.pos;
    if (p < this.end && buf[p] < 0x80) {
      this.pos = p + 1;
      return buf[p];
    }
    const value = this.uint64();
    return typeof value === 'number' ? value % 4294967296 : Number(BigInt.asUintN(32, value));
  }

  /** A length for a length-delimited field, checked against what is left. */
  length(): number {
    const at = this.pos;
    const length = this.uint64();
    if (typeof length !== 'number' || length > this.end - this.pos) this.fail(`length ${length} runs past the end of the payload`, at);
    return length as number;
  }

  bool(): boolean {
    return this.uint64() !== 0;
  }

  float(): number {
    if (this.pos + 4 > this.end) this.fail('truncated float');
    const value = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return value;
  }

  double(): number {
    if (this.pos + 8 > this.end) this.fail('truncated double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  string(): string {
    const length = this.length();
    const start = this.pos;
    this.pos += length;
    return this.buf.toString('utf8', start, start + length);
  }

  bytes(): Buffer {
    const length = this.length();
    const start = this.pos;
    this.pos += length;
    // A copy: the caller may keep it after the MQTT packet buffer is reused.
    return Buffer.from(this.buf.subarray(start, start + length));
  }

  /** A reader over the next length-delimited field. */
  nested(): Reader {
    const length = this.length();
    const inner = new Reader(this.buf, this.pos, this.pos + length);
    this.pos += length;
    return inner;
  }

  /** Skip a field of a number this message does not know (extensions, newer fields). */
  skip(wireType: number, field: number): void {
    switch (wireType) {
      case VARINT: this.uint64(); return;
      case FIXED64: this.advance(8); return;
      case LENGTH: this.advance(this.length()); return;
      case FIXED32: this.advance(4); return;
      default: this.fail(`wire type ${wireType} of field ${field} is not valid here (groups are not used by Sparkplug)`);
    }
  }

  private advance(bytes: number): void {
    if (this.pos + bytes > this.end) this.fail('truncated field');
    this.pos += bytes;
  }

  /** The next tag; fails on field number 0. */
  tag(): number {
    const at = this.pos;
    const tag = this.uint32();
    if (tag >>> 3 === 0) this.fail('field number 0', at);
    return tag;
  }
}

function expectWireType(r: Reader, tag: number, expected: number, message: string): void {
  if ((tag & 7) !== expected) r.fail(`field ${tag >>> 3} of ${message} has wire type ${tag & 7}, expected ${expected}`);
}

/** Decode a Sparkplug B payload; throws SparkplugDecodeError on anything that is not one. */
export function decodePayload(bytes: Uint8Array): DecodedPayload {
  const decoder = new PayloadDecoder(bytes);
  decoder.next(Number.POSITIVE_INFINITY);
  return decoder.payload;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A payload decoded a slice at a time, so that a large BIRTH can be spread over several turns of
 * the event loop: each next(n) reads up to n more top-level metrics (and the fields between them).
 */
export class PayloadDecoder {
  readonly payload: DecodedPayload = { metrics: [] };
  private readonly reader: Reader;

  constructor(bytes: Uint8Array) {
    const buf = asBuffer(bytes);
    this.reader = new Reader(buf, 0, buf.length);
  }

  /** Read up to `metrics` more metrics; true when the whole payload is read. Throws SparkplugDecodeError. */
  next(metrics: number): boolean {
    const r = this.reader;
    const payload = this.payload;
    let budget = metrics;
    while (r.pos < r.end) {
      if (budget <= 0) return false;
      const tag = r.tag();
      switch (tag >>> 3) {
        case 1: expectWireType(r, tag, VARINT, 'Payload'); payload.timestamp = r.uint64(); break;
        case 2: expectWireType(r, tag, LENGTH, 'Payload'); payload.metrics.push(readMetric(r.nested(), 0)); budget--; break;
        case 3: expectWireType(r, tag, VARINT, 'Payload'); payload.seq = r.uint64(); break;
        case 4: expectWireType(r, tag, LENGTH, 'Payload'); payload.uuid = r.string(); break;
        case 5: expectWireType(r, tag, LENGTH, 'Payload'); payload.body = r.bytes(); break;
        default: r.skip(tag & 7, tag >>> 3);
      }
    }
    return true;
  }
}

/**
 * How many metrics a payload carries, members of Template values included, counted by walking the
 * protobuf field tags without building anything; counting stops at `limit` + 1, so the cost is
 * bounded by the limit, not by the payload. Throws SparkplugDecodeError on malformed framing.
 */
export function countMetrics(bytes: Uint8Array, limit: number): number {
  const buf = asBuffer(bytes);
  return countIn(new Reader(buf, 0, buf.length), 2, 0, limit + 1, 0);
}

/** Metrics of the message `r` is over: its field `field` are metrics; each metric's field 18 is a Template (field 2 metrics). */
function countIn(r: Reader, field: number, counted: number, stopAt: number, depth: number): number {
  if (depth > MAX_DEPTH) r.fail(`templates/metrics nested deeper than ${MAX_DEPTH} levels`);
  let count = counted;
  while (r.pos < r.end && count < stopAt) {
    const tag = r.tag();
    if (tag >>> 3 !== field || (tag & 7) !== LENGTH) {
      r.skip(tag & 7, tag >>> 3);
      continue;
    }
    count++;
    const metric = r.nested();
    while (metric.pos < metric.end && count < stopAt) {
      const inner = metric.tag();
      if (inner >>> 3 === 18 && (inner & 7) === LENGTH) count = countIn(metric.nested(), 2, count, stopAt, depth + 1);
      else metric.skip(inner & 7, inner >>> 3);
    }
  }
  return count;
}

function readMetric(r: Reader, depth: number): DecodedMetric {
  if (depth > MAX_DEPTH) r.fail(`templates/metrics nested deeper than ${MAX_DEPTH} levels`);
  const metric: DecodedMetric = {};
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3;
    switch (field) {
      case 1: expectWireType(r, tag, LENGTH, 'Metric'); metric.name = r.string(); break;
      case 2: expectWireType(r, tag, VARINT, 'Metric'); metric.alias = r.uint64(); break;
      case 3: expectWireType(r, tag, VARINT, 'Metric'); metric.timestamp = r.uint64(); break;
      case 4: expectWireType(r, tag, VARINT, 'Metric'); metric.datatype = r.uint32(); break;
      case 5: expectWireType(r, tag, VARINT, 'Metric'); metric.isHistorical = r.bool(); break;
      case 6: expectWireType(r, tag, VARINT, 'Metric'); metric.isTransient = r.bool(); break;
      case 7: expectWireType(r, tag, VARINT, 'Metric'); metric.isNull = r.bool(); break;
      case 8: expectWireType(r, tag, LENGTH, 'Metric'); metric.metadata = readMetaData(r.nested()); break;
      case 9: expectWireType(r, tag, LENGTH, 'Metric'); metric.properties = readPropertySet(r.nested(), depth + 1); break;
      case 16: expectWireType(r, tag, LENGTH, 'Metric'); metric.valueKind = ValueKind.Bytes; metric.value = r.bytes(); break;
      case 17: expectWireType(r, tag, LENGTH, 'Metric'); metric.valueKind = ValueKind.DataSet; metric.value = readDataSet(r.nested()); break;
      case 18: expectWireType(r, tag, LENGTH, 'Metric'); metric.valueKind = ValueKind.Template; metric.value = readTemplate(r.nested(), depth + 1); break;
      case 19: expectWireType(r, tag, LENGTH, 'Metric'); metric.valueKind = ValueKind.Extension; metric.value = r.bytes(); break;
      default:
        if (field >= 10 && field <= 15) {
          metric.value = readScalar(r, tag, 10, 'Metric');
          metric.valueKind = (field - 10) as ValueKind;
        } else {
          r.skip(tag & 7, field);
        }
    }
  }
  return metric;
}

/** One of the six consecutive scalar oneof fields from `base` (see writeScalar). */
function readScalar(r: Reader, tag: number, base: number, message: string): WireScalar {
  switch ((tag >>> 3) - base) {
    case ValueKind.Int: expectWireType(r, tag, VARINT, message); return r.uint32();
    case ValueKind.Long: expectWireType(r, tag, VARINT, message); return r.uint64();
    case ValueKind.Float: expectWireType(r, tag, FIXED32, message); return r.float();
    case ValueKind.Double: expectWireType(r, tag, FIXED64, message); return r.double();
    case ValueKind.Boolean: expectWireType(r, tag, VARINT, message); return r.bool();
    default: expectWireType(r, tag, LENGTH, message); return r.string();
  }
}

function readMetaData(r: Reader): MetaData {
  const m: MetaData = {};
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1: expectWireType(r, tag, VARINT, 'MetaData'); m.isMultiPart = r.bool(); break;
      case 2: expectWireType(r, tag, LENGTH, 'MetaData'); m.contentType = r.string(); break;
      case 3: expectWireType(r, tag, VARINT, 'MetaData'); m.size = r.uint64(); break;
      case 4: expectWireType(r, tag, VARINT, 'MetaData'); m.seq = r.uint64(); break;
      case 5: expectWireType(r, tag, LENGTH, 'MetaData'); m.fileName = r.string(); break;
      case 6: expectWireType(r, tag, LENGTH, 'MetaData'); m.fileType = r.string(); break;
      case 7: expectWireType(r, tag, LENGTH, 'MetaData'); m.md5 = r.string(); break;
      case 8: expectWireType(r, tag, LENGTH, 'MetaData'); m.description = r.string(); break;
      default: r.skip(tag & 7, tag >>> 3);
    }
  }
  return m;
}

function readPropertySet(r: Reader, depth: number): PropertySet {
  if (depth > MAX_DEPTH) r.fail(`property sets nested deeper than ${MAX_DEPTH} levels`);
  const set: PropertySet = { keys: [], values: [] };
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1: expectWireType(r, tag, LENGTH, 'PropertySet'); set.keys.push(r.string()); break;
      case 2: expectWireType(r, tag, LENGTH, 'PropertySet'); set.values.push(readPropertyValue(r.nested(), depth)); break;
      default: r.skip(tag & 7, tag >>> 3);
    }
  }
  return set;
}

/** A property value, read as its `type` says (the raw wire value when the type is missing or does not fit). */
function readPropertyValue(r: Reader, depth: number): PropertyValue {
  let type = DataType.Unknown as number;
  let isNull = false;
  let kind: ValueKind | undefined;
  let wire: WireScalar | undefined;
  let value: PropertyValue['value'] = null;
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3;
    switch (field) {
      case 1: expectWireType(r, tag, VARINT, 'PropertyValue'); type = r.uint32(); break;
      case 2: expectWireType(r, tag, VARINT, 'PropertyValue'); isNull = r.bool(); break;
      case 9: expectWireType(r, tag, LENGTH, 'PropertyValue'); value = readPropertySet(r.nested(), depth + 1); break;
      case 10: {
        expectWireType(r, tag, LENGTH, 'PropertyValue');
        const list = r.nested();
        const sets: PropertySet[] = [];
        while (list.pos < list.end) {
          const inner = list.tag();
          if (inner >>> 3 === 1) {
            expectWireType(list, inner, LENGTH, 'PropertySetList');
            sets.push(readPropertySet(list.nested(), depth + 1));
          } else {
            list.skip(inner & 7, inner >>> 3);
          }
        }
        value = sets;
        break;
      }
      default:
        if (field >= 3 && field <= 8) {
          wire = readScalar(r, tag, 3, 'PropertyValue');
          kind = (field - 3) as ValueKind;
        } else {
          r.skip(tag & 7, field);
        }
    }
  }
  if (isNull) return { type, value: null };
  if (kind !== undefined) value = scalarOrRaw(type, kind, wire);
  return { type, value };
}

/** The typed value when the wire field fits `type`, else the wire value as it came. */
function scalarOrRaw(type: number, kind: ValueKind, wire: WireScalar | undefined): ScalarValue {
  if (isBasicType(type)) {
    try {
      return fromWireScalar(type, kind, wire) as ScalarValue;
    } catch {
      // keep the raw value; the consumer can see the type does not match
    }
  }
  return wire as ScalarValue;
}

/** A DataSetValue as read, before the column types are known (they may come after the rows). */
interface RawCell {
  kind: ValueKind | undefined;
  wire: WireScalar | undefined;
}

function readDataSet(r: Reader): DataSet {
  const dataSet: DataSet = { columns: [], types: [], rows: [] };
  const rawRows: RawCell[][] = [];
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1: expectWireType(r, tag, VARINT, 'DataSet'); r.uint64(); break; // num_of_columns: columns.length says it
      case 2: expectWireType(r, tag, LENGTH, 'DataSet'); dataSet.columns.push(r.string()); break;
      case 3:
        if ((tag & 7) === LENGTH) {
          const packed = r.nested(); // proto2 parsers accept packed repeated scalars too
          while (packed.pos < packed.end) dataSet.types.push(packed.uint32());
        } else {
          expectWireType(r, tag, VARINT, 'DataSet');
          dataSet.types.push(r.uint32());
        }
        break;
      case 4: {
        expectWireType(r, tag, LENGTH, 'DataSet');
        const row = r.nested();
        const cells: RawCell[] = [];
        while (row.pos < row.end) {
          const inner = row.tag();
          if (inner >>> 3 !== 1) {
            row.skip(inner & 7, inner >>> 3);
            continue;
          }
          expectWireType(row, inner, LENGTH, 'DataSet.Row');
          const element = row.nested();
          let cell: RawCell = { kind: undefined, wire: undefined };
          while (element.pos < element.end) {
            const t = element.tag();
            const field = t >>> 3;
            if (field >= 1 && field <= 6) cell = { kind: (field - 1) as ValueKind, wire: readScalar(element, t, 1, 'DataSetValue') };
            else element.skip(t & 7, field);
          }
          cells.push(cell);
        }
        rawRows.push(cells);
        break;
      }
      default: r.skip(tag & 7, tag >>> 3);
    }
  }
  dataSet.rows = rawRows.map((cells) => cells.map((cell, c) => (cell.kind === undefined ? null : scalarOrRaw(dataSet.types[c], cell.kind, cell.wire))));
  return dataSet;
}

function readTemplate(r: Reader, depth: number): Template<DecodedMetric> {
  if (depth > MAX_DEPTH) r.fail(`templates/metrics nested deeper than ${MAX_DEPTH} levels`);
  const template: Template<DecodedMetric> = { isDefinition: false, metrics: [], parameters: [] };
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1: expectWireType(r, tag, LENGTH, 'Template'); template.version = r.string(); break;
      case 2: expectWireType(r, tag, LENGTH, 'Template'); template.metrics.push(readMetric(r.nested(), depth + 1)); break;
      case 3: {
        expectWireType(r, tag, LENGTH, 'Template');
        const p = r.nested();
        const parameter: TemplateParameter = { name: '', type: DataType.Unknown };
        while (p.pos < p.end) {
          const t = p.tag();
          const field = t >>> 3;
          if (field === 1) { expectWireType(p, t, LENGTH, 'Parameter'); parameter.name = p.string(); }
          else if (field === 2) { expectWireType(p, t, VARINT, 'Parameter'); parameter.type = p.uint32(); }
          else if (field >= 3 && field <= 8) {
            const wire = readScalar(p, t, 3, 'Parameter');
            parameter.value = scalarOrRaw(parameter.type, (field - 3) as ValueKind, wire);
          } else p.skip(t & 7, field);
        }
        template.parameters!.push(parameter);
        break;
      }
      case 4: expectWireType(r, tag, LENGTH, 'Template'); template.templateRef = r.string(); break;
      case 5: expectWireType(r, tag, VARINT, 'Template'); template.isDefinition = r.bool(); break;
      default: r.skip(tag & 7, tag >>> 3);
    }
  }
  return template;
}

/**
 * The value of a decoded metric as `datatype` (by default its own; DATA and CMD metrics carry
 * none, so pass the one from the BIRTH). Throws SparkplugValueError when the wire value does not
 * fit: wrong field, out of range, undecodable array.
 */
export function metricValue(metric: DecodedMetric, datatype: number | undefined = metric.datatype): MetricValue {
  if (metric.isNull) return null;
  if (datatype === undefined) throw new SparkplugValueError('the metric has no datatype and none is known from a BIRTH');
  const kind = metric.valueKind;
  if (kind === undefined) throw new SparkplugValueError(`the metric carries no value (expected ${dataTypeName(datatype)})`);
  const expected = valueKindOf(datatype);
  if (expected === ValueKind.DataSet || expected === ValueKind.Template) {
    if (kind !== expected) throw new SparkplugValueError(`a ${dataTypeName(datatype)} value cannot be read from ${valueKindName(kind)}`);
    return metric.value as DataSet | Template;
  }
  if (isArrayType(datatype)) {
    if (kind !== ValueKind.Bytes) throw new SparkplugValueError(`a ${dataTypeName(datatype)} value cannot be read from ${valueKindName(kind)}`);
    return unpackArray(datatype, metric.value as Uint8Array);
  }
  return fromWireScalar(datatype, kind, metric.value as WireScalar);
}
