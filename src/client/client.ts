/**
 * The etcd client: KV, transactions and STM, watches, leases, locks, elections, service
 * registration and discovery, cluster membership and maintenance, over one set of endpoints.
 *
 *   const client = new Client({ endpoints: ['127.0.0.1:2379'] });
 *   await client.put('greeting', 'hello');
 *   const value = await client.getString('greeting');
 *   client.close();
 */
import {
  AlarmRequest_AlarmAction,
  AlarmType,
  ClusterService,
  KVService,
  LeaseService,
  MaintenanceService,
  type Member,
  type TxnRequest,
} from '../proto/index.ts';
import type { Bytes } from './bytes.ts';
import { toInt64, view } from './bytes.ts';
import { type CallOptions, ClientCore, type ClientOptions } from './core.ts';
import { Election, type ElectionOptions } from './election.ts';
import {
  type DeleteOptions,
  type DeleteResult,
  deleteRequest,
  deleteResult,
  type GetOptions,
  type GetResult,
  getResult,
  header,
  type KeyValue,
  type PutOptions,
  type PutResult,
  putRequest,
  putResult,
  type ResponseHeader,
  rangeRequest,
} from './kv.ts';
import { type KeepAliveResult, Lease, type LeaseInfo, LeaseKeeper } from './lease.ts';
import { acquireLock, type Lock, type LockOptions } from './lock.ts';
import { Discovery, type DiscoveryOptions, type RegisterOptions, Registration } from './registry.ts';
import { runStm, type StmOptions, type StmTx } from './stm.ts';
import { Txn } from './txn.ts';
import { type WatchBatch, type Watcher, WatchManager, type WatchOptions } from './watch.ts';

export interface GrantOptions extends CallOptions {
  /** Ask for this lease id (0n: the server chooses). */
  id?: bigint;
}

export interface MemberInfo {
  id: bigint;
  /** Empty for a member that was added but has not started. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface MemberListResult {
  header: ResponseHeader;
  members: MemberInfo[];
}

export interface MemberAddResult {
  header: ResponseHeader;
  member: MemberInfo;
  members: MemberInfo[];
}

export interface StatusResult {
  header: ResponseHeader;
  version: string;
  dbSize: bigint;
  dbSizeInUse: bigint;
  leader: bigint;
  raftIndex: bigint;
  raftTerm: bigint;
  raftAppliedIndex: bigint;
  errors: string[];
  isLearner: boolean;
}

export interface HashKVResult {
  header: ResponseHeader;
  hash: number;
  compactRevision: bigint;
}

export interface AlarmInfo {
  memberId: bigint;
  alarm: 'NONE' | 'NOSPACE' | 'CORRUPT';
}

function memberInfo(m: Member): MemberInfo {
  return { id: m.ID, name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner };
}

function ttlNumber(ttl: bigint): number {
  return Number(ttl);
}

export class Client extends ClientCore {
  private readonly watches: WatchManager;
  private readonly keeper: LeaseKeeper;

  constructor(options: ClientOptions) {
    super(options);
    this.watches = new WatchManager(this);
    this.keeper = new LeaseKeeper(this);
  }

  // ---- KV ----

  /** Reads a key, or a range with `prefix`, `end` or `fromKey`. Retried on other endpoints when they fail. */
  async get(key: Bytes, options: GetOptions & CallOptions = {}): Promise<GetResult> {
    const request = rangeRequest(key, options);
    return getResult(await this.call(KVService.Range, request, { ...callOptions(options), idempotent: true }));
  }

  /** The value of `key` as UTF-8 text; undefined when there is no such key. */
  async getString(key: Bytes, options: CallOptions & { serializable?: boolean } = {}): Promise<string | undefined> {
    return (await this.getOne(key, options))?.value.toString('utf8');
  }

  /** The value of `key` parsed as JSON; undefined when there is no such key. */
  async getJson<T = unknown>(
    key: Bytes,
    options: CallOptions & { serializable?: boolean } = {},
  ): Promise<T | undefined> {
    const kv = await this.getOne(key, options);
    return kv === undefined ? undefined : (JSON.parse(kv.value.toString('utf8')) as T);
  }

