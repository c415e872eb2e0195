/**
 * A 3-member etcd-ts cluster with TLS on its client and peer URLs, certificates made by the
 * test with openssl: members require and verify client certificates on both (--client-cert-auth,
 * --peer-client-cert-auth), replicate over TLS, take the common name of a client certificate as
 * the user when no token is given (a token wins), refuse certificates of another CA and clients
 * without one, and pick up certificates replaced on disk without a restart. The real etcdctl and
 * etcdctl-ts connect with --cacert/--cert/--key. Then --tls-min-version and --cipher-suites on a
 * member in this process.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { EtcdService } from '../../src/api/etcd-service.ts';
import { Channel, GrpcCallError } from '../../src/client/channel.ts';
import { startMember } from '../../src/embed/index.ts';
import {
  AuthService,
  AuthUserAddRequest,
  KVService,
  MaintenanceService,
  type Method,
  Permission_Type,
  PutRequest,
  RangeRequest,
} from '../../src/proto/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { etcdctl, etcdctlTs } from '../cli/helpers.ts';
import { freePort } from '../helpers/ports.ts';
import { type CertFiles, TestCa } from './certs.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const CALL_TIMEOUT_MS = 5_000;
const b = (s: string) => Buffer.from(s);
/** The common name every peer certificate has (--peer-cert-allowed-cn). */
const PEER_CN = 'etcd-peer';

interface Node {
  name: string;
  clientPort: number;
  peerPort: number;
  clientCert: CertFiles;
  peerCert: CertFiles;
  child?: ChildProcess;
  output: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a TLS cluster with client certificates', { timeout: 120_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let foreign: TestCa;
  const nodes: Node[] = [];
  const certs = new Map<string, CertFiles>();
  const channels: Channel[] = [];

