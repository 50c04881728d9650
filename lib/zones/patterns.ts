/**
 * Name patterns of conduit rules (docs/zones.md § "Patterns"), compiled once when a policy loads.
 *
 * - Topic patterns (asset paths, metric names): MQTT topic-filter style over `/`-separated levels
 *   (MQTT v5.0 §4.7.1): `+` is exactly one level, `#` as the last level is zero or more further
 *   levels, `*` inside a level is any run of characters within that level (glob). Everything else
 *   is literal and case-sensitive: `acme/+/press/#`, `Drive*` or `Motor/Temp*`.
 * - Name patterns (principal ids, users, certificate CNs): `*` is any run of characters, `/`
 *   included; everything else literal: `mqtt:mes-0*`.
 *
 * Only the pattern's wildcards mean anything: a value that contains `+`, `#` or `*` is matched
 * literally, so a client id of `#` matches no more than its own text (T-TOP-03, the Mosquitto
 * < 1.4.12 `%c` bypass).
 */

/** A compiled pattern: exact names by set lookup, the rest by one anchored regular expression. */
export type Matcher = (value: string) => boolean;

const ESCAPE = /[.*+?^${}()|[\]\\]/g;
const escapeLiteral = (text: string): string => text.replace(ESCAPE, '\\$&');

/** The problem with a topic pattern, or undefined when it is well formed. */
export function topicPatternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'is empty';
  const levels = pattern.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level === '') return `has an empty level (level ${i + 1})`;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return '"#" must be a whole level and the last one';
    if (level.includes('+') && level !== '+') return '"+" must be a whole level';
    if (level.includes('\u0000')) return 'contains U+0000';
  }
  return undefined;
}

function topicRegexSource(pattern: string): string {
  const levels = pattern.split('/');
  let source = '';
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    const separator = i === 0 ? '' : '/';
    if (level === '#') return `${source}${i === 0 ? '.*' : '(?:/.*)?'}`;
    source += separator + (level === '+' ? '[^/]+' : level.split('*').map(escapeLiteral).join('[^/]*'));
  }
  return source;
}

function compile(patterns: readonly string[], isLiteral: (p: string) => boolean, regexSource: (p: string) => string): Matcher {
  const exact = new Set(patterns.filter(isLiteral));
  const wild = patterns.filter((p) => !isLiteral(p));
  if (wild.length === 0) return (value) => exact.has(value);
  const regex = new RegExp(`^(?:${wild.map(regexSource).join('|')})$`, 's');
  if (exact.size === 0) return (value) => regex.test(value);
  return (value) => exact.has(value) || regex.test(value);
}

/** Matcher of topic patterns (asset paths, metric names); patterns must be checked with topicPatternProblem first. */
export function topicMatcher(patterns: readonly string[]): Matcher {
  return compile(patterns, (p) => !/[+#*]/.test(p), topicRegexSource);
}

/** Matcher of name patterns (principal fields): `*` is any run of characters. */
export function nameMatcher(patterns: readonly string[]): Matcher {
  return compile(patterns, (p) => !p.includes('*'), (p) => p.split('*').map(escapeLiteral).join('.*'));
}
