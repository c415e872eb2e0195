/**
 * python3-etcd3gw, a grpc-gateway client (Debian package), against etcd-ts and against the real
 * etcd: put, get, create and replace (txns), prefixes, delete, leases (grant, keys, keep-alive,
 * revoke) and watches, driven by test/http/etcd3gw_client.py. Both transcripts must be equal.
 * etcd3gw speaks to `/v3alpha/` by default, which etcd-ts serves (as etcd 3.3 did); etcd 3.4
 * is given `/v3beta/`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensurePythonModule, PYTHON } from '../helpers/debian-python.ts';
import { Member, MemberKind } from '../helpers/member.ts';

const SCRIPT = fileURLToPath(new URL('./etcd3gw_client.py', import.meta.url));
const SCRIPT_TIMEOUT_MS = 60_000;

function runScript(member: Member, apiPath?: string): Promise<Record<string, unknown>> {
  const args = [SCRIPT, '127.0.0.1', String(member.clientPort), ...(apiPath === undefined ? [] : [apiPath])];
  return new Promise((resolve, reject) => {
    execFile(PYTHON, args, { timeout: SCRIPT_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`etcd3gw script against ${member.kind} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

describe('python3-etcd3gw', { timeout: 120_000 }, () => {
  let etcd: Member;
  let ours: Member;

  before(async () => {
    ensurePythonModule('etcd3gw', 'python3-etcd3gw');
    [etcd, ours] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'gw3-etcd' }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'gw3-ours' }),
    ]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test('the same calls give the same results as against etcd', async () => {
    const [theirs, mine] = await Promise.all([runScript(etcd, '/v3beta/'), runScript(ours)]);
    assert.deepEqual(mine, theirs);
    assert.deepEqual(mine.get, ['bar']);
    assert.equal(mine.create_new, true);
    assert.equal(mine.create_existing, false);
    assert.equal(mine.replace_right, true);
    assert.deepEqual(mine.lease_keys, ['leased']);
    assert.equal(mine.lease_refresh, 30);
    assert.equal(mine.lease_ttl_after_revoke, -1);
    assert.deepEqual(mine.leased_after_revoke, []);
    assert.deepEqual(mine.watch, [
      ['PUT', 'watched', 'one'],
      ['PUT', 'watched', 'two'],
      ['DELETE', 'watched', ''],
    ]);
    assert.deepEqual(mine.watch_once, ['once', 'fired']);
  });
});
