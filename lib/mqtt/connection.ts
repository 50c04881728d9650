/**
 * One MQTT 3.1.1 / 5.0 connection to the UNS broker, around MQTT.js, as an explicit state machine:
 *
 *   idle ──start()──▶ connecting ──CONNACK ok──▶ connected
 *                        ▲   │ error/close/timeout      │ connection lost
 *                        │   ▼                           ▼
 *                        └─ backoff ◀────────────────────┘
 *   any state ──close()──▶ closed
 *
 * - A new MQTT.js client per attempt, with MQTT.js's own reconnect off (reconnectPeriod 0): this
 *   class owns the retry timer, with exponential backoff and jitter.
 * - Subscriptions are kept here and requested on every connect that starts a new session (MQTT
 *   v5.0 §3.8, v3.1.1 §3.8: a clean session starts with none). When the broker resumes a
 *   persistent session (clean = false and CONNACK Session Present = 1), the subscriptions it
 *   granted in that session are not sent again: they are part of the session state the broker
 *   holds (v3.1.1 §3.1.2.4 [MQTT-3.1.2-4], §3.2.2.2; v5.0 §3.2.2.1.1, §4.1), as MQTT.js's own
 *   resubscribe decides. Sending them again would replace them (v3.1.1 §3.8.4 [MQTT-3.8.4-3],
 *   v5.0 §3.8.4), re-send every retained message that matches, and, on NATS during a JetStream
 *   leader election, fail or hang (measured: docs/scaling.md). Only what the session does not
 *   hold is sent: filters added or raised in QoS meanwhile, and those never granted. A filter
 *   removed while disconnected is UNSUBSCRIBEd from the resumed session. If a connection to
 *   another server of the list finds no session although one was expected, the servers do not
 *   share sessions (independent brokers): from then on, a connection to another server than
 *   the previous one sends every subscription again.
 *   With MQTT 5 each filter gets a subscription identifier (§3.8.2.1.2) so a message is routed
 *   only to the subscriptions it matched.
 * - A subscription the broker refuses (SUBACK reason code ≥ 0x80, v3.1.1 §3.9.3, v5.0 §3.9.3)
 *   or does not answer within subackTimeoutMs is retried while connected, with the backoff of
 *   the connection (initialMs…maxMs, doubling, jitter); one 'subscribeFailed' per outage of that
 *   subscription and one 'subscribed' (afterFailure = true) when the broker grants it at last.
 *   unsubscribe(), close() and the end of the connection cancel the retry.
 * - One 'down' event per outage (not per retry) and one 'up' when it ends: for one log line each.
 * - Unacknowledged QoS ≥ 1 publishes of a lost connection are handed out in the 'lost' event, so
 *   store-and-forward can keep them (lib/mqtt/inflight-store.ts).
 * - For session-oriented protocols on top (Sparkplug B): a Will built afresh for every CONNECT,
 *   a 'subscribed' event per SUBACK, a DISCONNECT reason code (MQTT v5.0 §3.14.2.1), and
 *   reconnect() to end a session on purpose and start a new one at once.
 * - A server list (lib/mqtt/server-list.ts, docs/scaling.md): one server at a time; after a failure
 *   the next one is tried at once until every server of the list failed in this round, then the
 *   backoff applies (bounded retries: at most one attempt per server per backoff step). A
 *   connection that ends within STABLE_CONNECTION_MS of its CONNACK counts as a failed attempt,
 *   so a broker that accepts and then closes (e.g. on a topic it refuses) is not hammered.
 * - With clean = false (and a Session Expiry for MQTT 5) another node of a broker cluster resumes
 *   the session on failover: its subscriptions and the QoS 1 messages queued for it.
 */
import { EventEmitter } from 'node:events';
import { connect, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient, type PacketCallback } from 'mqtt';
import { InflightStore } from './inflight-store';
import { encodeQos0Publish } from './publish-packet';
import { reasonText } from './broker-rules';
import { ServerRotation, serverUrl, type MqttServer, type ServerOrder } from './server-list';
import { topicMatches, withoutSharePrefix } from '../uns/topics';
import { counter, gauge } from '../runtime/metrics';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';
export type QoS = 0 | 1 | 2;

