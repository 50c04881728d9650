/**
 * Node-RED adapter of the twin node set: `uns-vfd-twin`, the digital twin of one drive. Reads the
 * config (lib/twin/settings), restores the state file (lib/twin/state-file), builds a DriveTwin
 * (lib/twin) and maps its results: twin batches → output 1, maintenance alerts → output 2 (tag
 * batches too, so uns-out publishes them) and the log, the twin's view → the status dot. An admin
 * endpoint resets a replaced component from the edit dialog. Properties and decisions: docs/twin.md.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { senderOf } from '../../lib/principal';
import {
  COMPONENTS, DriveTwin, newTwinState, TwinAlert, TwinInputError, TwinNodeConfig, twinSettings, TwinSettingsError, TwinState, TwinStateFile, twinStateDir, TwinUpdate,
} from '../../lib/twin';
import type { TagBatch } from '../../lib/uns/tag-batch';
import { isPlainObject } from '../../lib/values';

/** The state is written at most this often while it changes, at once on alerts and resets, and on close. */
const SAVE_INTERVAL_MS = 10_000;

interface TwinNode extends Node {
  /** Reset a replaced component (admin endpoint); throws TwinInputError for an unknown component. */
  resetComponent?(component: string, who: string): void;
}

/** Output 2: an alert as a tag batch (`alert/<component>` = "<severity>: <reason>") with the alert object beside it. */
function alertMessage(asset: string, alert: TwinAlert): NodeMessageInFlow {
  const metric = `alert/${alert.component}`;
  const batch: TagBatch & { alert: TwinAlert } = {
    topic: `${asset}/twin`,
    payload: { [metric]: `${alert.severity}: ${alert.reason}` },
    meta: { [metric]: { timestamp: alert.timestamp, quality: 'good', type: 'String' } },
    timestamp: alert.timestamp,
    alert,
  };
  return batch as unknown as NodeMessageInFlow;
}

