/** Keys and values as bytes: what the client accepts, and the range helpers etcd's clients share. */

/** A key or a value: a string (encoded as UTF-8) or bytes (a Buffer is a Uint8Array). */
export type Bytes = string | Uint8Array;

/** `value` as a Buffer; a Uint8Array is viewed, not copied. */
export function toBuffer(value: Bytes): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`expected a string or bytes, got ${typeof value}`);
}

/** A decoded bytes field as a Buffer view (decoded fields are views into their own message buffer). */
export function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The `range_end` meaning "every key from `key` on". */
export const FROM_KEY_END: Buffer = Buffer.from([0]);

/**
 * The range end that covers every key starting with `prefix`: the prefix with its last byte
 * that is not 0xff incremented (and what follows dropped); `\0` (no end) when every byte is 0xff
 * or the prefix is empty.
 */
export function prefixEnd(prefix: Uint8Array): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i]!;
    if (byte < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = byte + 1;
      return end;
    }
  }
  return Buffer.from(FROM_KEY_END);
}

/** Options that turn one key into a range; at most one of them. */
export interface RangeOptions {
  /** Every key that starts with the key. */
  prefix?: boolean;
  /** Every key from the key (inclusive) to `end` (exclusive). */
  end?: Bytes;
  /** Every key greater than or equal to the key. */
  fromKey?: boolean;
}

/** The [key, rangeEnd) pair of a key and its range options, as etcd's requests take it. */
export function keyRange(key: Bytes, options: RangeOptions = {}): { key: Buffer; rangeEnd: Buffer } {
  const chosen = (options.prefix === true ? 1 : 0) + (options.end !== undefined ? 1 : 0) + (options.fromKey ? 1 : 0);
  if (chosen > 1) throw new TypeError('choose one of prefix, end and fromKey');
  let k = toBuffer(key);
  if (options.prefix === true) {
    // An empty prefix means every key, which etcd spells as key "\0" with range end "\0".
    if (k.length === 0) return { key: Buffer.from(FROM_KEY_END), rangeEnd: Buffer.from(FROM_KEY_END) };
    return { key: k, rangeEnd: prefixEnd(k) };
  }
  if (options.fromKey === true) {
    if (k.length === 0) k = Buffer.from(FROM_KEY_END);
    return { key: k, rangeEnd: Buffer.from(FROM_KEY_END) };
  }
  if (options.end !== undefined) return { key: k, rangeEnd: toBuffer(options.end) };
  return { key: k, rangeEnd: Buffer.alloc(0) };
}

/** A 64-bit value from a number or a bigint: integers only, exact. */
export function toInt64(value: number | bigint, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) throw new RangeError(`${what} must be an integer, got ${value}`);
  return BigInt(value);
}
