/**
 * Locks and elections as etcd's v3lock and v3election services build them: on keys under a
 * prefix, attached to the caller's lease and ordered by create revision. The holder (or leader)
 * is the key with the lowest create revision; a waiter waits for every key created before its
 * own to be deleted.
 *
 * etcd runs these services on a client of its own server, so every error reaches the caller as
 * a plain error: gRPC status UNKNOWN with the message (`etcdserver: requested lease not found`,
 * `election: no leader`...). Every error of this module is a ConcurrencyError for that reason.
 */
import {
  type CampaignRequest,
  type CampaignResponse,
  Compare_CompareResult,
  Compare_CompareTarget,
  type KeyValue,
  type LeaderKey,
  type LeaderResponse,
  type LockRequest,
  type LockResponse,
  type ProclaimResponse,
  RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RequestOp,
  type ResignResponse,
  type ResponseHeader,
  type TxnResponse,
  type UnlockResponse,
} from '../proto/index.ts';
import type { EtcdServer } from './server.ts';

/** The lease etcd's services grant for a Lock or Campaign without one (concurrency's default session TTL). */
export const SESSION_TTL_SEC = 60;

export const ConcurrencyErrorCode = {
  /** Proclaim by a candidate that does not hold the election. */
  NotLeader: 'ELECTION_NOT_LEADER',
  /** Nobody holds the election. */
  NoLeader: 'ELECTION_NO_LEADER',
  MissingLeaderKey: 'ELECTION_MISSING_LEADER_KEY',
  /** The waiter's key (and so its lease) was gone when its turn came. */
  SessionExpired: 'SESSION_EXPIRED',
  /** A request the service made failed; `cause` holds the server's error. */
  RequestFailed: 'CONCURRENCY_REQUEST_FAILED',
} as const;
export type ConcurrencyErrorCode = (typeof ConcurrencyErrorCode)[keyof typeof ConcurrencyErrorCode];

const MESSAGES: Readonly<Record<Exclude<ConcurrencyErrorCode, 'CONCURRENCY_REQUEST_FAILED'>, string>> = {
  ELECTION_NOT_LEADER: 'election: not leader',
  ELECTION_NO_LEADER: 'election: no leader',
  ELECTION_MISSING_LEADER_KEY: '"leader" field must be provided',
  SESSION_EXPIRED: 'session expired',
};

/** An error of the Lock or Election service; its code is not a gRPC one, so it answers UNKNOWN. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  readonly code: ConcurrencyErrorCode;

  constructor(code: ConcurrencyErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? (code === ConcurrencyErrorCode.RequestFailed ? 'request failed' : MESSAGES[code]), options);
    this.code = code;
  }
}

/** Runs one service call; errors of the requests it makes become ConcurrencyErrors with their message. */
async function serviceCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConcurrencyError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new ConcurrencyError(ConcurrencyErrorCode.RequestFailed, message, { cause: err });
  }
}

const EMPTY = new Uint8Array(0);

