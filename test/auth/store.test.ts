/**
 * The auth store and its parts without a member: permission intervals, the store's changes and
 * checks with etcd's errors and revision rules, its buckets in etcd's format, tokens (simple and
 * JWT, good and forged), password hashes (including one made by Go's bcrypt), and the caller
 * header of raft entries.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Permission_Type, type Role, User } from '../../src/proto/index.ts';
import {
  ANONYMOUS,
  AuthError,
  AuthErrorCode,
  type AuthInfo,
  AuthStore,
  IntervalSet,
  JwtKeys,
  newTokenProvider,
  PasswordHasher,
  parseAuthTokenSpec,
  RangePermissions,
  SimpleTokenProvider,
} from '../../src/server/auth/index.ts';
import { decodeRaftRequest, encodeRaftRequest, RequestKind } from '../../src/server/raft-request.ts';
import { Backend, Bucket } from '../../src/storage/backend/index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-auth-store-'));
after(() => rmSync(root, { recursive: true, force: true }));

const b = (s: string) => Buffer.from(s, 'latin1');
const code = (c: string) => (err: unknown) => err instanceof AuthError && err.code === c;

describe('permission intervals', () => {
  test('merges overlapping and touching ranges; a range must lie inside one merged interval', () => {
    const set = IntervalSet.of([
      { start: 'a', end: 'c' },
      { start: 'c', end: 'e' },
      { start: 'b', end: 'd' },
      { start: 'x', end: null },
      { start: 'm', end: 'm\u0000' },
    ]);
    assert.equal(set.size, 3);
    assert.equal(set.containsRange('a', 'e'), true);
    assert.equal(set.containsRange('a', 'e\u0000'), false);
    assert.equal(set.containsRange('d', 'm'), false);
    assert.equal(set.containsRange('x', null), true);
    assert.equal(set.containsRange('y', 'zzz'), true);
    assert.equal(set.containsRange('w', null), false);
    assert.equal(set.containsRange('c', 'c'), false, 'an empty range is never covered');
    assert.equal(set.containsRange('d', 'b'), false, 'an inverted range is never covered');
    assert.equal(set.containsKey('m'), true);
    assert.equal(set.containsKey('m\u0000'), false);
    assert.equal(set.containsKey('e'), false);
    assert.equal(set.containsKey(''), false);
  });

  test('roles merge into read and write sets; missing roles are skipped', () => {
    const roles = new Map<string, Role>([
      [
        'r',
        {
          name: b('r'),
          keyPermission: [
            { permType: Permission_Type.READ, key: b('p/'), rangeEnd: b('p0') },
            { permType: Permission_Type.WRITE, key: b('d'), rangeEnd: new Uint8Array(0) },
            { permType: Permission_Type.READWRITE, key: b('q'), rangeEnd: Uint8Array.of(0) },
          ],
        },
      ],
    ]);
    const perms = RangePermissions.of(['r', 'gone'], (n) => roles.get(n));
    assert.equal(perms.allows('read', b('p/x'), new Uint8Array(0)), true);
    assert.equal(perms.allows('read', b('p/'), b('p0')), true);
    assert.equal(perms.allows('write', b('p/x'), new Uint8Array(0)), false);
    assert.equal(perms.allows('write', b('d'), new Uint8Array(0)), true);
    assert.equal(perms.allows('write', b('d'), b('d\u0000')), true, '[d, d\\0) is the key d');
    assert.equal(perms.allows('write', b('d'), b('da')), false);
    assert.equal(perms.allows('write', b('w'), b('wa')), true, 'inside the open-ended [q, ...)');
    assert.equal(perms.allows('read', b('zz'), Uint8Array.of(0)), true, 'open-ended from q');
    assert.equal(perms.allows('read', b('j'), Uint8Array.of(0)), false);
  });
});

function openStore(name: string, cost = 4): { backend: Backend; store: AuthStore } {
  const backend = Backend.open({ dir: join(root, name) });
  const store = new AuthStore(backend, { tokens: new SimpleTokenProvider(300), bcryptCost: cost });
  return { backend, store };
}

const who = (username: string, store: AuthStore): AuthInfo => ({ username, revision: store.revision });

describe('auth store', () => {
  test('changes follow etcd: errors, revision bumps, root rules, reload from the backend', async () => {
    const { backend, store } = openStore('changes');
    assert.equal(store.revision, 1, 'a new store starts at revision 1');
    assert.throws(() => store.applyEnable(), code(AuthErrorCode.RootUserNotExist));
    const hash = Buffer.from(await store.passwords.hash('pw'), 'latin1').toString('base64');
    store.applyUserAdd({ name: 'root', password: '', options: undefined, hashedPassword: hash });
    assert.throws(() => store.applyEnable(), code(AuthErrorCode.RootRoleNotExist));
    assert.throws(
      () => store.applyUserAdd({ name: 'root', password: '', options: undefined, hashedPassword: hash }),
      code(AuthErrorCode.UserAlreadyExist),
    );
    assert.throws(
      () => store.applyUserAdd({ name: '', password: '', options: undefined, hashedPassword: hash }),
      code(AuthErrorCode.UserEmpty),
    );
    assert.throws(() => store.applyRoleAdd(''), code(AuthErrorCode.RoleEmpty));
    assert.throws(() => store.applyUserGrantRole('root', 'nope'), code(AuthErrorCode.RoleNotFound));
    assert.throws(() => store.applyUserGrantRole('nobody', 'root'), code(AuthErrorCode.UserNotFound));
    const before = store.revision;
    store.applyUserGrantRole('root', 'root'); // the root role need not exist as a role
    assert.equal(store.revision, before + 1);
    store.applyUserGrantRole('root', 'root');
    assert.equal(store.revision, before + 1, 'granting a role the user has changes nothing');
    store.applyEnable();
    assert.equal(store.enabled, true);
    assert.equal(store.revision, before + 1, 'enabling does not bump the revision');
    assert.throws(() => store.applyUserDelete('root'), code(AuthErrorCode.InvalidAuthMgmt));
    assert.throws(() => store.applyUserRevokeRole('root', 'root'), code(AuthErrorCode.InvalidAuthMgmt));

    store.applyRoleAdd('r');
    assert.throws(() => store.applyRoleAdd('r'), code(AuthErrorCode.RoleAlreadyExist));
    assert.throws(
      () => store.applyRoleGrantPermission({ name: 'r', perm: undefined }),
      code(AuthErrorCode.PermissionNotGiven),
    );
    store.applyRoleGrantPermission({
      name: 'r',
      perm: { permType: Permission_Type.READ, key: b('z'), rangeEnd: b('') },
    });
    store.applyRoleGrantPermission({
      name: 'r',
      perm: { permType: Permission_Type.READ, key: b('a'), rangeEnd: b('b') },
    });
    store.applyRoleGrantPermission({
      name: 'r',
      perm: { permType: Permission_Type.WRITE, key: b('a'), rangeEnd: b('b') },
    });
    assert.deepEqual(
      store.roleGet('r').map((p) => [p.permType, Buffer.from(p.key).toString(), Buffer.from(p.rangeEnd).toString()]),
      [
        [Permission_Type.WRITE, 'a', 'b'],
        [Permission_Type.READ, 'z', ''],
      ],
      'sorted by key; the same key and range end changes type',
    );
    assert.throws(
      () => store.applyRoleRevokePermission({ role: 'r', key: b('a'), rangeEnd: b('c') }),
      code(AuthErrorCode.PermissionNotGranted),
    );
    store.applyUserAdd({ name: 'u', password: '', options: { noPassword: true }, hashedPassword: '' });
    store.applyUserGrantRole('u', 'r');
    assert.throws(() => store.applyUserRevokeRole('u', 'other'), code(AuthErrorCode.RoleNotGranted));
    assert.deepEqual(store.userList(), ['root', 'u']);
    assert.deepEqual(store.roleList(), ['r']);
    store.applyRoleAdd('a-role');
    assert.deepEqual(store.roleList(), ['a-role', 'r'], 'sorted by bytes');
    assert.throws(() => store.roleGet('root'), code(AuthErrorCode.RoleNotFound), 'granted, but never added');
    store.applyRoleAdd('root');
    assert.deepEqual(store.roleGet('root'), [
      { permType: Permission_Type.READWRITE, key: new Uint8Array(0), rangeEnd: Uint8Array.of(0) },
    ]);
    assert.throws(() => store.applyRoleDelete('root'), code(AuthErrorCode.InvalidAuthMgmt));
    await assert.rejects(store.checkPassword('u', ''), code(AuthErrorCode.NoPasswordUser));
    await assert.rejects(store.checkPassword('root', 'wrong'), code(AuthErrorCode.AuthFailed));
    await assert.rejects(store.checkPassword('ghost', 'pw'), code(AuthErrorCode.AuthFailed));
    assert.equal(await store.checkPassword('root', 'pw'), store.revision);

    // In etcd's format in the backend, and read back the same.
    const userBytes = backend.get(Bucket.authUsers, b('u'));
    assert.ok(userBytes !== undefined);
    assert.deepEqual(User.decode(userBytes).roles, ['r']);
    assert.deepEqual([...(backend.get(Bucket.auth, b('authEnabled')) ?? [])], [1]);
    assert.equal(Buffer.from(backend.get(Bucket.auth, b('authRevision'))!).readBigUInt64BE(0), BigInt(store.revision));
    const revision = store.revision;
    store.close();
    await backend.close();
    const again = openStore('changes');
    try {
      assert.equal(again.store.enabled, true);
      assert.equal(again.store.revision, revision);
      assert.deepEqual(again.store.userGet('u'), ['r']);
      assert.equal(await again.store.checkPassword('root', 'pw'), revision);
      again.store.applyRoleDelete('r');
      assert.deepEqual(again.store.userGet('u'), [], 'deleting a role takes it from its users');
      assert.throws(() => again.store.applyRoleDelete('root'), code(AuthErrorCode.InvalidAuthMgmt));
      again.store.applyDisable();
      assert.equal(again.store.enabled, false);
      again.store.applyRoleDelete('root'); // allowed with auth off
    } finally {
      again.store.close();
      await again.backend.close();
    }
  });

  test('checks: credentials, old revisions, root, cached permissions dropped on change', () => {
    const { backend, store } = openStore('checks');
    try {
      store.applyUserAdd({ name: 'root', password: '', options: { noPassword: true }, hashedPassword: '' });
      store.applyUserGrantRole('root', 'root');
      store.applyUserAdd({ name: 'u', password: '', options: { noPassword: true }, hashedPassword: '' });
      store.applyRoleAdd('r');
      store.applyUserGrantRole('u', 'r');
      // Auth off: everything passes, whoever asks.
      store.checkPut(ANONYMOUS, b('x'));
      store.checkAdmin(ANONYMOUS);
      store.applyEnable();
      assert.throws(() => store.checkRange(ANONYMOUS, b('x'), b('')), code(AuthErrorCode.UserEmpty));
      assert.throws(() => store.checkAdmin(ANONYMOUS), code(AuthErrorCode.UserEmpty));
      assert.throws(() => store.checkAdmin(who('ghost', store)), code(AuthErrorCode.UserNotFound));
      assert.throws(() => store.checkAdmin(who('u', store)), code(AuthErrorCode.PermissionDenied));
      store.checkAdmin(who('root', store));
      store.checkDeleteRange(who('root', store), b(''), Uint8Array.of(0));
      assert.throws(() => store.checkPut(who('ghost', store), b('x')), code(AuthErrorCode.PermissionDenied));
      const u = who('u', store);
      assert.throws(() => store.checkPut(u, b('x')), code(AuthErrorCode.PermissionDenied));
      store.applyRoleGrantPermission({
        name: 'r',
        perm: { permType: Permission_Type.WRITE, key: b('x'), rangeEnd: b('') },
      });
      assert.throws(
        () => store.checkPut(u, b('x')),
        code(AuthErrorCode.AuthOldRevision),
        'checked at an older revision',
      );
      const fresh = who('u', store);
      store.checkPut(fresh, b('x'));
      assert.throws(() => store.checkRange(fresh, b('x'), b('')), code(AuthErrorCode.PermissionDenied));
      store.applyRoleRevokePermission({ role: 'r', key: b('x'), rangeEnd: b('') });
      assert.throws(() => store.checkPut(who('u', store), b('x')), code(AuthErrorCode.PermissionDenied));
    } finally {
      store.close();
      void backend.close();
    }
  });
});

describe('tokens', () => {
  test('simple tokens: prefix.index, TTL refreshed by use, expiry, bound, invalidation', async () => {
    let now = 1_000_000;
    const p = new SimpleTokenProvider(10, () => now, 3);
    p.enable();
    try {
      const prefix = p.genTokenPrefix();
      assert.match(prefix, /^[a-zA-Z]{16}$/);
      const t = p.assign('alice', 5, 42, prefix);
      assert.equal(t, `${prefix}.42`);
      p.observeIndex(42);
      assert.deepEqual(await p.info(t, 7), { username: 'alice', revision: 7 });
      now += 9_000;
      assert.ok(await p.info(t, 7), 'used within the TTL');
      now += 9_000;
      assert.ok(await p.info(t, 7), 'each use gives a new TTL');
      now += 10_001;
      assert.equal(await p.info(t, 7), undefined, 'expired');
      const a = p.assign('a', 1, 50, 'aaaaaaaaaaaaaaaa');
      p.assign('b', 1, 51, 'bbbbbbbbbbbbbbbb');
      p.assign('c', 1, 52, 'cccccccccccccccc');
      p.assign('d', 1, 53, 'dddddddddddddddd');
      p.observeIndex(53);
      assert.equal(p.size, 3);
      assert.equal(await p.info(a, 1), undefined, 'the least recently used token made room');
      p.invalidateUser('b');
      assert.equal(await p.info('bbbbbbbbbbbbbbbb.51', 1), undefined);
      assert.ok(await p.info('cccccccccccccccc.52', 1));
      assert.equal(await p.info('forged', 1), undefined);
      assert.equal(await p.info('x.y.1', 1), undefined);
      // A token for an entry not applied yet here is waited for.
      const pending = p.info('eeeeeeeeeeeeeeee.60', 3);
      p.assign('e', 1, 60, 'eeeeeeeeeeeeeeee');
      assert.deepEqual(await pending, { username: 'e', revision: 3 });
      p.disable();
      assert.equal(await p.info('eeeeeeeeeeeeeeee.60', 3), undefined, 'disabling auth forgets every token');
    } finally {
      p.close();
    }
  });

  test('--auth-token parsing as etcd decomposes it', () => {
    assert.deepEqual(parseAuthTokenSpec('jwt,a=1,b=2'), {
      type: 'jwt',
      options: new Map([
        ['a', '1'],
        ['b', '2'],
      ]),
    });
    assert.throws(() => parseAuthTokenSpec('jwt,a=1=2'), code(AuthErrorCode.InvalidAuthOpts));
    assert.throws(() => parseAuthTokenSpec('jwt,a=1,a=2'), code(AuthErrorCode.InvalidAuthOpts));
    assert.throws(() => newTokenProvider('jwt,sign-method=XX1', 300), code(AuthErrorCode.InvalidAuthMethod));
    assert.throws(() => newTokenProvider('jwt,sign-method=RS256', 300), code(AuthErrorCode.MissingKey));
    assert.throws(
      () => newTokenProvider('jwt,sign-method=RS256,priv-key=/no/such/file', 300),
      code(AuthErrorCode.InvalidAuthOpts),
    );
    assert.equal(newTokenProvider('simple', 300).type, 'simple');
  });

  test('JWT: every method signs and verifies; forged, tampered, expired and foreign tokens are refused', () => {
    const now = Date.now();
    const claims = { username: 'alice', revision: 7, exp: Math.floor(now / 1000) + 60 };
    const pem = (k: { privateKey: unknown; publicKey: unknown }) => ({
      priv: Buffer.from(k.privateKey as string),
      pub: Buffer.from(k.publicKey as string),
    });
    const enc = {
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    } as const;
    const rsa = pem(generateKeyPairSync('rsa', { modulusLength: 2048, ...enc }));
    const rsa2 = pem(generateKeyPairSync('rsa', { modulusLength: 2048, ...enc }));
    const ec = pem(generateKeyPairSync('ec', { namedCurve: 'prime256v1', ...enc }));
    const ed = pem(generateKeyPairSync('ed25519', enc));
    const cases: [string, Buffer, Buffer | undefined][] = [
      ['RS256', rsa.priv, rsa.pub],
      ['PS384', rsa.priv, undefined],
      ['ES256', ec.priv, ec.pub],
      ['EdDSA', ed.priv, ed.pub],
      ['HS512', Buffer.from('a shared secret'), undefined],
    ];
    for (const [method, priv, pub] of cases) {
      const keys = new JwtKeys(method as 'RS256', priv, pub);
      const token = keys.sign(claims);
      const [h, p, s] = token.split('.') as [string, string, string];
      assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: method, typ: 'JWT' });
      assert.equal(Buffer.from(p, 'base64url').toString(), `{"exp":${claims.exp},"revision":7,"username":"alice"}`);
      assert.deepEqual(keys.verify(token, now), claims, method);
      assert.equal(keys.verify(token, (claims.exp + 1) * 1000), undefined, `${method}: expired`);
      const otherClaims = Buffer.from(`{"exp":${claims.exp},"revision":7,"username":"root"}`).toString('base64url');
      assert.equal(keys.verify(`${h}.${otherClaims}.${s}`, now), undefined, `${method}: tampered claims`);
      const none = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
      assert.equal(keys.verify(`${none}.${p}.`, now), undefined, `${method}: alg none`);
      assert.equal(keys.verify(`${h}.${p}.${Buffer.from('x').toString('base64url')}`, now), undefined);
      assert.equal(keys.verify('not a token', now), undefined);
    }
    // Signed with another key, or with HMAC over the public key (algorithm confusion).
    const rs = new JwtKeys('RS256', rsa.priv, undefined);
    assert.equal(rs.verify(new JwtKeys('RS256', rsa2.priv, undefined).sign(claims), now), undefined);
    assert.equal(rs.verify(new JwtKeys('HS256', rsa.pub, undefined).sign(claims), now), undefined);
    // A public key alone verifies but does not sign.
    const verifyOnly = new JwtKeys('RS256', undefined, rsa.pub);
    assert.equal(verifyOnly.verifyOnly, true);
    assert.deepEqual(verifyOnly.verify(rs.sign(claims), now), claims);
    assert.throws(() => verifyOnly.sign(claims), code(AuthErrorCode.VerifyOnly));
    assert.throws(() => new JwtKeys('RS256', rsa.priv, rsa2.pub), code(AuthErrorCode.KeyMismatch));
    assert.throws(() => new JwtKeys('ES384', ec.priv, undefined), code(AuthErrorCode.InvalidAuthOpts));
    assert.throws(() => new JwtKeys('RS256', ec.priv, undefined), code(AuthErrorCode.InvalidAuthOpts));
    const noName = Buffer.from(`{"exp":${claims.exp},"revision":7}`).toString('base64url');
    const hs = new JwtKeys('HS256', Buffer.from('k'), undefined);
    const [hh] = hs.sign(claims).split('.') as [string];
    const forgedNoName = `${hh}.${noName}`;
    // Correctly signed, but without a user name: refused, not a crash.
    const sig = createHmac('sha256', 'k').update(forgedNoName).digest('base64url');
    assert.equal(hs.verify(`${forgedNoName}.${sig}`, now), undefined);
  });
});

describe('passwords', () => {
  test("bcrypt in Go's form, and a hash made by Go's bcrypt", async () => {
    const h = new PasswordHasher(4);
    const hash = await h.hash('secret');
    assert.match(hash, /^\$2a\$04\$[./A-Za-z0-9]{53}$/);
    assert.equal(await h.compare('secret', Buffer.from(hash)), true);
    assert.equal(await h.compare('Secret', Buffer.from(hash)), false);
    // golang.org/x/crypto/bcrypt's own test vector.
    const go = Buffer.from('$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga');
    assert.equal(await h.compare('allmine', go), true);
    assert.equal(await h.compare('allmine', Buffer.from('garbage')), false);
    assert.equal(await h.compare('', new Uint8Array(0)), false);
    assert.throws(() => new PasswordHasher(3), RangeError);
  });
});

test('raft entries carry their caller', () => {
  const payload = Uint8Array.of(1, 2, 3);
  const plain = decodeRaftRequest(encodeRaftRequest(RequestKind.Put, 5n, payload));
  assert.deepEqual(
    { ...plain, payload: [...plain.payload] },
    { kind: RequestKind.Put, id: 5n, payload: [1, 2, 3], caller: undefined },
  );
  const stamped = decodeRaftRequest(encodeRaftRequest(RequestKind.Txn, 6n, payload, { username: 'ünï', revision: 99 }));
  assert.equal(stamped.kind, RequestKind.Txn);
  assert.equal(stamped.id, 6n);
  assert.deepEqual([...stamped.payload], [1, 2, 3]);
  assert.deepEqual(stamped.caller, { username: 'ünï', revision: 99 });
  const anonymous = decodeRaftRequest(encodeRaftRequest(RequestKind.Put, 7n, payload, ANONYMOUS));
  assert.deepEqual(anonymous.caller, { username: '', revision: 0 });
  const truncated = encodeRaftRequest(RequestKind.Put, 7n, payload, { username: 'abc', revision: 1 }).subarray(0, 20);
  assert.throws(() => decodeRaftRequest(truncated), /truncated/);
});
