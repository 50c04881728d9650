/**
 * The *model* of uns-opcua-server: assets and metrics declared up front, so OPC UA clients can
 * browse before data flows, and the only place that makes a metric writable or gives it an EURange
 * (a tag batch can do neither: writes fail closed). JSON, checked as a whole with every problem named.
 *
 * ```json
 * { "assets": {
 *     "acme/plant1/press/line2/cell1/drive1": {
 *       "speedSetpoint": { "type": "Float", "unit": "rpm", "range": [0, 1800], "writable": true },
 *       "motorCurrent":  { "type": "Float", "unit": "A", "range": [0, 40] } } } }
 * ```
 */
import type { MetricDataType } from '../uns/tag-batch';
import { metricNameProblem, pathSegmentProblem } from '../uns/validate';
import { isPlainObject } from '../values';
import { JsonDuplicateKeyError, parseJsonStrict } from '../json-strict';
import { BUILT_IN_OF_TAG_TYPE } from './server-types';

export interface MetricDeclaration {
  /** Required: a declared variable exists before its first value, so its DataType must be known. */
  type: MetricDataType;
  unit?: string;
  /** EURange (OPC 10000-8 §5.3.2.1): writes outside it are refused with BadOutOfRange. */
  range?: { low: number; high: number };
  writable?: boolean;
  description?: string;
}

export interface ServerModel {
  assets: Map<string, Map<string, MetricDeclaration>>;
}

/** The keys of a metric declaration; any other key is a problem. */
const DECLARATION_KEYS: ReadonlySet<string> = new Set(['type', 'unit', 'range', 'writable', 'description']);

/** Bound of a model: it is built into the address space at start, in one go. */
export const MAX_MODEL_METRICS = 100_000;

export class ServerModelError extends Error {
  constructor(readonly problems: string[]) {
    super(`model: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
  }
}

export function emptyModel(): ServerModel {
  return { assets: new Map() };
}

/** Parse the model text ("" is an empty model); throws ServerModelError naming every problem. */
export function parseServerModel(text: string): ServerModel {
  if (text.trim() === '') return emptyModel();
  let raw: unknown;
  try {
    raw = parseJsonStrict(text);
  } catch (error) {
    throw new ServerModelError([error instanceof JsonDuplicateKeyError ? error.message : `not JSON: ${(error as Error).message}`]);
  }
  const problems: string[] = [];
  const model = emptyModel();
  if (!isPlainObject(raw) || !isPlainObject(raw.assets)) throw new ServerModelError(['must be an object {"assets": {"<asset path>": {"<metric>": {...}}}}']);
  for (const key of Object.keys(raw)) if (key !== 'assets') problems.push(`unknown key "${key}" (the model has only "assets")`);
  let count = 0;
  for (const [path, metrics] of Object.entries(raw.assets)) {
    const levels = path.split('/');
    const pathProblem = levels.map((l, i) => (pathSegmentProblem(l) ? `level ${i + 1} ${pathSegmentProblem(l)}` : undefined)).find(Boolean);
    if (pathProblem) problems.push(`asset "${path}": ${pathProblem}`);
    if (!isPlainObject(metrics)) {
      problems.push(`asset "${path}" must be an object of metrics`);
      continue;
    }
    const declared = new Map<string, MetricDeclaration>();
    for (const [name, d] of Object.entries(metrics)) {
      count++;
      const at = `asset "${path}" metric "${name}"`;
      const nameProblem = metricNameProblem(name);
      if (nameProblem) problems.push(`${at} ${nameProblem}`);
      if (!isPlainObject(d)) {
        problems.push(`${at} must be an object`);
        continue;
      }
      // A typo'd key ("writeable", "rnage") would silently drop what it meant to say: refused.
      for (const key of Object.keys(d)) if (!DECLARATION_KEYS.has(key)) problems.push(`${at}: unknown key "${key}" (known: ${[...DECLARATION_KEYS].join(', ')})`);
      if (!(typeof d.type === 'string' && Object.hasOwn(BUILT_IN_OF_TAG_TYPE, d.type))) {
        problems.push(`${at}: type must be a Sparkplug data type name (Int8…UInt64, Float, Double, Boolean, String, DateTime, Text, Bytes)`);
        continue;
      }
      const declaration: MetricDeclaration = { type: d.type as MetricDataType };
      if (d.unit !== undefined) {
        if (typeof d.unit === 'string') declaration.unit = d.unit;
        else problems.push(`${at}: unit must be a string`);
      }
      if (d.description !== undefined) {
        if (typeof d.description === 'string') declaration.description = d.description;
        else problems.push(`${at}: description must be a string`);
      }
      if (d.writable !== undefined) {
        if (typeof d.writable === 'boolean') declaration.writable = d.writable;
        else problems.push(`${at}: writable must be true or false`);
      }
      if (d.range !== undefined) {
        const r = d.range;
        if (Array.isArray(r) && r.length === 2 && r.every((n) => typeof n === 'number' && Number.isFinite(n)) && r[0] <= r[1]) {
          declaration.range = { low: r[0] as number, high: r[1] as number };
        } else {
          problems.push(`${at}: range must be [low, high] with finite numbers, low ≤ high`);
        }
      }
      const numeric = !['Boolean', 'String', 'Text', 'Bytes', 'DateTime'].includes(declaration.type);
      if (declaration.range && !numeric) problems.push(`${at}: a range needs a numeric type, not ${declaration.type}`);
      declared.set(name, declaration);
    }
    model.assets.set(path, declared);
  }
  if (count > MAX_MODEL_METRICS) problems.push(`declares ${count} metrics, more than ${MAX_MODEL_METRICS}`);
  if (problems.length) throw new ServerModelError(problems);
  return model;
}