export interface TlsOptions {
  /** PEM: CA certificate(s) that sign the broker's certificate. */
  ca?: string | Buffer;
  /** PEM: client certificate and private key, for client-certificate authentication. */
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  /** SNI and the name checked against the broker's certificate, when not the host. */
  servername?: string;
  /** Refuse brokers whose certificate does not verify. Default true; there is no plaintext fallback. */
  rejectUnauthorized?: boolean;
}

export interface BackoffOptions {
  /** First retry delay (ms). */
  initialMs: number;
  /** Longest retry delay (ms). */
  maxMs: number;
  /** Fraction of each delay that is random, 0…1: delay = d·(1 − jitter·random()). */
  jitter: number;
}

export interface MqttConnectionOptions {
  /** The first server (used alone when `servers` is not given). */
  host: string;
  port: number;
  /** Every server to try, in the configured order (the first is normally {host, port}). */
  servers?: MqttServer[];
  /** How the list is walked (lib/mqtt/server-list.ts). Default 'ordered'. */
  serverOrder?: ServerOrder;
  /** Label for /metrics (the config node id); without it the connection is not on /metrics. */
  name?: string;
  /** TLS (mqtts) when set. */
  tls?: TlsOptions;
  protocolVersion: 4 | 5;
  /** Stable across restarts, so a persistent session (clean = false) is found again. */
  clientId: string;
  username?: string;
  password?: string;
  keepaliveSec: number;
  /** Clean session (3.1.1) / clean start (5.0). */
  clean: boolean;
  /** MQTT 5 Session Expiry Interval (§3.1.2.11.2), for clean = false. */
  sessionExpirySec?: number;
  connectTimeoutMs: number;
  /** How long a SUBSCRIBE may wait for its SUBACK before it is sent again (default connectTimeoutMs). */
  subackTimeoutMs?: number;
  backoff: BackoffOptions;
  /** For tests: a seeded random source for the jitter. */
  random?: () => number;
  /** Called before every CONNECT attempt: the Will to register with it (none when undefined). */
  will?: () => WillMessage | undefined;
}

export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

/** The Will Message of one CONNECT (MQTT v5.0 §3.1.2.5, §3.1.3.2–3.1.3.3). */
export interface WillMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
}

/** What a DISCONNECT says (MQTT 5 only; MQTT 3.1.1's DISCONNECT has no fields). */
export interface DisconnectOptions {
  /** MQTT v5.0 §3.14.2.1, e.g. 0x04 "Disconnect with Will Message". */
  reasonCode?: number;
}

export interface ConnectionEvents {
  /** Every state transition; `detail` is the reason for backoff/closed. */
  state: [state: ConnectionState, detail: string | undefined];
  /** Connected, and the subscriptions the session does not hold requested. */
  connected: [connack: IConnackPacket];
  /** An outage began (first failure after being connected, or of the first attempt). Once per outage. */
  down: [reason: string];
  /** The outage that 'down' reported is over. */
  up: [outageMs: number];
  /** Unacknowledged publishes of a connection that ended, oldest first. */
  lost: [packets: IPublishPacket[]];
  /** The broker refused a subscription or did not answer it; retried with backoff. Once per outage of that subscription. */
  subscribeFailed: [filter: string, reason: string];
  /**
   * The broker granted a subscription (SUBACK), whenever one is sent: on a connect that starts a new
   * session, a new filter, a retry. `afterFailure`: this ends the outage 'subscribeFailed' reported.
   */
  subscribed: [filter: string, grantedQos: number, afterFailure: boolean];
  /** The broker granted a lower QoS than asked (MQTT v5.0 §3.9.3, v3.1.1 §3.9.3): messages may be lost at QoS 0. */
  downgraded: [filter: string, requestedQos: QoS, grantedQos: number];
  /** Connected to another server than the previous connection (after a failover). */
  failover: [from: string, to: string];
  /** The socket's write buffer emptied after a write found it full (Node's 'drain'). */
  drain: [];
}

interface Subscription {
  filter: string;
  /** The filter without a $share prefix: what received topics are matched against. */
  matchFilter: string;
  qos: QoS;
  identifier: number;
  handlers: MessageHandler[];
  /** The QoS of this filter's SUBSCRIBE the broker granted in the current session; undefined: none yet or session gone. */
  sessionQos: QoS | undefined;
  /** Numbers the SUBSCRIBEs of this filter: only the answer to the latest counts. */
  attempt: number;
  /** Failed attempts in a row on this connection, for the retry backoff. */
  failures: number;
  /** 'subscribeFailed' was emitted and no grant followed yet. */
  failing: boolean;
  /** The SUBACK timeout of the pending attempt, or the delay before the next one. */
  timer: NodeJS.Timeout | undefined;
}

