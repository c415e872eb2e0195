import { arch, platform } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { VERSION } from '../version.ts';
import { FLAGS, FlagKind, type FlagSpec, flagByName, flagToEnv, helpText } from './config-flags.ts';
import {
  opensslCipherSuite,
  parseEtcdUrl,
  parseGoBool,
  parseGoDuration,
  parseGoInt,
  parseGoUint,
  parseStringList,
  parseUrlList,
  ValueError,
} from './config-values.ts';
import { DEFAULT_RANGE_CACHE_BYTES } from './kv-field-cache.ts';

/**
 * The member's configuration: etcd's server flags with etcd's names and defaults, read from
 * the command line, `ETCD_*` environment variables or a YAML `--config-file` (see
 * `parseCommandLine` for the precedence), or given in code to `startMember` (`resolveConfig`).
 * Durations are milliseconds and carry the unit in their name.
 */
export interface ServerConfig {
  // ---- member ----
  readonly name: string;
  /** Default `${name}.etcd` (relative to the working directory). */
  readonly dataDir: string;
  /** A dedicated WAL directory; empty means `<data-dir>/member/wal`. */
  readonly walDir: string;
  readonly snapshotCount: number;
  readonly snapshotCatchupEntries: number;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly initialElectionTickAdvance: boolean;
  readonly listenPeerUrls: readonly string[];
  readonly listenClientUrls: readonly string[];
  /** URLs serving only the HTTP endpoints; when set, the client URLs serve only gRPC. */
  readonly listenClientHttpUrls: readonly string[];
  readonly maxSnapshots: number;
  readonly maxWals: number;
  /** 0 means the default quota (DEFAULT_QUOTA_BACKEND_BYTES); negative disables the quota. */
  readonly quotaBackendBytes: number;
  /** 0 means the backend's default. */
  readonly backendBatchIntervalMs: number;
  readonly backendBatchLimit: number;
  readonly maxTxnOps: number;
  readonly maxRequestBytes: number;
  /** Bytes of encoded KeyValues kept for Ranges read again; 0: none. */
  readonly rangeCacheBytes: number;
  readonly maxConcurrentStreams: number;
  readonly grpcKeepaliveMinTimeMs: number;
  readonly grpcKeepaliveIntervalMs: number;
  readonly grpcKeepaliveTimeoutMs: number;
  readonly socketReusePort: boolean;
  readonly socketReuseAddress: boolean;

  // ---- clustering ----
  readonly initialAdvertisePeerUrls: readonly string[];
  /** `name=peerURL,...`; default: this member's name with its advertised peer URLs. */
  readonly initialCluster: string;
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;
  readonly advertiseClientUrls: readonly string[];
  readonly strictReconfigCheck: boolean;
  readonly preVote: boolean;
  readonly autoCompactionMode: 'periodic' | 'revision';
  /** As given: hours (`1`) or a duration (`30m`) in periodic mode, a revision count in revision mode. */
  readonly autoCompactionRetention: string;

  // ---- security ----
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCertAuth: boolean;
  readonly clientCrlFile: string;
  readonly clientCertAllowedHostname: string;
  readonly trustedCaFile: string;
  readonly autoTls: boolean;
  readonly peerCertFile: string;
  readonly peerKeyFile: string;
  readonly peerClientCertAuth: boolean;
  readonly peerTrustedCaFile: string;
  readonly peerCertAllowedCn: string;
  readonly peerCertAllowedHostname: string;
  readonly peerAutoTls: boolean;
  readonly peerCrlFile: string;
  readonly selfSignedCertValidity: number;
  readonly cipherSuites: readonly string[];
  readonly tlsMinVersion: 'TLS1.2' | 'TLS1.3';
  /** Empty: no upper bound. */
  readonly tlsMaxVersion: '' | 'TLS1.2' | 'TLS1.3';

  // ---- auth ----
  /** `simple`, or `jwt,pub-key=...,priv-key=...,sign-method=...`. */
  readonly authToken: string;
  readonly bcryptCost: number;
  readonly authTokenTtlSec: number;

  // ---- profiling and monitoring ----
  readonly enablePprof: boolean;
  readonly metrics: 'basic' | 'extensive';
  readonly listenMetricsUrls: readonly string[];

  // ---- logging ----
  readonly logger: 'zap';
  /** `default`, `stderr`, `stdout`, or file paths. */
  readonly logOutputs: readonly string[];
  readonly logLevel: LogLevel;

