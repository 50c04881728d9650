/**
 * Node-RED adapter of the audit node set (docs/asset-scan.md): `uns-asset-scan`. An input message
 * starts one scan of the addresses the dialog lists (lib/audit: planned, paced, assessed); the node
 * shows the progress, then sends output 1 a tag batch of counts for the UNS and output 2 the whole
 * report (inventory and findings), and writes the JSON and HTML report into its folder. A scan that
 * is running refuses another start; close() aborts it.
 */
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { writeReportFiles } from '../../lib/audit/report-files';
import { planScan, runScan, type ScanPlan, type ScanReport, type ScanSettings } from '../../lib/audit/scanner';
import { TargetListError } from '../../lib/audit/targets';
import type { MqttProbeTarget } from '../../lib/audit/mqtt-scan';
import { applicationPki } from '../../lib/opcua/pki';

type ScanDef = NodeDef & {
  title: string; topic: string; reportDir: string; rate: string | number; timeout: string | number; allowLargeRanges: boolean;
  modbusAddresses: string; modbusPort: string; modbusUnits: string; opcuaAddresses: string; opcuaPort: string;
  mqttAddresses: string; mqttPort: string; mqttTlsPort: string; flowBrokers: boolean;
};

/** Config node types whose broker the scan probes when "brokers of the flows" is ticked. */
const BROKER_TYPES = new Set(['uns-broker', 'uns-sparkplug-edge', 'uns-sparkplug-host']);
const STATUS_TEXT_LIMIT = 120;

/** The tag batch of output 1: counts, so a dashboard or an alarm can follow the plant's exposure. */
function summaryBatch(topic: string, report: ScanReport): Record<string, unknown> {
  const { findings, modbusDevices, opcuaServers, mqttListeners, anonymousBrokers } = report.summary;
  const timestamp = Date.parse(report.finishedAt);
  const payload: Record<string, number> = {
    findingsCritical: findings.critical, findingsHigh: findings.high, findingsMedium: findings.medium, findingsLow: findings.low,
    modbusDevices, opcuaServers, mqttListeners, anonymousBrokers,
  };
  const meta = Object.fromEntries(Object.keys(payload).map((name) => [name, { timestamp, quality: 'good' }]));
  return { topic, payload, meta };
}

export = function (RED: NodeAPI): void {
  function AssetScanNode(this: Node, config: ScanDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const userDir = RED.settings.userDir ?? process.cwd();
    const reportDir = config.reportDir?.trim() || join(userDir, 'uns-edge', 'asset-scan');
    const pki = () => applicationPki(join(userDir, 'uns-edge', 'opcua', 'pki'));
    let running: AbortController | undefined;

    /** host/port of a broker config node; `${VAR}` resolved in the broker's own flow context. */
    function flowBrokers(): MqttProbeTarget[] {
      const brokers: MqttProbeTarget[] = [];
      RED.nodes.eachNode((raw) => {
        const cfg = raw as unknown as { id: string; type: string; name?: string; host?: string; port?: string | number; usetls?: boolean };
        if (!BROKER_TYPES.has(cfg.type)) return;
        const owner = (RED.nodes.getNode(cfg.id) as Node | null) ?? node;
        const resolve = (value: unknown): string => {
          const variable = /^\$\{(\w+)\}$/.exec(String(value ?? '').trim())?.[1];
          return variable ? String(RED.util.evaluateNodeProperty(variable, 'env', owner, {} as NodeMessageInFlow) ?? '') : String(value ?? '').trim();
        };
        const host = resolve(cfg.host);
        const port = Number(resolve(cfg.port) || (cfg.usetls ? 8883 : 1883));
        if (host && Number.isInteger(port)) brokers.push({ host, port, tls: cfg.usetls === true, source: `${cfg.type} "${cfg.name || cfg.id}"` });
      });
      return brokers;
    }

    function settings(): ScanSettings {
      return {
        title: config.title, probesPerSecond: config.rate === '' || config.rate === undefined ? undefined : Number(config.rate),
        timeoutMs: config.timeout === '' || config.timeout === undefined ? undefined : Number(config.timeout),
        allowLargeRanges: config.allowLargeRanges === true,
        modbusAddresses: config.modbusAddresses, modbusPort: config.modbusPort, modbusUnits: config.modbusUnits,
        opcuaAddresses: config.opcuaAddresses, opcuaPort: config.opcuaPort,
        mqttAddresses: config.mqttAddresses, mqttPort: config.mqttPort, mqttTlsPort: config.mqttTlsPort,
        flowBrokers: config.flowBrokers ? flowBrokers() : [],
      };
    }

    node.status({ fill: 'grey', shape: 'ring', text: RED._('audit.status.idle') });

    node.on('input', (msg: NodeMessageInFlow, send, done) => {
      if (running) {
        node.status({ fill: 'yellow', shape: 'ring', text: RED._('audit.status.busy') });
        done(new Error(RED._('audit.errors.busy')));
        return;
      }
      let plan: ScanPlan;
      try {
        plan = planScan(settings());
      } catch (error) {
        const text = error instanceof TargetListError ? error.problems.join('; ') : (error as Error).message;
        node.status({ fill: 'red', shape: 'ring', text: RED._('audit.status.refused') });
        done(new Error(`${RED._('audit.errors.refused')}: ${text}`));
        return;
      }
      const controller = new AbortController();
      running = controller;
      node.status({ fill: 'blue', shape: 'dot', text: RED._('audit.status.scanning', { done: '0', total: '?' }) });
      runScan(plan, {
        opcuaPki: pki,
        signal: controller.signal,
        onProgress: ({ done: count, total }) => node.status({ fill: 'blue', shape: 'dot', text: RED._('audit.status.scanning', { done: String(count), total: String(total) }) }),
      }).then((report) => {
        let files: { json: string; html: string } | undefined;
        try {
          files = writeReportFiles(report, reportDir);
        } catch (error) {
          node.warn(`${RED._('audit.errors.files')}: ${(error as Error).message}`);
        }
        const counts = report.summary.findings;
        const text = RED._('audit.status.done', { findings: String(report.findings.length), critical: String(counts.critical), high: String(counts.high) });
        node.status({ fill: counts.critical + counts.high > 0 ? 'red' : 'green', shape: 'dot', text: text.slice(0, STATUS_TEXT_LIMIT) });
        const topic = config.topic?.trim() || 'uns-edge/asset-scan';
        send([
          { ...summaryBatch(topic, report), _msgid: msg._msgid } as unknown as NodeMessageInFlow,
          { _msgid: msg._msgid, topic: `${topic}/report`, payload: report, files } as unknown as NodeMessageInFlow,
        ]);
        done();
      }, (error: Error) => {
        node.status({ fill: 'grey', shape: 'ring', text: RED._('audit.status.aborted') });
        done(controller.signal.aborted ? undefined : error);
      }).finally(() => {
        if (running === controller) running = undefined;
      });
    });

    node.on('close', () => {
      running?.abort();
      running = undefined;
    });
  }

  RED.nodes.registerType('uns-asset-scan', AssetScanNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};
