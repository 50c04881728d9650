/**
 * The uns-edge editor theme, a Node-RED `node-red-theme` plugin. Active when the settings say
 * `editorTheme: { theme: 'uns-edge-theme' }` (the uns-edge CLI and settings.ts do). File paths are
 * relative to the package root, where Node-RED resolves theme files (editor-api theme.js).
 *
 * Node-RED loads plugins after every `-D` override and before it listens, so this is also where
 * the admin guard's start-up check runs (lib/runtime/admin-guard.ts): with uns-edge's settings, an
 * editor that ended up open to the network, or an adminAuth without a bcrypt hash, stops the process
 * (exit 78). A Node-RED with its own settings that merely has the uns-edge nodes installed is left alone.
 */
import { hasAdminGuard, startupRefusal, type GuardedSettings } from '../lib/runtime/admin-guard';
import { PALETTE_CATEGORIES, PALETTE_CATEGORY_DESCRIPTIONS } from '../lib/runtime/palette';

interface ThemePluginRuntime {
  plugins: { registerPlugin(id: string, definition: Record<string, unknown>): void };
  settings: GuardedSettings & { httpAdminMiddleware?: unknown };
  log: { error(message: string): void };
}

const themeDir = 'dist/editor-theme';
/** EX_CONFIG of sysexits.h, as the uns-edge CLI uses for a refused configuration. */
const EXIT_CONFIG = 78;

function refuseUnsafeStart(RED: ThemePluginRuntime): void {
  if (!hasAdminGuard(RED.settings.httpAdminMiddleware)) return;
  const refusal = startupRefusal(RED.settings);
  if (!refusal) return;
  RED.log.error(`[uns-edge] refusing to start: ${refusal}`);
  process.exit(EXIT_CONFIG);
}

export = function registerTheme(RED: ThemePluginRuntime): void {
  refuseUnsafeStart(RED);
  RED.plugins.registerPlugin('uns-edge-theme', {
    type: 'node-red-theme',
    css: `${themeDir}/theme.css`,
    page: {
      title: 'UNS Edge',
      favicon: `${themeDir}/favicon.svg`,
      tabicon: { icon: `${themeDir}/favicon.svg`, colour: '#13212e' },
    },
    header: { title: 'UNS Edge', image: `${themeDir}/logo.svg` },
    palette: {
      // Used when the settings have no paletteCategories of their own (a stock settings.js).
      categories: { order: [...PALETTE_CATEGORIES], descriptions: { ...PALETTE_CATEGORY_DESCRIPTIONS } },
    },
  });
};
