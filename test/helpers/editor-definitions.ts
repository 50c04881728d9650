/**
 * The node definitions an editor file registers, read without a browser: each
 * `<script type="text/javascript">` runs in a fresh context where RED.nodes.registerType records the
 * definition (type and the whole definition object) and every other editor API (validators,
 * jQuery, window.UnsEdgeEditor of the fragments plugin, document) is an inert stand-in; only
 * `$.extend`, used to build defaults, is real. Types registered in a loop are found too.
 */
import { runInNewContext } from 'node:vm';

export interface RegisteredDefinition {
  type: string;
  definition: {
    category?: string;
    inputs?: number;
    outputs?: number;
    defaults?: Record<string, { value?: unknown }>;
    paletteLabel?: string | (() => string);
  };
}

const inert: unknown = new Proxy(function inertFunction() { /* inert */ }, {
  get: (_target, key) => (key === 'extend' ? Object.assign : inert),
  apply: () => inert,
});

export function registeredDefinitions(html: string): RegisteredDefinition[] {
  const registered: RegisteredDefinition[] = [];
  for (const script of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
    const registerType = (type: string, definition: RegisteredDefinition['definition']) => registered.push({ type, definition });
    runInNewContext(script[1]!, { RED: { nodes: { registerType }, validators: inert, _: inert, settings: inert }, $: inert, jQuery: inert, window: inert, document: inert });
  }
  return registered;
}
