/** Peer listeners, members and certificates for the transport tests (all on 127.0.0.1). */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http2';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  connect as netConnect,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { H2Connection, type H2Stream } from '../../src/api/h2/index.ts';
import { EMPTY_BYTES, EntryType, type Message, MessageType, newMessage } from '../../src/raft/index.ts';
import {
  type PeerStreamHandler,
  type PeerTlsOptions,
  type ReceivedSnapshot,
  Transport,
  type TransportLogger,
  type TransportOptions,
} from '../../src/transport/index.ts';

/** The embed's peer listener settings (src/embed/serve.ts): 1 MiB stream window, 16 MiB connection window. */
const STREAM_WINDOW_BYTES = 1024 * 1024;
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

export interface ServerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  /** --peer-client-cert-auth: dialing members must present a certificate signed by `ca`. */
  readonly clientCertAuth: boolean;
}

/**
 * A peer listener on our own HTTP/2 (as the embed's peer port), whose streams go to a handler
 * that can be swapped (a member restarting).
 */
export class PeerServer {
  readonly server: NetServer;
  readonly url: string;
  readonly port: number;
  readonly #connections = new Set<H2Connection>();
  handler: PeerStreamHandler | null = null;
  /** Paths of the streams no handler took. */
  readonly unhandled: string[] = [];

  private constructor(server: NetServer, url: string, port: number) {
    this.server = server;
    this.url = url;
    this.port = port;
  }

  static async start(options: { port?: number; tls?: ServerTls } = {}): Promise<PeerServer> {
    const tls = options.tls;
    let peer: PeerServer | null = null;
    const accept = (socket: Socket): void => {
      socket.on('error', () => {});
      if (peer === null) socket.destroy();
      else peer.#accept(socket);
    };
    const server =
      tls === undefined
        ? createNetServer(accept)
        : createTlsServer(
            {
              cert: tls.cert,
              key: tls.key,
              ca: tls.ca,
              requestCert: tls.clientCertAuth,
              rejectUnauthorized: tls.clientCertAuth,
              ALPNProtocols: ['h2'],
            },
            accept,
          );
    server.on('tlsClientError', () => {});
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        const address = server.address();
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
    peer = new PeerServer(server, `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`, port);
    return peer;
  }

  #accept(socket: Socket): void {
    const connection = new H2Connection(socket, {
      maxConcurrentStreams: 100,
      streamWindowBytes: STREAM_WINDOW_BYTES,
      connectionWindowBytes: CONNECTION_WINDOW_BYTES,
      onStream: (stream: H2Stream, headers: IncomingHttpHeaders) => {
        if (this.handler?.(stream, headers) === true) return;
        this.unhandled.push(String(headers[':path']));
        stream.respond({ ':status': 404 });
        stream.end('404 page not found\n');
      },
    });
    this.#connections.add(connection);
    connection.onClose(() => this.#connections.delete(connection));
  }

