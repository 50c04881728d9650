/**
 * How tag batches map to UNS topics and back (docs/uns-topics.md).
 *
 *   metric topic: <prefix/><asset path>/<metric>     e.g. acme/plant1/press/line2/cell1/drive7/Motor/Current
 *   asset topic:  <prefix/><asset path>               (the optional asset-level JSON topic)
 *
 * A metric name may contain `/`, so the way back needs the asset path depth: the first `depth`
 * levels after the prefix are the asset path, the rest is the metric name. A topic with exactly
 * `depth` levels is the asset topic; metric names are never empty, so the two cannot collide.
 */
import { pathSegmentProblem } from './validate';

/** ISA-95 levels enterprise/site/area/line/cell/asset. */
export const ISA95_DEPTH = 6;

/** A base topic in front of every asset path: '' or 'a/b/' (with its trailing '/'), validated. */
export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').trim().replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const problem = topicLevelsProblem(trimmed);
  if (problem) throw new Error(`base topic "${trimmed}" ${problem}`);
  return trimmed + '/';
}

/** Why a string of topic levels is not usable in a topic name, or undefined. */
export function topicLevelsProblem(levels: string): string | undefined {
  const segments = levels.split('/');
  for (let i = 0; i < segments.length; i++) {
    const problem = pathSegmentProblem(segments[i]);
    if (problem) return `level ${i + 1} "${segments[i]}" ${problem}`;
  }
  return undefined;
}

export interface UnsTopicParts {
  assetPath: string;
  /** The metric name, `/` included; undefined for the asset topic. */
  metric: string | undefined;
}

/**
 * Split a received topic into asset path and metric, or undefined when the topic does not start
 * with the prefix or has fewer than `depth` levels after it.
 */
export function splitUnsTopic(topic: string, prefix: string, depth: number): UnsTopicParts | undefined {
  if (prefix !== '' && !topic.startsWith(prefix)) return undefined;
  const rest = prefix === '' ? topic : topic.slice(prefix.length);
  let end = -1;
  for (let level = 1; level <= depth; level++) {
    end = rest.indexOf('/', end + 1);
    if (end === -1) return level === depth ? { assetPath: rest, metric: undefined } : undefined;
  }
  return { assetPath: rest.slice(0, end), metric: rest.slice(end + 1) };
}

/**
 * The topic filter without a shared-subscription prefix: `$share/<group>/<filter>` → `<filter>`
 * (MQTT v5.0 §4.8.2). Messages arrive with their real topic, which matches the inner filter.
 */
export function withoutSharePrefix(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const groupEnd = filter.indexOf('/', 7);
  return groupEnd === -1 ? filter : filter.slice(groupEnd + 1);
}

/** Why a subscription topic filter is invalid (MQTT v5.0 §4.7.1), or undefined. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.startsWith('$share/')) {
    const groupEnd = filter.indexOf('/', 7);
    const group = groupEnd === -1 ? '' : filter.slice(7, groupEnd);
    // MQTT v5.0 §4.8.2: ShareName must not contain "/", "+" or "#" and is followed by a filter.
    if (group === '' || group.includes('+') || group.includes('#')) return 'has an invalid $share group';
    filter = filter.slice(groupEnd + 1);
  }
  if (filter.length === 0) return 'is empty';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    // §4.7.1.2: "#" must be a whole level and the last one; §4.7.1.3: "+" must be a whole level.
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `level ${i + 1} "${level}" misuses "#"`;
    if (level.includes('+') && level !== '+') return `level ${i + 1} "${level}" misuses "+"`;
  }
  return undefined;
}

/**
 * Whether a topic name matches a topic filter (MQTT v5.0 §4.7). Filters starting with a wildcard do
 * not match topics starting with `$` (§4.7.2). `a/#` also matches `a` (§4.7.1.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter[0] === '+' || filter[0] === '#')) return false;
  let f = 0;
  let t = 0;
  const fl = filter.length;
  const tl = topic.length;
  while (f < fl) {
    const c = filter.charCodeAt(f);
    if (c === 35 /* # */) return true;
    if (c === 43 /* + */) {
      while (t < tl && topic.charCodeAt(t) !== 47) t++;
      f++;
    } else {
      if (t >= tl) {
        // topic ended: "a/#" matches "a" (the remaining filter is exactly "/#").
        return f + 2 === fl && c === 47 && filter.charCodeAt(f + 1) === 35;
      }
      if (c !== topic.charCodeAt(t)) return false;
      f++;
      t++;
    }
  }
  return t === tl;
}
