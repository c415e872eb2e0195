/**
 * JSON to request message, as etcd's gateway reads a body: golang/protobuf's jsonpb
 * (`Unmarshaler{AllowUnknownFields: true}`) on top of Go's encoding/json.
 *
 * - A field is found under its proto name or its JSON name (the JSON name wins when both are
 *   given); unknown keys are ignored; `null` leaves a field at its default.
 * - int64/uint64/int32/uint32 take a number or a quoted number (jsonpb strips the quotes and
 *   hands the rest to encoding/json, whose errors then show through).
 * - Enums take their name or their number; bytes take standard base64 (with padding).
 * - Errors carry Go's words (`json: cannot unmarshal string into Go value of type bool`,
 *   `illegal base64 data at input byte 3`); the gateway answers them with InvalidArgument.
 */
import { JsonSyntaxError, type JsonValue, parseJsonDocument } from './json.ts';
import { type EnumSpec, type FieldSpec, type MessageSpec, ScalarType } from './schema.ts';

/** A body that does not make a request message (bad JSON or a value of the wrong type). */
export class GatewayDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayDecodeError';
  }
}

/**
 * Messages nested deeper than this (txns in txns) are refused: protobuf's own recursion limit
 * is 10 000, but the decoder and the server walk a message recursively, and the call stack must
 * hold. etcd bounds a txn by its operations, not its depth; no client nests a thousand deep.
 */
export const MESSAGE_DEPTH_MAX = 1000;

const MAP_TYPE = 'map[string]json.RawMessage';
const SLICE_TYPE = '[]json.RawMessage';
const BYTES_TYPE = '[]uint8';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const UINT32_MAX = 2n ** 32n - 1n;
const UINT8_MAX = 255n;

/** Go's name for the kind of a JSON value in an UnmarshalTypeError. */
function goKind(v: JsonValue): string {
  return v.kind === 'bool' ? 'bool' : v.kind;
}

function typeError(what: string, goType: string): GatewayDecodeError {
  return new GatewayDecodeError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

/** A message with every field at its default, keyed as ts-proto keys it. */
function defaults(spec: MessageSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of spec.fields) {
    if (f.oneof !== undefined) out[f.oneof] = undefined;
    else out[f.json] = f.repeated ? [] : defaultOf(f.type);
  }
  return out;
}

function defaultOf(type: FieldSpec['type']): unknown {
  if (typeof type === 'function') return undefined;
  if (typeof type === 'object') return 0;
  switch (type) {
    case ScalarType.String:
      return '';
    case ScalarType.Bytes:
      return new Uint8Array(0);
    case ScalarType.Bool:
      return false;
    case ScalarType.Int64:
    case ScalarType.Uint64:
      return 0n;
    default:
      return 0;
  }
}

/**
 * Decodes a JSON value into the message `spec` describes. `null` (and an absent body, which
 * the caller passes as null) make the message with every field at its default.
 */
export function decodeMessage<T>(spec: MessageSpec, value: JsonValue | null): T {
  return decodeObject(spec, value ?? { kind: 'null' }, 0) as T;
}

function decodeObject(spec: MessageSpec, value: JsonValue, depth: number): Record<string, unknown> {
  if (depth >= MESSAGE_DEPTH_MAX) throw new GatewayDecodeError('exceeded maximum recursion depth');
  const out = defaults(spec);
  if (value.kind === 'null') return out;
  if (value.kind !== 'object') throw typeError(goKind(value), MAP_TYPE);
  const entries = value.entries;
  for (const f of spec.fields) {
    // jsonpb looks under both names; the JSON name is read last and wins.
    const raw = entries.get(f.json) ?? entries.get(f.name);
    if (raw === undefined) continue;
    if (f.oneof !== undefined) {
      out[f.oneof] = { $case: f.json, value: decodeOneofValue(f, raw, depth + 1) };
    } else if (f.repeated) {
      out[f.json] = decodeRepeated(f, raw, depth + 1);
    } else if (raw.kind !== 'null' || typeof f.type !== 'function') {
      const decoded = decodeSingle(f.type, raw, depth + 1);
      if (decoded !== undefined) out[f.json] = decoded;
    }
  }
  return out;
}

function decodeOneofValue(f: FieldSpec, raw: JsonValue, depth: number): unknown {
  // A oneof member given as null is still the member that is set, at its default value.
  if (raw.kind === 'null') return typeof f.type === 'function' ? defaults(f.type()) : defaultOf(f.type);
  return decodeSingle(f.type, raw, depth) ?? defaultOf(f.type);
}

function decodeRepeated(f: FieldSpec, raw: JsonValue, depth: number): unknown[] {
  if (raw.kind === 'null') return [];
  if (raw.kind !== 'array') throw typeError(goKind(raw), SLICE_TYPE);
  return raw.items.map((item) => {
    if (item.kind === 'null' && typeof f.type === 'function') return defaults(f.type());
    return decodeSingle(f.type, item, depth) ?? defaultOf(f.type);
  });
}