  // ---- experimental ----
  readonly experimentalInitialCorruptCheck: boolean;
  readonly experimentalCorruptCheckTimeMs: number;
  readonly experimentalEnableLeaseCheckpoint: boolean;
  readonly experimentalCompactionBatchLimit: number;
  readonly experimentalWatchProgressNotifyIntervalMs: number;
  readonly experimentalWarningApplyDurationMs: number;

  // ---- unsafe ----
  readonly forceNewCluster: boolean;
  readonly unsafeNoFsync: boolean;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';

export const DEFAULT_NAME = 'default';
/** The backend quota when `--quota-backend-bytes` is 0: 2 GiB. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
/** etcd accepts gRPC messages this much larger than `--max-request-bytes` and checks the size itself. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** etcd's upper bound on `--election-timeout`. */
export const ELECTION_TIMEOUT_MAX_MS = 50_000;
export const BCRYPT_COST_MIN = 4;
export const BCRYPT_COST_MAX = 31;

/** The defaults that do not depend on other settings (data-dir and initial-cluster do). */
const BASE_DEFAULTS: Omit<ServerConfig, 'dataDir' | 'initialCluster'> = {
  name: DEFAULT_NAME,
  walDir: '',
  snapshotCount: 100_000,
  snapshotCatchupEntries: 5000,
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 1000,
  initialElectionTickAdvance: true,
  listenPeerUrls: ['http://localhost:2380'],
  listenClientUrls: ['http://localhost:2379'],
  listenClientHttpUrls: [],
  maxSnapshots: 5,
  maxWals: 5,
  quotaBackendBytes: 0,
  backendBatchIntervalMs: 0,
  backendBatchLimit: 0,
  maxTxnOps: 128,
  maxRequestBytes: 1_572_864,
  rangeCacheBytes: DEFAULT_RANGE_CACHE_BYTES,
  maxConcurrentStreams: 0xffff_ffff,
  grpcKeepaliveMinTimeMs: 5000,
  grpcKeepaliveIntervalMs: 2 * 3_600_000,
  grpcKeepaliveTimeoutMs: 20_000,
  socketReusePort: false,
  socketReuseAddress: false,
  initialAdvertisePeerUrls: ['http://localhost:2380'],
  initialClusterState: 'new',
  initialClusterToken: 'etcd-cluster',
  advertiseClientUrls: ['http://localhost:2379'],
  strictReconfigCheck: true,
  preVote: true,
  autoCompactionMode: 'periodic',
  autoCompactionRetention: '0',
  certFile: '',
  keyFile: '',
  clientCertAuth: false,
  clientCrlFile: '',
  clientCertAllowedHostname: '',
  trustedCaFile: '',
  autoTls: false,
  peerCertFile: '',
  peerKeyFile: '',
  peerClientCertAuth: false,
  peerTrustedCaFile: '',
  peerCertAllowedCn: '',
  peerCertAllowedHostname: '',
  peerAutoTls: false,
  peerCrlFile: '',
  selfSignedCertValidity: 1,
  cipherSuites: [],
  tlsMinVersion: 'TLS1.2',
  tlsMaxVersion: '',
  authToken: 'simple',
  bcryptCost: 10,
  authTokenTtlSec: 300,
  enablePprof: false,
  metrics: 'basic',
  listenMetricsUrls: [],
  logger: 'zap',
  logOutputs: ['default'],
  logLevel: 'info',
  experimentalInitialCorruptCheck: false,
  experimentalCorruptCheckTimeMs: 0,
  experimentalEnableLeaseCheckpoint: false,
  experimentalCompactionBatchLimit: 1000,
  experimentalWatchProgressNotifyIntervalMs: 10 * 60_000,
  experimentalWarningApplyDurationMs: 100,
  forceNewCluster: false,
  unsafeNoFsync: false,
};

/** A configuration that cannot be used; `flag` names the flag (or config key) at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_CONFIG';
  readonly flag: string | null;

  constructor(message: string, flag: string | null = null, options?: { cause?: unknown }) {
    super(message, options);
    this.flag = flag;
  }
}

/** The gRPC layer's receive limit: `--max-request-bytes` plus etcd's allowance for gRPC overhead. */
export function maxReceiveMessageBytes(config: Pick<ServerConfig, 'maxRequestBytes'>): number {
  return config.maxRequestBytes + GRPC_OVERHEAD_BYTES;
}

/** The effective backend quota in bytes; null when disabled (negative setting). */
export function quotaBackendBytesOf(config: Pick<ServerConfig, 'quotaBackendBytes'>): number | null {
  if (config.quotaBackendBytes < 0) return null;
  return config.quotaBackendBytes === 0 ? DEFAULT_QUOTA_BACKEND_BYTES : config.quotaBackendBytes;
}

export type AutoCompaction =
  | { readonly mode: 'off' }
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  | { readonly mode: 'revision'; readonly retentionRevisions: number };

/**
 * How auto compaction runs, from `--auto-compaction-mode` and `--auto-compaction-retention`
 * (etcd's parseCompactionRetention: a bare integer is hours in periodic mode and revisions in
 * revision mode; periodic mode also takes a duration such as `30m`).
 */
export function autoCompactionOf(
  config: Pick<ServerConfig, 'autoCompactionMode' | 'autoCompactionRetention'>,
): AutoCompaction {
  const text = config.autoCompactionRetention.trim();
  const flagName = 'auto-compaction-retention';
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (n === 0) return { mode: 'off' };
    if (config.autoCompactionMode === 'revision') return { mode: 'revision', retentionRevisions: n };
    return { mode: 'periodic', retentionMs: n * 3_600_000 };
  }
  if (config.autoCompactionMode === 'revision') {
    throw new ConfigError(
      `invalid value ${JSON.stringify(text)} for flag --${flagName}: revision mode needs a number of revisions`,
      flagName,
    );
  }
  let ms: number;
  try {
    ms = parseGoDuration(text);
  } catch (err) {
    throw new ConfigError(`error parsing CompactionRetention: ${(err as Error).message}`, flagName);
  }
  if (ms < 0) throw new ConfigError(`invalid value ${JSON.stringify(text)} for flag --${flagName}: negative`, flagName);
  return ms === 0 ? { mode: 'off' } : { mode: 'periodic', retentionMs: ms };
}

