/**
 * HTTP/2 frames built by hand for the tests of src/api/h2 (both sides): frame types, flags and
 * error codes of RFC 9113, spelled out here rather than taken from the code under test.
 */

export const DATA = 0x0;
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PROTOCOL_ERROR = 1;
export const FRAME_SIZE_ERROR = 6;
export const REFUSED_STREAM = 7;
export const CANCEL = 8;
export const COMPRESSION_ERROR = 9;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** One frame: the 9-byte header, then `payload`. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK literal header field without indexing, new name (no Huffman). */
export function literal(name: string, value: string): Buffer {
  if (name.length >= 127 || value.length >= 127)
    throw new RangeError('literal: name and value must be shorter than 127');
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name, 'latin1'),
    Buffer.from([value.length]),
    Buffer.from(value, 'latin1'),
  ]);
}

/** :method POST, :scheme http, :path /, then `extra`. */
export function postBlock(...extra: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([0x83, 0x86, 0x84]), literal(':authority', 'localhost'), ...extra]);
}
