/**
 * The simulated plant over OPC UA (sim/opcua-server.ts) with a node-opcua client of its own PKI,
 * beside the same plant on Modbus TCP read by Debian's pymodbus (an independent implementation):
 * the trust exchange, SignAndEncrypt with two policies, values that agree with the Modbus side,
 * EU/EURange, setpoint writes in and out of range, roles, ResetFault, and the recovery-test helpers.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, ClientSession, DataType, makeBrowsePath, MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy,
  Range, StatusCodes, UserTokenType, type DataValue, type EUInformation, type UAVariable,
} from 'node-opcua';
import { startModbusTcpServer, type ModbusTcpServer } from '../../lib/modbus/server';
import { euInformationOf } from '../../lib/opcua/server-units';
import { SimulatedPlant, simulatedDriveProfile } from '../../sim/index';
import { browseNameOf, startSimulatedOpcUaServer, type SimulatedOpcUaServer } from '../../sim/opcua-server';
import { decodeValue } from '../../sim/register-codec';
import { registerCount } from '../../sim/profile';
import { startPymodbusClient, type PymodbusClient } from '../helpers/pymodbus';
import { until } from '../helpers/wait';

const OPERATOR = { username: 'operator', password: 'op-secret-1', role: 'write' } as const;
const VIEWER = { username: 'viewer', password: 'view-secret-2', role: 'read' } as const;
/** The application URI must match the one in the client certificate the first client creates. */
const CLIENT_IDENTITY = { applicationName: 'uns-edge sim-opcua test', applicationUri: 'urn:uns-edge:test:sim-opcua-client' };

/** UNECE Recommendation 20 code → EUInformation.unitId (OPC 10000-8 §5.6.3: the code's characters, base 256). */
function uneceUnitId(code: string): number {
  return [...code].reduce((id, c) => (id << 8) | c.charCodeAt(0), 0);
}

