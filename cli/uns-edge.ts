#!/usr/bin/env node
/**
 * uns-edge: the gateway runtime's command line (docs/gateway.md).
 *
 *   uns-edge demo       embedded MQTT broker + simulated plant + Node-RED with the editor
 *   uns-edge run        a gateway: one flows file, hardened settings, optional editor
 *   uns-edge simulate   the simulated plant alone
 *   uns-edge audit verify <dir>   check a conduit audit folder's hash chain (lib/zones/audit-verify.ts)
 *   uns-edge check-zones flows.json   the zone lint, for CI (docs/zones.md § "Zone lint")
 *   uns-edge templates  the flow templates, one line each
 *   uns-edge new --template NAME [--set KEY=VALUE …] > flows.json   a template as a flows file (docs/templates.md)
 *
 * Exit codes: 0 stopped by a signal, 1 start-up or runtime failure (a taken port, ...),
 * 2 usage error, 78 configuration refused (EX_CONFIG of sysexits.h; the systemd unit does not
 * restart on it, since a restart cannot fix it).
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { describeHeapGrowing, heapGrowingSetting } from '../lib/runtime/heap-growth';
import { packageInfo } from '../lib/runtime/package-info';
import {
  buildSettings, DEFAULT_HOST, DEFAULT_PORT, parsePort, runtimeOptionsFromEnv, SettingsError, type RuntimeOptions,
} from '../lib/runtime/settings';
import { startEmbeddedBroker } from './embedded-broker';
import { StartupError } from './listen';
import { auditVerifyMain } from '../lib/zones/audit-verify';
import { log } from './log';
import { startNodeRed, type NodeRedServer } from './node-red-server';
import { DEFAULT_OPCUA_SIM_STATE_DIR, parsePortList, startOpcUaPlant, startPlant } from './simulated-plant';
import { checkZonesFile } from '../lib/zones/lint-files';
import { findTemplate, instantiateTemplate, loadTemplates, parseSetting, TemplateError, templatesDir } from '../lib/templates/templates';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;
/** A graceful stop that takes longer than this is cut short (exit 1). */
const SHUTDOWN_GRACE_MS = 5000;

const DEFAULT_MQTT_PORT = 1883;
const DEFAULT_SIM_PORT = 5020;
const DEFAULT_OPCUA_SIM_PORT = 4850;
const OPCUA_PORT_OPTION: OptionSpec = { type: 'string', value: 'N', help: `simulated plant OPC UA port (env UNS_EDGE_OPCUA_SIM_PORT, default ${DEFAULT_OPCUA_SIM_PORT})` };
/** Where the demo's broker and plant listen: they have no authentication. */
const LOOPBACK = DEFAULT_HOST;

interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in the help, for string options. */
  value?: string;
  /** May be given several times (its value is then a list). */
  multiple?: boolean;
  help: string;
}

interface Command {
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** How many file arguments follow the command (none when absent). */
  positionals?: number;
  run(values: OptionValues, positionals: string[]): Promise<void>;
}

type OptionValue = string | boolean | string[] | undefined;
type OptionValues = Record<string, OptionValue>;

const HELP_OPTION: Record<string, OptionSpec> = { help: { type: 'boolean', help: 'show this help' } };

