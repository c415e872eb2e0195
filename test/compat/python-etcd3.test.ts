/**
 * python3-etcd3, a gRPC client (Debian package), against etcd-ts and against the real etcd,
 * driven by test/compat/python_etcd3_client.py: put and get with their metadata, prefixes,
 * ranges and every sort, deletes, transactions, leases (and one expiring on its own), watches
 * (iterators, callbacks, history, watch_once), locks, members and status, compaction, sizes,
 * concurrent calls, alarms and the errors python-etcd3 raises. Both transcripts must be equal;
 * the script replaces what legitimately differs (ids, raft terms, the version's minor).
 *
 * What python-etcd3 0.12.0 itself gets wrong happens identically against both servers and stays
 * in the transcripts as it is: its Lock's retry `wait` has the signature of an older tenacity
 * (a TypeError once the lock is held elsewhere), watch_once on a compacted revision reaches for
 * `.events` on the error (an AttributeError), and get/get_range drop `revision` and `limit`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { ensurePythonModule, PYTHON } from '../helpers/debian-python.ts';
import { Member, MemberKind } from '../helpers/member.ts';

const SCRIPT = fileURLToPath(new URL('./python_etcd3_client.py', import.meta.url));
const SCRIPT_TIMEOUT_MS = 60_000;
const SUITE_TIMEOUT_MS = 150_000;
const STDOUT_BYTES_MAX = 16 * 1024 * 1024;

type Transcript = Record<string, unknown>;

function runScript(member: Member): Promise<Transcript> {
  const args = [SCRIPT, '127.0.0.1', String(member.clientPort), member.name];
  return new Promise((resolve, reject) => {
    execFile(PYTHON, args, { timeout: SCRIPT_TIMEOUT_MS, maxBuffer: STDOUT_BYTES_MAX }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`python-etcd3 script against ${member.kind} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as Transcript);
    });
  });
}

/** The entries of `transcript` named in `keys`, so a failure shows only the steps that differ. */
function pick(transcript: Transcript, keys: readonly string[]): Transcript {
  return Object.fromEntries(keys.map((key) => [key, transcript[key]]));
}

describe('python3-etcd3', { timeout: SUITE_TIMEOUT_MS }, () => {
  let etcd: Member;
  let ours: Member;
  let theirs: Transcript;
  let mine: Transcript;

  before(async () => {
    ensurePythonModule('etcd3', 'python3-etcd3');
    [etcd, ours] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'py3-etcd' }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'py3-ours' }),
    ]);
    [theirs, mine] = await Promise.all([runScript(etcd), runScript(ours)]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test('the same calls give the same results as against etcd', () => {
    const steps = [...new Set([...Object.keys(theirs), ...Object.keys(mine)])].sort();
    const differing = steps.filter((step) => !isDeepStrictEqual(mine[step], theirs[step]));
    assert.deepEqual(pick(mine, differing), pick(theirs, differing));
    assert.ok(steps.length > 100, `only ${steps.length} steps in the transcript`);
  });

  // Equal transcripts could still be equally broken (both servers unreachable, say): these are
  // what the calls must have done.
  test('the transcript shows the calls working', () => {
    assert.deepEqual(mine.get, [
      'baz',
      { key: 'foo', create_revision: 2, mod_revision: 3, version: 2, lease: 0, header_revision: 3 },
    ]);
    assert.deepEqual(mine.get_prefix_descend_value, ['sort/a', 'sort/c', 'sort/b', 'sort/d']);
    assert.equal(mine.replace_right, true);
    assert.equal(mine.replace_wrong, false);
    assert.deepEqual(mine.lease_keys, ['lease/a', 'lease/b']);
    assert.equal(mine.lease_short_ttl, 2);
    assert.equal(mine.lease_short_expired, true);
    assert.deepEqual(mine.lease_put_revoked, {
      error: '_InactiveRpcError',
      code: 'NOT_FOUND',
      details: 'etcdserver: requested lease not found',
    });
    assert.deepEqual(mine.lease_explicit_id_again, { error: 'PreconditionFailedError', message: '' });
    assert.equal((mine.watch as { events: unknown[] }).events.length, 3);
    assert.equal((mine.watch_history as { events: unknown[] }).events.length, 9);
    assert.equal((mine.watch_once as { value: string }).value, 'fired');
    assert.equal((mine.watch_once_timeout as { error: string }).error, 'WatchTimedOut');
    assert.equal(mine.lock_acquire, true);
    assert.equal(mine.lock_other_acquire_after_release, true);
    assert.deepEqual(mine.watch_compacted, {
      events: [],
      failure: { error: 'RevisionCompactedError', message: '', compacted_revision: mine.compact_revision },
      ended_on_cancel: true,
    });
    assert.deepEqual(mine.compact_again, {
      error: '_InactiveRpcError',
      code: 'OUT_OF_RANGE',
      details: 'etcdserver: mvcc: required revision has been compacted',
    });
    assert.equal(mine.large_get, true);
    assert.equal(mine.concurrent_count, 200);
    assert.deepEqual(mine.status_raft_index_steps, [0, 1]);
    assert.equal(mine.many_watches_count, 100);
  });
});