/** `--initial-cluster` as member name -> peer URLs (a name may list several URLs). */
export function parseInitialCluster(text: string): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const item of text.split(',')) {
    const entry = item.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(
        `invalid value ${JSON.stringify(text)} for flag --initial-cluster: ${JSON.stringify(entry)} is not of the form name=url`,
        'initial-cluster',
      );
    }
    const name = entry.slice(0, eq);
    const url = entry.slice(eq + 1).trim();
    try {
      parseEtcdUrl(url);
    } catch (err) {
      throw new ConfigError(
        `invalid value ${JSON.stringify(text)} for flag --initial-cluster: ${(err as Error).message}`,
        'initial-cluster',
      );
    }
    const urls = members.get(name) ?? [];
    if (!urls.includes(url)) urls.push(url);
    members.set(name, urls);
  }
  return members;
}

function normalizeHostForCompare(url: string): string {
  const u = parseEtcdUrl(url);
  const host = u.host === 'localhost' || u.host === '::1' ? '127.0.0.1' : u.host;
  return `${u.scheme}://${host}:${u.port}`;
}

/**
 * The bootstrap checks etcd makes when a member starts without data (VerifyBootstrap): this
 * member is in `--initial-cluster`, under exactly its advertised peer URLs, and no URL is
 * listed twice. A member restarting from its data dir ignores `--initial-cluster`.
 */
export function verifyInitialCluster(config: ServerConfig): void {
  const members = parseInitialCluster(config.initialCluster);
  const own = members.get(config.name);
  if (own === undefined) {
    throw new ConfigError(
      `couldn't find local name ${JSON.stringify(config.name)} in the initial cluster configuration`,
      'initial-cluster',
    );
  }
  const a = [...new Set(own.map(normalizeHostForCompare))].sort();
  const b = [...new Set(config.initialAdvertisePeerUrls.map(normalizeHostForCompare))].sort();
  if (a.join(',') !== b.join(',')) {
    throw new ConfigError(
      `--initial-cluster has ${config.name}=${own.join(',')} but missing from --initial-advertise-peer-urls=${config.initialAdvertisePeerUrls.join(',')}`,
      'initial-cluster',
    );
  }
  const seen = new Map<string, string>();
  for (const [name, urls] of members) {
    for (const url of urls) {
      const key = normalizeHostForCompare(url);
      const other = seen.get(key);
      if (other !== undefined && other !== name) {
        throw new ConfigError(`initial cluster ${config.initialCluster} has duplicate url ${url}`, 'initial-cluster');
      }
      seen.set(key, name);
    }
  }
}

export interface ResolveOptions {
  /**
   * The input came from flags, environment or a config file: defaults are etcd's exactly.
   * Otherwise (code), advertised URLs default to the listen URLs when only those are given.
   */
  readonly fromCommandLine?: boolean;
}

