/**
 * Turns decoded etcd messages into plain data that compares and prints well (bytes as readable
 * strings, int64 values as decimal strings), and clears the response header fields that
 * legitimately differ between two clusters: cluster id, member id and raft term. Only the
 * top-level header is cleared: the headers of responses nested in a txn carry only a revision
 * in etcd, and must stay that way.
 */

/** A JSON-compatible value. */
export type Plain = null | boolean | number | string | Plain[] | { [field: string]: Plain };

/** Header fields that identify a cluster or count its elections rather than describe data. */
export const IDENTITY_HEADER_FIELDS = ['clusterId', 'memberId', 'raftTerm'] as const;

/** Bytes as a string: printable ASCII as is, every other byte as \xNN (backslash as \\). */
export function bytesText(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    if (byte === 0x5c) out += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** `value` as plain data: Uint8Array -> `b"..."`, bigint -> `"<n>n"`, undefined fields dropped. */
export function toPlain(value: unknown): Plain {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return `b"${bytesText(value)}"`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(toPlain);
  if (typeof value === 'object') {
    const out: { [field: string]: Plain } = {};
    for (const [field, inner] of Object.entries(value)) {
      if (inner !== undefined) out[field] = toPlain(inner);
    }
    return out;
  }
  throw new TypeError(`cannot make plain data of a ${typeof value}`);
}

/** A response as plain data, without the identity fields of its own header. */
export function plainResponse(response: object): Plain {
  const plain = toPlain(response);
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) return plain;
  const header = plain.header;
  if (header !== undefined && header !== null && typeof header === 'object' && !Array.isArray(header)) {
    for (const field of IDENTITY_HEADER_FIELDS) delete header[field];
  }
  return plain;
}