/** The end of the range of every key that starts with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Uint8Array.of(0); // no upper bound
}

function withSlash(name: Uint8Array): Uint8Array {
  return Buffer.concat([name, Buffer.from('/')]);
}

function leaseKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

function rangeOp(key: Uint8Array, opts: Partial<RangeRequest> = {}): RequestOp {
  return { request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key, ...opts }) } };
}

function firstCreated(prefix: Uint8Array): RequestOp {
  return rangeOp(prefix, {
    rangeEnd: prefixEnd(prefix),
    limit: 1n,
    sortOrder: RangeRequest_SortOrder.ASCEND,
    sortTarget: RangeRequest_SortTarget.CREATE,
  });
}

function rangeKvs(resp: TxnResponse, i: number): KeyValue[] {
  const r = resp.responses[i]?.response;
  return r?.$case === 'responseRange' ? r.value.kvs : [];
}

export class Concurrency {
  private readonly server: EtcdServer;

  constructor(server: EtcdServer) {
    this.server = server;
  }

  /** Creates (or finds) the caller's key under `prefix`; returns its create revision and the first key. */
  private async enqueue(
    prefix: Uint8Array,
    key: Uint8Array,
    value: Uint8Array,
    lease: bigint,
  ): Promise<{ rev: number; existing: KeyValue | undefined; header: ResponseHeader; owner: KeyValue | undefined }> {
    const resp = await this.server.txn({
      compare: [
        {
          result: Compare_CompareResult.EQUAL,
          target: Compare_CompareTarget.CREATE,
          key,
          targetUnion: { $case: 'createRevision', value: 0n },
          rangeEnd: EMPTY,
        },
      ],
      success: [
        {
          request: {
            $case: 'requestPut',
            value: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false },
          },
        },
        firstCreated(prefix),
      ],
      failure: [rangeOp(key), firstCreated(prefix)],
    });
    const header = resp.header!;
    let rev = Number(header.revision);
    let existing: KeyValue | undefined;
    if (!resp.succeeded) {
      existing = rangeKvs(resp, 0)[0];
      rev = Number(existing?.createRevision ?? 0n);
    }
    return { rev, existing, header, owner: rangeKvs(resp, 1)[0] };
  }

  /** Waits until no key under `prefix` has a create revision at or below `maxCreateRev`. */
  private async waitDeletes(prefix: Uint8Array, maxCreateRev: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const resp = await this.server.range(
        RangeRequest.fromPartial({
          key: prefix,
          rangeEnd: prefixEnd(prefix),
          limit: 1n,
          sortOrder: RangeRequest_SortOrder.DESCEND,
          sortTarget: RangeRequest_SortTarget.CREATE,
          maxCreateRevision: BigInt(maxCreateRev),
        }),
      );
      const last = resp.kvs[0];
      if (last === undefined) return;
      await this.server.waitDeleted(last.key, Number(resp.header!.revision) + 1, signal);
    }
  }

  /** etcd's services take lease 0 as "no session yet": they grant one of SESSION_TTL_SEC, never kept alive. */
  private async sessionLease(lease: bigint): Promise<bigint> {
    if (lease !== 0n) return lease;
    const granted = await this.server.leaseGrant({ ID: 0n, TTL: BigInt(SESSION_TTL_SEC) });
    return granted.ID;
  }

  lock(req: LockRequest, signal?: AbortSignal): Promise<LockResponse> {
    return serviceCall(async () => {
      const lease = await this.sessionLease(req.lease);
      const prefix = withSlash(req.name);
      const key = leaseKey(prefix, lease);
      const { rev, header, owner } = await this.enqueue(prefix, key, EMPTY, lease);
      if (owner === undefined || Number(owner.createRevision) === rev) return { header, key };
      try {
        await this.waitDeletes(prefix, rev - 1, signal);
      } catch (err) {
        // Give the place in the queue back: a lock that was not acquired must not block others.
        await this.server.deleteRange({ key, rangeEnd: EMPTY, prevKv: false }).catch(() => {});
        throw err;
      }
      // Every key before ours is gone; ours must still be there (etcd 3.5): if its lease expired
      // while it waited, the caller does not hold the lock.
      const mine = await this.server.range(RangeRequest.fromPartial({ key }));
      if (mine.kvs.length === 0) throw new ConcurrencyError(ConcurrencyErrorCode.SessionExpired);
      return { header: mine.header, key };
    });
  }

  unlock(key: Uint8Array): Promise<UnlockResponse> {
    return serviceCall(async () => {
      const resp = await this.server.deleteRange({ key, rangeEnd: EMPTY, prevKv: false });
      return { header: resp.header };
    });
  }

  campaign(req: CampaignRequest, signal?: AbortSignal): Promise<CampaignResponse> {
    return serviceCall(async () => {
      const lease = await this.sessionLease(req.lease);
      const prefix = withSlash(req.name);
      const key = leaseKey(prefix, lease);
      const { rev, existing, header } = await this.enqueue(prefix, key, req.value, lease);
      const leader: LeaderKey = { name: req.name, key, rev: BigInt(rev), lease };
      if (existing !== undefined && Buffer.compare(existing.value, req.value) !== 0) {
        await this.proclaim(leader, req.value);
      }
      try {
        await this.waitDeletes(prefix, rev - 1, signal);
      } catch (err) {
        await this.server.deleteRange({ key, rangeEnd: EMPTY, prevKv: false }).catch(() => {});
        throw err;
      }
      // etcd answers with the header of the campaign's own transaction, not of the wait.
      return { header, leader };
    });
  }

  proclaim(leader: LeaderKey | undefined, value: Uint8Array): Promise<ProclaimResponse> {
    return serviceCall(() => this.proclaimAs(leader, value));
  }

  private async proclaimAs(leader: LeaderKey | undefined, value: Uint8Array): Promise<ProclaimResponse> {
    if (leader === undefined) throw new ConcurrencyError(ConcurrencyErrorCode.MissingLeaderKey);
    const resp = await this.server.txn({
      compare: [
        {
          result: Compare_CompareResult.EQUAL,
          target: Compare_CompareTarget.CREATE,
          key: leader.key,
          targetUnion: { $case: 'createRevision', value: leader.rev },
          rangeEnd: EMPTY,
        },
      ],
      success: [
        {
          request: {
            $case: 'requestPut',
            value: {
              key: leader.key,
              value,
              lease: leader.lease,
              prevKv: false,
              ignoreValue: false,
              ignoreLease: false,
            },
          },
        },
      ],
      failure: [],
    });
    if (!resp.succeeded) throw new ConcurrencyError(ConcurrencyErrorCode.NotLeader);
    return { header: resp.header };
  }

  resign(leader: LeaderKey | undefined): Promise<ResignResponse> {
    return serviceCall(() => this.resignAs(leader));
  }

  private async resignAs(leader: LeaderKey | undefined): Promise<ResignResponse> {
    if (leader === undefined) throw new ConcurrencyError(ConcurrencyErrorCode.MissingLeaderKey);
    const resp = await this.server.txn({
      compare: [
        {
          result: Compare_CompareResult.EQUAL,
          target: Compare_CompareTarget.CREATE,
          key: leader.key,
          targetUnion: { $case: 'createRevision', value: leader.rev },
          rangeEnd: EMPTY,
        },
      ],
      success: [
        { request: { $case: 'requestDeleteRange', value: { key: leader.key, rangeEnd: EMPTY, prevKv: false } } },
      ],
      failure: [],
    });
    return { header: resp.header };
  }

  leader(name: Uint8Array): Promise<LeaderResponse> {
    return serviceCall(() => this.currentLeader(name));
  }

  private async currentLeader(name: Uint8Array): Promise<LeaderResponse> {
    const prefix = withSlash(name);
    const resp = await this.server.range(
      RangeRequest.fromPartial({
        key: prefix,
        rangeEnd: prefixEnd(prefix),
        limit: 1n,
        sortOrder: RangeRequest_SortOrder.ASCEND,
        sortTarget: RangeRequest_SortTarget.CREATE,
      }),
    );
    const kv = resp.kvs[0];
    if (kv === undefined) throw new ConcurrencyError(ConcurrencyErrorCode.NoLeader);
    return { header: resp.header, kv };
  }

  /** Streams the leader: now, and after every change of its value or of who leads. */
  observe(name: Uint8Array, send: (resp: LeaderResponse) => Promise<void>, signal: AbortSignal): Promise<void> {
    return serviceCall(() => this.observeLeader(name, send, signal));
  }

  private async observeLeader(
    name: Uint8Array,
    send: (resp: LeaderResponse) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    let last: KeyValue | undefined;
    while (!signal.aborted) {
      let current: LeaderResponse | undefined;
      try {
        current = await this.currentLeader(name);
      } catch (err) {
        if (!(err instanceof ConcurrencyError && err.code === ConcurrencyErrorCode.NoLeader)) throw err;
      }
      const kv = current?.kv;
      const changed =
        kv !== undefined &&
        (last === undefined || Buffer.compare(last.key, kv.key) !== 0 || last.modRevision !== kv.modRevision);
      if (changed && current !== undefined) {
        await send(current);
        last = kv;
      }
      const from = Number(current?.header?.revision ?? BigInt(this.server.store.rev())) + 1;
      const prefix = withSlash(name);
      await this.server.waitChange(prefix, prefixEnd(prefix), from, signal);
    }
  }
}