const FIELD_FLAGS: ReadonlyMap<keyof ServerConfig, FlagSpec> = (() => {
  const m = new Map<keyof ServerConfig, FlagSpec>();
  for (const f of FLAGS) if (f.field !== null && !m.has(f.field)) m.set(f.field, f);
  return m;
})();

/**
 * A complete, checked, frozen configuration from the fields given; the others take etcd's
 * defaults. Throws ConfigError naming the flag at fault.
 */
export function resolveConfig(input: Partial<ServerConfig> = {}, options: ResolveOptions = {}): ServerConfig {
  const given: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    const spec = FIELD_FLAGS.get(key as keyof ServerConfig);
    if (spec === undefined) throw new ConfigError(`unknown configuration field ${JSON.stringify(key)}`, null);
    checkFieldType(spec, value);
    given[key as keyof ServerConfig] = value;
  }
  const merged = { ...BASE_DEFAULTS, ...given } as Record<string, unknown>;
  const name = merged.name as string;
  if (name === '') throw new ConfigError('--name must not be empty', 'name');
  if (given.dataDir === undefined || given.dataDir === '') merged.dataDir = `${name}.etcd`;
  if (!options.fromCommandLine) {
    if (given.advertiseClientUrls === undefined && given.listenClientUrls !== undefined) {
      merged.advertiseClientUrls = given.listenClientUrls;
    }
    if (given.initialAdvertisePeerUrls === undefined && given.listenPeerUrls !== undefined) {
      merged.initialAdvertisePeerUrls = given.listenPeerUrls;
    }
  }
  if (given.initialCluster === undefined || given.initialCluster === '') {
    const peers = merged.initialAdvertisePeerUrls as readonly string[];
    merged.initialCluster = peers.map((u) => `${name}=${u}`).join(',');
  }
  for (const [key, value] of Object.entries(merged)) {
    if (Array.isArray(value)) merged[key] = Object.freeze([...value]);
  }
  const config = Object.freeze(merged) as unknown as ServerConfig;
  validate(config);
  return config;
}

