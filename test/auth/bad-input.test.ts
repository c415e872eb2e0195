/**
 * Bad credentials, each refused with etcd's error while nothing changes and the member keeps
 * serving: wrong passwords and unknown users, simple tokens that expired or never existed,
 * tokens of any size and shape, and JWTs that are expired, signed with another key, signed
 * with HMAC over the public key, unsigned (`alg: none`) or tampered with. A JWT checked at an
 * older auth revision is refused with `revision of auth store is old`. JWTs made by the real
 * etcd are accepted by etcd-ts and the other way round, with the same key.
 */
import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EtcdService } from '../../src/api/etcd-service.ts';
import { Channel, GrpcCallError } from '../../src/client/channel.ts';
import { type Member as EmbeddedMember, startMember } from '../../src/embed/index.ts';
import { AuthService, KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { Member, MemberKind } from '../helpers/member.ts';
import { call, setUpAppUsers } from './app-users.ts';

const INVALID_TOKEN = 'etcdserver: invalid auth token';
const AUTH_FAILED = 'etcdserver: authentication failed, invalid user ID or password';
const b = (s: string) => Buffer.from(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let privateKey: string;
let publicKey: string;
let privFile: string;
let pubFile: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'etcd-ts-auth-bad-'));
  const pair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  privateKey = pair.privateKey;
  publicKey = pair.publicKey;
  privFile = join(dir, 'jwt.key');
  pubFile = join(dir, 'jwt.pub');
  writeFileSync(privFile, privateKey);
  writeFileSync(pubFile, publicKey);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function refused(p: Promise<unknown>, message: string, code?: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GrpcCallError, String(err));
    assert.equal(err.details, message);
    if (code !== undefined) assert.equal(err.code, code);
    return true;
  });
}

async function embedded(
  name: string,
  config: Record<string, unknown>,
): Promise<{ member: EmbeddedMember; ch: Channel }> {
  const member = await startMember(
    {
      name,
      dataDir: join(dir, name),
      listenClientUrls: ['http://127.0.0.1:0'],
      listenPeerUrls: ['http://127.0.0.1:0'],
      bcryptCost: 4,
      ...config,
    },
    { logger: createSilentLogger(), services: [new EtcdService()] },
  );
  return { member, ch: new Channel(member.clientUrls[0]!.replace('http://', '')) };
}

const rangeX = RangeRequest.fromPartial({ key: b('app/x') });

