/**
 * flows/legacy-rtu-4-20ma.json as a user imports it, on a real serial line: its uns-modbus-link (RTU)
 * on one end of a socat pty pair (UNS_EDGE_RTU_PORT), a pymodbus RTU server on the other end as the
 * bus (unit 1 the drive, unit 2 the analog input module with the transmitters' loop currents in µA),
 * its broker a real Mosquitto. The loop currents arrive in the UNS scaled 4..20 mA → euMin..euMax;
 * a NAMUR NE43 failure current (wire break, 2.0 mA) arrives as value null, quality bad, with the
 * NE43 reason; an under-range current (3.7 mA) as uncertain; the current restored, good again.
 */
import { strict as assert } from 'node:assert';
import modbusNodes = require('../../nodes/modbus/modbus');
import unsNodes = require('../../nodes/uns/uns');
import { Mosquitto } from '../helpers/mosquitto';
import { RtuBus } from '../helpers/rtu-bus';
import { coreNodes, readTemplate, TemplateRuntime, until, watchAsset, type UnsMetric } from '../helpers/template-runtime';

const AREA = 'acme/plant1/utilities/boiler1/feedwater';
const CORE_NODES = coreNodes('21-debug.js', '90-comment.js');

describe('flows/legacy-rtu-4-20ma.json on a pymodbus RTU bus (socat pty) and Mosquitto', function () {
  this.timeout(40_000);
  let runtime: TemplateRuntime;
  let bus: RtuBus;
  let broker: Mosquitto;
  let watcher: { metrics: Map<string, UnsMetric>; end(): Promise<void> };
  const template = readTemplate('legacy-rtu-4-20ma.json');
  /** Latest metric per `<asset>/<metric>` below the feed-water cell. */
  let uns: Map<string, UnsMetric>;
  const setLoopCurrents = (microamps: number[]) => bus.server.command({ cmd: 'set', unit: 2, table: 'input', address: 0, values: microamps });

  before(async () => {
    // The drive: 1480 rpm, 49.35 Hz, 12.5 A, no fault. The module: 12 mA (PT-101), 8 mA (TT-102), 20 mA (LT-103).
    bus = await RtuBus.start();
    broker = await Mosquitto.start();
    runtime = await TemplateRuntime.start('legacy-rtu');
    watcher = await watchAsset(broker.url, AREA);
    uns = watcher.metrics;
  });
  after(async () => {
    await runtime?.stop(() => watcher?.end(), () => broker?.dispose(), () => bus?.stop());
  });

  const untilInUns = (what: string, check: () => boolean) => until(what, check, 15_000, () => `UNS has ${JSON.stringify(Object.fromEntries(uns))}`);

  it('publishes the drive and the scaled transmitters; an NE43 failure current is bad with the reason, under-range uncertain, then good again', async () => {
    // Only the variables change, as on a gateway: the pty for the adapter, the test's broker.
    runtime.setEnvironment({ UNS_EDGE_RTU_PORT: bus.port, UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port) });
    await runtime.load([...CORE_NODES, unsNodes, modbusNodes], template);

    await untilInUns('the drive and the three transmitters', () => ['pump1/actualSpeed', 'pt101/pressure', 'tt102/temperature', 'lt103/level'].every((k) => uns.has(k)));
    assert.deepEqual(uns.get('pump1/actualSpeed'), { ...uns.get('pump1/actualSpeed'), value: 1480, unit: 'rpm', quality: 'good' });
    assert.equal(uns.get('pump1/outputFrequency')?.value, 49.35);
    assert.equal(uns.get('pump1/motorCurrent')?.value, 12.5);
    // 12 mA on 0..16 bar → 8 bar; 8 mA on 0..200 degC → 50 degC; 20 mA on 0..100 % → 100 %.
    assert.deepEqual([uns.get('pt101/pressure')?.value, uns.get('pt101/pressure')?.unit, uns.get('pt101/pressure')?.quality], [8, 'bar', 'good']);
    assert.deepEqual([uns.get('tt102/temperature')?.value, uns.get('tt102/temperature')?.unit, uns.get('tt102/temperature')?.quality], [50, 'degC', 'good']);
    assert.deepEqual([uns.get('lt103/level')?.value, uns.get('lt103/level')?.quality], [100, 'good']);

    // PT-101's wire breaks (2.0 mA), TT-102 drifts under range (3.7 mA).
    await setLoopCurrents([2_000, 3_700, 20_000]);
    await untilInUns('PT-101 bad', () => uns.get('pt101/pressure')?.quality === 'bad');
    const broken = uns.get('pt101/pressure') as UnsMetric & { reason?: string };
    assert.equal(broken.value, null, 'no plausible-looking value for a failed loop');
    assert.equal(broken.reason, 'NAMUR NE43 failure signal 2 mA (< 3.6 mA)');
    await untilInUns('TT-102 uncertain', () => uns.get('tt102/temperature')?.quality === 'uncertain');
    const drifting = uns.get('tt102/temperature') as UnsMetric & { reason?: string };
    assert.equal(drifting.value, -3.75); // (3.7 − 4) × 200 / 16
    assert.match(String(drifting.reason), /NAMUR NE43 signal 3\.7 mA outside the measurement range 3\.8\.\.20\.5 mA/);
    assert.equal(uns.get('lt103/level')?.quality, 'good', 'the other loops are unaffected');

    // The wire repaired: 4 mA is the range's lower value, good.
    await setLoopCurrents([4_000, 8_000, 20_000]);
    await untilInUns('PT-101 good again', () => uns.get('pt101/pressure')?.quality === 'good');
    assert.equal(uns.get('pt101/pressure')?.value, 0);
  });
});
