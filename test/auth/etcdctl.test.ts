/**
 * The whole auth lifecycle through etcdctl, compared with the real etcd: users and roles added,
 * permissions granted (key, range, prefix, from-key), auth enabled (etcdctl gives root its
 * role), reads and writes with --user allowed and refused, a refused watch, management refused
 * to a plain user, a password change, revocations, auth disabled. Each step runs three ways:
 * the real etcdctl against the real etcd (the reference), the real etcdctl against etcd-ts, and
 * etcdctl-ts against a second etcd-ts member; all three must print the same and exit alike
 * (cluster and member ids aside).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuthRoleGetResponse, MaintenanceService } from '../../src/proto/index.ts';
import { type CliResult, etcdctl, etcdctlTs } from '../cli/helpers.ts';
import { Member, MemberKind } from '../helpers/member.ts';

const STEP_TIMEOUT_MS = 10_000;
const FLAGS = ['--bcrypt-cost=4'];

interface Ids {
  member: Member;
  replacements: [RegExp, string][];
}

async function idsOf(member: Member): Promise<Ids> {
  const status = await member.channel.unary(MaintenanceService.Status, {}, { timeoutMs: 5_000 });
  const cluster = status.header!.clusterId;
  const id = status.header!.memberId;
  return {
    member,
    replacements: [
      [new RegExp(`(?<![0-9])${cluster}(?![0-9])`, 'g'), '<cluster>'],
      [new RegExp(`(?<![0-9])${id}(?![0-9])`, 'g'), '<member>'],
      [new RegExp(`(?<![0-9a-f])${id.toString(16)}(?![0-9a-f])`, 'g'), '<member>'],
      [new RegExp(member.clientUrl, 'g'), '<client-url>'],
      [new RegExp(member.peerUrl, 'g'), '<peer-url>'],
      [new RegExp(member.endpoint, 'g'), '<endpoint>'],
    ],
  };
}

/** `binary`: standard output holds ids in protobuf form; the caller compares it decoded. */
function view(r: CliResult, ids: Ids, binary: boolean): { code: number; stdout: string; stderr: string } {
  const norm = (t: string) => ids.replacements.reduce((acc, [re, to]) => acc.replace(re, to), t);
  const stderr = r.stderr
    .toString('utf8')
    .split('\n')
    .filter((line) => !line.startsWith('{"level":'))
    .join('\n');
  return { code: r.code, stdout: binary ? '<binary>' : norm(r.stdout.toString('utf8')), stderr: norm(stderr) };
}

