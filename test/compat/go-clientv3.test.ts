/**
 * etcd's own Go client library, clientv3 and clientv3/concurrency of etcd 3.4 (Debian's
 * golang-etcd-server-dev, the library Kubernetes and most service-discovery code call), against
 * the real etcd and against etcd-ts. test/compat/go-clientv3/main.go is built once (and cached)
 * from Debian's sources in GOPATH mode, runs on each server and prints one line per step: KV
 * reads with every option (sort, limit, ranges, revisions, min/max revisions, keys/count only),
 * puts and deletes with previous values and ignore flags, transactions with every compare target
 * (nested, duplicate keys, too many ops), compaction, leases (keep-alives, TTLs, revoke, expiry),
 * watches (history, filters, previous values, created and progress notifications, compacted
 * revisions, cancel), sessions, mutexes, elections and STM, maintenance and cluster calls, auth,
 * and the errors clientv3 surfaces. The two transcripts must be equal line by line.
 *
 * The program prints only what must be equal on two servers: revisions relative to the one it
 * reads first, lease ids numbered in order, remaining TTLs as "within the granted TTL"; never
 * ids, raft terms, sizes, hashes or versions.
 *
 * `COMPAT_TARGET=etcd` runs the program against two real etcds, to prove the test itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildGoProgram, ensureGoClientv3 } from '../helpers/debian-go.ts';
import { compatTarget, Member, MemberKind } from '../helpers/member.ts';

const PROGRAM_DIR = fileURLToPath(new URL('./go-clientv3/', import.meta.url));
/** apt-get on a fresh machine and a build with an empty Go cache take minutes; both are bounded. */
const SETUP_TIMEOUT_MS = 900_000;
const SUITE_TIMEOUT_MS = 1_000_000;
/** The program takes about 5 s (mostly a lease left to expire); every call in it has a deadline. */
const PROGRAM_TIMEOUT_MS = 60_000;
const STDOUT_BYTES_MAX = 16 * 1024 * 1024;
/** Both members carry the same name, so that member lists compare. */
const MEMBER_NAME = 'go-clientv3';

/** A transcript: step name → result, in the order the program printed them. */
type Transcript = Map<string, string>;

function runProgram(binary: string, member: Member): Promise<Transcript> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      [member.endpoint],
      { timeout: PROGRAM_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: STDOUT_BYTES_MAX },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`go-clientv3 against ${member.kind} failed: ${err.message}\n${stdout}\n${stderr}`));
          return;
        }
        const transcript: Transcript = new Map();
        for (const line of stdout.split('\n')) {
          if (line === '') continue;
          const at = line.indexOf(' | ');
          assert.ok(at > 0, `not a transcript line: ${line}`);
          const step = line.slice(0, at);
          assert.ok(!transcript.has(step), `step ${step} printed twice`);
          transcript.set(step, line.slice(at + 3));
        }
        resolve(transcript);
      },
    );
  });
}

/** The steps of both transcripts, in order. */
function allSteps(...transcripts: Transcript[]): string[] {
  const steps = new Set<string>();
  for (const transcript of transcripts) for (const step of transcript.keys()) steps.add(step);
  return [...steps];
}

/** The lines of `transcript` for `steps`, so that a failure shows only the steps that differ. */
function lines(transcript: Transcript, steps: readonly string[]): string[] {
  return steps.map((step) => `${step} | ${transcript.get(step) ?? '<missing>'}`);
}

