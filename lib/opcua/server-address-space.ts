/**
 * The UNS as an OPC UA address space (uns-opcua-server, docs/opcua-server.md):
 *
 *   Objects/UNS/<enterprise>/<site>/<area>/<line>/<cell>   FolderType (OPC 10000-5 §6.6)
 *                                        /<asset>          BaseObjectType, one per asset path
 *                                                /<metric> a Variable per metric
 *
 * NodeIds are strings in our namespace (urn:uns-edge:uns): a folder or asset is its path
 * (`s=acme/plant1`), a metric `s=<asset path>#<metric>` ("#" is allowed in neither, so no two
 * collide). A metric's DataType (Part 3 §5.6.2) comes from the model or `meta.type` (Sparkplug name
 * → built-in type, server-types.ts) or, without one, from the first non-null value (the variable
 * appears with it), and never changes: a later
 * value of another type is refused (StatusCode BadTypeMismatch, the last value kept) with a warning.
 * Numeric metrics with a unit are BaseAnalogType with EngineeringUnits (OPC 10000-8 §5.3.2.2,
 * §5.6.3); with an EURange from the model, AnalogItemType (§5.3.2.3). Each value carries the
 * StatusCode of its quality and the batch's source timestamp (Part 4 §7.11 DataValue).
 *
 * Growth is announced: folders and assets carry a NodeVersion property (Part 3 §5.5.2 / §9.32) and
 * the nodes added by one batch are one model change transaction, so the Server object raises one
 * GeneralModelChangeEvent (Part 3 §9.32.7) and the parents' NodeVersion increases.
 */
import type { AddressSpace, DataValue, Namespace, UAObject, UAVariable } from 'node-opcua';
import type { MetricDataType, MetricMeta, MetricValue, TagBatch } from '../uns/tag-batch';
import { opcua } from './load';
import type { MetricDeclaration, ServerModel } from './server-model';
import { BUILT_IN_OF_TAG_TYPE, builtInValueProblem, inferredTagType, StatusCodeValue, statusCodeOf } from './server-types';
import { euInformationOf } from './server-units';
import { BuiltInType, builtInTypeName } from './values';

export const UNS_NAMESPACE_URI = 'urn:uns-edge:uns';

/** Default bound of the address space: metrics beyond it are refused (warning), never grown without limit. */
export const DEFAULT_MAX_VARIABLES = 50_000;

const NUMERIC = new Set<number>([
  BuiltInType.SByte, BuiltInType.Byte, BuiltInType.Int16, BuiltInType.UInt16, BuiltInType.Int32, BuiltInType.UInt32,
  BuiltInType.Int64, BuiltInType.UInt64, BuiltInType.Float, BuiltInType.Double,
]);

/** One metric's variable and what the server knows of it. */
export interface MetricNode {
  readonly asset: string;
  readonly metric: string;
  readonly variable: UAVariable;
  /** OPC UA built-in type id of the DataType attribute (fixed). */
  readonly builtIn: number;
  readonly writable: boolean;
  readonly range?: { low: number; high: number };
  unit?: string;
}

export interface AddressSpaceWarning {
  /** Damping key: one warning per key per outage (the node decides how often to log). */
  key: string;
  text: string;
}

export interface ApplyResult {
  /** Metrics whose value was set. */
  updated: number;
  /** Variables created by this batch. */
  added: number;
  warnings: AddressSpaceWarning[];
}

/** Called by node-opcua for a client's write to a writable metric (the server-writes policy answers). */
export type WriteHandler = (metric: MetricNode, context: unknown, dataValue: DataValue) => Promise<number>;

function toVariantValue(builtIn: number, value: MetricValue): unknown {
  if (value === null) return null;
  switch (builtIn) {
    case BuiltInType.Int64:
    case BuiltInType.UInt64: {
      const words = BigInt.asUintN(64, BigInt(value as number | bigint));
      return [Number(words >> 32n), Number(words & 0xffffffffn)];
    }
    case BuiltInType.DateTime: return new Date(value as number);
    case BuiltInType.ByteString: return Buffer.from(value as string, 'base64');
    default: return value;
  }
}

export class UnsAddressSpace {
  readonly namespace: Namespace;
  private readonly root: UAObject;
  private readonly containers = new Map<string, { node: UAObject; asset: boolean }>();
  private readonly metrics = new Map<string, MetricNode>();
  private readonly maxVariables: number;
  private statusLookup = (name: string): number | undefined => {
    const code = (opcua().StatusCodes as unknown as Record<string, { value: number } | undefined>)[name];
    return code?.value;
  };