const PUBLISH_OPTIONS: Record<string, { qos: QoS; retain: boolean }> = {};
for (const qos of [0, 1, 2] as const) {
  for (const retain of [false, true]) PUBLISH_OPTIONS[`${qos}${retain}`] = { qos, retain };
}

const GRACEFUL_CLOSE_MS = 2000;
/** A connection that ends sooner than this after its CONNACK is a failed attempt for the backoff. */
const STABLE_CONNECTION_MS = 2000;

/** Live connections that have a metrics name, for the /metrics gauge below. */
const named = new Set<MqttConnection>();
gauge({
  name: 'uns_edge_mqtt_server_connected',
  help: 'The server of the list a broker connection uses now (label server): 1 connected, 0 trying it',
  labelNames: ['broker', 'server'],
  collect() {
    this.reset();
    for (const connection of named) {
      if (connection.state !== 'closed' && connection.state !== 'idle') this.set({ broker: connection.options.name ?? '', server: connection.description }, connection.connected ? 1 : 0);
    }
  },
});
const failovers = counter({
  name: 'uns_edge_mqtt_failovers_total',
  help: 'Connections made to another server of the list than the previous connection',
  labelNames: ['broker'],
});

function noLog(): void {}

/**
 * True when MQTT.js writes a publish at once: connected, not ending, and not holding publishes back
 * while it resends its outgoing store after a connect (MqttClient._storeProcessing and
 * _storeProcessingQueue in MQTT.js 5; test/unit/mqtt-publish-packet.spec.ts fails if an upgrade
 * renames them, and until then every QoS 0 publish takes MQTT.js's own, slower path).
 */
function holdsNoPublishes(client: MqttClient): boolean {
  const internals = client as unknown as { _storeProcessing?: unknown; _storeProcessingQueue?: unknown };
  return client.connected && !client.disconnecting && internals._storeProcessing === false
    && Array.isArray(internals._storeProcessingQueue) && internals._storeProcessingQueue.length === 0;
}

/** Longest subscription identifier (MQTT v5.0 §3.8.2.1.2: a Variable Byte Integer, 1…268,435,455). */
const MAX_SUBSCRIPTION_ID = 268435455;

export class MqttConnection extends EventEmitter<ConnectionEvents> {
  private stateValue: ConnectionState = 'idle';
  private client: MqttClient | undefined;
  private inflight: InflightStore | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private lastError: string | undefined;
  private outageSince: number | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly byIdentifier = new Map<number, Subscription>();
  private nextIdentifier = 1;
  /** Filters the broker's session holds that were unsubscribed while disconnected: UNSUBSCRIBEd on resume. */
  private readonly unsubscribeOnResume = new Set<string>();
  /** False once a failover found no session although one was expected: the servers are independent brokers. */
  private serversShareSessions = true;
  private readonly random: () => number;
  /** Clients ended by reconnect() whose DISCONNECT is still on its way, with their fallback timers. */
  private readonly ending = new Map<MqttClient, NodeJS.Timeout>();
  private readonly rotation: ServerRotation;
  /** When the current connection got its CONNACK, and the attempt count before it was reset. */
  private connectedAt = 0;
  private attemptBeforeConnect = 0;
  /** The server of the last established connection (to tell a failover). */
  private lastConnectedServer: string | undefined;
  /** The last PUBLISH of the current connection (topic undefined: none yet), named when the broker closes right after it. */
  private lastPublishTopic: string | undefined;
  private lastPublishQos: QoS = 0;
  /** The socket held corked until the end of this event-loop turn (see corkForTurn). */
  private corkedStream: MqttClient['stream'] | undefined;

