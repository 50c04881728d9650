/**
 * Node-RED adapter of the drive node set: `uns-vfd`, a variable frequency drive on a
 * `uns-modbus-link` through a drive profile. Reads the config, takes the link's shared client the
 * way uns-modbus-read does (register/deregister), builds a DriveController (lib/drive) and maps
 * its events: telemetry batches → output 1, audit records → output 2 and the log, the status
 * view → the status dot. Admin endpoints list and serve the profiles for the edit dialog.
 * Property names, messages and decisions: docs/uns-vfd.md.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { formatAuditRecord } from '../../lib/drive/audit';
import { driveProfileFolders, DriveProfileBlocked, findDriveProfile, profileCatalog } from '../../lib/drive/catalog';
import { DriveController, DriveStatusView } from '../../lib/drive/controller';
import { DriveNodeConfig, driveNodeSettings, DriveSettingsError } from '../../lib/drive/node-settings';
import { DriveRequestError } from '../../lib/drive/requests';
import { senderOf } from '../../lib/principal';
import type { ConnectionState, ModbusClient } from '../../lib/modbus/client';

type VfdDef = NodeDef & DriveNodeConfig & { link: string };

/** What a user of a uns-modbus-link is told (nodes/modbus/modbus.ts): connection state changes. */
interface LinkUser {
  onLinkState(state: ConnectionState): void;
}

/** The part of the uns-modbus-link config node that its users call (nodes/modbus/modbus.ts). */
interface ModbusLinkNode extends Node {
  readonly maxRegisters: number;
  register(user: LinkUser): ModbusClient;
  deregister(user: LinkUser): Promise<void>;
}

/** Status dot of a view; the texts are in locales/en-US/drive.json. */
function statusOf(RED: NodeAPI, view: DriveStatusView): NodeStatus {
  switch (view.kind) {
    case 'connecting': return { fill: 'yellow', shape: 'ring', text: RED._('drive.status.connecting') };
    case 'disconnected': return { fill: 'red', shape: 'ring', text: RED._('drive.status.disconnected') };
    case 'comms': return { fill: 'red', shape: 'ring', text: RED._('drive.status.comms', { short: view.short }) };
    case 'waiting': return { fill: 'green', shape: 'ring', text: RED._('drive.status.connected') };
    case 'armed': return { fill: 'yellow', shape: 'dot', text: RED._('drive.status.armed', { command: view.command, seconds: String(view.seconds) }) };
    case 'fault':
      return view.code === null
        ? { fill: 'red', shape: 'dot', text: RED._('drive.status.fault-state', { state: view.state ?? '' }) }
        : { fill: 'red', shape: 'dot', text: RED._('drive.status.fault', { code: String(view.code), name: view.name ?? '' }) };
    case 'running':
      return { fill: 'green', shape: 'dot', text: RED._(view.reverse ? 'drive.status.running-reverse' : 'drive.status.running', { value: view.value, unit: view.unit }) };
    case 'stopped': return { fill: 'grey', shape: 'dot', text: RED._('drive.status.stopped', { state: view.state ?? '' }) };
  }
}

/** Status texts stay short enough for the canvas; the log line has the whole text. */
const STATUS_TEXT_LIMIT = 120;
function shortened(text: string): string {
  return text.length > STATUS_TEXT_LIMIT ? `${text.slice(0, STATUS_TEXT_LIMIT - 1)}…` : text;
}

export = function (RED: NodeAPI): void {
  const folders = () => driveProfileFolders(RED.settings.userDir);

  // The edit dialog's profile list and preview. Read permission of the node type (Node-RED admin auth).
  RED.httpAdmin.get('/uns-edge/drive-profiles', RED.auth.needsPermission('uns-vfd.read'), (_req, res) => {
    try {
      res.json(profileCatalog(folders()));
    } catch (error) {
      res.status(500).json({ error: (error as Error).message });
    }
  });
  RED.httpAdmin.get('/uns-edge/drive-profiles/:id', RED.auth.needsPermission('uns-vfd.read'), (req, res) => {
    try {
      res.json(findDriveProfile(String(req.params.id), folders()));
    } catch (error) {
      res.status(404).json({ error: (error as Error).message });
    }
  });

  function VfdNode(this: Node, config: VfdDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const invalid = (detail: string) => {
      node.status({ fill: 'red', shape: 'ring', text: RED._('drive.status.invalid') });
      node.error(`${RED._('drive.errors.invalid')}: ${detail}`);
    };

    const link = RED.nodes.getNode(config.link) as ModbusLinkNode | null;
    if (!link) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('drive.status.no-link') });
      node.error(RED._('drive.errors.no-link'));
      return;
    }
    let settings;
    let profile;
    try {
      settings = driveNodeSettings(config);
      profile = findDriveProfile(settings.profileId, folders()).profile;
    } catch (error) {
      if (error instanceof DriveProfileBlocked) {
        // A broken profile file claims this id: refuse to start, never fall back (docs/drive-profiles.md).
        node.status({ fill: 'red', shape: 'ring', text: shortened(`${RED._('drive.status.profile-blocked')}: ${error.summary}`) });
        node.error(`${RED._('drive.errors.invalid')}: ${error.message}`);
        return;
      }
      invalid(error instanceof DriveSettingsError ? error.problems.join('; ') : (error as Error).message);
      return;
    }

    let controller: DriveController | undefined;
    let linkState: ConnectionState = 'idle';
    const user: LinkUser = {
      onLinkState(state) {
        linkState = state;
        controller?.setLinkState(state);
      },
    };
    const client = link.register(user);
    try {
      controller = new DriveController({
        client,
        unitId: settings.unitId,
        profile,
        topic: settings.topic,
        intervalMs: settings.intervalMs,
        maxRegisters: link.maxRegisters,
        guard: settings.guard,
        statusParameter: settings.statusParameter,
        send: settings.send,
      });
    } catch (error) {
      link.deregister(user).catch(() => undefined);
      invalid((error as Error).message);
      return;
    }
    const drive = controller;
    const topic = settings.topic;
    drive.on('view', (view) => node.status(statusOf(RED, view)));
    drive.on('batch', (batch) => node.send([batch as unknown as NodeMessageInFlow, null]));
    drive.on('audit', (record) => {
      node.log(formatAuditRecord(record));
      node.send([null, { topic, payload: record } as unknown as NodeMessageInFlow]);
    });
    drive.setLinkState(linkState);
    drive.start();

    node.on('input', (msg: NodeMessageInFlow & { arm?: unknown; retain?: unknown; user?: unknown; _client?: unknown }, _send, done) => {
      drive.request(msg.payload, msg.arm === true, senderOf(msg), msg.retain === true).then(
        () => done(),
        (error: Error) => done(error instanceof DriveRequestError ? new Error(`${RED._('drive.errors.bad-request')}: ${error.message}`) : error),
      );
    });

    node.on('close', (done: () => void) => {
      drive.close();
      drive.removeAllListeners();
      link.deregister(user).then(() => done(), () => done());
    });
  }

  RED.nodes.registerType('uns-vfd', VfdNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};