describe('the auth lifecycle through etcdctl, etcd against etcd-ts', { timeout: 120_000 }, () => {
  let ref: Ids;
  let srv: Ids;
  let tool: Ids;

  before(async () => {
    const started = await Promise.allSettled([
      Member.start({ kind: MemberKind.ETCD, name: 'auth', extraArgs: FLAGS }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'auth', extraArgs: FLAGS }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'auth', extraArgs: FLAGS }),
    ]);
    const members = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(members.map((m) => m.stop()));
      throw failed.reason;
    }
    [ref, srv, tool] = (await Promise.all(members.map(idsOf))) as [Ids, Ids, Ids];
  });
  after(async () => {
    await Promise.all([ref, srv, tool].filter((x) => x !== undefined).map((x) => x.member.stop()));
  });

  /** One command three ways; `code` is what the real etcd must answer with (checks the test). */
  async function step(
    args: readonly string[],
    options: { code?: number; input?: string; binary?: boolean; toolReason?: boolean } = {},
  ): Promise<CliResult[]> {
    const run = { timeoutMs: STEP_TIMEOUT_MS, ...(options.input === undefined ? {} : { input: options.input }) };
    const with_ = (ids: Ids) => [`--endpoints=${ids.member.endpoint}`, '--command-timeout=3s', ...args];
    const results = await Promise.all([
      etcdctl(with_(ref), run),
      etcdctl(with_(srv), run),
      etcdctlTs(with_(tool), run),
    ]);
    const binary = options.binary === true;
    const [r, s, t] = [view(results[0]!, ref, binary), view(results[1]!, srv, binary), view(results[2]!, tool, binary)];
    const label = `etcdctl ${args.join(' ')}`;
    assert.equal(r.code, options.code ?? 0, `${label} against etcd exited ${r.code}: ${r.stderr}${r.stdout}`);
    assert.deepEqual(s, r, `${label}: etcd-ts answers differently from etcd`);
    if (options.toolReason === true) {
      // The client library reports a refused watch's cancel as `context canceled`, not with the
      // server's reason (which etcd-ts sends as etcd does: checked above with etcdctl).
      assert.deepEqual(
        { ...t, stderr: t.stderr.replace('(context canceled)', '(<reason>)') },
        { ...r, stderr: r.stderr.replace(/\(rpc error: [^)]*\)/, '(<reason>)') },
        `${label}: etcdctl-ts prints differently from etcdctl`,
      );
    } else {
      assert.deepEqual(t, r, `${label}: etcdctl-ts prints differently from etcdctl`);
    }
    return results;
  }

  const root = ['--user', 'root:rootpw'];
  const u1 = ['--user', 'u1:p1'];

  test('users and roles before auth is on', async () => {
    await step(['user', 'add', 'root:rootpw']);
    await step(['user', 'add', 'root:again'], { code: 1 });
    await step(['user', 'add', 'u1', '--new-user-password=p1', '-w', 'json']);
    await step(['user', 'add', 'u2', '--interactive=false'], { input: 'p2\n' });
    await step(['user', 'add', 'cn-only', '--no-password']);
    await step(['user', 'add', ':nameless'], { code: 128 });
    await step(['role', 'add', 'r1']);
    await step(['role', 'add', 'r1'], { code: 1 });
    await step(['role', 'add', 'r2', '-w', 'fields']);
    await step(['role', 'grant-permission', 'r1', 'readwrite', 'foo']);
    await step(['role', 'grant-permission', 'r1', 'read', 'pre/', '--prefix']);
    await step(['role', 'grant-permission', 'r1', 'write', 'a', 'z']);
    await step(['role', 'grant-permission', 'r1', 'READ', 'k', '--from-key']);
    await step(['role', 'grant-permission', 'r1', 'readwrite', 'foo']);
    await step(['role', 'grant-permission', 'r1', 'bogus', 'x'], { code: 128 });
    await step(['role', 'grant-permission', 'r1', 'read', 'x', 'y', '--prefix'], { code: 128 });
    await step(['role', 'grant-permission', 'nosuch', 'read', 'x'], { code: 1 });
    await step(['role', 'grant-permission', 'r2', 'read', '', '--prefix']);
    for (const format of ['simple', 'json', 'fields']) await step(['role', 'get', 'r1', '-w', format]);
    await step(['role', 'get', 'r1', '-w', 'table'], { code: 4 });
    await step(['role', 'get', 'nosuch'], { code: 1 });
    const protos = await step(['role', 'get', 'r2', '-w', 'protobuf'], { binary: true });
    const decoded = protos.map((p) => AuthRoleGetResponse.decode(p.stdout));
    for (const d of decoded) {
      assert.deepEqual(
        d.perm.map((p) => [p.permType, Buffer.from(p.key).toString('hex'), Buffer.from(p.rangeEnd).toString('hex')]),
        [[0, '00', '00']],
        'an empty key with --prefix is every key',
      );
      assert.equal(d.header?.revision, decoded[0]!.header?.revision);
    }
    await step(['user', 'grant-role', 'u1', 'r1']);
    await step(['user', 'grant-role', 'u1', 'r1']);
    await step(['user', 'grant-role', 'u1', 'nosuch'], { code: 1 });
    await step(['user', 'grant-role', 'nosuch', 'r1'], { code: 1 });
    await step(['user', 'revoke-role', 'u2', 'r1'], { code: 1 });
    for (const format of ['simple', 'json']) await step(['user', 'get', 'u1', '-w', format]);
    await step(['user', 'get', 'u1', '-w', 'fields'], { code: 4 });
    await step(['user', 'get', 'u1', '--detail']);
    await step(['user', 'get', 'nobody'], { code: 1 });
    for (const format of ['simple', 'json']) await step(['user', 'list', '-w', format]);
    for (const format of ['simple', 'json', 'fields']) await step(['role', 'list', '-w', format]);
    await step(['put', 'foo', 'bar']);
  });

  test('auth on: credentials, permissions, refusals', async () => {
    // root has no root role yet: etcdctl adds the role and grants it, then enables.
    await step(['auth', 'enable']);
    await step(['get', 'foo'], { code: 1 });
    await step([...u1, 'get', 'foo']);
    await step(['--user', 'u1:wrong', 'get', 'foo'], { code: 2 });
    await step(['--user', 'cn-only:x', 'get', 'foo'], { code: 2 });
    await step(['--user', 'ghost:x', 'get', 'foo'], { code: 2 });
    await step([...u1, 'put', 'foo', 'baz']);
    await step([...u1, 'put', 'pre/x', '1']);
    await step([...u1, 'get', 'bar'], { code: 1 });
    await step([...u1, 'put', 'b', '1', '--prev-kv'], { code: 1 });
    await step([...u1, 'del', 'b', '--prev-kv'], { code: 1 });
    await step([...u1, 'del', 'b']);
    await step([...u1, 'get', 'k', '--from-key']);
    await step([...u1, 'get', 'foo', '-w', 'json']);
    await step(['--user', 'u2:p2', 'get', 'foo'], { code: 1 });
    await step([...u1, 'watch', 'bar'], { code: 5, toolReason: true });
    await step([...u1, 'member', 'list']);
    await step([...u1, 'user', 'list'], { code: 1 });
    await step([...u1, 'user', 'get', 'u1']);
    await step([...u1, 'user', 'get', 'root'], { code: 1 });
    await step([...u1, 'role', 'get', 'r1']);
    await step([...u1, 'role', 'get', 'r2'], { code: 1 });
    await step([...u1, 'user', 'add', 'mallory:m'], { code: 1 });
    await step([...u1, 'auth', 'disable'], { code: 1 });
    await step([...root, 'user', 'list']);
    await step([...root, 'user', 'delete', 'root'], { code: 1 });
    await step([...root, 'user', 'revoke-role', 'root', 'root'], { code: 1 });
    await step([...root, 'role', 'delete', 'root'], { code: 1 });
    await step([...root, 'auth', 'enable']);
  });

  test('changes while auth is on, then auth off', async () => {
    await step([...root, 'role', 'revoke-permission', 'r1', 'foo']);
    await step([...root, 'role', 'revoke-permission', 'r1', 'foo'], { code: 1 });
    await step([...root, 'role', 'revoke-permission', 'r1', 'pre/', '--prefix']);
    await step([...root, 'role', 'revoke-permission', 'r1', 'k', '--from-key']);
    await step([...u1, 'get', 'foo'], { code: 1 });
    await step([...root, 'user', 'passwd', 'u1', '--interactive=false'], { input: 'newpw\n' });
    await step([...u1, 'put', 'a1', 'x'], { code: 2 });
    await step(['--user', 'u1:newpw', 'put', 'a1', 'x']);
    await step([...root, 'user', 'revoke-role', 'u1', 'r1']);
    await step(['--user', 'u1:newpw', 'put', 'a1', 'y'], { code: 1 });
    await step([...root, 'role', 'delete', 'r1']);
    await step([...root, 'role', 'delete', 'r1'], { code: 1 });
    await step([...root, 'user', 'delete', 'u2']);
    await step([...root, 'user', 'delete', 'u2'], { code: 1 });
    await step([...root, 'user', 'get', 'u1']);
    await step([...root, 'get', 'a1']);
    await step([...root, 'auth', 'disable']);
    await step(['get', 'a1']);
    await step(['auth', 'disable']);
    // `auth status` is etcdctl 3.5's: etcdctl-ts alone.
    const status = await etcdctlTs([`--endpoints=${tool.member.endpoint}`, 'auth', 'status']);
    assert.equal(status.code, 0, status.stderr.toString());
    const revision = /^Authentication Status: false\nAuthRevision: (\d+)\n$/.exec(status.stdout.toString());
    assert.ok(revision !== null, status.stdout.toString());
    const json = await etcdctlTs([`--endpoints=${tool.member.endpoint}`, 'auth', 'status', '-w', 'json']);
    const parsed = JSON.parse(json.stdout.toString()) as { enabled?: boolean; authRevision?: number };
    assert.deepEqual([parsed.enabled, parsed.authRevision], [undefined, Number(revision[1])]);
    await step(['user', 'delete', 'root']);
  });
});
