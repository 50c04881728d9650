/**
 * lib/modbus/write-plan.ts and lib/modbus/writer.ts: checks before the wire (type, finite, min/max,
 * integer range after scaling, string length, Latin-1), no half writes, FC5/6/15/16 selection, and
 * the writer against lib/modbus/server.ts over TCP (order, stop on failure, old values, queue bound).
 */
import { strict as assert } from 'node:assert';
import { createModbusTcpClient, ModbusClient } from '../../lib/modbus/client';
import { decodeRegisters, encodeRegisters } from '../../lib/modbus/datatypes';
import { MemoryDataModel } from '../../lib/modbus/memory-model';
import { MetricDefinitionError } from '../../lib/modbus/read-plan';
import { ModbusTcpServer, startModbusTcpServer } from '../../lib/modbus/server';
import { buildWritePlan, PreparedWrite, prepareCommand, WriteMetricDefinition, WritePlanOptions } from '../../lib/modbus/write-plan';
import { ModbusWriter, WriteLogEntry } from '../../lib/modbus/writer';

const DEFS: WriteMetricDefinition[] = [
  { name: 'speedSetpoint', table: 'holding', address: 10, type: 'uint16', scale: 0.1, unit: 'Hz', min: 0, max: 60 },
  { name: 'current', table: 'holding', address: 11, type: 'int16', scale: 0.01 },
  { name: 'torque', table: 'holding', address: 12, type: 'float32', min: -100, max: 100 },
  { name: 'energy', table: 'holding', address: 14, type: 'uint64' },
  { name: 'label', table: 'holding', address: 20, type: 'string', length: 4 },
  { name: 'tag', table: 'holding', address: 24, type: 'string', length: 1 },
  { name: 'count', table: 'holding', address: 25, type: 'uint16' },
  { name: 'run', table: 'coil', address: 3, type: 'bit' },
  { name: 'valve', table: 'holding', address: 26, type: 'uint16', signal: '4-20mA', scale: 0.001, euMin: 0, euMax: 100 },
];

const prepared = (payload: unknown, options: WritePlanOptions = {}, defs = DEFS): PreparedWrite[] => {
  const result = prepareCommand(buildWritePlan(defs, options), payload);
  if (!result.ok) assert.fail(`rejected: ${JSON.stringify(result.problems)}`);
  return result.writes;
};
const problemsOf = (payload: unknown, options: WritePlanOptions = {}): string[] => {
  const result = prepareCommand(buildWritePlan(DEFS, options), payload);
  assert.equal(result.ok, false, 'must be rejected');
  return result.ok ? [] : result.problems.map((p) => (p.name ? `${p.name}: ${p.problem}` : p.problem));
};

