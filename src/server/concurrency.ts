/**
 * Locks and elections as etcd's v3lock and v3election services build them: on keys under a
 * prefix, attached to the caller's lease and ordered by create revision. The holder (or leader)
 * is the key with the lowest create revision; a waiter waits for every key created before its
 * own to be deleted.
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
import { ServerError, ServerErrorCode } from './errors.ts';
import type { EtcdServer } from './server.ts';

export const ELECTION_NOT_LEADER = 'election: not leader';
export const ELECTION_NO_LEADER = 'election: no leader';

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
  private async waitDeletes(prefix: Uint8Array, maxCreateRev: number, signal?: AbortSignal): Promise<ResponseHeader> {
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
      if (last === undefined) return resp.header!;
      await this.server.waitDeleted(last.key, Number(resp.header!.revision) + 1, signal);
    }
  }

  async lock(req: LockRequest, signal?: AbortSignal): Promise<LockResponse> {
    const prefix = withSlash(req.name);
    const key = leaseKey(prefix, req.lease);
    const { rev, header, owner } = await this.enqueue(prefix, key, EMPTY, req.lease);
    if (owner === undefined || Number(owner.createRevision) === rev) return { header, key };
    try {
      const h = await this.waitDeletes(prefix, rev - 1, signal);
      return { header: h, key };
    } catch (err) {
      // Give the place in the queue back: a lock that was not acquired must not block others.
      await this.server.deleteRange({ key, rangeEnd: EMPTY, prevKv: false }).catch(() => {});
      throw err;
    }
  }

  async unlock(key: Uint8Array): Promise<UnlockResponse> {
    const resp = await this.server.deleteRange({ key, rangeEnd: EMPTY, prevKv: false });
    return { header: resp.header };
  }

  async campaign(req: CampaignRequest, signal?: AbortSignal): Promise<CampaignResponse> {
    const prefix = withSlash(req.name);
    const key = leaseKey(prefix, req.lease);
    const { rev, existing, header } = await this.enqueue(prefix, key, req.value, req.lease);
    const leader: LeaderKey = { name: req.name, key, rev: BigInt(rev), lease: req.lease };
    if (existing !== undefined && Buffer.compare(existing.value, req.value) !== 0) {
      await this.proclaim(leader, req.value);
    }
    try {
      const h = await this.waitDeletes(prefix, rev - 1, signal);
      return { header: h ?? header, leader };
    } catch (err) {
      await this.server.deleteRange({ key, rangeEnd: EMPTY, prevKv: false }).catch(() => {});
      throw err;
    }
  }

  async proclaim(leader: LeaderKey | undefined, value: Uint8Array): Promise<ProclaimResponse> {
    if (leader === undefined) throw new ServerError(ServerErrorCode.InvalidArgument, '"leader" field must be provided');
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
    if (!resp.succeeded) throw new ServerError(ServerErrorCode.InvalidArgument, ELECTION_NOT_LEADER);
    return { header: resp.header };
  }

  async resign(leader: LeaderKey | undefined): Promise<ResignResponse> {
    if (leader === undefined) throw new ServerError(ServerErrorCode.InvalidArgument, '"leader" field must be provided');
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

  async leader(name: Uint8Array): Promise<LeaderResponse> {
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
    if (kv === undefined) throw new ServerError(ServerErrorCode.InvalidArgument, ELECTION_NO_LEADER);
    return { header: resp.header, kv };
  }

  /** Streams the leader: now, and after every change of its value or of who leads. */
  async observe(name: Uint8Array, send: (resp: LeaderResponse) => Promise<void>, signal: AbortSignal): Promise<void> {
    let last: KeyValue | undefined;
    while (!signal.aborted) {
      let current: LeaderResponse | undefined;
      try {
        current = await this.leader(name);
      } catch (err) {
        if (!(err instanceof ServerError && err.message === ELECTION_NO_LEADER)) throw err;
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
