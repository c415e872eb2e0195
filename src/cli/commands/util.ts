/** Helpers the commands share. */
import { EtcdError } from '../../client/index.ts';
import { CliExit, ExitCode } from '../command.ts';

/** Runs `fn`; a client error becomes etcdctl's `Error: <message>` with `code` (default 1). */
export async function orExit<T>(
  fn: () => Promise<T>,
  code: number = ExitCode.ERROR,
  wrap?: (message: string) => string,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CliExit) throw err;
    const message = err instanceof EtcdError || err instanceof Error ? err.message : String(err);
    throw new CliExit(code, wrap === undefined ? message : wrap(message));
  }
}

/** `strconv.ParseInt(text, base, 64)`; undefined when it does not parse. */
export function parseIntBase(text: string, base: 10 | 16): { value: bigint } | { error: string } {
  const syntax = { error: `strconv.ParseInt: parsing ${JSON.stringify(text)}: invalid syntax` };
  const m = base === 16 ? /^([+-]?)([0-9a-fA-F]+)$/.exec(text) : /^([+-]?)([0-9]+)$/.exec(text);
  if (m === null) return syntax;
  const magnitude = BigInt(base === 16 ? `0x${m[2]}` : m[2]!);
  const value = m[1] === '-' ? -magnitude : magnitude;
  if (value < -(1n << 63n) || value > (1n << 63n) - 1n) {
    return { error: `strconv.ParseInt: parsing ${JSON.stringify(text)}: value out of range` };
  }
  return { value };
}

/** `strconv.ParseUint(text, base, 64)`. */
export function parseUintBase(text: string, base: 10 | 16): { value: bigint } | { error: string } {
  const m = base === 16 ? /^[0-9a-fA-F]+$/.exec(text) : /^[0-9]+$/.exec(text);
  if (m === null) return { error: `strconv.ParseUint: parsing ${JSON.stringify(text)}: invalid syntax` };
  const value = BigInt(base === 16 ? `0x${text}` : text);
  if (value > (1n << 64n) - 1n)
    return { error: `strconv.ParseUint: parsing ${JSON.stringify(text)}: value out of range` };
  return { value };
}

/** etcd's prefix range end for a key given as text. */
/**
 * etcdctl's `--prefix` (every key starting with `key`; all keys when it is empty) and
 * `--from-key` (every key from `key` on) applied to a key and its explicit range end.
 */
export function withRangeOptions(
  key: Buffer,
  rangeEnd: Buffer,
  prefix: boolean,
  fromKey: boolean,
): { key: Buffer; rangeEnd: Buffer } {
  const zero = () => Buffer.from([0]);
  if (prefix) return key.length === 0 ? { key: zero(), rangeEnd: zero() } : { key, rangeEnd: prefixEndOf(key) };
  if (fromKey) return { key: key.length === 0 ? zero() : key, rangeEnd: zero() };
  return { key, rangeEnd };
}

export function prefixEndOf(key: Buffer): Buffer {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i]! < 0xff) {
      const end = Buffer.from(key.subarray(0, i + 1));
      end[i] = key[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
