/**
 * A plain node-opcua server for the OPC UA client tests, on a free loopback port, with its own PKI
 * in a temporary folder (never auto-trusting), configurable security modes/policies, users and an
 * X.509 user certificate manager. Address space (namespace 1, string NodeIds):
 *   ns=1;s=Drive1.Speed        Double, EU "rpm" (EngineeringUnits), EURange 0..1500, read/write, changes every 100 ms
 *   ns=1;s=Drive1.Current      Double, EU "A", read-only, changes every 100 ms
 *   ns=1;s=Drive1.Mode         Int32, read/write, no EURange
 *   ns=1;s=Drive1.Name         String, read/write
 *   ns=1;s=Drive1.Running      Boolean, read/write
 *   ns=1;s=Drive1.ResetFault   method (Int32 code) → Boolean
 *   ns=1;s=Drive1.SetRamp      method (Duration seconds: a subtype of Double) → Double
 *   ns=1;s=Bulk.<i>            `bulkVariables` Double variables (i = 0…n−1), value i, for tests with thousands of items
 * Tests can delete and re-add nodes (an address-space change) and close sessions server-side.
 * `maxMonitoredItemsPerCall` sets ServerCapabilities.OperationLimits (the server then refuses a larger
 * CreateMonitoredItems with BadTooManyOperations); `createMonitoredItemsMsPerItem` makes the server
 * busy (its event loop blocked) that long per item asked for in a CreateMonitoredItems, as a loaded
 * server is: run it in its own process (opcua-server-process.ts) so the client is not blocked too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opcua from 'node-opcua';

export interface TestServerOptions {
  port?: number;
  /** Default: SignAndEncrypt only. */
  securityModes?: opcua.MessageSecurityMode[];
  /** Default: Basic256Sha256 and Aes256_Sha256_RsaPss. */
  securityPolicies?: opcua.SecurityPolicy[];
  allowAnonymous?: boolean;
  /** user name → password. */
  users?: Record<string, string>;
  /** Re-use a PKI folder (for a restart with the same certificate and trust list). */
  pkiRoot?: string;
  /** Server applicationUri (its certificate carries it). */
  applicationUri?: string;
  /** Certificate file/private key to use instead of the generated one (e.g. an expired one). */
  certificateFile?: string;
  privateKeyFile?: string;
  /** Extra host names in the generated certificate (default ['localhost']). */
  alternateHostname?: string[];
  /** Trust every client certificate (tests that are not about the server-side trust step). */
  trustAllClients?: boolean;
  /** Extra Double variables ns=1;s=Bulk.<i>, value i. */
  bulkVariables?: number;
  /** ServerCapabilities.OperationLimits.MaxMonitoredItemsPerCall (0: no limit stated). */
  maxMonitoredItemsPerCall?: number;
  /** Busy time of the server per item in a CreateMonitoredItems request (ms, event loop blocked). */
  createMonitoredItemsMsPerItem?: number;
  /** Hold every Write request this long before carrying it out (ms; the server stays responsive meanwhile). */
  writeDelayMs?: number;
}

