/** HTTP/2 (RFC 9113) frame types, flags, settings and error codes used by the connection. */

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const FRAME_HEADER_BYTES = 9;
/** The client connection preface that precedes the client's first SETTINGS. */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** Every frame size both sides accept before SETTINGS_MAX_FRAME_SIZE says otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 16_384;
export const DEFAULT_WINDOW_BYTES = 65_535;
export const MAX_WINDOW_BYTES = 2 ** 31 - 1;

/** `readFrames` stopped because the handler returned false. */
export const FRAMES_STOPPED = -1;
/** `readFrames` met a frame longer than the limit (a FRAME_SIZE_ERROR). */
export const FRAME_TOO_LARGE = -2;

/**
 * Hands each whole frame of `buf` from `pos` on to `onFrame` (its payload a view into `buf`).
 * Returns the offset of the first byte of an incomplete frame (or `buf.length`), FRAMES_STOPPED
 * when `onFrame` returned false, or FRAME_TOO_LARGE for a frame longer than `maxFrameBytes`.
 */
export function readFrames(
  buf: Buffer,
  pos: number,
  maxFrameBytes: number,
  onFrame: (type: number, flags: number, streamId: number, payload: Buffer) => boolean,
): number {
  const end = buf.length;
  while (end - pos >= FRAME_HEADER_BYTES) {
    const length = ((buf[pos] as number) << 16) | ((buf[pos + 1] as number) << 8) | (buf[pos + 2] as number);
    if (length > maxFrameBytes) return FRAME_TOO_LARGE;
    if (end - pos - FRAME_HEADER_BYTES < length) break;
    const type = buf[pos + 3] as number;
    const flags = buf[pos + 4] as number;
    const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
    const start = pos + FRAME_HEADER_BYTES;
    pos = start + length;
    if (!onFrame(type, flags, streamId, buf.subarray(start, pos))) return FRAMES_STOPPED;
  }
  return pos;
}

/** The header block fragment of a HEADERS frame (padding and priority fields taken off); null when they do not fit. */
export function headersFragment(flags: number, payload: Buffer): Buffer | null {
  let start = 0;
  let end = payload.length;
  if (flags & Flag.PADDED) {
    const pad = payload[0];
    if (pad === undefined) return null;
    start = 1;
    end -= pad;
  }
  if (flags & Flag.PRIORITY) start += 5;
  return start > end ? null : payload.subarray(start, end);
}

/**
 * Checks a SETTINGS payload (not an ACK) and then hands each pair to `onSetting`, in order.
 * Returns 0, or the error code of a bad payload (nothing handed on): FRAME_SIZE_ERROR for a
 * length that is not a multiple of 6, PROTOCOL_ERROR for ENABLE_PUSH above 1 or MAX_FRAME_SIZE
 * out of range, FLOW_CONTROL_ERROR for INITIAL_WINDOW_SIZE above 2^31-1 (RFC 9113 6.5.2).
 */
export function readSettings(payload: Buffer, onSetting: (id: number, value: number) => void): number {
  if (payload.length % 6 !== 0) return ErrorCode.FRAME_SIZE_ERROR;
  for (let p = 0; p < payload.length; p += 6) {
    const id = payload.readUInt16BE(p);
    const value = payload.readUInt32BE(p + 2);
    if (id === Setting.ENABLE_PUSH && value > 1) return ErrorCode.PROTOCOL_ERROR;
    if (id === Setting.INITIAL_WINDOW_SIZE && value > MAX_WINDOW_BYTES) return ErrorCode.FLOW_CONTROL_ERROR;
    if (id === Setting.MAX_FRAME_SIZE && (value < DEFAULT_MAX_FRAME_BYTES || value > 16_777_215)) {
      return ErrorCode.PROTOCOL_ERROR;
    }
  }
  for (let p = 0; p < payload.length; p += 6) onSetting(payload.readUInt16BE(p), payload.readUInt32BE(p + 2));
  return 0;
}
