/**
 * Authentication and TLS against the real etcd. Auth: users and roles set up with the real
 * etcdctl, a token TTL of one second so tokens expire during the test and the client must
 * authenticate again, wrong passwords and missing permissions as typed errors, a watch over an
 * authenticated stream, and etcdctl-ts's --user against etcdctl's. TLS: a CA, server and client
 * certificates made with openssl; the client and etcdctl-ts with --cacert/--cert/--key against
 * etcdctl; a client without the CA or without a certificate is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Channel } from '../../src/client/channel.ts';
import {
  AuthFailedError,
  AuthManagementError,
  Client,
  DeadlineExceededError,
  InvalidAuthTokenError,
  PermissionDeniedError,
} from '../../src/client/index.ts';
import { AuthService, KVService, RangeRequest } from '../../src/proto/index.ts';
import { etcdctl, etcdctlTs } from '../cli/helpers.ts';
import { EtcdCluster } from './cluster.ts';

const TOKEN_TTL_S = 1;

describe('client authentication', { timeout: 60_000 }, () => {
  let cluster: EtcdCluster;
  let endpoint: string;

  before(async () => {
    cluster = await EtcdCluster.start(1, { extraArgs: [`--auth-token-ttl=${TOKEN_TTL_S}`] });
    endpoint = cluster.endpoints[0]!;
    const setup = [
      ['user', 'add', 'root:rootpw'],
      ['user', 'add', 'alice:alicepw'],
      ['role', 'add', 'limited'],
      ['role', 'grant-permission', 'limited', 'readwrite', 'a/', '--prefix'],
      ['user', 'grant-role', 'alice', 'limited'],
      ['auth', 'enable'],
    ];
    for (const args of setup) {
      const r = await etcdctl([`--endpoints=${endpoint}`, ...args]);
      assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
    }
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a client authenticates, and again when its token expires', async () => {
    const client = new Client({ endpoints: [endpoint], auth: { username: 'root', password: 'rootpw' } });
    const raw = new Channel(endpoint);
    try {
      await client.put('k', 'v');
      const { token } = await raw.unary(AuthService.Authenticate, { name: 'root', password: 'rootpw' });
      await new Promise((r) => setTimeout(r, (TOKEN_TTL_S + 1.5) * 1000));
      // The server forgot idle tokens: one taken at the same time as the client's is refused...
      await assert.rejects(
        raw.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('k') }), { metadata: { token } }),
        /invalid auth token/,
      );
      // ...and the client, whose token is as old, authenticates again by itself.
      assert.equal(await client.getString('k'), 'v');
      const watcher = client.watch('w', {});
      await watcher.ready();
      const seen = new Promise((resolve) => watcher.once('put', resolve));
      await client.put('w', 'x');
      await seen;
      await watcher.close();
    } finally {
      client.close();
      raw.close();
    }
  });

  test('wrong passwords, missing credentials and missing permissions are typed errors', async () => {
    const wrong = new Client({ endpoints: [endpoint], auth: { username: 'root', password: 'nope' } });
    const anonymous = new Client({ endpoints: [endpoint] });
    const alice = new Client({ endpoints: [endpoint], auth: { username: 'alice', password: 'alicepw' } });
    try {
      await assert.rejects(wrong.get('k'), AuthFailedError);
      await assert.rejects(anonymous.put('k', 'v'), AuthManagementError);
      await alice.put('a/mine', 'ok');
      await assert.rejects(alice.put('b/theirs', 'no'), PermissionDeniedError);
      assert.equal(new InvalidAuthTokenError(16, 'etcdserver: invalid auth token').code, 'ETCD_INVALID_AUTH_TOKEN');
    } finally {
      wrong.close();
      anonymous.close();
      alice.close();
    }
  });

  test('etcdctl-ts --user and --password as etcdctl', async () => {
    for (const args of [
      ['--user=root:rootpw', 'get', 'a/', '--prefix'],
      ['--user=root', '--password=rootpw', 'get', 'a/mine', '-w', 'fields'],
      ['--user=alice:alicepw', 'put', 'b/x', 'v'],
      ['--user=root:bad', 'get', 'k'],
      ['get', 'k'],
    ]) {
      const full = [`--endpoints=${endpoint}`, ...args];
      const [ref, ts] = await Promise.all([etcdctl(full), etcdctlTs(full)]);
      const clean = (s: Buffer) =>
        s
          .toString()
          .split('\n')
          .filter((l) => !l.startsWith('{"level"'))
          .join('\n')
          .replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : <id>');
      assert.deepEqual(
        { code: ts.code, out: clean(ts.stdout), err: clean(ts.stderr) },
        { code: ref.code, out: clean(ref.stdout), err: clean(ref.stderr) },
        args.join(' '),
      );
    }
  });
});

describe('client TLS', { timeout: 60_000 }, () => {
  let dir: string;
  let cluster: EtcdCluster;
  let ca: Buffer;
  let cert: Buffer;
  let key: Buffer;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'etcd-ts-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
    );
    writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    for (const name of ['server', 'client']) {
      ssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${name}`,
      );
      ssl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-days',
        '1',
        '-extfile',
        'san.cnf',
      );
    }
    ca = readFileSync(join(dir, 'ca.pem'));
    cert = readFileSync(join(dir, 'client.pem'));
    key = readFileSync(join(dir, 'client.key'));
    cluster = await EtcdCluster.start(1, {
      extraArgs: [
        `--cert-file=${join(dir, 'server.pem')}`,
        `--key-file=${join(dir, 'server.key')}`,
        `--trusted-ca-file=${join(dir, 'ca.pem')}`,
        '--client-cert-auth',
      ],
      clientTls: { ca, cert, key },
    });
    url = cluster.nodes[0]!.clientUrl;
  });
  after(async () => {
    await cluster?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('a client with the CA and a certificate gets in; without either it does not', async () => {
    const good = new Client({ endpoints: [url], tls: { ca, cert, key } });
    const noCert = new Client({ endpoints: [url], tls: { ca }, callTimeoutMs: 500 });
    const noCa = new Client({ endpoints: [url], tls: { cert, key }, callTimeoutMs: 500 });
    const plain = new Client({ endpoints: [cluster.endpoints[0]!], callTimeoutMs: 500 });
    try {
      await good.put('secure', 'yes');
      assert.equal(await good.getString('secure'), 'yes');
      const watcher = good.watch('secure');
      await watcher.ready();
      await watcher.close();
      for (const refused of [noCert, noCa, plain]) await assert.rejects(refused.get('secure'), DeadlineExceededError);
    } finally {
      for (const c of [good, noCert, noCa, plain]) c.close();
    }
  });

  test('etcdctl-ts --cacert --cert --key as etcdctl', async () => {
    const files = [
      `--cacert=${join(dir, 'ca.pem')}`,
      `--cert=${join(dir, 'client.pem')}`,
      `--key=${join(dir, 'client.key')}`,
    ];
    for (const args of [
      [...files, 'get', 'secure'],
      [...files, 'endpoint', 'health', '-w', 'json'],
      [...files, 'put', 'secure2', 'v'],
    ]) {
      const full = [`--endpoints=${url}`, ...args];
      const [ref, ts] = await Promise.all([etcdctl(full), etcdctlTs(full)]);
      assert.equal(ts.code, ref.code, `${args.join(' ')}: ${ts.stderr}`);
      assert.equal(
        ts.stdout.toString().replace(/"took":"[^"]*"/, ''),
        ref.stdout.toString().replace(/"took":"[^"]*"/, ''),
      );
    }
  });
});
