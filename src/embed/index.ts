import { GrpcStatus, toGrpcError } from '../api/errors.ts';
import { GrpcServer } from '../api/grpc/index.ts';
import { addEtcdEndpoints, type HealthCheck, type HealthReport, HttpRouter } from '../api/http.ts';
import { allMethods } from '../proto/services.ts';
import { ConfigError, maxReceiveMessageBytes, resolveConfig, type ServerConfig } from '../server/config.ts';
import { type DataDirLayout, openDataDir } from '../server/datadir.ts';
import { createLogger, type Logger } from '../server/logger.ts';
import type { PeerTlsOptions } from '../transport/index.ts';
import { VERSION } from '../version.ts';
import { type BoundListener, MultiplexServer, type StreamHook } from './serve.ts';
import { type CertificateFiles, certificateFiles, peerDialTls, serverTls } from './tls.ts';

/**
 * Start an etcd-ts member in-process: `const member = await startMember({ dataDir, ... })`.
 * This is the package's main entry point (`import { startMember } from 'etcd-ts'`).
 *
 * A member locks its data directory, serves gRPC (every etcd method; those without a service
 * behind them answer UNIMPLEMENTED) and the HTTP endpoints on each client URL, and binds its
 * peer and metrics URLs. What it serves comes from `services`: each registers its gRPC handlers
 * and HTTP routes when the member starts and is stopped when it closes.
 */

export type { HealthCheck, HealthReport } from '../api/http.ts';
export { ConfigError, resolveConfig, type ServerConfig } from '../server/config.ts';
export { DataDirError, type DataDirLayout } from '../server/datadir.ts';
export type { Logger } from '../server/logger.ts';

/** How long close() lets calls in flight finish before dropping connections. */
export const CLOSE_GRACE_MS = 2000;

/** What a service sees of the member it runs in. */
export interface MemberContext {
  readonly config: ServerConfig;
  readonly dataDir: DataDirLayout;
  readonly logger: Logger;
  /** Client-facing gRPC server: `grpc.addMethod(KVService.Range, handler)`. */
  readonly grpc: GrpcServer;
  /** Client-facing HTTP routes (`/metrics`, `/v3/...`). */
  readonly http: HttpRouter;
  /** Routes served on the peer URLs. */
  readonly peerHttp: HttpRouter;
  /** HTTP/2 streams of the peer URLs offered first to `hook` (the raft transport's streams). */
  addPeerStreamHook(hook: StreamHook): void;
  /** What the peer transport dials `https://` peers with (--peer-cert-file...); null without peer certificates. */
  readonly peerDialTls: PeerTlsOptions | null;
  /** Replaces the member's health check (`/health`, `/readyz`). */
  setHealthCheck(check: HealthCheck): void;
}

/** A part of the member: the KV server, the lessor, metrics... */
export interface MemberService {
  readonly name: string;
  /** Registers handlers and routes, opens what it needs. Runs before the listeners open. */
  start(context: MemberContext): void | Promise<void>;
  /** Runs on close after the listeners have stopped, services in reverse order of start. */
  stop?(): void | Promise<void>;
}

export interface StartMemberOptions {
  /** Default: JSON logs as `--logger`, `--log-level` and `--log-outputs` say. */
  readonly logger?: Logger;
  readonly services?: readonly MemberService[];
}