  const endpoint = (n: Node) => `https://127.0.0.1:${n.clientPort}`;
  /** A channel to `n` presenting the client certificate `who` (undefined: none). */
  function channelTo(n: Node, who: string | undefined, authority: TestCa = ca): Channel {
    const c = who === undefined ? undefined : certs.get(who)!;
    const ch = new Channel(endpoint(n), {
      dialTimeoutMs: 2_000,
      tls: {
        ca: readFileSync(authority.cert),
        ...(c === undefined ? {} : { cert: readFileSync(c.cert), key: readFileSync(c.key) }),
      },
    });
    channels.push(ch);
    return ch;
  }
  function call<Req, Res>(ch: Channel, method: Method<Req, Res>, req: Req, token?: string): Promise<Res> {
    return ch.unary(method, req, {
      timeoutMs: CALL_TIMEOUT_MS,
      ...(token === undefined ? {} : { metadata: { token } }),
    });
  }
  const tlsFlags = (who: string) => {
    const c = certs.get(who)!;
    return [`--cacert=${ca.cert}`, `--cert=${c.cert}`, `--key=${c.key}`];
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'etcd-ts-auth-tls-'));
    ca = new TestCa(dir, 'ca');
    foreign = new TestCa(dir, 'foreign-ca');
    for (const who of ['root', 'alice', 'nobody']) certs.set(who, ca.issue(`client-${who}`, who));
    certs.set('foreign-root', foreign.issue('foreign-root', 'root'));
    for (const name of ['m1', 'm2', 'm3']) {
      nodes.push({
        name,
        clientPort: await freePort(),
        peerPort: await freePort(),
        clientCert: ca.issue(`${name}-client`, `${name}.etcd`),
        peerCert: ca.issue(`${name}-peer`, PEER_CN),
        output: '',
      });
    }
    const initial = nodes.map((n) => `${n.name}=https://127.0.0.1:${n.peerPort}`).join(',');
    for (const n of nodes) {
      const args = [
        '--import',
        'tsx',
        join(REPO_ROOT, 'bin', 'etcd-ts.ts'),
        `--name=${n.name}`,
        `--data-dir=${join(dir, n.name)}`,
        `--listen-client-urls=${endpoint(n)}`,
        `--advertise-client-urls=${endpoint(n)}`,
        `--listen-peer-urls=https://127.0.0.1:${n.peerPort}`,
        `--initial-advertise-peer-urls=https://127.0.0.1:${n.peerPort}`,
        `--initial-cluster=${initial}`,
        '--initial-cluster-token=tls-test',
        `--cert-file=${n.clientCert.cert}`,
        `--key-file=${n.clientCert.key}`,
        `--trusted-ca-file=${ca.cert}`,
        '--client-cert-auth',
        `--peer-cert-file=${n.peerCert.cert}`,
        `--peer-key-file=${n.peerCert.key}`,
        `--peer-trusted-ca-file=${ca.cert}`,
        '--peer-client-cert-auth',
        `--peer-cert-allowed-cn=${PEER_CN}`,
        '--bcrypt-cost=4',
        '--log-level=error',
      ];
      const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (chunk: Buffer) => {
        n.output = (n.output + chunk.toString()).slice(-16_384);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      n.child = child;
    }
    // Ready: every member serves a linearizable read (so a leader was elected over TLS peers).
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const n of nodes) {
      const ch = channelTo(n, 'root');
      for (;;) {
        try {
          await call(ch, KVService.Range, RangeRequest.fromPartial({ key: b('ready') }));
          break;
        } catch (err) {
          if (n.child?.exitCode !== null || Date.now() > deadline) {
            throw new Error(`member ${n.name} not ready: ${String(err)}\n${n.output}`);
          }
          await sleep(100);
        }
      }
    }
  });

  after(async () => {
    for (const ch of channels) ch.close();
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            const child = n.child;
            if (child === undefined || child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('members replicate over TLS; etcdctl and etcdctl-ts connect with certificates', async () => {
    const [m1, m2, m3] = nodes as [Node, Node, Node];
    await call(channelTo(m1, 'root'), KVService.Put, PutRequest.fromPartial({ key: b('tls/k'), value: b('over tls') }));
    const read = await call(channelTo(m3, 'root'), KVService.Range, RangeRequest.fromPartial({ key: b('tls/k') }));
    assert.equal(Buffer.from(read.kvs[0]!.value).toString(), 'over tls');
    const status = await call(channelTo(m2, 'alice'), MaintenanceService.Status, {});
    assert.notEqual(status.leader, 0n);
    for (const tool of [etcdctl, etcdctlTs]) {
      const r = await tool([`--endpoints=${endpoint(m2)}`, ...tlsFlags('root'), 'get', 'tls/k', '--print-value-only']);
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), 'over tls\n');
    }
  });

  test("with auth on, a certificate's common name is the user; a token wins over it", async () => {
    const [m1, m2] = nodes as [Node, Node, Node];
    const asRoot = channelTo(m1, 'root');
    // No passwords: these users exist for their certificates.
    await call(
      asRoot,
      AuthService.UserAdd,
      AuthUserAddRequest.fromPartial({ name: 'root', options: { noPassword: true } }),
    );
    await call(asRoot, AuthService.UserGrantRole, { user: 'root', role: 'root' });
    await call(asRoot, AuthService.RoleAdd, { name: 'app' });
    await call(asRoot, AuthService.RoleGrantPermission, {
      name: 'app',
      perm: { permType: Permission_Type.READWRITE, key: b('app/'), rangeEnd: b('app0') },
    });
    await call(
      asRoot,
      AuthService.UserAdd,
      AuthUserAddRequest.fromPartial({ name: 'alice', options: { noPassword: true } }),
    );
    await call(asRoot, AuthService.UserGrantRole, { user: 'alice', role: 'app' });
    await call(asRoot, AuthService.UserAdd, AuthUserAddRequest.fromPartial({ name: 'tok', password: 'tokpw' }));
    await call(asRoot, AuthService.AuthEnable, {});

    const alice = channelTo(m2, 'alice');
    await call(alice, KVService.Put, PutRequest.fromPartial({ key: b('app/x'), value: b('from alice') }));
    await assert.rejects(
      call(alice, KVService.Put, PutRequest.fromPartial({ key: b('other'), value: b('x') })),
      /permission denied/,
    );
    await assert.rejects(call(alice, AuthService.UserList, {}), /permission denied/);
    await assert.rejects(
      call(channelTo(m2, 'nobody'), KVService.Range, RangeRequest.fromPartial({ key: b('app/x') })),
      /permission denied/,
    );
    assert.ok((await call(channelTo(m2, 'root'), AuthService.UserList, {})).users.includes('alice'));
    // A no-password user cannot authenticate with a password; a password user gets a token.
    await assert.rejects(
      call(alice, AuthService.Authenticate, { name: 'alice', password: '' }),
      /authentication failed/,
    );
    const { token } = await call(alice, AuthService.Authenticate, { name: 'tok', password: 'tokpw' });
    await assert.rejects(
      call(alice, KVService.Range, RangeRequest.fromPartial({ key: b('app/x') }), token),
      /permission denied/,
    );
    // The real etcdctl and etcdctl-ts, as alice by certificate.
    for (const [tool, key] of [
      [etcdctl, 'app/ctl'],
      [etcdctlTs, 'app/ctl-ts'],
    ] as const) {
      const ok = await tool([`--endpoints=${endpoint(m2)}`, ...tlsFlags('alice'), 'put', key, 'v']);
      assert.equal(ok.code, 0, ok.stderr.toString());
      const no = await tool([`--endpoints=${endpoint(m2)}`, ...tlsFlags('alice'), 'put', 'other', 'v']);
      assert.equal(no.code, 1);
      assert.match(no.stderr.toString(), /Error: etcdserver: permission denied/);
    }
    const other = await call(channelTo(m1, 'root'), KVService.Range, RangeRequest.fromPartial({ key: b('other') }));
    assert.equal(other.kvs.length, 0, 'nothing written by the refused puts');
  });

  test('a certificate from another CA, or none, is refused at the handshake; nothing changes', async () => {
    const [m1, m2] = nodes as [Node, Node, Node];
    const before = await call(channelTo(m1, 'root'), KVService.Range, RangeRequest.fromPartial({ key: b('app/x') }));
    for (const ch of [channelTo(m2, 'foreign-root'), channelTo(m2, undefined)]) {
      await assert.rejects(
        call(ch, KVService.Put, PutRequest.fromPartial({ key: b('app/x'), value: b('intruder') })),
        (err: unknown) => {
          assert.ok(err instanceof GrpcCallError);
          assert.equal(err.code, 14, err.details);
          return true;
        },
      );
    }
    const foreignCert = certs.get('foreign-root')!;
    const r = await etcdctl([
      `--endpoints=${endpoint(m2)}`,
      `--cacert=${ca.cert}`,
      `--cert=${foreignCert.cert}`,
      `--key=${foreignCert.key}`,
      '--dial-timeout=1s',
      '--command-timeout=2s',
      'put',
      'app/x',
      'intruder',
    ]);
    assert.notEqual(r.code, 0);
    // The peer port refuses a certificate of another CA, and one of the cluster's CA with
    // another common name than --peer-cert-allowed-cn; a member's own is accepted.
    await assert.rejects(handshake(m2.peerPort, { ca: readFileSync(ca.cert), ...pair(foreignCert) }));
    await assert.rejects(handshake(m2.peerPort, { ca: readFileSync(ca.cert), ...pair(certs.get('alice')!) }));
    assert.ok(await handshake(m2.peerPort, { ca: readFileSync(ca.cert), ...pair(m1.peerCert) }));
    const afterwards = await call(
      channelTo(m1, 'root'),
      KVService.Range,
      RangeRequest.fromPartial({ key: b('app/x') }),
    );
    assert.deepEqual(afterwards.kvs, before.kvs);
    assert.equal(afterwards.header!.revision, before.header!.revision);
  });

  test('certificates replaced on disk are used for new connections, without a restart', async () => {
    const [m1, m2] = nodes as [Node, Node, Node];
    const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;
    const rootCert = certs.get('root')!;
    const opts = { ca: readFileSync(ca.cert), ...pair(rootCert) };
    const oldClient = await handshake(m2.clientPort, opts);
    assert.equal(oldClient, serialOf(m2.clientCert.cert));
    const held = channelTo(m2, 'root');
    await call(held, KVService.Range, RangeRequest.fromPartial({ key: b('app/x') }));

    for (const [side, files] of [
      ['client', m2.clientCert],
      ['peer', m2.peerCert],
    ] as const) {
      const fresh = ca.issue(`m2-${side}-rotated`, side === 'peer' ? PEER_CN : 'm2.rotated');
      // Written as a rotation tool would: the certificate first, then its key.
      copyFileSync(fresh.cert, `${files.cert}.new`);
      renameSync(`${files.cert}.new`, files.cert);
      copyFileSync(fresh.key, `${files.key}.new`);
      renameSync(`${files.key}.new`, files.key);
    }
    const newClient = await handshake(m2.clientPort, opts);
    assert.equal(newClient, serialOf(m2.clientCert.cert));
    assert.notEqual(newClient, oldClient);
    const asPeer = { ca: readFileSync(ca.cert), ...pair(m1.peerCert) };
    assert.equal(await handshake(m2.peerPort, asPeer), serialOf(m2.peerCert.cert));
    // The connection made before still works, and so do new ones and the cluster.
    await call(held, KVService.Range, RangeRequest.fromPartial({ key: b('app/x') }));
    await call(
      channelTo(m1, 'root'),
      KVService.Put,
      PutRequest.fromPartial({ key: b('app/after'), value: b('rotation') }),
    );
    const read = await call(channelTo(m2, 'root'), KVService.Range, RangeRequest.fromPartial({ key: b('app/after') }));
    assert.equal(Buffer.from(read.kvs[0]!.value).toString(), 'rotation');
  });
});