  constructor(readonly options: MqttConnectionOptions) {
    super();
    this.random = options.random ?? Math.random;
    const servers = options.servers !== undefined && options.servers.length > 0 ? options.servers : [{ host: options.host, port: options.port }];
    this.rotation = new ServerRotation(servers, options.serverOrder ?? 'ordered', this.random);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get connected(): boolean {
    return this.stateValue === 'connected';
  }

  /** Bytes written to the socket and not yet sent (for pacing QoS 0 bursts, which have no flow control). */
  get bufferedBytes(): number {
    return this.client?.stream?.writableLength ?? 0;
  }

  /** QoS 1/2 publishes sent on this connection and not yet acknowledged by the broker. */
  get unacknowledged(): number {
    return this.inflight?.size ?? 0;
  }

  /** The server in use (or being tried) as text for logs, status and metrics, without credentials. */
  get description(): string {
    return serverUrl(this.rotation.current, this.options.tls !== undefined);
  }

  /** Every server of the list, as text, in the configured order. */
  get serverDescriptions(): string[] {
    return this.rotation.servers.map((server) => serverUrl(server, this.options.tls !== undefined));
  }

  start(): void {
    if (this.stateValue !== 'idle') return;
    if (this.options.name !== undefined) named.add(this);
    this.connectNow();
  }

  /**
   * Publish on the live connection. Only call while `connected`. Returns the packet identifier
   * (0 for QoS 0). `callback` gets (undefined, publishPacket) once the broker acknowledged a QoS 1/2
   * message, or an error; it is not called for QoS 0. Throws a RangeError, before writing anything,
   * for a QoS 0 topic over 65,535 bytes or a packet over 256 MiB (lib/mqtt/publish-packet.ts).
   */
  publish(topic: string, payload: string | Buffer, qos: QoS, retain: boolean, callback: PacketCallback): number {
    const client = this.client;
    const inflight = this.inflight;
    if (client === undefined || inflight === undefined || this.stateValue !== 'connected') throw new Error('not connected');
    inflight.lastPutMessageId = 0;
    this.lastPublishTopic = topic;
    this.lastPublishQos = qos;
    this.corkForTurn(client.stream);
    if (qos === 0) {
      // QoS 0 has no acknowledgement to wait for (MQTT v5.0 §4.3.1): nothing of MQTT.js's state is
      // involved, so the packet goes to the socket in one Buffer (lib/mqtt/publish-packet.ts) unless
      // MQTT.js holds publishes back, which this one must not overtake. Never through MQTT.js with a
      // callback: it adds a once('drain') listener for every QoS 0 publish that carries one while the
      // socket is backed up, and removing tens of thousands of them is quadratic (93 % of CPU in
      // bench/uns-out-throughput.ts).
      if (holdsNoPublishes(client)) client.stream.write(encodeQos0Publish(topic, payload, retain, this.options.protocolVersion));
      else client.publish(topic, payload, PUBLISH_OPTIONS[`${qos}${retain}`]);
    } else {
      client.publish(topic, payload, PUBLISH_OPTIONS[`${qos}${retain}`], callback);
    }
    return inflight.lastPutMessageId;
  }

  /**
   * Hold the socket's writes until the end of this event-loop turn, so the publishes of every tag
   * batch handled in the turn leave in one socket write (one writev syscall) instead of one per
   * batch: mqtt-packet already corks per packet and uncorks on the next tick, which joins only the
   * publishes of one synchronous run. Corking changes no order and keeps every packet in the
   * stream's buffer (writableLength, so bufferedBytes and 'drain' still see it); QoS ≥ 1 packets
   * are in the inflight store before they are written, so a connection lost meanwhile hands them
   * to store-and-forward as before. end() uncorks fully; a destroyed socket drops what it held.
   */
  private corkForTurn(stream: MqttClient['stream']): void {
    if (this.corkedStream === stream) return;
    this.corkedStream = stream;
    stream.cork();
    setImmediate(() => {
      if (this.corkedStream === stream) this.corkedStream = undefined;
      stream.uncork();
    });
  }

  /** Subscribe `handler` to a topic filter (may be `$share/<group>/<filter>`); kept across reconnects. */
  subscribe(filter: string, qos: QoS, handler: MessageHandler): void {
    let subscription = this.subscriptions.get(filter);
    if (subscription === undefined) {
      const identifier = this.nextIdentifier;
      this.nextIdentifier = identifier >= MAX_SUBSCRIPTION_ID ? 1 : identifier + 1;
      subscription = {
        filter, matchFilter: withoutSharePrefix(filter), qos, identifier, handlers: [],
        sessionQos: undefined, attempt: 0, failures: 0, failing: false, timer: undefined,
      };
      this.subscriptions.set(filter, subscription);
      this.byIdentifier.set(identifier, subscription);
      this.unsubscribeOnResume.delete(filter);
      subscription.handlers.push(handler);
      this.requestSubscription(subscription);
      return;
    }
    subscription.handlers.push(handler);
    if (qos > subscription.qos) {
      subscription.qos = qos;
      subscription.failures = 0;
      this.requestSubscription(subscription);
    }
  }

  /** Remove `handler`; the filter is unsubscribed at the broker when its last handler goes. */
  unsubscribe(filter: string, handler: MessageHandler): void {
    const subscription = this.subscriptions.get(filter);
    if (subscription === undefined) return;
    subscription.handlers = subscription.handlers.filter((h) => h !== handler);
    if (subscription.handlers.length > 0) return;
    this.subscriptions.delete(filter);
    this.byIdentifier.delete(subscription.identifier);
    clearSubscriptionTimer(subscription);
    // 'down' is emitted after the client is gone and before the state leaves 'connected'.
    if (this.client !== undefined && this.connected) this.client.unsubscribe(filter);
    else if (!this.options.clean && subscription.sessionQos !== undefined) this.unsubscribeOnResume.add(filter);
  }

  /**
   * End the connection and every timer. Unacknowledged publishes are handed out in 'lost' first.
   * When nothing is outstanding, a DISCONNECT is sent (MQTT v5.0 §3.14, v3.1.1 §3.14) so the broker
   * sees a normal end; otherwise the socket is closed at once (the lost publishes are kept by
   * store-and-forward and sent again later: at least once).
   */
  close(disconnect: DisconnectOptions = {}): Promise<void> {
    if (this.stateValue === 'closed') return Promise.resolve();
    this.clearRetryTimer();
    for (const [client, fallback] of this.ending) {
      clearTimeout(fallback);
      client.end(true);
    }
    this.ending.clear();
    const client = this.client;
    const graceful = client !== undefined && client.connected && Object.keys(client.outgoing).length === 0;
    this.transition('closed', undefined);
    named.delete(this);
    if (this.options.name !== undefined) failovers.remove({ broker: this.options.name });
    this.abandonClient();
    if (client === undefined) return Promise.resolve();
    if (!graceful) {
      client.end(true);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // A broker that never closes its side must not hold up a redeploy.
      const fallback = setTimeout(() => client.end(true, {}, () => resolve()), GRACEFUL_CLOSE_MS);
      client.end(false, this.disconnectPacket(disconnect), () => {
        clearTimeout(fallback);
        resolve();
      });
    });
  }

