/**
 * A list of MQTT servers for one connection: the nodes of a broker cluster, or (Sparkplug B 3.0
 * §5.9, "multiple MQTT servers") independent brokers each with its own Primary Host. One server is
 * in use at a time; on a failure the connection moves to the next one (docs/scaling.md).
 *
 * - `ordered`: always the configured order, starting with the first.
 * - `random`: a random order, drawn afresh for every round through the list, so the gateways of a
 *   plant spread over the nodes of a cluster instead of all landing on the first.
 */

export interface MqttServer {
  host: string;
  port: number;
}

export type ServerOrder = 'ordered' | 'random';

/** The server as text for logs, status and metrics (no credentials are ever part of it). */
export function serverUrl(server: MqttServer, tls: boolean): string {
  const host = server.host.includes(':') ? `[${server.host}]` : server.host;
  return `${tls ? 'mqtts' : 'mqtt'}://${host}:${server.port}`;
}

/**
 * Parse a server list as typed in a dialog: one entry per line or comma, each `host`, `host:port`,
 * `[ipv6]:port` or `mqtt(s)://host[:port]`. The scheme, when given, must agree with `tls`. Throws
 * an Error naming the first bad entry.
 */
export function parseServerList(text: string | undefined, defaultPort: number, tls: boolean): MqttServer[] {
  const servers: MqttServer[] = [];
  for (const raw of (text ?? '').split(/[\n,]/)) {
    const entry = raw.trim();
    if (entry === '') continue;
    const match = /^(?:(mqtts?|tcp|ssl|tls):\/\/)?(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?\/?$/.exec(entry);
    if (match === null) throw new Error(`server "${entry}" is not host[:port] or mqtt(s)://host[:port]`);
    const [, scheme, hostPart, portText] = match;
    if (scheme !== undefined) {
      const secure = scheme === 'mqtts' || scheme === 'ssl' || scheme === 'tls';
      if (secure !== tls) throw new Error(`server "${entry}" says ${scheme}:// but TLS is ${tls ? 'on' : 'off'} for this connection`);
    }
    const port = portText === undefined ? defaultPort : Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`server "${entry}" has no valid port (1…65535)`);
    servers.push({ host: hostPart.replace(/^\[|\]$/g, ''), port });
  }
  return servers;
}

/** Which server of a list is in use, and which comes next. */
export class ServerRotation {
  private order: MqttServer[];
  private index = 0;

  constructor(readonly servers: readonly MqttServer[], private readonly mode: ServerOrder, private readonly random: () => number = Math.random) {
    if (servers.length === 0) throw new Error('the server list is empty');
    this.order = this.drawOrder();
  }

  get size(): number {
    return this.servers.length;
  }

  get current(): MqttServer {
    return this.order[this.index];
  }

  /** Move to the next server; after the last one a new round begins (reshuffled for `random`). */
  advance(): MqttServer {
    this.index++;
    if (this.index >= this.order.length) {
      this.index = 0;
      if (this.mode === 'random' && this.order.length > 1) {
        const previous = this.order[this.order.length - 1];
        this.order = this.drawOrder();
        // A new round does not start where the last one ended (that server just failed).
        if (this.order[0] === previous) [this.order[0], this.order[this.order.length - 1]] = [this.order[this.order.length - 1], this.order[0]];
      }
    }
    return this.current;
  }

  private drawOrder(): MqttServer[] {
    const order = [...this.servers];
    if (this.mode !== 'random') return order;
    // Fisher–Yates shuffle.
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }
}