  constructor(private readonly addressSpace: AddressSpace, private readonly options: {
    model: ServerModel;
    maxVariables?: number;
    onWrite: WriteHandler;
  }) {
    this.maxVariables = options.maxVariables ?? DEFAULT_MAX_VARIABLES;
    this.namespace = addressSpace.registerNamespace(UNS_NAMESPACE_URI);
    this.root = this.namespace.addFolder(addressSpace.rootFolder.objects, {
      nodeId: 's=UNS', browseName: 'UNS', description: 'The Unified Namespace: ISA-95 levels as folders, one object per asset', nodeVersion: '0',
    } as Parameters<Namespace['addFolder']>[1]);
    const warnings: AddressSpaceWarning[] = [];
    this.transaction(() => {
      for (const [asset, metrics] of options.model.assets) {
        const object = this.assetObject(asset, warnings);
        if (!object) continue;
        for (const [name, declaration] of metrics) {
          this.addMetric(asset, object, name, BUILT_IN_OF_TAG_TYPE[declaration.type], declaration, declaration.unit, warnings);
        }
      }
    });
    if (warnings.length) throw new Error(`model: ${warnings.map((w) => w.text).join('; ')}`);
  }

  /** node-opcua's model change transaction (not in its public typings): one GeneralModelChangeEvent for all the nodes added in `fn`. */
  private transaction(fn: () => void): void {
    (this.addressSpace as unknown as { modelChangeTransaction(f: () => void): void }).modelChangeTransaction(fn);
  }

  get variableCount(): number {
    return this.metrics.size;
  }

  metric(asset: string, name: string): MetricNode | undefined {
    return this.metrics.get(`${asset}#${name}`);
  }

  /** NodeId text of a metric's variable (ns index of our namespace). */
  nodeIdOf(asset: string, metric?: string): string {
    return `ns=${this.namespace.index};s=${metric === undefined ? asset : `${asset}#${metric}`}`;
  }

  /** The folder chain and the asset object of a path; undefined (with a warning) on a path/asset clash. */
  private assetObject(path: string, warnings: AddressSpaceWarning[]): UAObject | undefined {
    const existing = this.containers.get(path);
    if (existing) {
      if (existing.asset) return existing.node;
      warnings.push({ key: `clash:${path}`, text: `asset "${path}" is also a folder of other assets' paths: its metrics are not exposed` });
      return undefined;
    }
    const levels = path.split('/');
    let parent = this.root;
    for (let i = 0; i < levels.length - 1; i++) {
      const folderPath = levels.slice(0, i + 1).join('/');
      const folder = this.containers.get(folderPath);
      if (folder?.asset) {
        warnings.push({ key: `clash:${folderPath}`, text: `asset "${path}" lies below asset "${folderPath}": its metrics are not exposed` });
        return undefined;
      }
      if (folder) {
        parent = folder.node;
        continue;
      }
      const node = this.namespace.addFolder(parent, { nodeId: `s=${folderPath}`, browseName: levels[i], nodeVersion: '0' } as Parameters<Namespace['addFolder']>[1]);
      this.containers.set(folderPath, { node, asset: false });
      parent = node;
    }
    const object = this.namespace.addObject({
      organizedBy: parent, nodeId: `s=${path}`, browseName: levels[levels.length - 1], description: `UNS asset ${path}`, nodeVersion: '0',
    });
    this.containers.set(path, { node: object, asset: true });
    return object;
  }

  private addMetric(
    asset: string, object: UAObject, name: string, builtIn: number, declaration: MetricDeclaration | undefined, unit: string | undefined,
    warnings: AddressSpaceWarning[],
  ): MetricNode | undefined {
    if (this.metrics.size >= this.maxVariables) {
      warnings.push({ key: 'max-variables', text: `address space full (${this.maxVariables} variables): metric "${name}" of ${asset} not added` });
      return undefined;
    }
    const { AccessLevelFlag, DataType } = opcua();
    const writable = declaration?.writable === true;
    const access = writable ? AccessLevelFlag.CurrentRead | AccessLevelFlag.CurrentWrite : AccessLevelFlag.CurrentRead;
    const dataTypeName = builtInTypeName(builtIn);
    const common = {
      componentOf: object,
      nodeId: `s=${asset}#${name}`,
      browseName: name,
      ...(declaration?.description ? { description: declaration.description } : {}),
      accessLevel: access,
      userAccessLevel: access,
      // Values change only when a batch arrives: clients may sample as fast as they like (exception-based).
      minimumSamplingInterval: 0,
    };
    const numeric = NUMERIC.has(builtIn);
    let variable: UAVariable;
    if (numeric && declaration?.range) {
      variable = this.namespace.addAnalogDataItem({
        ...common, dataType: dataTypeName, engineeringUnitsRange: declaration.range,
        ...(unit !== undefined ? { engineeringUnits: euInformationOf(unit) } : {}),
      });
    } else {
      variable = this.namespace.addVariable({ ...common, dataType: dataTypeName, ...(numeric ? { typeDefinition: 'BaseAnalogType' } : {}) });
      if (numeric && unit !== undefined) this.addEngineeringUnits(variable, unit);
    }
    // Until the first batch: no value yet (Part 4 §7.39 BadWaitingForInitialData).
    variable.setValueFromSource({ dataType: DataType.Null }, opcua().StatusCodes.BadWaitingForInitialData);
    const node: MetricNode = { asset, metric: name, variable, builtIn, writable, ...(declaration?.range ? { range: declaration.range } : {}), ...(unit !== undefined ? { unit } : {}) };
    if (writable) this.bindWrites(node);
    this.metrics.set(`${asset}#${name}`, node);
    return node;
  }

