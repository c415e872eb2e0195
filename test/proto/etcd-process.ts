// Test support: a real etcd on 127.0.0.1 (temp data dir, free ports) and a minimal gRPC client
// over node:http2 that exchanges raw message bytes, so tests see exactly what etcd sent.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject()));
    });
  });
}

/** Frames one message as gRPC does: compressed flag, 4-byte big-endian length, bytes. */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** Splits complete gRPC frames off the front of buf; returns the messages and the rest. */
function readFrames(buf: Buffer): { messages: Uint8Array[]; rest: Buffer } {
  const messages: Uint8Array[] = [];
  let offset = 0;
  while (buf.length - offset >= 5) {
    if (buf[offset] !== 0) throw new Error('compressed gRPC frames are not expected');
    const length = buf.readUInt32BE(offset + 1);
    if (buf.length - offset - 5 < length) break;
    // Copy: the message must not alias a buffer that node may reuse.
    messages.push(new Uint8Array(buf.subarray(offset + 5, offset + 5 + length)));
    offset += 5 + length;
  }
  return { messages, rest: buf.subarray(offset) };
}

export class GrpcError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(`grpc status ${status}: ${message}`);
    this.status = status;
  }
}

/** A gRPC call whose messages arrive one by one (server streaming or bidirectional). */
export class GrpcStream {
  readonly #stream: http2.ClientHttp2Stream;
  readonly #messages: Uint8Array[] = [];
  readonly #waiters: ((err?: Error) => void)[] = [];
  #pending: Buffer = Buffer.alloc(0);
  #error: Error | undefined = undefined;
  #ended = false;

  constructor(session: http2.ClientHttp2Session, path: string) {
    this.#stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const status = (headers: http2.IncomingHttpHeaders) => {
      const code = headers['grpc-status'];
      if (code !== undefined && code !== '0') {
        this.#fail(new GrpcError(Number(code), decodeURIComponent(String(headers['grpc-message'] ?? ''))));
      }
    };
    this.#stream.on('response', status);
    this.#stream.on('trailers', status);
    this.#stream.on('data', (chunk: Buffer) => {
      const { messages, rest } = readFrames(Buffer.concat([this.#pending, chunk]));
      this.#pending = rest;
      this.#messages.push(...messages);
      this.#wake();
    });
    this.#stream.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    this.#stream.on('error', (err) => this.#fail(err));
  }

  #fail(err: Error): void {
    this.#error ??= err;
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(message: Uint8Array): void {
    this.#stream.write(grpcFrame(message));
  }

  end(message?: Uint8Array): void {
    this.#stream.end(message === undefined ? undefined : grpcFrame(message));
  }

  /** The next message, or undefined once the call has ended; rejects on a gRPC error. */
  async next(timeoutMs = 5000): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#messages.shift();
      if (message !== undefined) return message;
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no gRPC message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#stream.close();
  }
}

/** One request, one response: returns the raw response message bytes. */
export async function unary(session: http2.ClientHttp2Session, path: string, request: Uint8Array): Promise<Uint8Array> {
  const call = new GrpcStream(session, path);
  call.end(request);
  try {
    const response = await call.next();
    if (response === undefined) throw new Error(`${path}: no response message`);
    return response;
  } finally {
    call.close();
  }
}

export interface EtcdProcess {
  readonly clientUrl: string;
  readonly session: http2.ClientHttp2Session;
  stop(): Promise<void>;
}

/**
 * Starts the etcd binary with a temporary data dir on free loopback ports and waits until it
 * answers gRPC. `ready` is a call that succeeds once the server serves requests.
 */
export async function startEtcd(ready: (session: http2.ClientHttp2Session) => Promise<unknown>): Promise<EtcdProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'etcd-ts-proto-etcd-'));
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const proc: ChildProcess = spawn(
    'etcd',
    [
      '--name=proto-test',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=proto-test=${peerUrl}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let session: http2.ClientHttp2Session | undefined;

  const stop = async () => {
    session?.destroy();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${stderr}`);
      session?.destroy();
      session = http2.connect(clientUrl);
      session.on('error', () => {});
      try {
        await ready(session);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`etcd not ready after 15 s: ${String(err)}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const ready_session = session;
  return { clientUrl, session: ready_session, stop };
}
