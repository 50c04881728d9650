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

    assert.deepEqual(degraded.report.reasons, ['uns-modbus-link "line 1" (m1) backoff: ECONNREFUSED']);

    const unavailable = healthReport({ ...input, flows: { ...started, state: 'stopped', problem: 'missing node types: x' } });
    assert.equal(unavailable.httpStatus, 503);
    assert.equal(unavailable.report.status, 'unavailable');
    assert.deepEqual(unavailable.report.reasons, ['flows stopped: missing node types: x']);
  });

  describe('nodes that fail while the flows run', () => {
    const TAB = { id: 't1', type: 'tab' };
    const LINK = { id: 'L1', type: 'uns-modbus-link', z: 't1', name: 'plc' };
    const READ = { id: 'R1', type: 'uns-modbus-read', z: 't1', name: 'drive 1', link: 'L1', x: 100, y: 100 };
    const running = new Set<string>();
    const input = (flows: FlowsStatus, nodes = tracker.problems()) =>
      ({ startedAt: 0, now: 1000, unsEdgeVersion: '1', nodeRedVersion: '4.1.15', flows, nodes, connections: [] });

    beforeEach(() => {
      tracker.close();
      running.clear();
      tracker = new FlowsTracker(events, () => now, (id) => running.has(id));
    });

    function start(flows: unknown[], errors: { id: string; type: string; name?: string; msg: unknown; level?: number }[] = []): void {
      events.emit('flows:starting', {});
      for (const error of errors) tracker.logHandler()({ level: 20, ...error });
      events.emit('flows:started', { config: { flows } });
    }

    it('an error a node logs while the flows start makes /healthz degraded, with the node and the reason', () => {
      running.add('L1').add('R1');
      start([TAB, LINK, READ], [{ id: 'R1', type: 'uns-modbus-read', name: 'drive 1', msg: 'Unit id must be an integer 0..255, got 300' }]);
      const { httpStatus, report } = healthReport(input(tracker.current()));
      assert.equal(httpStatus, 200);
      assert.equal(report.status, 'degraded');
      assert.deepEqual(report.reasons, ['uns-modbus-read "drive 1" (R1): Unit id must be an integer 0..255, got 300']);
      assert.deepEqual(report.nodes.map((node) => node.kind), ['error']);
      // Errors while running (one bad message) are not start-up problems; a warning is not an error.
      tracker.logHandler()({ level: 20, id: 'L1', type: 'uns-modbus-link', msg: new Error('one bad reply') });
      tracker.logHandler()({ level: 30, id: 'L1', type: 'uns-modbus-link', msg: 'a warning' });
      assert.equal(tracker.problems().length, 1);
      // The next start begins clean.
      start([TAB, LINK, READ]);
      assert.equal(healthReport(input(tracker.current())).report.status, 'ok');
    });

    it('a node in the flows that is not running is reported, with the error it logged if any', () => {
      running.add('L1');
      start([TAB, LINK, READ, { id: 'off', type: 'debug', z: 't1', d: true }], [{ id: 'R1', type: 'uns-modbus-read', msg: new Error('constructor threw') }]);
      assert.deepEqual(tracker.problems(), [{ id: 'R1', type: 'uns-modbus-read', name: 'drive 1', kind: 'not-started', message: 'constructor threw' }]);
      assert.match(healthReport(input(tracker.current())).report.reasons[0], /^uns-modbus-read "drive 1" \(R1\) did not start: constructor threw$/);
    });

    it('nodes on disabled tabs, inside subflow definitions, tabs, groups and junctions are not expected to run', () => {
      start([TAB, { id: 't2', type: 'tab', disabled: true }, { id: 'n2', type: 'inject', z: 't2' }, { id: 's1', type: 'subflow' },
        { id: 'n3', type: 'function', z: 's1' }, { id: 'g1', type: 'group', z: 't1' }, { id: 'j1', type: 'junction', z: 't1' }]);
      assert.deepEqual(tracker.problems(), []);
    });

    it('duplicate ids are named, with the types sharing them (the "Circular config node dependency" case)', () => {
      running.add('L1');
      start([{ id: 'L1', type: 'tab' }, { ...LINK, z: 'L1' }]);
      const [problem] = tracker.problems();
      assert.equal(problem.kind, 'duplicate-id');
      assert.match(problem.message, /2 entries of the flows share this id \(tab, uns-modbus-link\)/);
      assert.equal(healthReport(input(tracker.current())).report.status, 'degraded');
    });

    it('a red status is a problem until the node shows another colour; a removed node forgets it', () => {
      running.add('L1').add('R1');
      start([TAB, LINK, READ]);
      events.emit('node-status', { id: 'R1', status: { fill: 'red', shape: 'ring', text: 'invalid' } });
      assert.deepEqual(healthReport(input(tracker.current())).report.reasons, ['uns-modbus-read "drive 1" (R1): invalid']);
      events.emit('node-status', { id: 'R1', status: { fill: 'green', shape: 'dot', text: 'polling' } });
      assert.equal(healthReport(input(tracker.current())).report.status, 'ok');
      events.emit('node-status', { id: 'R1', status: { fill: 'red', shape: 'dot', text: 'timeout' } });
      start([TAB, LINK]);
      assert.deepEqual(tracker.problems(), []);
    });

    it('credentials that could not be decrypted make it degraded, saying which secret to check', () => {
      events.emit('runtime-event', { id: 'runtime-state', payload: { type: 'warning', error: 'credentials_load_failed' } });
      start([]);
      const { report } = healthReport(input(tracker.current()));
      assert.equal(report.status, 'degraded');
      assert.match(report.reasons[0], /credentials file could not be decrypted.*UNS_EDGE_CREDENTIAL_SECRET/);
    });

    it('a flows file of entries without a type ([1,2,3]) is named as such, not "missing node types: "', () => {
      events.emit('runtime-event', { id: 'runtime-state', payload: { state: 'stop', error: 'missing-types', types: [undefined] } });
      assert.equal(tracker.current().problem, 'flows entries without a "type" (every entry of a flows file must be a node object with "id" and "type")');
      events.emit('runtime-event', { id: 'runtime-state', payload: { state: 'stop', error: 'missing-types', types: ['exec', undefined] } });
      assert.match(tracker.current().problem ?? '', /^missing node types: exec; flows entries without a "type"/);
    });
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
