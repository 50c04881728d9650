/**
 * flows/uns-to-opcua.json deployed as shipped (node-red-node-test-helper) against the simulated
 * plant (Modbus TCP) and a real Mosquitto, the tab's variables from the process environment: the
 * drives reach the UNS, uns-in feeds the OPC UA server and PubSub; a node-opcua client logs in with
 * an X.509 user `scada-operator` (added to the template's empty user list with its certificate's thumbprint, as a
 * user does), reads both drives and writes drive 1's setpoint (the register changes); `scada-viewer`
 * may not write; PubSub JSON comes back through uns-pubsub-in.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opcua from 'node-opcua';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import serverNodes = require('../../nodes/opcua-server/opcua-server');
import pubsubNodes = require('../../nodes/pubsub/pubsub');
import unsNodes = require('../../nodes/uns/uns');
import { describeCertificate, toDer } from '../../lib/opcua/certificates';
import { applicationPki } from '../../lib/opcua/pki';
import { serverPki, defaultServerIdentity } from '../../lib/opcua/server-pki';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { freePort, Mosquitto } from '../helpers/mosquitto';
import { helper } from '../helpers/node-red-runtime';

/* eslint-disable @typescript-eslint/no-require-imports */
const core = (dir: string, file: string): unknown => require(join(require.resolve('@node-red/nodes/package.json'), '..', 'core', dir, file));
/* eslint-enable @typescript-eslint/no-require-imports */

const VARIABLES = ['UNS_EDGE_MQTT_HOST', 'UNS_EDGE_MQTT_PORT', 'UNS_EDGE_SIM_HOST', 'UNS_EDGE_SIM_PORT', 'UNS_EDGE_OPCUA_SERVER_PORT'];
const A1 = 'acme/plant1/packaging/line1/cell1/drive1';
const A2 = 'acme/plant1/packaging/line1/cell1/drive2';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function userCertificate(dir: string, cn: string): Promise<{ der: Buffer; key: string; thumbprint: string }> {
  const cm = new opcua.OPCUACertificateManager({ rootFolder: join(dir, cn), automaticallyAcceptUnknownCertificate: false });
  await cm.initialize();
  const file = join(dir, cn, 'own', 'certs', 'user.pem');
  await cm.createSelfSignedCertificate({ applicationUri: `urn:test:${cn}`, subject: `/CN=${cn}`, dns: ['localhost'], startDate: new Date(Date.now() - 3600_000), validity: 30, outputFile: file });
  const der = toDer(readFileSync(file));
  const key = readFileSync(cm.privateKey, 'utf8');
  await cm.dispose();
  return { der, key, thumbprint: describeCertificate(der).thumbprint };
}