  /** The pair of `key`; undefined when there is no such key. */
  async getOne(key: Bytes, options: CallOptions & { serializable?: boolean } = {}): Promise<KeyValue | undefined> {
    return (await this.get(key, options)).kvs[0];
  }

  /**
   * Writes a key. Never sent twice: if the connection fails after the request may have reached a
   * server, the failure is reported (the put may or may not have happened).
   */
  async put(key: Bytes, value: Bytes, options: PutOptions & CallOptions = {}): Promise<PutResult> {
    const request = putRequest(key, value, options);
    return putResult(await this.call(KVService.Put, request, { ...callOptions(options), idempotent: false }));
  }

  /** Writes `value` as JSON. */
  putJson(key: Bytes, value: unknown, options: PutOptions & CallOptions = {}): Promise<PutResult> {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError('value has no JSON form');
    return this.put(key, text, options);
  }

  /** Deletes a key, or a range with `prefix`, `end` or `fromKey`. */
  async delete(key: Bytes, options: DeleteOptions & CallOptions = {}): Promise<DeleteResult> {
    const request = deleteRequest(key, options);
    return deleteResult(
      await this.call(KVService.DeleteRange, request, { ...callOptions(options), idempotent: false }),
    );
  }

  /** Drops the history before `revision`; `physical` waits until it is gone from disk. */
  async compact(
    revision: bigint | number,
    options: { physical?: boolean } & CallOptions = {},
  ): Promise<{ header: ResponseHeader }> {
    const request = { revision: toInt64(revision, 'revision'), physical: options.physical === true };
    const response = await this.call(KVService.Compact, request, { ...callOptions(options), idempotent: false });
    return { header: header(response.header) };
  }

  /** A transaction builder: `txn().if(...).then(...).else(...).commit()`. */
  txn(options: CallOptions = {}): Txn {
    return new Txn((request: TxnRequest, readOnly: boolean) =>
      this.call(KVService.Txn, request, { ...callOptions(options), idempotent: readOnly }),
    );
  }

  /**
   * Runs `fn` as a software transaction with repeatable reads: what it reads is checked, at
   * commit, to be unchanged (same mod revision), and its writes apply atomically; on a conflict
   * `fn` runs again with fresh reads.
   */
  stm<T>(fn: (tx: StmTx) => Promise<T>, options: StmOptions = {}): Promise<T> {
    return runStm(this, fn, options);
  }

  // ---- watch ----

  /**
   * Watches a key (or a range). Without `onBatch` the watcher is an async iterable of batches;
   * with it, `onBatch` gets every batch. Either way it is an event emitter ('put', 'delete',
   * 'progress', 'error'...). It resumes by itself after a disconnect, without loss or duplicates.
   */
  watch(key: Bytes, options: WatchOptions = {}, onBatch?: (batch: WatchBatch) => void): Watcher {
    return this.watches.watch(key, options, onBatch);
  }

  /** Asks for a progress notification on every watcher. */
  requestWatchProgress(): void {
    this.watches.requestProgress();
  }

  // ---- leases ----

  /** Grants a lease of `ttl` seconds. */
  async grant(ttl: number, options: GrantOptions = {}): Promise<{ header: ResponseHeader; id: bigint; ttl: number }> {
    if (!Number.isSafeInteger(ttl)) throw new RangeError('ttl must be an integer number of seconds');
    const request = { TTL: BigInt(ttl), ID: options.id ?? 0n };
    const r = await this.call(LeaseService.LeaseGrant, request, { ...callOptions(options), idempotent: false });
    return { header: header(r.header), id: r.ID, ttl: ttlNumber(r.TTL) };
  }

  /** Revokes a lease: its keys are deleted. */
  async revoke(id: bigint, options: CallOptions = {}): Promise<{ header: ResponseHeader }> {
    const r = await this.call(LeaseService.LeaseRevoke, { ID: id }, { ...callOptions(options), idempotent: false });
    return { header: header(r.header) };
  }

