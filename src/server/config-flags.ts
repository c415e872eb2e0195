import type { ServerConfig } from './config.ts';

/**
 * etcd's server flags: name, value syntax, default as `etcd --help` shows it, description and
 * the ServerConfig field each one sets. Flags etcd has but etcd-ts does not act on are still
 * accepted (field null), so that existing command lines and config files keep working; setting
 * one logs a warning.
 */

export const FlagKind = {
  String: 'string',
  Bool: 'bool',
  Uint: 'uint',
  Int: 'int',
  /** A Go duration (`5s`, `2h`) stored as milliseconds. */
  Duration: 'duration',
  /** A comma-separated list of URLs. */
  Urls: 'urls',
  /** A comma-separated list of words. */
  Strings: 'strings',
  /** One of `values`. */
  Enum: 'enum',
} as const;
export type FlagKind = (typeof FlagKind)[keyof typeof FlagKind];

export const FlagGroup = {
  Member: 'Member',
  Clustering: 'Clustering',
  Security: 'Security',
  Auth: 'Auth',
  Monitoring: 'Profiling and Monitoring',
  Logging: 'Logging',
  Experimental: 'Experimental feature',
  Unsafe: 'Unsafe feature',
} as const;
export type FlagGroup = (typeof FlagGroup)[keyof typeof FlagGroup];

export interface FlagSpec {
  readonly name: string;
  /** The field it sets; null for a flag accepted for compatibility that has no effect. */
  readonly field: keyof ServerConfig | null;
  readonly kind: FlagKind;
  /** The default as `--help` shows it. */
  readonly defaultText: string;
  readonly help: string;
  readonly group: FlagGroup;
  /** Allowed values of an Enum flag. */
  readonly values?: readonly string[];
  /** Upper bound of a Uint flag. */
  readonly max?: number;
}

const UINT32_MAX = 0xffff_ffff;

function flag(
  group: FlagGroup,
  name: string,
  field: keyof ServerConfig | null,
  kind: FlagKind,
  defaultText: string,
  help: string,
  extra?: { values?: readonly string[]; max?: number },
): FlagSpec {
  return Object.freeze({ name, field, kind, defaultText, help, group, ...extra });
}

const { Member, Clustering, Security, Auth, Monitoring, Logging, Experimental, Unsafe } = FlagGroup;
const K = FlagKind;