export = function (RED: NodeAPI): void {
  // The dialog's "component replaced" button. Write permission of the node type (Node-RED admin auth).
  RED.httpAdmin.post('/uns-edge/twin/:id/reset', RED.auth.needsPermission('uns-vfd-twin.write'), (req, res) => {
    const node = RED.nodes.getNode(String(req.params.id)) as TwinNode | null;
    if (!node || node.type !== 'uns-vfd-twin' || !node.resetComponent) {
      res.status(404).json({ error: RED._('twin.errors.not-deployed') });
      return;
    }
    const body: unknown = req.body;
    const component = isPlainObject(body) && typeof body.component === 'string' ? body.component : '';
    const user = (req as unknown as { user?: { username?: unknown } }).user;
    const who = typeof user?.username === 'string' ? `editor user ${user.username}` : 'editor';
    try {
      node.resetComponent(component, who);
      res.json({ reset: component });
    } catch (error) {
      res.status(400).json({ error: (error as Error).message });
    }
  });

  function VfdTwinNode(this: TwinNode, config: NodeDef & TwinNodeConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let settings;
    try {
      settings = twinSettings(config);
    } catch (error) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('twin.status.invalid') });
      node.error(`${RED._('twin.errors.invalid')}: ${error instanceof TwinSettingsError ? error.problems.join('; ') : (error as Error).message}`);
      return;
    }
    const timeScale = settings.timeScale;

    const file = new TwinStateFile(twinStateDir(RED.settings.userDir as string | undefined), node.id);
    const loaded = file.load();
    let state: TwinState;
    if (loaded.kind === 'ok') {
      state = loaded.state;
    } else {
      state = newTwinState(settings.topic, Date.now());
      if (loaded.kind === 'unreadable') {
        // Counting from zero would under-report wear without a word: every count says it is short until a reset.
        const why = `state file unreadable (${loaded.problem}${loaded.movedTo ? `; kept as ${loaded.movedTo}` : ''}): counted only since ${new Date().toISOString()}`;
        for (const name of COMPONENTS) state.components[name].incomplete = why;
        node.error(RED._('twin.errors.state-unreadable', { path: file.path, problem: why }));
      }
    }
    const twin = new DriveTwin(settings, state);
    if (timeScale !== 1) node.warn(RED._('twin.errors.time-scale', { scale: String(timeScale) }));

    let dirty = false;
    let lastSave = performance.now();
    let saveFailed = false;
    const save = () => {
      dirty = false;
      lastSave = performance.now();
      file.save(twin.state).then(() => {
        if (saveFailed) node.log(RED._('twin.errors.state-saved-again'));
        saveFailed = false;
      }, (error: Error) => {
        dirty = true;
        if (!saveFailed) node.error(RED._('twin.errors.state-not-saved', { path: file.path, error: error.message }));
        saveFailed = true;
      });
    };

    const showStatus = () => {
      const view = twin.view(performance.now());
      const prefix = timeScale !== 1 ? `×${timeScale} ` : '';
      let status: NodeStatus;
      if (!view.started) {
        status = { fill: 'grey', shape: 'ring', text: `${prefix}${RED._('twin.status.waiting')}` };
      } else {
        const fill = view.severity === 'alarm' ? 'red' : view.severity === 'warning' ? 'yellow' : 'green';
        const worst = view.worst
          ? RED._('twin.status.worst', { component: view.worst.component, percent: view.worst.consumedPercent.toFixed(1) })
          : RED._('twin.status.no-model');
        const zone = view.zone ? ` · ${RED._('twin.status.zone', { zone: view.zone })}` : '';
        const held = view.held ? ` · ${RED._('twin.status.held')}` : '';
        status = { fill, shape: view.held ? 'ring' : 'dot', text: `${prefix}${worst}${zone}${held}` };
      }
      node.status(status);
    };

    const handle = (update: TwinUpdate, send: (msg: Array<NodeMessageInFlow | NodeMessageInFlow[] | null>) => void) => {
      for (const line of update.notices) node.warn(line);
      const alerts = update.alerts.map((alert) => {
        node.log(`${alert.severity} ${alert.component}: ${alert.reason}`);
        return alertMessage(twin.asset, alert);
      });
      if (update.batch || alerts.length) send([(update.batch as unknown as NodeMessageInFlow) ?? null, alerts.length ? alerts : null]);
      if (update.changed) dirty = true;
      if (alerts.length || (dirty && performance.now() - lastSave >= SAVE_INTERVAL_MS)) save();
      showStatus();
    };
    const sendLater = (msgs: Array<NodeMessageInFlow | NodeMessageInFlow[] | null>) => node.send(msgs);

    node.resetComponent = (component, who) => handle(twin.reset(component, who, performance.now(), Date.now()), sendLater);

    // Stale inputs are noticed (and saved state kept fresh) even when no batch arrives.
    const tickMs = Math.max(250, Math.min(settings.staleAfterMs / 4, 5000));
    const ticker = setInterval(() => handle(twin.tick(performance.now(), Date.now()), sendLater), tickMs);
    showStatus();

    node.on('input', (msg: NodeMessageInFlow & { reset?: unknown; meta?: unknown }, send, done) => {
      try {
        if (msg.reset !== undefined) {
          handle(twin.reset(String(msg.reset), senderOf(msg), performance.now(), Date.now()), send);
        } else {
          if (!isPlainObject(msg.payload)) throw new TwinInputError(`msg.payload must be a tag batch object of metrics, got ${Array.isArray(msg.payload) ? 'an array' : msg.payload === null ? 'null' : `a ${typeof msg.payload}`}`);
          const meta = isPlainObject(msg.meta) ? (msg.meta as TagBatch['meta']) : undefined;
          handle(twin.update({ topic: msg.topic ?? '', payload: msg.payload as TagBatch['payload'], meta }, performance.now(), Date.now()), send);
        }
        done();
      } catch (error) {
        done(error instanceof TwinInputError ? new Error(`${RED._('twin.errors.refused')}: ${error.message}`) : (error as Error));
      }
    });

    node.on('close', (done: () => void) => {
      clearInterval(ticker);
      delete node.resetComponent;
      // The last state, after any write still in flight (writes are serialised, the newest wins).
      file.save(twin.state).then(done, (error: Error) => {
        node.error(RED._('twin.errors.state-not-saved', { path: file.path, error: error.message }));
        done();
      });
    });
  }

  RED.nodes.registerType('uns-vfd-twin', VfdTwinNode as unknown as Parameters<typeof RED.nodes.registerType>[1]);
};
