/**
 * HPACK (RFC 7541) for the server side of our HTTP/2 connections: a decoder with its dynamic
 * table and Huffman strings, and an encoder that writes literals only (no dynamic table, no
 * Huffman), which every decoder accepts and which keeps the encoder stateless.
 */

/** RFC 7541 Appendix A, index 1 to 61. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/**
 * Bit lengths of the Huffman codes of octets 0-255 and EOS (256), RFC 7541 Appendix B. The
 * code is canonical (codes of one length are consecutive, in symbol order), so the lengths
 * determine the codes.
 */
const HUFFMAN_CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
];
const EOS = 256;

/** The canonical codes from their lengths: sorted by (length, symbol), each one more than the last. */
export function huffmanCodes(): { code: number; length: number }[] {
  const symbols = HUFFMAN_CODE_LENGTHS.map((_, s) => s).sort(
    (a, b) => (HUFFMAN_CODE_LENGTHS[a] as number) - (HUFFMAN_CODE_LENGTHS[b] as number) || a - b,
  );
  const out = new Array<{ code: number; length: number }>(HUFFMAN_CODE_LENGTHS.length);
  let code = 0;
  let length = HUFFMAN_CODE_LENGTHS[symbols[0] as number] as number;
  for (const s of symbols) {
    const l = HUFFMAN_CODE_LENGTHS[s] as number;
    code *= 2 ** (l - length);
    length = l;
    out[s] = { code, length };
    code++;
  }
  return out;
}

/**
 * The decoding tree, flattened: node n's children are at 2n and 2n+1; a child >= 0 is the
 * next node, a child < 0 is the leaf of symbol -(child + 1). Node 0 is the root.
 */
const HUFFMAN_TREE: Int32Array = buildHuffmanTree();

function buildHuffmanTree(): Int32Array {
  // A canonical code with 257 leaves has 256 inner nodes.
  const tree = new Int32Array(2 * 256);
  let nodes = 1;
  const codes = huffmanCodes();
  for (let s = 0; s < codes.length; s++) {
    const { code, length } = codes[s] as { code: number; length: number };
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + (Math.floor(code / 2 ** bit) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot] as number;
    }
    tree[2 * node + (code & 1)] = -(s + 1);
  }
  return tree;
}

/** A malformed header block: a connection error of type COMPRESSION_ERROR. */
export class HpackError extends Error {}

/** Decodes a Huffman-coded string (RFC 7541 5.2) as latin1. */
export function decodeHuffman(src: Uint8Array, start: number, end: number): string {
  const out: number[] = [];
  let node = 0;
  // Bits taken since the last complete symbol, and whether all of them were 1s (padding is EOS's prefix).
  let pending = 0;
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = src[i] as number;
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >> bit) & 1;
      const next = HUFFMAN_TREE[2 * node + one] as number;
      if (next < 0) {
        const symbol = -next - 1;
        if (symbol === EOS) throw new HpackError('hpack: EOS in a Huffman string');
        out.push(symbol);
        node = 0;
        pending = 0;
        allOnes = true;
      } else {
        node = next;
        pending++;
        if (one === 0) allOnes = false;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new HpackError('hpack: invalid Huffman padding');
  return String.fromCharCode.apply(null, out);
}

/** The size of a table entry: its octets and 32 (RFC 7541 4.1). Names and values are latin1. */
function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

/** Header fields decoded from a block, in order. */
export type HeaderField = readonly [name: string, value: string];

/**
 * One connection's decoder: its dynamic table persists from block to block, so every block of
 * the connection must go through it, in order, even those of refused streams.
 */
export class HpackDecoder {
  /** Newest entry last. */
  readonly #table: HeaderField[] = [];
  #tableBytes = 0;
  #maxTableBytes: number;
  /** The most a size update may ask for: our SETTINGS_HEADER_TABLE_SIZE. */
  readonly #limit: number;
  /** The longest header list (RFC 7540 SETTINGS_MAX_HEADER_LIST_SIZE accounting) a block may carry. */
  readonly #maxListBytes: number;

  constructor(tableLimit = 4096, maxListBytes = 1 << 20) {
    this.#limit = tableLimit;
    this.#maxTableBytes = tableLimit;
    this.#maxListBytes = maxListBytes;
  }

  /** Decodes one whole header block (HEADERS and its CONTINUATIONs). Throws HpackError. */
  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    let listBytes = 0;
    let pos = 0;
    const end = block.length;
    while (pos < end) {
      const b = block[pos] as number;
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed header field.
        const [index, next] = decodeInteger(block, pos, 7);
        pos = next;
        const field = this.#lookup(index);
        name = field[0];
        value = field[1];
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update.
        const [size, next] = decodeInteger(block, pos, 5);
        pos = next;
        if (size > this.#limit) throw new HpackError(`hpack: table size update ${size} above ${this.#limit}`);
        this.#maxTableBytes = size;
        this.#evict(0);
        continue;
      } else {
        // Literal: with incremental indexing (01), without (0000) or never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        const [index, afterIndex] = decodeInteger(block, pos, indexing ? 6 : 4);
        pos = afterIndex;
        if (index === 0) {
          const [n, afterName] = decodeString(block, pos);
          name = n;
          pos = afterName;
        } else {
          name = this.#lookup(index)[0];
        }
        const [v, afterValue] = decodeString(block, pos);
        value = v;
        pos = afterValue;
        if (indexing) this.#insert(name, value);
      }
      listBytes += entrySize(name, value);
      if (listBytes > this.#maxListBytes) throw new HpackError('hpack: header list too large');
      fields.push([name, value]);
    }
    return fields;
  }