  /**
   * End the current session on purpose with a DISCONNECT and start a new one at once (a new
   * CONNECT, with a Will built afresh). Only while connected; unacknowledged publishes go out in
   * 'lost' first, as on any connection loss.
   */
  reconnect(disconnect: DisconnectOptions = {}): void {
    if (!this.endSession(disconnect)) return;
    this.connectNow();
  }

  /**
   * End the current session on purpose with a DISCONNECT and go on with the next server of the
   * list (Sparkplug B 3.0 §5.9: the Primary Host is offline on this server
   * [tck-id-operational-behavior-primary-application-state-with-multiple-servers-walk]). Counts as
   * a failed attempt: at once while the round has untried servers, then with backoff. `reason`
   * is the state detail meanwhile. Only while connected.
   */
  failover(reason: string, disconnect: DisconnectOptions = {}): void {
    if (!this.endSession(disconnect)) return;
    this.lastError = reason;
    this.attempt = this.stableConnectionEnded() ? 0 : this.attemptBeforeConnect;
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.emit('down', reason);
    }
    this.scheduleRetry();
  }

  /** DISCONNECT the current client (in the background) and detach it; false when not connected. */
  private endSession(disconnect: DisconnectOptions): boolean {
    const client = this.client;
    if (client === undefined || this.stateValue !== 'connected') return false;
    this.client = undefined;
    this.clearSubscriptionTimers();
    const lost = this.inflight?.takeUnackedPublishes() ?? [];
    this.inflight = undefined;
    if (lost.length > 0) this.emit('lost', lost);
    const fallback = setTimeout(() => {
      this.ending.delete(client);
      client.end(true);
    }, GRACEFUL_CLOSE_MS);
    this.ending.set(client, fallback);
    client.end(false, this.disconnectPacket(disconnect), () => {
      clearTimeout(fallback);
      this.ending.delete(client);
    });
    return true;
  }

  private stableConnectionEnded(): boolean {
    return Date.now() - this.connectedAt >= STABLE_CONNECTION_MS;
  }

  private disconnectPacket(disconnect: DisconnectOptions): { reasonCode?: number } {
    return this.options.protocolVersion === 5 && disconnect.reasonCode !== undefined ? { reasonCode: disconnect.reasonCode } : {};
  }

  // ---- life cycle ----

  private connectNow(): void {
    this.retryTimer = undefined;
    this.transition('connecting', undefined);
    const inflight = new InflightStore();
    const o = this.options;
    const server = this.rotation.current;
    const will = o.will?.();
    this.lastPublishTopic = undefined;
    this.lastError = undefined; // what ends this attempt, not the previous one
    const clientOptions: IClientOptions = {
      host: server.host,
      port: server.port,
      protocol: o.tls ? 'mqtts' : 'mqtt',
      protocolVersion: o.protocolVersion,
      clientId: o.clientId,
      username: o.username || undefined,
      password: o.password || undefined,
      keepalive: o.keepaliveSec,
      clean: o.clean,
      connectTimeout: o.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      outgoingStore: inflight,
      properties: o.protocolVersion === 5 && o.sessionExpirySec ? { sessionExpiryInterval: o.sessionExpirySec } : undefined,
      will,
    };
    if (o.tls) {
      Object.assign(clientOptions, {
        ca: o.tls.ca,
        cert: o.tls.cert,
        key: o.tls.key,
        passphrase: o.tls.passphrase,
        servername: o.tls.servername || undefined,
        rejectUnauthorized: o.tls.rejectUnauthorized !== false,
      });
    }
    let client: MqttClient;
    try {
      client = connect(clientOptions);
    } catch (error) {
      this.lastError = (error as Error).message;
      this.scheduleRetry();
      return;
    }
    this.client = client;
    this.inflight = inflight;
    // MQTT.js logs every packet through the `debug` package (six calls per PUBLISH); with its
    // namespace off each call still costs a lookup (3.8 % of the gateway's CPU in bench/pipeline.ts).
    // Its logger is kept only when DEBUG enables it (DEBUG=mqttjs* still works).
    if ((client.log as { enabled?: boolean }).enabled !== true) client.log = noLog;
    client.on('connect', (connack) => {
      // Commands (DCMD, UNS writes) are small messages that wait on Nagle's algorithm and the
      // broker's delayed ACK (~40 ms a round) without TCP_NODELAY: bench/command-path.ts measured
      // p99 75.8 ms → 9.9 ms with it on every socket of the path. MQTT.js does not set it.
      (client.stream as { setNoDelay?: (noDelay: boolean) => unknown } | undefined)?.setNoDelay?.(true);
      client.stream?.on('drain', () => {
        if (client === this.client) this.emit('drain');
      });
      if (client === this.client) this.onConnected(connack);
    });
    client.on('close', () => {
      // Before CONNACK and without an error: the broker refused the CONNECT by closing. NATS does
      // this for a Will topic with "." or " " (lib/mqtt/broker-rules.ts).
      if (client !== this.client || this.stateValue === 'connected' || this.lastError !== undefined) return;
      const odd = will !== undefined && /[. ]/.test(will.topic) ? `; the Will topic "${will.topic}" has "." or a space, which some brokers refuse (NATS)` : '';
      this.lastError = `connection closed by the broker before CONNACK${odd}`;
    });
    client.on('message', (topic, payload, packet) => {
      if (client === this.client) this.dispatch(topic, payload, packet);
    });
    client.on('error', (error) => {
      // Also keeps an abandoned client's late errors from becoming unhandled 'error' events.
      if (client !== this.client) return;
      this.lastError = error.message;
      if (!client.connected) this.onConnectionEnded();
    });
    client.on('disconnect', (packet) => {
      // MQTT v5.0 §3.14.2.1: the server says why it disconnects us.
      if (client === this.client) this.lastError = `broker sent DISCONNECT, ${reasonText(packet.reasonCode ?? 0)}`;
    });
    client.on('close', () => {
      if (client === this.client) this.onConnectionEnded();
    });
  }

  private onConnected(connack: IConnackPacket): void {
    this.attemptBeforeConnect = this.attempt;
    this.attempt = 0;
    this.connectedAt = Date.now();
    this.lastError = undefined;
    const server = this.description;
    const otherServer = this.lastConnectedServer !== undefined && this.lastConnectedServer !== server;
    if (otherServer) {
      if (this.options.name !== undefined) failovers.inc({ broker: this.options.name });
      this.emit('failover', this.lastConnectedServer!, server);
    }
    this.lastConnectedServer = server;
    const sessionHeld = this.resumeSession(connack, otherServer);
    this.transition('connected', undefined);
    for (const subscription of this.subscriptions.values()) {
      subscription.failures = 0;
      if (!sessionHeld || subscription.sessionQos !== subscription.qos) this.requestSubscription(subscription);
    }
    this.emit('connected', connack);
    if (this.outageSince !== undefined) {
      const outageMs = Date.now() - this.outageSince;
      this.outageSince = undefined;
      this.emit('up', outageMs);
    }
  }

  private onConnectionEnded(): void {
    const wasConnected = this.stateValue === 'connected';
    const reason = this.lastError ?? (wasConnected ? this.closedWhileConnected() : 'connection closed by the broker');
    if (wasConnected && !this.stableConnectionEnded()) this.attempt = this.attemptBeforeConnect;
    this.abandonClient();
    if (this.stateValue === 'closed') return;
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.emit('down', reason);
    }
    this.lastError = reason;
    this.scheduleRetry();
  }

  /**
   * What the broker's session holds after this CONNACK (see the header): true when the
   * subscriptions granted in it need not be sent again. Forgets the grants of a session that is gone.
   */
  private resumeSession(connack: IConnackPacket, otherServer: boolean): boolean {
    // v3.1.1 §3.2.2.2 [MQTT-3.2.2-1]/[MQTT-3.2.2-2], v5.0 §3.2.2.1.1: Session Present is 0 after a
    // clean session/start and when the server had no session for this client id.
    const resumed = !this.options.clean && connack.sessionPresent === true;
    const granted = [...this.subscriptions.values()].some((subscription) => subscription.sessionQos !== undefined);
    if (!resumed) {
      if (!this.options.clean && otherServer && (granted || this.unsubscribeOnResume.size > 0)) this.serversShareSessions = false;
      for (const subscription of this.subscriptions.values()) subscription.sessionQos = undefined;
      this.unsubscribeOnResume.clear();
      return false;
    }
    for (const filter of this.unsubscribeOnResume) this.client?.unsubscribe(filter);
    this.unsubscribeOnResume.clear();
    return !otherServer || this.serversShareSessions;
  }

  /** Detach the current client: hand out what it left unacknowledged, then destroy it. */
  private abandonClient(): void {
    const client = this.client;
    const inflight = this.inflight;
    this.client = undefined;
    this.inflight = undefined;
    this.clearSubscriptionTimers();
    if (inflight !== undefined) {
      const lost = inflight.takeUnackedPublishes();
      if (lost.length > 0) this.emit('lost', lost);
    }
    if (client !== undefined && this.stateValue !== 'closed') client.end(true);
  }

  /**
   * The broker closed a live connection without a DISCONNECT reason (MQTT 3.1.1 has none). A broker
   * that refuses a topic or QoS does this right after the PUBLISH: name the last one.
   */
  private closedWhileConnected(): string {
    if (this.lastPublishTopic === undefined) return 'connection lost';
    return `connection closed by the broker after a PUBLISH to "${this.lastPublishTopic}" (QoS ${this.lastPublishQos}); a broker that refuses a topic or QoS closes the connection (NATS: no "." or space in topics, no QoS 2)`;
  }

  /**
   * Move to the next server. While this round through the list has servers not tried yet, at
   * once; after a whole round failed, exponential backoff with jitter (one attempt per server per step).
   */
  private scheduleRetry(): void {
    this.attempt++;
    this.rotation.advance();
    const size = this.rotation.size;
    const delay = this.attempt % size === 0 ? this.backoffDelay(this.attempt / size - 1) : 0;
    this.transition('backoff', this.lastError);
    this.retryTimer = setTimeout(() => this.connectNow(), delay);
  }

  /** The delay before retry number `round` + 1: initialMs doubling up to maxMs, less a random jitter share. */
  private backoffDelay(round: number): number {
    const { initialMs, maxMs, jitter } = this.options.backoff;
    const exponential = Math.min(maxMs, initialMs * 2 ** Math.min(round, 30));
    return Math.max(0, Math.round(exponential * (1 - jitter * this.random())));
  }

  private clearRetryTimer(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private transition(state: ConnectionState, detail: string | undefined): void {
    this.stateValue = state;
    this.emit('state', state, detail);
  }

  // ---- subscriptions ----

  /**
   * SUBSCRIBE one filter now (while connected), with a SUBACK timeout. A refusal or no answer
   * schedules the next attempt with backoff; only the answer to the latest attempt counts.
   */
  private requestSubscription(subscription: Subscription): void {
    const client = this.client;
    if (client === undefined || !this.connected) return;
    clearSubscriptionTimer(subscription);
    const attempt = ++subscription.attempt;
    const qos = subscription.qos;
    const options = this.options.protocolVersion === 5
      ? { qos, properties: { subscriptionIdentifier: subscription.identifier } }
      : { qos };
    const current = (): boolean => client === this.client && attempt === subscription.attempt && this.subscriptions.get(subscription.filter) === subscription;
    const pendingBefore = new Set(Object.keys(client.outgoing));
    let answered = false; // MQTT.js may call back at once (e.g. while disconnecting)
    client.subscribe(subscription.filter, options, (error, granted) => {
      answered = true;
      if (!current()) return;
      clearSubscriptionTimer(subscription);
      // MQTT v3.1.1 §3.9.3: 0x80 = failure; v5.0 §3.9.3: reason codes ≥ 0x80 are failures.
      const code = granted?.[0]?.qos;
      if (error) this.subscriptionFailed(subscription, error.message);
      else if (code !== undefined && code >= 0x80) this.subscriptionFailed(subscription, reasonText(code));
      else this.subscriptionGranted(subscription, qos, code ?? qos);
    });
    // MQTT.js keeps an unanswered SUBSCRIBE (and its packet identifier) until the connection ends:
    // the one this call added is removed when its SUBACK times out.
    if (answered) return;
    const messageId = Object.keys(client.outgoing).find((id) => !pendingBefore.has(id));
    const timeoutMs = this.options.subackTimeoutMs ?? this.options.connectTimeoutMs;
    subscription.timer = setTimeout(() => {
      subscription.timer = undefined;
      if (!current()) return;
      subscription.attempt++; // its SUBACK, should it still come, is no longer awaited
      if (messageId !== undefined) client.removeOutgoingMessage(Number(messageId));
      this.subscriptionFailed(subscription, `no SUBACK within ${(timeoutMs / 1000).toFixed(1)} s`);
    }, timeoutMs);
  }

  private subscriptionFailed(subscription: Subscription, reason: string): void {
    subscription.sessionQos = undefined;
    if (!subscription.failing) {
      subscription.failing = true;
      this.emit('subscribeFailed', subscription.filter, reason);
    }
    subscription.timer = setTimeout(() => {
      subscription.timer = undefined;
      this.requestSubscription(subscription);
    }, this.backoffDelay(subscription.failures++));
  }

  private subscriptionGranted(subscription: Subscription, requestedQos: QoS, grantedQos: number): void {
    subscription.sessionQos = requestedQos;
    subscription.failures = 0;
    const afterFailure = subscription.failing;
    subscription.failing = false;
    if (grantedQos < requestedQos) this.emit('downgraded', subscription.filter, requestedQos, grantedQos);
    this.emit('subscribed', subscription.filter, grantedQos, afterFailure);
  }

  /** A connection ended: no SUBACK is awaited any more and no retry is due on it. */
  private clearSubscriptionTimers(): void {
    for (const subscription of this.subscriptions.values()) clearSubscriptionTimer(subscription);
  }

  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const identifiers = packet.properties?.subscriptionIdentifier;
    if (identifiers !== undefined) {
      for (const identifier of Array.isArray(identifiers) ? identifiers : [identifiers]) {
        const subscription = this.byIdentifier.get(identifier);
        if (subscription !== undefined) deliver(subscription, topic, payload, packet);
      }
      return;
    }
    for (const subscription of this.subscriptions.values()) {
      if (topicMatches(subscription.matchFilter, topic)) deliver(subscription, topic, payload, packet);
    }
  }
}

function deliver(subscription: Subscription, topic: string, payload: Buffer, packet: IPublishPacket): void {
  const handlers = subscription.handlers;
  for (let i = 0; i < handlers.length; i++) handlers[i](topic, payload, packet);
}

function clearSubscriptionTimer(subscription: Subscription): void {
  if (subscription.timer !== undefined) clearTimeout(subscription.timer);
  subscription.timer = undefined;
}
