/**
 * Go's text formats that etcdctl's output is made of, so the same values print the same bytes:
 * `%q` quoting, encoding/json strings, `time.Duration` parsing and printing, `%x` of 64-bit
 * integers, and go-humanize's byte sizes.
 */

const NS_PER_US = 1_000n;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const NS_PER_M = 60n * NS_PER_S;
const NS_PER_H = 60n * NS_PER_M;

const DURATION_UNITS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', NS_PER_US],
  ['µs', NS_PER_US],
  ['μs', NS_PER_US],
  ['ms', NS_PER_MS],
  ['s', NS_PER_S],
  ['m', NS_PER_M],
  ['h', NS_PER_H],
]);

const INT64_MAX = (1n << 63n) - 1n;

/** Go's `time.ParseDuration`: nanoseconds, or an Error with Go's message. */
export function parseDuration(text: string): bigint {
  const bad = () => new Error(`time: invalid duration ${goQuote(text)}`);
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw bad();
  let total = 0n;
  while (s.length > 0) {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = m?.[1] ?? '';
    const frac = m?.[2];
    if (whole === '' && (frac === undefined || frac === '')) throw bad();
    s = s.slice(m![0].length);
    const unitMatch = /^[^\d.]+/.exec(s);
    if (unitMatch === null) throw new Error(`time: missing unit in duration ${goQuote(text)}`);
    const unitName = unitMatch[0];
    const unit = DURATION_UNITS.get(unitName);
    if (unit === undefined) throw new Error(`time: unknown unit ${goQuote(unitName)} in duration ${goQuote(text)}`);
    s = s.slice(unitName.length);
    let value = BigInt(whole === '' ? '0' : whole) * unit;
    if (frac !== undefined && frac.length > 0) {
      const scale = 10n ** BigInt(frac.length);
      value += (BigInt(frac) * unit) / scale;
    }
    total += value;
    if (total > INT64_MAX) throw bad();
  }
  return negative ? -total : total;
}

/** Go's `time.Duration.String()`: `1.5s`, `500ms`, `1m30s`, `1.183836ms`, `0s`. */
export function formatDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  let out: string;
  if (u < NS_PER_S) {
    if (u < NS_PER_US) out = `${u}ns`;
    else if (u < NS_PER_MS) out = `${fraction(u, 3)}µs`;
    else out = `${fraction(u, 6)}ms`;
  } else {
    const secondsPart = fraction(u % NS_PER_M, 9);
    u /= NS_PER_M;
    if (u === 0n) out = `${secondsPart}s`;
    else {
      const minutes = u % 60n;
      const hours = u / 60n;
      out = hours > 0n ? `${hours}h${minutes}m${secondsPart}s` : `${minutes}m${secondsPart}s`;
    }
  }
  return negative ? `-${out}` : out;
}

/** `v / 10^digits` with the fraction's trailing zeros (and a bare point) dropped. */
function fraction(v: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const whole = v / scale;
  const frac = (v % scale).toString().padStart(digits, '0').replace(/0+$/, '');
  return frac.length === 0 ? `${whole}` : `${whole}.${frac}`;
}

/** Go's `%x` of a signed or unsigned 64-bit value (a minus sign for negatives). */
export function hex(value: bigint): string {
  return value < 0n ? `-${(-value).toString(16)}` : value.toString(16);
}

/** Go's `%016x`: zero-padded to 16 (the sign counts in the width). */
export function hex016(value: bigint): string {
  if (value < 0n) return `-${(-value).toString(16).padStart(15, '0')}`;
  return value.toString(16).padStart(16, '0');
}

/** Go's `%16x`: space-padded to 16. */
export function hex16(value: bigint): string {
  return hex(value).padStart(16, ' ');
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's `%q` / `strconv.Quote` of bytes (invalid UTF-8 as `\xNN`). */
export function goQuote(value: string | Uint8Array): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '"';
  let i = 0;
  while (i < bytes.length) {
    const [cp, size] = decodeRune(bytes, i);
    if (cp < 0) {
      out += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
      i += 1;
      continue;
    }
    i += size;
    const ch = String.fromCodePoint(cp);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (PRINTABLE.test(ch)) out += ch;
    else if (cp === 0x07) out += '\\a';
    else if (cp === 0x08) out += '\\b';
    else if (cp === 0x0c) out += '\\f';
    else if (cp === 0x0a) out += '\\n';
    else if (cp === 0x0d) out += '\\r';
    else if (cp === 0x09) out += '\\t';
    else if (cp === 0x0b) out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** The code point at `i` and its byte length; [-1, 1] for an invalid sequence. */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c0 = b[i]!;
  if (c0 < 0x80) return [c0, 1];
  let need: number;
  if (c0 >= 0xc2 && c0 <= 0xdf) need = 1;
  else if (c0 >= 0xe0 && c0 <= 0xef) need = 2;
  else if (c0 >= 0xf0 && c0 <= 0xf4) need = 3;
  else return [-1, 1];
  if (i + need >= b.length) return [-1, 1];
  let cp = c0 & (0x3f >> need);
  for (let k = 1; k <= need; k++) {
    const c = b[i + k]!;
    if ((c & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (c & 0x3f);
  }
  const min = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return [-1, 1];
  return [cp, need + 1];
}

/** A string as Go's encoding/json writes it (HTML characters escaped, invalid UTF-8 as U+FFFD). */
export function goJsonString(value: string | Uint8Array): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '"';
  let i = 0;
  while (i < bytes.length) {
    const [cp, size] = decodeRune(bytes, i);
    i += size;
    if (cp < 0) {
      out += '\\ufffd';
      continue;
    }
    switch (cp) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      case 0x3c:
      case 0x3e:
      case 0x26:
      case 0x2028:
      case 0x2029:
        out += `\\u${cp.toString(16).padStart(4, '0')}`;
        break;
      default:
        out += cp < 0x20 ? `\\u${cp.toString(16).padStart(4, '0')}` : String.fromCodePoint(cp);
    }
  }
  return `${out}"`;
}

/** Go's `strconv.FormatFloat(v, 'f', digits, 64)`: exact ties round to even, as Go does. */
function formatFixed(v: number, digits: number): string {
  const scaled = v * 10 ** digits;
  const floor = Math.floor(scaled);
  let rounded: number;
  if (scaled - floor === 0.5) rounded = floor % 2 === 0 ? floor : floor + 1;
  else rounded = Math.round(scaled);
  if (digits === 0) return String(rounded);
  const text = String(rounded).padStart(digits + 1, '0');
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

const SI_SIZES = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'] as const;

/** go-humanize `Bytes`: SI units, `20 kB`, `1.5 MB`, `512 B`. */
export function humanizeBytes(size: bigint | number): string {
  const s = Number(size);
  if (s < 10) return `${s} B`;
  const e = Math.floor(Math.log(s) / Math.log(1000));
  const suffix = SI_SIZES[e] ?? 'EB';
  const val = Math.floor((s / 1000 ** e) * 10 + 0.5) / 10;
  return `${formatFixed(val, val < 10 ? 1 : 0)} ${suffix}`;
}

/** Go's `%v` of a []string: `[a b c]`. */
export function goStringList(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}
