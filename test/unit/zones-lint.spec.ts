/**
 * The zone lint (lib/zones/lint.ts) on flows as Node-RED stores them: crossings found through
 * function/change/junction/link/subflow hops and named with both nodes, zones and the path; a
 * conduit between silences them; disabled nodes and tabs carry nothing; zero-trust gaps by SL-T;
 * bad input refused with a message that says what is wrong. Flow files: test/fixtures/zones-lint/.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { failsCheck, formatFinding, FlowsFileError, lintZones, type ZoneFinding } from '../../lib/zones/lint';

type Entry = { id: string; type: string; [key: string]: unknown };

const FIXTURES = join(__dirname, '..', 'fixtures', 'zones-lint');
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

const SECURE_BROKER = { usetls: true, tlsCert: '/etc/uns/client.crt', tlsKey: '/etc/uns/client.key', tlsRejectUnauthorized: true };
let position = 0;

function tab(id = 't1', extra: Record<string, unknown> = {}): Entry {
  return { id, type: 'tab', label: id, disabled: false, ...extra };
}
function zone(id: string, name: string, level: string, slt = '1,1,1,1,1,1,1'): Entry {
  return { id, type: 'uns-zone', name, level, slt, colour: '#123456' };
}
function node(id: string, type: string, wires: string[][], extra: Record<string, unknown> = {}, z = 't1'): Entry {
  position += 40;
  return { id, type, z, name: id, x: position, y: 100, wires, ...extra };
}

/** Two zones (enterprise SL-T 1, OT cell SL-T 1), an IT broker and an OT Modbus link. */
function base(): Entry[] {
  return [
    tab(),
    zone('z-it', 'enterprise', '4'),
    zone('z-ot', 'cell', '1'),
    { id: 'b-it', type: 'uns-broker', host: 'mes.example', port: 1883, zone: 'z-it' },
    { id: 'l-ot', type: 'uns-modbus-link', host: '10.0.0.5', zone: 'z-ot' },
  ];
}

function codes(findings: ZoneFinding[]): string[] {
  return findings.map((finding) => finding.code);
}

