/**
 * The auth store travels in snapshots in etcd's format, both ways: users (with bcrypt hashes
 * made by Go or by bcryptjs), roles, permissions, the enabled flag and the revision. A snapshot
 * of etcd-ts with auth on, restored by the real etcdctl, gives a real etcd where the same
 * passwords and permissions work; a snapshot of the real etcd, restored by etcdctl-ts, gives an
 * etcd-ts member where they work too.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Channel, GrpcCallError } from '../../src/client/channel.ts';
import { AuthService, KVService, MaintenanceService, RangeRequest } from '../../src/proto/index.ts';
import { allocatePorts, Cluster, cli, type Kind, Node, type Ports, startCluster, tempDir } from '../ops/helpers.ts';
import { call, setUpAppUsers } from './app-users.ts';

const b = (s: string) => Buffer.from(s);
const FLAGS = ['--bcrypt-cost=4'];
const READY_TIMEOUT_MS = 30_000;
/** The auth revision after setUpAppUsers, in etcd as in etcd-ts: 1 for a new store, one per change but enable. */
const REVISION_AFTER_SETUP = 7n;

const clusters: Cluster[] = [];
const channels: Channel[] = [];
after(async () => {
  for (const ch of channels) ch.close();
  await Promise.all(clusters.map((c) => c.stop()));
});

async function start(kind: Kind): Promise<{ cluster: Cluster; ch: Channel }> {
  const cluster = await startCluster(kind, ['auth'], { extraArgs: FLAGS });
  clusters.push(cluster);
  const ch = new Channel(cluster.endpoints[0]!);
  channels.push(ch);
  return { cluster, ch };
}

/**
 * A member on a restored data dir. Ready once it has a leader: with auth on, the usual probe
 * (a read without credentials) is refused.
 */
async function startRestored(kind: Kind, dataDir: string, ports: Ports): Promise<Channel> {
  const initialCluster = `auth=http://127.0.0.1:${ports.peer}`;
  const node = new Node({
    kind,
    name: 'auth',
    dataDir,
    clientPort: ports.client,
    peerPort: ports.peer,
    initialCluster,
    extraArgs: FLAGS,
  });
  clusters.push(new Cluster([node], initialCluster));
  node.launch();
  const ch = new Channel(node.endpoint);
  channels.push(ch);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      if ((await call(ch, MaintenanceService.Status, {})).leader !== 0n) return ch;
    } catch (err) {
      if (!node.running || Date.now() > deadline)
        throw new Error(`${kind} not ready: ${String(err)}\n${node.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a restored member must still know: passwords, permissions, the auth revision. */
async function checkRestored(ch: Channel, kind: Kind): Promise<void> {
  const wrong = call(ch, AuthService.Authenticate, { name: 'alice', password: 'b' });
  await assert.rejects(
    wrong,
    (err: unknown) => err instanceof GrpcCallError && /authentication failed/.test(err.details),
  );
  const alice = (await call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' })).token;
  const r = await call(ch, KVService.Range, RangeRequest.fromPartial({ key: b('app/x') }), alice);
  assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'v');
  await assert.rejects(
    call(ch, KVService.Range, RangeRequest.fromPartial({ key: b('other') }), alice),
    /permission denied/,
  );
  await assert.rejects(call(ch, KVService.Range, RangeRequest.fromPartial({ key: b('app/x') })), /user name is empty/);
  const root = (await call(ch, AuthService.Authenticate, { name: 'root', password: 'rootpw' })).token;
  if (kind === 'etcd-ts') {
    // etcd 3.4 has no AuthStatus.
    const status = await call(ch, AuthService.AuthStatus, {}, root);
    assert.equal(status.enabled, true);
    assert.equal(status.authRevision, REVISION_AFTER_SETUP);
  }
  assert.deepEqual((await call(ch, AuthService.UserList, {}, root)).users, ['alice', 'root']);
}

async function saveAndRestore(
  source: { cluster: Cluster; ch: Channel },
  restorer: 'etcdctl' | 'etcdctl-ts',
): Promise<{ dataDir: string; ports: Ports }> {
  const dir = tempDir('auth-snap');
  const file = `${dir}/snap.db`;
  const saved = await cli('etcdctl', [
    `--endpoints=${source.cluster.endpoints[0]}`,
    '--user=root:rootpw',
    'snapshot',
    'save',
    file,
  ]);
  assert.equal(saved.code, 0, saved.stderr);
  const [ports] = await allocatePorts(1);
  const peerUrl = `http://127.0.0.1:${ports!.peer}`;
  const dataDir = `${dir}/restored`;
  const restored = await cli(restorer, [
    'snapshot',
    'restore',
    file,
    `--data-dir=${dataDir}`,
    '--name=auth',
    `--initial-cluster=auth=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
  ]);
  assert.equal(restored.code, 0, restored.stderr);
  return { dataDir, ports: ports! };
}

describe('auth in snapshots', { timeout: 120_000 }, () => {
  test('etcd-ts -> etcd: a real etcd restored from etcd-ts knows its users, passwords and roles', async () => {
    const source = await start('etcd-ts');
    await setUpAppUsers(source.ch, 'v');
    const root = (await call(source.ch, AuthService.Authenticate, { name: 'root', password: 'rootpw' })).token;
    assert.equal((await call(source.ch, AuthService.AuthStatus, {}, root)).authRevision, REVISION_AFTER_SETUP);
    const { dataDir, ports } = await saveAndRestore(source, 'etcdctl');
    await checkRestored(await startRestored('etcd', dataDir, ports), 'etcd');
  });

  test('etcd -> etcd-ts: etcd-ts restored from the real etcd knows them too', async () => {
    const source = await start('etcd');
    await setUpAppUsers(source.ch, 'v');
    const { dataDir, ports } = await saveAndRestore(source, 'etcdctl-ts');
    await checkRestored(await startRestored('etcd-ts', dataDir, ports), 'etcd-ts');
  });
});