describe(`go clientv3 (etcd vs ${compatTarget()})`, { timeout: SUITE_TIMEOUT_MS }, () => {
  const members: Member[] = [];
  let theirs: Transcript;
  let mine: Transcript;

  before(
    async () => {
      ensureGoClientv3();
      const binary = buildGoProgram(PROGRAM_DIR);
      const started = await Promise.allSettled([
        Member.start({ kind: MemberKind.ETCD, name: MEMBER_NAME }),
        Member.start({ kind: compatTarget(), name: MEMBER_NAME }),
      ]);
      for (const s of started) if (s.status === 'fulfilled') members.push(s.value);
      const failure = started.find((s) => s.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
      const [reference, target] = members as [Member, Member];
      // Both runs end before either's failure is reported.
      const runs = await Promise.allSettled([runProgram(binary, reference), runProgram(binary, target)]);
      [theirs, mine] = runs.map((run) => {
        if (run.status === 'rejected') throw run.reason;
        return run.value;
      }) as [Transcript, Transcript];
    },
    { timeout: SETUP_TIMEOUT_MS },
  );
  after(async () => {
    await Promise.all(members.map((member) => member.stop()));
  });

  test('the same calls give the same transcript as against etcd', () => {
    const steps = allSteps(theirs, mine);
    const differing = steps.filter((step) => mine.get(step) !== theirs.get(step));
    assert.deepStrictEqual(lines(mine, differing), lines(theirs, differing));
    // The same steps in the same order.
    assert.deepStrictEqual([...mine.keys()], [...theirs.keys()]);
    assert.ok(theirs.size > 200, `only ${theirs.size} steps in the transcript`);
  });

  // Equal transcripts could still be equally broken: these are what some calls must have done.
  test('the transcript shows the calls working', () => {
    const expected: [string, string | RegExp][] = [
      ['kv.get', 'rev=+1 count=1 more=false kvs=[kv/a="1" c=+1 m=+1 v=1 l=0]'],
      ['kv.get.prefix.limit', /^rev=\+\d+ count=5 more=true kvs=\[kv\/a="2" .*, kv\/b="u" .*\]$/],
      ['kv.get.sort.value.descend', '[kv/d kv/c kv/e kv/b kv/a]'],
      ['kv.put.ignore-value.missing', 'error code=InvalidArgument "etcdserver: key not found"'],
      ['txn.value.eq', /^succeeded=true .*put\(prev=txn\/a="1"/],
      ['txn.lease', /^succeeded=true .*txn\/l="leased" .* l=lease-1\]/],
      ['txn.duplicate-put', 'error code=InvalidArgument "etcdserver: duplicate key given in txn request"'],
      ['txn.max-ops', /^succeeded=true rev=\+\d+ \[put\(prev=nil\) x128\]$/],
      ['txn.too-many-ops', 'error code=InvalidArgument "etcdserver: too many operations in txn request"'],
      ['compact.get.compacted', 'error code=OutOfRange "etcdserver: mvcc: required revision has been compacted"'],
      ['compact.watch', /^error code=OutOfRange .* compact=\+7 canceled=true events=0$/],
      ['lease.ttl.keys', 'lease=lease-2 granted=60 ttl=within-3s-of-granted keys=[lease/a lease/b]'],
      ['lease.get.after-revoke', /^rev=\+\d+ count=1 more=false kvs=\[lease\/c="3b" .* l=0\]$/],
      ['lease.revoke.unknown', 'error code=NotFound "etcdserver: requested lease not found"'],
      ['lease.get.after-detach', /lease\/a="1b" .* l=lease-2, .*lease\/c="3b" .* l=0\]$/],
      ['lease.short.expired', 'true'],
      ['watch.history', /^PUT watch\/a="1" .*; PUT watch\/a="2" .*; DELETE watch\/a="" .*; PUT watch\/b="1" /],
      ['watch.live.created', /^created=true events=0 /],
      ['watch.future', /^PUT watch\/future="2" .*; PUT watch\/future="3" /],
      ['watch.progress.notify', /^progress=true events=0 /],
      ['mutex.order', '1 locked, 1 unlocking, 2 locked'],
      ['election.leader.2', 'value="v3" lease=lease-6'],
      ['stm', /^attempts=2 succeeded=true /],
      ['snapshot', 'size>0=true ok'],
      ['member.list', /^members=1 \[name=go-clientv3 client-urls=1 peer-urls=1 learner=false\]$/],
      ['member.list.after-remove', 'members=1'],
      ['error.too-large', 'error code=InvalidArgument "etcdserver: request is too large"'],
      ['auth.alice.put.allowed', /^rev=\+\d+ prev=nil$/],
      ['auth.alice.put.denied', 'error code=PermissionDenied "etcdserver: permission denied"'],
      ['auth.alice.put.granted', /^rev=\+\d+ prev=nil$/],
      ['auth.alice.put.revoked', 'error code=PermissionDenied "etcdserver: permission denied"'],
      [
        'auth.wrong-password',
        'error code=InvalidArgument "etcdserver: authentication failed, invalid user ID or password"',
      ],
      ['auth.disable', 'ok'],
      ['auth.disabled.put', /^rev=\+\d+ prev=nil$/],
    ];
    for (const transcript of [theirs, mine]) {
      for (const [step, want] of expected) {
        const got = transcript.get(step);
        if (typeof want === 'string') assert.equal(got, want, step);
        else assert.match(got ?? '<missing>', want, step);
      }
      assert.equal(transcript.get('end'), `${transcript.size} steps`);
    }
  });
});
