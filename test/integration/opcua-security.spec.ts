/**
 * lib/opcua/connection.ts against real node-opcua servers on loopback: security policies, user
 * identities, None only when chosen, and every certificate case with its own message saying which
 * side refused (issue 9 "Must show").
 */
import { strict as assert } from 'node:assert';
import type { KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as opcua from 'node-opcua';
import { CertificateAuthority } from 'node-opcua-pki';
import type { OpcUaConnection } from '../../lib/opcua/connection';
import { makeCertificate, newConnection, settled, tempDir, trustBothWays, waitForState } from '../helpers/opcua-client-harness';
import { startTestServer, TestServer } from '../helpers/opcua-test-server';

describe('OPC UA client security (real node-opcua servers)', function () {
  this.timeout(60_000);
  let server: TestServer | undefined;
  let connection: OpcUaConnection | undefined;

  afterEach(async () => {
    await connection?.close();
    connection = undefined;
    await server?.dispose();
    server = undefined;
  });

  /** Connect with both sides trusting each other; resolve with the final state's failure (undefined when connected). */
  async function connectTrusted(config: Record<string, unknown>, credentials: Record<string, unknown> = {}) {
    const made = newConnection({ endpointUrl: server!.endpointUrl, ...config }, credentials);
    connection = made.connection;
    await trustBothWays(await made.pki(), server!);
    connection.start();
    return waitForState(connection, settled);
  }

  it('SignAndEncrypt + Basic256Sha256 with user name and password; a wrong password is refused as such', async () => {
    server = await startTestServer({ users: { alice: 'secret' }, allowAnonymous: false });
    assert.equal(await connectTrusted({ userIdentity: 'username' }, { user: 'alice', password: 'secret' }), undefined);
    assert.equal(connection!.state, 'connected');
    const value = await connection!.session!.read({ nodeId: 'ns=1;s=Drive1.Speed' });
    assert.equal(value.statusCode.name, 'Good');
    await connection!.close();
    const failure = await connectTrusted({ userIdentity: 'username' }, { user: 'alice', password: 'wrong' });
    assert.equal(failure?.kind, 'access-denied');
    assert.match(failure!.explanation, /wrong user name or password \(BadUserAccessDenied\)/);
  });

  it('SignAndEncrypt + Aes256_Sha256_RsaPss with an X.509 user certificate; an untrusted user certificate is refused as such', async () => {
    server = await startTestServer({ allowAnonymous: false, securityPolicies: [opcua.SecurityPolicy.Aes256_Sha256_RsaPss] });
    const user = await makeCertificate({ applicationUri: 'urn:user:alice', subject: '/CN=alice' });
    const credentials = { userCertificate: user.pem, userPrivateKey: user.keyPem };
    let failure = await connectTrusted({ securityPolicy: 'Aes256_Sha256_RsaPss', userIdentity: 'certificate' }, credentials);
    assert.equal(failure?.kind, 'user-certificate-rejected', failure?.explanation);
    assert.match(failure!.explanation, /server refused our X\.509 user certificate \(BadIdentityTokenRejected\)/);
    await connection!.close();
    await server.userCertificateManager.trustCertificate(user.der);
    failure = await connectTrusted({ securityPolicy: 'Aes256_Sha256_RsaPss', userIdentity: 'certificate' }, credentials);
    assert.equal(failure, undefined, failure?.explanation);
    assert.equal((await connection!.session!.read({ nodeId: 'ns=1;s=Drive1.Mode' })).value.value, 1);
  });

  it('mode None is refused unless chosen: a secure-only server has no None endpoint, a None-only server no secure one', async () => {
    server = await startTestServer({ trustAllClients: true });
    let failure = await connectTrusted({ securityMode: 'None', securityPolicy: 'None' });
    assert.equal(failure?.kind, 'endpoint-not-offered', failure?.explanation);
    assert.equal(failure?.side, 'configuration');
    await connection!.close();
    await server.dispose();
    server = await startTestServer({ securityModes: [opcua.MessageSecurityMode.None], securityPolicies: [opcua.SecurityPolicy.None] });
    failure = await connectTrusted({});
    // node-opcua's None-only server refuses the secure channel itself, or offers no such endpoint: either way, said so
    assert.ok(['endpoint-not-offered', 'security-mode-rejected'].includes(failure?.kind ?? ''), failure?.explanation);
    await connection!.close();
    failure = await connectTrusted({ securityMode: 'None', securityPolicy: 'None' });
    assert.equal(failure, undefined, failure?.explanation);
  });

  it('untrusted self-signed server certificate: we refuse it, name its thumbprint, and it waits in rejected/', async () => {
    server = await startTestServer({ trustAllClients: true });
    const made = newConnection({ endpointUrl: server.endpointUrl });
    connection = made.connection;
    connection.start();
    const failure = await waitForState(connection, settled);
    assert.equal(failure?.kind, 'server-certificate-untrusted');
    assert.equal(failure?.side, 'client');
    const rejected = (await made.pki()).trustList().filter((c) => c.status === 'rejected');
    assert.equal(rejected.length, 1);
    assert.equal(failure?.serverThumbprint, rejected[0].thumbprint);
    assert.match(failure!.explanation, new RegExp(`we refused the server: its certificate ${rejected[0].thumbprint} is not trusted`));
  });

  it('expired server certificate (even when trusted): refused with BadCertificateTimeInvalid', async () => {
    const expired = await makeCertificate({ applicationUri: 'urn:localhost:uns-edge-test-server', startDate: new Date(Date.now() - 400 * 86_400_000), validityDays: 30 });
    server = await startTestServer({ trustAllClients: true, certificateFile: expired.certificateFile, privateKeyFile: expired.privateKeyFile });
    const failure = await connectTrusted({});
    assert.equal(failure?.kind, 'server-certificate-time', failure?.explanation);
    assert.match(failure!.explanation, new RegExp(`^we refused the server: its certificate ${expired.thumbprint} expired on ${new Date(Date.parse(expired.validTo)).toISOString()} \\(BadCertificateTimeInvalid\\): the server needs a new certificate$`));
  });

  it('server certificate not yet valid (even when trusted): refused with its own message naming the start date', async () => {
    const future = await makeCertificate({ applicationUri: 'urn:localhost:uns-edge-test-server', startDate: new Date(Date.now() + 30 * 86_400_000), validityDays: 365 });
    server = await startTestServer({ trustAllClients: true, certificateFile: future.certificateFile, privateKeyFile: future.privateKeyFile });
    const failure = await connectTrusted({});
    assert.equal(failure?.kind, 'server-certificate-time', failure?.explanation);
    assert.equal(failure?.side, 'client');
    assert.equal(connection!.state, 'refused');
    assert.match(failure!.explanation, new RegExp(`^we refused the server: its certificate ${future.thumbprint} is not valid before ${new Date(Date.parse(future.validFrom)).toISOString()} \\(BadCertificateTimeInvalid\\): check the clocks of the server and of this gateway$`));
    assert.equal(server.sessionCount(), 0);
  });

  it('server certificate revoked by a CRL in our PKI (its CA trusted): refused with BadCertificateRevoked, named as such', async () => {
    const dir = tempDir('uns-opcua-ca-');
    const ca = new CertificateAuthority({ keySize: 2048, location: join(dir, 'ca'), subject: '/CN=uns-edge test plant CA' });
    await ca.initialize();
    const issued = await ca.generateKeyPairAndSignDER({ applicationUri: 'urn:localhost:uns-edge-test-server', dns: ['localhost'], subject: '/CN=revoked test server' });
    await ca.revokeCertificateDER(issued.certificateDer, 'keyCompromise');
    const certificateFile = join(dir, 'server.pem');
    const privateKeyFile = join(dir, 'server.key');
    writeFileSync(certificateFile, `-----BEGIN CERTIFICATE-----\n${issued.certificateDer.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`);
    writeFileSync(privateKeyFile, (issued.privateKey as unknown as { hidden: KeyObject }).hidden.export({ type: 'pkcs8', format: 'pem' }));
    server = await startTestServer({ trustAllClients: true, certificateFile, privateKeyFile });
    // What an administrator drops into our PKI (node-opcua's layout): the CA as an issuer, its CRL, the server trusted.
    const pkiRoot = join(tempDir('uns-opcua-client-'), 'pki');
    for (const folder of ['issuers/certs', 'issuers/crl', 'trusted/certs']) mkdirSync(join(pkiRoot, folder), { recursive: true });
    writeFileSync(join(pkiRoot, 'issuers', 'certs', 'plant-ca.der'), ca.getCACertificateDER());
    writeFileSync(join(pkiRoot, 'issuers', 'crl', 'plant-ca.crl'), ca.getCRLDER());
    writeFileSync(join(pkiRoot, 'trusted', 'certs', 'server.der'), issued.certificateDer);
    const made = newConnection({ endpointUrl: server.endpointUrl }, {}, pkiRoot);
    connection = made.connection;
    await server.serverCertificateManager.trustCertificate((await made.pki()).ownCertificate().der);
    connection.start();
    const failure = await waitForState(connection, settled);
    assert.equal(failure?.kind, 'server-certificate-revoked', failure?.explanation);
    assert.equal(connection.state, 'refused');
    assert.match(failure!.explanation, /^we refused the server: its certificate [0-9a-f]{40} is revoked \(BadCertificateRevoked/);
  });

  it('trusted server certificate with the wrong application URI: refused by our own check', async () => {
    const wrong = await makeCertificate({ applicationUri: 'urn:somewhere-else:impostor' });
    server = await startTestServer({ trustAllClients: true, certificateFile: wrong.certificateFile, privateKeyFile: wrong.privateKeyFile });
    const failure = await connectTrusted({});
    assert.equal(failure?.kind, 'server-certificate-uri', failure?.explanation);
    assert.match(failure!.explanation, /names application URI "urn:somewhere-else:impostor" but the server says "urn:localhost:uns-edge-test-server"/);
  });

  it('trusted server certificate that does not name the host: refused, unless the host check is waived', async () => {
    const otherHost = await makeCertificate({ applicationUri: 'urn:localhost:uns-edge-test-server', dns: ['plc-17.example'] });
    server = await startTestServer({ trustAllClients: true, certificateFile: otherHost.certificateFile, privateKeyFile: otherHost.privateKeyFile });
    const failure = await connectTrusted({});
    assert.equal(failure?.kind, 'server-certificate-hostname', failure?.explanation);
    assert.match(failure!.explanation, /does not name host "localhost" \(it names plc-17\.example\)/);
    await connection!.close();
    assert.equal(await connectTrusted({ ignoreHostname: true }), undefined);
  });

  it('trust on first use trusts the first certificate of an endpoint once, with a warning, and never a changed one', async () => {
    server = await startTestServer({ trustAllClients: true });
    const made = newConnection({ endpointUrl: server.endpointUrl, trustOnFirstUse: true });
    connection = made.connection;
    const warnings: string[] = [];
    connection.on('warning', (w: string) => warnings.push(w));
    connection.start();
    assert.equal(await waitForState(connection, settled), undefined);
    assert.match(warnings.join('\n'), /trust on first use: trusted the server certificate [0-9a-f]{40}/);
    await connection.close();
    // same port, new server certificate: refused although TOFU is on
    const port = server.port;
    await server.dispose();
    server = await startTestServer({ trustAllClients: true, port });
    const again = newConnection({ endpointUrl: server.endpointUrl, trustOnFirstUse: true }, {}, (await made.pki()).rootFolder);
    connection = again.connection;
    connection.start();
    assert.equal((await waitForState(connection, settled))?.kind, 'server-certificate-untrusted');
  });
});
