/**
 * uns-edge settings as a plain Node-RED settings file, for a stock Node-RED:
 *
 *   UNS_EDGE_USER_DIR=/var/lib/uns-edge UNS_EDGE_FLOWS=/etc/uns-edge/flows.json UNS_EDGE_HEADLESS=1 \
 *     npx node-red -s dist/settings.js
 *
 * Every option comes from the environment (docs/gateway.md lists them); the same hardening and the
 * same refusals apply as in `uns-edge run`. On a refusal Node-RED prints "Error loading settings
 * file" with the reason and exits 1. /healthz and /metrics are served by the uns-edge CLI only.
 */
import { buildSettings, runtimeOptionsFromEnv } from './lib/runtime/settings';

const { settings, notices } = buildSettings(runtimeOptionsFromEnv(process.env));
for (const { level, message } of notices) console.warn(`[uns-edge] ${level}: ${message}`);

export = settings;
