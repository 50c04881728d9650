/**
 * The command path, end to end: a command published to Mosquitto → the gateway (`uns-sparkplug-edge`
 * + `uns-sparkplug-device`, or `uns-in`) → `uns-vfd` → Modbus write at the simulated drive → the
 * drive's confirming poll → confirming data back at the broker (DDATA, or the UNS metric topic from
 * `uns-out`) with the commanded value. One command at a time; the latency of each is the time from
 * publishing it to receiving the confirming data, both measured in this process.
 *
 *   npm run build
 *   node --import tsx bench/command-path.ts [--commands 1000] [--runs 1] [--broker-nodelay] [--write]
 *
 * Processes: this one (the commanding MQTT client: a SCADA host sending DCMD, an application
 * publishing to the UNS), Mosquitto, the simulated plant (bench/lib/modbus-plant-process.ts) and the
 * gateway: an embedded Node-RED (this file with --gateway-child) running the nodes of the shipped
 * templates flows/sparkplug.json (drive → Sparkplug device, DCMD back to the drive) and
 * flows/vfd-template.json's broker, with a uns-in for commands and a uns-out (QoS 0) for data.
 * The drive polls every second besides, as in the templates; a periodic poll that happens to carry
 * the new value first confirms the command just as well (the value is new on every command).
 * Paths alternate command by command, so both see the same machine load. Printed: p50/p99/max per
 * path and the load measured during the run (gateway, plant and broker CPU from /proc, machine busy
 * cores from /proc/stat).
 */
import { fork } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import { encodePayload, decodePayload, metricValue } from '../lib/sparkplug/payload';
import { Mosquitto } from '../test/helpers/mosquitto';
import { startPlantProcess } from './lib/modbus-plant-process';
import { REPO_ROOT, startNodeRed } from './lib/node-red';
import { writeSection } from './lib/results-doc';
import { findPid, LoadMeter, machineFacts, processCpuSeconds } from './lib/stats';

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const COMMANDS = argument('commands', 1000);
const RUNS = argument('runs', 1);
const WRITE = process.argv.includes('--write');
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
  const red = await startNodeRed(gatewayFlow());
  process.send?.({ ready: true });
  process.on('message', (m: { stop?: boolean }) => {
    if (m.stop) void red.stop().then(() => process.exit(0));
  });
}

// ---------------------------------------------------------------- commanding client (this process)

interface PathResult {
  latenciesMs: number[];
  lost: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const broker = await Mosquitto.start();
  if (BROKER_NODELAY) {
    await broker.stop();
    appendFileSync(join(broker.dir, 'mosquitto.conf'), 'set_tcp_nodelay true\n');
    await broker.restart();
  }
  const brokerPid = findPid(broker.dir);
  if (brokerPid === undefined) throw new Error('cannot find the mosquitto process');
  const plant = await startPlantProcess({ drives: 1 });
  const gateway = fork(__filename, ['--gateway-child'], {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plant.port),
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port),
    },
  });
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
        w.resolve(performance.now());
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
    console.error('gateway up, waiting for the DBIRTH');
    await birth;
    console.error('DBIRTH received');
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
    const command = (path: Path, value: number): Promise<number | undefined> => new Promise((resolve) => {
      const sentAt = performance.now();
      const timer = setTimeout(() => {
        waiting = undefined;
        resolve(undefined);
      }, CONFIRM_TIMEOUT_MS);
      waiting = { path, value, resolve: (at) => { clearTimeout(timer); resolve(at - sentAt); } };
      send(path, value);
    });

    const results: Record<Path, PathResult> = { sparkplug: { latenciesMs: [], lost: 0 }, uns: { latenciesMs: [], lost: 0 } };
    // Warm-up: 50 commands per path, not recorded.
    let counter = 0;
    // Every command a value the drive does not hold yet, within the profile's 0..1800 rpm, small steps.
    const nextValue = () => 900 + (counter++ % 400);
    for (let i = 0; i < 100; i++) {
      const path = PATHS[i % 2];
      if (await command(path, nextValue()) === undefined) console.error(`warm-up: ${path} command not confirmed within ${CONFIRM_TIMEOUT_MS} ms`);
    }

    const cpu0 = { gateway: processCpuSeconds(gateway.pid!), plant: processCpuSeconds(plant.pid), broker: processCpuSeconds(brokerPid) };
    const self0 = process.cpuUsage();
    const wall0 = performance.now();
    const load = new LoadMeter();
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < 2 * COMMANDS; i++) {
        const path = PATHS[(i + run) % 2];
        const latency = await command(path, nextValue());
        if (latency === undefined) results[path].lost++;
        else results[path].latenciesMs.push(latency);
      }
    }
    const seconds = (performance.now() - wall0) / 1000;
    const selfCpu = process.cpuUsage(self0);
    const cores = {
      gateway: (processCpuSeconds(gateway.pid!) - cpu0.gateway) / seconds,
      plant: (processCpuSeconds(plant.pid) - cpu0.plant) / seconds,
      broker: (processCpuSeconds(brokerPid) - cpu0.broker) / seconds,
      commander: (selfCpu.user + selfCpu.system) / 1e6 / seconds,
    };
    const measuredLoad = load.describe(cores.gateway + cores.plant + cores.broker + cores.commander);
    report(results, cores, measuredLoad, seconds);
  } finally {
    client.end(true);
    gateway.send({ stop: true });
    await new Promise((resolve) => gateway.once('exit', resolve));
    await plant.close();
    await broker.dispose();
  }
}

function report(results: Record<Path, PathResult>, cores: Record<string, number>, measuredLoad: string, seconds: number): void {
  const facts = machineFacts();
  const label: Record<Path, string> = {
    sparkplug: 'DCMD → `uns-sparkplug-edge`/`-device` → `uns-vfd` → Modbus write → DDATA',
    uns: 'UNS write (`uns-in`) → `uns-vfd` → Modbus write → `uns-out` metric topic',
  };
  const rows = PATHS.map((path) => {
    const sorted = [...results[path].latenciesMs].sort((a, b) => a - b);
    const ms = (v: number) => v.toFixed(2);
    return `| ${label[path]} | ${sorted.length} | ${results[path].lost} | ${ms(percentile(sorted, 50))} | ${ms(percentile(sorted, 99))} | ${ms(sorted[sorted.length - 1])} |`;
  });
  const lines = [
    '## Command path: DCMD and UNS write → Modbus write → confirming data',
    '',
    `\`node --import tsx bench/command-path.ts --commands ${COMMANDS} --runs ${RUNS}${BROKER_NODELAY ? ' --broker-nodelay' : ''} --write\` — ${new Date().toISOString().slice(0, 16)} UTC, ` +
      `${RUNS} run(s) of ${COMMANDS} commands per path (paths alternating command by command, one at a time, after 50 warm-up commands per path), ` +
      `${facts.nproc} × ${facts.cpuModel}, Node ${facts.node}, Mosquitto ${facts.mosquitto}.`,
    '',
    'Latency from publishing the command (this process, Mosquitto on localhost) to receiving the confirming data with the commanded value. Goal: p99 ≤ 10 ms.',
    '',
    '| path | confirmed | lost (no confirmation in 2 s) | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Load during the ${seconds.toFixed(1)} s of measurement: ${measuredLoad}. Cores used: gateway ${cores.gateway.toFixed(3)}, ` +
      `simulated plant ${cores.plant.toFixed(3)}, Mosquitto ${cores.broker.toFixed(3)}, commanding client ${cores.commander.toFixed(3)}.`,
  ];
  const markdown = lines.join('\n');
  console.log(markdown);
  if (WRITE) writeSection('command-path', markdown);
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