describe('sim plant over OPC UA (node-opcua client, pymodbus on the Modbus side)', function () {
  this.timeout(60_000);
  let dir: string;
  /** Our own plant and clock behind the Modbus server (not startSimulatedPlant), so a test can freeze the physics. */
  let plant: SimulatedPlant;
  let modbusServer: ModbusTcpServer;
  let sim: SimulatedOpcUaServer;
  let clientPki: OPCUACertificateManager;
  let modbus: PymodbusClient;
  const open: { client: OPCUAClient; session?: ClientSession }[] = [];

  async function connect(policy: SecurityPolicy, user: { username: string; password: string } = OPERATOR,
    mode: MessageSecurityMode = MessageSecurityMode.SignAndEncrypt): Promise<ClientSession> {
    const client = OPCUAClient.create({
      ...CLIENT_IDENTITY, securityMode: mode, securityPolicy: policy, clientCertificateManager: clientPki,
      endpointMustExist: false, connectionStrategy: { maxRetry: 0 },
    });
    const entry: { client: OPCUAClient; session?: ClientSession } = { client };
    open.push(entry);
    await client.connect(sim.endpointUrl);
    entry.session = await client.createSession({ type: UserTokenType.UserName, userName: user.username, password: user.password });
    return entry.session;
  }
  /** maxAge 0: the server reads the source now, not a value it sampled earlier (OPC 10000-4 §5.10.2). */
  async function read(session: ClientSession, nodeId: string, attributeId = AttributeIds.Value): Promise<DataValue> {
    return session.read({ nodeId, attributeId }, 0);
  }
  async function writeSetpoint(session: ClientSession, rpm: number) {
    return session.write({ nodeId: sim.nodeId(1, 'SpeedSetpoint'), attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Int16, value: rpm } } });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uns-sim-opcua-'));
    plant = new SimulatedPlant({ drives: 2, seed: 3 });
    plant.start();
    modbusServer = await startModbusTcpServer({ port: 0, model: plant });
    sim = await startSimulatedOpcUaServer({ plant, pkiDir: join(dir, 'server-pki'), port: 0, users: [OPERATOR, VIEWER] });
    clientPki = new OPCUACertificateManager({ rootFolder: join(dir, 'client-pki'), automaticallyAcceptUnknownCertificate: false });
    await clientPki.initialize();
    modbus = await startPymodbusClient(modbusServer.host, modbusServer.port);
  });
  afterEach(async () => {
    for (const { client, session } of open.splice(0)) {
      await session?.close().catch(() => undefined);
      await client.disconnect();
    }
  });
  after(async () => {
    await modbus?.close();
    await sim?.close();
    plant?.stop();
    await modbusServer?.close();
    await clientPki?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a client it does not trust (BadSecurityChecksFailed, certificate in rejected/), then serves it SignAndEncrypt once trusted', async () => {
    await clientPki.trustCertificate(sim.certificate());
    await assert.rejects(connect(SecurityPolicy.Basic256Sha256), /BadSecurityChecksFailed/);
    // node-opcua-pki writes the refused certificate after the refusal: it is listed once it is whole.
    await until('the refused certificate in rejected/', () => sim.rejectedClientCertificates().length === 1, 10_000);
    const [refused] = sim.rejectedClientCertificates();
    const partial = join(sim.pkiDir, 'rejected', 'being-written.pem');
    writeFileSync(partial, readFileSync(refused).subarray(0, 100)); // a certificate file cut off mid-write
    assert.deepEqual(sim.rejectedClientCertificates(), [refused], 'a file still being written is not a refused certificate yet');
    assert.equal(await sim.trustRejectedClientCertificates(), 1);
    assert.deepEqual(sim.rejectedClientCertificates(), []);
    rmSync(partial);
    const session = await connect(SecurityPolicy.Basic256Sha256);
    assert.equal((await read(session, sim.nodeId(1, 'FaultCode'))).statusCode, StatusCodes.Good);
    const aes = await connect(SecurityPolicy.Aes256_Sha256_RsaPss);
    assert.equal((await read(aes, sim.nodeId(2, 'FaultCode'))).statusCode, StatusCodes.Good);
  });

  it('offers SignAndEncrypt with the three policies, username or X.509 user login, no anonymous; a None session is refused', async () => {
    const client = OPCUAClient.create({ ...CLIENT_IDENTITY, endpointMustExist: false, connectionStrategy: { maxRetry: 0 }, clientCertificateManager: clientPki });
    open.push({ client });
    await client.connect(sim.endpointUrl);
    const endpoints = await client.getEndpoints();
    assert.deepEqual([...new Set(endpoints.map((e) => MessageSecurityMode[e.securityMode]))], ['SignAndEncrypt']);
    assert.deepEqual(endpoints.map((e) => e.securityPolicyUri!.split('#')[1]).sort(), ['Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss', 'Basic256Sha256']);
    for (const e of endpoints) assert.deepEqual(e.userIdentityTokens!.map((t) => UserTokenType[t.tokenType]).sort(), ['Certificate', 'UserName']);
    await assert.rejects(connect(SecurityPolicy.None, OPERATOR, MessageSecurityMode.None));
  });

  it('serves the values the Modbus side serves, for every parameter of both drives', async () => {
    const session = await connect(SecurityPolicy.Aes128_Sha256_RsaOaep);
    plant.stop(); // freeze the physics so both sides read the same instant
    try {
      for (const unit of [1, 2]) {
        for (const table of ['holding', 'input'] as const) {
          const specs = simulatedDriveProfile.parameters.filter((p) => p.table === table);
          const count = Math.max(...specs.map((p) => p.address + registerCount(p.type)));
          const answer = await modbus.request({ op: table === 'holding' ? 'read_holding_registers' : 'read_input_registers', address: 0, count, slave: unit });
          assert.ok(answer.ok && answer.registers, JSON.stringify(answer));
          for (const spec of specs) {
            const fromModbus = decodeValue(spec, answer.registers.slice(spec.address, spec.address + registerCount(spec.type)));
            const fromOpcUa = await read(session, sim.nodeId(unit, browseNameOf(spec.name)));
            assert.equal(fromOpcUa.statusCode, StatusCodes.Good, spec.name);
            assert.equal(fromOpcUa.value.value, fromModbus, `unit ${unit} ${spec.name}`);
          }
        }
        assert.equal((await read(session, sim.nodeId(unit, 'Status', 'Running'))).value.value, plant.drives[unit - 1].status().running);
      }
      const speed = await read(session, sim.nodeId(1, 'ActualSpeed'));
      assert.ok(Number(speed.value.value) > 100, `drive 1 turns: ${speed.value.value}`);
    } finally {
      plant.start();
    }
  });

  it('describes values with EngineeringUnits (UNECE codes) and EURange', async () => {
    const session = await connect(SecurityPolicy.Basic256Sha256);
    const child = async (unit: number, variable: string, property: string): Promise<DataValue> => {
      const path = await session.translateBrowsePath(makeBrowsePath(sim.nodeId(unit, variable), `.${property}`));
      assert.equal(path.statusCode, StatusCodes.Good, `${variable}.${property}`);
      return read(session, path.targets![0].targetId.toString());
    };
    const current = (await child(1, 'MotorCurrent', 'EngineeringUnits')).value.value as EUInformation;
    assert.equal(current.unitId, uneceUnitId('AMP'));
    assert.equal(current.displayName.text, 'A');
    const speed = (await child(1, 'ActualSpeed', 'EngineeringUnits')).value.value as EUInformation;
    assert.equal(speed.unitId, uneceUnitId('RPM'));
    const setpointRange = (await child(1, 'SpeedSetpoint', 'EURange')).value.value as { low: number; high: number };
    assert.deepEqual({ low: setpointRange.low, high: setpointRange.high }, { low: 0, high: 1800 });
    const accel = (await child(1, 'AccelRate', 'EngineeringUnits')).value.value as EUInformation;
    assert.equal(accel.unitId, -1, 'rpm/s has no UNECE code');
    const energy = (await child(1, 'Energy', 'EngineeringUnits')).value.value as EUInformation;
    assert.equal(energy.unitId, uneceUnitId('KWH'));
    // One units table: the simulator shows a unit as uns-opcua-server shows the same unit text.
    for (const [variable, unit] of [['ActualSpeed', 'rpm'], ['MotorTemperature', 'degC'], ['AccelRate', 'rpm/s'], ['MotorCurrent', 'A']]) {
      const shown = (await child(1, variable, 'EngineeringUnits')).value.value as EUInformation;
      const gateway = euInformationOf(unit);
      assert.deepEqual([shown.unitId, shown.displayName.text, shown.description.text], [gateway.unitId, gateway.displayName.text, gateway.description.text], variable);
    }
    assert.equal((await read(session, sim.nodeId(1, 'MotorCurrent'), AttributeIds.DataType)).value.value.toString(), 'ns=0;i=10', 'Float');
  });

  it('writes a setpoint inside EURange; refuses one outside with BadOutOfRange and a viewer with BadUserAccessDenied, changing nothing', async () => {
    const operator = await connect(SecurityPolicy.Basic256Sha256);
    assert.equal(await writeSetpoint(operator, 1000), StatusCodes.Good);
    assert.equal(plant.drives[0].setpointRpm, 1000);
    const holding = await modbus.request({ op: 'read_holding_registers', address: 1, count: 1, slave: 1 });
    assert.deepEqual(holding, { ok: true, registers: [1000] }, 'the Modbus side sees the new setpoint');
    assert.equal(await writeSetpoint(operator, 1801), StatusCodes.BadOutOfRange);
    assert.equal(await writeSetpoint(operator, -1), StatusCodes.BadOutOfRange);
    assert.equal(plant.drives[0].setpointRpm, 1000);
    const viewer = await connect(SecurityPolicy.Basic256Sha256, VIEWER);
    assert.equal(await writeSetpoint(viewer, 900), StatusCodes.BadUserAccessDenied);
    assert.equal(plant.drives[0].setpointRpm, 1000);
    assert.equal((await read(viewer, sim.nodeId(1, 'SpeedSetpoint'), AttributeIds.UserAccessLevel)).value.value, 1, 'CurrentRead only for a viewer');
    assert.equal((await read(operator, sim.nodeId(1, 'SpeedSetpoint'), AttributeIds.UserAccessLevel)).value.value, 3);
    assert.equal(await operator.write({ nodeId: sim.nodeId(1, 'ActualSpeed'), attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Int16, value: 5 } } }),
      StatusCodes.BadNotWritable);
  });

  it('checks writes against the EURange the address space holds (node-opcua itself checks only InstrumentRange)', async () => {
    const operator = await connect(SecurityPolicy.Basic256Sha256);
    const setpoint = sim.server!.engine.addressSpace!.findNode(sim.nodeId(1, 'SpeedSetpoint')) as UAVariable;
    const euRange = setpoint.getChildByName('EURange') as UAVariable;
    euRange.setValueFromSource({ dataType: DataType.ExtensionObject, value: new Range({ low: 0, high: 1500 }) });
    try {
      assert.equal(await writeSetpoint(operator, 1600), StatusCodes.BadOutOfRange, 'inside the profile\'s 0..1800 but outside EURange');
      assert.notEqual(plant.drives[0].setpointRpm, 1600);
      assert.equal(await writeSetpoint(operator, 1500), StatusCodes.Good);
    } finally {
      euRange.setValueFromSource({ dataType: DataType.ExtensionObject, value: new Range({ low: 0, high: 1800 }) });
    }
  });

  it('ResetFault resets a latched trip for an operator; a viewer may not call it', async () => {
    const operator = await connect(SecurityPolicy.Basic256Sha256);
    const resetFault = async (session: ClientSession) => session.call({ objectId: sim.nodeId(2), methodId: sim.nodeId(2, 'ResetFault'), inputArguments: [] });
    plant.injectFault(2, { kind: 'overcurrent' });
    plant.step(0.1);
    plant.drives[1].clearInjection('overcurrent');
    assert.equal((await read(operator, sim.nodeId(2, 'FaultCode'))).value.value, 1, 'overcurrent trip');
    const viewer = await connect(SecurityPolicy.Basic256Sha256, VIEWER);
    assert.equal((await resetFault(viewer)).statusCode, StatusCodes.BadUserAccessDenied);
    assert.equal((await read(operator, sim.nodeId(2, 'FaultCode'))).value.value, 1, 'still latched');
    const result = await resetFault(operator);
    assert.equal(result.statusCode, StatusCodes.Good);
    assert.equal(result.outputArguments![0].value, true);
    assert.equal((await read(operator, sim.nodeId(2, 'FaultCode'))).value.value, 0);
    plant.drive(2).start();
  });

  it('recovery helpers: counts monitored items, closes sessions, edits the address space, restarts on the same port and PKI', async () => {
    const session = await connect(SecurityPolicy.Basic256Sha256);
    const subscription = await session.createSubscription2({ requestedPublishingInterval: 100, requestedLifetimeCount: 600, requestedMaxKeepAliveCount: 10, publishingEnabled: true });
    for (const name of ['ActualSpeed', 'MotorCurrent', 'Vibration']) {
      await subscription.monitor({ nodeId: sim.nodeId(1, name), attributeId: AttributeIds.Value }, { samplingInterval: 100, queueSize: 1, discardOldest: true }, 0);
    }
    assert.equal(sim.monitoredItemCount(), 3);
    assert.equal(sim.sessionCount(), 1);

    sim.removeVariable(1, 'vibration');
    assert.equal((await read(session, sim.nodeId(1, 'Vibration'))).statusCode.name, 'BadNodeIdUnknown');
    sim.addVariable(1, 'vibration');
    assert.equal((await read(session, sim.nodeId(1, 'Vibration'))).statusCode, StatusCodes.Good);

    assert.equal(sim.closeAllSessions(), 1);
    assert.equal(sim.sessionCount(), 0);
    assert.equal(sim.monitoredItemCount(), 3, 'the closed session\'s subscription waits for a TransferSubscriptions');

    const thumbprint = sim.certificateThumbprint();
    const port = sim.port;
    sim.removeVariable(1, 'energy');
    await sim.stop();
    assert.equal(sim.running, false);
    assert.equal(sim.monitoredItemCount(), 0);
    await sim.start();
    assert.equal(sim.port, port);
    assert.equal(sim.certificateThumbprint(), thumbprint);
    const again = await connect(SecurityPolicy.Basic256Sha256); // no new trust step: the PKI is the same
    assert.equal((await read(again, sim.nodeId(1, 'Energy'))).statusCode.name, 'BadNodeIdUnknown', 'restarted with a changed address space');
    assert.equal((await read(again, sim.nodeId(1, 'ActualSpeed'))).statusCode, StatusCodes.Good);
    sim.addVariable(1, 'energy');
    assert.equal((await read(again, sim.nodeId(1, 'Energy'))).statusCode, StatusCodes.Good);
  });
});
