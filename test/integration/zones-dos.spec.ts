/**
 * T-DOS-01 (../shared/reference/security.md §6, issue 10 "Bad input"): a 10× flood of writes from
 * the IT side into a uns-conduit toward uns-vfd — excess dropped, audit aggregated, the OT side's
 * Modbus poll latency unchanged.
 *
 * One Node-RED runtime (node-red-node-test-helper), the simulated plant over real Modbus TCP: a
 * uns-modbus-read polls drive 2 every POLL_MS on the same uns-modbus-link as the uns-vfd of drive 1.
 * A real core function node builds the writes (another JS realm, as a user's flow does) and feeds
 * the conduit, whose only rule allows setpoint writes of one principal at RATE per second. The poll
 * intervals (arrival times of the read batches) are measured for FLOOD_MS without the flood, then
 * for FLOOD_MS with writes arriving at 10 × RATE: the flood's p95 interval stays within the
 * baseline's p95 plus one poll period (a bound taken from the baseline of this run on this machine,
 * not a fixed number of ms). The writes beyond the rate are refused with "rate limit" and never
 * reach the drive; the audit folder holds a few records per second (the first of each key, then one
 * summary per key per second, SR 2.9), whose counts add up to every decision, and verifies.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import driveNodes = require('../../nodes/drive/drive');
import modbusNodes = require('../../nodes/modbus/modbus');
import zonesNodes = require('../../nodes/zones/zones');
import { AUDIT_FILE, type AuditRecord } from '../../lib/zones/audit-log';
import { verifyAuditDir } from '../../lib/zones/audit-verify';
import { SimulatedPlantHandle, startSimulatedPlant } from '../../sim';
import { helper } from '../helpers/node-red-runtime';

/* eslint-disable @typescript-eslint/no-require-imports */
const functionNode = require('@node-red/nodes/core/function/10-function.js') as unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

const ASSET = 'acme/plant1/press/line2/cell1/drive1';
const PRINCIPAL = 'mqtt:mes-01';
/** The OT poll period. */
const POLL_MS = 100;
/** Allowed setpoint writes per second (the rule's rate limit, a bucket of as many tokens). */
const RATE = 20;
/** The flood: ten times the allowed rate. */
const FLOOD_FACTOR = 10;
/** Length of the baseline and of the flood. */
const FLOOD_MS = 4_000;

