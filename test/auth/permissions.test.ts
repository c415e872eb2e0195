/**
 * The permission matrix, on a member in this process: for each kind of request (range, put,
 * delete, txn with its compares and both branches, watch, leases, compaction, membership,
 * maintenance, auth management, lock and election), a user who may and a user who may not, on
 * keys inside and outside the granted range, with etcd's errors. A refused write changes
 * nothing. Changing a role takes effect at once (cached permissions are dropped). The JSON
 * gateway authenticates and takes the token from the Authorization header.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EtcdService } from '../../src/api/etcd-service.ts';
import { Channel, GrpcCallError } from '../../src/client/channel.ts';
import { type Member, startMember } from '../../src/embed/index.ts';
import {
  AuthService,
  ClusterService,
  Compare_CompareResult,
  Compare_CompareTarget,
  ElectionService,
  KVService,
  LeaseService,
  LockService,
  MaintenanceService,
  type Method,
  Permission_Type,
  RangeRequest,
  type RequestOp,
  type TxnRequest,
  type WatchRequest,
  type WatchResponse,
  WatchService,
} from '../../src/proto/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';

const CALL_TIMEOUT_MS = 5_000;
const G = { INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, UNKNOWN: 2, UNAUTHENTICATED: 16 } as const;
const DENIED = 'etcdserver: permission denied';
const NO_USER = 'etcdserver: user name is empty';

const b = (s: string) => Buffer.from(s);
const none = new Uint8Array(0);

let dataDir: string;
let member: Member;
let channel: Channel;
const tokens = new Map<string, string>();

/** Calls `method` with the fields given (the others at their defaults), without credentials. */
function send<Req, Res>(method: Method<Req, Res>, req: Partial<Req>): Promise<Res> {
  return channel.unary(method, req as Req, { timeoutMs: CALL_TIMEOUT_MS });
}

/** Calls `method` as `user` (its token), or with no credentials (`''`). */
function as<Req, Res>(user: string, method: Method<Req, Res>, req: Req): Promise<Res> {
  const token = tokens.get(user);
  const metadata = token === undefined ? undefined : { token };
  return channel.unary(method, req, { timeoutMs: CALL_TIMEOUT_MS, ...(metadata === undefined ? {} : { metadata }) });
}

async function refused(p: Promise<unknown>, code: number, message: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GrpcCallError, String(err));
    assert.equal(err.details, message);
    assert.equal(err.code, code, err.details);
    return true;
  });
}

const range = (key: string, end = '') => RangeRequest.fromPartial({ key: b(key), rangeEnd: b(end) });
const put = (key: string, value = 'v', extra: { prevKv?: boolean; lease?: bigint } = {}) => ({
  key: b(key),
  value: b(value),
  lease: extra.lease ?? 0n,
  prevKv: extra.prevKv ?? false,
  ignoreValue: false,
  ignoreLease: false,
});
const del = (key: string, end = '', prevKv = false) => ({ key: b(key), rangeEnd: b(end), prevKv });
const opPut = (key: string): RequestOp => ({ request: { $case: 'requestPut', value: put(key) } });
const opRange = (key: string): RequestOp => ({ request: { $case: 'requestRange', value: range(key) } });
function txn(compareKey: string, success: RequestOp[], failure: RequestOp[]): TxnRequest {
  return {
    compare: [
      {
        key: b(compareKey),
        rangeEnd: none,
        target: Compare_CompareTarget.VERSION,
        result: Compare_CompareResult.EQUAL,
        targetUnion: { $case: 'version', value: 0n },
      },
    ],
    success,
    failure,
  };
}

async function valueAt(key: string): Promise<string | undefined> {
  const r = await as('root', KVService.Range, range(key));
  return r.kvs[0] === undefined ? undefined : Buffer.from(r.kvs[0].value).toString();
}

async function revision(): Promise<bigint> {
  return (await as('root', KVService.Range, range('any'))).header!.revision;
}

