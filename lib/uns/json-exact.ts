/**
 * A JSON parser (RFC 8259) that keeps integers beyond ±(2^53−1) exact, as BigInt.
 *
 * JSON.parse turns the literal 9007199254740993 into the double 9007199254740992, silently; an
 * Int64 counter or a UInt64 id would change. uns-in parses with JSON.parse first (fast, native) and
 * falls back to this parser only when a parsed value is an integer outside the safe range, so the
 * slow path costs nothing for ordinary payloads.
 */

export class JsonSyntaxError extends SyntaxError {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** Parse JSON text; integer literals outside Number.isSafeInteger become BigInt, others are numbers. */
export function parseJsonExact(text: string): unknown {
  const parser = new ExactParser(text);
  parser.skipWhitespace();
  const value = parser.value();
  parser.skipWhitespace();
  if (parser.position !== text.length) throw new JsonSyntaxError('unexpected trailing text', parser.position);
  return value;
}

class ExactParser {
  position = 0;
  constructor(private readonly text: string) {}

  skipWhitespace(): void {
    const text = this.text;
    let i = this.position;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.position = i;
  }

  value(): unknown {
    const c = this.text[this.position];
    switch (c) {
      case '{': return this.object();
      case '[': return this.array();
      case '"': return this.string();
      case 't': return this.literal('true', true);
      case 'f': return this.literal('false', false);
      case 'n': return this.literal('null', null);
      default: return this.number();
    }
  }

  private literal<T>(word: string, result: T): T {
    if (!this.text.startsWith(word, this.position)) throw new JsonSyntaxError('unexpected token', this.position);
    this.position += word.length;
    return result;
  }

  private number(): number | bigint {
    NUMBER.lastIndex = this.position;
    const match = NUMBER.exec(this.text);
    if (!match) throw new JsonSyntaxError('unexpected token', this.position);
    this.position = NUMBER.lastIndex;
    const literal = match[0];
    const asNumber = Number(literal);
    const isIntegerLiteral = match[1] === undefined && match[2] === undefined;
    return isIntegerLiteral && !Number.isSafeInteger(asNumber) ? BigInt(literal) : asNumber;
  }

  private string(): string {
    // Find the closing quote, then let JSON.parse decode escapes of this one token.
    const text = this.text;
    let i = this.position + 1;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) throw new JsonSyntaxError('unterminated string', this.position);
      if (c === 0x5c /* \ */) { i += 2; continue; }
      if (c === 0x22 /* " */) break;
      i++;
    }
    const token = text.slice(this.position, i + 1);
    this.position = i + 1;
    return JSON.parse(token) as string;
  }

  private array(): unknown[] {
    const result: unknown[] = [];
    this.position++;
    this.skipWhitespace();
    if (this.text[this.position] === ']') { this.position++; return result; }
    for (;;) {
      this.skipWhitespace();
      result.push(this.value());
      this.skipWhitespace();
      const c = this.text[this.position++];
      if (c === ']') return result;
      if (c !== ',') throw new JsonSyntaxError('expected "," or "]"', this.position - 1);
    }
  }

  private object(): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    this.position++;
    this.skipWhitespace();
    if (this.text[this.position] === '}') { this.position++; return result; }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.position] !== '"') throw new JsonSyntaxError('expected a property name', this.position);
      const key = this.string();
      this.skipWhitespace();
      if (this.text[this.position++] !== ':') throw new JsonSyntaxError('expected ":"', this.position - 1);
      this.skipWhitespace();
      // defineProperty, not assignment: a "__proto__" key must stay data, as with JSON.parse.
      Object.defineProperty(result, key, { value: this.value(), enumerable: true, writable: true, configurable: true });
      this.skipWhitespace();
      const c = this.text[this.position++];
      if (c === '}') return result;
      if (c !== ',') throw new JsonSyntaxError('expected "," or "}"', this.position - 1);
    }
  }
}
