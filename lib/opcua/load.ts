/**
 * node-opcua, loaded on first use. Loading it takes about a second and ~70 MB of modules; a
 * Node-RED without OPC UA nodes in its flows must not pay that at start (docs/opcua.md § Start time).
 * Every other module of lib/opcua imports node-opcua for types only.
 */
import type * as NodeOpcua from 'node-opcua';

export type Opcua = typeof NodeOpcua;

let loaded: Opcua | undefined;

export function opcua(): Opcua {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('node-opcua') as Opcua;
  return loaded;
}