const COMMANDS: Record<string, Command> = {
  demo: {
    summary: 'embedded MQTT broker, simulated plant and Node-RED with the demo flow (npm start)',
    usage: 'uns-edge demo [options]',
    options: {
      port: { type: 'string', value: 'N', help: `editor / HTTP port (env UNS_EDGE_PORT, default ${DEFAULT_PORT})` },
      'mqtt-port': { type: 'string', value: 'N', help: `embedded MQTT broker port (env UNS_EDGE_MQTT_PORT, default ${DEFAULT_MQTT_PORT})` },
      'sim-port': { type: 'string', value: 'N', help: `simulated plant Modbus TCP port (env UNS_EDGE_SIM_PORT, default ${DEFAULT_SIM_PORT})` },
      'opcua-port': OPCUA_PORT_OPTION,
      'user-dir': { type: 'string', value: 'DIR', help: 'where the demo keeps its flows and context (env UNS_EDGE_DEMO_DIR, default ./.uns-edge/demo)' },
      reset: { type: 'boolean', help: 'replace the demo flows with the shipped ones (the old file is kept as flows.json.bak)' },
      ...HELP_OPTION,
    },
    run: runDemo,
  },
  run: {
    summary: 'run a flows file as a gateway, hardened; --headless for no editor',
    usage: 'uns-edge run --flows <file> [options]',
    options: {
      flows: { type: 'string', value: 'FILE', help: 'the flows file (env UNS_EDGE_FLOWS; required)' },
      headless: { type: 'boolean', help: 'no editor and no admin API (env UNS_EDGE_HEADLESS=1)' },
      host: { type: 'string', value: 'H', help: `address to listen on (env UNS_EDGE_HOST, default ${LOOPBACK})` },
      port: { type: 'string', value: 'N', help: `HTTP port for /healthz, /metrics and the editor (env UNS_EDGE_PORT, default ${DEFAULT_PORT})` },
      'user-dir': { type: 'string', value: 'DIR', help: 'Node-RED user directory (env UNS_EDGE_USER_DIR, default: the flows file\'s directory)' },
      settings: { type: 'string', value: 'FILE', help: 'a .js/.json file of Node-RED settings merged over the hardened ones (env UNS_EDGE_SETTINGS)' },
      'http-node': { type: 'boolean', help: 'serve HTTP-In endpoints of the flows (env UNS_EDGE_HTTP_NODE=1)' },
      ...HELP_OPTION,
    },
    run: runGateway,
  },
  simulate: {
    summary: 'the simulated plant alone: Modbus TCP drives to try flow templates against',
    usage: 'uns-edge simulate [options]',
    options: {
      host: { type: 'string', value: 'H', help: `address to listen on (default ${LOOPBACK})` },
      port: { type: 'string', value: 'N', help: `Modbus TCP port (env UNS_EDGE_SIM_PORT, default ${DEFAULT_SIM_PORT}; 0 picks a free one)` },
      'opcua-port': OPCUA_PORT_OPTION,
      ports: { type: 'string', value: 'LIST', help: 'several Modbus TCP ports instead of --port, e.g. 5020,5021 or 5020-5023; the drives are split evenly' },
      drives: { type: 'string', value: 'N', help: 'number of drives, one Modbus unit id each, at most 247 per port (default 4)' },
      seed: { type: 'string', value: 'N', help: 'random seed of the drives\' noise (default 1)' },
      'state-dir': { type: 'string', value: 'DIR', help: 'where the OPC UA server keeps its PKI and users (env UNS_EDGE_SIM_STATE_DIR, default ./.uns-edge/opcua-sim)' },
      ...HELP_OPTION,
    },
    run: runSimulate,
  },
  'check-zones': {
    summary: 'zone lint of a flows file for CI: one line per finding; exit 0 clean, 1 findings, 2 bad input',
    usage: 'uns-edge check-zones <flows.json> [--strict] [--settings FILE]',
    options: {
      strict: { type: 'boolean', help: 'warnings fail too' },
      settings: { type: 'string', value: 'FILE', help: 'Node-RED settings (.js/.json) whose adminAuth, httpAdminRoot and uiHost are checked' },
      ...HELP_OPTION,
    },
    positionals: 1,
    run: async (values, [file]) => {
      const report = checkZonesFile(file!, { strict: values.strict === true, settingsFile: stringOption(values.settings), credentialSecret: process.env.UNS_EDGE_CREDENTIAL_SECRET });
      for (const line of report.lines) console.log(line);
      for (const note of report.notes) process.stderr.write(`uns-edge check-zones: ${note}\n`);
      process.exitCode = report.exitCode;
    },
  },
  templates: {
    summary: 'the flow templates (Import ▸ Examples ▸ uns-edge), one line each: name and what it shows',
    usage: 'uns-edge templates',
    options: { ...HELP_OPTION },
    run: async () => {
      const templates = loadTemplates(templatesDir(packageInfo().root));
      const width = Math.max(...templates.map((template) => template.name.length));
      for (const template of templates) console.log(`${template.name.padEnd(width)}  ${template.summary}`);
    },
  },
  new: {
    summary: 'a flow template as a flows file on stdout, fresh node ids, its UNS_EDGE_* variables set by --set',
    usage: 'uns-edge new --template NAME [--set KEY=VALUE …] > flows.json',
    options: {
      template: { type: 'string', value: 'NAME', help: 'the template (uns-edge templates lists them; required)' },
      set: { type: 'string', value: 'KEY=VALUE', multiple: true, help: 'the default of one of the template\'s variables, e.g. UNS_EDGE_MQTT_HOST=10.0.0.5; repeatable' },
      ...HELP_OPTION,
    },
    run: runNew,
  },
};

