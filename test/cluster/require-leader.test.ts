/**
 * Calls that require a leader (gRPC metadata `hasleader: true`, clientv3's WithRequireLeader,
 * which `etcdctl watch` uses), on a member that loses both its peers, against the real etcd and
 * against etcd-ts alike:
 *
 * - a watch opened while there was a leader is ended by the member a few election timeouts
 *   after the leader is gone: etcdctl prints `watch was canceled (etcdserver: no leader)` and
 *   exits 5;
 * - a watch opened while there is no leader is refused at once, the same way;
 * - a unary call with the metadata is refused with UNAVAILABLE `etcdserver: no leader`; the same
 *   call without it (a serializable read) is served.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { GrpcCallError } from '../../src/client/channel.ts';
import { KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { Cluster, MemberKind, waitFor } from '../helpers/cluster.ts';
import { EtcdctlProcess } from '../helpers/etcdctl.ts';

const GRPC_UNAVAILABLE = 14;
/** etcdctl's exit code for a watch the server cancelled. */
const ETCDCTL_WATCH_CANCELLED_EXIT = 5;
const CANCEL_MESSAGE = 'watch was canceled (etcdserver: no leader)';
/** Default --election-timeout: the leader is gone after one, the watch ends after three more. */
const ELECTION_MS = 1_000;
/** The most either server takes to end the watch after its peers die (etcd: ~3-5 s here). */
const WATCH_END_WITHIN_MS = 15_000;

/** Resolves with the exit code of `ctl` and when it exited; rejects after `ms`. */
async function exitWithin(ctl: EtcdctlProcess, ms: number): Promise<{ code: number | null; atMs: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`etcdctl still running after ${ms} ms: ${output(ctl)}`)), ms);
  });
  try {
    return await Promise.race([ctl.exited.then((code) => ({ code, atMs: Date.now() })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function output(ctl: EtcdctlProcess): string {
  return ctl.stdout + ctl.stderr;
}

for (const kind of [MemberKind.ETCD, MemberKind.ETCD_TS]) {
  describe(`calls that require a leader, on a member that lost its peers (${kind})`, { timeout: 90_000 }, () => {
    let cluster: Cluster | undefined;
    after(async () => {
      await EtcdctlProcess.stopAll();
      await cluster?.stop();
    });

    test('watches end with "no leader", unary calls that require one are refused, others served', async () => {
      cluster = await Cluster.start({ kind, size: 3 });
      const [alone, ...others] = cluster.members;
      assert.ok(alone !== undefined && others.length === 2);
      const key = 'require-leader';
      const early = new EtcdctlProcess(alone.endpoint, ['watch', key]);
      // The watch is up once a put shows in it (etcdctl may still be connecting at the first).
      const put = PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from('v1') });
      await waitFor('the watch to see a put', 10_000, async () => {
        await alone.channel.unary(KVService.Put, put, { timeoutMs: 5_000 });
        return output(early).includes('v1') ? true : undefined;
      });

      const lostAtMs = Date.now();
      for (const m of others) await m.kill();
      const ended = await exitWithin(early, WATCH_END_WITHIN_MS);
      assert.equal(ended.code, ETCDCTL_WATCH_CANCELLED_EXIT, output(early));
      assert.ok(output(early).includes(CANCEL_MESSAGE), output(early));
      // Not at the first sign of trouble: the leader is lost after an election timeout, and the
      // watch lasts a few checks more.
      assert.ok(ended.atMs - lostAtMs >= 2 * ELECTION_MS, `ended ${ended.atMs - lostAtMs} ms after the loss`);

      const late = new EtcdctlProcess(alone.endpoint, ['watch', key]);
      const refused = await exitWithin(late, 5_000);
      assert.equal(refused.code, ETCDCTL_WATCH_CANCELLED_EXIT, output(late));
      assert.ok(output(late).includes(CANCEL_MESSAGE), output(late));

      const range = RangeRequest.fromPartial({ key: Buffer.from(key), serializable: true });
      await assert.rejects(
        alone.channel.unary(KVService.Range, range, { timeoutMs: 5_000, metadata: { hasleader: 'true' } }),
        (err: unknown) =>
          err instanceof GrpcCallError && err.code === GRPC_UNAVAILABLE && err.details === 'etcdserver: no leader',
      );
      const served = await alone.channel.unary(KVService.Range, range, { timeoutMs: 5_000 });
      assert.equal(Buffer.from(served.kvs[0]?.value ?? []).toString(), 'v1');
    });
  });
}
