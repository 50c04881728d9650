/**
 * OPC UA PubSub JSON (lib/opcua/pubsub-encoder.ts, pubsub-decoder.ts): round trip of tag batches,
 * every message against the JSON schemas in docs/, key/delta frames, keep-alives, metadata
 * versions, bad input, and the spec's own JSON examples (OPC 10000-14 v1.05 Annex A.3).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { PubSubDecoder } from '../../lib/opcua/pubsub-decoder';
import { PubSubPublisher, type PubSubMessage } from '../../lib/opcua/pubsub-encoder';

const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });
// RFC 3339 date-time (ajv-formats is not installed): the shape, and a time Date can read.
ajv.addFormat('date-time', { type: 'string', validate: (v: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)) });
const schema = (name: string) => ajv.compile(JSON.parse(readFileSync(join(__dirname, '../../docs', `pubsub-${name}.schema.json`), 'utf8')));
const validators = { 'ua-data': schema('data'), 'ua-metadata': schema('metadata'), 'ua-status': schema('status') };

function validate(message: PubSubMessage | string): void {
  const json = JSON.parse(typeof message === 'string' ? message : message.payload) as { MessageType: keyof typeof validators };
  const check = validators[json.MessageType];
  assert.ok(check, `a schema for ${json.MessageType}`);
  assert.ok(check(json), `${json.MessageType} against its schema: ${JSON.stringify(check.errors)}`);
}

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const T = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function sample(): TagBatch {
  return {
    topic: ASSET,
    payload: {
      current: 12.5, running: true, mode: 'auto', energy: 9223372036854775807n, small: -12, 'Motor/Temp': 41.5,
      fault: null, since: T - 5000, blob: 'AAEC', counter: 7,
    },
    meta: {
      current: { timestamp: T, unit: 'A', type: 'Float' },
      running: { timestamp: T, type: 'Boolean' },
      mode: { timestamp: T, type: 'String' },
      energy: { timestamp: T, type: 'Int64', unit: 'Wh' },
      small: { timestamp: T, type: 'Int16', quality: 'uncertain', reason: 'Uncertain' },
      'Motor/Temp': { timestamp: T + 1, unit: 'degC', type: 'Double', quality: 'bad', reason: 'BadNoCommunication' },
      fault: { timestamp: T, type: 'UInt16', quality: 'bad', reason: 'BadNoCommunication' },
      since: { timestamp: T, type: 'DateTime' },
      blob: { timestamp: T, type: 'Bytes' },
      counter: { timestamp: T, type: 'UInt32' },
    },
    timestamp: T,
  };
}

function roundTrip(publisher: PubSubPublisher, decoder: PubSubDecoder, batch: TagBatch): TagBatch[] {
  const { messages, warnings } = publisher.publish(batch);
  assert.deepEqual(warnings, []);
  const out: TagBatch[] = [];
  for (const m of messages) {
    validate(m);
    const result = decoder.decode(m.payload);
    assert.deepEqual(result.problems, []);
    out.push(...result.batches);
  }
  return out;
}

describe('OPC UA PubSub JSON encoder/decoder', () => {
  it('a tag batch comes back identical: values (Int64 beyond 2^53, DateTime, Bytes), types, units, timestamps, quality', () => {
    const publisher = new PubSubPublisher({ publisherId: 'gw-line2', writerGroupName: 'uns' });
    const [back] = roundTrip(publisher, new PubSubDecoder(), sample());
    assert.deepEqual(back, sample());
  });

  it('topics: <prefix>/json/<data|metadata|status>/<PublisherId>/<WriterGroup>/<DataSetWriter>; metadata and status retained, data not', () => {
    const publisher = new PubSubPublisher({ publisherId: 'gw-line2', writerGroupName: 'uns', prefix: 'site1/opcua' });
    const { messages } = publisher.publish(sample());
    assert.deepEqual(messages.map((m) => [m.topic, m.retain]), [
      ['site1/opcua/json/metadata/gw-line2/uns/acme.plant1.press.line2.cell1.drive7', true],
      ['site1/opcua/json/data/gw-line2/uns/acme.plant1.press.line2.cell1.drive7', false],
    ]);
    const status = publisher.status('Operational');
    assert.deepEqual([status.topic, status.retain], ['site1/opcua/json/status/gw-line2', true]);
    validate(status);
    const will = publisher.will();
    validate(will);
    assert.equal(JSON.parse(will.payload).Status, 3); // PubSubState Error
    assert.equal(JSON.parse(will.payload).IsCyclic, false);
    assert.throws(() => new PubSubPublisher({ publisherId: 'a/b', writerGroupName: 'uns' }), /PublisherId "a\/b" contains/);
  });

  it('NetworkMessage and DataSetMessage fields as Tables 184/185 name them; a Good status and a null value are omitted', () => {
    const publisher = new PubSubPublisher({ publisherId: 'gw', writerGroupName: 'uns' });
    const data = JSON.parse(publisher.publish(sample()).messages[1].payload);
    assert.deepEqual(Object.keys(data), ['MessageId', 'MessageType', 'PublisherId', 'WriterGroupName', 'Messages']);
    const dsm = data.Messages[0];
    assert.equal(dsm.DataSetWriterId, 1);
    assert.equal(dsm.DataSetWriterName, ASSET);
    assert.equal(dsm.SequenceNumber, 1);
    assert.equal(dsm.MessageType, 'ua-keyframe');
    assert.equal(dsm.Timestamp, new Date(T).toISOString());
    assert.deepEqual(dsm.Payload.current, { Value: 12.5, SourceTimestamp: new Date(T).toISOString() });
    assert.deepEqual(dsm.Payload.energy.Value, '9223372036854775807');
    assert.deepEqual(dsm.Payload.fault, { Status: { Code: 0x80310000, Symbol: 'BadNoCommunication' }, SourceTimestamp: new Date(T).toISOString() });
  });

  it('a key frame every N messages, delta frames with the changed fields only between', () => {
    const publisher = new PubSubPublisher({ publisherId: 'gw', writerGroupName: 'uns', keyFrameCount: 3 });
    const decoder = new PubSubDecoder();
    const frames: { type: string; fields: string[] }[] = [];
    for (let i = 0; i < 4; i++) {
      const batch: TagBatch = { topic: ASSET, payload: { a: 1, b: i }, meta: { a: { timestamp: T }, b: { timestamp: T + i } }, timestamp: T + i };
      const { messages } = publisher.publish(batch);
      const data = messages[messages.length - 1];
      validate(data);
      const dsm = JSON.parse(data.payload).Messages[0];
      frames.push({ type: dsm.MessageType, fields: Object.keys(dsm.Payload) });
      for (const m of messages) assert.deepEqual(decoder.decode(m.payload).problems, []);
    }
    assert.deepEqual(frames, [
      { type: 'ua-keyframe', fields: ['a', 'b'] },
      { type: 'ua-deltaframe', fields: ['b'] },
      { type: 'ua-deltaframe', fields: ['b'] },
      { type: 'ua-keyframe', fields: ['a', 'b'] },
    ]);
  });

  it('keep-alives for silent writers: a DataSetMessage without Payload, ignored by the decoder', () => {
    let now = T;
    const publisher = new PubSubPublisher({ publisherId: 'gw', writerGroupName: 'uns', keepAliveMs: 5000, now: () => now });
    publisher.publish({ topic: ASSET, payload: { a: 1 } });
    assert.deepEqual(publisher.keepAlives(), []);
    now += 5000;
    const [keepAlive] = publisher.keepAlives();
    validate(keepAlive);
    const dsm = JSON.parse(keepAlive.payload).Messages[0];
    assert.equal(dsm.MessageType, 'ua-keepalive');
    assert.equal(dsm.Payload, undefined);
    assert.equal(dsm.SequenceNumber, 2);
    assert.deepEqual(new PubSubDecoder().decode(keepAlive.payload), { batches: [], problems: [] });
  });

  it('a new field: new metadata with a higher MajorVersion before the data; data of the old version is then refused', () => {
    let now = T;
    const publisher = new PubSubPublisher({ publisherId: 'gw', writerGroupName: 'uns', now: () => now });
    const decoder = new PubSubDecoder();
    const first = publisher.publish({ topic: ASSET, payload: { a: 1 } }).messages;
    for (const m of first) decoder.decode(m.payload);
    const oldData = first[1].payload;
    now += 1000;
    const second = publisher.publish({ topic: ASSET, payload: { a: 2, b: true } }).messages;
    assert.equal(JSON.parse(second[0].payload).MessageType, 'ua-metadata');
    const v1 = JSON.parse(first[0].payload).MetaData.ConfigurationVersion.MajorVersion;
    const v2 = JSON.parse(second[0].payload).MetaData.ConfigurationVersion.MajorVersion;
    assert.ok(v2 > v1);
    for (const m of second) assert.deepEqual(decoder.decode(m.payload).problems, []);
    const refused = decoder.decode(oldData);
    assert.deepEqual(refused.batches, []);
    assert.match(refused.problems[0], /MetaDataVersion \d+ is not the known version \d+ \(unknown metadata version\)/);
  });

  it('a value that contradicts its field\'s DataType: refused (BadTypeMismatch) with a warning, the field keeps its type', () => {
    const publisher = new PubSubPublisher({ publisherId: 'gw', writerGroupName: 'uns' });
    publisher.publish({ topic: ASSET, payload: { level: 3 }, meta: { level: { type: 'Int32' } } });
    const { messages, warnings } = publisher.publish({ topic: ASSET, payload: { level: 'high' } });
    assert.equal(messages.length, 1, 'no new metadata');
    assert.match(warnings[0], /metric "level" .* \(DataType Int32\): value refused/);
    const field = JSON.parse(messages[0].payload).Messages[0].Payload.level;
    assert.deepEqual(field.Status, { Code: 0x80740000, Symbol: 'BadTypeMismatch' });
    assert.equal(field.Value, undefined);
  });

  describe('bad input is refused as a whole, with a reason', () => {
    const publisher = new PubSubPublisher({ publisherId: 'gw', writerGroupName: 'uns' });
    const decoder = new PubSubDecoder();
    for (const m of publisher.publish({ topic: ASSET, payload: { a: 1 } }).messages) decoder.decode(m.payload);

    it('not JSON, not an object, unknown MessageType, over the size limit', () => {
      assert.match(decoder.decode('{"MessageType": "ua-data", ').problems[0], /^not JSON/);
      assert.match(decoder.decode('[1,2]').problems[0], /not a JSON object/);
      assert.match(decoder.decode('{"MessageType":"ua-other"}').problems[0], /is not ua-data, ua-metadata or ua-status/);
      assert.match(new PubSubDecoder({ maxBytes: 100 }).decode('x'.repeat(101)).problems[0], /101 bytes, more than 100/);
    });

    it('missing mandatory fields (MessageId, Messages, DataSetWriterId, MetaData)', () => {
      assert.match(decoder.decode(JSON.stringify({ MessageType: 'ua-data', Messages: [] })).problems[0], /MessageId is missing/);
      assert.match(decoder.decode(JSON.stringify({ MessageId: 'x', MessageType: 'ua-data' })).problems[0], /Messages is missing/);
      assert.match(decoder.decode(JSON.stringify({ MessageId: 'x', MessageType: 'ua-data', Messages: [{ Payload: { a: 1 } }] })).problems[0], /DataSetWriterId is not a UInt16/);
      assert.match(decoder.decode(JSON.stringify({ MessageId: 'x', MessageType: 'ua-metadata', PublisherId: 'gw', DataSetWriterId: 9 })).problems[0], /MetaData.Fields is missing/);
    });

    it('10^5 fields in a payload or in metadata', () => {
      const payload: Record<string, number> = {};
      for (let i = 0; i < 100_000; i++) payload[`f${i}`] = i;
      const big = JSON.stringify({ MessageId: 'x', MessageType: 'ua-data', PublisherId: 'gw', Messages: [{ DataSetWriterId: 1, Payload: payload }] });
      const started = performance.now();
      const result = new PubSubDecoder({ maxBytes: 10 * 1024 * 1024 }).decode(big);
      assert.deepEqual(result.batches, []);
      assert.match(result.problems[0], /Payload has more than 10000 fields/);
      assert.ok(performance.now() - started < 2000);
      const fields = Array.from({ length: 100_000 }, (_, i) => ({ Name: `f${i}`, BuiltInType: 11 }));
      const meta = JSON.stringify({ MessageId: 'x', MessageType: 'ua-metadata', PublisherId: 'gw', DataSetWriterId: 5, MetaData: { Fields: fields } });
      assert.match(new PubSubDecoder({ maxBytes: 20 * 1024 * 1024 }).decode(meta).problems[0], /100000 fields, more than 10000/);
    });

    it('one field holding a 200,000-element array counts as 200,000 metrics: the whole message is refused, no batch of it', () => {
      const array = JSON.stringify({ MessageId: 'x', MessageType: 'ua-data', PublisherId: 'gw', Messages: [
        { DataSetWriterId: 1, Payload: { small: 1 } },
        { DataSetWriterId: 2, Payload: { wave: new Array(200_000).fill(0) } },
      ] });
      const started = performance.now();
      const result = new PubSubDecoder({ maxBytes: 10 * 1024 * 1024 }).decode(array);
      assert.deepEqual(result.batches, []);
      assert.deepEqual(result.problems, ['ua-data: more than 10000 metrics once structures and arrays are flattened; the whole message is refused']);
      assert.ok(performance.now() - started < 2000);
    });

    it('flattened metrics of all DataSetMessages of one message count together against maxFields', () => {
      const message = (n: number) => JSON.stringify({ MessageId: 'x', MessageType: 'ua-data', PublisherId: 'gw', Messages: [
        { DataSetWriterId: 1, Payload: { a: [1, 2, 3], s: { x: 1, y: [true, null] } } },
        { DataSetWriterId: 2, Payload: { b: new Array(n).fill(7) } },
      ] });
      const atLimit = new PubSubDecoder({ maxFields: 10 }).decode(message(4)); // 6 + 4 metrics
      assert.deepEqual(atLimit.problems, []);
      assert.equal(atLimit.batches.length, 2);
      const over = new PubSubDecoder({ maxFields: 10 }).decode(message(5));
      assert.deepEqual(over.batches, []);
      assert.match(over.problems[0], /more than 10 metrics once structures and arrays are flattened/);
    });

    it('a field nested 90,000 DataValues deep (a hostile broker client) is refused with a reason, not a RangeError', () => {
      const depth = 90_000;
      const deep = `{"MessageId":"x","MessageType":"ua-data","PublisherId":"evil","Messages":[{"DataSetWriterId":1,"Payload":{"a":${'{"Value":'.repeat(depth)}1${'}'.repeat(depth)}}}]}`;
      const result = new PubSubDecoder().decode(deep);
      assert.deepEqual(result.batches, []);
      assert.match(result.problems[0], /field "a" nested deeper than 4 levels/);
    });

    it('a MetaDataVersion whose metadata never came, and a field the metadata does not name', () => {
      const orphan = JSON.stringify({ MessageId: 'x', MessageType: 'ua-data', PublisherId: 'other', Messages: [{ DataSetWriterId: 1, MetaDataVersion: { MajorVersion: 1, MinorVersion: 1 }, Payload: { a: 1 } }] });
      assert.match(decoder.decode(orphan).problems[0], /references metadata not received/);
      const data = JSON.parse(publisher.publish({ topic: ASSET, payload: { a: 2 } }).messages[0].payload);
      data.Messages[0].Payload.zz = { Value: 1 };
      const result = decoder.decode(JSON.stringify(data));
      assert.deepEqual(result.batches, [], 'nothing of the DataSetMessage is decoded half-way');
      assert.match(result.problems[0], /field "zz" is not in the metadata/);
    });
  });

  it('a 1.04 publisher: DataSetWriterId as a String, Status as a number', () => {
    const decoder = new PubSubDecoder();
    assert.deepEqual(decoder.decode(JSON.stringify({
      MessageId: 'm1', MessageType: 'ua-metadata', PublisherId: 'old', DataSetWriterId: '7',
      MetaData: { Name: 'a/b/c/d/e/f', Fields: [{ Name: 'x', BuiltInType: 6 }], ConfigurationVersion: { MajorVersion: 5, MinorVersion: 5 } },
    })).problems, []);
    const result = decoder.decode(JSON.stringify({
      MessageId: 'm2', MessageType: 'ua-data', PublisherId: 'old',
      Messages: [{ DataSetWriterId: '7', MetaDataVersion: { MajorVersion: 5, MinorVersion: 5 }, Payload: { x: { Value: 3, Status: 1073741824 } } }],
    }));
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.batches, [{ topic: 'a/b/c/d/e/f', payload: { x: 3 }, meta: { x: { quality: 'uncertain', reason: '0x40000000', type: 'Int32' } } }]);
  });

  describe('the spec\'s own JSON examples (OPC 10000-14 v1.05 Annex A.3) decode', () => {
    // A.3.1 "DataSets for examples": the DataSetMetaData message of DataSet1 (Table A.13 fields:
    // Active Boolean, Temperature Double, Counter UInt32, AdditionalInfo String). The DataSetFieldIds
    // are the example's Guid for Active and made-up ones for the rest (the excerpt available here
    // was cut after the first field).
    const A31_METADATA_DATASET1 = {
      MessageId: '66D65CA4-92EE-4195-9867-E6E27794B692', MessageType: 'ua-metadata', PublisherId: 'MyPublisher', DataSetWriterId: 101,
      MetaData: {
        Name: 'DataSet1',
        Fields: [
          { Name: 'Active', FieldFlags: 0, BuiltInType: 1, DataType: 'i=1', ValueRank: -1, MaxStringLength: 0, DataSetFieldId: 'f355bfe8-d5c0-4073-aa89-c8d9d9f8c0c4' },
          { Name: 'Temperature', FieldFlags: 0, BuiltInType: 11, DataType: 'i=11', ValueRank: -1, MaxStringLength: 0 },
          { Name: 'Counter', FieldFlags: 0, BuiltInType: 7, DataType: 'i=7', ValueRank: -1, MaxStringLength: 0 },
          { Name: 'AdditionalInfo', FieldFlags: 0, BuiltInType: 12, DataType: 'i=12', ValueRank: -1, MaxStringLength: 0 },
        ],
      },
    };
    // A.3.4.5 "Examples": NetworkMessage with DataSet1, DataSet2 and DataSet3, all configurable
    // JsonNetworkMessageContentMask / JsonDataSetMessageContentMask flags false, no
    // DataSetFieldContentMask flags (DataSet3 abridged to the scalar fields a tag batch carries
    // plus the StatusCode and NodeId structures).
    const A345_NETWORK_MESSAGE = {
      MessageId: '9279c0b3-da88-45a4-af74-451cebf82db0', MessageType: 'ua-data', PublisherId: 'MyPublisher',
      Messages: [
        { DataSetWriterId: 101, SequenceNumber: 68468, MinorVersion: 672341762, Timestamp: '2021-09-27T18:45:19.555Z',
          Payload: { Active: true, Temperature: 25.5, Counter: 0, AdditionalInfo: 'The system is running normally (1)' } },
        { DataSetWriterId: 102, SequenceNumber: 25460, MinorVersion: 672341762, Timestamp: '2021-09-27T18:45:19.555Z', Status: { Code: 1073741824 },
          Payload: { LocationName: 'Building A', Coordinate: { X: 0, Y: 0.2 }, Measurements: [20030, 20020, 20010] } },
        { DataSetWriterId: 103, SequenceNumber: 66915, MinorVersion: 672341762, Timestamp: '2021-09-27T18:45:19.555Z',
          Payload: {
            BooleanValue: false, Int32Value: 0, Int64Value: '1', UInt32Value: 1, UInt64Value: '1', DoubleValue: 0.5,
            DateTimeValue: '2021-09-14T07:14:30Z', StringValue: 'String 1', GuidValue: 'ebfc352a-3142-4b99-9bbe-89a517d6a77e',
            StatusCodeValue: { Code: 2147483648, Symbol: 'Bad' }, ByteStringValue: 'AAEC',
          } },
      ],
    };
    // A.3.3.5 "Examples": DataSet1 with SourceTimestamp and StatusCode flags in the
    // DataSetFieldContentMask (fields as DataValues; "The Status is omitted if the Code is 0").
    const A335_DATASET_MESSAGE_DATAVALUES = {
      PublisherId: 'MyPublisher', DataSetWriterId: 101, SequenceNumber: 68468, MinorVersion: 672341762, Timestamp: '2021-09-27T18:45:19.555Z',
      Payload: {
        Active: { Value: true, Status: { Code: 1073741824, Symbol: 'Uncertain' }, SourceTimestamp: '2021-09-27T11:32:38.349925Z' },
        Temperature: { Value: 25.5, SourceTimestamp: '2021-09-27T11:32:38.349925Z' },
      },
    };

    it('A.3.1 metadata + A.3.4.5 NetworkMessage: DataSet1 typed by its metadata, DataSet2/3 by their JSON (structures flattened)', () => {
      const decoder = new PubSubDecoder();
      validate(JSON.stringify(A31_METADATA_DATASET1));
      validate(JSON.stringify(A345_NETWORK_MESSAGE));
      assert.deepEqual(decoder.decode(JSON.stringify(A31_METADATA_DATASET1)).problems, []);
      const { batches, problems } = decoder.decode(JSON.stringify(A345_NETWORK_MESSAGE));
      assert.deepEqual(problems, []);
      assert.equal(batches.length, 3);
      const t = Date.parse('2021-09-27T18:45:19.555Z');
      // DataSet1: the metadata's Name is the asset path (one level here).
      assert.deepEqual(batches[0], {
        topic: 'DataSet1', timestamp: t,
        payload: { Active: true, Temperature: 25.5, Counter: 0, AdditionalInfo: 'The system is running normally (1)' },
        meta: { Active: { type: 'Boolean' }, Temperature: { type: 'Double' }, Counter: { type: 'UInt32' }, AdditionalInfo: { type: 'String' } },
      });
      assert.deepEqual(batches[1].payload, { LocationName: 'Building A', 'Coordinate/X': 0, 'Coordinate/Y': 0.2, 'Measurements/0': 20030, 'Measurements/1': 20020, 'Measurements/2': 20010 });
      assert.equal(batches[2].payload.Int64Value, '1');
      assert.equal(batches[2].payload['StatusCodeValue/Code'], 2147483648);
      assert.equal(batches[2].payload.DateTimeValue, '2021-09-14T07:14:30Z');
    });

    it('A.3.3.5 DataSetMessage with DataValue fields: status and source timestamps', () => {
      const decoder = new PubSubDecoder();
      decoder.decode(JSON.stringify(A31_METADATA_DATASET1));
      const { batches, problems } = decoder.decode(JSON.stringify({ MessageId: 'wrapped', MessageType: 'ua-data', Messages: [A335_DATASET_MESSAGE_DATAVALUES] }));
      assert.deepEqual(problems, []);
      const source = Date.parse('2021-09-27T11:32:38.349925Z');
      assert.deepEqual(batches[0].payload, { Active: true, Temperature: 25.5 });
      assert.deepEqual(batches[0].meta, {
        Active: { timestamp: source, quality: 'uncertain', reason: 'Uncertain', type: 'Boolean' },
        Temperature: { timestamp: source, type: 'Double' },
      });
    });
  });
});
