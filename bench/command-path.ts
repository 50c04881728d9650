/**
 * The command path, end to end: a command published to Mosquitto → the gateway (`uns-sparkplug-edge`
 * + `uns-sparkplug-device`, or `uns-in`) → `uns-vfd` → Modbus write at the simulated drive → the
 * drive's confirming poll → confirming data back at the broker (DDATA, or the UNS metric topic from
 * `uns-out`) with the commanded value. One command at a time; the latency of each is the time from
 * publishing it to receiving the confirming data, both measured in this process.
 *
 *   npm run build
 *   node --import tsx bench/command-path.ts [--commands 1000] [--runs 5] [--broker-nodelay] [--write]
 *     [--trace] [--cpu-prof <dir>]
 *
 * Each run starts its own Mosquitto, plant and gateway; the table gives per path the median over
 * the runs (min–max) of each run's p50/p99/max, and the lost commands of every run. --write replaces
 * the section command-path (Mosquitto defaults) or command-path-nodelay (--broker-nodelay:
 * `set_tcp_nodelay true`) of docs/benchmarks.md. Diagnosis: --trace splits each command's latency
 * at the gateway's sockets (command in, Modbus exchanges, gateway work, data out); --cpu-prof writes
 * a V8 profile of each gateway (read it with bench/cpuprofile-top.ts).
 *
 * Processes: this one (the commanding MQTT client: a SCADA host sending DCMD, an application
 * publishing to the UNS), Mosquitto, the simulated plant (bench/lib/modbus-plant-process.ts) and the
 * gateway: an embedded Node-RED (this file with --gateway-child) running the nodes of the shipped
 * templates flows/sparkplug.json (drive → Sparkplug device, DCMD back to the drive) and
 * flows/vfd-template.json's broker, with a uns-in for commands and a uns-out (QoS 0) for data.
 * The drive polls every second besides, as in the templates; a periodic poll that happens to carry
 * the new value first confirms the command just as well (the value is new on every command).
 * Paths alternate command by command, so both see the same machine load. Printed: p50/p99/max per
 * path, lost commands, the gateway's warn/error log lines, and the load measured during each run
 * (gateway, plant and broker CPU from /proc, machine busy cores from /proc/stat).
 */