  private addEngineeringUnits(variable: UAVariable, unit: string): void {
    this.namespace.addVariable({
      propertyOf: variable, browseName: { name: 'EngineeringUnits', namespaceIndex: 0 }, dataType: 'EUInformation',
      value: { dataType: opcua().DataType.ExtensionObject, value: euInformationOf(unit) },
    });
  }

  /**
   * A client's write goes to the handler (server-writes.ts: roles, type, EURange, rate, command and
   * its result), not into the variable: the value shown stays what the asset reports.
   */
  private bindWrites(node: MetricNode): void {
    const handler = this.options.onWrite;
    const variable = node.variable as unknown as { writeValue: (context: unknown, dataValue: DataValue, ...rest: unknown[]) => void };
    variable.writeValue = (context: unknown, dataValue: DataValue, ...rest: unknown[]) => {
      const callback = rest[rest.length - 1] as (err: Error | null, statusCode?: unknown) => void;
      const indexRange = rest.length === 2 ? (rest[0] as { isEmpty?: () => boolean } | null) : null;
      const { getStatusCodeFromCode, StatusCodes } = opcua();
      if (indexRange && indexRange.isEmpty && !indexRange.isEmpty()) {
        callback(null, StatusCodes.BadIndexRangeInvalid);
        return;
      }
      handler(node, context, dataValue).then(
        (code) => callback(null, getStatusCodeFromCode(code)),
        (error: Error) => callback(error),
      );
    };
  }

  /**
   * Put one tag batch into the address space: new assets and metrics first (one model change), then
   * every value with its StatusCode and source timestamp. The batch was validated by the caller.
   */
  apply(batch: TagBatch): ApplyResult {
    const result: ApplyResult = { updated: 0, added: 0, warnings: [] };
    const asset = batch.topic;
    const meta = batch.meta ?? {};
    let object: UAObject | undefined;
    const fresh: string[] = [];
    for (const name in batch.payload) if (!this.metrics.has(`${asset}#${name}`)) fresh.push(name);
    if (fresh.length) {
      this.transaction(() => {
        object = this.assetObject(asset, result.warnings);
        if (!object) return;
        for (const name of fresh) {
          const m = meta[name];
          // A metric without a declared type appears with its first non-null value.
          const type: MetricDataType | undefined = m?.type ?? inferredTagType(batch.payload[name]);
          if (type && this.addMetric(asset, object, name, BUILT_IN_OF_TAG_TYPE[type], undefined, m?.unit, result.warnings)) result.added++;
        }
      });
    }
    const fallbackTime = batch.timestamp;
    for (const name in batch.payload) {
      const node = this.metrics.get(`${asset}#${name}`);
      if (!node) continue;
      if (this.setValue(node, batch.payload[name], meta[name], fallbackTime, result.warnings)) result.updated++;
    }
    return result;
  }

  private setValue(node: MetricNode, value: MetricValue, m: MetricMeta | undefined, fallbackTime: number | undefined, warnings: AddressSpaceWarning[]): boolean {
    const { DataType, VariantArrayType, getStatusCodeFromCode } = opcua();
    const time = new Date(m?.timestamp ?? fallbackTime ?? Date.now());
    const declaredType = m?.type;
    const typeProblem = declaredType !== undefined && BUILT_IN_OF_TAG_TYPE[declaredType] !== node.builtIn
      ? `is now declared ${declaredType}`
      : builtInValueProblem(node.builtIn, value);
    if (typeProblem) {
      warnings.push({
        key: `type:${node.asset}#${node.metric}`,
        text: `metric "${node.metric}" of ${node.asset} (DataType ${builtInTypeName(node.builtIn)}): value ${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)} refused, ${typeProblem}; the variable keeps its DataType and shows BadTypeMismatch`,
      });
      const last = node.variable.readValue();
      node.variable.setValueFromSource(last.value, getStatusCodeFromCode(StatusCodeValue.BadTypeMismatch), time);
      return false;
    }
    if (m?.unit !== undefined && m.unit !== node.unit && NUMERIC.has(node.builtIn)) this.updateUnit(node, m.unit);
    const status = statusCodeOf(m?.quality, m?.reason, this.statusLookup);
    const variant = value === null
      ? { dataType: DataType.Null }
      : { dataType: node.builtIn as number, arrayType: VariantArrayType.Scalar, value: toVariantValue(node.builtIn, value) };
    node.variable.setValueFromSource(variant, getStatusCodeFromCode(status), time);
    return true;
  }

  private updateUnit(node: MetricNode, unit: string): void {
    node.unit = unit;
    const property = node.variable.getPropertyByName?.('EngineeringUnits') as UAVariable | null | undefined;
    if (property) property.setValueFromSource({ dataType: opcua().DataType.ExtensionObject, value: euInformationOf(unit) });
    else this.transaction(() => this.addEngineeringUnits(node.variable, unit));
  }
}
