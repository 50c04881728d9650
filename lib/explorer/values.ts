/**
 * What the UNS explorer shows of a payload (docs/explorer.md § "Values"): the UNS per-metric JSON
 * (`{"value", "timestamp", "quality", "unit"}`, docs/uns-topics.md) as its value with quality, unit
 * and source time; an asset-level JSON as its metric count; other text as text; anything else as
 * bytes. Display text is cut to MAX_TEXT characters.
 */
import { decodeAssetPayload, decodeMetricPayload } from '../uns/wire';
import type { Quality } from '../uns/tag-batch';

export type ValueFormat = 'uns' | 'uns-asset' | 'json' | 'text' | 'binary' | 'sparkplug' | 'sparkplug-metric';

export interface TopicValue {
  /** Display text of the value. */
  text: string;
  format: ValueFormat;
  quality?: Quality;
  unit?: string;
  /** Source timestamp (ms since the epoch), when the payload carries one. */
  timestamp?: number;
  /** Data type name, when the payload says. */
  type?: string;
  /** The payload was longer than what was kept. */
  cut?: boolean;
}

export const MAX_TEXT = 160;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text cut to MAX_TEXT characters, with an ellipsis when cut. */
export function displayText(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

/** A value as display text: strings quoted as JSON, bigints as digits, the rest as JSON. */
export function valueText(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  try {
    return displayText(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value));
  } catch {
    return displayText(String(value));
  }
}

function hexPreview(bytes: Buffer): string {
  const head = bytes.subarray(0, 16).toString('hex').replace(/(..)/g, '$1 ').trim();
  return bytes.length > 16 ? `${head} …` : head;
}

/** `payload` (the kept part of a message of `bytes` bytes) as the explorer shows it. */
export function describePayload(payload: Buffer, bytes = payload.length): TopicValue {
  const cut = bytes > payload.length;
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { text: `<${bytes} bytes> ${hexPreview(payload)}`, format: 'binary', ...(cut ? { cut } : {}) };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) return { text: `<${bytes} bytes> ${hexPreview(payload)}`, format: 'binary', ...(cut ? { cut } : {}) };
  if (cut) return { text: `${displayText(text)} (${bytes} bytes, first ${payload.length} kept)`, format: 'text', cut };
  const first = text.trimStart()[0];
  if (first === '{') {
    const metric = decodeMetricPayload(text);
    if (typeof metric !== 'string') {
      const { meta } = metric;
      return {
        text: valueText(metric.value),
        format: 'uns',
        ...(meta.quality ? { quality: meta.quality } : {}),
        ...(meta.unit !== undefined ? { unit: meta.unit } : {}),
        ...(meta.timestamp !== undefined ? { timestamp: meta.timestamp } : {}),
        ...(meta.type ? { type: meta.type } : {}),
      };
    }
    const asset = decodeAssetPayload(text);
    if (typeof asset !== 'string') {
      const names = Object.keys(asset.metrics);
      return { text: displayText(`${names.length} metrics: ${names.join(', ')}`), format: 'uns-asset', ...(asset.timestamp !== undefined ? { timestamp: asset.timestamp } : {}) };
    }
  }
  if (first === '{' || first === '[') {
    try {
      return { text: valueText(JSON.parse(text)), format: 'json' };
    } catch { /* not JSON: shown as text */ }
  }
  return { text: displayText(text), format: 'text' };
}