  /** Bytes the dynamic table holds now (for tests). */
  get tableBytes(): number {
    return this.#tableBytes;
  }

  #lookup(index: number): HeaderField {
    if (index === 0) throw new HpackError('hpack: index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as HeaderField;
    const table = this.#table;
    const field = table[table.length - 1 - (index - STATIC_TABLE.length - 1)];
    if (field === undefined) throw new HpackError(`hpack: index ${index} beyond the table`);
    return field;
  }

  #insert(name: string, value: string): void {
    const size = entrySize(name, value);
    this.#evict(size);
    // An entry larger than the whole table empties it and is not added (RFC 7541 4.4).
    if (size > this.#maxTableBytes) return;
    this.#table.push([name, value]);
    this.#tableBytes += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    const table = this.#table;
    let drop = 0;
    while (this.#tableBytes + room > this.#maxTableBytes && drop < table.length) {
      const [n, v] = table[drop] as HeaderField;
      this.#tableBytes -= entrySize(n, v);
      drop++;
    }
    if (drop > 0) table.splice(0, drop);
  }
}

/** An integer with an N-bit prefix (RFC 7541 5.1): [value, position after it]. */
function decodeInteger(src: Uint8Array, pos: number, prefixBits: number): [number, number] {
  if (pos >= src.length) throw new HpackError('hpack: truncated integer');
  const mask = (1 << prefixBits) - 1;
  let value = (src[pos++] as number) & mask;
  if (value < mask) return [value, pos];
  let shift = 0;
  for (;;) {
    if (pos >= src.length) throw new HpackError('hpack: truncated integer');
    const b = src[pos++] as number;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 28) throw new HpackError('hpack: integer too large');
  }
  return [value, pos];
}

/** A string literal (RFC 7541 5.2): [latin1 string, position after it]. */
function decodeString(src: Uint8Array, pos: number): [string, number] {
  if (pos >= src.length) throw new HpackError('hpack: truncated string');
  const huffman = ((src[pos] as number) & 0x80) !== 0;
  const [length, start] = decodeInteger(src, pos, 7);
  const end = start + length;
  if (end > src.length) throw new HpackError('hpack: truncated string');
  if (huffman) return [decodeHuffman(src, start, end), end];
  return [latin1(src, start, end), end];
}

function latin1(src: Uint8Array, start: number, end: number): string {
  if (end - start < 32) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(src[i] as number);
    return s;
  }
  return Buffer.from(src.buffer, src.byteOffset + start, end - start).toString('latin1');
}

// ---- encoder ----

/** name -> first static index with that name; "name\0value" -> the index of that exact pair. */
const STATIC_NAMES = new Map<string, number>();
const STATIC_PAIRS = new Map<string, number>();
for (let i = 0; i < STATIC_TABLE.length; i++) {
  const [name, value] = STATIC_TABLE[i] as HeaderField;
  if (!STATIC_NAMES.has(name)) STATIC_NAMES.set(name, i + 1);
  if (value !== '') STATIC_PAIRS.set(`${name}\0${value}`, i + 1);
}

/**
 * Encodes header fields as one block: a static-table index for an exact match, else a literal
 * without indexing (with the static name index when there is one), strings as raw latin1.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Buffer {
  let size = 0;
  for (const [name, value] of fields) size += name.length + value.length + 16;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const [name, value] of fields) {
    const exact = STATIC_PAIRS.get(`${name}\0${value}`);
    if (exact !== undefined) {
      pos = encodeInteger(out, pos, exact, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAMES.get(name);
    if (nameIndex !== undefined) {
      pos = encodeInteger(out, pos, nameIndex, 4, 0x00);
    } else {
      out[pos++] = 0x00;
      pos = encodeString(out, pos, name);
    }
    pos = encodeString(out, pos, value);
  }
  return out.subarray(0, pos);
}

function encodeInteger(out: Buffer, pos: number, value: number, prefixBits: number, flags: number): number {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | mask;
  let rest = value - mask;
  while (rest >= 0x80) {
    out[pos++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[pos++] = rest;
  return pos;
}

function encodeString(out: Buffer, pos: number, s: string): number {
  pos = encodeInteger(out, pos, s.length, 7, 0x00);
  return pos + out.write(s, pos, 'latin1');
}
