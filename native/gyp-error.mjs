// The one line worth showing from a failed node-gyp run: the cause ("stack Error: Could not find any
// Python", "g++: not found", "fatal error: node_api.h") before the generic "gyp ERR!" lines.
export function gypFailureDetail(error) {
  const lines = String(error.stderr ?? error.message).split('\n');
  const detail = lines.find((l) => /stack Error:|not found|No such file|fatal error|could not find/i.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? error.message;
  return detail.trim().slice(0, 160);
}
