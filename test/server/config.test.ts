import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  autoCompactionOf,
  type CommandLine,
  ConfigError,
  DEFAULT_QUOTA_BACKEND_BYTES,
  maxReceiveMessageBytes,
  parseCommandLine,
  quotaBackendBytesOf,
  resolveConfig,
  type ServerConfig,
  verifyInitialCluster,
} from '../../src/server/config.ts';
import { FLAGS, flagToEnv } from '../../src/server/config-flags.ts';
import {
  parseEtcdUrl,
  parseGoBool,
  parseGoDuration,
  parseGoUint,
  parseUrlList,
} from '../../src/server/config-values.ts';

const NO_FILES = { readFile: (path: string): string => assert.fail(`unexpected read of ${path}`) };

function files(map: Record<string, string>): { readFile(path: string): string } {
  return {
    readFile(path) {
      const text = map[path];
      if (text === undefined) throw new Error(`ENOENT: no such file ${path}`);
      return text;
    },
  };
}

function configOf(result: CommandLine): ServerConfig {
  assert.equal(result.kind, 'config');
  return (result as Extract<CommandLine, { kind: 'config' }>).config;
}

function warningsOf(result: CommandLine): readonly string[] {
  return (result as Extract<CommandLine, { kind: 'config' }>).warnings;
}

