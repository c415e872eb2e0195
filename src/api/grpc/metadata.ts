/** Header values of the gRPC protocol: `grpc-timeout` and the percent-encoded `grpc-message`. */

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** The spec allows at most 8 digits in a grpc-timeout value. */
const TIMEOUT_DIGITS_MAX = 8;

/**
 * Parses `grpc-timeout` (`TimeoutValue TimeoutUnit`: 1-8 ASCII digits then one of H M S m u n)
 * into milliseconds. Returns -1 for a malformed value.
 */
export function parseGrpcTimeout(value: string): number {
  const digits = value.length - 1;
  if (digits < 1 || digits > TIMEOUT_DIGITS_MAX) return -1;
  const unitMs = TIMEOUT_UNIT_MS[value[digits]!];
  if (unitMs === undefined) return -1;
  let n = 0;
  for (let i = 0; i < digits; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n * unitMs;
}

/** Formats a timeout for a `grpc-timeout` header (milliseconds, or a coarser unit when too long). */
export function formatGrpcTimeout(timeoutMs: number): string {
  const ms = Math.max(0, Math.ceil(timeoutMs));
  if (ms < 100_000_000) return `${ms}m`;
  const s = Math.ceil(ms / 1000);
  if (s < 100_000_000) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

/**
 * Percent-encodes a status message for `grpc-message`: bytes of the UTF-8 form outside
 * 0x20-0x7E, and `%` itself, become `%XX` (upper-case hex, as grpc-go writes them).
 */
export function encodeGrpcMessage(message: string): string {
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) return percentEncode(message);
  }
  return message;
}

function percentEncode(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  let out = '';
  for (const b of bytes) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  }
  return out;
}

/** Reverses `encodeGrpcMessage`; a `%` not followed by two hex digits is kept as is (per the spec). */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
