/**
 * uns-edge settings as a plain Node-RED settings file, for a stock Node-RED:
 *
 *   UNS_EDGE_USER_DIR=/var/lib/uns-edge UNS_EDGE_FLOWS=/etc/uns-edge/flows.json UNS_EDGE_HEADLESS=1 \
 *     npx node-red -s dist/settings.js
 *
 * Every option comes from the environment (docs/gateway.md lists them); the same hardening and the
 * same refusals apply as in `uns-edge run`: on a refusal this module prints the reason and exits 78
 * (EX_CONFIG, as the CLI does). `-D` overrides are applied by Node-RED after this module is loaded;
 * the admin guard re-checks them before Node-RED listens (lib/runtime/admin-guard.ts).
 * /healthz and /metrics are served by the uns-edge CLI only.
 */
import { buildSettings, runtimeOptionsFromEnv, SettingsError, type BuiltSettings } from './lib/runtime/settings';

const EXIT_CONFIG = 78;

function settingsFromEnv(): BuiltSettings {
  try {
    return buildSettings(runtimeOptionsFromEnv(process.env));
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    console.error(`[uns-edge] ${error.message}`);
    process.exit(EXIT_CONFIG);
  }
}

const { settings, notices } = settingsFromEnv();
for (const { level, message } of notices) console.warn(`[uns-edge] ${level}: ${message}`);

export = settings;
