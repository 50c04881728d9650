/**
 * JSON for configuration that guards writes (drive profiles, zone policies, the OPC UA server model).
 *
 * RFC 8259 §4 says the names within an object SHOULD be unique and leaves the behaviour with duplicates
 * to the parser; JSON.parse keeps the last one silently. In a file that guards a write, a second
 * `"max": 1800` after `"max": 1000` would loosen the guard without a word, so these files refuse any
 * duplicate name, compared after unescaping ("\u006dax" is "max"), with the JSON path of the second one.
 */

export class JsonDuplicateKeyError extends Error {
  constructor(readonly path: string, readonly key: string) {
    super(`duplicate key "${key}" at ${path} (JSON keeps only the last one: remove one of them)`);
  }
}

/** JSON.parse, refusing duplicate object names (JsonDuplicateKeyError); JSON.parse's own errors as they are. */
export function parseJsonStrict(text: string): unknown {
  const value: unknown = JSON.parse(text);
  try {
    new DuplicateKeyScanner(text).scan();
  } catch (error) {
    // The scanner recurses per level: a document nested deeper than the stack is refused as such.
    if (error instanceof RangeError) throw new SyntaxError('nested too deeply to check for duplicate keys');
    throw error;
  }
  return value;
}

/** Walks text that JSON.parse accepted, tracking the names of every open object. */
class DuplicateKeyScanner {
  private at = 0;

  constructor(private readonly text: string) {}

  scan(): void {
    this.value('$');
  }

  private value(path: string): void {
    this.skipWhitespace();
    const c = this.text[this.at];
    if (c === '{') this.object(path);
    else if (c === '[') this.array(path);
    else if (c === '"') this.string();
    else this.literal();
  }

  private object(path: string): void {
    this.at++; // {
    const names = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.at] === '}') {
      this.at++;
      return;
    }
    for (;;) {
      this.skipWhitespace();
      const name = this.string();
      const memberPath = /^[A-Za-z_$][\w$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`;
      if (names.has(name)) throw new JsonDuplicateKeyError(memberPath, name);
      names.add(name);
      this.skipWhitespace();
      this.at++; // :
      this.value(memberPath);
      this.skipWhitespace();
      if (this.text[this.at++] === '}') return; // else ','
    }
  }

  private array(path: string): void {
    this.at++; // [
    this.skipWhitespace();
    if (this.text[this.at] === ']') {
      this.at++;
      return;
    }
    for (let index = 0; ; index++) {
      this.value(`${path}[${index}]`);
      this.skipWhitespace();
      if (this.text[this.at++] === ']') return; // else ','
    }
  }

  /** A string token, unescaped. */
  private string(): string {
    const start = this.at;
    this.at++; // opening quote
    while (this.text[this.at] !== '"') this.at += this.text[this.at] === '\\' ? 2 : 1;
    this.at++; // closing quote
    return JSON.parse(this.text.slice(start, this.at)) as string;
  }

  /** A number, true, false or null: up to the next structural character or whitespace. */
  private literal(): void {
    while (this.at < this.text.length && !/[\s,\]}]/.test(this.text[this.at])) this.at++;
  }

  private skipWhitespace(): void {
    while (/\s/.test(this.text[this.at] ?? '')) this.at++;
  }
}