import { fork } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import { encodePayload, decodePayload, metricValue } from '../lib/sparkplug/payload';
import { Mosquitto } from '../test/helpers/mosquitto';
import { startPlantProcess } from './lib/modbus-plant-process';
import { REPO_ROOT, startNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { findPid, machineBusySeconds, machineFacts, processCpuSeconds, summarize } from './lib/stats';

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const COMMANDS = argument('commands', 1000);
const RUNS = argument('runs', 5);
const WRITE = process.argv.includes('--write');
/** Diagnosis: record the gateway's socket events and split the latency into hops (adds work to the gateway). */
const TRACE = process.argv.includes('--trace');
/** Diagnosis: write a V8 CPU profile of each gateway process into this folder (bench/cpuprofile-top.ts reads it). */
const CPU_PROFILE_DIR = process.argv.includes('--cpu-prof') ? process.argv[process.argv.indexOf('--cpu-prof') + 1] : undefined;
/** Mosquitto with `set_tcp_nodelay true` (its default is false: Nagle on the sockets it writes to). */
const BROKER_NODELAY = process.argv.includes('--broker-nodelay');
/** A command not confirmed within this is counted as lost (and reported), not as a latency. */
const CONFIRM_TIMEOUT_MS = 2000;

const GROUP = 'plant1';
const EDGE = 'acme-edge-1';
const DEVICE = 'drive1';
const ASSET = 'acme/plant1/packaging/line1/cell1/drive1';
const COMMAND_PREFIX = 'cmd';
const DCMD_TOPIC = `spBv1.0/${GROUP}/DCMD/${EDGE}/${DEVICE}`;
const UNS_COMMAND_TOPIC = `${COMMAND_PREFIX}/${ASSET}`;
const UNS_CONFIRM_TOPIC = `${ASSET}/speedSetpoint`;

type Path = 'sparkplug' | 'uns';
const PATHS: Path[] = ['sparkplug', 'uns'];

// ---------------------------------------------------------------- gateway (child process)

function templateNodes(file: string, ids: string[]): Array<Record<string, unknown>> {
  const flow = JSON.parse(readFileSync(join(REPO_ROOT, 'flows', file), 'utf8')) as Array<Record<string, unknown>>;
  return ids.map((id) => {
    const node = flow.find((n) => n.id === id);
    if (!node) throw new Error(`flows/${file} has no node ${id}`);
    return { ...node };
  });
}

function gatewayFlow(): object[] {
  const [link, edge, vfd, device] = templateNodes('sparkplug.json', ['sp-link', 'sp-edge', 'sp-vfd', 'sp-device']);
  const [broker] = templateNodes('vfd-template.json', ['vfd-tpl-broker']);
  const tab = 'bench-tab';
  // The templates' ${UNS_EDGE_*} references are substituted by Node-RED from this process's environment.
  Object.assign(edge, { z: tab, storeEnabled: false });
  Object.assign(broker, { z: tab, storeEnabled: false });
  Object.assign(link, { z: tab });
  Object.assign(device, { z: tab });
  // The profile's ramp guard (300 rpm/s) would refuse commands a few ms apart: this measures latency,
  // so the ramp limit is raised; every other check of the guard stays on.
  Object.assign(vfd, { z: tab, maxRamp: '1000000', wires: [['sp-device', 'bench-out'], []] });
  return [
    { id: tab, type: 'tab', label: 'command path' },
    link, edge, vfd, device, broker,
    {
      id: 'bench-in', type: 'uns-in', z: tab, name: 'commands', broker: broker.id, topics: `${COMMAND_PREFIX}/#`, shareGroup: '',
      qos: '0', topicPrefix: COMMAND_PREFIX, assetDepth: 6, mergeWindow: 0, x: 100, y: 200, wires: [[vfd.id]],
    },
    {
      id: 'bench-out', type: 'uns-out', z: tab, name: 'data', broker: broker.id, topicPrefix: '', qos: '0', retain: false, format: 'metric',
      deadbandMode: 'off', deadband: 0, maxSilence: 0, rbeCacheSize: 100000, maxMetrics: 5000, maxValueKiB: 64, badTimestamps: 'reject',
      x: 400, y: 200, wires: [],
    },
  ];
}

async function gatewayChild(): Promise<void> {
  const events = process.argv.includes('--trace')
    ? traceSockets(Number(process.env.UNS_EDGE_MQTT_PORT), Number(process.env.UNS_EDGE_SIM_PORT)) : undefined;
  const red = await startNodeRed(gatewayFlow());
  process.send?.({ ready: true });
  process.on('message', (m: { stop?: boolean; trace?: 'start' | 'report' }) => {
    if (m.trace === 'start' && events) events.length = 0;
    if (m.trace === 'report') process.send?.({ events: events ?? [] });
    if (m.stop) void red.stop().then(() => process.exit(0));
  });
}

// ---------------------------------------------------------------- socket trace (gateway child, --trace)

/** One chunk the gateway wrote to or received from a socket, on the epoch-ms clock every process shares. */
interface SocketEvent {
  at: number;
  peer: 'mqtt' | 'modbus';
  direction: 'in' | 'out';
}

/**
 * Diagnosis only (--trace): record when the gateway's sockets to the broker and to the plant carry
 * data, to split each command's latency into hops. Wraps net.Socket write/emit in this child process.
 */
function traceSockets(brokerPort: number, plantPort: number): SocketEvent[] {
  const events: SocketEvent[] = [];
  const peerOf = (socket: Socket): SocketEvent['peer'] | undefined =>
    socket.remotePort === brokerPort ? 'mqtt' : socket.remotePort === plantPort ? 'modbus' : undefined;
  const now = () => performance.timeOrigin + performance.now();
  const { write, emit } = Socket.prototype;
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    const peer = peerOf(this);
    if (peer) events.push({ at: now(), peer, direction: 'out' });
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  Socket.prototype.emit = function (this: Socket, event: string | symbol, ...args: unknown[]) {
    if (event === 'data') {
      const peer = peerOf(this);
      if (peer) events.push({ at: now(), peer, direction: 'in' });
    }
    return (emit as (...a: unknown[]) => boolean).apply(this, [event, ...args]);
  } as typeof emit;
  return events;
}

// ---------------------------------------------------------------- commanding client (this process)

interface PathResult {
  latenciesMs: number[];
  lost: number;
}

interface RunResult {
  paths: Record<Path, PathResult>;
  seconds: number;
  /** Cores used on average during the measurement. */
  cores: { gateway: number; plant: number; broker: number; commander: number; machine: number };
  loadavg: [number, number];
  /** The gateway's log lines at warn/error during the measurement, and those naming a guard rejection. */
  gatewayWarnings: string[];
  /** Per measured command (--trace): when it was sent and confirmed (epoch ms), and its path. */
  commands: Array<{ path: Path; sentAt: number; confirmedAt?: number }>;
  socketEvents: SocketEvent[];
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const epochNow = () => performance.timeOrigin + performance.now();

/** One run: fresh broker, plant and gateway; 50 warm-up commands per path, then COMMANDS per path. */
async function runOnce(run: number): Promise<RunResult> {
  const broker = await Mosquitto.start();
  if (BROKER_NODELAY) {
    await broker.stop();
    appendFileSync(join(broker.dir, 'mosquitto.conf'), 'set_tcp_nodelay true\n');
    await broker.restart();
  }
  const brokerPid = findPid(broker.dir);
  if (brokerPid === undefined) throw new Error('cannot find the mosquitto process');
  const plant = await startPlantProcess({ drives: 1 });
  const gatewayArgs = ['--import', 'tsx', ...(CPU_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROFILE_DIR}`] : [])];
  const gateway = fork(__filename, ['--gateway-child', ...(TRACE ? ['--trace'] : [])], {
    execArgv: gatewayArgs,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      ...process.env,
      UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port),
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port),
    },
  });
  // The gateway logs at warn: every line is shown, and those during the measurement are counted.
  let measuring = false;
  const gatewayWarnings: string[] = [];
  for (const stream of [gateway.stdout!, gateway.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      console.error(`gateway: ${line}`);
      if (measuring && /\[(warn|error)\]/.test(line)) gatewayWarnings.push(line);
    });
  }
  const client = mqtt.connect(broker.url, { clientId: 'bench-commander', protocolVersion: 4 });
  try {
    await new Promise<void>((resolve, reject) => {
      gateway.once('message', () => resolve());
      gateway.once('exit', (code) => reject(new Error(`gateway exited (${code}) before its flow started`)));
    });
    if (!client.connected) await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    // The commanding client itself must not hold its publishes back (Nagle): only the gateway is measured.
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

    // The DBIRTH names the metrics: speedSetpoint's alias and datatype for DCMD, aliases for DDATA.
    const aliasOf = new Map<string, number>();
    const nameOf = new Map<number, string>();
    let datatype: number | undefined;
    let waiting: { path: Path; value: number; resolve: (at: number) => void } | undefined;
    const confirm = (path: Path, value: unknown) => {
      if (waiting && waiting.path === path && Number(value) === waiting.value) {
        const w = waiting;
        waiting = undefined;
        w.resolve(epochNow());
      }
    };
    const birth = new Promise<void>((resolve) => {
      client.on('message', (topic, bytes) => {
        if (topic === UNS_CONFIRM_TOPIC) {
          const body = JSON.parse(bytes.toString()) as { value?: unknown } | number;
          confirm('uns', typeof body === 'object' ? body.value : body);
          return;
        }
        const type = topic.split('/')[2];
        const decoded = decodePayload(bytes);
        if (type === 'DBIRTH') {
          for (const m of decoded.metrics) {
            if (m.name !== undefined && m.alias !== undefined) {
              aliasOf.set(m.name, Number(m.alias));
              nameOf.set(Number(m.alias), m.name);
            }
            if (m.name === 'speedSetpoint') datatype = m.datatype;
          }
          resolve();
        } else if (type === 'DDATA') {
          for (const m of decoded.metrics) {
            const name = m.name ?? nameOf.get(Number(m.alias));
            if (name === 'speedSetpoint') confirm('sparkplug', metricValue(m, datatype));
          }
        }
      });
    });
    await client.subscribeAsync([`spBv1.0/${GROUP}/DBIRTH/${EDGE}/${DEVICE}`, `spBv1.0/${GROUP}/DDATA/${EDGE}/${DEVICE}`, UNS_CONFIRM_TOPIC]);
    // A late subscriber asks for a rebirth, as a host application does (Sparkplug 3.0 §5.3).
    client.publish(`spBv1.0/${GROUP}/NCMD/${EDGE}`, encodePayload({
      timestamp: Date.now(), metrics: [{ name: 'Node Control/Rebirth', datatype: 11, value: true }],
    }));
    console.error(`run ${run + 1}: gateway up, waiting for the DBIRTH`);
    await birth;
    if (datatype === undefined) throw new Error('the DBIRTH has no speedSetpoint metric');

    const send = (path: Path, value: number): void => {
      if (path === 'sparkplug') {
        client.publish(DCMD_TOPIC, encodePayload({
          timestamp: Date.now(),
          metrics: [{ name: 'speedSetpoint', alias: aliasOf.get('speedSetpoint'), datatype: datatype as number, value }],
        }));
      } else {
        // The asset-level JSON shape of docs/uns-topics.md.
        client.publish(UNS_COMMAND_TOPIC, JSON.stringify({ timestamp: Date.now(), metrics: { speedSetpoint: { value } } }));
      }
    };
    const commands: RunResult['commands'] = [];
    /** Send one command and wait for its confirmation; its sent/confirmed times go to `commands`. */
    const command = (path: Path, value: number): Promise<number | undefined> => new Promise((resolve) => {
      const record: RunResult['commands'][number] = { path, sentAt: epochNow() };
      if (measuring) commands.push(record);
      const timer = setTimeout(() => {
        waiting = undefined;
        resolve(undefined);
      }, CONFIRM_TIMEOUT_MS);
      waiting = { path, value, resolve: (at) => { clearTimeout(timer); record.confirmedAt = at; resolve(at - record.sentAt); } };
      send(path, value);
    });

    const paths: Record<Path, PathResult> = { sparkplug: { latenciesMs: [], lost: 0 }, uns: { latenciesMs: [], lost: 0 } };
    let counter = 0;
    // Every command a value the drive does not hold yet, within the profile's 0..1800 rpm, small steps.
    const nextValue = () => 900 + (counter++ % 400);
    for (let i = 0; i < 100; i++) {
      const path = PATHS[i % 2];
      if (await command(path, nextValue()) === undefined) console.error(`warm-up: ${path} command not confirmed within ${CONFIRM_TIMEOUT_MS} ms`);
    }

    const cpu0 = { gateway: processCpuSeconds(gateway.pid!), plant: processCpuSeconds(plant.pid), broker: processCpuSeconds(brokerPid) };
    const self0 = process.cpuUsage();
    const busy0 = machineBusySeconds();
    const load0 = loadavg()[0];
    const wall0 = performance.now();
    measuring = true;
    gateway.send({ trace: 'start' });
    for (let i = 0; i < 2 * COMMANDS; i++) {
      const path = PATHS[(i + run) % 2];
      const latency = await command(path, nextValue());
      if (latency === undefined) paths[path].lost++;
      else paths[path].latenciesMs.push(latency);
    }
    measuring = false;
    const seconds = (performance.now() - wall0) / 1000;
    const selfCpu = process.cpuUsage(self0);
    const cores = {
      gateway: (processCpuSeconds(gateway.pid!) - cpu0.gateway) / seconds,
      plant: (processCpuSeconds(plant.pid) - cpu0.plant) / seconds,
      broker: (processCpuSeconds(brokerPid) - cpu0.broker) / seconds,
      commander: (selfCpu.user + selfCpu.system) / 1e6 / seconds,
      machine: (machineBusySeconds() - busy0) / seconds,
    };
    const socketEvents = TRACE ? await new Promise<SocketEvent[]>((resolve) => {
      gateway.once('message', (m: { events: SocketEvent[] }) => resolve(m.events));
      gateway.send({ trace: 'report' });
    }) : [];
    return { paths, seconds, cores, loadavg: [load0, loadavg()[0]], gatewayWarnings, commands, socketEvents };
  } finally {
    client.end(true);
    if (gateway.exitCode === null) {
      gateway.send({ stop: true });
      await new Promise((resolve) => gateway.once('exit', resolve));
    }
    await plant.close();
    await broker.dispose();
  }
}

/**
 * --trace: split each measured command's latency at the gateway's sockets: broker → gateway (command
 * in), the gateway's Modbus exchanges with the plant (time waiting for answers, and their count),
 * the gateway's own work between them, and gateway → broker → commander (confirming data out).
 * The confirming publish is the gateway's last MQTT write before the confirmation arrived.
 */
function traceBreakdown(result: RunResult): string[] {
  const events = result.socketEvents;
  interface Split { total: number; commandIn: number; modbusWait: number; modbusExchanges: number; longestExchange: number; gatewayWork: number; dataOut: number }
  const splits: Split[] = [];
  let e = 0;
  for (const c of result.commands) {
    if (c.confirmedAt === undefined) continue;
    while (e < events.length && events[e].at < c.sentAt) e++;
    const own = [];
    for (let k = e; k < events.length && events[k].at <= c.confirmedAt; k++) own.push(events[k]);
    const firstIn = own.find((x) => x.peer === 'mqtt' && x.direction === 'in');
    const lastOut = [...own].reverse().find((x) => x.peer === 'mqtt' && x.direction === 'out');
    if (!firstIn || !lastOut || lastOut.at < firstIn.at) continue;
    let modbusWait = 0;
    let exchanges = 0;
    let longestExchange = 0;
    let requestAt: number | undefined;
    for (const x of own) {
      if (x.at < firstIn.at || x.at > lastOut.at || x.peer !== 'modbus') continue;
      if (x.direction === 'out') requestAt ??= x.at;
      else if (requestAt !== undefined) {
        modbusWait += x.at - requestAt;
        longestExchange = Math.max(longestExchange, x.at - requestAt);
        exchanges++;
        requestAt = undefined;
      }
    }
    const gatewayTime = lastOut.at - firstIn.at;
    splits.push({
      total: c.confirmedAt - c.sentAt, commandIn: firstIn.at - c.sentAt, modbusWait, modbusExchanges: exchanges, longestExchange,
      gatewayWork: gatewayTime - modbusWait, dataOut: c.confirmedAt - lastOut.at,
    });
  }
  splits.sort((a, b) => a.total - b.total);
  const mean = (list: Split[], key: keyof Split) => list.reduce((sum, x) => sum + x[key], 0) / Math.max(1, list.length);
  const slowest = splits.slice(Math.floor(splits.length * 0.99));
  const middle = splits.slice(Math.floor(splits.length * 0.45), Math.ceil(splits.length * 0.55));
  const row = (label: string, list: Split[]) =>
    `| ${label} (${list.length}) | ${mean(list, 'total').toFixed(2)} | ${mean(list, 'commandIn').toFixed(2)} | ${mean(list, 'modbusWait').toFixed(2)} (${mean(list, 'modbusExchanges').toFixed(1)}) | ${mean(list, 'longestExchange').toFixed(2)} | ` +
    `${mean(list, 'gatewayWork').toFixed(2)} | ${mean(list, 'dataOut').toFixed(2)} |`;
  return [
    '| commands (both paths) | latency ms | command in: commander → broker → gateway | Modbus: waiting for the plant (exchanges) | of which the longest exchange | gateway work between | data out: gateway → broker → commander |',
    '|---|---|---|---|---|---|---|',
    row('around the median, 45–55 %', middle),
    row('slowest 1 %', slowest),
  ];
}

async function main(): Promise<void> {
  const results: RunResult[] = [];
  for (let run = 0; run < RUNS; run++) {
    const result = await runOnce(run);
    results.push(result);
    const p99 = PATHS.map((path) => {
      const sorted = [...result.paths[path].latenciesMs].sort((a, b) => a - b);
      return `${path} p50 ${percentile(sorted, 50).toFixed(2)} p99 ${percentile(sorted, 99).toFixed(2)} lost ${result.paths[path].lost}`;
    });
    console.error(`run ${run + 1}/${RUNS}: ${p99.join('; ')}; machine ${result.cores.machine.toFixed(2)} cores busy; gateway warnings ${result.gatewayWarnings.length}`);
  }
  report(results);
}

function report(results: RunResult[]): void {
  const facts = machineFacts();
  const label: Record<Path, string> = {
    sparkplug: 'DCMD → `uns-sparkplug-edge`/`-device` → `uns-vfd` → Modbus write → DDATA',
    uns: 'UNS write (`uns-in`) → `uns-vfd` → Modbus write → `uns-out` metric topic',
  };
  const ms = (v: number) => v.toFixed(2);
  const spread = (values: number[], format: (v: number) => string) => {
    const s = summarize(values);
    return values.length > 1 ? `${format(s.median)} (${format(s.min)}–${format(s.max)})` : format(s.median);
  };
  const perRun = (path: Path) => results.map((r) => {
    const sorted = [...r.paths[path].latenciesMs].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1], confirmed: sorted.length, lost: r.paths[path].lost };
  });
  const rows = PATHS.map((path) => {
    const runs = perRun(path);
    const confirmed = runs.reduce((n, r) => n + r.confirmed, 0);
    const lost = runs.map((r) => r.lost);
    return `| ${label[path]} | ${confirmed} | ${lost.reduce((a, b) => a + b, 0)} (${lost.join(', ')}) | ${spread(runs.map((r) => r.p50), ms)} | ` +
      `${spread(runs.map((r) => r.p99), ms)} | ${spread(runs.map((r) => r.max), ms)} | ${runs.filter((r) => r.p99 <= 10).length} of ${runs.length} |`;
  });
  const core = (key: keyof RunResult['cores']) => spread(results.map((r) => r.cores[key]), (v) => v.toFixed(3));
  const warnings = results.flatMap((r) => r.gatewayWarnings);
  const rejections = warnings.filter((line) => /GuardRejection|rejected/.test(line));
  const flags = `--commands ${COMMANDS} --runs ${RUNS}${BROKER_NODELAY ? ' --broker-nodelay' : ''}`;
  const lines = [
    `## Command path: DCMD and UNS write → Modbus write → confirming data${BROKER_NODELAY ? ' (Mosquitto `set_tcp_nodelay true`)' : ' (Mosquitto defaults)'}`,
    '',
    `\`node --import tsx bench/command-path.ts ${flags} --write\` (after \`npm run build\`) — ${new Date().toISOString().slice(0, 16)} UTC, ` +
      `${RUNS} run(s), each with a fresh Mosquitto, simulated plant and gateway, of ${COMMANDS} commands per path (paths alternating command by command, one at a time, after 50 warm-up commands per path), ` +
      `${facts.nproc} × ${facts.cpuModel}, Node ${facts.node}, Mosquitto ${facts.mosquitto}.`,
    '',
    'Latency from publishing the command (this process, Mosquitto on localhost) to receiving the confirming data with the commanded value. ' +
      'Per run p50/p99/max over its commands; the table gives the median over the runs (min–max). Goal: p99 ≤ 10 ms.',
    '',
    '| path | confirmed (all runs) | lost: no confirmation in 2 s (per run) | p50 ms | p99 ms | max ms | runs with p99 ≤ 10 ms |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Load during the measurement (${spread(results.map((r) => r.seconds), (v) => v.toFixed(1))} s per run): ` +
      `machine ${core('machine')} of ${facts.nproc} cores busy (/proc/stat, all processes), 1-min load average ${results.map((r) => `${r.loadavg[0].toFixed(1)}→${r.loadavg[1].toFixed(1)}`).join(', ')}. ` +
      `This benchmark's processes: gateway ${core('gateway')}, simulated plant ${core('plant')}, Mosquitto ${core('broker')}, commanding client ${core('commander')} cores. ` +
      `Gateway log lines at warn/error during the measurement: ${warnings.length}${rejections.length ? `, ${rejections.length} of them guard rejections` : ''}.`,
  ];
  if (TRACE) {
    lines.push('', 'Where the time goes (`--trace`, socket events in the gateway; mean ms per command of the last run):', '', ...traceBreakdown(results[results.length - 1]));
  }
  const markdown = lines.join('\n');
  console.log(markdown);
  if (WRITE) writeSection(BROKER_NODELAY ? 'command-path-nodelay' : 'command-path', markdown);
}

if (process.argv.includes('--gateway-child')) {
  gatewayChild().catch((error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
} else {
  main().then(() => process.exit(0), (error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
}