function checkFieldType(spec: FlagSpec, value: unknown): void {
  const bad = (what: string): never => {
    throw new ConfigError(`invalid value ${safeJson(value)} for --${spec.name}: ${what}`, spec.name);
  };
  switch (spec.kind) {
    case FlagKind.String:
      if (typeof value !== 'string') bad('expected a string');
      return;
    case FlagKind.Enum:
      if (typeof value !== 'string' || !spec.values!.includes(value)) {
        bad(`valid values are ${spec.values!.map((v) => JSON.stringify(v)).join(', ')}`);
      }
      return;
    case FlagKind.Bool:
      if (typeof value !== 'boolean') bad('expected a boolean');
      return;
    case FlagKind.Uint:
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
        bad('expected a non-negative integer');
      if (spec.max !== undefined && (value as number) > spec.max) bad(`at most ${spec.max}`);
      return;
    case FlagKind.Int:
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) bad('expected an integer');
      return;
    case FlagKind.Duration:
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        bad('expected a non-negative number of milliseconds');
      }
      return;
    case FlagKind.Urls:
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) bad('expected a list of URLs');
      for (const url of value as string[]) {
        try {
          parseEtcdUrl(url);
        } catch (err) {
          bad((err as Error).message);
        }
      }
      return;
    case FlagKind.Strings:
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) bad('expected a list of strings');
      return;
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** etcd's embed.Config.Validate, plus the checks etcd makes later at startup that need no I/O. */
function validate(c: ServerConfig): void {
  const need = (cond: boolean, message: string, flag: string): void => {
    if (!cond) throw new ConfigError(message, flag);
  };
  need(c.listenClientUrls.length > 0, '--listen-client-urls must list at least one URL', 'listen-client-urls');
  need(c.listenPeerUrls.length > 0, '--listen-peer-urls must list at least one URL', 'listen-peer-urls');
  need(
    c.initialAdvertisePeerUrls.length > 0,
    '--initial-advertise-peer-urls must list at least one URL',
    'initial-advertise-peer-urls',
  );
  need(c.advertiseClientUrls.length > 0, '--advertise-client-urls must list at least one URL', 'advertise-client-urls');
  checkBindUrls(c.listenPeerUrls, 'listen-peer-urls');
  checkBindUrls(c.listenClientUrls, 'listen-client-urls');
  checkBindUrls(c.listenClientHttpUrls, 'listen-client-http-urls');
  checkBindUrls(c.listenMetricsUrls, 'listen-metrics-urls');
  checkHostUrls(c.initialAdvertisePeerUrls, 'initial-advertise-peer-urls');
  checkHostUrls(c.advertiseClientUrls, 'advertise-client-urls');

  need(
    c.heartbeatIntervalMs > 0,
    `--heartbeat-interval must be >0 (set to ${c.heartbeatIntervalMs}ms)`,
    'heartbeat-interval',
  );
  need(c.electionTimeoutMs > 0, `--election-timeout must be >0 (set to ${c.electionTimeoutMs}ms)`, 'election-timeout');
  need(
    5 * c.heartbeatIntervalMs <= c.electionTimeoutMs,
    `--election-timeout[${c.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${c.heartbeatIntervalMs}ms]`,
    'election-timeout',
  );
  need(
    c.electionTimeoutMs <= ELECTION_TIMEOUT_MAX_MS,
    `--election-timeout[${c.electionTimeoutMs}ms] is too long, and should be set less than ${ELECTION_TIMEOUT_MAX_MS}ms`,
    'election-timeout',
  );
  need(c.maxRequestBytes > 0, '--max-request-bytes must be >0', 'max-request-bytes');
  need(c.maxTxnOps > 0, '--max-txn-ops must be >0', 'max-txn-ops');
  need(c.maxConcurrentStreams > 0, '--max-concurrent-streams must be >0', 'max-concurrent-streams');
  need(
    c.bcryptCost >= BCRYPT_COST_MIN && c.bcryptCost <= BCRYPT_COST_MAX,
    `invalid bcrypt-cost (${c.bcryptCost}): valid values are between ${BCRYPT_COST_MIN} and ${BCRYPT_COST_MAX}`,
    'bcrypt-cost',
  );
  need(c.authTokenTtlSec > 0, '--auth-token-ttl must be >0', 'auth-token-ttl');
  const tokenType = c.authToken.split(',')[0]!.trim();
  need(
    tokenType === 'simple' || tokenType === 'jwt',
    `invalid value ${JSON.stringify(c.authToken)} for flag --auth-token: unknown token type ${JSON.stringify(tokenType)} (simple or jwt)`,
    'auth-token',
  );
  need(
    c.tlsMaxVersion === '' || c.tlsMaxVersion >= c.tlsMinVersion,
    `--tls-max-version[${c.tlsMaxVersion}] must be at least --tls-min-version[${c.tlsMinVersion}]`,
    'tls-max-version',
  );
  need(
    c.experimentalCompactionBatchLimit > 0,
    '--experimental-compaction-batch-limit must be >0',
    'experimental-compaction-batch-limit',
  );
  autoCompactionOf(c);
  parseInitialCluster(c.initialCluster);

  const clientTls = (c.certFile !== '' && c.keyFile !== '') || c.autoTls;
  for (const [list, flagName] of [
    [c.listenClientUrls, 'listen-client-urls'],
    [c.listenClientHttpUrls, 'listen-client-http-urls'],
    [c.listenMetricsUrls, 'listen-metrics-urls'],
  ] as const) {
    for (const url of list) {
      const scheme = parseEtcdUrl(url).scheme;
      need(
        clientTls || (scheme !== 'https' && scheme !== 'unixs'),
        `TLS key/cert (--cert-file, --key-file) must be provided for ${url} in --${flagName} with HTTPS scheme`,
        flagName,
      );
    }
  }
  const peerTls = (c.peerCertFile !== '' && c.peerKeyFile !== '') || c.peerAutoTls;
  for (const url of c.listenPeerUrls) {
    const scheme = parseEtcdUrl(url).scheme;
    need(
      peerTls || (scheme !== 'https' && scheme !== 'unixs'),
      `TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for ${url} in --listen-peer-urls with HTTPS scheme`,
      'listen-peer-urls',
    );
  }
  need(
    (c.certFile === '') === (c.keyFile === ''),
    '--cert-file and --key-file must be given together',
    c.certFile === '' ? 'cert-file' : 'key-file',
  );
  need(
    (c.peerCertFile === '') === (c.peerKeyFile === ''),
    '--peer-cert-file and --peer-key-file must be given together',
    c.peerCertFile === '' ? 'peer-cert-file' : 'peer-key-file',
  );
  for (const out of c.logOutputs) need(out !== '', '--log-outputs has an empty entry', 'log-outputs');
  for (const suite of c.cipherSuites) {
    try {
      opensslCipherSuite(suite);
    } catch (err) {
      throw new ConfigError(`invalid value for flag --cipher-suites: ${(err as Error).message}`, 'cipher-suites');
    }
  }
}