describe('modbus write plan', () => {
  it('refuses definitions that cannot be written, listing every problem', () => {
    assert.throws(() => buildWritePlan([
      { name: 'a', table: 'input', address: 0, type: 'uint16' },
      { name: 'b', table: 'discrete', address: 0, type: 'bit' },
      { name: 'c', table: 'holding', address: 0, type: 'bit', bit: 3 },
      { name: 'd', table: 'holding', address: 1, type: 'uint16', min: 10, max: 5 },
      { name: 'e', table: 'holding', address: 2, type: 'string', length: 2, max: 5 },
      { name: 'f', table: 'holding', address: 3, type: 'string', length: 124 },
    ]), (e: unknown) => {
      assert.ok(e instanceof MetricDefinitionError);
      const text = e.problems.join('\n');
      for (const expected of [/"a": input registers are read-only/, /"b": discrete inputs are read-only/, /"c": a bit of a holding register/,
        /"d": min 10 is above max 5/, /"e": min\/max apply to numeric types/, /"f": string length must be 1\.\.123/]) {
        assert.match(text, expected);
      }
      return true;
    });
  });

  it('chooses FC5 for a coil, FC6 for one register, FC16 for several; FC15/FC16 only with multipleOnly', () => {
    const w = prepared({ run: true, count: 7, torque: 1.5, label: 'AB', tag: 'Z' });
    assert.deepEqual(w.map((x) => x.request.fc), [5, 6, 16, 16, 6]);
    assert.deepEqual(w[0].request, { fc: 5, address: 3, value: true });
    assert.deepEqual(w[1].request, { fc: 6, address: 25, value: 7 });
    assert.deepEqual(w[2].request, { fc: 16, address: 12, values: encodeRegisters(1.5, 'float32') });
    assert.deepEqual(w[3].request, { fc: 16, address: 20, values: [0x4142, 0, 0, 0] });
    const m = prepared({ run: 0, count: 7 }, { multipleOnly: true });
    assert.deepEqual(m.map((x) => x.request), [{ fc: 15, address: 3, values: [false] }, { fc: 16, address: 25, values: [7] }]);
  });

  it('keeps the order of the command (setpoint before start)', () => {
    assert.deepEqual(prepared({ speedSetpoint: 50, run: true }).map((x) => x.name), ['speedSetpoint', 'run']);
    assert.deepEqual(prepared({ run: true, speedSetpoint: 50 }).map((x) => x.name), ['run', 'speedSetpoint']);
  });

  it('unscales exactly and rounds a scaled integer register to its resolution, reporting the value it will hold', () => {
    const [a, b, c] = prepared({ current: 3.78, speedSetpoint: 50.03, valve: 50 });
    assert.deepEqual(a.request, { fc: 6, address: 11, value: 378 });
    assert.equal(a.written, 3.78);
    assert.deepEqual(b.request, { fc: 6, address: 10, value: 500 });
    assert.equal(b.written, 50);
    assert.equal(b.value, 50.03);
    assert.deepEqual(c.request, { fc: 6, address: 26, value: 12000 }, '50 % of 4–20 mA = 12 mA = 12000 µA');
    const [neg] = prepared({ current: -0.005 });
    assert.deepEqual(neg.request, { fc: 6, address: 11, value: 0xffff }, 'half away from zero: −0.5 → −1');
  });

  it('64-bit integers from a BigInt or a decimal string (JSON has no 64-bit integers)', () => {
    const [a] = prepared({ energy: 2n ** 64n - 1n });
    assert.deepEqual(a.request, { fc: 16, address: 14, values: [0xffff, 0xffff, 0xffff, 0xffff] });
    const [b] = prepared({ energy: '9007199254740993' });
    assert.equal(decodeRegisters(Buffer.from(Array.from((b.request as { values: ArrayLike<number> }).values).flatMap((r) => [r >> 8, r & 0xff])), 0, 'uint64'), 9007199254740993n);
  });

  it('rejects the whole command with every problem; nothing is prepared to send', () => {
    const problems = problemsOf({
      speedSetpoint: 61, count: 1.5, torque: Infinity, current: 400, label: 'ABCDEFGHI', tag: 'é€', run: 'yes', nope: 1, energy: -1,
    });
    const expected = [
      /speedSetpoint: 61 is above the maximum 60 Hz/,
      /count: uint16 needs an integer, got 1.5/,
      /torque: needs a finite number, got number Infinity/,
      /current: 400 is raw 40000: 40000 is out of range for int16/,
      /label: "ABCDEFGHI" does not fit 4 registers/,
      /tag: "é€" has characters outside Latin-1/,
      /run: needs true\/false \(or 1\/0\), got string yes/,
      /nope: "nope" is not a metric of this node/,
      /energy: -1 is out of range for uint64/,
    ];
    assert.equal(problems.length, expected.length, problems.join('\n'));
    expected.forEach((re, i) => assert.match(problems[i], re));
    assert.deepEqual(problemsOf({ speedSetpoint: -0.1 }), ['speedSetpoint: -0.1 is below the minimum 0 Hz']);
    assert.deepEqual(problemsOf({ count: '7' }), ['count: needs a finite number, got string 7']);
    assert.deepEqual(problemsOf({ count: null }), ['count: needs a finite number, got null']);
    assert.deepEqual(problemsOf({ valve: 101 }), ['valve: 101 is outside the 4–20 mA range 0..100']);
    assert.deepEqual(problemsOf({ energy: 1n, count: NaN }), ['count: needs a finite number, got number NaN']);
  });

  it('rejects commands that are not a metric object', () => {
    assert.match(problemsOf('go')[0], /a write command is an object .* got string go/);
    assert.match(problemsOf([1, 2])[0], /got an array/);
    assert.match(problemsOf(null)[0], /got null/);
    assert.deepEqual(problemsOf({}), ['the command names no metric']);
    assert.deepEqual(problemsOf({ other: 1 }, { unknownMetrics: 'ignore' }), ['none of the metrics of the command is defined in this node']);
    assert.deepEqual(prepared({ other: 1, count: 2 }, { unknownMetrics: 'ignore' }).map((w) => w.name), ['count']);
  });

  it('raw form { table, address, type, value } only when allowed, with the same checks', () => {
    const raw = { table: 'holding', address: 100, type: 'int32', value: -2 };
    assert.match(problemsOf(raw).join(), /raw writes are off/);
    const [w] = prepared(raw, { allowRaw: true });
    assert.equal(w.name, 'holding:100');
    assert.deepEqual(w.request, { fc: 16, address: 100, values: [0xffff, 0xfffe] });
    const two = prepared([{ table: 'coil', address: 9, value: true }, { table: 'holding', address: 5, value: 65535 }], { allowRaw: true });
    assert.deepEqual(two.map((x) => x.request), [{ fc: 5, address: 9, value: true }, { fc: 6, address: 5, value: 65535 }]);
    const bad = prepareCommand(buildWritePlan(DEFS, { allowRaw: true }), [
      { table: 'input', address: 1, value: 1 }, { table: 'holding', address: 2, value: 70000 },
    ]);
    assert.equal(bad.ok, false);
    assert.deepEqual(!bad.ok && bad.problems, [
      { name: 'input:1', problem: 'input registers are read-only; write a holding register or a coil' },
      { name: 'holding:2', problem: '70000 is out of range for uint16 (0..65535)' },
    ]);
  });
});