/** Opens a watch as `user` and returns the first answer to its create request. */
function watchAs(user: string, key: string, end = ''): Promise<WatchResponse> {
  return new Promise((resolve, reject) => {
    const token = tokens.get(user);
    const timer = setTimeout(() => reject(new Error('no watch answer')), CALL_TIMEOUT_MS);
    const stream = channel.stream<WatchRequest, WatchResponse>(
      WatchService.Watch,
      token === undefined ? {} : { metadata: { token } },
      {
        onMessage: (m) => {
          clearTimeout(timer);
          resolve(m);
          stream.cancel();
        },
        onClose: (err) => {
          clearTimeout(timer);
          if (err !== undefined) reject(err);
        },
      },
    );
    stream.write({
      requestUnion: {
        $case: 'createRequest',
        value: {
          key: b(key),
          rangeEnd: b(end),
          startRevision: 0n,
          progressNotify: false,
          filters: [],
          prevKv: false,
          watchId: 0n,
          fragment: false,
        },
      },
    });
  });
}

/** One keep-alive of `id` as `user`: the TTL, or the stream's error. */
function keepAliveAs(user: string, id: bigint): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const token = tokens.get(user)!;
    const stream = channel.stream<{ ID: bigint }, { TTL: bigint }>(
      LeaseService.LeaseKeepAlive,
      { metadata: { token }, timeoutMs: CALL_TIMEOUT_MS },
      {
        onMessage: (m) => {
          resolve(m.TTL);
          stream.cancel();
        },
        onClose: (err) => {
          if (err !== undefined) reject(err);
        },
      },
    );
    stream.write({ ID: id });
  });
}