export const FLAGS: readonly FlagSpec[] = Object.freeze([
  flag(Member, 'name', 'name', K.String, 'default', 'Human-readable name for this member.'),
  // biome-ignore lint/suspicious/noTemplateCurlyInString: etcd's help text shows the placeholder literally.
  flag(Member, 'data-dir', 'dataDir', K.String, '${name}.etcd', 'Path to the data directory.'),
  flag(Member, 'wal-dir', 'walDir', K.String, '', 'Path to the dedicated wal directory.'),
  flag(
    Member,
    'snapshot-count',
    'snapshotCount',
    K.Uint,
    '100000',
    'Number of committed transactions to trigger a snapshot to disk.',
  ),
  flag(
    Member,
    'snapshot-catchup-entries',
    'snapshotCatchupEntries',
    K.Uint,
    '5000',
    'Number of entries for a slow follower to catch-up after compacting the raft storage entries.',
  ),
  flag(
    Member,
    'experimental-snapshot-catchup-entries',
    'snapshotCatchupEntries',
    K.Uint,
    '5000',
    'Same as --snapshot-catchup-entries (the name etcd 3.5 uses).',
  ),
  flag(
    Member,
    'heartbeat-interval',
    'heartbeatIntervalMs',
    K.Uint,
    '100',
    'Time (in milliseconds) of a heartbeat interval.',
  ),
  flag(
    Member,
    'election-timeout',
    'electionTimeoutMs',
    K.Uint,
    '1000',
    'Time (in milliseconds) for an election to timeout. See tuning documentation for details.',
  ),
  flag(
    Member,
    'initial-election-tick-advance',
    'initialElectionTickAdvance',
    K.Bool,
    'true',
    'Whether to fast-forward initial election ticks on boot for faster election.',
  ),
  flag(
    Member,
    'listen-peer-urls',
    'listenPeerUrls',
    K.Urls,
    'http://localhost:2380',
    'List of URLs to listen on for peer traffic.',
  ),
  flag(
    Member,
    'listen-client-urls',
    'listenClientUrls',
    K.Urls,
    'http://localhost:2379',
    'List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified.',
  ),
  flag(
    Member,
    'listen-client-http-urls',
    'listenClientHttpUrls',
    K.Urls,
    '',
    'List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.',
  ),
  flag(
    Member,
    'max-snapshots',
    'maxSnapshots',
    K.Uint,
    '5',
    'Maximum number of snapshot files to retain (0 is unlimited).',
  ),
  flag(Member, 'max-wals', 'maxWals', K.Uint, '5', 'Maximum number of wal files to retain (0 is unlimited).'),
  flag(
    Member,
    'quota-backend-bytes',
    'quotaBackendBytes',
    K.Int,
    '0',
    'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).',
  ),
  flag(
    Member,
    'backend-batch-interval',
    'backendBatchIntervalMs',
    K.Duration,
    '',
    'BackendBatchInterval is the maximum time before commit the backend transaction.',
  ),
  flag(
    Member,
    'backend-batch-limit',
    'backendBatchLimit',
    K.Uint,
    '0',
    'BackendBatchLimit is the maximum operations before commit the backend transaction.',
  ),
  flag(Member, 'max-txn-ops', 'maxTxnOps', K.Uint, '128', 'Maximum number of operations permitted in a transaction.'),
  flag(
    Member,
    'max-request-bytes',
    'maxRequestBytes',
    K.Uint,
    '1572864',
    'Maximum client request size in bytes the server will accept.',
  ),
  flag(
    Member,
    'range-cache-bytes',
    'rangeCacheBytes',
    K.Uint,
    '67108864',
    'Bytes of encoded key-values kept in memory for ranges read again, 0 to disable (etcd-ts only).',
  ),
  flag(
    Member,
    'max-concurrent-streams',
    'maxConcurrentStreams',
    K.Uint,
    'math.MaxUint32',
    'Maximum concurrent streams that each client can open at a time.',
    { max: UINT32_MAX },
  ),
  flag(
    Member,
    'grpc-keepalive-min-time',
    'grpcKeepaliveMinTimeMs',
    K.Duration,
    '5s',
    'Minimum duration interval that a client should wait before pinging server.',
  ),
  flag(
    Member,
    'grpc-keepalive-interval',
    'grpcKeepaliveIntervalMs',
    K.Duration,
    '2h',
    'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).',
  ),
  flag(
    Member,
    'grpc-keepalive-timeout',
    'grpcKeepaliveTimeoutMs',
    K.Duration,
    '20s',
    'Additional duration of wait before closing a non-responsive connection (0 to disable).',
  ),
  flag(
    Member,
    'socket-reuse-port',
    'socketReusePort',
    K.Bool,
    'false',
    'Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port already in use.',
  ),
  flag(
    Member,
    'socket-reuse-address',
    'socketReuseAddress',
    K.Bool,
    'false',
    'Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in TIME_WAIT state.',
  ),

  flag(
    Clustering,
    'initial-advertise-peer-urls',
    'initialAdvertisePeerUrls',
    K.Urls,
    'http://localhost:2380',
    "List of this member's peer URLs to advertise to the rest of the cluster.",
  ),
  flag(
    Clustering,
    'initial-cluster',
    'initialCluster',
    K.String,
    'default=http://localhost:2380',
    'Initial cluster configuration for bootstrapping.',
  ),
  flag(
    Clustering,
    'initial-cluster-state',
    'initialClusterState',
    K.Enum,
    'new',
    "Initial cluster state ('new' or 'existing').",
    { values: ['new', 'existing'] },
  ),
  flag(
    Clustering,
    'initial-cluster-token',
    'initialClusterToken',
    K.String,
    'etcd-cluster',
    'Initial cluster token for the etcd cluster during bootstrap.',
  ),
  flag(
    Clustering,
    'advertise-client-urls',
    'advertiseClientUrls',
    K.Urls,
    'http://localhost:2379',
    "List of this member's client URLs to advertise to the public.",
  ),
  flag(Clustering, 'discovery', null, K.String, '', 'Discovery URL used to bootstrap the cluster.'),
  flag(
    Clustering,
    'discovery-fallback',
    null,
    K.Enum,
    'proxy',
    "Expected behavior ('exit' or 'proxy') when discovery services fails.",
    { values: ['exit', 'proxy'] },
  ),
  flag(Clustering, 'discovery-proxy', null, K.String, '', 'HTTP proxy to use for traffic to discovery service.'),
  flag(Clustering, 'discovery-srv', null, K.String, '', 'DNS srv domain used to bootstrap the cluster.'),
  flag(Clustering, 'discovery-srv-name', null, K.String, '', 'Suffix to the dns srv name queried when bootstrapping.'),
  flag(
    Clustering,
    'strict-reconfig-check',
    'strictReconfigCheck',
    K.Bool,
    'true',
    'Reject reconfiguration requests that would cause quorum loss.',
  ),
  flag(
    Clustering,
    'pre-vote',
    'preVote',
    K.Bool,
    'true',
    'Enable the raft Pre-Vote algorithm to prevent disruption when a node that has been partitioned away rejoins the cluster.',
  ),
  flag(
    Clustering,
    'auto-compaction-retention',
    'autoCompactionRetention',
    K.String,
    '0',
    'Auto compaction retention length. 0 means disable auto compaction.',
  ),
  flag(
    Clustering,
    'auto-compaction-mode',
    'autoCompactionMode',
    K.Enum,
    'periodic',
    "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.",
    { values: ['periodic', 'revision'] },
  ),
  flag(Clustering, 'enable-v2', null, K.Bool, 'false', 'Accept etcd V2 client requests (not served by etcd-ts).'),

  flag(Security, 'cert-file', 'certFile', K.String, '', 'Path to the client server TLS cert file.'),
  flag(Security, 'key-file', 'keyFile', K.String, '', 'Path to the client server TLS key file.'),
  flag(Security, 'client-cert-auth', 'clientCertAuth', K.Bool, 'false', 'Enable client cert authentication.'),
  flag(
    Security,
    'client-crl-file',
    'clientCrlFile',
    K.String,
    '',
    'Path to the client certificate revocation list file.',
  ),
  flag(
    Security,
    'client-cert-allowed-hostname',
    'clientCertAllowedHostname',
    K.String,
    '',
    'Allowed TLS hostname for client cert authentication.',
  ),
  flag(
    Security,
    'trusted-ca-file',
    'trustedCaFile',
    K.String,
    '',
    'Path to the client server TLS trusted CA cert file.',
  ),
  flag(Security, 'auto-tls', 'autoTls', K.Bool, 'false', 'Client TLS using generated certificates.'),
  flag(Security, 'peer-cert-file', 'peerCertFile', K.String, '', 'Path to the peer server TLS cert file.'),
  flag(Security, 'peer-key-file', 'peerKeyFile', K.String, '', 'Path to the peer server TLS key file.'),
  flag(
    Security,
    'peer-client-cert-auth',
    'peerClientCertAuth',
    K.Bool,
    'false',
    'Enable peer client cert authentication.',
  ),
  flag(
    Security,
    'peer-trusted-ca-file',
    'peerTrustedCaFile',
    K.String,
    '',
    'Path to the peer server TLS trusted CA file.',
  ),
  flag(
    Security,
    'peer-cert-allowed-cn',
    'peerCertAllowedCn',
    K.String,
    '',
    'Required CN for client certs connecting to the peer endpoint.',
  ),
  flag(
    Security,
    'peer-cert-allowed-hostname',
    'peerCertAllowedHostname',
    K.String,
    '',
    'Allowed TLS hostname for inter peer authentication.',
  ),
  flag(
    Security,
    'peer-auto-tls',
    'peerAutoTls',
    K.Bool,
    'false',
    'Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.',
  ),
  flag(Security, 'peer-crl-file', 'peerCrlFile', K.String, '', 'Path to the peer certificate revocation list file.'),
  flag(
    Security,
    'self-signed-cert-validity',
    'selfSignedCertValidity',
    K.Uint,
    '1',
    'The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1.',
  ),
  flag(
    Security,
    'cipher-suites',
    'cipherSuites',
    K.Strings,
    '',
    'Comma-separated list of supported TLS cipher suites between client/server and peers, by their Go names (empty will be auto-populated by Node.js).',
  ),
  flag(
    Security,
    'tls-min-version',
    'tlsMinVersion',
    K.Enum,
    'TLS1.2',
    'Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.',
    { values: ['TLS1.2', 'TLS1.3'] },
  ),
  flag(
    Security,
    'tls-max-version',
    'tlsMaxVersion',
    K.Enum,
    '',
    'Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty defers to Node.js).',
    { values: ['', 'TLS1.2', 'TLS1.3'] },
  ),
  flag(
    Security,
    'cors',
    null,
    K.String,
    '*',
    'Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).',
  ),
  flag(
    Security,
    'host-whitelist',
    null,
    K.String,
    '*',
    'Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).',
  ),

  flag(
    Auth,
    'auth-token',
    'authToken',
    K.String,
    'simple',
    "Specify a v3 authentication token type and its options ('simple' or 'jwt').",
  ),
  flag(
    Auth,
    'bcrypt-cost',
    'bcryptCost',
    K.Uint,
    '10',
    'Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.',
  ),
  flag(Auth, 'auth-token-ttl', 'authTokenTtlSec', K.Uint, '300', 'Time (in seconds) of the auth-token-ttl.'),

  flag(
    Monitoring,
    'enable-pprof',
    'enablePprof',
    K.Bool,
    'false',
    'Enable runtime profiling data via HTTP server (accepted; etcd-ts serves no Go pprof data).',
  ),
  flag(
    Monitoring,
    'metrics',
    'metrics',
    K.Enum,
    'basic',
    "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics.",
    { values: ['basic', 'extensive'] },
  ),
  flag(
    Monitoring,
    'listen-metrics-urls',
    'listenMetricsUrls',
    K.Urls,
    '',
    'List of URLs to listen on for the metrics and health endpoints.',
  ),

  flag(Logging, 'logger', 'logger', K.Enum, 'zap', "Currently only supports 'zap' for structured logging.", {
    values: ['zap'],
  }),
  flag(
    Logging,
    'log-outputs',
    'logOutputs',
    K.Strings,
    'default',
    "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.",
  ),
  flag(
    Logging,
    'log-level',
    'logLevel',
    K.Enum,
    'info',
    'Configures log level. Only supports debug, info, warn, error, panic, or fatal.',
    { values: ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] },
  ),

  flag(
    Experimental,
    'experimental-initial-corrupt-check',
    'experimentalInitialCorruptCheck',
    K.Bool,
    'false',
    'Enable to check data corruption before serving any client/peer traffic.',
  ),
  flag(
    Experimental,
    'experimental-corrupt-check-time',
    'experimentalCorruptCheckTimeMs',
    K.Duration,
    '0s',
    'Duration of time between cluster corruption check passes.',
  ),
  flag(
    Experimental,
    'experimental-enable-lease-checkpoint',
    'experimentalEnableLeaseCheckpoint',
    K.Bool,
    'false',
    'Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change.',
  ),
  flag(
    Experimental,
    'experimental-compaction-batch-limit',
    'experimentalCompactionBatchLimit',
    K.Int,
    '1000',
    'Sets the maximum revisions deleted in each compaction batch.',
  ),
  flag(
    Experimental,
    'experimental-watch-progress-notify-interval',
    'experimentalWatchProgressNotifyIntervalMs',
    K.Duration,
    '10m',
    'Duration of periodic watch progress notifications.',
  ),
  flag(
    Experimental,
    'experimental-warning-apply-duration',
    'experimentalWarningApplyDurationMs',
    K.Duration,
    '100ms',
    'Time duration after which a warning is generated if request takes more time.',
  ),

  flag(Unsafe, 'force-new-cluster', 'forceNewCluster', K.Bool, 'false', 'Force to create a new one-member cluster.'),
  flag(Unsafe, 'unsafe-no-fsync', 'unsafeNoFsync', K.Bool, 'false', 'Disables fsync, unsafe, will cause data loss.'),
]);