describe('zone lint (lib/zones/lint.ts)', () => {
  describe('crossings', () => {
    it('finds an IT uns-in wired straight into a uns-vfd, naming both nodes, both zones and the path', () => {
      const flows = [...base(), node('setpoint', 'uns-in', [['vfd']], { broker: 'b-it' }), node('vfd', 'uns-vfd', [[]], { link: 'l-ot' })];
      const { findings } = lintZones(flows);
      assert.deepEqual(codes(findings), ['zone-crossing']);
      const [crossing] = findings;
      assert.equal(crossing!.severity, 'error');
      assert.deepEqual(crossing!.nodes, ['setpoint', 'vfd']);
      assert.deepEqual(crossing!.zones, ['z-it', 'z-ot']);
      assert.deepEqual(crossing!.path, ['setpoint', 'vfd']);
      assert.match(crossing!.message, /"setpoint" \(uns-in setpoint\) on tab "t1" in zone "enterprise" \(L4\) reaches "vfd" \(uns-vfd vfd\) on tab "t1" in zone "cell" \(L1\) without a conduit/);
    });

    it('follows function, change, switch and junction hops, and OT telemetry to an IT uns-out', () => {
      const flows = [
        ...base(),
        node('read', 'uns-modbus-read', [['fn']], { link: 'l-ot' }),
        node('fn', 'function', [['j'], ['debug']]),
        { id: 'j', type: 'junction', z: 't1', x: 10, y: 10, wires: [['sw']] },
        node('sw', 'switch', [['chg']]),
        node('chg', 'change', [['out']]),
        node('out', 'uns-out', [], { broker: 'b-it' }),
        node('debug', 'debug', []),
      ];
      const { findings, nodeZones } = lintZones(flows);
      assert.deepEqual(codes(findings), ['zone-crossing']);
      assert.deepEqual(findings[0]!.path, ['read', 'fn', 'j', 'sw', 'chg', 'out']);
      assert.match(findings[0]!.message, /\(read → fn → junction → sw → chg → out\)/);
      assert.deepEqual(nodeZones.fn, ['z-ot']);
      assert.deepEqual(nodeZones.debug, ['z-ot']);
      assert.deepEqual(nodeZones.out, ['z-it']);
    });

    it('is silent when a conduit between the zones sits on the path', () => {
      const flows = [
        ...base(),
        node('setpoint', 'uns-in', [['fn']], { broker: 'b-it' }),
        node('fn', 'function', [['conduit']]),
        node('conduit', 'uns-conduit', [['vfd'], ['alerts']], { sourceZone: 'z-it', destinationZone: 'z-ot' }),
        node('vfd', 'uns-vfd', [[]], { link: 'l-ot' }),
        node('alerts', 'uns-out', [], { broker: 'b-it' }),
      ];
      assert.deepEqual(lintZones(flows).findings, []);
    });

    it('flags a conduit wired against its zones, on both sides', () => {
      const flows = [
        ...base(),
        node('setpoint', 'uns-in', [['conduit']], { broker: 'b-it' }),
        node('conduit', 'uns-conduit', [['vfd2']], { sourceZone: 'z-ot', destinationZone: 'z-it' }),
        node('vfd2', 'uns-vfd', [[]], { link: 'l-ot' }),
      ];
      const { findings } = lintZones(flows);
      assert.deepEqual(codes(findings), ['conduit-zone-mismatch', 'conduit-zone-mismatch']);
      assert.match(findings[0]!.message, /takes messages from zone "cell" \(L1\), but "setpoint" .* feeds it from zone "enterprise"/);
      assert.match(findings[1]!.message, /passes into zone "enterprise" \(L4\), but feeds "vfd2" .* in zone "cell"/);
    });

    it('finds nothing between nodes of the same zone', () => {
      const flows = [...base(), node('read', 'uns-modbus-read', [['vfd']], { link: 'l-ot' }), node('vfd', 'uns-vfd', [[]], { link: 'l-ot' })];
      assert.deepEqual(lintZones(flows).findings, []);
    });

    it('follows link out → link in across tabs', () => {
      const flows = [
        ...base(), tab('t2'),
        node('setpoint', 'uns-in', [['lo']], { broker: 'b-it' }),
        node('lo', 'link out', [], { mode: 'link', links: ['li'] }),
        node('li', 'link in', [['vfd']], { links: ['lo'] }, 't2'),
        node('vfd', 'uns-vfd', [[]], { link: 'l-ot' }, 't2'),
      ];
      const { findings } = lintZones(flows);
      assert.deepEqual(codes(findings), ['zone-crossing']);
      assert.deepEqual(findings[0]!.path, ['setpoint', 'lo', 'li', 'vfd']);
    });

    it('returns from a link call to its caller only', () => {
      const flows = [
        ...base(),
        node('setpoint', 'uns-in', [['call-it']], { broker: 'b-it' }),
        node('call-it', 'link call', [['out-it']], { links: ['li'], linkType: 'static' }),
        node('out-it', 'uns-out', [], { broker: 'b-it' }),
        node('read', 'uns-modbus-read', [['call-ot']], { link: 'l-ot' }),
        node('call-ot', 'link call', [['vfd']], { links: ['li'], linkType: 'static' }),
        node('vfd', 'uns-vfd', [[]], { link: 'l-ot' }),
        node('li', 'link in', [['scale']]),
        node('scale', 'function', [['ret']]),
        node('ret', 'link out', [], { mode: 'return' }),
      ];
      // Each caller gets its own messages back: IT → IT and OT → OT, no crossing.
      assert.deepEqual(lintZones(flows).findings, []);
      const crossed = flows.map((entry) => (entry.id === 'call-it' ? { ...entry, wires: [['vfd']] } : entry));
      const { findings } = lintZones(crossed);
      assert.deepEqual(codes(findings), ['zone-crossing']);
      assert.deepEqual(findings[0]!.path, ['setpoint', 'call-it', 'li', 'scale', 'ret', 'vfd']);
    });

    it('follows a subflow instance through its subflow (fixture subflow-crossing.json)', () => {
      const { findings } = lintZones(fixture('subflow-crossing.json'));
      assert.deepEqual(codes(findings), ['zone-crossing']);
      assert.deepEqual(findings[0]!.path, ['it-in', 'instance-1', 'sf-fn', 'vfd']);
    });

    it('leaves a subflow that holds a source through every instance', () => {
      const flows = [
        ...base(),
        { id: 'sf', type: 'subflow', name: 'reader', in: [], out: [{ x: 0, y: 0, wires: [{ id: 'sf-read', port: 0 }] }] },
        node('sf-read', 'uns-modbus-read', [[]], { link: 'l-ot' }, 'sf'),
        node('i1', 'subflow:sf', [['out']]),
        node('out', 'uns-out', [], { broker: 'b-it' }),
      ];
      const { findings } = lintZones(flows);
      assert.deepEqual(codes(findings), ['zone-crossing']);
      assert.deepEqual(findings[0]!.path, ['sf-read', 'out']);
    });

    it('lets nothing through a disabled node or a disabled tab', () => {
      const crossing = (extra: Record<string, unknown>, tabExtra: Record<string, unknown> = {}) => [
        ...base().map((entry) => (entry.type === 'tab' ? { ...entry, ...tabExtra } : entry)),
        node('setpoint', 'uns-in', [['fn']], { broker: 'b-it' }),
        node('fn', 'function', [['vfd']], extra),
        node('vfd', 'uns-vfd', [[]], { link: 'l-ot' }),
      ];
      assert.deepEqual(codes(lintZones(crossing({})).findings), ['zone-crossing']);
      assert.deepEqual(lintZones(crossing({ d: true })).findings, []);
      assert.deepEqual(lintZones(crossing({}, { disabled: true })).findings, []);
    });

    it('takes the zone of a node that owns its connection (uns-sparkplug-host)', () => {
      const flows = [...base(), node('host', 'uns-sparkplug-host', [['vfd'], []], { zone: 'z-it', host: 'x' }), node('vfd', 'uns-vfd', [[]], { link: 'l-ot' })];
      assert.deepEqual(codes(lintZones(flows).findings), ['zone-crossing']);
    });

    it('reads the flows file fixture crossing.json (as saved by Node-RED) and an export wrapped in { flows, rev }', () => {
      const flows = fixture('crossing.json') as Entry[];
      assert.deepEqual(codes(lintZones(flows).findings), ['zone-crossing']);
      assert.deepEqual(codes(lintZones({ flows, rev: 'abc' }).findings), ['zone-crossing']);
    });

    it('reads flows built in another JS realm (a function node or a vm)', () => {
      const flows = runInNewContext(`(${JSON.stringify([...base(), node('a', 'uns-in', [['b']], { broker: 'b-it' }), node('b', 'uns-vfd', [[]], { link: 'l-ot' })])})`);
      assert.deepEqual(codes(lintZones(flows).findings), ['zone-crossing']);
    });
  });

  describe('zones of connections', () => {
    it('flags a zone reference to a missing zone, a connection without zone, a node talking to two zones', () => {
      const flows = [
        ...base(),
        { id: 'b-none', type: 'uns-broker', host: 'x', zone: '' },
        { id: 'b-lost', type: 'uns-broker', host: 'x', zone: 'z-gone' },
        node('a', 'uns-in', [[]], { broker: 'b-none' }),
        node('b', 'uns-in', [[]], { broker: 'b-lost' }),
        node('c', 'uns-fast-poll', [[]], { link: 'l-ot', broker: 'b-it' }),
      ];
      const { findings } = lintZones(flows);
      assert.deepEqual(codes(findings).sort(), ['several-zones', 'unknown-zone', 'unzoned-connection']);
      const unzoned = findings.find((finding) => finding.code === 'unzoned-connection')!;
      assert.equal(unzoned.severity, 'warning');
      assert.deepEqual(unzoned.nodes, ['b-none', 'a']);
    });

    it('does not ask for zones in flows that use none', () => {
      const flows = [tab(), { id: 'b', type: 'uns-broker', host: 'x' }, node('a', 'uns-in', [['o']], { broker: 'b' }), node('o', 'uns-out', [], { broker: 'b' })];
      assert.deepEqual(lintZones(flows).findings, []);
    });

    it('binds a group to a zone by its UNS_EDGE_ZONE variable and flags a node of another zone in it', () => {
      const flows = [
        ...base(),
        { id: 'g1', type: 'group', z: 't1', name: 'Cell 1', env: [{ name: 'UNS_EDGE_ZONE', type: 'str', value: 'cell' }], nodes: ['vfd', 'setpoint'] },
        { id: 'g2', type: 'group', z: 't1', name: 'Lost', env: [{ name: 'UNS_EDGE_ZONE', type: 'str', value: 'nowhere' }], nodes: [] },
        node('vfd', 'uns-vfd', [[]], { link: 'l-ot', g: 'g1' }),
        node('setpoint', 'uns-in', [[]], { broker: 'b-it', g: 'g1' }),
      ];
      const { findings, groupZones } = lintZones(flows);
      assert.deepEqual(groupZones, { g1: 'z-ot' });
      assert.deepEqual(codes(findings).sort(), ['group-unknown-zone', 'group-zone-mismatch']);
      assert.deepEqual(findings.find((f) => f.code === 'group-zone-mismatch')!.nodes, ['setpoint', 'g1']);
    });
  });

  describe('uns-pubsub-connection and uns-opcua-server take a zone (audit of issue 10 item 1)', () => {
    const pubsubConnection = (extra: Record<string, unknown> = {}) => ({ id: 'ps', type: 'uns-pubsub-connection', publisherId: 'gw', host: 'mes.example', port: 1883, ...extra });

    it('a pubsub out in the OT cell fed from an IT uns-in is a crossing, its zone taken from its connection', () => {
      const flows = [...base(), pubsubConnection({ zone: 'z-ot' }), node('setpoint', 'uns-in', [['pub']], { broker: 'b-it' }), node('pub', 'uns-pubsub-out', [], { connection: 'ps' })];
      const { findings, nodeZones } = lintZones(flows);
      assert.deepEqual(codes(findings), ['zone-crossing']);
      assert.deepEqual(findings[0]!.nodes, ['setpoint', 'pub']);
      assert.deepEqual(findings[0]!.zones, ['z-it', 'z-ot']);
      assert.deepEqual(nodeZones.pub, ['z-ot']);
    });

    it('a write from the OPC UA server (its own zone) straight into a uns-vfd of the OT cell is a crossing; a conduit between silences it', () => {
      const server = (wires: string[][]) => node('ua', 'uns-opcua-server', wires, { listenPort: 4840, allowNone: false, zone: 'z-it' });
      const crossing = lintZones([...base(), server([['vfd']]), node('vfd', 'uns-vfd', [[]], { link: 'l-ot' })]).findings;
      assert.deepEqual(codes(crossing), ['zone-crossing']);
      assert.deepEqual(crossing[0]!.nodes, ['ua', 'vfd']);
      assert.deepEqual(crossing[0]!.zones, ['z-it', 'z-ot']);
      const guarded = [...base(), server([['conduit']]), node('conduit', 'uns-conduit', [['vfd'], []], { sourceZone: 'z-it', destinationZone: 'z-ot' }), node('vfd', 'uns-vfd', [[]], { link: 'l-ot' })];
      assert.deepEqual(lintZones(guarded).findings, []);
    });

    it('a pubsub connection or an OPC UA server without a zone (a flow saved before they had one) is flagged in flows that use zones', () => {
      const flows = [...base(), pubsubConnection(), node('pub', 'uns-pubsub-out', [], { connection: 'ps' }), node('ua', 'uns-opcua-server', [[]], { listenPort: 4840 })];
      const unzoned = lintZones(flows).findings.filter((finding) => finding.code === 'unzoned-connection');
      assert.deepEqual(unzoned.map((finding) => finding.nodes), [['ps', 'pub'], ['ua']]);
    });

    it('zero-trust gaps: a pubsub connection without TLS or user in an SL-T 2 zone; an OPC UA server that also offers None', () => {
      const flows = (connection: Record<string, unknown>, allowNone: boolean, slt: string) => [
        tab(), zone('z-dmz', 'dmz', '3.5', slt),
        pubsubConnection({ zone: 'z-dmz', ...connection }), node('pub', 'uns-pubsub-out', [], { connection: 'ps' }),
        node('ua', 'uns-opcua-server', [[]], { listenPort: 4840, allowNone, zone: 'z-dmz' }),
      ];
      const strict = lintZones(flows({ usetls: false }, true, '2,2,2,2,2,2,2'), { credentials: {} }).findings;
      assert.deepEqual(codes(strict), ['no-tls', 'no-authentication', 'opcua-security-none']);
      assert.deepEqual(strict.map((finding) => finding.severity), ['error', 'error', 'error']);
      assert.match(strict[2]!.message, /\(uns-opcua-server ua\) on tab "t1" also offers OPC UA security mode None .*zone "dmz" has SL-T\(SI\) 2/);
      const relaxed = lintZones(flows({ usetls: false }, true, '1,1,1,1,1,1,1'), { credentials: {} }).findings;
      assert.deepEqual(codes(relaxed), ['opcua-security-none']);
      assert.equal(relaxed[0]!.severity, 'warning');
      assert.deepEqual(lintZones(flows(SECURE_BROKER, false, '2,2,2,2,2,2,2'), { credentials: {} }).findings, []);
    });
  });

  describe('zero-trust gaps', () => {
    const strictZones = (brokerProps: Record<string, unknown>, slt = '2,2,2,2,2,2,2') => [
      tab(), zone('z-dmz', 'dmz', '3.5', slt),
      { id: 'b', type: 'uns-broker', host: 'broker.dmz', zone: 'z-dmz', ...brokerProps },
      node('o', 'uns-out', [], { broker: 'b' }),
    ];

    it('an MQTT broker in an SL-T 2 zone without TLS or a user', () => {
      const { findings } = lintZones(strictZones({ usetls: false }), { credentials: {} });
      assert.deepEqual(codes(findings), ['no-tls', 'no-authentication']);
      assert.match(findings[0]!.message, /\(uns-broker b\) connects without TLS, but zone "dmz" has SL-T\(SI\) 2, SL-T\(DC\) 2/);
      assert.deepEqual(findings[0]!.nodes, ['b', 'o']);
    });

    it('a user in the credentials, or a client certificate, authenticates; unknown credentials are a warning', () => {
      assert.deepEqual(codes(lintZones(strictZones({ usetls: true }), { credentials: { b: { user: 'gw-1' } } }).findings), []);
      assert.deepEqual(codes(lintZones(strictZones(SECURE_BROKER), { credentials: {} }).findings), []);
      const unknown = lintZones(strictZones({ usetls: true })).findings;
      assert.deepEqual(codes(unknown), ['authentication-unknown']);
      assert.equal(unknown[0]!.severity, 'warning');
    });

    it('TLS that does not verify the broker counts as a gap', () => {
      assert.deepEqual(codes(lintZones(strictZones({ ...SECURE_BROKER, tlsRejectUnauthorized: false })).findings), ['tls-unverified']);
    });

    it('picks the FR: IAC for authentication, SI/DC for the channel; SL-T 1 asks for neither', () => {
      assert.deepEqual(codes(lintZones(strictZones({}, '2,1,1,1,1,1,1'), { credentials: {} }).findings), ['no-authentication']);
      assert.deepEqual(codes(lintZones(strictZones({}, '1,1,1,2,1,1,1'), { credentials: {} }).findings), ['no-tls']);
      assert.deepEqual(codes(lintZones(strictZones({}, '1,1,2,1,1,1,1'), { credentials: {} }).findings), ['no-tls']);
      assert.deepEqual(codes(lintZones(strictZones({}, '1,4,1,1,4,4,4'), { credentials: {} }).findings), []);
    });

    it('OPC UA security mode None and the anonymous user', () => {
      const flows = (slt: string, endpoint: Record<string, unknown>) => [
        tab(), zone('z', 'cell', '1', slt),
        { id: 'ep', type: 'uns-opcua-endpoint', endpointUrl: 'opc.tcp://plc:4840', zone: 'z', ...endpoint },
        node('sub', 'uns-opcua-subscribe', [[]], { endpoint: 'ep' }),
      ];
      const strict = lintZones(flows('2,2,2,2,2,2,2', { securityMode: 'None', userIdentity: 'anonymous' })).findings;
      assert.deepEqual(codes(strict), ['opcua-security-none', 'no-authentication']);
      assert.equal(strict[0]!.severity, 'error');
      const relaxed = lintZones(flows('1,1,1,1,1,1,1', { securityMode: 'None' })).findings;
      assert.deepEqual(codes(relaxed), ['opcua-security-none']);
      assert.equal(relaxed[0]!.severity, 'warning');
      assert.deepEqual(lintZones(flows('2,2,2,2,2,2,2', { securityMode: 'SignAndEncrypt', userIdentity: 'username' })).findings, []);
    });

    it('does not flag a Modbus link (the protocol has no security to ask for)', () => {
      const flows = [tab(), zone('z', 'cell', '1', '3,3,3,3,3,3,3'), { id: 'l', type: 'uns-modbus-link', zone: 'z' }, node('r', 'uns-modbus-read', [[]], { link: 'l' })];
      assert.deepEqual(lintZones(flows).findings, []);
    });

    it('an editor without adminAuth, when the settings are known', () => {
      const flows = strictZones(SECURE_BROKER, '2,1,1,1,1,1,1');
      const options = { credentials: {} };
      const open = lintZones(flows, { ...options, settings: {} }).findings;
      assert.deepEqual(codes(open), ['editor-without-admin-auth']);
      assert.equal(open[0]!.severity, 'error');
      assert.equal(lintZones(flows, { ...options, settings: { uiHost: '127.0.0.1' } }).findings[0]!.severity, 'warning');
      assert.deepEqual(lintZones(flows, { ...options, settings: { adminAuth: { type: 'credentials', users: [] } } }).findings, []);
      assert.deepEqual(lintZones(flows, { ...options, settings: { httpAdminRoot: false } }).findings, []);
      assert.deepEqual(lintZones(strictZones(SECURE_BROKER, '1,1,1,1,1,1,1'), { ...options, settings: {} }).findings, []);
    });
  });

  describe('bad input', () => {
    const refused = (input: unknown, message: RegExp) => assert.throws(() => lintZones(input), (error: Error) => error instanceof FlowsFileError && message.test(error.message));

    it('says what is wrong with a file that is not a flows file', () => {
      refused({ name: 'package' }, /not a Node-RED flows file: expected a JSON array of nodes, got an object/);
      refused(42, /got a number/);
      refused([1, 2, 3], /entry 0 is a number, not a node/);
      refused([{ type: 'tab' }], /entry 0 has no string id/);
      refused([{ id: 'a' }], /entry 0 \(a\) has no string type/);
      refused([{ id: 'a', type: 'tab' }, { id: 'a', type: 'inject' }], /the id a is used twice \(entry 1\)/);
    });

    it('ignores malformed wires instead of guessing', () => {
      const flows = [...base(), node('a', 'uns-in', 'vfd' as unknown as string[][], { broker: 'b-it' }), node('vfd', 'uns-vfd', [[null as unknown as string]], { link: 'l-ot' })];
      assert.deepEqual(lintZones(flows).findings, []);
    });
  });

  it('fails a check on errors, and on warnings in strict mode; one line per finding', () => {
    const warning: ZoneFinding = { code: 'unzoned-connection', severity: 'warning', message: 'm', nodes: [], zones: [] };
    assert.equal(failsCheck([], true), false);
    assert.equal(failsCheck([warning], false), false);
    assert.equal(failsCheck([warning], true), true);
    assert.equal(failsCheck([{ ...warning, severity: 'error' }], false), true);
    assert.equal(formatFinding(warning), 'warning unzoned-connection: m');
  });
});
