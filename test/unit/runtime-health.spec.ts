/** lib/runtime/health.ts and connection-registry.ts: flows state from runtime events, /healthz status, connection gauge. */
import { strict as assert } from 'node:assert';
import { EventEmitter } from 'node:events';
import { connectionStatuses, enableConnectionMetrics, forgetConnection, reportConnection } from '../../lib/runtime/connection-registry';
import { FlowsTracker, healthReport, type FlowsStatus } from '../../lib/runtime/health';
import { metricsRegistry } from '../../lib/runtime/metrics';

describe('runtime health', () => {
  let events: EventEmitter;
  let now: number;
  let tracker: FlowsTracker;

  beforeEach(() => {
    events = new EventEmitter();
    now = 1000;
    tracker = new FlowsTracker(events, () => now);
  });
  afterEach(() => {
    tracker.close();
    for (const { id } of connectionStatuses()) forgetConnection(id);
  });

  it('follows flows:starting/started/stopped and counts deploys and nodes', async () => {
    assert.equal(tracker.current().state, 'starting');
    const settled = tracker.whenSettled();
    now = 1500;
    events.emit('flows:started', { config: { flows: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] } });
    assert.deepEqual(await settled, { state: 'started', since: 1500, starts: 1, nodes: 3, problem: undefined });
    events.emit('flows:stopped', {});
    events.emit('flows:starting', {});
    events.emit('flows:started', { config: { flows: [{ id: 'a' }] } });
    assert.equal(tracker.current().starts, 2);
    assert.equal(tracker.current().nodes, 1);
  });

  it('reports missing node types as stopped, with the types, and settles', async () => {
    const settled = tracker.whenSettled();
    events.emit('runtime-event', { id: 'runtime-state', payload: { state: 'stop', error: 'missing-types', types: ['uns-out', 'exec'] }, retain: true });
    const status = await settled;
    assert.equal(status.state, 'stopped');
    assert.equal(status.problem, 'missing node types: uns-out, exec');
  });

  it('keeps a credentials warning visible after the flows start', () => {
    events.emit('runtime-event', { id: 'runtime-state', payload: { type: 'warning', error: 'credentials_load_failed' } });
    events.emit('flows:started', { config: { flows: [] } });
    assert.equal(tracker.current().warning, 'credentials_load_failed');
    assert.equal(tracker.current().state, 'started');
  });

  it('stops listening on close()', () => {
    tracker.close();
    assert.equal(events.listenerCount('flows:started') + events.listenerCount('runtime-event'), 0);
  });

  it('is ok, degraded or unavailable (503) from the flows and the reported connections', () => {
    const started: FlowsStatus = { state: 'started', since: 0, starts: 1, nodes: 4 };
    const input = { startedAt: 0, now: 12_340, unsEdgeVersion: '1.2.3', nodeRedVersion: '4.1.15', flows: started };
    const ok = healthReport(input);
    assert.equal(ok.httpStatus, 200);
    assert.equal(ok.report.status, 'ok');
    assert.equal(ok.report.uptime, 12.3);
    assert.deepEqual(ok.report.versions, { 'uns-edge': '1.2.3', 'node-red': '4.1.15', node: process.version });

    reportConnection({ id: 'b1', type: 'uns-broker', name: 'plant broker', state: 'connected', connected: true }, 10);
    reportConnection({ id: 'm1', type: 'uns-modbus-link', name: 'line 1', state: 'backoff', connected: false, detail: 'ECONNREFUSED' }, 20);
    const degraded = healthReport(input);
    assert.equal(degraded.httpStatus, 200);
    assert.equal(degraded.report.status, 'degraded');
    assert.deepEqual(degraded.report.connections.map((c) => [c.type, c.state, c.since]), [['uns-broker', 'connected', 10], ['uns-modbus-link', 'backoff', 20]]);

    const unavailable = healthReport({ ...input, flows: { ...started, state: 'stopped', problem: 'missing node types: x' } });
    assert.equal(unavailable.httpStatus, 503);
    assert.equal(unavailable.report.status, 'unavailable');
  });

  it('keeps `since` while the state is unchanged, and forgets closed config nodes', () => {
    reportConnection({ id: 'b1', type: 'uns-broker', name: 'b', state: 'connecting', connected: false }, 100);
    reportConnection({ id: 'b1', type: 'uns-broker', name: 'b', state: 'connecting', connected: false, detail: 'retry 2' }, 200);
    assert.equal(connectionStatuses()[0].since, 100);
    assert.equal(connectionStatuses()[0].detail, 'retry 2');
    reportConnection({ id: 'b1', type: 'uns-broker', name: 'b', state: 'connected', connected: true }, 300);
    assert.equal(connectionStatuses()[0].since, 300);
    forgetConnection('b1');
    assert.deepEqual(connectionStatuses(), []);
  });

  it('exposes connections as uns_edge_connection_up on the shared registry', async () => {
    enableConnectionMetrics();
    enableConnectionMetrics(); // idempotent: a second runtime start must not throw
    reportConnection({ id: 'b1', type: 'uns-broker', name: 'plant', state: 'connected', connected: true });
    reportConnection({ id: 'm1', type: 'uns-modbus-link', name: 'line', state: 'closed', connected: false });
    let text = await metricsRegistry.getSingleMetricAsString('uns_edge_connection_up');
    assert.match(text, /uns_edge_connection_up\{id="b1",type="uns-broker",name="plant"\} 1/);
    assert.match(text, /uns_edge_connection_up\{id="m1",type="uns-modbus-link",name="line"\} 0/);
    forgetConnection('m1');
    text = await metricsRegistry.getSingleMetricAsString('uns_edge_connection_up');
    assert.doesNotMatch(text, /id="m1"/);
  });
});