function httpPost(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: GatewayBody }> {
  return new Promise((resolve, reject) => {
    const req = request(`${member.clientUrls[0]}${path}`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** The fields of the gateway's JSON answers these tests read. */
interface GatewayBody {
  token?: string;
  kvs?: unknown[];
  users?: string[];
  message?: string;
}

describe('permissions with auth enabled', { timeout: 60_000 }, () => {
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'etcd-ts-auth-perms-'));
    member = await startMember(
      {
        name: 'perms',
        dataDir,
        listenClientUrls: ['http://127.0.0.1:0'],
        listenPeerUrls: ['http://127.0.0.1:0'],
        bcryptCost: 4,
      },
      { logger: createSilentLogger(), services: [new EtcdService()] },
    );
    channel = new Channel(member.clientUrls[0]!.replace('http://', ''));
    const setup: Array<() => Promise<unknown>> = [
      () => send(AuthService.UserAdd, { name: 'root', password: 'rootpw' }),
      () => send(AuthService.UserGrantRole, { user: 'root', role: 'root' }),
      () => send(AuthService.RoleAdd, { name: 'app' }),
      () =>
        send(AuthService.RoleGrantPermission, {
          name: 'app',
          perm: { permType: Permission_Type.READWRITE, key: b('app/'), rangeEnd: b('app0') },
        }),
      () => send(AuthService.RoleAdd, { name: 'ro' }),
      () =>
        send(AuthService.RoleGrantPermission, {
          name: 'ro',
          perm: { permType: Permission_Type.READ, key: b('app/'), rangeEnd: b('app0') },
        }),
      () => send(AuthService.RoleAdd, { name: 'wo' }),
      () =>
        send(AuthService.RoleGrantPermission, {
          name: 'wo',
          perm: { permType: Permission_Type.WRITE, key: b('app/'), rangeEnd: b('app0') },
        }),
      () => send(AuthService.UserAdd, { name: 'alice', password: 'a' }),
      () => send(AuthService.UserGrantRole, { user: 'alice', role: 'app' }),
      () => send(AuthService.UserAdd, { name: 'bob', password: 'b' }),
      () => send(AuthService.UserGrantRole, { user: 'bob', role: 'ro' }),
      () => send(AuthService.UserAdd, { name: 'walt', password: 'w' }),
      () => send(AuthService.UserGrantRole, { user: 'walt', role: 'wo' }),
      () => send(AuthService.UserAdd, { name: 'eve', password: 'e' }),
      () => send(KVService.Put, put('app/x', 'start')),
      () => send(KVService.Put, put('other', 'keep')),
      () => send(AuthService.AuthEnable, {}),
    ];
    for (const step of setup) await step();
    for (const [name, password] of [
      ['root', 'rootpw'],
      ['alice', 'a'],
      ['bob', 'b'],
      ['walt', 'w'],
      ['eve', 'e'],
    ] as const) {
      const r = await channel.unary(AuthService.Authenticate, { name, password }, { timeoutMs: CALL_TIMEOUT_MS });
      assert.match(r.token, /^[a-zA-Z]{16}\.\d+$/);
      tokens.set(name, r.token);
    }
  });
  after(async () => {
    channel?.close();
    await member?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('range: reads inside the granted range only, the whole range counted', async () => {
    assert.equal((await as('alice', KVService.Range, range('app/x'))).kvs.length, 1);
    assert.equal((await as('bob', KVService.Range, range('app/', 'app0'))).kvs.length, 1);
    await refused(as('alice', KVService.Range, range('other')), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', KVService.Range, range('app/', 'apq')), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', KVService.Range, range('\0', '\0')), G.PERMISSION_DENIED, DENIED);
    await refused(as('walt', KVService.Range, range('app/x')), G.PERMISSION_DENIED, DENIED);
    await refused(as('eve', KVService.Range, range('app/x')), G.PERMISSION_DENIED, DENIED);
    await refused(as('', KVService.Range, range('app/x')), G.INVALID_ARGUMENT, NO_USER);
    assert.equal((await as('root', KVService.Range, range('\0', '\0'))).kvs.length, 2);
  });

  test('put and delete: writes inside the range only; prev_kv needs read access too; refusals change nothing', async () => {
    const rev = await revision();
    await as('alice', KVService.Put, put('app/x', 'a1'));
    await as('walt', KVService.Put, put('app/x', 'w1'));
    await refused(as('walt', KVService.Put, put('app/x', 'w2', { prevKv: true })), G.PERMISSION_DENIED, DENIED);
    await refused(as('bob', KVService.Put, put('app/x', 'b1')), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', KVService.Put, put('other', 'a2')), G.PERMISSION_DENIED, DENIED);
    await refused(as('', KVService.Put, put('app/x', 'n')), G.INVALID_ARGUMENT, NO_USER);
    await refused(as('alice', KVService.DeleteRange, del('a', 'z')), G.PERMISSION_DENIED, DENIED);
    await refused(as('walt', KVService.DeleteRange, del('app/x', '', true)), G.PERMISSION_DENIED, DENIED);
    await refused(as('bob', KVService.DeleteRange, del('app/x')), G.PERMISSION_DENIED, DENIED);
    assert.equal(await valueAt('app/x'), 'w1');
    assert.equal(await valueAt('other'), 'keep');
    assert.equal(await revision(), rev + 2n, 'only the two allowed puts made revisions');
    await as('alice', KVService.Put, put('app/tmp'));
    const r = await as('alice', KVService.DeleteRange, del('app/tmp', '', true));
    assert.equal(r.deleted, 1n);
  });

  test('txn: every compare and every op of both branches, nested included', async () => {
    const ok = await as('alice', KVService.Txn, txn('app/x', [opPut('app/t1')], [opRange('app/x')]));
    assert.equal(ok.succeeded, false);
    const readOnly = await as('bob', KVService.Txn, txn('app/x', [opRange('app/x')], [opRange('app/y')]));
    assert.equal(readOnly.responses.length, 1);
    const rev = await revision();
    // The compare reads a key outside the range.
    await refused(as('alice', KVService.Txn, txn('other', [opPut('app/t2')], [])), G.PERMISSION_DENIED, DENIED);
    // The branch that would not run still counts.
    await refused(
      as('alice', KVService.Txn, txn('app/none', [opPut('app/t3')], [opPut('other')])),
      G.PERMISSION_DENIED,
      DENIED,
    );
    const nested: RequestOp = { request: { $case: 'requestTxn', value: txn('app/x', [opPut('other')], []) } };
    await refused(as('alice', KVService.Txn, txn('app/x', [opPut('app/t4'), nested], [])), G.PERMISSION_DENIED, DENIED);
    // A read-only txn is checked on the read path.
    await refused(as('bob', KVService.Txn, txn('app/x', [opRange('other')], [])), G.PERMISSION_DENIED, DENIED);
    await refused(as('bob', KVService.Txn, txn('app/x', [opPut('app/t5')], [])), G.PERMISSION_DENIED, DENIED);
    assert.equal(await revision(), rev, 'no refused txn wrote');
    assert.equal(await valueAt('app/t3'), undefined);
  });

  test('watch: read access to the whole watched range; refusals as etcd answers them', async () => {
    const ok = await watchAs('bob', 'app/', 'app0');
    assert.equal(ok.created, true);
    assert.equal(ok.canceled, false);
    for (const [user, key, end] of [
      ['alice', 'other', ''],
      ['alice', 'app/', '\0'],
      ['walt', 'app/x', ''],
    ] as const) {
      const r = await watchAs(user, key, end);
      assert.deepEqual(
        { id: r.watchId, created: r.created, canceled: r.canceled, reason: r.cancelReason },
        {
          id: -1n,
          created: true,
          canceled: true,
          reason: 'rpc error: code = PermissionDenied desc = etcdserver: permission denied',
        },
        `${user} watching [${key}, ${end})`,
      );
    }
    const anonymous = await watchAs('', 'app/x');
    assert.equal(anonymous.cancelReason, 'rpc error: code = InvalidArgument desc = etcdserver: user name is empty');
  });

  test('leases: grant needs credentials; revoke, keep-alive and listing need access to every attached key', async () => {
    await refused(as('', LeaseService.LeaseGrant, { TTL: 60n, ID: 0n }), G.INVALID_ARGUMENT, NO_USER);
    const mine = (await as('alice', LeaseService.LeaseGrant, { TTL: 60n, ID: 0n })).ID;
    await as('alice', KVService.Put, put('app/leased', 'v', { lease: mine }));
    const roots = (await as('root', LeaseService.LeaseGrant, { TTL: 60n, ID: 0n })).ID;
    await as('root', KVService.Put, put('other/leased', 'v', { lease: roots }));
    // Attaching a lease whose keys one cannot write is refused (it could not be revoked).
    await refused(as('alice', KVService.Put, put('app/more', 'v', { lease: roots })), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', LeaseService.LeaseRevoke, { ID: roots }), G.PERMISSION_DENIED, DENIED);
    await refused(as('bob', LeaseService.LeaseRevoke, { ID: mine }), G.PERMISSION_DENIED, DENIED);
    assert.ok((await keepAliveAs('alice', mine)) > 0n);
    await refused(keepAliveAs('bob', mine), G.PERMISSION_DENIED, DENIED);
    const ttl = await as('bob', LeaseService.LeaseTimeToLive, { ID: mine, keys: true });
    assert.deepEqual(
      ttl.keys.map((k) => Buffer.from(k).toString()),
      ['app/leased'],
    );
    await refused(as('eve', LeaseService.LeaseTimeToLive, { ID: mine, keys: true }), G.PERMISSION_DENIED, DENIED);
    assert.ok((await as('eve', LeaseService.LeaseTimeToLive, { ID: mine, keys: false })).TTL > 0n);
    await refused(as('alice', LeaseService.LeaseLeases, {}), G.PERMISSION_DENIED, DENIED);
    assert.equal((await as('root', LeaseService.LeaseLeases, {})).leases.length, 2);
    await as('alice', LeaseService.LeaseRevoke, { ID: mine });
    assert.equal(await valueAt('app/leased'), undefined);
    assert.equal(await valueAt('other/leased'), 'v');
    await as('root', LeaseService.LeaseRevoke, { ID: roots });
  });

  test('compaction, membership, maintenance and auth management need root', async () => {
    const rev = await revision();
    await refused(as('alice', KVService.Compact, { revision: rev - 1n, physical: false }), G.PERMISSION_DENIED, DENIED);
    await as('root', KVService.Compact, { revision: rev - 1n, physical: false });
    for (const user of ['', 'alice', 'root']) {
      assert.equal((await as(user, ClusterService.MemberList, { linearizable: false })).members.length, 1);
    }
    const learner = { peerURLs: ['http://127.0.0.1:1'], isLearner: true };
    await refused(as('alice', ClusterService.MemberAdd, learner), G.PERMISSION_DENIED, DENIED);
    const added = await as('root', ClusterService.MemberAdd, learner);
    await refused(as('alice', ClusterService.MemberRemove, { ID: added.member!.ID }), G.PERMISSION_DENIED, DENIED);
    await as('root', ClusterService.MemberRemove, { ID: added.member!.ID });
    // Maintenance refusals are etcd's raw auth errors.
    await refused(as('alice', MaintenanceService.HashKV, { revision: 0n }), G.UNKNOWN, 'auth: permission denied');
    await refused(as('', MaintenanceService.Hash, {}), G.UNKNOWN, 'auth: user name is empty');
    await refused(as('alice', MaintenanceService.Defragment, {}), G.UNKNOWN, 'auth: permission denied');
    assert.ok((await as('root', MaintenanceService.HashKV, { revision: 0n })).hash > 0);
    assert.equal((await as('alice', MaintenanceService.Status, {})).version, '3.5.0');
    await refused(as('alice', AuthService.UserList, {}), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', AuthService.AuthStatus, {}), G.PERMISSION_DENIED, DENIED);
    await refused(
      as('alice', AuthService.UserAdd, { name: 'mallory', password: 'm', options: undefined, hashedPassword: '' }),
      G.PERMISSION_DENIED,
      DENIED,
    );
    await refused(as('alice', AuthService.AuthDisable, {}), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', AuthService.UserGet, { name: 'root' }), G.PERMISSION_DENIED, DENIED);
    await refused(as('alice', AuthService.RoleGet, { role: 'ro' }), G.PERMISSION_DENIED, DENIED);
    assert.deepEqual((await as('alice', AuthService.UserGet, { name: 'alice' })).roles, ['app']);
    assert.equal((await as('alice', AuthService.RoleGet, { role: 'app' })).perm.length, 1);
    assert.deepEqual((await as('root', AuthService.UserList, {})).users, ['alice', 'bob', 'eve', 'root', 'walt']);
    const status = await as('root', AuthService.AuthStatus, {});
    assert.equal(status.enabled, true);
    await refused(as('root', AuthService.UserGet, { name: 'mallory' }), 9, 'etcdserver: user name not found');
  });

  test('lock and election work on keys as their caller', async () => {
    const lock = await as('alice', LockService.Lock, { name: b('app/lock'), lease: 0n });
    assert.ok(Buffer.from(lock.key).toString().startsWith('app/lock/'));
    await as('alice', LockService.Unlock, { key: lock.key });
    await assert.rejects(as('alice', LockService.Lock, { name: b('other/lock'), lease: 0n }), /permission denied/);
    const lease = (await as('alice', LeaseService.LeaseGrant, { TTL: 60n, ID: 0n })).ID;
    const won = await as('alice', ElectionService.Campaign, { name: b('app/e'), lease, value: b('me') });
    assert.ok(won.leader !== undefined);
    await assert.rejects(
      as('alice', ElectionService.Campaign, { name: b('other/e'), lease, value: b('me') }),
      /permission denied/,
    );
    await as('alice', LeaseService.LeaseRevoke, { ID: lease });
  });

  test('a role change takes effect at once, both ways', async () => {
    await refused(as('alice', KVService.Put, put('shared')), G.PERMISSION_DENIED, DENIED);
    const grant = { name: 'app', perm: { permType: Permission_Type.WRITE, key: b('shared'), rangeEnd: none } };
    await as('root', AuthService.RoleGrantPermission, grant);
    await as('alice', KVService.Put, put('shared', 'now'));
    await as('root', AuthService.RoleRevokePermission, { role: 'app', key: b('shared'), rangeEnd: none });
    await refused(as('alice', KVService.Put, put('shared', 'again')), G.PERMISSION_DENIED, DENIED);
    await as('root', AuthService.UserRevokeRole, { name: 'alice', role: 'app' });
    await refused(as('alice', KVService.Range, range('app/x')), G.PERMISSION_DENIED, DENIED);
    await as('root', AuthService.UserGrantRole, { user: 'alice', role: 'app' });
    assert.equal((await as('alice', KVService.Range, range('app/x'))).kvs.length, 1);
    assert.equal(await valueAt('shared'), 'now');
  });

  test('the JSON gateway: authenticate, the Authorization header, refusals', async () => {
    const auth = await httpPost('/v3/auth/authenticate', { name: 'bob', password: 'b' });
    assert.equal(auth.status, 200);
    const token = auth.body.token ?? '';
    assert.match(token, /^[a-zA-Z]{16}\.\d+$/);
    const key = Buffer.from('app/x').toString('base64');
    const ok = await httpPost('/v3/kv/range', { key }, { authorization: token });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.kvs?.length, 1);
    const denied = await httpPost('/v3/kv/put', { key, value: 'eA==' }, { authorization: token });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.message, DENIED);
    const bogus = await httpPost('/v3/kv/range', { key }, { authorization: 'forged.1' });
    assert.equal(bogus.status, 401);
    assert.equal(bogus.body.message, 'etcdserver: invalid auth token');
    const wrong = await httpPost('/v3/auth/authenticate', { name: 'bob', password: 'x' });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.message, 'etcdserver: authentication failed, invalid user ID or password');
    const users = await httpPost('/v3/auth/user/list', {}, { authorization: tokens.get('root')! });
    assert.equal(users.status, 200);
    assert.ok(users.body.users?.includes('bob'));
  });
});
