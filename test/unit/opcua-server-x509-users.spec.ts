/**
 * uns-opcua-server's X.509 users (OPC 10000-4 §5.6.3 ActivateSession with an X509IdentityToken,
 * §7.41.5) against a real node-opcua client: a user is the certificate with the configured SHA-1
 * thumbprint, never "any certificate whose subject CN is the user's name". node-opcua 2.182.2 lets
 * through every certificate of the user trust list *and every certificate issued by a CA in it*
 * (OPCUACertificateManager.checkCertificate: acceptCertificateWithValidIssuerChain), so a CN says
 * nothing about whose key it is.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opcua from 'node-opcua';
import { applicationPki, type ApplicationPki } from '../../lib/opcua/pki';
import { parseServerModel } from '../../lib/opcua/server-model';
import { UnsOpcUaServer } from '../../lib/opcua/server-runtime';
import { usersFrom, type WriteCommand } from '../../lib/opcua/server-writes';
import { registeredDefinitions } from '../helpers/editor-definitions';
import { makeCertificate, type MadeCertificate } from '../helpers/opcua-client-harness';
import { freePort } from '../helpers/ports';

const ASSET = 'acme/plant1/press/line2/cell1/drive7';
const MODEL = JSON.stringify({ assets: { [ASSET]: { speedSetpoint: { type: 'Float', unit: 'rpm', range: [0, 1800], writable: true } } } });

describe('uns-opcua-server X.509 user rows: identified by thumbprint, CN only a display name', () => {
  const load = (rows: unknown[]) => {
    const problems: string[] = [];
    return { users: usersFrom(JSON.stringify(rows), undefined, problems), problems };
  };
  const THUMBPRINT = '5edd91b00f23766c7fdc571e8ec58b8ef455a3de';

  it('a certificate row with a CN only is refused, naming how to give the thumbprint (fail closed)', () => {
    const { problems } = load([{ kind: 'certificate', name: 'scada-operator', role: 'write' }]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /user "scada-operator": an X\.509 user needs the SHA-1 thumbprint of its certificate/);
    assert.match(problems[0]!, /openssl x509 -noout -fingerprint -sha1/);
  });

  it('the thumbprint is taken as the trust list shows it or as openssl prints it (colons, upper case)', () => {
    const colons = THUMBPRINT.toUpperCase().match(/../g)!.join(':');
    assert.deepEqual(load([{ kind: 'certificate', name: 'scada-operator', thumbprint: colons, role: 'write' }]),
      { users: [{ kind: 'certificate', name: 'scada-operator', thumbprint: THUMBPRINT, role: 'write' }], problems: [] });
  });

  it('a thumbprint that is not 40 hex digits, the same certificate twice, a thumbprint on a password row: named problems', () => {
    assert.match(load([{ kind: 'certificate', name: 'a', thumbprint: THUMBPRINT.slice(1), role: 'read' }]).problems.join('; '), /user "a": thumbprint must be 40 hex digits/);
    assert.deepEqual(load([
      { kind: 'certificate', name: 'a', thumbprint: THUMBPRINT, role: 'read' },
      { kind: 'certificate', name: 'b', thumbprint: THUMBPRINT, role: 'write' },
    ]).problems, [`user "b": the certificate ${THUMBPRINT} is already user "a"`]);
    assert.match(load([{ kind: 'password', name: 'op', thumbprint: THUMBPRINT, role: 'read' }]).problems.join('; '), /user "op": a thumbprint is only for kind certificate/);
  });
});

describe('uns-opcua-server editor: the users property is invalid while an X.509 row has no thumbprint', () => {
  const html = readFileSync(join(__dirname, '..', '..', 'nodes', 'opcua-server', 'opcua-server.html'), 'utf8');
  const definition = registeredDefinitions(html).find((d) => d.type === 'uns-opcua-server')!.definition;
  const validate = (definition.defaults?.users as { validate?: (this: unknown, value: string) => unknown } | undefined)?.validate;
  const node = { _: (key: string, data: { users: string }) => `${key}: ${data.users}` };

  it('a CN-only certificate row marks the node invalid, naming the row; a thumbprint (any notation) makes it valid', () => {
    assert.equal(typeof validate, 'function');
    assert.equal(validate!.call(node, JSON.stringify([{ kind: 'certificate', name: 'scada-operator', role: 'write' }])), 'opcua-server.errors.thumbprint: "scada-operator"');
    assert.equal(validate!.call(undefined, JSON.stringify([{ kind: 'certificate', name: 'x', thumbprint: 'abc', role: 'read' }])), false);
    assert.equal(validate!.call(node, JSON.stringify([{ kind: 'certificate', name: 'x', thumbprint: '5E:DD:91:B0:0F:23:76:6C:7F:DC:57:1E:8E:C5:8B:8E:F4:55:A3:DE', role: 'read' }])), true);
    assert.equal(validate!.call(node, JSON.stringify([{ kind: 'password', name: 'op', role: 'write' }])), true);
    assert.equal(validate!.call(node, '[]'), true);
  });
});

describe('uns-opcua-server writes by X.509 users (a node-opcua client with an X509IdentityToken)', function () {
  this.timeout(90_000);
  let server: UnsOpcUaServer;
  let pki: ApplicationPki;
  let operator: MadeCertificate;
  let impostor: MadeCertificate;
  let viewer: MadeCertificate;
  const commands: WriteCommand[] = [];
  const open: opcua.OPCUAClient[] = [];
  const nodeId = () => `ns=${server.addressSpace!.namespace.index};s=${ASSET}#speedSetpoint`;
  const write = (s: opcua.ClientSession, value: number) =>
    s.write({ nodeId: nodeId(), attributeId: opcua.AttributeIds.Value, value: { value: { dataType: opcua.DataType.Float, value } } });

  async function sessionAs(user: MadeCertificate): Promise<opcua.ClientSession> {
    const client = opcua.OPCUAClient.create({
      applicationName: 'scada', applicationUri: pki.applicationUri, clientCertificateManager: pki.certificateManager,
      certificateFile: pki.certificateFile, privateKeyFile: pki.privateKeyFile,
      securityMode: opcua.MessageSecurityMode.SignAndEncrypt, securityPolicy: opcua.SecurityPolicy.Basic256Sha256,
      endpointMustExist: false, connectionStrategy: { maxRetry: 0, initialDelay: 100 },
    });
    open.push(client);
    await client.connect(server.endpointUrl);
    return client.createSession({ type: opcua.UserTokenType.Certificate, certificateData: user.der, privateKey: user.keyPem });
  }

  before(async () => {
    // Three self-signed user certificates: the operator's, another key with the same CN (a second
    // laptop, a test certificate, a former colleague's), and a viewer's.
    operator = await makeCertificate({ applicationUri: 'urn:test:operator', subject: '/CN=scada-operator' });
    impostor = await makeCertificate({ applicationUri: 'urn:test:operator', subject: '/CN=scada-operator' });
    viewer = await makeCertificate({ applicationUri: 'urn:test:viewer', subject: '/CN=scada-viewer' });
    assert.notEqual(operator.thumbprint, impostor.thumbprint);
    // All three pass the user trust list: the check under test is the user mapping, not the trust list.
    const dir = mkdtempSync(join(tmpdir(), 'uns-opcua-x509-'));
    const userPkiFolder = join(dir, 'user-pki');
    const userTrust = new opcua.OPCUACertificateManager({ rootFolder: userPkiFolder, automaticallyAcceptUnknownCertificate: false });
    await userTrust.initialize();
    for (const certificate of [operator, impostor, viewer]) await userTrust.trustCertificate(certificate.der);
    await userTrust.dispose();
    server = new UnsOpcUaServer({
      id: 'n1', port: await freePort(), host: '127.0.0.1', hostname: 'localhost',
      pkiFolder: join(dir, 'pki'), userPkiFolder,
      users: usersFrom(JSON.stringify([
        { kind: 'certificate', name: 'scada-operator', thumbprint: operator.thumbprint, role: 'write' },
        { kind: 'certificate', name: 'scada-viewer', thumbprint: viewer.thumbprint, role: 'read' },
      ]), undefined, []),
      model: parseServerModel(MODEL), writeTimeoutMs: 5000,
    });
    await server.start();
    server.on('command', (c) => commands.push(c));
    pki = await applicationPki(join(dir, 'client-pki'));
    await server.applicationPki!.certificateManager.trustCertificate(pki.ownCertificate().der);
    await pki.certificateManager.trustCertificate(server.applicationPki!.ownCertificate().der);
  });
  after(async () => {
    for (const client of open) await client.disconnect();
    await server?.stop();
  });
  beforeEach(() => { commands.length = 0; });

  it('the operator certificate writes within range; the write command (audit) names the user, its CN and thumbprint', async () => {
    const s = await sessionAs(operator);
    assert.equal((await write(s, 1900)).name, 'BadOutOfRange');
    assert.equal(commands.length, 0);
    const pending = write(s, 1200);
    while (commands.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(commands[0]!.payload, { speedSetpoint: 1200 });
    assert.deepEqual(commands[0]!.principal, {
      via: 'opcua', id: `opcua:certificate scada-operator (SHA-1 ${operator.thumbprint})`, user: 'scada-operator', certificateCN: 'scada-operator',
    });
    assert.equal(server.writes.settle({ opcuaWriteId: commands[0]!.opcuaWriteId }), true);
    assert.equal((await pending).name, 'Good');
    await s.close();
  });

  it('a trusted certificate with the same CN but another key is refused at ActivateSession and writes nothing', async () => {
    const refused = new Promise<string>((resolve) => server.once('refused', resolve));
    await assert.rejects(sessionAs(impostor), /BadIdentityTokenRejected|BadUserAccessDenied/);
    assert.match(await refused, new RegExp(`user certificate CN=scada-operator \\(SHA-1 ${impostor.thumbprint}\\) is no configured X\\.509 user`));
    assert.equal(commands.length, 0);
  });

  it('a certificate the user trust list does not admit is refused by node-opcua (BadIdentityTokenRejected), told with its thumbprint', async () => {
    const stranger = await makeCertificate({ applicationUri: 'urn:test:stranger', subject: '/CN=scada-operator' });
    const refused = new Promise<string>((resolve) => server.once('refused', resolve));
    await assert.rejects(sessionAs(stranger), /BadIdentityTokenRejected/);
    assert.match(await refused, new RegExp(`user certificate CN=scada-operator \\(SHA-1 ${stranger.thumbprint}\\) refused: BadIdentityTokenRejected; trust it`));
    assert.equal(commands.length, 0);
  });

  it('the viewer certificate gets a session and reads, but its write is refused with BadUserAccessDenied', async () => {
    const s = await sessionAs(viewer);
    assert.equal((await s.read({ nodeId: nodeId() })).statusCode.name, 'BadWaitingForInitialData');
    assert.equal((await write(s, 100)).name, 'BadUserAccessDenied');
    assert.equal(commands.length, 0);
    await s.close();
  });
});
