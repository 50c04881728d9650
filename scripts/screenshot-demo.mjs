// Renders the demo flow in the editor (headless Debian Chromium) to docs/img/demo-flow.png for the
// README. Run after `npm run build`: node scripts/screenshot-demo.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const userDir = mkdtempSync(join(tmpdir(), 'uns-edge-shot-'));
const env = { ...process.env, UNS_EDGE_PORT: '18890', UNS_EDGE_MQTT_PORT: '18891', UNS_EDGE_SIM_PORT: '18892' };
const demo = spawn(process.execPath, [join(root, 'dist/cli/uns-edge.js'), 'demo', '--user-dir', userDir], { env, stdio: 'inherit' });
try {
  await new Promise((resolve) => setTimeout(resolve, 4000));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 620 } });
  await page.goto('http://127.0.0.1:18890/');
  await page.waitForSelector('.red-ui-palette-node[data-palette-type="uns-out"]', { timeout: 30000 });
  await page.waitForTimeout(2500);
  await page.screenshot({ path: join(root, 'docs/img/demo-flow.png') });
  await browser.close();
} finally {
  demo.kill('SIGTERM');
  rmSync(userDir, { recursive: true, force: true });
}