  /** What the server knows of a lease (ttl -1 when it does not exist). */
  async timeToLive(id: bigint, options: { keys?: boolean } & CallOptions = {}): Promise<LeaseInfo> {
    const request = { ID: id, keys: options.keys === true };
    const r = await this.call(LeaseService.LeaseTimeToLive, request, { ...callOptions(options), idempotent: true });
    return { id: r.ID, ttl: ttlNumber(r.TTL), grantedTtl: ttlNumber(r.grantedTTL), keys: r.keys.map(view) };
  }

  /** Ids of every lease. */
  async leases(options: CallOptions = {}): Promise<bigint[]> {
    const r = await this.call(LeaseService.LeaseLeases, {}, { ...callOptions(options), idempotent: true });
    return r.leases.map((l) => l.ID);
  }

  /** Renews a lease once. */
  keepAliveOnce(id: bigint, options: CallOptions = {}): Promise<KeepAliveResult> {
    return this.keeper.keepAliveOnce(id, options.timeoutMs ?? this.callTimeoutMs);
  }

  /**
   * Grants a lease of `ttl` seconds (or adopts lease `id`) and keeps it alive in the background
   * until `close()` or `revoke()`; 'lost' is emitted if it expires anyway.
   */
  async lease(ttl: number, options: GrantOptions & { adopt?: boolean } = {}): Promise<Lease> {
    let id: bigint;
    let granted: number;
    if (options.adopt === true) {
      if (options.id === undefined) throw new TypeError('adopt needs the id of the lease');
      const info = await this.timeToLive(options.id, options);
      if (info.ttl < 0) throw new TypeError(`lease ${options.id} does not exist`);
      id = options.id;
      granted = info.grantedTtl;
    } else {
      const r = await this.grant(ttl, options);
      id = r.id;
      granted = r.ttl;
    }
    const lease = new Lease(this.keeper, this, id, granted);
    this.keeper.add(lease);
    return lease;
  }

  // ---- locks, elections, services ----

  /**
   * Waits for and takes the lock `name` (etcd's recipe: keys under `name/` ordered by create
   * revision; interoperates with `etcdctl lock`). The lock lives as long as its lease.
   */
  lock(name: Bytes, options: LockOptions = {}): Promise<Lock> {
    return acquireLock(this, name, options, true) as Promise<Lock>;
  }

  /** Takes the lock `name` if it is free; undefined when someone holds it. */
  tryLock(name: Bytes, options: LockOptions = {}): Promise<Lock | undefined> {
    return acquireLock(this, name, options, false);
  }

  /** An election `name` (etcd's recipe, interoperates with `etcdctl elect`). */
  election(name: Bytes, options: ElectionOptions = {}): Election {
    return new Election(this, name, options);
  }

  /**
   * Registers instance `instanceId` of `service` under `<prefix>/<service>/<instanceId>`, bound
   * to a kept-alive lease: it disappears when the process dies (after the TTL) and is registered
   * again if the lease is lost while the process lives. `close()` deregisters.
   */
  register(service: string, instanceId: string, value: Bytes, options: RegisterOptions = {}): Promise<Registration> {
    return Registration.start(this, service, instanceId, value, options);
  }

  /** The live set of instances of `service`, kept current by a watch. */
  discover(service: string, options: DiscoveryOptions = {}): Promise<Discovery> {
    return Discovery.start(this, service, options);
  }

  // ---- cluster ----

  async memberList(options: CallOptions & { linearizable?: boolean } = {}): Promise<MemberListResult> {
    const request = { linearizable: options.linearizable === true };
    const r = await this.call(ClusterService.MemberList, request, { ...callOptions(options), idempotent: true });
    return { header: header(r.header), members: r.members.map(memberInfo) };
  }

  async memberAdd(peerUrls: string[], options: CallOptions & { learner?: boolean } = {}): Promise<MemberAddResult> {
    const request = { peerURLs: peerUrls, isLearner: options.learner === true };
    const r = await this.call(ClusterService.MemberAdd, request, { ...callOptions(options), idempotent: false });
    if (r.member === undefined) throw new TypeError('member add answered without the member');
    return { header: header(r.header), member: memberInfo(r.member), members: r.members.map(memberInfo) };
  }

