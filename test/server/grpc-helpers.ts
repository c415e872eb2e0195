/**
 * A raw gRPC client over node:http2 for testing the server framework byte by byte, and
 * hand-made method descriptors whose messages are UTF-8 strings.
 */
import { execFileSync } from 'node:child_process';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeGrpcMessage, encodeFrame, type GrpcServer, type MethodDescriptor } from '../../src/api/grpc/index.ts';

export function textMethod(
  path: string,
  requestStream: boolean,
  responseStream: boolean,
): MethodDescriptor<string, string> {
  return {
    path,
    requestStream,
    responseStream,
    decodeRequest: (bytes) => {
      const text = Buffer.from(bytes).toString('utf8');
      if (text === 'undecodable') throw new Error('bad request bytes');
      return text;
    },
    encodeResponse: (message) => Buffer.from(message, 'utf8'),
  };
}

export function frame(text: string): Buffer {
  return encodeFrame(Buffer.from(text, 'utf8'));
}

/** Splits a byte stream of framed messages back into their payloads. */
export function unframe(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset + 1);
    out.push(bytes.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return out;
}

export interface CallResult {
  /** grpc-status from the trailers (or from the headers of a trailers-only response). */
  status: number | null;
  message: string;
  /** The response messages as UTF-8 text. */
  messages: string[];
  /** The response messages as bytes. */
  raw: Buffer[];
  headers: IncomingHttpHeaders | null;
  trailers: IncomingHttpHeaders | null;
  trailersOnly: boolean;
}

export interface RawCall {
  stream: ClientHttp2Stream;
  result: Promise<CallResult>;
}

/** Opens a call; the caller writes request bytes on `stream` and ends it. */
export function openCall(
  session: ClientHttp2Session,
  path: string,
  extraHeaders: Record<string, string> = {},
): RawCall {
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extraHeaders,
  });
  const result = new Promise<CallResult>((resolve, reject) => {
    let headers: IncomingHttpHeaders | null = null;
    let trailers: IncomingHttpHeaders | null = null;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('close', () => {
      const source = trailers ?? headers;
      const status = source?.['grpc-status'];
      const message = source?.['grpc-message'];
      const raw = unframe(Buffer.concat(chunks));
      resolve({
        status: typeof status === 'string' ? Number(status) : null,
        message: typeof message === 'string' ? decodeGrpcMessage(message) : '',
        messages: raw.map((m) => m.toString('utf8')),
        raw,
        headers,
        trailers,
        trailersOnly: trailers === null && typeof headers?.['grpc-status'] === 'string',
      });
    });
  });
  return { stream, result };
}

/** One call with whole request messages, the client side ended after them. */
export function call(
  session: ClientHttp2Session,
  path: string,
  requests: readonly string[],
  extraHeaders: Record<string, string> = {},
): Promise<CallResult> {
  const { stream, result } = openCall(session, path, extraHeaders);
  stream.end(Buffer.concat(requests.map(frame)));
  return result;
}

export interface TestServer {
  server: Http2Server;
  session: ClientHttp2Session;
  url: string;
  close(): Promise<void>;
}

/** An HTTP/2 server on 127.0.0.1 answering every stream with `grpc`, and a client session to it. */
export async function startGrpc(grpc: GrpcServer): Promise<TestServer> {
  const server = createServer();
  server.on('stream', grpc.handleStream);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const session = connect(url);
  session.on('error', () => {});
  return {
    server,
    session,
    url,
    async close() {
      session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A self-signed EC certificate for 127.0.0.1, written by the openssl command into `dir`. */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