const POLICY = {
  rules: [{
    id: 'setpoint', operation: ['write'], principal: { id: [`${PRINCIPAL}*`] }, metric: ['speedSetpoint'],
    value: { type: 'number', min: 0, max: 1800 }, rate: { count: RATE, perSeconds: 1, per: 'principal' }, action: 'allow',
  }],
};

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function intervals(times: number[]): number[] {
  return times.slice(1).map((time, i) => time - times[i]!);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('T-DOS-01: a 10× write flood into a uns-conduit leaves the OT Modbus poll on time (simulated plant, one runtime)', function () {
  this.timeout(60_000);
  let plant: SimulatedPlantHandle;
  let auditDir: string;
  let userDir: string;

  before(async () => {
    plant = await startSimulatedPlant({ port: 0, drives: 2 });
    auditDir = mkdtempSync(join(tmpdir(), 'uns-zones-dos-audit-'));
    userDir = mkdtempSync(join(tmpdir(), 'uns-zones-dos-'));
    helper.settings({ userDir });
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });

  after(async () => {
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
    await plant?.close();
    rmSync(auditDir, { recursive: true, force: true });
    rmSync(userDir, { recursive: true, force: true });
  });

  it('drops the excess with "rate limit", writes a few aggregated audit records, and the poll p95 interval stays within baseline p95 + one period', async () => {
    const setpoint = `msg.topic = ${JSON.stringify(ASSET)}; msg.payload = { speedSetpoint: 1200 };
      msg.principal = { via: 'mqtt', id: ${JSON.stringify(PRINCIPAL)} }; return msg;`;
    await helper.load([modbusNodes, driveNodes, zonesNodes, functionNode], [
      { id: 'tab', type: 'tab' },
      { id: 'it', type: 'uns-zone', name: 'enterprise', level: '4', slt: '2,2,2,2,2,1,1' },
      { id: 'ot', type: 'uns-zone', name: 'ot-cell-1', level: '1', slt: '2,2,2,2,2,1,1' },
      { id: 'link', type: 'uns-modbus-link', host: '127.0.0.1', port: plant.port, timeout: 1000, reconnect: 100, zone: 'ot' },
      {
        id: 'read', type: 'uns-modbus-read', z: 'tab', link: 'link', unitId: 2, interval: POLL_MS, topic: 'acme/plant1/press/line2/cell1/drive2', mergeGap: 8,
        metrics: [
          { name: 'actualSpeed', table: 'input', address: 2, type: 'int16', unit: 'rpm' },
          { name: 'motorCurrent', table: 'input', address: 4, type: 'float32', unit: 'A' },
        ],
        wires: [['polls']],
      },
      { id: 'polls', type: 'helper', z: 'tab' },
      { id: 'mes', type: 'function', z: 'tab', func: setpoint, outputs: 1, wires: [['conduit']] },
      {
        id: 'conduit', type: 'uns-conduit', z: 'tab', name: 'mes-to-cell', sourceZone: 'it', destinationZone: 'ot', traffic: 'auto',
        policy: JSON.stringify(POLICY), auditDir, wires: [['vfd', 'passed'], ['decisions']],
      },
      { id: 'passed', type: 'helper', z: 'tab' },
      { id: 'decisions', type: 'helper', z: 'tab' },
      { id: 'vfd', type: 'uns-vfd', z: 'tab', link: 'link', unitId: 1, profile: 'uns-edge-simulated-drive', interval: 1000, topic: ASSET, statusParameter: 'actualSpeed', wires: [[], []] },
    ]);
    const pollTimes: number[] = [];
    helper.getNode('polls').on('input', () => pollTimes.push(performance.now()));
    /** When the conduit's last decision came out: the bucket refills until then, not only until the flood's end. */
    let lastDecisionAt = 0;
    const passed: unknown[] = [];
    helper.getNode('passed').on('input', (msg) => {
      passed.push(msg);
      lastDecisionAt = performance.now();
    });
    const refused: Array<{ result: string; reason: string }> = [];
    helper.getNode('decisions').on('input', (msg: { payload: { result: string; reason: string } }) => {
      refused.push(msg.payload);
      lastDecisionAt = performance.now();
    });

    // Warm-up: the link is connected and the poll runs.
    for (const deadline = Date.now() + 10_000; pollTimes.length < 5; await sleep(20)) {
      if (Date.now() > deadline) throw new Error('the Modbus poll did not start');
    }
    const baselineStart = performance.now();
    await sleep(FLOOD_MS);
    const baseline = intervals(pollTimes.filter((time) => time >= baselineStart));

    // The flood: 10 × RATE writes per second, paced by elapsed time (a late timer sends the ones it owes).
    const mes = helper.getNode('mes');
    const floodStart = performance.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = Math.min(performance.now() - floodStart, FLOOD_MS);
        const owed = Math.floor((elapsed / 1000) * RATE * FLOOD_FACTOR) - sent;
        for (let i = 0; i < owed; i++) mes.receive({ payload: 'set' });
        sent += owed;
        if (elapsed >= FLOOD_MS) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
    });
    const floodEnd = performance.now();
    const flood = intervals(pollTimes.filter((time) => time >= floodStart && time <= floodEnd));
    for (const deadline = Date.now() + 10_000; passed.length + refused.length < sent; await sleep(20)) {
      if (Date.now() > deadline) throw new Error(`${passed.length + refused.length} of ${sent} writes decided`);
    }

    const baselineP95 = percentile(baseline, 95);
    const floodP95 = percentile(flood, 95);
    console.log(`      T-DOS-01: ${sent} writes in ${FLOOD_MS} ms (${FLOOD_FACTOR}× ${RATE}/s): ${passed.length} passed, ${refused.length} refused; `
      + `poll interval p50/p95/max baseline ${percentile(baseline, 50).toFixed(1)}/${baselineP95.toFixed(1)}/${Math.max(...baseline).toFixed(1)} ms `
      + `(${baseline.length}), flood ${percentile(flood, 50).toFixed(1)}/${floodP95.toFixed(1)}/${Math.max(...flood).toFixed(1)} ms (${flood.length})`);

    // The flood was 10× the rate; the excess is dropped by the rate limit, and only the excess.
    assert.equal(sent, (FLOOD_MS / 1000) * RATE * FLOOD_FACTOR);
    // A full bucket, then its refill while the conduit decided: the flood's duration, or longer when a loaded
    // machine made the conduit decide the last writes after the flood had ended.
    const decidingMs = Math.max(FLOOD_MS, lastDecisionAt - floodStart);
    const ceiling = RATE + Math.floor(RATE * (decidingMs / 1000)) + 1;
    assert.ok(passed.length >= RATE && passed.length <= ceiling, `passed ${passed.length}, expected ${RATE}…${ceiling}`);
    assert.equal(passed.length + refused.length, sent);
    assert.ok(refused.every((decision) => decision.result === 'deny' && /rate limit of rule setpoint exceeded/.test(decision.reason)),
      `every refusal is the rate limit: ${JSON.stringify(refused.find((decision) => !/rate limit/.test(decision.reason)))}`);

    // The OT poll kept its period: as many polls as the baseline, p95 within baseline p95 + one period.
    assert.ok(flood.length >= baseline.length - 2, `${flood.length} polls during the flood, ${baseline.length} before`);
    assert.ok(floodP95 <= baselineP95 + POLL_MS, `poll p95 interval ${floodP95.toFixed(1)} ms under the flood, baseline ${baselineP95.toFixed(1)} ms + ${POLL_MS} ms`);

    // The audit: aggregated, not one record per message; its counts account for every decision.
    await helper.unload(); // closes the conduit: the last summaries are written
    const records = readdirSync(auditDir).filter((file) => AUDIT_FILE.test(file)).sort()
      .flatMap((file) => readFileSync(join(auditDir, file), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditRecord));
    const decisions = records.filter((record) => record.category === 'access-control' && record.principal !== undefined && String(record.principal).startsWith(PRINCIPAL));
    const counted = (result: string) => decisions.filter((record) => record.result === result)
      .reduce((sum, record) => sum + (record.type === 'summary' ? Number(record.count) : 1), 0);
    const windows = Math.ceil(FLOOD_MS / 1000) + 2;
    console.log(`      T-DOS-01 audit: ${decisions.length} decision/summary records for ${sent} writes (${decisions.filter((record) => record.type === 'summary').length} summaries)`);
    assert.ok(decisions.length <= 4 * windows, `${decisions.length} audit records for ${sent} writes: at most a decision and a summary per result per second`);
    assert.ok(decisions.some((record) => record.type === 'summary' && record.result === 'deny'), 'denials summarised');
    assert.equal(counted('deny'), refused.length);
    assert.equal(counted('allow'), passed.length);
    assert.equal(verifyAuditDir(auditDir).ok, true);
  });
});