/** etcd's checkBindURLs: a listen URL names an IP address or `localhost`, not a host name. */
function checkBindUrls(urls: readonly string[], flagName: string): void {
  for (const url of urls) {
    const u = parseEtcdUrl(url);
    if (u.scheme === 'unix' || u.scheme === 'unixs') continue;
    if (u.host === 'localhost' || isIp(u.host)) continue;
    throw new ConfigError(`expected IP in URL for binding (${url}) in --${flagName}`, flagName);
  }
}

function checkHostUrls(urls: readonly string[], flagName: string): void {
  for (const url of urls) {
    const u = parseEtcdUrl(url);
    if (u.scheme !== 'unix' && u.scheme !== 'unixs' && u.host === '') {
      throw new ConfigError(`expected advertise URL to have host (${url}) in --${flagName}`, flagName);
    }
  }
}

function isIp(host: string): boolean {
  if (
    /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/.test(host)
  ) {
    return true;
  }
  return host.includes(':') && /^[0-9A-Fa-f:.]+(%.+)?$/.test(host);
}

// ---- the command line ----

export type CommandLine =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string }
  | {
      readonly kind: 'config';
      readonly config: ServerConfig;
      /** Things to tell the operator once logging is up (ignored flags, unknown variables...). */
      readonly warnings: readonly string[];
      /** The config file the settings came from, if any. */
      readonly configFile: string | null;
    };

export interface CommandLineIo {
  readFile(path: string): string;
}

/** `--version`: etcd's lines, with Node.js in place of Go. */
export function versionText(): string {
  return [
    `etcd-ts Version: ${VERSION.etcdTs}`,
    `etcd Version: ${VERSION.server}`,
    `Git SHA: ${process.env.ETCD_TS_GIT_SHA ?? 'Not provided'}`,
    `Node Version: ${process.version}`,
    `Node OS/Arch: ${platform()}/${arch()}`,
    '',
  ].join('\n');
}

interface ParsedArgs {
  /** Flags in the order given; a repeated flag keeps its last value. */
  readonly values: Map<string, string>;
  readonly help: boolean;
  readonly version: boolean;
  readonly configFile: string | null;
}

/** Go's flag package rules: `-f` or `--f`, `--f=v` or `--f v`, booleans only as `--f` or `--f=v`. */
function parseArgs(argv: readonly string[]): ParsedArgs {
  const values = new Map<string, string>();
  let help = false;
  let version = false;
  let configFile: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      if (i + 1 < argv.length) throw new ConfigError(`${JSON.stringify(argv[i + 1])} is not a valid flag`, null);
      break;
    }
    if (!arg.startsWith('-') || arg === '-') throw new ConfigError(`${JSON.stringify(arg)} is not a valid flag`, null);
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body === '' || body.startsWith('-') || body.startsWith('=')) {
      throw new ConfigError(`bad flag syntax: ${arg}`, null);
    }
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    let value: string | null = eq < 0 ? null : body.slice(eq + 1);
    if (name === 'help' || name === 'h') {
      help = true;
      continue;
    }
    const isBool = name === 'version' || flagByName(name)?.kind === FlagKind.Bool;
    if (name !== 'version' && name !== 'config-file' && flagByName(name) === undefined) {
      throw new ConfigError(`flag provided but not defined: --${name}`, name);
    }
    if (value === null) {
      if (isBool) {
        value = 'true';
      } else {
        if (i + 1 >= argv.length) throw new ConfigError(`flag needs an argument: --${name}`, name);
        value = argv[++i]!;
      }
    }
    if (name === 'version') {
      try {
        version = parseGoBool(value);
      } catch {
        throw new ConfigError(`invalid boolean value ${JSON.stringify(value)} for --version: parse error`, 'version');
      }
    } else if (name === 'config-file') {
      configFile = value;
    } else {
      values.delete(name);
      values.set(name, value);
    }
  }
  return { values, help, version, configFile };
}

type Draft = Partial<Record<keyof ServerConfig, unknown>>;

function convertText(spec: FlagSpec, text: string): unknown {
  switch (spec.kind) {
    case FlagKind.String:
      return text;
    case FlagKind.Bool:
      return parseGoBool(text);
    case FlagKind.Uint:
      return parseGoUint(text, spec.max);
    case FlagKind.Int:
      return parseGoInt(text);
    case FlagKind.Duration: {
      const ms = parseGoDuration(text);
      if (ms < 0) throw new ValueError('negative duration');
      return ms;
    }
    case FlagKind.Urls:
      return parseUrlList(text);
    case FlagKind.Strings:
      return parseStringList(text);
    case FlagKind.Enum:
      if (!spec.values!.includes(text)) {
        throw new ValueError(`valid values are ${spec.values!.map((v) => JSON.stringify(v)).join(', ')}`);
      }
      return text;
  }
}

