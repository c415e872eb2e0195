/**
 * A JSON reader that answers as Go's encoding/json does, for the gateway's request bodies.
 *
 * etcd's gateway reads a body with Go's `json.Decoder` (one value from the stream, whatever
 * follows it left unread) and then converts parts of it with `json.Unmarshal`; a client that
 * sends bad JSON gets Go's error text back. This reader keeps what JSON.parse loses: number
 * literals stay text (a lease id of 19 digits must not round through a double) and string
 * literals keep their raw bytes (jsonpb strips the quotes of an int64 string and parses the
 * rest as JSON again). It works on bytes, as Go does, so its messages name the same bytes.
 */

export type JsonValue = JsonObject | JsonArray | JsonString | JsonNumber | JsonBool | JsonNull;

export interface JsonObject {
  readonly kind: 'object';
  /** Keys as Go's map decoding leaves them: the last of duplicate keys wins. */
  readonly entries: Map<string, JsonValue>;
}
export interface JsonArray {
  readonly kind: 'array';
  readonly items: JsonValue[];
}
export interface JsonString {
  readonly kind: 'string';
  /** The bytes between the quotes, escapes undecoded. */
  readonly raw: Uint8Array;
  /** The decoded text (invalid UTF-8 and lone surrogates become U+FFFD, as in Go). */
  readonly value: string;
}
export interface JsonNumber {
  readonly kind: 'number';
  /** The literal as written, e.g. `-12`, `1.5e3`. */
  readonly text: string;
}
export interface JsonBool {
  readonly kind: 'bool';
  readonly value: boolean;
}
export interface JsonNull {
  readonly kind: 'null';
}

/** Go's nesting limit (encoding/json maxNestingDepth). */
export const JSON_DEPTH_MAX = 10_000;