describe('bad passwords and simple tokens', { timeout: 30_000 }, () => {
  let member: EmbeddedMember;
  let ch: Channel;
  before(async () => {
    ({ member, ch } = await embedded('simple', { authTokenTtlSec: 1 }));
    await setUpAppUsers(ch, 'v1');
  });
  after(async () => {
    ch?.close();
    await member?.close();
  });

  test('wrong passwords and unknown users are refused, and change nothing', async () => {
    const rootToken = (await call(ch, AuthService.Authenticate, { name: 'root', password: 'rootpw' })).token;
    const before = await call(ch, AuthService.AuthStatus, {}, rootToken);
    await refused(call(ch, AuthService.Authenticate, { name: 'alice', password: 'wrong' }), AUTH_FAILED, 3);
    await refused(call(ch, AuthService.Authenticate, { name: 'alice', password: '' }), AUTH_FAILED, 3);
    await refused(call(ch, AuthService.Authenticate, { name: 'nobody', password: 'a' }), AUTH_FAILED, 3);
    await refused(call(ch, AuthService.Authenticate, { name: '', password: '' }), AUTH_FAILED, 3);
    await refused(call(ch, AuthService.Authenticate, { name: 'alice', password: 'x'.repeat(100_000) }), AUTH_FAILED, 3);
    const afterwards = await call(ch, AuthService.AuthStatus, {}, rootToken);
    assert.equal(afterwards.authRevision, before.authRevision, 'a failed login is not a change');
    const { token } = await call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' });
    assert.equal((await call(ch, KVService.Range, rangeX, token)).kvs.length, 1);
  });

  test('unknown, malformed and expired simple tokens are invalid', async () => {
    for (const bad of [
      '',
      'x',
      'abc.def',
      'abcdefghijklmnop.1',
      'a.b.c',
      '\u00e9\u00e8',
      'z'.repeat(20_000),
      '.99999999999999',
    ]) {
      await refused(call(ch, KVService.Range, rangeX, bad), INVALID_TOKEN, 16);
    }
    // A token whose entry is far ahead of this member is waited for a moment, then refused.
    await refused(call(ch, KVService.Range, rangeX, 'abcdefghijklmnop.999999'), INVALID_TOKEN, 16);
    const { token } = await call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' });
    assert.equal((await call(ch, KVService.Range, rangeX, token)).kvs.length, 1);
    await sleep(2_200); // unused for longer than --auth-token-ttl=1
    await refused(call(ch, KVService.Range, rangeX, token), INVALID_TOKEN, 16);
    // Deleting a user or changing its password ends its tokens at once.
    const root = (await call(ch, AuthService.Authenticate, { name: 'root', password: 'rootpw' })).token;
    const fresh = (await call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' })).token;
    await call(ch, AuthService.UserChangePassword, { name: 'alice', password: 'b', hashedPassword: '' }, root);
    await refused(call(ch, KVService.Range, rangeX, fresh), INVALID_TOKEN, 16);
    await refused(call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' }), AUTH_FAILED);
    const again = (await call(ch, AuthService.Authenticate, { name: 'alice', password: 'b' })).token;
    assert.equal((await call(ch, KVService.Range, rangeX, again)).kvs.length, 1);
    // Disabling auth forgets every token: after enabling again they are invalid.
    await call(ch, AuthService.AuthDisable, {}, root);
    await call(ch, KVService.Range, rangeX, again); // ignored while auth is off
    await call(ch, AuthService.AuthEnable, {});
    await refused(call(ch, KVService.Range, rangeX, again), INVALID_TOKEN, 16);
  });
});

describe('JWT tokens', { timeout: 60_000 }, () => {
  let member: EmbeddedMember;
  let ch: Channel;
  const spec = () => `jwt,pub-key=${pubFile},priv-key=${privFile},sign-method=RS256,ttl=5m`;
  before(async () => {
    ({ member, ch } = await embedded('jwt', { authToken: spec() }));
    await setUpAppUsers(ch, 'v1');
  });
  after(async () => {
    ch?.close();
    await member?.close();
  });

  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  /** A token with these claims, signed with the member's own key, or as `alg` with `key`. */
  function craft(claims: Record<string, unknown>, alg = 'RS256', sign?: (input: string) => string): string {
    const input = `${part({ alg, typ: 'JWT' })}.${part(claims)}`;
    if (sign !== undefined) return `${input}.${sign(input)}`;
    return `${input}.${createSign('sha256').update(input).sign(privateKey, 'base64url')}`;
  }

  test('a token carries the user and the auth revision; an older revision is refused', async () => {
    const { token } = await call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' });
    const [, claims] = token.split('.') as [string, string];
    const parsed = JSON.parse(Buffer.from(claims, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['exp', 'revision', 'username']);
    assert.equal(parsed.username, 'alice');
    assert.equal((await call(ch, KVService.Range, rangeX, token)).kvs.length, 1);
    const root = (await call(ch, AuthService.Authenticate, { name: 'root', password: 'rootpw' })).token;
    await call(ch, AuthService.RoleAdd, { name: 'unrelated' }, root);
    await refused(call(ch, KVService.Range, rangeX, token), 'etcdserver: revision of auth store is old', 3);
    await refused(
      call(ch, KVService.Put, PutRequest.fromPartial({ key: b('app/x'), value: b('stale') }), token),
      'etcdserver: revision of auth store is old',
      3,
    );
    const fresh = (await call(ch, AuthService.Authenticate, { name: 'alice', password: 'a' })).token;
    assert.equal(Buffer.from((await call(ch, KVService.Range, rangeX, fresh)).kvs[0]!.value).toString(), 'v1');
  });

  test('expired, foreign, unsigned, confused and tampered tokens are invalid; nothing changes', async () => {
    const root = (await call(ch, AuthService.Authenticate, { name: 'root', password: 'rootpw' })).token;
    const { authRevision } = await call(ch, AuthService.AuthStatus, {}, root);
    const revision = Number(authRevision);
    const now = Math.floor(Date.now() / 1000);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = [
      craft({ exp: now - 10, revision, username: 'root' }),
      craft({ exp: now + 60, revision, username: 'root' }, 'RS256', (input) =>
        createSign('sha256').update(input).sign(other, 'base64url'),
      ),
      craft({ exp: now + 60, revision, username: 'root' }, 'none', () => ''),
      craft({ exp: now + 60, revision, username: 'root' }, 'HS256', (input) =>
        createHmac('sha256', publicKey).update(input).digest('base64url'),
      ),
      craft({ exp: now + 60, revision: String(revision), username: 'root' }),
      craft({ exp: now + 60, revision }),
    ];
    const good = craft({ exp: now + 60, revision, username: 'alice' });
    const [h, , s] = good.split('.') as [string, string, string];
    forged.push(`${h}.${part({ exp: now + 60, revision, username: 'root' })}.${s}`);
    forged.push('e30.e30.', 'not-a-jwt', `${h}.%%%.${s}`);
    for (const token of forged) {
      await refused(
        call(ch, KVService.Put, PutRequest.fromPartial({ key: b('app/x'), value: b('forged') }), token),
        INVALID_TOKEN,
        16,
      );
    }
    // A token the key holder signs is a valid one (the member checks signatures, not a list).
    assert.equal((await call(ch, KVService.Range, rangeX, good)).kvs.length, 1);
    const value = await call(ch, KVService.Range, rangeX, root);
    assert.equal(Buffer.from(value.kvs[0]!.value).toString(), 'v1', 'no forged write went through');
    assert.equal((await call(ch, AuthService.AuthStatus, {}, root)).authRevision, authRevision);
  });

  test('the real etcd and etcd-ts accept each other’s tokens with the same key', async () => {
    const jwtFlag = `--auth-token=jwt,pub-key=${pubFile},priv-key=${privFile},sign-method=RS256,ttl=5m`;
    const [etcd, ts] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'jwt', extraArgs: [jwtFlag, '--bcrypt-cost=4'] }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'jwt', extraArgs: [jwtFlag, '--bcrypt-cost=4'] }),
    ]);
    try {
      await setUpAppUsers(etcd.channel, 'v1');
      await setUpAppUsers(ts.channel, 'v1');
      const fromEtcd = (await call(etcd.channel, AuthService.Authenticate, { name: 'alice', password: 'a' })).token;
      const fromTs = (await call(ts.channel, AuthService.Authenticate, { name: 'alice', password: 'a' })).token;
      // The same header and claims, in the same order (RS256 signs deterministically, so the
      // tokens are equal when made in the same second).
      const decode = (t: string) =>
        t
          .split('.')
          .slice(0, 2)
          .map((p) => Buffer.from(p, 'base64url').toString());
      const [etcdHeader, etcdClaims] = decode(fromEtcd) as [string, string];
      const [tsHeader, tsClaims] = decode(fromTs) as [string, string];
      assert.equal(tsHeader, etcdHeader);
      const withoutExp = (c: string) => c.replace(/"exp":\d+/, '"exp":0');
      assert.equal(withoutExp(tsClaims), withoutExp(etcdClaims));
      assert.equal((await call(ts.channel, KVService.Range, rangeX, fromEtcd)).kvs.length, 1);
      assert.equal((await call(etcd.channel, KVService.Range, rangeX, fromTs)).kvs.length, 1);
      const other = RangeRequest.fromPartial({ key: b('other') });
      await refused(call(ts.channel, KVService.Range, other, fromEtcd), 'etcdserver: permission denied', 7);
      await refused(call(etcd.channel, KVService.Range, other, fromTs), 'etcdserver: permission denied', 7);
    } finally {
      await Promise.all([etcd.stop(), ts.stop()]);
    }
  });
});