function setFromText(draft: Draft, spec: FlagSpec, text: string, source: string): void {
  let value: unknown;
  try {
    value = convertText(spec, text);
  } catch (err) {
    if (!(err instanceof ValueError)) throw err;
    const boolWord = spec.kind === FlagKind.Bool ? 'boolean ' : '';
    throw new ConfigError(`invalid ${boolWord}value ${JSON.stringify(text)} for ${source}: ${err.message}`, spec.name, {
      cause: err,
    });
  }
  if (spec.field !== null) draft[spec.field] = value;
}

const ENV_TO_FLAG: ReadonlyMap<string, string> = new Map([
  ...FLAGS.map((f) => [flagToEnv(f.name), f.name] as const),
  [flagToEnv('config-file'), 'config-file'],
]);

/**
 * The configuration of `etcd-ts <argv>` in environment `env`, with etcd's precedence:
 *
 * 1. `--help` and `--version` answer at once (after the flags parse).
 * 2. A config file (`--config-file`, else `ETCD_CONFIG_FILE`) is the whole configuration:
 *    other flags and `ETCD_*` variables are ignored, with a warning naming them.
 * 3. Otherwise each flag comes from the command line, else from `ETCD_<FLAG>` (a non-empty
 *    value), else its default. A variable for a flag also given on the command line is an
 *    error, as in etcd ("conflicting environment variable ... is shadowed by corresponding
 *    command-line flag"); an unknown `ETCD_*` variable is a warning.
 *
 * Throws ConfigError for anything invalid; the message names the flag.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CommandLineIo,
): CommandLine {
  const args = parseArgs(argv);
  if (args.help) return { kind: 'help', text: helpText() };
  if (args.version) return { kind: 'version', text: versionText() };

  // Values are checked even when a config file makes them moot, as Go's flag parsing does.
  const draft: Draft = {};
  const explicit = new Set<string>();
  for (const [name, text] of args.values) {
    const spec = flagByName(name)!;
    setFromText(draft, spec, text, `flag --${name}`);
    explicit.add(name);
  }

  const warnings: string[] = [];
  const envFile = env[flagToEnv('config-file')];
  const configFile = args.configFile ?? (envFile !== undefined && envFile !== '' ? envFile : null);
  if (configFile !== null && configFile !== '') {
    const ignored = [
      ...[...args.values.keys()].map((n) => `--${n}`),
      ...Object.keys(env).filter((k) => ENV_TO_FLAG.has(k) && k !== flagToEnv('config-file') && env[k] !== ''),
    ];
    if (ignored.length > 0) {
      warnings.push(
        `loaded server configuration from ${configFile}; other configuration command line flags and environment variables are ignored: ${ignored.join(', ')}`,
      );
    }
    const fromFile = readConfigFile(configFile, io, warnings);
    return {
      kind: 'config',
      config: resolveConfig(fromFile as Partial<ServerConfig>, { fromCommandLine: true }),
      warnings,
      configFile,
    };
  }

  for (const key of Object.keys(env).sort()) {
    if (!key.startsWith('ETCD_')) continue;
    const value = env[key] ?? '';
    if (key === 'ETCD_VERSION') {
      warnings.push(`cannot set special environment variable ETCD_VERSION=${value}; it is ignored`);
      continue;
    }
    const name = ENV_TO_FLAG.get(key);
    if (name === undefined) {
      warnings.push(`unrecognized environment variable ${key}=${value}`);
      continue;
    }
    if (name === 'config-file') continue;
    if (args.values.has(name)) {
      throw new ConfigError(
        `conflicting environment variable ${JSON.stringify(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
        name,
      );
    }
    if (value === '') continue;
    setFromText(draft, flagByName(name)!, value, key);
    explicit.add(name);
  }
  if (explicit.has('listen-client-urls') && !explicit.has('advertise-client-urls')) {
    throw new ConfigError(
      '--advertise-client-urls is required when --listen-client-urls is set explicitly',
      'advertise-client-urls',
    );
  }
  for (const name of explicit) {
    if (flagByName(name)?.field === null)
      warnings.push(`--${name} is accepted for compatibility but has no effect in etcd-ts`);
  }
  return {
    kind: 'config',
    config: resolveConfig(draft as Partial<ServerConfig>, { fromCommandLine: true }),
    warnings,
    configFile: null,
  };
}

/** The two nested sections of etcd's YAML file and the flags their keys stand for. */
const TLS_SECTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'client-transport-security': {
    'cert-file': 'cert-file',
    'key-file': 'key-file',
    'client-cert-auth': 'client-cert-auth',
    'trusted-ca-file': 'trusted-ca-file',
    'auto-tls': 'auto-tls',
    'crl-file': 'client-crl-file',
    'allowed-hostname': 'client-cert-allowed-hostname',
  },
  'peer-transport-security': {
    'cert-file': 'peer-cert-file',
    'key-file': 'peer-key-file',
    'client-cert-auth': 'peer-client-cert-auth',
    'trusted-ca-file': 'peer-trusted-ca-file',
    'auto-tls': 'peer-auto-tls',
    'crl-file': 'peer-crl-file',
    'allowed-cn': 'peer-cert-allowed-cn',
    'allowed-hostname': 'peer-cert-allowed-hostname',
  },
};