  /** Sends GOAWAY on every connection, as a member shutting down gracefully does; keeps listening. */
  goAway(): void {
    for (const connection of this.#connections) connection.close();
  }

  /** Stops listening and drops every connection at once (a member crashing). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.#connections) connection.destroy();
    await closed;
  }
}

/**
 * A TCP relay in front of a listener that can cut the link without closing it: while frozen,
 * bytes stop flowing both ways (a network partition, or a hung peer), connections stay open.
 */
export class FreezableProxy {
  readonly #server: NetServer;
  readonly #pairs = new Set<[Socket, Socket]>();
  #frozen = false;
  readonly port: number;

  private constructor(server: NetServer, port: number) {
    this.#server = server;
    this.port = port;
  }

  static async start(targetPort: number): Promise<FreezableProxy> {
    let proxy: FreezableProxy | null = null;
    const server = createNetServer((client) => {
      const upstream = netConnect(targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      proxy!.#pairs.add(pair);
      for (const s of pair) {
        s.on('error', () => {});
        s.once('close', () => {
          proxy!.#pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
      if (proxy!.#frozen) {
        client.pause();
        upstream.pause();
      }
    });
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
    proxy = new FreezableProxy(server, port);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  freeze(): void {
    this.#frozen = true;
    for (const pair of this.#pairs) for (const s of pair) s.pause();
  }

  thaw(): void {
    this.#frozen = false;
    for (const pair of this.#pairs) for (const s of pair) s.resume();
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) for (const s of pair) s.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

export function recordingLogger(lines: LogLine[] = []): { logger: TransportLogger; lines: LogLine[] } {
  const at =
    (level: LogLine['level']) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields: fields as Record<string, unknown> });
    };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** A member of a test cluster: its listener, its transport and everything the transport told it. */
export class TestMember {
  readonly id: bigint;
  server: PeerServer;
  transport!: Transport;
  readonly snapshotDir: string;
  readonly received: Message[] = [];
  readonly unreachable: bigint[] = [];
  readonly snapshotStatus: { peer: bigint; ok: boolean }[] = [];
  readonly removedBy: bigint[] = [];
  /** Snapshots received (the files stay where the transport put them). */
  readonly snapshots: { message: Message; snapshot: ReceivedSnapshot }[] = [];
  /** Replaces the recording of received snapshots (to check them, or to refuse them by throwing). */
  onSnapshot: ((message: Message, snapshot: ReceivedSnapshot) => void | Promise<void>) | null = null;
  /** Log lines of the current transport. */
  log: LogLine[] = [];

  constructor(id: bigint, server: PeerServer, snapshotDir: string) {
    this.id = id;
    this.server = server;
    this.snapshotDir = snapshotDir;
  }
}

export type MemberOverrides = Partial<Omit<TransportOptions, 'memberId' | 'peers' | 'snapshotDir'>>;

export interface TestCluster {
  readonly members: TestMember[];
  readonly dir: string;
  /** Builds a fresh transport for `member` (after a restart), with the same peers. */
  restartTransport(member: TestMember, overrides?: MemberOverrides): void;
  close(): Promise<void>;
}

export const CLUSTER_ID = 0xc1a5_7e20_0001n;

/** Fast retries so that reconnection tests finish quickly. */
export const FAST_TIMINGS = {
  backoffInitialMs: 20,
  backoffMaxMs: 200,
  dialTimeoutMs: 1000,
  pingIntervalMs: 100,
} as const;

/** `n` members with ids 1..n on loopback ports, each with a transport to all the others. */
export async function startCluster(
  n: number,
  options: { tls?: (id: bigint) => { server: ServerTls; client: PeerTlsOptions }; overrides?: MemberOverrides } = {},
): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-transport-'));
  const ids = Array.from({ length: n }, (_, i) => BigInt(i + 1));
  const servers = await Promise.all(ids.map((id) => PeerServer.start({ tls: options.tls?.(id).server })));
  const urls = new Map(ids.map((id, i) => [id, [servers[i]!.url]]));
  const members: TestMember[] = [];
  const build = (member: TestMember, overrides: MemberOverrides): Transport => {
    member.log = [];
    const transport = new Transport({
      memberId: member.id,
      clusterId: CLUSTER_ID,
      peers: new Map([...urls].filter(([id]) => id !== member.id)),
      snapshotDir: member.snapshotDir,
      logger: recordingLogger(member.log).logger,
      tls: options.tls?.(member.id).client,
      onMessage: (m) => member.received.push(m),
      onSnapshot: (message, snapshot) => {
        if (member.onSnapshot !== null) return member.onSnapshot(message, snapshot);
        member.snapshots.push({ message, snapshot });
      },
      onUnreachable: (id) => member.unreachable.push(id),
      onSnapshotStatus: (peer, ok) => member.snapshotStatus.push({ peer, ok }),
      onRemoved: (by) => member.removedBy.push(by),
      ...FAST_TIMINGS,
      ...options.overrides,
      ...overrides,
    });
    member.server.handler = transport.handler;
    return transport;
  };
  for (const [i, id] of ids.entries()) {
    const snapshotDir = join(dir, `member-${id}`);
    mkdirSync(snapshotDir);
    const member = new TestMember(id, servers[i]!, snapshotDir);
    member.transport = build(member, {});
    members.push(member);
  }
  return {
    members,
    dir,
    restartTransport(member, overrides = {}) {
      member.transport = build(member, overrides);
    },
    async close() {
      await Promise.all(members.map((m) => m.transport.close()));
      await Promise.all(members.map((m) => m.server.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A MsgApp carrying one entry of `dataBytes` bytes; `index` identifies it in order checks. */
export function appMessage(from: bigint, to: bigint, index: number, dataBytes = 16): Message {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index + i) & 0xff;
  return newMessage({
    type: MessageType.MsgApp,
    from,
    to,
    term: 3,
    logTerm: 3,
    index,
    commit: index,
    entries: [{ term: 3, index: index + 1, type: EntryType.Normal, data }],
  });
}

export function heartbeat(from: bigint, to: bigint, commit: number): Message {
  return newMessage({ type: MessageType.MsgHeartbeat, from, to, term: 3, commit, context: EMPTY_BYTES });
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `fn` with a directory under os.tmpdir() that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-transport-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let gcFn: (() => void) | null = null;

/** One full garbage collection, now. */
export function gcNow(): void {
  if (gcFn === null) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}
/**
 * Full garbage collections, so that memory measurements count live data only. V8 frees the
 * memory of dead ArrayBuffers on a background thread: a pause lets it finish.
 */
export async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gcNow();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface Pki {
  readonly ca: Buffer;
  /** A certificate for 127.0.0.1 usable as server and as client certificate, signed by `ca`. */
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A CA and a leaf certificate (serverAuth + clientAuth, SAN IP:127.0.0.1), made with openssl. */
export function makePki(dir: string, name: string): Pki {
  const p = (f: string): string => join(dir, `${name}-${f}`);
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('ca.key')]);
  run(['req', '-x509', '-new', '-key', p('ca.key'), '-days', '1', '-subj', `/CN=${name} CA`, '-out', p('ca.pem')]);
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('leaf.key')]);
  run(['req', '-new', '-key', p('leaf.key'), '-subj', '/CN=127.0.0.1', '-out', p('leaf.csr')]);
  execFileSync('sh', [
    '-c',
    `printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\nbasicConstraints=CA:FALSE\\n' > ${p('ext')}`,
  ]);
  run([
    'x509',
    '-req',
    '-in',
    p('leaf.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    p('ext'),
    '-out',
    p('leaf.pem'),
  ]);
  return { ca: readFileSync(p('ca.pem')), cert: readFileSync(p('leaf.pem')), key: readFileSync(p('leaf.key')) };
}
