import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { compatTarget, Member, MemberKind } from './member.ts';

test('a real etcd member: ready on start, data kept across SIGKILL and restart, all removed by stop', {
  timeout: 30_000,
}, async () => {
  const member = await Member.start({ kind: MemberKind.ETCD, name: 'helper' });
  try {
    assert.ok(member.running && existsSync(member.dataDir));
    assert.match(member.endpoint, /^127\.0\.0\.1:\d+$/);
    const put = PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') });
    await member.channel.unary(KVService.Put, put, { timeoutMs: 5000 });
    const pid = member.pid;
    await member.kill('SIGKILL');
    assert.equal(member.running, false);
    await member.restart();
    assert.notEqual(member.pid, pid);
    const read = await member.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('k') }), {
      timeoutMs: 5000,
    });
    assert.equal(Buffer.from(read.kvs[0]?.value ?? []).toString(), 'v');
  } finally {
    await member.stop();
  }
  assert.equal(member.running, false);
  assert.equal(existsSync(member.dataDir), false);
  await assert.rejects(member.restart(), /was stopped/);
});

test('a member that cannot start fails at once, with what the process printed', {
  timeout: 30_000,
}, async () => {
  await assert.rejects(
    Member.start({ kind: MemberKind.ETCD, extraArgs: ['--no-such-flag'], readyTimeoutMs: 5000 }),
    /exited .* before it was ready:.*no-such-flag/s,
  );
});

test('COMPAT_TARGET chooses the server under test', () => {
  const saved = process.env.COMPAT_TARGET;
  try {
    delete process.env.COMPAT_TARGET;
    assert.equal(compatTarget(), MemberKind.ETCD_TS);
    process.env.COMPAT_TARGET = 'etcd';
    assert.equal(compatTarget(), MemberKind.ETCD);
    process.env.COMPAT_TARGET = 'consul';
    assert.throws(() => compatTarget(), /COMPAT_TARGET must be/);
  } finally {
    if (saved === undefined) delete process.env.COMPAT_TARGET;
    else process.env.COMPAT_TARGET = saved;
  }
});