export interface Member {
  readonly name: string;
  readonly config: ServerConfig;
  /** Client URLs as bound (a port 0 in the configuration is replaced by the actual port). */
  readonly clientUrls: readonly string[];
  /** URLs serving only the HTTP endpoints (`--listen-client-http-urls`), as bound. */
  readonly clientHttpUrls: readonly string[];
  readonly peerUrls: readonly string[];
  readonly metricsUrls: readonly string[];
  readonly dataDir: DataDirLayout;
  readonly logger: Logger;
  readonly grpc: GrpcServer;
  readonly http: HttpRouter;
  /** Stops serving, stops the services, releases the data dir. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Until a raft node reports a leader, the member is not healthy: etcd answers
 * `{"health":"false","reason":"RAFT NO LEADER"}` in that state.
 */
const NO_LEADER: HealthReport = Object.freeze({ healthy: false, reason: 'RAFT NO LEADER' });

export async function startMember(
  input: Partial<ServerConfig> | ServerConfig = {},
  options: StartMemberOptions = {},
): Promise<Member> {
  const config = resolveConfig(input);
  const logger =
    options.logger ?? createLogger({ name: config.name, level: config.logLevel, outputs: config.logOutputs });
  const onReloadError = (side: string) => (err: Error) =>
    logger.warn(
      { error: err.message },
      `the ${side} certificate files changed but do not load; keeping the previous ones`,
    );
  const clientFiles = tlsFiles(config, 'client', onReloadError('client'));
  const peerFiles = tlsFiles(config, 'peer', onReloadError('peer'));
  const clientTls = clientFiles === null ? null : serverTls(config, clientFiles);
  const peerTls = peerFiles === null ? null : serverTls(config, peerFiles);

  logger.info(
    {
      'etcd-version': VERSION.server,
      'etcd-ts-version': VERSION.etcdTs,
      'node-version': process.version,
      'data-dir': config.dataDir,
      'wal-dir': config.walDir,
      'heartbeat-interval': `${config.heartbeatIntervalMs}ms`,
      'election-timeout': `${config.electionTimeoutMs}ms`,
      'initial-cluster': config.initialCluster,
      'initial-cluster-state': config.initialClusterState,
      'max-request-bytes': config.maxRequestBytes,
    },
    'starting an etcd server',
  );

  const dataDir = await openDataDir(config.dataDir, { walDir: config.walDir });
  for (const warning of dataDir.warnings) logger.warn(warning);

  const started: MemberService[] = [];
  const servers: MultiplexServer[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close(CLOSE_GRACE_MS)));
    for (const service of started.reverse()) {
      try {
        await service.stop?.();
      } catch (err) {
        logger.error({ service: service.name, error: String(err) }, 'failed to stop service');
      }
    }
    await dataDir.close();
  };

  try {
    const grpc = new GrpcServer({
      maxReceiveMessageBytes: maxReceiveMessageBytes(config),
      // etcd's own errors (no leader, compacted, ...) are answers, not failures: only the
      // errors the translation table does not know are worth a warning.
      onHandlerError: (error, path) => {
        const code = toGrpcError(error).code;
        if (code === GrpcStatus.UNKNOWN || code === GrpcStatus.INTERNAL) {
          logger.warn({ method: path, error: String(error) }, 'gRPC handler failed');
        } else {
          logger.debug({ method: path, error: String(error) }, 'gRPC request failed');
        }
      },
    });
    grpc.declareMethods(allMethods);
    const onHttpError = (error: unknown, path: string): void =>
      logger.warn({ path, error: String(error) }, 'HTTP handler failed');
    let health: HealthCheck = () => NO_LEADER;
    const http = addEtcdEndpoints(new HttpRouter({ maxBodyBytes: config.maxRequestBytes, onError: onHttpError }), {
      health: (query) => health(query),
    });
    const peerHttp = new HttpRouter({ onError: onHttpError });
    peerHttp.route('/version', ['GET'], () => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ etcdserver: VERSION.server, etcdcluster: VERSION.cluster }),
    }));

    const peerStreamHooks: StreamHook[] = [];
    const context: MemberContext = {
      config,
      dataDir,
      logger,
      grpc,
      http,
      peerHttp,
      addPeerStreamHook(hook) {
        peerStreamHooks.push(hook);
      },
      peerDialTls: peerFiles === null ? null : peerDialTls(config, peerFiles),
      setHealthCheck(check) {
        health = check;
      },
    };
    for (const service of options.services ?? []) {
      await service.start(context);
      started.push(service);
    }

    const keepalive = { intervalMs: config.grpcKeepaliveIntervalMs, timeoutMs: config.grpcKeepaliveTimeoutMs };
    const maxConcurrentStreams = config.maxConcurrentStreams;
    const splitHttp = config.listenClientHttpUrls.length > 0;
    const clientServer = new MultiplexServer({
      grpc,
      http: splitHttp ? null : http,
      maxConcurrentStreams,
      keepalive,
      tls: clientTls?.options ?? null,
      tlsSource: clientTls,
    });
    servers.push(clientServer);
    const httpOnlyServer = new MultiplexServer({
      grpc: null,
      http,
      maxConcurrentStreams,
      keepalive,
      tls: clientTls?.options ?? null,
      tlsSource: clientTls,
    });
    servers.push(httpOnlyServer);
    const peerServer = new MultiplexServer({
      grpc: null,
      http: peerHttp,
      maxConcurrentStreams,
      keepalive,
      tls: peerTls?.options ?? null,
      tlsSource: peerTls,
      ...(config.peerCertAllowedCn === '' ? {} : { tlsAllowedCommonName: config.peerCertAllowedCn }),
      streamHooks: peerStreamHooks,
    });
    servers.push(peerServer);

    logger.info({ 'listen-peer-urls': config.listenPeerUrls }, 'configuring peer listeners');
    const peerListeners = await listenAll(peerServer, config.listenPeerUrls, '--listen-peer-urls');
    logger.info({ 'listen-client-urls': config.listenClientUrls }, 'configuring client listeners');
    const clientListeners = await listenAll(clientServer, config.listenClientUrls, '--listen-client-urls');
    const httpListeners = await listenAll(httpOnlyServer, config.listenClientHttpUrls, '--listen-client-http-urls');
    const metricsListeners = await listenAll(httpOnlyServer, config.listenMetricsUrls, '--listen-metrics-urls');

    const clientUrls = Object.freeze(clientListeners.map((l) => l.url));
    const peerUrls = Object.freeze(peerListeners.map((l) => l.url));
    const clientHttpUrls = Object.freeze(httpListeners.map((l) => l.url));
    const metricsUrls = Object.freeze(metricsListeners.map((l) => l.url));
    logger.info(
      {
        'initial-advertise-peer-urls': config.initialAdvertisePeerUrls,
        'listen-peer-urls': peerUrls,
        'advertise-client-urls': config.advertiseClientUrls,
        'listen-client-urls': clientUrls,
        'listen-metrics-urls': metricsUrls,
      },
      'now serving peer/client/metrics',
    );
    for (const url of peerUrls) logger.info({ address: hostPort(url) }, 'serving peer traffic');
    for (const url of [...clientUrls, ...clientHttpUrls]) {
      if (url.startsWith('https') || url.startsWith('unixs')) {
        logger.info({ address: hostPort(url) }, 'serving client traffic securely');
      } else {
        logger.warn({ address: hostPort(url) }, 'serving client traffic insecurely; this is strongly discouraged!');
      }
    }
    for (const url of metricsUrls) logger.info({ address: hostPort(url) }, 'serving metrics');
    logger.info('ready to serve client requests');

    let closing: Promise<void> | null = null;
    return {
      name: config.name,
      config,
      clientUrls,
      clientHttpUrls,
      peerUrls,
      metricsUrls,
      dataDir,
      logger,
      grpc,
      http,
      close() {
        closing ??= (async () => {
          logger.info({ 'data-dir': config.dataDir }, 'closing etcd server');
          await stopAll();
          logger.info({ 'data-dir': config.dataDir }, 'closed etcd server');
        })();
        return closing;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function listenAll(server: MultiplexServer, urls: readonly string[], flag: string): Promise<BoundListener[]> {
  const bound: BoundListener[] = [];
  for (const url of urls) {
    try {
      bound.push(await server.listen(url));
    } catch (err) {
      throw new ConfigError(`cannot listen on ${url} (${flag}): ${(err as Error).message}`, flag.slice(2), {
        cause: err,
      });
    }
  }
  return bound;
}

function hostPort(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '');
}

/** The certificate files of the client or peer TLS flags; null when no certificate is configured. */
function tlsFiles(
  config: ServerConfig,
  side: 'client' | 'peer',
  onReloadError: (err: Error) => void,
): CertificateFiles | null {
  const auto = side === 'client' ? config.autoTls : config.peerAutoTls;
  const files = certificateFiles(config, side, onReloadError);
  if (files === null && auto) {
    const prefix = side === 'client' ? '' : 'peer-';
    throw new ConfigError(
      `--${prefix}auto-tls is not supported by etcd-ts yet; give --${prefix}cert-file and --${prefix}key-file`,
      `${prefix}auto-tls`,
    );
  }
  return files;
}