class UsageError extends Error {}

/** The command being run, so a usage error shows that command's help. */
let currentCommand: string | undefined;

function commandHelp(name: string): string {
  const command = COMMANDS[name];
  const rows = Object.entries(command.options).map(([option, spec]) => {
    const left = `  --${option}${spec.value ? ` ${spec.value}` : ''}`;
    return `${left.padEnd(22)} ${spec.help}`;
  });
  return `${command.usage}\n\n${command.summary}\n\nOptions:\n${rows.join('\n')}\n`;
}

function generalHelp(): string {
  const rows = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`);
  return [
    `uns-edge ${packageInfo().version}: IT/OT gateway on Node-RED`,
    '',
    'Usage: uns-edge <command> [options]',
    '',
    'Commands:',
    ...rows,
    '',
    'uns-edge <command> --help shows the options of a command; uns-edge --version the version.',
    'Documentation: docs/gateway.md, docs/security.md',
    '',
  ].join('\n');
}

function integerOption(value: OptionValue, name: string, minimum: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum) throw new UsageError(`${name} ${value}: expected an integer ≥ ${minimum}`);
  return number;
}

/** The result of parsing an option, its error as a usage error. */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function stringOption(value: OptionValue): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * A path from its flag, else from its environment variable; an empty one (`--state-dir ""`, `VAR=`
 * in a unit file) counts as not given, so the default applies: resolve('') would be the working folder.
 */
function pathOption(value: OptionValue, envName: string): string | undefined {
  const given = stringOption(value) ?? process.env[envName];
  return given === undefined || given.trim() === '' ? undefined : given;
}

function portOption(value: OptionValue, flag: string, envName: string, fallback: number): number {
  let fromFlag: number | undefined;
  try {
    fromFlag = parsePort(stringOption(value), flag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return fromFlag ?? parsePort(process.env[envName], envName) ?? fallback;
}

/** What to stop, in reverse start order, when a signal comes or the start fails half-way. */
const running: { name: string; close(): Promise<void> | void }[] = [];

async function stopAll(): Promise<void> {
  for (const part of running.splice(0).reverse()) {
    try {
      await part.close();
    } catch (error) {
      log.error(`stopping ${part.name}: ${(error as Error).message}`);
    }
  }
}

function stopOnSignals(): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    log.info(`${signal}: stopping`);
    setTimeout(() => {
      log.error(`did not stop within ${SHUTDOWN_GRACE_MS / 1000} s: exiting`);
      process.exit(EXIT_FAILURE);
    }, SHUTDOWN_GRACE_MS).unref();
    stopAll().then(() => {
      log.info('stopped');
      process.exit(0);
    }, () => process.exit(EXIT_FAILURE));
  };
  // `on`, not `once`: signal-exit (loaded by node-opcua-pki when it first creates a PKI) re-raises a signal
  // when its own listener is the only one left, which killed the process (exit 143) while it was stopping.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function readySeconds(): string {
  return (performance.now() / 1000).toFixed(2);
}

function describeFlows(server: NodeRedServer): string {
  return server.flows.state === 'started' ? `flows started (${server.flows.nodes} nodes)` : `flows NOT started: ${server.flows.problem ?? server.flows.state}`;
}

async function startRuntime(options: RuntimeOptions, portSetting: string): Promise<NodeRedServer> {
  // Before Node-RED loads: the old generation's growth past the live heap (lib/runtime/heap-growth.ts).
  const heapGrowing = heapGrowingSetting(process.env, process.execArgv);
  if (heapGrowing !== undefined) {
    setFlagsFromString(heapGrowing.flag);
    log.info(describeHeapGrowing(heapGrowing));
  }
  const { settings, notices } = buildSettings(options);
  for (const { level, message } of notices) log[level](message);
  const server = await startNodeRed(settings, portSetting);
  running.push({ name: 'Node-RED', close: () => server.close() });
  if (server.flows.state !== 'started') log.error(describeFlows(server));
  return server;
}

/** The demo's user dir holds a copy of the shipped flow, so the user's edits survive restarts. */
function prepareDemoDir(userDir: string, reset: boolean): string {
  const flowFile = join(userDir, 'flows.json');
  const shipped = join(packageInfo().root, 'examples', 'demo.json');
  mkdirSync(userDir, { recursive: true });
  if (!existsSync(shipped)) {
    log.warn(`the demo flow ${shipped} is missing (npm run build copies flows/ there): starting with ${existsSync(flowFile) ? 'the flows in ' + flowFile : 'no flows'}`);
    return flowFile;
  }
  if (reset && existsSync(flowFile)) {
    renameSync(flowFile, `${flowFile}.bak`);
    log.info(`kept the previous demo flows as ${flowFile}.bak`);
  }
  if (!existsSync(flowFile)) {
    copyFileSync(shipped, flowFile);
    log.info(`copied the demo flow into ${flowFile}; your edits there persist (--reset restores the shipped flow)`);
  }
  return flowFile;
}

/**
 * The demo's credentialSecret: UNS_EDGE_CREDENTIAL_SECRET, else a random one kept in the demo dir
 * (mode 0600), so credentials entered in the demo survive restarts without Node-RED's
 * "system-generated key" banner. A gateway never does this: there the secret must come from outside.
 */
function demoCredentialSecret(userDir: string): string {
  if (process.env.UNS_EDGE_CREDENTIAL_SECRET) return process.env.UNS_EDGE_CREDENTIAL_SECRET;
  const file = join(userDir, '.credential-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

async function runDemo(values: OptionValues): Promise<void> {
  const port = portOption(values.port, '--port', 'UNS_EDGE_PORT', DEFAULT_PORT);
  const mqttPort = portOption(values['mqtt-port'], '--mqtt-port', 'UNS_EDGE_MQTT_PORT', DEFAULT_MQTT_PORT);
  const simPort = portOption(values['sim-port'], '--sim-port', 'UNS_EDGE_SIM_PORT', DEFAULT_SIM_PORT);
  const userDir = resolve(pathOption(values['user-dir'], 'UNS_EDGE_DEMO_DIR') ?? join('.uns-edge', 'demo'));
  const flowFile = prepareDemoDir(userDir, values.reset === true);

  const broker = await startEmbeddedBroker(LOOPBACK, mqttPort, 'UNS_EDGE_MQTT_PORT (or --mqtt-port)');
  running.push({ name: 'MQTT broker', close: () => broker.close() });
  const plant = await startPlant({ host: LOOPBACK, port: simPort });
  running.push({ name: 'simulated plant', close: () => plant.close() });
  const opcuaPort = portOption(values['opcua-port'], '--opcua-port', 'UNS_EDGE_OPCUA_SIM_PORT', DEFAULT_OPCUA_SIM_PORT);
  process.env.UNS_EDGE_OPCUA_HOST = LOOPBACK;
  process.env.UNS_EDGE_OPCUA_PORT = String(opcuaPort);

  // The demo flow reads where the broker and the plant are as ${UNS_EDGE_...} properties.
  process.env.UNS_EDGE_MQTT_HOST = LOOPBACK;
  process.env.UNS_EDGE_MQTT_PORT = String(broker.port);
  process.env.UNS_EDGE_SIM_HOST = LOOPBACK;
  process.env.UNS_EDGE_SIM_PORT = String(plant.port);

  const options: RuntimeOptions = {
    ...runtimeOptionsFromEnv({ ...process.env, UNS_EDGE_MODE: 'demo' }),
    userDir, flowFile, port, headless: false, credentialSecret: demoCredentialSecret(userDir),
  };
  const server = await startRuntime(options, 'UNS_EDGE_PORT (or --port)');
  console.log([
    '',
    `UNS Edge demo ready in ${readySeconds()} s, ${describeFlows(server)}`,
    `  editor        ${server.url}`,
    `  MQTT broker   mqtt://${LOOPBACK}:${broker.port}`,
    `  Modbus plant  ${LOOPBACK}:${plant.port} (${plant.drives.length} drives, unit ids 1..${plant.drives.length})`,
    `  OPC UA plant  opc.tcp://localhost:${opcuaPort} (starting; its details follow)`,
    `  health        ${server.url}/healthz    metrics ${server.url}/metrics`,
    `  user dir      ${userDir}`,
    '',
    `Watch the UNS:  mosquitto_sub -h ${LOOPBACK} -p ${broker.port} -t '#' -v`,
    'Stop with Ctrl+C.',
    '',
  ].join('\n'));
  // After the rest: node-opcua takes seconds to load, and the demo flow (Modbus) does not need it. Without it the demo goes on.
  const opcua = startOpcUaPlant({ plant: plant.plant, host: LOOPBACK, port: opcuaPort, stateDir: join(userDir, 'opcua-sim'),
    demoGatewayPkiDir: join(userDir, 'uns-edge', 'opcua', 'pki') })
    .then((started) => { process.env.UNS_EDGE_OPCUA_PORT = String(started.server.port); console.log(`${started.describe()}\n`); return started; },
      (error: Error) => { log.error(`the simulated OPC UA server did not start: ${error.message}`); return undefined; });
  running.push({ name: 'simulated OPC UA server', close: async () => { await (await opcua)?.server.close(); } });
}