/** Keys of etcd's config file that etcd-ts reads but that are not flags of the table. */
const IGNORED_FILE_KEYS = new Set(['config-file', 'proxy', 'debug', 'log-package-levels', 'v2-deprecation']);

/**
 * Reads etcd's YAML config file: keys are the flag names; TLS settings may also sit in the
 * `client-transport-security` / `peer-transport-security` sections as etcd writes them.
 * Durations may be Go strings (`5s`) or integers of nanoseconds (how etcd's file encodes a
 * time.Duration); URL lists are comma-separated strings or YAML lists.
 */
function readConfigFile(path: string, io: CommandLineIo, warnings: string[]): Draft {
  let text: string;
  try {
    text = io.readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`, 'config-file', { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`, 'config-file', {
      cause: err,
    });
  }
  const draft: Draft = {};
  if (doc === null || doc === undefined) return draft;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`config file ${path} must be a YAML mapping of flag names to values`, 'config-file');
  }
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const section = TLS_SECTIONS[key];
    if (section !== undefined) {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(`config file ${path}: ${JSON.stringify(key)} must be a mapping`, key);
      }
      for (const [subKey, subValue] of Object.entries(value as Record<string, unknown>)) {
        const flagName = section[subKey];
        if (flagName === undefined) {
          warnings.push(`unrecognized key ${JSON.stringify(`${key}.${subKey}`)} in config file ${path}`);
          continue;
        }
        setFromYaml(draft, flagByName(flagName)!, subValue, path, `${key}.${subKey}`, warnings);
      }
      continue;
    }
    const spec = flagByName(key);
    if (spec === undefined) {
      if (!IGNORED_FILE_KEYS.has(key)) warnings.push(`unrecognized key ${JSON.stringify(key)} in config file ${path}`);
      continue;
    }
    setFromYaml(draft, spec, value, path, key, warnings);
  }
  return draft;
}

function setFromYaml(
  draft: Draft,
  spec: FlagSpec,
  value: unknown,
  path: string,
  key: string,
  warnings: string[],
): void {
  if (value === null || value === undefined) return;
  const fail = (reason: string): never => {
    throw new ConfigError(
      `config file ${path}: invalid value ${safeJson(value)} for ${JSON.stringify(key)}: ${reason}`,
      spec.name,
    );
  };
  let converted: unknown;
  try {
    if (spec.kind === FlagKind.Duration && typeof value === 'number') {
      if (!Number.isInteger(value) || value < 0) fail('expected a duration (e.g. 5s) or non-negative nanoseconds');
      converted = value / 1e6;
    } else if ((spec.kind === FlagKind.Urls || spec.kind === FlagKind.Strings) && Array.isArray(value)) {
      if (!value.every((v) => typeof v === 'string')) fail('expected a list of strings');
      converted = convertText(spec, (value as string[]).join(','));
    } else if (spec.kind === FlagKind.Bool && typeof value === 'boolean') {
      converted = value;
    } else if ((spec.kind === FlagKind.Uint || spec.kind === FlagKind.Int) && typeof value === 'number') {
      converted = convertText(spec, String(value));
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      converted = convertText(spec, String(value));
    } else {
      fail('unexpected type');
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (err instanceof ValueError) fail(err.message);
    throw err;
  }
  if (spec.field !== null) draft[spec.field] = converted;
  else
    warnings.push(
      `${JSON.stringify(key)} in config file ${path} is accepted for compatibility but has no effect in etcd-ts`,
    );
}