export interface TestServer {
  server: opcua.OPCUAServer;
  port: number;
  endpointUrl: string;
  pkiRoot: string;
  serverCertificateManager: opcua.OPCUACertificateManager;
  userCertificateManager: opcua.OPCUACertificateManager;
  /** Monitored items alive on the server (every session, every subscription). */
  monitoredItemCount(): number;
  /** Parameters the server granted to every monitored item of every session. */
  monitoredItems(): Array<{ nodeId: string; queueSize: number; discardOldest: boolean; samplingInterval: number }>;
  /** Write requests received so far (carried out or still held by writeDelayMs). */
  writesReceived(): number;
  /** The value last sent to nodeId in a Write request (Drive1.Speed is also moved by the server every 100 ms, so its current value does not show a write). */
  lastWrittenValue(nodeId: string): unknown;
  sessionCount(): number;
  /** Subscriptions alive on the server (every session). */
  subscriptionCount(): number;
  /** Close every session from the server side (as an admin tool or a server timeout would). */
  closeSessions(): Promise<void>;
  deleteNode(nodeId: string): void;
  /** Re-add Drive1.Current after deleteNode (same NodeId). */
  addCurrent(): void;
  setValue(nodeId: string, value: number): void;
  stop(): Promise<void>;
  /** Stop and remove the PKI folder. */
  dispose(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const pkiRoot = options.pkiRoot ?? mkdtempSync(join(tmpdir(), 'uns-opcua-server-'));
  const serverCertificateManager = new opcua.OPCUACertificateManager({ rootFolder: join(pkiRoot, 'pki'), automaticallyAcceptUnknownCertificate: false });
  const userCertificateManager = new opcua.OPCUACertificateManager({ rootFolder: join(pkiRoot, 'user-pki'), automaticallyAcceptUnknownCertificate: false });
  await serverCertificateManager.initialize();
  await userCertificateManager.initialize();
  const users = options.users ?? {};
  const server = new opcua.OPCUAServer({
    port: options.port ?? 0,
    hostname: 'localhost',
    alternateHostname: options.alternateHostname ?? ['localhost'],
    securityModes: options.securityModes ?? [opcua.MessageSecurityMode.SignAndEncrypt],
    securityPolicies: options.securityPolicies ?? [opcua.SecurityPolicy.Basic256Sha256, opcua.SecurityPolicy.Aes256_Sha256_RsaPss],
    allowAnonymous: options.allowAnonymous ?? true,
    serverCertificateManager,
    userCertificateManager,
    serverInfo: { applicationUri: options.applicationUri ?? 'urn:localhost:uns-edge-test-server', productUri: 'uns-edge-test-server', applicationName: { text: 'uns-edge test server' } },
    certificateFile: options.certificateFile,
    privateKeyFile: options.privateKeyFile,
    userManager: { isValidUser: (user: string, password: string) => users[user] !== undefined && users[user] === password },
    nodeset_filename: [opcua.nodesets.standard],
    ...(options.maxMonitoredItemsPerCall !== undefined ? { serverCapabilities: { operationLimits: { maxMonitoredItemsPerCall: options.maxMonitoredItemsPerCall } } } : {}),
  });
  if (options.createMonitoredItemsMsPerItem) {
    const msPerItem = options.createMonitoredItemsMsPerItem;
    const internals = server as unknown as { _on_CreateMonitoredItemsRequest(message: { request: { itemsToCreate?: unknown[] } }, channel: unknown): void };
    const original = internals._on_CreateMonitoredItemsRequest.bind(server);
    internals._on_CreateMonitoredItemsRequest = (message, channel) => {
      const until = Date.now() + msPerItem * (message.request.itemsToCreate?.length ?? 0);
      while (Date.now() < until) { /* a busy server: nothing else is served meanwhile */ }
      original(message, channel);
    };
  }
  await server.initialize();
  if (options.trustAllClients) serverCertificateManager.automaticallyAcceptUnknownCertificate = true;
  const addressSpace = server.engine.addressSpace!;
  const namespace = addressSpace.getOwnNamespace();
  const drive = namespace.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Drive1', nodeId: 's=Drive1' });
  const speed = namespace.addAnalogDataItem({
    componentOf: drive, browseName: 'Speed', nodeId: 's=Drive1.Speed', dataType: 'Double',
    engineeringUnitsRange: { low: 0, high: 1500 }, engineeringUnits: opcua.standardUnits.revolutions_per_minute,
    accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite', minimumSamplingInterval: 50,
  });
  speed.setValueFromSource({ dataType: opcua.DataType.Double, value: 100 });
  let current: opcua.UAVariable | undefined;
  const addCurrent = () => {
    current = namespace.addAnalogDataItem({
      componentOf: drive, browseName: 'Current', nodeId: 's=Drive1.Current', dataType: 'Double',
      engineeringUnitsRange: { low: 0, high: 100 }, engineeringUnits: opcua.standardUnits.ampere,
      accessLevel: 'CurrentRead', userAccessLevel: 'CurrentRead', minimumSamplingInterval: 50,
    });
    current.setValueFromSource({ dataType: opcua.DataType.Double, value: 1 });
  };
  addCurrent();
  namespace.addVariable({ componentOf: drive, browseName: 'Mode', nodeId: 's=Drive1.Mode', dataType: 'Int32',
    accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite', value: { dataType: opcua.DataType.Int32, value: 1 } });
  namespace.addVariable({ componentOf: drive, browseName: 'Name', nodeId: 's=Drive1.Name', dataType: 'String',
    accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite', value: { dataType: opcua.DataType.String, value: 'pump' } });
  namespace.addVariable({ componentOf: drive, browseName: 'Running', nodeId: 's=Drive1.Running', dataType: 'Boolean',
    accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite', value: { dataType: opcua.DataType.Boolean, value: false } });
  const reset = namespace.addMethod(drive, {
    browseName: 'ResetFault', nodeId: 's=Drive1.ResetFault',
    inputArguments: [{ name: 'code', dataType: opcua.DataType.Int32 }],
    outputArguments: [{ name: 'done', dataType: opcua.DataType.Boolean }],
  });
  reset.bindMethod((inputArguments: opcua.Variant[], _context: opcua.ISessionContext, callback: opcua.CallbackT<opcua.CallMethodResultOptions>) => {
    callback(null, { statusCode: opcua.StatusCodes.Good, outputArguments: [{ dataType: opcua.DataType.Boolean, value: inputArguments[0].value === 7 }] });
  });

  const ramp = namespace.addMethod(drive, {
    browseName: 'SetRamp', nodeId: 's=Drive1.SetRamp',
    inputArguments: [{ name: 'seconds', dataType: opcua.resolveNodeId('Duration') }],
    outputArguments: [{ name: 'applied', dataType: opcua.DataType.Double }],
  });
  ramp.bindMethod((inputArguments: opcua.Variant[], _context: opcua.ISessionContext, callback: opcua.CallbackT<opcua.CallMethodResultOptions>) => {
    callback(null, { statusCode: opcua.StatusCodes.Good, outputArguments: [{ dataType: opcua.DataType.Double, value: inputArguments[0].value }] });
  });

  let writesReceived = 0;
  const lastWritten = new Map<string, unknown>();
  type WriteMessage = { request: { nodesToWrite?: Array<{ nodeId: opcua.NodeId; value: { value: opcua.Variant } }> } };
  const writeInternals = server as unknown as { _on_WriteRequest(message: WriteMessage, channel: unknown): void };
  const originalWrite = writeInternals._on_WriteRequest.bind(server);
  writeInternals._on_WriteRequest = (message, channel) => {
    writesReceived++;
    for (const item of message.request.nodesToWrite ?? []) lastWritten.set(item.nodeId.toString(), item.value.value.value);
    if (options.writeDelayMs) setTimeout(() => originalWrite(message, channel), options.writeDelayMs);
    else originalWrite(message, channel);
  };
  const bulk = namespace.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Bulk', nodeId: 's=Bulk' });
  for (let i = 0; i < (options.bulkVariables ?? 0); i++) {
    namespace.addVariable({ componentOf: bulk, browseName: `Bulk${i}`, nodeId: `s=Bulk.${i}`, dataType: 'Double',
      minimumSamplingInterval: 100, value: { dataType: opcua.DataType.Double, value: i } });
  }

  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    speed.setValueFromSource({ dataType: opcua.DataType.Double, value: 100 + (tick % 50) });
    current?.setValueFromSource({ dataType: opcua.DataType.Double, value: 1 + (tick % 10) / 10 });
  }, 100);

  await server.start();
  const port = server.endpoints[0].port;
  const monitoredItemCount = () => {
    let count = 0;
    for (const session of server.engine.currentSessionCount ? Object.values((server.engine as unknown as { _sessions: Record<string, opcua.ServerSession> })._sessions) : []) {
      for (const subscription of session.publishEngine.subscriptions) count += subscription.monitoredItemCount;
    }
    for (const subscription of (server.engine as unknown as { _orphanPublishEngine?: { subscriptions: opcua.Subscription[] } })._orphanPublishEngine?.subscriptions ?? []) count += subscription.monitoredItemCount;
    return count;
  };
  const monitoredItems = () => Object.values((server.engine as unknown as { _sessions: Record<string, opcua.ServerSession> })._sessions)
    .flatMap((session) => session.publishEngine.subscriptions)
    .flatMap((subscription) => [...(subscription as unknown as { monitoredItems: Map<number, opcua.MonitoredItem> }).monitoredItems.values()])
    .map((item) => ({ nodeId: String(item.itemToMonitor.nodeId), queueSize: item.queueSize, discardOldest: item.discardOldest, samplingInterval: item.samplingInterval }));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    await server.shutdown(0);
  };
  return {
    server, port, endpointUrl: `opc.tcp://localhost:${port}`, pkiRoot, serverCertificateManager, userCertificateManager,
    monitoredItemCount,
    monitoredItems,
    writesReceived: () => writesReceived,
    lastWrittenValue: (nodeId: string) => lastWritten.get(nodeId),
    sessionCount: () => server.engine.currentSessionCount,
    subscriptionCount: () => Object.values((server.engine as unknown as { _sessions: Record<string, opcua.ServerSession> })._sessions)
      .reduce((n, session) => n + session.publishEngine.subscriptions.length, 0),
    closeSessions: async () => {
      const sessions = Object.values((server.engine as unknown as { _sessions: Record<string, opcua.ServerSession> })._sessions);
      for (const session of sessions) await server.engine.closeSession(session.authenticationToken, false, 'Terminated');
    },
    deleteNode: (nodeId) => {
      const node = addressSpace.findNode(nodeId);
      if (node) addressSpace.deleteNode(node);
      if (nodeId === 's=Drive1.Current' || nodeId === 'ns=1;s=Drive1.Current') current = undefined;
    },
    addCurrent,
    setValue: (nodeId, value) => (addressSpace.findNode(nodeId) as opcua.UAVariable).setValueFromSource({ dataType: opcua.DataType.Double, value }),
    stop,
    dispose: async () => {
      await stop();
      if (!options.pkiRoot) rmSync(pkiRoot, { recursive: true, force: true });
    },
  };
}
