/**
 * What a message may ask of a drive (lib/drive/requests.ts), strictly: a value is a finite JS
 * number or a plain decimal string — "0x3E8" is refused, not written as 1000 — and names such as
 * "__proto__" or "constructor" are unknown, not inherited. A refusal at parse time is audited
 * (requestSummary, DriveCommander.refuse), and an audit log line cannot be forged by a newline.
 */
import { strict as assert } from 'node:assert';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { AuditTrail, formatAuditRecord } from '../../lib/drive/audit';
import { DriveCommander } from '../../lib/drive/commander';
import { loadDriveProfile, packagedProfilesDir } from '../../lib/drive/profile';
import { DriveRequestError, numberFrom, parseDriveRequest, requestSummary } from '../../lib/drive/requests';

const sim = loadDriveProfile(join(packagedProfilesDir(), 'simulated-drive.json'));

function refusal(payload: unknown): string {
  try {
    parseDriveRequest(sim, payload);
  } catch (error) {
    assert.ok(error instanceof DriveRequestError, String(error));
    return error.message;
  }
  return assert.fail(`accepted ${String(payload)}`);
}

describe('drive request values: numbers, or plain decimal strings, nothing else', () => {
  it('accepts finite numbers and plain decimal strings', () => {
    for (const [value, expected] of [[1200, 1200], [-12.5, -12.5], [0, 0], ['1200', 1200], ['-12.5', -12.5], ['0', 0], ['0012', 12]] as const) {
      assert.equal(numberFrom(value, 'setpoint'), expected, String(value));
    }
    assert.deepEqual(parseDriveRequest(sim, { command: 'setpoint', value: '1250.5' }), { kind: 'commands', commands: [{ kind: 'setpoint', value: 1250.5 }], arm: false });
  });

  it('refuses "0x3E8" (Number() reads 1000) and every other string Number() would coerce', () => {
    const strings = ['0x3E8', '0X3e8', '1e3', '1E3', ' 12 ', '12 ', '\t12', '', ' ', 'Infinity', '-Infinity', 'NaN', '+5', '.5', '5.', '0b11', '0o7', '1_000', '1,5', '١٢'];
    for (const value of strings) {
      assert.throws(() => numberFrom(value, 'setpoint'), (e: Error) => e instanceof DriveRequestError
        && e.message === `setpoint needs a finite number or a plain decimal string such as "1200", got the string ${JSON.stringify(value)}`, value);
    }
    assert.match(refusal({ command: 'setpoint', value: '0x3E8' }), /setpoint needs a finite number or a plain decimal string such as "1200", got the string "0x3E8"/);
    assert.match(refusal({ speedSetpoint: '0x3E8' }), /speedSetpoint needs .* got the string "0x3E8"/);
    assert.match(refusal({ accelRate: '1e3' }), /accelRate needs .* got the string "1e3"/);
  });

  it('refuses what is not a number: NaN, Infinity, booleans, null, bigint, boxed numbers, arrays, objects (also from another realm)', () => {
    const other = runInNewContext('({ nan: NaN, boxed: new Number(5), list: [5], obj: { value: 5 } })') as Record<string, unknown>;
    const cases: Array<[unknown, string]> = [
      [NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity'], [true, 'boolean true'], [false, 'boolean false'], [null, 'null'], [undefined, 'undefined'],
      [10n, 'the bigint 10'], [Object(5), 'an object'], [[1200], 'an array'], [{ value: 1200 }, 'an object'],
      [other.nan, 'NaN'], [other.boxed, 'an object'], [other.list, 'an array'], [other.obj, 'an object'],
    ];
    for (const [value, described] of cases) {
      assert.throws(() => numberFrom(value, 'setpoint'), (e: Error) => e instanceof DriveRequestError && e.message.endsWith(`got ${described}`), described);
    }
  });

  it('names like __proto__ and constructor are unknown, not inherited from Object.prototype', () => {
    assert.match(refusal(JSON.parse('{"__proto__": 1500}')), /uns-edge-simulated-drive has no parameter "__proto__"/);
    assert.match(refusal(JSON.parse('{"speedSetpoint": 1300, "__proto__": {"armRequired": false}}')), /has no parameter "__proto__"/);
    assert.match(refusal({ constructor: 1 }), /has no parameter "constructor"/);
    for (const word of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      assert.match(refusal({ command: word }), new RegExp(`^unknown command "${word}"; use one of start, `));
      assert.match(refusal({ command: 'arm', action: word }), new RegExp(`^unknown command "${word}"`));
    }
  });

  it('quotes message text in errors, cut to 64 characters', () => {
    const long = 'x'.repeat(10_000);
    const message = refusal({ command: long });
    assert.ok(message.length < 300, message);
    assert.match(message, /^unknown command "x{64}"…; use one of/);
    assert.match(refusal({ command: 'jump\nforged' }), /^unknown command "jump\\nforged"/);
  });
});

describe('audit of requests refused before they are commands', () => {
  it('requestSummary says what was asked, quoted and cut', () => {
    assert.equal(requestSummary({ command: 'setpoint', value: '0x3E8' }), 'setpoint "0x3E8"');
    assert.equal(requestSummary({ command: 'setpoint', value: NaN }), 'setpoint NaN');
    assert.equal(requestSummary({ command: 'jump\nforged' }), '"jump\\nforged"');
    assert.equal(requestSummary('jump'), '"jump"');
    assert.equal(requestSummary(JSON.parse('{"__proto__": 1500}')), 'write "__proto__"');
    assert.equal(requestSummary({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7 }), 'write "a", "b", "c", "d", "e" and 2 more');
    assert.equal(requestSummary(42), 'msg.payload (number)');
    assert.equal(requestSummary(null), 'msg.payload (null)');
    assert.equal(requestSummary({ command: 5 }), 'command (number)');
  });

  it('DriveCommander.refuse records who, what and why as rejected; the log line stays one line', () => {
    const audit = new AuditTrail({ clock: () => 0 });
    const commander = new DriveCommander({ profile: sim, access: { read: async () => [0], write: async () => assert.fail('no write') }, drive: 'pump2', audit });
    const record = commander.refuse('setpoint "0x3E8"', 'mqtt:hmi-7 (user alice)', 'setpoint needs a finite number …');
    assert.deepEqual(
      [record.who, record.drive, record.command, record.outcome, record.reason],
      ['mqtt:hmi-7 (user alice)', 'pump2', 'setpoint "0x3E8"', 'rejected', 'setpoint needs a finite number …'],
    );
    const forged = commander.refuse('"x"', 'eve\naudit pump2: admin startForward: written', 'r');
    assert.equal(formatAuditRecord(forged), 'audit pump2: eve\\u000aaudit pump2: admin startForward: written "x": rejected: r');
  });
});