/** One value of a field; undefined for a null that leaves the field as it was. */
function decodeSingle(type: FieldSpec['type'], raw: JsonValue, depth: number): unknown {
  if (typeof type === 'function') return raw.kind === 'null' ? undefined : decodeObject(type(), raw, depth);
  if (typeof type === 'object') return decodeEnum(type, raw);
  switch (type) {
    case ScalarType.String:
      if (raw.kind === 'null') return undefined;
      if (raw.kind !== 'string') throw typeError(goKind(raw), 'string');
      return raw.value;
    case ScalarType.Bool:
      if (raw.kind === 'null') return undefined;
      if (raw.kind !== 'bool') throw typeError(goKind(raw), 'bool');
      return raw.value;
    case ScalarType.Bytes:
      return decodeBytes(raw);
    case ScalarType.Int64:
      return decodeInteger(raw, 'int64', INT64_MIN, INT64_MAX);
    case ScalarType.Uint64:
      return decodeInteger(raw, 'uint64', 0n, UINT64_MAX);
    case ScalarType.Int32: {
      const n = decodeInteger(raw, 'int32', INT32_MIN, INT32_MAX);
      return n === undefined ? undefined : Number(n);
    }
    case ScalarType.Uint32: {
      const n = decodeInteger(raw, 'uint32', 0n, UINT32_MAX);
      return n === undefined ? undefined : Number(n);
    }
  }
}

function decodeEnum(spec: EnumSpec, raw: JsonValue): number | undefined {
  if (raw.kind === 'string') {
    // jsonpb looks the name up between the quotes as written, escapes and all.
    const name = Buffer.from(raw.raw).toString('latin1');
    const n = Object.hasOwn(spec.values, name) ? spec.values[name] : undefined;
    if (n === undefined) throw new GatewayDecodeError(`unknown value ${goQuote(raw.raw)} for enum ${spec.goName}`);
    return n;
  }
  const n = literalInteger(raw, spec.goName, INT32_MIN, INT32_MAX);
  return n === undefined ? undefined : Number(n);
}

/** jsonpb's integers: a quoted value loses its quotes and the rest is read as JSON again. */
function decodeInteger(raw: JsonValue, goType: string, min: bigint, max: bigint): bigint | undefined {
  let value = raw;
  if (raw.kind === 'string') {
    try {
      value = parseJsonDocument(raw.raw);
    } catch (err) {
      if (err instanceof JsonSyntaxError) throw new GatewayDecodeError(err.message);
      throw err;
    }
  }
  return literalInteger(value, goType, min, max);
}

/** encoding/json's literalStore of a value into an integer type. */
function literalInteger(raw: JsonValue, goType: string, min: bigint, max: bigint): bigint | undefined {
  if (raw.kind === 'null') return undefined;
  if (raw.kind !== 'number') throw typeError(goKind(raw), goType);
  const text = raw.text;
  // strconv.ParseInt/ParseUint: decimal digits only, no fraction or exponent.
  if (!/^-?\d+$/.test(text) || (min === 0n && text.startsWith('-'))) {
    throw typeError(`number ${text}`, goType);
  }
  const n = BigInt(text);
  if (n < min || n > max) throw typeError(`number ${text}`, goType);
  return n;
}

function decodeBytes(raw: JsonValue): Uint8Array | undefined {
  switch (raw.kind) {
    case 'null':
      return undefined;
    case 'string':
      return decodeBase64Std(Buffer.from(raw.value, 'utf8'));
    case 'array': {
      // encoding/json fills a []byte from an array of numbers too.
      const out = new Uint8Array(raw.items.length);
      raw.items.forEach((item, i) => {
        const n = literalInteger(item, 'uint8', 0n, UINT8_MAX);
        if (n !== undefined) out[i] = Number(n);
      });
      return out;
    }
    default:
      throw typeError(goKind(raw), BYTES_TYPE);
  }
}

/** Go's `%q` of bytes, as jsonpb prints an unknown enum name. */
function goQuote(bytes: Uint8Array): string {
  let out = '"';
  const text = new TextDecoder('utf-8').decode(bytes);
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0xfffd) out += '\\ufffd';
    else out += ch;
  }
  return `${out}"`;
}

// ---- base64 as Go's base64.StdEncoding.Decode ----

const DECODE_MAP = (() => {
  const map = new Int16Array(256).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) map[alphabet.charCodeAt(i)] = i;
  return map;
})();
const PAD = 0x3d;
const CR = 0x0d;
const LF = 0x0a;

function corrupt(at: number): GatewayDecodeError {
  return new GatewayDecodeError(`illegal base64 data at input byte ${at}`);
}

/**
 * Standard base64 with padding, decoded as Go decodes it: newlines are skipped, anything else
 * outside the alphabet, missing or misplaced padding, and trailing bytes after the padding
 * fail with the offset Go reports.
 */
export function decodeBase64Std(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.floor(src.length / 4) * 3 + 3);
  let n = 0;
  let si = 0;
  const quad = [0, 0, 0, 0];
  for (;;) {
    let dlen = 4;
    let j = 0;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return out.subarray(0, n);
        throw corrupt(si - j);
      }
      const c = src[si]!;
      si++;
      const d = DECODE_MAP[c]!;
      if (d >= 0) {
        quad[j] = d;
        continue;
      }
      if (c === LF || c === CR) {
        j--;
        continue;
      }
      if (c !== PAD) throw corrupt(si - 1);
      // Padding: only after two or three characters of a quantum, and nothing after it.
      if (j < 2) throw corrupt(si - 1);
      if (j === 2) {
        while (si < src.length && (src[si] === LF || src[si] === CR)) si++;
        if (si === src.length) throw corrupt(src.length);
        if (src[si] !== PAD) throw corrupt(si - 1);
        si++;
      }
      while (si < src.length && (src[si] === LF || src[si] === CR)) si++;
      if (si < src.length) throw corrupt(si);
      dlen = j;
      break;
    }
    const val = (quad[0]! << 18) | (quad[1]! << 12) | (quad[2]! << 6) | quad[3]!;
    quad.fill(0);
    out[n++] = (val >> 16) & 0xff;
    if (dlen >= 3) out[n++] = (val >> 8) & 0xff;
    if (dlen === 4) out[n++] = val & 0xff;
    if (dlen < 4) return out.subarray(0, n);
  }
}
