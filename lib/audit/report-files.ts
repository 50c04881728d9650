/**
 * The report on disk: `<folder>/asset-scan-<time>.json` (the inventory and findings) and `.html`
 * (lib/audit/report-html.ts), each written to a temporary file and renamed, so a reader never sees
 * half a report. The folder keeps the newest `keep` scans (default 20): older pairs are removed
 * after a new one is written (bounded; docs/asset-scan.md § "Files").
 */
import { mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderHtmlReport } from './report-html';
import type { ScanReport } from './scanner';

export const DEFAULT_KEEP_REPORTS = 20;
const REPORT_FILE = /^asset-scan-(\d{8}T\d{6}\d{3}Z)\.(json|html)$/;

function writeAtomic(file: string, text: string): void {
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, text, { mode: 0o640 });
  renameSync(temporary, file);
}

export function writeReportFiles(report: ScanReport, folder: string, keep = DEFAULT_KEEP_REPORTS): { json: string; html: string } {
  mkdirSync(folder, { recursive: true, mode: 0o750 });
  const stamp = report.finishedAt.replace(/[-:.]/g, '');
  const json = join(folder, `asset-scan-${stamp}.json`);
  const html = join(folder, `asset-scan-${stamp}.html`);
  writeAtomic(json, `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(html, renderHtmlReport(report));
  const stamps = [...new Set(readdirSync(folder).map((name) => REPORT_FILE.exec(name)?.[1]).filter((s): s is string => s !== undefined))].sort();
  for (const old of stamps.slice(0, Math.max(0, stamps.length - keep))) {
    for (const ext of ['json', 'html']) {
      try {
        unlinkSync(join(folder, `asset-scan-${old}.${ext}`));
      } catch {
        // already gone
      }
    }
  }
  return { json, html };
}
