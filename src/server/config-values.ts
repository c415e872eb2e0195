/**
 * Parsers for flag values in the syntax etcd's Go flags accept: strconv booleans and
 * integers, time.ParseDuration durations, and etcd's URL lists (types.NewURLs rules). Each
 * returns the value or throws a ValueError whose message says what is wrong with the text;
 * the caller adds which flag it was.
 */

export class ValueError extends Error {
  override readonly name = 'ValueError';
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** strconv.ParseBool. */
export function parseGoBool(text: string): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  throw new ValueError('parse error');
}

/** An unsigned integer (decimal, or 0x hex) no larger than `max` (default: exact in a double). */
export function parseGoUint(text: string, max = Number.MAX_SAFE_INTEGER): number {
  const t = text.replaceAll('_', '');
  let n: number;
  if (/^[0-9]+$/.test(t)) n = Number(t);
  else if (/^0[xX][0-9a-fA-F]+$/.test(t)) n = Number.parseInt(t.slice(2), 16);
  else throw new ValueError('parse error');
  if (n > max) throw new ValueError('value out of range');
  return n;
}

/** A signed integer (decimal), exact in a double. */
export function parseGoInt(text: string): number {
  if (!/^[+-]?[0-9]+$/.test(text)) throw new ValueError('parse error');
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new ValueError('value out of range');
  return n;
}

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * time.ParseDuration: a sequence of decimal numbers with units (`300ms`, `1.5h`, `2h45m`),
 * optionally signed; `0` alone is allowed. Returns milliseconds.
 */
export function parseGoDuration(text: string): number {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new ValueError(`time: invalid duration ${JSON.stringify(text)}`);
  let totalMs = 0;
  const part = /^([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)/;
  while (s.length > 0) {
    const m = part.exec(s);
    if (m === null || m[1] === '' || m[1] === '.')
      throw new ValueError(`time: invalid duration ${JSON.stringify(text)}`);
    const unit = DURATION_UNIT_MS[m[2]!];
    if (unit === undefined) {
      throw new ValueError(`time: unknown unit ${JSON.stringify(m[2])} in duration ${JSON.stringify(text)}`);
    }
    totalMs += Number(m[1]) * unit;
    s = s.slice(m[0].length);
  }
  return sign * totalMs;
}

/** Formats milliseconds the way Go prints a time.Duration (`2h0m0s`, `5s`, `100ms`). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out: string;
  if (rest < 1000) {
    out = `${+rest.toFixed(6)}ms`;
  } else {
    const h = Math.floor(rest / 3_600_000);
    rest -= h * 3_600_000;
    const m = Math.floor(rest / 60_000);
    rest -= m * 60_000;
    const s = `${+(rest / 1000).toFixed(9)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}

/** The parts of a URL etcd accepts for listening or advertising. */
export interface EtcdUrl {
  readonly scheme: 'http' | 'https' | 'unix' | 'unixs';
  /** Host name or IP address; IPv6 without brackets. For unix URLs, the socket path. */
  readonly host: string;
  /** The port; 0 for unix URLs. */
  readonly port: number;
}

/** Parses and checks one URL as etcd's types.NewURLs does. */
export function parseEtcdUrl(text: string): EtcdUrl {
  const t = text.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(t);
  const scheme = m?.[1]?.toLowerCase();
  if (m === null || (scheme !== 'http' && scheme !== 'https' && scheme !== 'unix' && scheme !== 'unixs')) {
    throw new ValueError(`URL scheme must be http, https, unix, or unixs: ${t}`);
  }
  const authority = m[2]!;
  const rest = m[3]!;
  if (scheme === 'unix' || scheme === 'unixs') {
    const path = authority + rest;
    if (path === '') throw new ValueError(`unix URL needs a socket path: ${t}`);
    return { scheme, host: path, port: 0 };
  }
  const hp = /^(\[[0-9A-Fa-f:.%a-zA-Z]+\]|[^:[\]]*):([0-9]+)$/.exec(authority);
  if (hp === null) throw new ValueError(`URL address does not have the form "host:port": ${t}`);
  if (rest !== '') throw new ValueError(`URL must not contain a path: ${t}`);
  const port = Number(hp[2]);
  if (port > 65535) throw new ValueError(`URL port out of range: ${t}`);
  const rawHost = hp[1]!;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  return { scheme, host, port };
}

/** `scheme://host:port` (IPv6 hosts in brackets), or `unix://path`. */
export function formatEtcdUrl(url: EtcdUrl): string {
  if (url.scheme === 'unix' || url.scheme === 'unixs') return `${url.scheme}://${url.host}`;
  const host = url.host.includes(':') ? `[${url.host}]` : url.host;
  return `${url.scheme}://${host}:${url.port}`;
}

/** A comma-separated list of URLs, each checked; duplicates dropped, order kept. */
export function parseUrlList(text: string): string[] {
  const out: string[] = [];
  for (const item of text.split(',')) {
    const t = item.trim();
    if (t === '') continue;
    parseEtcdUrl(t);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** A comma-separated list of words, trimmed, empty items and duplicates dropped. */
export function parseStringList(text: string): string[] {
  const out: string[] = [];
  for (const item of text.split(',')) {
    const t = item.trim();
    if (t !== '' && !out.includes(t)) out.push(t);
  }
  return out;
}

/** Go's TLS cipher suite names (crypto/tls, what `--cipher-suites` takes) to OpenSSL's (what Node.js takes). */
const CIPHER_SUITES: ReadonlyMap<string, string> = new Map([
  ['TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'DES-CBC3-SHA'],
  ['TLS_RSA_WITH_AES_128_CBC_SHA', 'AES128-SHA'],
  ['TLS_RSA_WITH_AES_256_CBC_SHA', 'AES256-SHA'],
  ['TLS_RSA_WITH_AES_128_CBC_SHA256', 'AES128-SHA256'],
  ['TLS_RSA_WITH_AES_128_GCM_SHA256', 'AES128-GCM-SHA256'],
  ['TLS_RSA_WITH_AES_256_GCM_SHA384', 'AES256-GCM-SHA384'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA', 'ECDHE-ECDSA-AES128-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'ECDHE-ECDSA-AES256-SHA'],
  ['TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA', 'ECDHE-RSA-DES-CBC3-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'ECDHE-RSA-AES128-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA', 'ECDHE-RSA-AES256-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256', 'ECDHE-ECDSA-AES128-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256', 'ECDHE-RSA-AES128-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-RSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
  ['TLS_AES_128_GCM_SHA256', 'TLS_AES_128_GCM_SHA256'],
  ['TLS_AES_256_GCM_SHA384', 'TLS_AES_256_GCM_SHA384'],
  ['TLS_CHACHA20_POLY1305_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'],
]);

/** The OpenSSL name of a Go cipher suite name; throws ValueError for a name Go does not have. */
export function opensslCipherSuite(goName: string): string {
  const name = CIPHER_SUITES.get(goName);
  if (name === undefined) throw new ValueError(`unexpected TLS cipher suite ${JSON.stringify(goName)}`);
  return name;
}