describe('modbus writer', () => {
  let model: MemoryDataModel;
  let server: ModbusTcpServer;
  let client: ModbusClient;
  const writers: ModbusWriter[] = [];
  const writer = (options: { readBefore?: boolean; queueLimit?: number; defs?: WriteMetricDefinition[] } = {}) => {
    const w = new ModbusWriter({ client, unitId: 1, plan: buildWritePlan(options.defs ?? DEFS), ...options });
    writers.push(w);
    return w;
  };

  beforeEach(async () => {
    model = new MemoryDataModel({ units: [1], size: 100 });
    server = await startModbusTcpServer({ port: 0, model });
    client = createModbusTcpClient({ host: '127.0.0.1', port: server.port, timeoutMs: 200, reconnectMinMs: 50 });
  });
  afterEach(async () => {
    writers.splice(0).forEach((w) => w.close());
    await client.close();
    await server.close();
  });

  it('writes a command and the device holds the values; one log entry per write with who sent it', async () => {
    const w = writer();
    const log: WriteLogEntry[] = [];
    w.on('written', (e) => log.push(e));
    const outcome = await w.write({ speedSetpoint: 45.5, current: -3.78, torque: 12.25, label: 'PUMP', run: true }, 'msg-1');
    assert.equal(outcome.ok, true, JSON.stringify(outcome));
    assert.deepEqual(Object.values(outcome.results).map((r) => r.status), ['ok', 'ok', 'ok', 'ok', 'ok']);
    assert.deepEqual(model.get(1, 'holding', 10, 2), [455, 0x10000 - 378]);
    assert.deepEqual(model.get(1, 'holding', 12, 2), encodeRegisters(12.25, 'float32'));
    assert.deepEqual(model.get(1, 'holding', 20, 2), [0x5055, 0x4d50]);
    assert.deepEqual(model.get(1, 'coil', 3, 1), [1]);
    assert.equal(log.length, 5);
    assert.deepEqual(log[0], {
      unitId: 1, name: 'speedSetpoint', table: 'holding', address: 10, fc: 6, old: undefined, written: 45.5, status: 'ok', error: undefined, who: 'msg-1',
    });
  });

  it('an invalid command puts nothing on the wire', async () => {
    const w = writer();
    await w.write({ count: 1 });
    const before = client.stats.requests;
    const outcome = await w.write({ count: 2, speedSetpoint: 99 });
    assert.equal(outcome.ok, false);
    assert.deepEqual(outcome.results.count, { status: 'not-sent', value: 2, error: 'another value of the command was invalid' });
    assert.equal(outcome.results.speedSetpoint.status, 'invalid');
    assert.equal(client.stats.requests, before, 'no request sent');
    assert.deepEqual(model.get(1, 'holding', 25, 1), [1], 'count unchanged: no half write');
  });

  it('stops at the first failed write: later metrics are not sent, earlier ones are reported written', async () => {
    const defs: WriteMetricDefinition[] = [
      { name: 'a', table: 'holding', address: 1, type: 'uint16' },
      { name: 'beyond', table: 'holding', address: 500, type: 'uint16' }, // the model has 100 registers → exception 2
      { name: 'c', table: 'holding', address: 2, type: 'uint16' },
    ];
    const outcome = await writer({ defs }).write({ a: 11, beyond: 1, c: 33 });
    assert.equal(outcome.ok, false);
    assert.equal(outcome.results.a.status, 'ok');
    assert.deepEqual(outcome.results.beyond, {
      status: 'exception', value: 1, written: 1, exceptionCode: 2, error: 'Modbus exception 2 (illegal data address)',
    });
    assert.equal(outcome.results.c.status, 'not-sent');
    assert.match(outcome.results.c.error ?? '', /the write of beyond failed before it \(exception 2\)/);
    assert.deepEqual(model.get(1, 'holding', 1, 2), [11, 0]);
  });

  it('reports a timeout per metric when the unit does not answer', async () => {
    model.setSilent(1, true);
    const outcome = await writer().write({ count: 5 });
    assert.equal(outcome.results.count.status, 'timeout');
    assert.match(outcome.results.count.error ?? '', /no response from unit 1 within 200 ms/);
  });

  it('readBefore: old values (engineering units) in the result and the log', async () => {
    model.set(1, 'holding', 10, [300]);
    model.set(1, 'coil', 3, [1]);
    const w = writer({ readBefore: true });
    const log: WriteLogEntry[] = [];
    w.on('written', (e) => log.push(e));
    const outcome = await w.write({ speedSetpoint: 35, run: false });
    assert.equal(outcome.results.speedSetpoint.old, 30);
    assert.equal(outcome.results.run.old, true);
    assert.deepEqual(log.map((e) => [e.old, e.written]), [[30, 35], [true, false]]);
    assert.deepEqual(model.get(1, 'holding', 10, 1), [350]);
  });

  it('runs commands one at a time in arrival order and bounds the queue (newest rejected)', async () => {
    const w = writer({ queueLimit: 3 });
    const order: number[] = [];
    w.on('written', (e) => order.push(e.written as number));
    const outcomes = await Promise.all([1, 2, 3, 4, 5].map((n) => w.write({ count: n })));
    assert.deepEqual(outcomes.map((o) => o.ok), [true, true, true, false, false]);
    assert.match(outcomes[3].results.count.error ?? '', /write queue full \(3 commands\); newest command rejected/);
    assert.deepEqual(order, [1, 2, 3]);
    assert.deepEqual(model.get(1, 'holding', 25, 1), [3]);
    assert.equal(w.stats.queueFull, 2);
  });
});