  async memberRemove(id: bigint, options: CallOptions = {}): Promise<MemberListResult> {
    const r = await this.call(ClusterService.MemberRemove, { ID: id }, { ...callOptions(options), idempotent: false });
    return { header: header(r.header), members: r.members.map(memberInfo) };
  }

  async memberUpdate(id: bigint, peerUrls: string[], options: CallOptions = {}): Promise<MemberListResult> {
    const request = { ID: id, peerURLs: peerUrls };
    const r = await this.call(ClusterService.MemberUpdate, request, { ...callOptions(options), idempotent: false });
    return { header: header(r.header), members: r.members.map(memberInfo) };
  }

  async memberPromote(id: bigint, options: CallOptions = {}): Promise<MemberListResult> {
    const r = await this.call(ClusterService.MemberPromote, { ID: id }, { ...callOptions(options), idempotent: false });
    return { header: header(r.header), members: r.members.map(memberInfo) };
  }

  // ---- maintenance (about one member: `endpoint` names it, default the current one) ----

  async status(options: CallOptions & { endpoint?: string } = {}): Promise<StatusResult> {
    const r = await this.call(
      MaintenanceService.Status,
      {},
      { ...callOptions(options), ...pin(options), idempotent: true },
    );
    return {
      header: header(r.header),
      version: r.version,
      dbSize: r.dbSize,
      dbSizeInUse: r.dbSizeInUse,
      leader: r.leader,
      raftIndex: r.raftIndex,
      raftTerm: r.raftTerm,
      raftAppliedIndex: r.raftAppliedIndex,
      errors: r.errors,
      isLearner: r.isLearner,
    };
  }

  async hashKV(options: CallOptions & { endpoint?: string; revision?: bigint | number } = {}): Promise<HashKVResult> {
    const request = { revision: options.revision === undefined ? 0n : toInt64(options.revision, 'revision') };
    const r = await this.call(MaintenanceService.HashKV, request, {
      ...callOptions(options),
      ...pin(options),
      idempotent: true,
    });
    return { header: header(r.header), hash: r.hash, compactRevision: r.compactRevision };
  }

  /** Transfers leadership to member `targetId`; must reach the current leader (`endpoint`). */
  async moveLeader(
    targetId: bigint,
    options: CallOptions & { endpoint?: string } = {},
  ): Promise<{ header: ResponseHeader }> {
    const r = await this.call(
      MaintenanceService.MoveLeader,
      { targetID: targetId },
      { ...callOptions(options), ...pin(options), idempotent: false },
    );
    return { header: header(r.header) };
  }

  async alarms(options: CallOptions = {}): Promise<AlarmInfo[]> {
    const request = { action: AlarmRequest_AlarmAction.GET, memberID: 0n, alarm: AlarmType.NONE };
    const r = await this.call(MaintenanceService.Alarm, request, { ...callOptions(options), idempotent: true });
    const names = ['NONE', 'NOSPACE', 'CORRUPT'] as const;
    return r.alarms.map((a) => ({ memberId: a.memberID, alarm: names[a.alarm] ?? 'NONE' }));
  }

  async defragment(options: CallOptions & { endpoint?: string } = {}): Promise<void> {
    await this.call(MaintenanceService.Defragment, {}, { ...callOptions(options), ...pin(options), idempotent: true });
  }

  /** Stops every watch, keep-alive and call; the client cannot be used afterwards. */
  override close(): void {
    if (this.closed) return;
    this.watches.closeAll();
    this.keeper.closeAll();
    super.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

function callOptions(options: CallOptions): CallOptions {
  const out: CallOptions = {};
  if (options.timeoutMs !== undefined) out.timeoutMs = options.timeoutMs;
  if (options.signal !== undefined) out.signal = options.signal;
  return out;
}

function pin(options: { endpoint?: string }): { endpoint?: string } {
  return options.endpoint === undefined ? {} : { endpoint: options.endpoint };
}
