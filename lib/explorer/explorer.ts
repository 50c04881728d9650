/**
 * The UNS explorer of one broker (docs/explorer.md): its own MQTT connection (lib/mqtt/connection.ts)
 * subscribed to `#` at QoS 0, read-only (it never publishes, has no Will, asks nothing of anyone),
 * feeding a bounded TopicTree; Sparkplug B topics are decoded through a SparkplugView.
 */
import { MqttConnection, type ConnectionState, type MqttConnectionOptions } from '../mqtt/connection';
import { NAMESPACE, parseTopic } from '../sparkplug/topics';
import { SparkplugView, type BirthLookup, type SparkplugLimits } from './sparkplug';
import { TopicTree, type TreeLimits, type TreeStats } from './tree';

/** Every topic but the broker's own ($SYS/…: MQTT v5.0 §4.7.2, `#` does not match them). */
export const EXPLORER_FILTER = '#';

export interface ExplorerOptions {
  mqtt: Omit<MqttConnectionOptions, 'clean' | 'sessionExpirySec' | 'will'>;
  limits?: Partial<TreeLimits & SparkplugLimits>;
  /** The deployed uns-sparkplug-host's birth cache, asked when it is there. */
  birthLookup?: () => BirthLookup | undefined;
  now?: () => number;
}

export interface ExplorerStatus {
  state: ConnectionState;
  broker: string;
  /** Why the last attempt failed, while not connected. */
  error?: string;
  tree: TreeStats;
  sparkplugBirthMetrics: number;
}

export class UnsExplorer {
  readonly tree: TopicTree;
  private readonly sparkplug: SparkplugView;
  private readonly connection: MqttConnection;
  private lastError: string | undefined;

  constructor(options: ExplorerOptions) {
    const limits = options.limits ?? {};
    this.tree = new TopicTree(limits, options.now);
    this.sparkplug = new SparkplugView(limits, options.birthLookup);
    this.connection = new MqttConnection({ ...options.mqtt, clean: true, sessionExpirySec: 0 });
    this.connection.on('state', (state, detail) => {
      if (state === 'connected') this.lastError = undefined;
      else if (detail !== undefined) this.lastError = detail;
    });
    // A new session gets every retained message again: start from an empty tree, not a stale one.
    this.connection.on('connected', () => this.tree.clear());
    this.connection.subscribe(EXPLORER_FILTER, 0, (topic, payload, packet) => this.onMessage(topic, payload, packet.retain === true));
  }

  start(): void {
    this.connection.start();
  }

  close(): Promise<void> {
    this.connection.removeAllListeners();
    return this.connection.close();
  }

  status(): ExplorerStatus {
    return {
      state: this.connection.state,
      broker: this.connection.description,
      ...(this.lastError !== undefined && !this.connection.connected ? { error: this.lastError } : {}),
      tree: this.tree.stats(),
      sparkplugBirthMetrics: this.sparkplug.keptBirthMetrics,
    };
  }

  /** One message from the broker (public for tests that feed the tree without a broker). */
  onMessage(topic: string, payload: Buffer, retained: boolean): void {
    const parsed = topic.startsWith(`${NAMESPACE}/`) && payload.length > 0 ? parseTopic(topic) : undefined;
    if (parsed === undefined || parsed.kind === 'state') {
      this.tree.update(topic, payload, retained);
      return;
    }
    const levels = topic.split('/');
    const view = this.sparkplug.view(parsed, payload);
    // A BIRTH describes the whole node or device: the metrics of an earlier session go.
    if (parsed.type === 'NBIRTH' || parsed.type === 'DBIRTH') this.tree.removeChildren(levels);
    this.tree.putDecoded(levels, view.summary, payload.length, retained);
    for (const metric of view.metrics) this.tree.putDecoded([...levels, ...metric.levels], metric.value, 0, retained);
  }
}
