// Loaded with `--require` (scripts/node22.mjs sets NODE_OPTIONS): when UNS_TEST_NODE_RED names a
// prefix with node_modules/node-red, every require of `node-red`, `node-red/…` or `@node-red/…`
// from outside that prefix resolves there, so the tests (helper.init(require.resolve('node-red'))),
// node-red-node-test-helper, the core nodes the tests load and the gateway (dist/cli) all use that
// Node-RED instead of the one in this package's node_modules. Without the variable it does nothing.
'use strict';
const Module = require('node:module');
const { sep } = require('node:path');

const prefix = process.env.UNS_TEST_NODE_RED;
if (prefix) {
  const inside = prefix.endsWith(sep) ? prefix : prefix + sep;
  const NODE_RED_REQUEST = /^(?:node-red|@node-red\/[^/]+)(?:\/|$)/;
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function resolveInPrefix(request, parent, isMain, options) {
    if (NODE_RED_REQUEST.test(request) && !(parent && parent.filename && parent.filename.startsWith(inside))) {
      return resolveFilename.call(this, request, parent, isMain, { ...options, paths: [prefix] });
    }
    return resolveFilename.call(this, request, parent, isMain, options);
  };
}