function pair(files: CertFiles): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

/** Completes a TLS handshake with 127.0.0.1:`port`; resolves to the server certificate's serial. */
function handshake(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], ...options }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      // TLS 1.3: the server checks the client certificate after the handshake; wait for its verdict.
      socket.once('data', () => {});
      setTimeout(() => {
        socket.destroy();
        resolve(serial);
      }, 100);
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed')));
  });
}

describe('TLS versions and cipher suites', { timeout: 30_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let server: CertFiles;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'etcd-ts-auth-tlsver-'));
    ca = new TestCa(dir, 'ca');
    server = ca.issue('server', 'server');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function withMember(config: Record<string, unknown>, fn: (port: number) => Promise<void>): Promise<void> {
    const member = await startMember(
      {
        name: 'tlsver',
        dataDir: join(dir, `m-${Math.random().toString(36).slice(2)}`),
        listenClientUrls: ['https://127.0.0.1:0'],
        advertiseClientUrls: ['https://127.0.0.1:2379'],
        listenPeerUrls: ['http://127.0.0.1:0'],
        certFile: server.cert,
        keyFile: server.key,
        ...config,
      },
      { logger: createSilentLogger(), services: [new EtcdService()] },
    );
    try {
      await fn(Number(new URL(member.clientUrls[0]!).port));
    } finally {
      await member.close();
    }
  }

  test('--tls-min-version=TLS1.3 refuses TLS 1.2 clients', async () => {
    await withMember({ tlsMinVersion: 'TLS1.3' }, async (port) => {
      const ca12 = { ca: readFileSync(ca.cert) };
      await assert.rejects(handshake(port, { ...ca12, maxVersion: 'TLSv1.2' }));
      assert.ok(await handshake(port, { ...ca12, minVersion: 'TLSv1.3' }));
    });
  });

  test('--cipher-suites limits TLS 1.2 to the suites given', async () => {
    const suite = 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384';
    await withMember({ cipherSuites: [suite], tlsMaxVersion: 'TLS1.2' }, async (port) => {
      const cipher = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(ca.cert) }, () => {
          resolve(socket.getCipher().name);
          socket.destroy();
        });
        socket.once('error', reject);
      });
      assert.equal(cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384');
      await assert.rejects(
        handshake(port, { ca: readFileSync(ca.cert), ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }),
      );
    });
  });
});
