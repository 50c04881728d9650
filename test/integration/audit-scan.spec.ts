/**
 * The asset scan (lib/audit) against real peers: the simulated plant over Modbus TCP (FC 43/14
 * identity per drive), the simulated OPC UA server as `uns-edge simulate` starts it (SignAndEncrypt
 * only) and one that offers None and anonymous, the demo broker (aedes, anonymous), Mosquitto on
 * TLS with a certificate that expires in 10 days — and targets that answer garbage, never answer,
 * or reset the connection. The scan completes with each of them in the inventory; nothing throws.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applicationPki } from '../../lib/opcua/pki';
import { planScan, runScan, type ScanReport } from '../../lib/audit/scanner';
import { writeReportFiles } from '../../lib/audit/report-files';
import { TargetListError } from '../../lib/audit/targets';
import { startSimulatedPlant, type SimulatedPlantHandle } from '../../sim';
import { startSimulatedOpcUaServer, type SimulatedOpcUaServer } from '../../sim/opcua-server';
import { type AedesBroker, startAedes } from '../helpers/aedes';
import { Mosquitto } from '../helpers/mosquitto';

/** A TCP server that treats every connection as `behave` says. */
async function misbehaving(behave: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    behave(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('asset scan against the simulated plant, OPC UA servers and brokers', function () {
  this.timeout(120_000);
  let dir: string;
  let plant: SimulatedPlantHandle;
  let secure: SimulatedOpcUaServer;
  let open: SimulatedOpcUaServer;
  let aedes: AedesBroker;
  let mosquitto: Mosquitto;
  let report: ScanReport;
  const pki = () => applicationPki(join(dir, 'scanner-pki'));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-audit-'));
    const key = join(dir, 'broker.key');
    const cert = join(dir, 'broker.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '10', '-subj', '/CN=broker <i>"test"', '-keyout', key, '-out', cert], { stdio: 'pipe', env: { PATH: process.env.PATH } });
    plant = await startSimulatedPlant({ port: 0, drives: 4 });
    secure = await startSimulatedOpcUaServer({ plant: plant.plant, pkiDir: join(dir, 'secure-pki'), port: 0, users: [{ username: 'operator', password: 'op-secret-1', role: 'write' }] });
    open = await startSimulatedOpcUaServer({ plant: plant.plant, pkiDir: join(dir, 'open-pki'), port: 0, securityModes: ['None', 'SignAndEncrypt'], allowAnonymous: true });
    aedes = await startAedes();
    mosquitto = await Mosquitto.start({ tls: { caFile: cert, certFile: cert, keyFile: key, requireCertificate: false } });
  });
  after(async () => {
    await mosquitto?.stop();
    await aedes?.close();
    await open?.close();
    await secure?.close();
    await plant?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds every simulated drive with its FC 43 identity, both OPC UA servers\' endpoints and the brokers\' anonymous access', async () => {
    const plan = planScan({
      probesPerSecond: 100, timeoutMs: 1000,
      modbusAddresses: '127.0.0.1', modbusPort: plant.port, modbusUnits: '1-6',
      opcuaAddresses: `127.0.0.1:${secure.port}, 127.0.0.1:${open.port}`,
      mqttAddresses: `127.0.0.1:${aedes.port}`,
      flowBrokers: [{ host: '127.0.0.1', port: mosquitto.port, tls: true, source: 'uns-broker "site broker"' }],
    });
    report = await runScan(plan, { opcuaPki: pki });
    const [host] = report.inventory.modbus;
    assert.deepEqual(host.units.map((u) => u.unitId), [1, 2, 3, 4]);
    assert.deepEqual(host.absentUnits, [5, 6], 'units 5 and 6: 0A gateway path unavailable');
    for (const unit of host.units) {
      assert.equal(unit.identity?.vendorName, 'uns-edge');
      assert.equal(unit.identity?.productCode, 'uns-edge-simulated-drive');
      assert.equal(unit.identity?.userApplicationName, `drive ${unit.unitId}`);
      const answers = Object.fromEntries(unit.functionCodes.map((p) => [p.fc, p.answer]));
      assert.deepEqual(answers, { 43: 'answers', 1: 'illegal-function', 2: 'illegal-function', 3: 'answers', 4: 'answers', 17: 'illegal-function' });
    }

    const [secured, unsecured] = report.inventory.opcua;
    assert.ok(secured.reachable, secured.problem);
    assert.deepEqual([...new Set(secured.endpoints.map((e) => e.securityMode))], ['SignAndEncrypt']);
    assert.deepEqual(secured.endpoints.map((e) => e.securityPolicy).sort(), ['Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss', 'Basic256Sha256']);
    assert.ok(secured.endpoints.every((e) => !e.userTokenTypes.includes('Anonymous') && e.certificate?.validTo));
    assert.equal(secured.buildInfo?.source, 'application-description');
    assert.match(secured.buildInfoProblem ?? '', /does not log in/);
    assert.ok(secured.applications[0]?.applicationUri, 'FindServers answered');
    assert.ok(unsecured.endpoints.some((e) => e.securityMode === 'None'));
    assert.equal(unsecured.buildInfo?.source, 'server-object', unsecured.buildInfoProblem);
    assert.ok(unsecured.buildInfo?.softwareVersion, 'software version from Server_ServerStatus_BuildInfo');

    const [plain, tls] = report.inventory.mqtt;
    assert.equal(plain.anonymousAccepted, true);
    assert.equal(tls.tls, true);
    assert.equal(tls.anonymousAccepted, true);
    assert.ok(tls.certificate?.subject.includes('<i'), tls.certificate?.subject);

    const rules = (target: string) => report.findings.filter((f) => f.target === target).map((f) => `${f.rule} ${f.severity} ${f.sr.join('+')}`).sort();
    assert.deepEqual(rules(`127.0.0.1:${plant.port}`), [
      'modbus-device-identification low SR 7.7', 'modbus-plaintext medium SR 3.1+SR 4.1', 'modbus-unauthenticated critical SR 1.2+SR 2.1+SR 5.1',
    ]);
    assert.deepEqual(rules(`opc.tcp://127.0.0.1:${open.port}`), ['opcua-anonymous critical SR 1.1+SR 1.2', 'opcua-certificate-self-signed low SR 1.8', 'opcua-security-none high SR 3.1+SR 4.1']);
    assert.deepEqual(rules(`opc.tcp://127.0.0.1:${secure.port}`), ['opcua-certificate-self-signed low SR 1.8']);
    assert.deepEqual(rules(`mqtt://127.0.0.1:${aedes.port}`), ['mqtt-anonymous critical SR 1.1+SR 1.2+SR 2.1', 'mqtt-plaintext high SR 3.1+SR 4.1']);
    assert.deepEqual(rules(`mqtts://127.0.0.1:${mosquitto.port}`), ['mqtt-anonymous critical SR 1.1+SR 1.2+SR 2.1', 'mqtt-certificate-expiring medium SR 1.8', 'mqtt-certificate-self-signed low SR 1.8']);
    assert.equal(report.summary.modbusDevices, 4);
    assert.equal(report.summary.anonymousBrokers, 2);

    const files = writeReportFiles(report, join(dir, 'reports'));
    assert.deepEqual(JSON.parse(readFileSync(files.json, 'utf8')).summary, report.summary);
    const html = readFileSync(files.html, 'utf8');
    assert.ok(html.includes('&lt;i') && html.includes('&quot;test') && !/<i\b/.test(html), 'device strings escaped');
  });

  it('keeps going past targets that answer garbage, never answer or reset the connection', async () => {
    const garbage = await misbehaving((s) => s.on('data', () => s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'))));
    const silent = await misbehaving(() => undefined);
    const reset = await misbehaving((s) => s.on('data', () => s.resetAndDestroy()));
    try {
      const ports = [garbage.port, silent.port, reset.port];
      const started = performance.now();
      const result = await runScan(planScan({
        probesPerSecond: 100, timeoutMs: 300, modbusUnits: '1-2',
        modbusAddresses: ports.map((p) => `127.0.0.1:${p}`).join(' '),
        opcuaAddresses: ports.map((p) => `127.0.0.1:${p}`).join(' '),
        mqttAddresses: ports.map((p) => `127.0.0.1:${p}`).join(' '),
      }), { opcuaPki: pki });
      const [g, s, r] = result.inventory.modbus;
      assert.match(g.units[0]?.identityProblem ?? '', /not Modbus TCP \(MBAP protocol id/);
      assert.deepEqual(g.units[0]?.functionCodes, [{ fc: 43, answer: 'garbage' }], 'nothing more asked of it');
      assert.deepEqual(s.silentUnits, [1, 2]);
      assert.match(`${r.units[0]?.identityProblem}`, /reset|closed/);
      assert.ok(result.inventory.opcua.every((o) => !o.reachable && o.problem), JSON.stringify(result.inventory.opcua.map((o) => o.problem)));
      const [mg, ms, mr] = result.inventory.mqtt;
      assert.match(mg.problem ?? '', /not an MQTT 3\.1\.1 CONNACK/);
      assert.match(ms.problem ?? '', /no CONNACK within 300 ms/);
      assert.match(mr.problem ?? '', /reset|closed/);
      assert.equal(result.findings.length, 0, 'no finding from a target that is not what it was asked as');
      assert.ok(performance.now() - started < 60_000);
    } finally {
      await Promise.all([garbage.close(), silent.close(), reset.close()]);
    }
  });

  it('refuses a list that covers more than a /24 without the tick, and scans nothing', () => {
    assert.throws(() => planScan({ modbusAddresses: '10.0.0.0/23' }), (e: TargetListError) => /more than a \/24 .*tick/.test(e.message));
    assert.equal(planScan({ modbusAddresses: '10.0.0.0/23', allowLargeRanges: true }).modbus.length, 510);
  });
});