/** A body that is not valid JSON, with Go's message (`invalid character 'x' looking for ...`). */
export class JsonSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** How the end of the input is treated: as Go's json.Decoder or as json.Unmarshal. */
const Mode = { Decoder: 0, Unmarshal: 1 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

const NULL: JsonNull = Object.freeze({ kind: 'null' });
const TRUE: JsonBool = Object.freeze({ kind: 'bool', value: true });
const FALSE: JsonBool = Object.freeze({ kind: 'bool', value: false });
const utf8 = new TextDecoder('utf-8');

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Go's strconv.IsPrint for the code points 0..255 a single byte quotes as. */
function isPrintLatin1(c: number): boolean {
  if (c < 0x20 || c === 0x7f) return false;
  if (c >= 0x80 && c <= 0xa0) return false;
  return c !== 0xad;
}

/** Go's quoteChar: how a scanner error names the offending byte. */
export function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return `'"'`;
  if (c === 0x5c) return "'\\\\'";
  const named: Record<number, string> = { 7: 'a', 8: 'b', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v' };
  const esc = named[c];
  if (esc !== undefined) return `'\\${esc}'`;
  if (isPrintLatin1(c)) return `'${String.fromCharCode(c)}'`;
  if (c < 0x80) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  return `'\\u${c.toString(16).padStart(4, '0')}'`;
}

class Reader {
  readonly b: Uint8Array;
  readonly mode: Mode;
  pos: number;

  constructor(b: Uint8Array, pos: number, mode: Mode) {
    this.b = b;
    this.mode = mode;
    this.pos = pos;
  }

  eof(): never {
    throw new JsonSyntaxError(this.mode === Mode.Decoder ? 'unexpected EOF' : 'unexpected end of JSON input');
  }

  invalid(c: number, context: string): never {
    throw new JsonSyntaxError(`invalid character ${quoteChar(c)} ${context}`);
  }

  skipSpace(): void {
    const b = this.b;
    while (this.pos < b.length && isSpace(b[this.pos]!)) this.pos++;
  }

  /** The next byte, or the end-of-input error. */
  peek(): number {
    if (this.pos >= this.b.length) this.eof();
    return this.b[this.pos]!;
  }

  /**
   * One value, containers included, without recursion: an explicit stack of the open
   * containers, as deep as Go allows (JSON_DEPTH_MAX), whatever the call stack can take.
   */
  value(): JsonValue {
    const open: { readonly container: JsonObject | JsonArray; key: string }[] = [];
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      let v: JsonValue;
      if (c === 0x7b || c === 0x5b) {
        if (open.length >= JSON_DEPTH_MAX) throw new JsonSyntaxError('exceeded max depth');
        this.pos++;
        this.skipSpace();
        if (c === 0x7b) {
          const obj: JsonObject = { kind: 'object', entries: new Map() };
          if (this.peek() !== 0x7d) {
            open.push({ container: obj, key: this.objectKey() });
            continue;
          }
          v = obj;
        } else {
          const arr: JsonArray = { kind: 'array', items: [] };
          if (this.peek() !== 0x5d) {
            open.push({ container: arr, key: '' });
            continue;
          }
          v = arr;
        }
        this.pos++;
      } else {
        v = this.scalar(c);
      }
      // A value is complete: it goes into its container, which may complete in turn.
      for (;;) {
        const top = open.at(-1);
        if (top === undefined) return v;
        const container = top.container;
        if (container.kind === 'object') container.entries.set(top.key, v);
        else container.items.push(v);
        this.skipSpace();
        const next = this.peek();
        this.pos++;
        if (next === 0x2c) {
          if (container.kind === 'object') top.key = this.objectKey();
          break;
        }
        if (container.kind === 'object' && next !== 0x7d) this.invalid(next, 'after object key:value pair');
        if (container.kind === 'array' && next !== 0x5d) this.invalid(next, 'after array element');
        open.pop();
        v = container;
      }
    }
  }

  /** A key and its colon, after `{` or `,`. */
  objectKey(): string {
    this.skipSpace();
    const k = this.peek();
    if (k !== 0x22) this.invalid(k, 'looking for beginning of object key string');
    const key = this.string().value;
    this.skipSpace();
    const colon = this.peek();
    if (colon !== 0x3a) this.invalid(colon, 'after object key');
    this.pos++;
    return key;
  }

  scalar(c: number): JsonValue {
    switch (c) {
      case 0x22:
        return this.string();
      case 0x74:
        this.literal('true');
        return TRUE;
      case 0x66:
        this.literal('false');
        return FALSE;
      case 0x6e:
        this.literal('null');
        return NULL;
      default:
        if (c === 0x2d || isDigit(c)) return this.number();
        return this.invalid(c, 'looking for beginning of value');
    }
  }

  literal(word: string): void {
    this.pos++;
    for (let i = 1; i < word.length; i++) {
      const c = this.peek();
      if (c !== word.charCodeAt(i)) this.invalid(c, `in literal ${word} (expecting '${word[i]}')`);
      this.pos++;
    }
  }

  number(): JsonNumber {
    const b = this.b;
    const start = this.pos;
    if (b[this.pos] === 0x2d) {
      this.pos++;
      const c = this.peek();
      if (!isDigit(c)) this.invalid(c, 'in numeric literal');
    }
    if (b[this.pos] === 0x30) this.pos++;
    else while (this.pos < b.length && isDigit(b[this.pos]!)) this.pos++;
    if (this.pos < b.length && b[this.pos] === 0x2e) {
      this.pos++;
      const c = this.peek();
      if (!isDigit(c)) this.invalid(c, 'after decimal point in numeric literal');
      while (this.pos < b.length && isDigit(b[this.pos]!)) this.pos++;
    }
    if (this.pos < b.length && (b[this.pos] === 0x65 || b[this.pos] === 0x45)) {
      this.pos++;
      let c = this.peek();
      if (c === 0x2b || c === 0x2d) {
        this.pos++;
        c = this.peek();
      }
      if (!isDigit(c)) this.invalid(c, 'in exponent of numeric literal');
      while (this.pos < b.length && isDigit(b[this.pos]!)) this.pos++;
    }
    return { kind: 'number', text: latin1(b, start, this.pos) };
  }

  string(): JsonString {
    const b = this.b;
    this.pos++;
    const start = this.pos;
    let escaped = false;
    for (;;) {
      const c = this.peek();
      if (c === 0x22) break;
      if (c < 0x20) this.invalid(c, 'in string literal');
      if (c === 0x5c) {
        escaped = true;
        this.pos++;
        const e = this.peek();
        if (e === 0x75) {
          this.pos++;
          for (let i = 0; i < 4; i++) {
            const h = this.peek();
            if (!isHex(h)) this.invalid(h, 'in \\u hexadecimal character escape');
            this.pos++;
          }
          continue;
        }
        if (!'"\\/bfnrt'.includes(String.fromCharCode(e))) this.invalid(e, 'in string escape code');
      }
      this.pos++;
    }
    const raw = b.subarray(start, this.pos);
    this.pos++;
    return { kind: 'string', raw, value: escaped ? decodeEscapes(raw) : utf8.decode(raw) };
  }
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Decodes the escapes of a string literal's bytes (already checked by the reader). */
function decodeEscapes(raw: Uint8Array): string {
  let out = '';
  let runStart = 0;
  let i = 0;
  while (i < raw.length) {
    if (raw[i] !== 0x5c) {
      i++;
      continue;
    }
    out += utf8.decode(raw.subarray(runStart, i));
    const e = raw[i + 1]!;
    i += 2;
    switch (e) {
      case 0x62:
        out += '\b';
        break;
      case 0x66:
        out += '\f';
        break;
      case 0x6e:
        out += '\n';
        break;
      case 0x72:
        out += '\r';
        break;
      case 0x74:
        out += '\t';
        break;
      case 0x75: {
        let unit = Number.parseInt(latin1(raw, i, i + 4), 16);
        i += 4;
        if (unit >= 0xd800 && unit < 0xdc00) {
          // A high surrogate counts only with a low one right behind it (Go's utf16.DecodeRune).
          const low = raw[i] === 0x5c && raw[i + 1] === 0x75 ? Number.parseInt(latin1(raw, i + 2, i + 6), 16) : -1;
          if (low >= 0xdc00 && low < 0xe000) {
            out += String.fromCharCode(unit, low);
            i += 6;
            break;
          }
          unit = 0xfffd;
        } else if (unit >= 0xdc00 && unit < 0xe000) {
          unit = 0xfffd;
        }
        out += String.fromCharCode(unit);
        break;
      }
      default:
        out += String.fromCharCode(e);
    }
    runStart = i;
  }
  return out + utf8.decode(raw.subarray(runStart));
}

/**
 * Reads values one after another from a body, as a `json.Decoder` does for a streaming
 * request (the watch and keep-alive bodies): `next()` returns the next value, or null once
 * only whitespace is left; what follows a value is not looked at until the next call.
 */
export class JsonStreamReader {
  readonly #reader: Reader;

  constructor(body: Uint8Array) {
    this.#reader = new Reader(body, 0, Mode.Decoder);
  }

  /** The next value; null at the end of the body. Throws JsonSyntaxError. */
  next(): JsonValue | null {
    const r = this.#reader;
    r.skipSpace();
    if (r.pos >= r.b.length) return null;
    return r.value();
  }
}

/**
 * `json.Unmarshal`'s validity check of a whole document: one value and nothing but
 * whitespace after it. Used where jsonpb hands text to Go's JSON again (a quoted int64).
 */
export function parseJsonDocument(text: Uint8Array): JsonValue {
  const r = new Reader(text, 0, Mode.Unmarshal);
  const value = r.value();
  r.skipSpace();
  if (r.pos < text.length) r.invalid(text[r.pos]!, 'after top-level value');
  return value;
}
