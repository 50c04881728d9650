/**
 * Editor fragments shared by the node sets of the uns-edge package (package.json node-red.plugins).
 * Node-RED loads a plugin's editor file before the node sets' editor files, so the API that
 * editor-fragments-plugin.html puts on `window.UnsEdgeEditor` is there when nodes/<set>/<set>.html runs.
 * The runtime side only registers the plugin: the fragments live in the editor.
 */
interface FragmentsRuntime {
  plugins: { registerPlugin(id: string, definition: Record<string, unknown>): void };
}

export = function registerEditorFragments(RED: FragmentsRuntime): void {
  RED.plugins.registerPlugin('uns-edge-editor-fragments', { type: 'uns-edge-editor-fragments' });
};