const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

export function flagByName(name: string): FlagSpec | undefined {
  return BY_NAME.get(name);
}

/** `heartbeat-interval` -> `ETCD_HEARTBEAT_INTERVAL` (etcd's flags.FlagToEnv). */
export function flagToEnv(name: string): string {
  return `ETCD_${name.toUpperCase().replaceAll('-', '_')}`;
}

const USAGE = `Usage:

  etcd-ts [flags]
    Start an etcd-compatible server.

  etcd-ts --version
    Show the version of etcd-ts.

  etcd-ts -h | --help
    Show the help information about etcd-ts.

  etcd-ts --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
`;

/** The text of `--help`: etcd's layout, generated from the table. */
export function helpText(): string {
  const lines: string[] = [USAGE];
  for (const group of Object.values(FlagGroup)) {
    lines.push('', `${group}:`);
    for (const f of FLAGS) {
      if (f.group !== group) continue;
      lines.push(`  --${f.name} '${f.defaultText}'`, `    ${f.help}`);
    }
    if (group === FlagGroup.Unsafe) {
      lines.push('', 'CAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!');
    }
  }
  lines.push(
    '',
    'Every flag can also be given as an ETCD_<FLAG_IN_UPPER_SNAKE> environment variable',
    '(e.g. ETCD_LISTEN_CLIENT_URLS) or as a key of the YAML --config-file.',
    '',
  );
  return lines.join('\n');
}
