/**
 * The scan report as one self-contained HTML file: inline CSS, no script, no external resource,
 * and a Content-Security-Policy that forbids both (default-src 'none'), so the file renders the same
 * offline, from disk or as an e-mail attachment.
 *
 * Device strings are hostile input (an FC 43 vendor name, a certificate subject, a build number can
 * hold `<script>`, quotes, control characters): every value goes through escapeHtml(), including
 * attribute values, and nothing from a device is ever placed in a URL, a style or a tag name.
 */
import { type Finding, SECURITY_REQUIREMENTS, SEVERITIES, severityCounts } from './findings';
import type { ScanReport } from './scanner';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text safe in element content and in quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => ESCAPES[c]).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\uFFFD');
}

const e = escapeHtml;

function table(headers: string[], rows: string[][], className = ''): string {
  if (rows.length === 0) return '<p class="none">none</p>';
  return `<table${className ? ` class="${className}"` : ''}><thead><tr>${headers.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead>`
    + `<tbody>${rows.map((r) => `<tr>${r.join('')}</tr>`).join('')}</tbody></table>`;
}

const td = (value: unknown) => `<td>${e(value)}</td>`;

function findingRow(f: Finding): string[] {
  const srs = f.sr.map((sr) => `<abbr title="${e(SECURITY_REQUIREMENTS[sr] ?? '')}">${e(sr)}</abbr>`).join(', ');
  return [`<td class="sev ${e(f.severity)}">${e(f.severity)}</td>`, td(f.title), td(f.target), `<td>${srs}</td>`, td(f.evidence), td(f.remediation)];
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0}.sev{font-weight:bold;text-transform:uppercase}
.critical{background:#7a0010;color:#fff}.high{background:#d9342b;color:#fff}.medium{background:#f0a020}.low{background:#f7e08a}.info{background:#dde}
.counts span{display:inline-block;padding:4px 10px;margin-right:6px;border-radius:4px}.none{color:#777}
code{font-family:ui-monospace,monospace}
`;

/** The whole report document. */
export function renderHtmlReport(report: ScanReport): string {
  const counts = severityCounts(report.findings);
  const { inventory } = report;
  const modbusRows = inventory.modbus.flatMap((host) => [
    ...host.units.map((u) => [
      td(`${host.host}:${host.port}`), td(u.unitId), td(u.identity?.vendorName ?? ''), td(u.identity?.productCode ?? ''), td(u.identity?.revision ?? ''),
      td([u.identity?.productName, u.identity?.modelName, u.identity?.userApplicationName].filter(Boolean).join(' / ')),
      td(u.functionCodes.map((p) => `${p.fc}: ${p.answer}${p.exception !== undefined ? ` ${p.exception}` : ''}`).join(', ')),
      td(u.identityProblem ?? ''),
    ]),
    ...(host.units.length === 0 || host.problem ? [[td(`${host.host}:${host.port}`), td(''), td(''), td(''), td(''), td(''), td(''), td(host.problem ?? (host.reachable ? 'no unit answered' : 'not reachable'))]] : []),
  ]);
  const opcuaRows = inventory.opcua.flatMap((server) => (server.endpoints.length
    ? server.endpoints.map((ep) => [td(server.url), td(ep.endpointUrl), td(ep.securityMode), td(ep.securityPolicy), td(ep.userTokenTypes.join(', ')),
      td(ep.certificate ? `${ep.certificate.subject} (to ${ep.certificate.validTo})` : '')])
    : [[td(server.url), td(''), td(''), td(''), td(''), td(server.problem ?? 'no endpoints')]]));
  const buildRows = inventory.opcua.filter((s) => s.buildInfo || s.buildInfoProblem).map((s) => [
    td(s.url), td(s.buildInfo?.source ?? ''), td(s.buildInfo?.manufacturerName ?? ''), td(s.buildInfo?.productName ?? ''), td(s.buildInfo?.productUri ?? ''),
    td([s.buildInfo?.softwareVersion, s.buildInfo?.buildNumber, s.buildInfo?.buildDate].filter(Boolean).join(' / ')), td(s.buildInfoProblem ?? ''),
  ]);
  const mqttRows = inventory.mqtt.map((l) => [
    td(`${l.host}:${l.port}`), td(l.tls ? 'TLS' : 'plain'), td(l.source), td(l.open ? 'open' : 'closed'), td(l.mqtt ? 'yes' : 'no'),
    td(l.anonymousAccepted === undefined ? '' : l.anonymousAccepted ? 'accepted' : `refused (${l.anonymousReturnCode})`),
    td(l.certificate ? `${l.certificate.subject} (to ${l.certificate.validTo})` : ''), td(l.problem ?? ''),
  ]);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${e(report.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${e(report.title)}</h1>
<p>Scanned ${e(report.startedAt)} to ${e(report.finishedAt)} by uns-edge ${e(report.scanner.version)} at ${e(report.scanner.probesPerSecond)} probes/s (${e(report.scanner.probes)} probes). Findings map to IEC 62443-3-3 system requirements (SR); severity is the scanner's.</p>
<p class="counts">${SEVERITIES.map((s) => `<span class="${s}">${s}: ${counts[s]}</span>`).join('')}</p>
<h2>Findings</h2>
${table(['Severity', 'Finding', 'Target', 'IEC 62443-3-3', 'Evidence', 'What to do'], report.findings.map(findingRow), 'findings')}
<h2>Modbus TCP devices</h2>
${table(['Host', 'Unit', 'Vendor', 'Product code', 'Revision', 'Product / model / application', 'Function codes (probe)', 'Notes'], modbusRows, 'modbus')}
<h2>OPC UA endpoints</h2>
${table(['Server', 'Endpoint', 'Mode', 'Policy', 'User tokens', 'Certificate'], opcuaRows, 'opcua')}
<h3>Software and build</h3>
${table(['Server', 'Source', 'Manufacturer', 'Product', 'Product URI', 'Version / build / date', 'Notes'], buildRows)}
<h2>MQTT brokers</h2>
${table(['Listener', 'Transport', 'Source', 'Port', 'MQTT', 'Anonymous', 'Certificate', 'Notes'], mqttRows, 'mqtt')}
${report.refused.length ? `<h2>Not scanned</h2><ul>${report.refused.map((r) => `<li>${e(r)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
