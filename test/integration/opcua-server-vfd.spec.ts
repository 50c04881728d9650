/**
 * uns-opcua-server in a Node-RED runtime with the outside world as a node-opcua client: the
 * simulated plant over real Modbus TCP → uns-vfd → uns-opcua-server; a client write goes out as a
 * write command to uns-vfd, and the OPC UA write result is the drive's answer (Good after the
 * register was written — a core complete node brings the result back; a guard refusal — a core
 * catch node brings it back). The client's certificate is refused until trusted through the
 * node's admin endpoint; None is not offered.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opcua from 'node-opcua';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import serverNodes = require('../../nodes/opcua-server/opcua-server');
import type { AuditRecord } from '../../lib/drive/audit';
import { applicationPki, type ApplicationPki } from '../../lib/opcua/pki';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { freePort } from '../helpers/ports';
import { helper } from '../helpers/node-red-runtime';

/* eslint-disable @typescript-eslint/no-require-imports */
const completeNode = require('@node-red/nodes/core/common/24-complete.js') as unknown;
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('uns-opcua-server: simulated drive over Modbus → uns-vfd → OPC UA client, and writes back', function () {
  this.timeout(60_000);
  let plant: SimulatedPlantHandle;
  let userDir: string;
  let port: number;
  let pki: ApplicationPki;
  const audits: AuditRecord[] = [];

  const model = JSON.stringify({ assets: { [ASSET]: { speedSetpoint: { type: 'Int16', unit: 'rpm', range: [0, 1800], writable: true } } } });

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 1 }); // runs at 1200 rpm
    userDir = mkdtempSync(join(tmpdir(), 'uns-opcua-server-'));
    port = await freePort();
    helper.settings({ userDir });
    await new Promise<void>((r) => helper.startServer(() => r()));
    await helper.load([modbusNodes, driveNodes, serverNodes, completeNode, catchNode], [
      { id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port: plant.port, timeout: 500, reconnect: 50 },
      { id: 'vfd', type: 'uns-vfd', link: 'link', unitId: 1, profile: 'uns-edge-simulated-drive', interval: 200, topic: ASSET, statusParameter: 'actualSpeed', wires: [['srv'], ['audit']] },
      { id: 'audit', type: 'helper' },
      {
        id: 'srv', type: 'uns-opcua-server', listenPort: port, listenHost: '127.0.0.1', hostname: 'localhost', policies: 'Basic256Sha256,Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss',
        allowNone: false, users: JSON.stringify([{ kind: 'password', name: 'op', role: 'write' }, { kind: 'password', name: 'viewer', role: 'read' }]),
        model, maxSessions: 50, maxConnections: 60, maxWritesPerSecond: 10, writeTimeout: 5000, maxVariables: 50000, wires: [['vfd']],
      },
      { id: 'done', type: 'complete', scope: ['vfd'], wires: [['srv']] },
      { id: 'failed', type: 'catch', scope: ['vfd'], uncaught: false, wires: [['srv']] },
    ], { srv: { passwords: JSON.stringify({ op: 'op-secret', viewer: 'view-secret' }) } });
    (helper.getNode('audit') as { on(e: string, f: (m: { payload: AuditRecord }) => void): void }).on('input', (m) => audits.push(m.payload));
    pki = await applicationPki(join(mkdtempSync(join(tmpdir(), 'uns-opcua-cli-')), 'pki'));
  });

  after(async () => {
    await helper.unload();
    await new Promise<void>((r) => helper.stopServer(() => r()));
    await plant?.close();
    rmSync(userDir, { recursive: true, force: true });
  });

  const endpointUrl = () => `opc.tcp://localhost:${port}`;
  function client(mode = opcua.MessageSecurityMode.SignAndEncrypt, policy = opcua.SecurityPolicy.Basic256Sha256): opcua.OPCUAClient {
    return opcua.OPCUAClient.create({
      applicationName: 'scada', applicationUri: pki.applicationUri, clientCertificateManager: pki.certificateManager,
      certificateFile: pki.certificateFile, privateKeyFile: pki.privateKeyFile, securityMode: mode, securityPolicy: policy,
      endpointMustExist: false, connectionStrategy: { maxRetry: 0, initialDelay: 100 },
    });
  }
  async function connect(user = 'op', password = 'op-secret') {
    const c = client();
    await c.connect(endpointUrl());
    const s = await c.createSession({ type: opcua.UserTokenType.UserName, userName: user, password }).catch(async (e) => {
      await c.disconnect();
      throw e;
    });
    return { c, s };
  }
  async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await get();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`);
      await sleep(50);
    }
  }

  it('refuses the unknown client certificate until it is trusted on the node\'s trust list; offers no None endpoint', async () => {
    // Wait until the server listens (its status turns green).
    const ep = await waitFor('server up', async () => {
      const probe = opcua.OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
      try {
        await probe.connect(endpointUrl());
        const endpoints = await probe.getEndpoints();
        await probe.disconnect();
        return endpoints;
      } catch {
        return [];
      }
    }, (e) => e.length > 0);
    assert.ok(ep.every((e) => e.securityMode === opcua.MessageSecurityMode.SignAndEncrypt), 'SignAndEncrypt only');
    // Our side trusts the server certificate (the node offers the same one for download).
    const der = await helper.request().get('/uns-opcua-server/certificate.der');
    assert.equal(der.status, 200);
    assert.equal((der as unknown as { headers: Record<string, string> }).headers['content-type'], 'application/pkix-cert');
    await pki.certificateManager.trustCertificate(Buffer.from(ep[0].serverCertificate!));
    await assert.rejects(connect());
    const list = await helper.request().get('/uns-opcua-server/trust');
    const thumbprint = pki.ownCertificate().info.thumbprint;
    const entry = (list.body as { entries: { thumbprint: string; status: string }[] }).entries.find((e) => e.thumbprint === thumbprint);
    assert.equal(entry?.status, 'rejected');
    assert.equal((await helper.request().post(`/uns-opcua-server/trust/${thumbprint}/trust`)).status, 200);
    const { c, s } = await connect();
    await s.close();
    await c.disconnect();
  });

  it('browses the drive and reads its types, units, status and source timestamps as uns-vfd gave them', async () => {
    const { c, s } = await connect();
    try {
      const ns = (await s.readNamespaceArray()).indexOf('urn:uns-edge:uns');
      const id = (metric: string) => `ns=${ns};s=${ASSET}#${metric}`;
      const current = await waitFor('motorCurrent', () => s.read({ nodeId: id('motorCurrent') }), (v) => v.statusCode.name === 'Good');
      assert.equal(current.value.dataType, opcua.DataType.Float);
      assert.ok(Number(current.value.value) > 0);
      assert.ok(Math.abs(current.sourceTimestamp!.getTime() - Date.now()) < 5000);
      const speed = await s.read({ nodeId: id('actualSpeed'), attributeId: opcua.AttributeIds.DataType });
      assert.equal(speed.value.value.toString(), 'ns=0;i=4'); // Int16, as meta.type says
      const eu = await s.translateBrowsePath(opcua.makeBrowsePath(id('outputFrequency'), '.EngineeringUnits'));
      assert.equal(((await s.read({ nodeId: eu.targets![0].targetId })).value.value as opcua.EUInformation).displayName.text, 'Hz');
      assert.equal((await s.read({ nodeId: id('state') })).value.value, 'RUNNING');
    } finally {
      await s.close();
      await c.disconnect();
    }
  });

  it('a client write reaches the drive over Modbus; Good only when the drive took it, the guard\'s refusal otherwise', async () => {
    const { c, s } = await connect();
    try {
      const ns = (await s.readNamespaceArray()).indexOf('urn:uns-edge:uns');
      const nodeId = `ns=${ns};s=${ASSET}#speedSetpoint`;
      const write = (value: number) => s.write({ nodeId, attributeId: opcua.AttributeIds.Value, value: { value: { dataType: opcua.DataType.Int16, value } } });
      await sleep(1100); // the ramp guard allows 300 rpm per second since the last setpoint
      const good = await write(1300);
      assert.equal(good.name, 'Good');
      assert.equal(plant.plant.read(1, 'holding', 1, 1)[0], 1300, 'the register holds the new setpoint when the write completes');
      const audit = audits.find((a) => a.outcome === 'written' && a.parameter === 'speedSetpoint');
      assert.equal(audit?.who, 'opcua:op');
      // 1300 → 1800 at once breaks the 300 rpm/s ramp guard of the profile: refused, nothing written.
      const refused = await write(1800);
      assert.equal(refused.name, 'BadRequestNotAllowed');
      assert.equal(plant.plant.read(1, 'holding', 1, 1)[0], 1300);
      assert.equal((await write(1900)).name, 'BadOutOfRange');
      // The telemetry confirms the written setpoint to every client.
      await waitFor('setpoint in the address space', () => s.read({ nodeId }), (v) => v.value.value === 1300);
      const viewer = await connect('viewer', 'view-secret');
      try {
        assert.equal((await viewer.s.write({ nodeId, attributeId: opcua.AttributeIds.Value, value: { value: { dataType: opcua.DataType.Int16, value: 1200 } } })).name, 'BadUserAccessDenied');
      } finally {
        await viewer.s.close();
        await viewer.c.disconnect();
      }
    } finally {
      await s.close();
      await c.disconnect();
    }
  });

  it('a subscribed client sees the drive\'s values change', async () => {
    const { c, s } = await connect();
    try {
      const ns = (await s.readNamespaceArray()).indexOf('urn:uns-edge:uns');
      const sub = await s.createSubscription2({ requestedPublishingInterval: 100, publishingEnabled: true });
      const item = await sub.monitor({ nodeId: `ns=${ns};s=${ASSET}#motorCurrent`, attributeId: opcua.AttributeIds.Value },
        { samplingInterval: 0, queueSize: 10 }, opcua.TimestampsToReturn.Both);
      const stamps: number[] = [];
      await new Promise<void>((resolve) => item.on('changed', (dv: opcua.DataValue) => {
        stamps.push(dv.sourceTimestamp!.getTime());
        if (stamps.length >= 3) resolve();
      }));
      assert.ok(stamps[2] > stamps[0], 'source timestamps advance with each poll');
      await sub.terminate();
    } finally {
      await s.close();
      await c.disconnect();
    }
  });
});
