/**
 * The uns-edge editor theme, a Node-RED `node-red-theme` plugin. Active when the settings say
 * `editorTheme: { theme: 'uns-edge-theme' }` (the uns-edge CLI and settings.ts do). File paths are
 * relative to the package root, where Node-RED resolves theme files (editor-api theme.js).
 */
import { PALETTE_CATEGORIES, PALETTE_CATEGORY_DESCRIPTIONS } from '../lib/runtime/palette';

interface ThemePluginRuntime {
  plugins: { registerPlugin(id: string, definition: Record<string, unknown>): void };
}

const themeDir = 'dist/editor-theme';

export = function registerTheme(RED: ThemePluginRuntime): void {
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
