// What both ends of a peer connection agree on: paths, headers, status codes, id and URL
// formats, and how a member dials a peer.

import { type ClientHttp2Session, connect as connectHttp2, constants as h2 } from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import { ErrInvalidPeerUrl } from './errors.ts';

/** The long-lived stream of raft messages from the dialing member to the dialed one. */
export const PATH_MESSAGE_STREAM = '/raft/stream/message';
/** One snapshot (message + backend data) per request. */
export const PATH_SNAPSHOT = '/raft/snapshot';
/** Every path the transport serves starts with this. */
export const PATH_PREFIX = '/raft';

/** etcd's headers (rafthttp/util.go); ids are written as etcd does, lowercase hex without padding. */
export const HEADER_CLUSTER_ID = 'x-etcd-cluster-id';
export const HEADER_FROM = 'x-server-from';
export const HEADER_TO = 'x-raft-to';
export const HEADER_SERVER_VERSION = 'x-server-version';

export const CONTENT_TYPE_STREAM = 'application/octet-stream';

/** etcd's answers to a stream it refuses (rafthttp/http.go). */
export const REJECT = {
  clusterIdMismatch: { status: 412, text: 'cluster ID mismatch' },
  toMismatch: { status: 412, text: 'to field mismatch' },
  removedMember: { status: 410, text: 'removed member' },
  unknownSender: { status: 404, text: 'error sender not found' },
  invalidFrom: { status: 400, text: 'invalid from' },
  methodNotAllowed: { status: 405, text: 'Method Not Allowed' },
  notFound: { status: 404, text: '404 page not found' },
  closing: { status: 503, text: 'transport is closing' },
  tooManySnapshots: { status: 503, text: 'too many snapshots in flight' },
} as const;

/** A snapshot was received, stored and handed to the application. */
export const STATUS_SNAPSHOT_OK = 204;

const ID_PATTERN = /^[0-9a-f]{1,16}$/i;

export function formatId(id: bigint): string {
  return id.toString(16);
}

/** A member or cluster id from a header; null when absent or malformed. */
export function parseId(value: string | string[] | undefined): bigint | null {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) return null;
  return BigInt(`0x${value}`);
}

/** Checks a peer URL (`http://host:port` or `https://host:port`); returns it normalised to its origin. */
export function checkPeerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new ErrInvalidPeerUrl(String(raw), (err as Error).message);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ErrInvalidPeerUrl(raw, `scheme ${url.protocol.slice(0, -1)} is not http or https`);
  }
  if (url.hostname === '') throw new ErrInvalidPeerUrl(raw, 'no host');
  if (url.port === '') throw new ErrInvalidPeerUrl(raw, 'no port');
  if (url.pathname !== '/' && url.pathname !== '') throw new ErrInvalidPeerUrl(raw, 'a peer URL has no path');
  return url.origin;
}

export function checkPeerUrls(urls: readonly string[]): string[] {
  if (!Array.isArray(urls) || urls.length === 0) throw new ErrInvalidPeerUrl(String(urls), 'a peer needs a URL');
  return urls.map(checkPeerUrl);
}

/**
 * TLS for dialing `https://` peers: `ca` verifies their certificates, `cert` and `key` are
 * presented as this member's client certificate (for peers run with
 * `--peer-client-cert-auth`). The peer listener's own TLS belongs to the server that serves
 * `Transport.handler`.
 */
export type PeerTlsOptions = Pick<
  ConnectionOptions,
  'ca' | 'cert' | 'key' | 'crl' | 'ciphers' | 'minVersion' | 'maxVersion' | 'rejectUnauthorized' | 'servername'
>;

/**
 * Opens an HTTP/2 session to a peer: prior knowledge over cleartext, ALPN `h2` over TLS.
 * Resolves once the session is connected; rejects on error or after `timeoutMs`.
 */
export function dial(origin: string, tls: PeerTlsOptions | null, timeoutMs: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const secure = origin.startsWith('https:');
    const session = connectHttp2(origin, {
      ...(secure && tls !== null ? tls : {}),
      settings: { enablePush: false },
    });
    let settled = false;
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.removeListener('connect', onConnect);
      if (err === null) {
        resolve(session);
      } else {
        session.destroy();
        reject(err);
      }
    };
    const onConnect = (): void => settle(null);
    const timer = setTimeout(() => settle(new Error(`dial ${origin}: timed out after ${timeoutMs} ms`)), timeoutMs);
    session.once('connect', onConnect);
    // Errors after the connection are handled by the owner of the session; this listener
    // stays so that none of them is ever unhandled.
    session.on('error', (err) => settle(err));
    session.once('close', () => settle(new Error(`dial ${origin}: connection closed`)));
  });
}

/** RST_STREAM codes used to end streams. */
export const RST_CANCEL = h2.NGHTTP2_CANCEL;
export const RST_PROTOCOL_ERROR = h2.NGHTTP2_PROTOCOL_ERROR;
export const RST_NO_ERROR = h2.NGHTTP2_NO_ERROR;