describe('flows/uns-to-opcua.json: drives → UNS → OPC UA server and PubSub JSON', function () {
  this.timeout(90_000);
  let plant: SimulatedPlantHandle;
  let broker: Mosquitto;
  let userDir: string;
  let port: number;
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 2 });
    broker = await Mosquitto.start();
    port = await freePort();
    for (const v of VARIABLES) saved[v] = process.env[v];
    Object.assign(process.env, {
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port), UNS_EDGE_SIM_HOST: '127.0.0.1',
      UNS_EDGE_SIM_PORT: String(plant.port), UNS_EDGE_OPCUA_SERVER_PORT: String(port),
    });
    userDir = mkdtempSync(join(tmpdir(), 'uns-u2o-'));
    helper.settings({ userDir });
    await new Promise<void>((r) => helper.startServer(() => r()));
  });
  after(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    for (const v of VARIABLES) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
    await plant?.close();
    await broker?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  it('serves both drives over OPC UA, takes a write from scada-operator to drive 1, refuses scada-viewer; PubSub JSON comes back', async () => {
    const flow = JSON.parse(readFileSync(join(__dirname, '../../flows/uns-to-opcua.json'), 'utf8')) as Record<string, unknown>[];
    // The template ships without users (no client can log in): two X.509 users added as its info text says.
    const operator = await userCertificate(userDir, 'scada-operator');
    const viewer = await userCertificate(userDir, 'scada-viewer');
    const serverNode = flow.find((n) => n.type === 'uns-opcua-server')!;
    assert.deepEqual(JSON.parse(String(serverNode.users)), [], 'shipped without users');
    serverNode.users = JSON.stringify([
      { kind: 'certificate', name: 'scada-operator', thumbprint: operator.thumbprint, role: 'write' },
      { kind: 'certificate', name: 'scada-viewer', thumbprint: viewer.thumbprint, role: 'read' },
    ]);
    await helper.load([unsNodes, modbusNodes, driveNodes, serverNodes, pubsubNodes, core('common', '24-complete.js'), core('common', '25-catch.js'), core('common', '21-debug.js'), core('common', '90-comment.js')], flow);
    const decoded = new Promise<{ topic: string; payload: Record<string, unknown> }>((resolve) => helper.getNode('u2o-debug').on('input', (msg) => {
      const m = msg as { topic: string; payload: Record<string, unknown> };
      if (m.topic === A1 && typeof m.payload.actualSpeed === 'number') resolve(m);
    }));

    // Our client and the server trust each other (the server's PKI is the one the node made in userDir).
    const clientPki = await applicationPki(join(mkdtempSync(join(tmpdir(), 'uns-u2o-cli-')), 'pki'));
    const server = await serverPki(join(userDir, 'uns-edge', 'opcua', 'server-pki'), defaultServerIdentity());
    await server.certificateManager.trustCertificate(clientPki.ownCertificate().der);
    await clientPki.certificateManager.trustCertificate(server.ownCertificate().der);
    const users = new opcua.OPCUACertificateManager({ rootFolder: join(userDir, 'uns-edge', 'opcua', 'server-user-pki'), automaticallyAcceptUnknownCertificate: false });
    await users.initialize();
    await users.trustCertificate(operator.der);
    await users.trustCertificate(viewer.der);
    await users.dispose();

    const connect = async (user: { der: Buffer; key: string }) => {
      const client = opcua.OPCUAClient.create({
        applicationName: 'scada', applicationUri: clientPki.applicationUri, clientCertificateManager: clientPki.certificateManager,
        certificateFile: clientPki.certificateFile, privateKeyFile: clientPki.privateKeyFile,
        securityMode: opcua.MessageSecurityMode.SignAndEncrypt, securityPolicy: opcua.SecurityPolicy.Aes256_Sha256_RsaPss,
        endpointMustExist: false, connectionStrategy: { maxRetry: 0 },
      });
      await client.connect(`opc.tcp://localhost:${port}`);
      const session = await client.createSession({ type: opcua.UserTokenType.Certificate, certificateData: user.der, privateKey: user.key });
      return { client, session };
    };
    let op: Awaited<ReturnType<typeof connect>> | undefined;
    for (let tries = 0; !op; tries++) {
      try {
        op = await connect(operator);
      } catch (error) {
        if (tries > 100) throw error;
        await sleep(100); // the server starts listening shortly after deploy
      }
    }
    try {
      const ns = (await op.session.readNamespaceArray()).indexOf('urn:uns-edge:uns');
      const id = (asset: string, metric: string) => `ns=${ns};s=${asset}#${metric}`;
      for (const asset of [A1, A2]) {
        const deadline = Date.now() + 15_000;
        let value: opcua.DataValue = await op.session.read({ nodeId: id(asset, 'actualSpeed') });
        while (value.statusCode.name !== 'Good' && Date.now() < deadline) {
          await sleep(100);
          value = await op.session.read({ nodeId: id(asset, 'actualSpeed') });
        }
        assert.equal(value.statusCode.name, 'Good', `${asset} actualSpeed through the UNS`);
      }
      await sleep(1100); // the ramp guard: 300 rpm per second since the last setpoint
      const nodeId = id(A1, 'speedSetpoint');
      const write = (session: opcua.ClientSession, value: number) => session.write({ nodeId, attributeId: opcua.AttributeIds.Value, value: { value: { dataType: opcua.DataType.Int16, value } } });
      assert.equal((await write(op.session, 1250)).name, 'Good');
      assert.equal(plant.plant.read(1, 'holding', 1, 1)[0], 1250);
      assert.equal((await op.session.write({ nodeId: id(A2, 'speedSetpoint'), attributeId: opcua.AttributeIds.Value, value: { value: { dataType: opcua.DataType.Int16, value: 1000 } } })).name, 'BadNotWritable');
      const view = await connect(viewer);
      try {
        assert.equal((await write(view.session, 1300)).name, 'BadUserAccessDenied');
      } finally {
        await view.session.close();
        await view.client.disconnect();
      }
    } finally {
      await op.session.close();
      await op.client.disconnect();
    }
    const back = await decoded;
    assert.equal(typeof back.payload.actualSpeed, 'number');
  });
});