async function runGateway(values: OptionValues): Promise<void> {
  const flows = pathOption(values.flows, 'UNS_EDGE_FLOWS');
  if (!flows) throw new UsageError('run needs --flows <file> (or UNS_EDGE_FLOWS)');
  const flowFile = resolve(flows);
  const fromEnv = runtimeOptionsFromEnv({ ...process.env, UNS_EDGE_MODE: 'gateway' });
  const options: RuntimeOptions = {
    ...fromEnv,
    flowFile,
    userDir: resolve(pathOption(values['user-dir'], 'UNS_EDGE_USER_DIR') ?? dirname(flowFile)),
    host: stringOption(values.host) ?? fromEnv.host,
    port: portOption(values.port, '--port', 'UNS_EDGE_PORT', fromEnv.port),
    headless: values.headless === true || fromEnv.headless,
    httpNode: values['http-node'] === true || fromEnv.httpNode,
    settingsFile: stringOption(values.settings) ?? fromEnv.settingsFile,
  };
  const server = await startRuntime(options, '--port (or UNS_EDGE_PORT)');
  log.info(`gateway ready in ${readySeconds()} s, ${describeFlows(server)}`);
  log.info(`health ${server.url}/healthz, metrics ${server.url}/metrics, editor ${options.headless ? 'off (headless)' : server.url}`);
}