/** Runs `fn` and returns the ConfigError it throws. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err;
  }
  return assert.fail('expected a ConfigError');
}

describe('defaults', () => {
  test("etcd 3.5's defaults, derived from the name where etcd derives them", () => {
    const c = configOf(parseCommandLine([], {}, NO_FILES));
    assert.equal(c.name, 'default');
    assert.equal(c.dataDir, 'default.etcd');
    assert.deepEqual(c.listenClientUrls, ['http://localhost:2379']);
    assert.deepEqual(c.advertiseClientUrls, ['http://localhost:2379']);
    assert.deepEqual(c.listenPeerUrls, ['http://localhost:2380']);
    assert.equal(c.initialCluster, 'default=http://localhost:2380');
    assert.equal(c.initialClusterState, 'new');
    assert.equal(c.initialClusterToken, 'etcd-cluster');
    assert.equal(c.heartbeatIntervalMs, 100);
    assert.equal(c.electionTimeoutMs, 1000);
    assert.equal(c.snapshotCount, 100_000);
    assert.equal(c.snapshotCatchupEntries, 5000);
    assert.equal(c.maxRequestBytes, 1_572_864);
    assert.equal(c.maxTxnOps, 128);
    assert.equal(c.rangeCacheBytes, 64 * 1024 * 1024);
    assert.equal(c.quotaBackendBytes, 0);
    assert.equal(quotaBackendBytesOf(c), DEFAULT_QUOTA_BACKEND_BYTES);
    assert.equal(maxReceiveMessageBytes(c), 1_572_864 + 512 * 1024);
    assert.equal(c.grpcKeepaliveMinTimeMs, 5000);
    assert.equal(c.grpcKeepaliveIntervalMs, 7_200_000);
    assert.equal(c.grpcKeepaliveTimeoutMs, 20_000);
    assert.equal(c.autoCompactionMode, 'periodic');
    assert.deepEqual(autoCompactionOf(c), { mode: 'off' });
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logger, 'zap');
    assert.equal(c.authToken, 'simple');
    assert.equal(c.authTokenTtlSec, 300);
    assert.equal(c.bcryptCost, 10);
    assert.equal(c.strictReconfigCheck, true);
    assert.equal(c.preVote, true);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.listenClientUrls));

    const named = configOf(parseCommandLine(['--name', 'infra1'], {}, NO_FILES));
    assert.equal(named.dataDir, 'infra1.etcd');
    assert.equal(named.initialCluster, 'infra1=http://localhost:2380');
  });

  test('every flag maps to its ETCD_ variable, and each field-bearing flag has a default', () => {
    assert.equal(flagToEnv('listen-client-urls'), 'ETCD_LISTEN_CLIENT_URLS');
    const c = resolveConfig();
    for (const f of FLAGS) {
      if (f.field !== null) assert.notEqual(c[f.field], undefined, f.name);
    }
  });
});

describe('precedence', () => {
  test('a flag alone, an environment variable alone', () => {
    assert.equal(configOf(parseCommandLine(['--snapshot-count=7'], {}, NO_FILES)).snapshotCount, 7);
    assert.equal(configOf(parseCommandLine([], { ETCD_SNAPSHOT_COUNT: '9' }, NO_FILES)).snapshotCount, 9);
    // etcd-ts's own flags work the same way.
    assert.equal(configOf(parseCommandLine(['--range-cache-bytes=0'], {}, NO_FILES)).rangeCacheBytes, 0);
    assert.equal(configOf(parseCommandLine([], { ETCD_RANGE_CACHE_BYTES: '1024' }, NO_FILES)).rangeCacheBytes, 1024);
  });

  test('an environment variable also given as a flag is refused, as etcd does', () => {
    const err = configError(() =>
      parseCommandLine(['--heartbeat-interval', '100'], { ETCD_HEARTBEAT_INTERVAL: '200' }, NO_FILES),
    );
    assert.equal(err.flag, 'heartbeat-interval');
    assert.match(err.message, /conflicting environment variable "ETCD_HEARTBEAT_INTERVAL" is shadowed/);
  });

  test('empty variables are ignored; unknown ETCD_ variables and ETCD_VERSION only warn', () => {
    const r = parseCommandLine([], { ETCD_NAME: '', ETCD_FOO_BAR: '1', ETCD_VERSION: '1', ETCDCTL_API: '3' }, NO_FILES);
    assert.equal(configOf(r).name, 'default');
    const warnings = warningsOf(r);
    assert.ok(warnings.some((w) => w === 'unrecognized environment variable ETCD_FOO_BAR=1'));
    assert.ok(warnings.some((w) => w.includes('ETCD_VERSION')));
    assert.ok(!warnings.some((w) => w.includes('ETCDCTL_API')));
  });

  test('a config file wins over flags and environment, which are named in a warning', () => {
    const yaml = 'name: from-file\nheartbeat-interval: 50\nelection-timeout: 500\n';
    const r = parseCommandLine(
      ['--config-file', '/etc/etcd.yaml', '--name', 'from-flag'],
      { ETCD_SNAPSHOT_COUNT: '3' },
      files({ '/etc/etcd.yaml': yaml }),
    );
    const c = configOf(r);
    assert.equal(c.name, 'from-file');
    assert.equal(c.heartbeatIntervalMs, 50);
    assert.equal(c.snapshotCount, 100_000);
    const warning = warningsOf(r).find((w) => w.includes('ignored'));
    assert.ok(warning?.includes('--name') && warning.includes('ETCD_SNAPSHOT_COUNT'), warning);
  });

  test('ETCD_CONFIG_FILE names the file when the flag does not', () => {
    const r = parseCommandLine([], { ETCD_CONFIG_FILE: '/c.yml' }, files({ '/c.yml': 'name: env-file\n' }));
    assert.equal(configOf(r).name, 'env-file');
  });

  test('--listen-client-urls without --advertise-client-urls is refused (flag or environment)', () => {
    const err = configError(() => parseCommandLine(['--listen-client-urls=http://127.0.0.1:1'], {}, NO_FILES));
    assert.equal(err.flag, 'advertise-client-urls');
    assert.match(err.message, /--advertise-client-urls is required when --listen-client-urls is set explicitly/);
    configError(() => parseCommandLine([], { ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:1' }, NO_FILES));
    const ok = parseCommandLine(
      [],
      { ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:1', ETCD_ADVERTISE_CLIENT_URLS: 'http://127.0.0.1:1' },
      NO_FILES,
    );
    assert.deepEqual(configOf(ok).listenClientUrls, ['http://127.0.0.1:1']);
  });
});

describe('value syntax', () => {
  test("booleans as Go's flag package takes them", () => {
    assert.equal(configOf(parseCommandLine(['--pre-vote=false'], {}, NO_FILES)).preVote, false);
    assert.equal(configOf(parseCommandLine(['--client-cert-auth'], {}, NO_FILES)).clientCertAuth, true);
    assert.equal(configOf(parseCommandLine(['-force-new-cluster=T'], {}, NO_FILES)).forceNewCluster, true);
    assert.equal(
      configOf(parseCommandLine([], { ETCD_STRICT_RECONFIG_CHECK: '0' }, NO_FILES)).strictReconfigCheck,
      false,
    );
    // A boolean takes no separate value: `--pre-vote false` leaves "false" as a stray argument.
    const stray = configError(() => parseCommandLine(['--pre-vote', 'false'], {}, NO_FILES));
    assert.match(stray.message, /"false" is not a valid flag/);
    assert.equal(parseGoBool('TRUE'), true);
    assert.throws(() => parseGoBool('yes'));
  });

  test('durations, integers and URL lists', () => {
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('300ms'), 300);
    assert.equal(parseGoDuration('0'), 0);
    assert.throws(() => parseGoDuration('5'), /invalid duration/);
    assert.throws(() => parseGoDuration('5x'), /unknown unit/);
    assert.equal(parseGoUint('0x10'), 16);
    assert.throws(() => parseGoUint('-1'));
    const c = configOf(parseCommandLine(['--grpc-keepalive-min-time=10s', '--quota-backend-bytes=-1'], {}, NO_FILES));
    assert.equal(c.grpcKeepaliveMinTimeMs, 10_000);
    assert.equal(quotaBackendBytesOf(c), null);
    assert.deepEqual(parseUrlList('http://127.0.0.1:1, http://[::1]:2,http://127.0.0.1:1'), [
      'http://127.0.0.1:1',
      'http://[::1]:2',
    ]);
    assert.deepEqual(parseEtcdUrl('unix:///tmp/etcd.sock'), { scheme: 'unix', host: '/tmp/etcd.sock', port: 0 });
    assert.deepEqual(parseEtcdUrl('https://[::1]:2379'), { scheme: 'https', host: '::1', port: 2379 });
  });

  test('auto-compaction-retention: hours or a duration in periodic mode, revisions in revision mode', () => {
    const base = resolveConfig();
    assert.deepEqual(autoCompactionOf({ ...base, autoCompactionRetention: '1' }), {
      mode: 'periodic',
      retentionMs: 3_600_000,
    });
    assert.deepEqual(autoCompactionOf({ ...base, autoCompactionRetention: '30m' }), {
      mode: 'periodic',
      retentionMs: 1_800_000,
    });
    assert.deepEqual(autoCompactionOf({ autoCompactionMode: 'revision', autoCompactionRetention: '1000' }), {
      mode: 'revision',
      retentionRevisions: 1000,
    });
    const bad = configError(() => parseCommandLine(['--auto-compaction-retention=abc'], {}, NO_FILES));
    assert.equal(bad.flag, 'auto-compaction-retention');
    const badRevision = configError(() =>
      parseCommandLine(['--auto-compaction-mode=revision', '--auto-compaction-retention=1h'], {}, NO_FILES),
    );
    assert.equal(badRevision.flag, 'auto-compaction-retention');
  });

  test('a YAML config file: flag-name keys, etcd TLS sections, durations as nanoseconds or strings, lists', () => {
    const yaml = [
      'name: infra1',
      'data-dir: /var/lib/etcd',
      'listen-client-urls: http://127.0.0.1:2379,http://10.0.0.1:2379',
      'advertise-client-urls: [http://10.0.0.1:2379]',
      'initial-cluster-state: existing',
      'grpc-keepalive-min-time: 3000000000',
      'grpc-keepalive-interval: 1m',
      'auto-compaction-retention: 1',
      'log-outputs: [stderr]',
      'pre-vote: false',
      'enable-v2: false',
      'some-future-key: 1',
      'client-transport-security:',
      '  cert-file: /c.pem',
      '  key-file: /k.pem',
      '  client-cert-auth: true',
      'peer-transport-security:',
      '  trusted-ca-file: /ca.pem',
    ].join('\n');
    const r = parseCommandLine(['--config-file=/e.yml'], {}, files({ '/e.yml': yaml }));
    const c = configOf(r);
    assert.equal(c.name, 'infra1');
    assert.equal(c.dataDir, '/var/lib/etcd');
    assert.deepEqual(c.listenClientUrls, ['http://127.0.0.1:2379', 'http://10.0.0.1:2379']);
    assert.deepEqual(c.advertiseClientUrls, ['http://10.0.0.1:2379']);
    assert.equal(c.initialClusterState, 'existing');
    assert.equal(c.grpcKeepaliveMinTimeMs, 3000);
    assert.equal(c.grpcKeepaliveIntervalMs, 60_000);
    assert.equal(c.autoCompactionRetention, '1');
    assert.deepEqual(c.logOutputs, ['stderr']);
    assert.equal(c.preVote, false);
    assert.equal(c.certFile, '/c.pem');
    assert.equal(c.clientCertAuth, true);
    assert.equal(c.peerTrustedCaFile, '/ca.pem');
    assert.ok(warningsOf(r).some((w) => w.includes('"some-future-key"')));
  });

  test('config file errors name the key and the file', () => {
    const bad = configError(() =>
      parseCommandLine(['--config-file=/e.yml'], {}, files({ '/e.yml': 'heartbeat-interval: fast\n' })),
    );
    assert.equal(bad.flag, 'heartbeat-interval');
    assert.match(bad.message, /config file \/e\.yml: invalid value "fast" for "heartbeat-interval"/);
    const missing = configError(() => parseCommandLine(['--config-file=/nope.yml'], {}, files({})));
    assert.match(missing.message, /cannot read config file \/nope\.yml/);
    const notYaml = configError(() => parseCommandLine(['--config-file=/e.yml'], {}, files({ '/e.yml': 'a: [' })));
    assert.match(notYaml.message, /not valid YAML/);
    const list = configError(() => parseCommandLine(['--config-file=/e.yml'], {}, files({ '/e.yml': '- a\n' })));
    assert.match(list.message, /must be a YAML mapping/);
  });
});

describe('invalid values name the flag', () => {
  const cases: [string[], Record<string, string>, string, RegExp][] = [
    [['--bad'], {}, 'bad', /flag provided but not defined: --bad/],
    [['--heartbeat-interval=abc'], {}, 'heartbeat-interval', /invalid value "abc" for flag --heartbeat-interval/],
    [[], { ETCD_ELECTION_TIMEOUT: 'soon' }, 'election-timeout', /invalid value "soon" for ETCD_ELECTION_TIMEOUT/],
    [['--heartbeat-interval=300'], {}, 'election-timeout', /should be at least as 5 times as --heartbeat-interval/],
    [['--election-timeout=50001'], {}, 'election-timeout', /is too long/],
    [['--heartbeat-interval=0'], {}, 'heartbeat-interval', /--heartbeat-interval must be >0/],
    [['--initial-cluster-state=maybe'], {}, 'initial-cluster-state', /valid values are "new", "existing"/],
    [['--log-level=loud'], {}, 'log-level', /--log-level/],
    [['--logger=capnslog'], {}, 'logger', /--logger/],
    [['--pre-vote=maybe'], {}, 'pre-vote', /invalid boolean value "maybe" for flag --pre-vote/],
    [['--listen-peer-urls=foo'], {}, 'listen-peer-urls', /URL scheme must be http, https, unix, or unixs: foo/],
    [['--listen-peer-urls=http://127.0.0.1:1/x'], {}, 'listen-peer-urls', /URL must not contain a path/],
    [['--listen-peer-urls=http://127.0.0.1'], {}, 'listen-peer-urls', /does not have the form "host:port"/],
    [['--listen-peer-urls=http://example.com:1'], {}, 'listen-peer-urls', /expected IP in URL for binding/],
    [['--max-concurrent-streams=4294967296'], {}, 'max-concurrent-streams', /out of range/],
    [['--bcrypt-cost=3'], {}, 'bcrypt-cost', /invalid bcrypt-cost \(3\)/],
    [['--auth-token=oauth'], {}, 'auth-token', /unknown token type "oauth"/],
    [['--name'], {}, 'name', /flag needs an argument: --name/],
    [['--initial-cluster=a'], {}, 'initial-cluster', /not of the form name=url/],
    [
      ['--listen-client-urls=https://127.0.0.1:1', '--advertise-client-urls=https://127.0.0.1:1'],
      {},
      'listen-client-urls',
      /TLS key\/cert \(--cert-file, --key-file\) must be provided/,
    ],
    [['--cert-file=/c.pem'], {}, 'key-file', /--cert-file and --key-file must be given together/],
    [['--cipher-suites=TLS_FAKE'], {}, 'cipher-suites', /unexpected TLS cipher suite "TLS_FAKE"/],
  ];
  for (const [argv, env, flag, pattern] of cases) {
    test(`${[...argv, ...Object.keys(env)].join(' ')} -> --${flag}`, () => {
      const err = configError(() => parseCommandLine(argv, env, NO_FILES));
      assert.equal(err.flag, flag);
      assert.match(err.message, pattern);
    });
  }

  test('resolveConfig checks the types of fields given in code', () => {
    const err = configError(() => resolveConfig({ heartbeatIntervalMs: -5 }));
    assert.equal(err.flag, 'heartbeat-interval');
    configError(() => resolveConfig({ listenClientUrls: ['nope'] }));
    configError(() => resolveConfig({ logLevel: 'verbose' as never }));
    configError(() => resolveConfig({ nonsense: 1 } as never));
  });

  test('resolveConfig in code: advertised URLs default to the listen URLs', () => {
    const c = resolveConfig({
      name: 'n1',
      listenClientUrls: ['http://127.0.0.1:0'],
      listenPeerUrls: ['http://127.0.0.1:7'],
    });
    assert.deepEqual(c.advertiseClientUrls, ['http://127.0.0.1:0']);
    assert.deepEqual(c.initialAdvertisePeerUrls, ['http://127.0.0.1:7']);
    assert.equal(c.initialCluster, 'n1=http://127.0.0.1:7');
    assert.deepEqual(resolveConfig(c), c);
  });

  test('verifyInitialCluster: this member, its advertised URLs, no duplicates', () => {
    verifyInitialCluster(resolveConfig({ name: 'a', initialAdvertisePeerUrls: ['http://127.0.0.1:2380'] }));
    verifyInitialCluster(
      resolveConfig({
        name: 'a',
        initialCluster: 'a=http://localhost:2380',
        initialAdvertisePeerUrls: ['http://127.0.0.1:2380'],
      }),
    );
    assert.throws(
      () => verifyInitialCluster(resolveConfig({ name: 'a', initialCluster: 'b=http://127.0.0.1:2380' })),
      /couldn't find local name "a"/,
    );
    assert.throws(
      () =>
        verifyInitialCluster(
          resolveConfig({
            name: 'a',
            initialCluster: 'a=http://127.0.0.1:9',
            initialAdvertisePeerUrls: ['http://127.0.0.1:1'],
          }),
        ),
      /missing from --initial-advertise-peer-urls/,
    );
    assert.throws(
      () =>
        verifyInitialCluster(
          resolveConfig({
            name: 'a',
            initialCluster: 'a=http://127.0.0.1:1,b=http://127.0.0.1:1',
            initialAdvertisePeerUrls: ['http://127.0.0.1:1'],
          }),
        ),
      /duplicate url/,
    );
  });
});

describe('--help and --version', () => {
  test("--help lists every flag with its default; --version has etcd's lines", () => {
    const help = parseCommandLine(['--help'], {}, NO_FILES);
    assert.equal(help.kind, 'help');
    const text = (help as { text: string }).text;
    for (const f of FLAGS) assert.ok(text.includes(`--${f.name} '`), f.name);
    assert.match(text, /--heartbeat-interval '100'\n {4}Time \(in milliseconds\) of a heartbeat interval\./);
    const version = parseCommandLine(['--version'], {}, NO_FILES);
    assert.equal(version.kind, 'version');
    const v = (version as { text: string }).text;
    assert.match(v, /^etcd-ts Version: \d+\.\d+\.\d+\n/);
    assert.match(v, /\netcd Version: 3\.5\.\d+\n/);
    assert.match(v, /\nGit SHA: /);
    assert.match(v, /\nNode Version: v\d+/);
    assert.match(v, /\nNode OS\/Arch: \w+\/\w+/);
  });
});

describe('bin/etcd-ts', () => {
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  function run(
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bin/etcd-ts.ts', ...args], {
        cwd: repo,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  test('a bad flag, a bad value: exit 1 with the flag named on stderr', async () => {
    const [unknown, badValue] = await Promise.all([
      run(['--bad']),
      run(['--data-dir=/nonexistent/never'], { ETCD_HEARTBEAT_INTERVAL: 'abc' }),
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /flag provided but not defined: --bad/);
    assert.equal(unknown.stdout, '');
    assert.equal(badValue.code, 1);
    assert.match(badValue.stderr, /invalid value "abc" for ETCD_HEARTBEAT_INTERVAL/);
  });

  test('--version prints and exits 0', async () => {
    const r = await run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^etcd-ts Version: /);
  });
});
