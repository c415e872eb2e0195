export { H2Connection, type H2ConnectionOptions, MAX_HEADER_LIST_BYTES } from './connection.ts';
export { CLIENT_PREFACE, ErrorCode as H2ErrorCode } from './frames.ts';
export { readChunks, type ServerStream } from './server-stream.ts';
export { H2Stream, STREAM_WRITE_MARK_BYTES } from './stream.ts';