/** `new`: only the flows JSON goes to stdout, so `> flows.json` is a flows file (nothing here loads node-opcua). */
async function runNew(values: OptionValues): Promise<void> {
  const name = stringOption(values.template);
  if (!name) throw new UsageError('new needs --template NAME (uns-edge templates lists them)');
  const sets = Array.isArray(values.set) ? values.set : [];
  try {
    const template = findTemplate(loadTemplates(templatesDir(packageInfo().root)), name);
    const flows = instantiateTemplate(template, new Map(sets.map(parseSetting)));
    process.stdout.write(`${JSON.stringify(flows, null, 4)}\n`);
  } catch (error) {
    if (error instanceof TemplateError) throw new UsageError(error.message);
    throw error;
  }
}

async function runSimulate(values: OptionValues): Promise<void> {
  const host = stringOption(values.host) ?? LOOPBACK;
  const port = portOption(values.port, '--port', 'UNS_EDGE_SIM_PORT', DEFAULT_SIM_PORT);
  const plant = await startPlant({
    host,
    port,
    ports: typeof values.ports === 'string' ? usage(() => parsePortList(values.ports as string)) : undefined,
    drives: integerOption(values.drives, '--drives', 1),
    seed: integerOption(values.seed, '--seed', 0),
  });
  running.push({ name: 'simulated plant', close: () => plant.close() });
  const opcua = await startOpcUaPlant({ plant: plant.plant, host, port: portOption(values['opcua-port'], '--opcua-port', 'UNS_EDGE_OPCUA_SIM_PORT', DEFAULT_OPCUA_SIM_PORT),
    stateDir: resolve(pathOption(values['state-dir'], 'UNS_EDGE_SIM_STATE_DIR') ?? DEFAULT_OPCUA_SIM_STATE_DIR),
    notice: (line) => log.warn(line) });
  running.push({ name: 'simulated OPC UA server', close: () => opcua.server.close() });
  console.log(`${plant.describe()}\n${opcua.describe()}\nReady in ${readySeconds()} s; stop with Ctrl+C.`);
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    console.log(packageInfo().version);
    return;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === undefined) {
      process.stderr.write(generalHelp());
      process.exitCode = EXIT_USAGE;
    } else {
      process.stdout.write(generalHelp());
    }
    return;
  }
  if (name === 'audit') {
    // Exit 0 intact, 1 findings, 2 usage (docs/zones.md § Audit).
    process.exitCode = rest[0] === 'verify' ? auditVerifyMain(rest.slice(1), console.log, console.error) : auditVerifyMain([], console.log, console.error);
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${name}"`);
  currentCommand = name;
  let values: OptionValues;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: rest, options: command.options, strict: true, allowPositionals: command.positionals !== undefined });
    values = parsed.values as OptionValues;
    positionals = parsed.positionals;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(commandHelp(name));
    return;
  }
  if (positionals.length !== (command.positionals ?? 0)) throw new UsageError(`${name} takes ${command.positionals ?? 0} file argument(s), got ${positionals.length}`);
  stopOnSignals();
  await command.run(values, positionals);
}

main(process.argv.slice(2)).catch(async (error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`uns-edge: ${error.message}\n\n${currentCommand ? commandHelp(currentCommand) : generalHelp()}`);
    process.exit(EXIT_USAGE);
  }
  const exitCode = error instanceof SettingsError ? EXIT_CONFIG : error instanceof StartupError ? error.exitCode : EXIT_FAILURE;
  const message = error instanceof SettingsError || error instanceof StartupError ? error.message : (error as Error).stack ?? String(error);
  process.stderr.write(`uns-edge: ${message}\n`);
  await stopAll();
  process.exit(exitCode);
});
