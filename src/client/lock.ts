/**
 * Distributed locks, etcd's client-side recipe (clientv3/concurrency Mutex), on KV, leases and
 * watches alone: each contender puts `<name>/<lease id in hex>` bound to its lease; the key with
 * the lowest create revision holds the lock; the others each wait for the deletion of the key
 * created just before theirs. The same keys as `etcdctl lock`, so both interoperate.
 *
 *   const lock = await client.lock('jobs/nightly');
 *   try { ... } finally { await lock.release(); }
 *   // or: await using lock = await client.lock('jobs/nightly');
 */
import { type Bytes, toBuffer } from './bytes.ts';
import { Status } from './channel.ts';
import type { Client } from './client.ts';
import type { LeaseLostError } from './errors.ts';
import { CancelledError } from './errors.ts';
import type { KeyValue, ResponseHeader } from './kv.ts';
import type { Lease } from './lease.ts';
import { type Comparison, compare, op } from './txn.ts';

/** Session TTL of locks and elections unless given (etcd's concurrency.NewSession default). */
export const SESSION_TTL_DEFAULT_S = 60;

export interface LockOptions {
  /** TTL in seconds of the lease created for the lock (default 60). */
  ttl?: number;
  /** Hold the lock with this kept-alive lease instead of a new one (it is not revoked on release). */
  lease?: Lease;
  /** Aborting stops waiting (the waiting key is removed). */
  signal?: AbortSignal;
}

/** A held lock. */
export class Lock {
  readonly name: Buffer;
  /** This holder's key, `<name>/<lease id hex>`. */
  readonly key: Buffer;
  /** Create revision of `key`: the lock's fencing token, increasing with every holder. */
  readonly revision: bigint;
  readonly header: ResponseHeader;
  readonly lease: Lease;
  private readonly client: Client;
  private readonly ownsLease: boolean;
  private released = false;

  /** @internal */
  constructor(
    client: Client,
    name: Buffer,
    key: Buffer,
    revision: bigint,
    header: ResponseHeader,
    lease: Lease,
    ownsLease: boolean,
  ) {
    this.client = client;
    this.name = name;
    this.key = key;
    this.revision = revision;
    this.header = header;
    this.lease = lease;
    this.ownsLease = ownsLease;
  }

  /** A transaction condition that holds while this lock is held (for fenced writes). */
  isOwner(): Comparison {
    return compare.createRevision(this.key, '=', this.revision);
  }

  /** Resolves when the lock's lease is lost (the lock is then no longer held). */
  whenLost(): Promise<LeaseLostError> {
    return this.lease.whenLost();
  }

  /** Releases the lock (and revokes the lease if the lock created it). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.client.delete(this.key);
    if (this.ownsLease) await this.lease.revoke();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

export function leaseKeySuffix(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16);
}

/** The pair with the lowest create revision under `prefix`. */
export function firstCreated(prefix: Buffer) {
  return op.get(prefix, { prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 });
}

/**
 * Waits until no key under `prefix` has a create revision at or below `maxCreateRevision`
 * (etcd's waitDeletes): repeatedly finds the newest such key and waits for its deletion.
 */
export async function waitDeletes(
  client: Client,
  prefix: Buffer,
  maxCreateRevision: bigint,
  signal: AbortSignal | undefined,
): Promise<ResponseHeader> {
  for (;;) {
    throwIfAborted(signal);
    const r = await client.get(prefix, {
      prefix: true,
      sort: { target: 'create', order: 'descend' },
      limit: 1,
      maxCreateRevision,
    });
    const last = r.kvs[0];
    if (last === undefined) return r.header;
    await waitDelete(client, last.key, r.header.revision, signal);
  }
}

/** Resolves when `key` is deleted at or after `revision`. */
export async function waitDelete(
  client: Client,
  key: Buffer,
  revision: bigint,
  signal: AbortSignal | undefined,
): Promise<void> {
  const watcher = client.watch(key, { startRevision: revision, noPut: true, ...(signal ? { signal } : {}) });
  try {
    for await (const batch of watcher) {
      if (batch.events.some((e) => e.type === 'delete')) return;
    }
    throwIfAborted(signal);
  } finally {
    await watcher.close();
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new CancelledError(Status.CANCELLED, 'context canceled', { message: 'context canceled' });
  }
}

/**
 * Takes the lock (waiting if `wait`), or undefined when `wait` is false and someone else
 * holds it.
 */
export async function acquireLock(
  client: Client,
  name: Bytes,
  options: LockOptions,
  wait: boolean,
): Promise<Lock | undefined> {
  const nameBytes = toBuffer(name);
  const prefix = Buffer.concat([nameBytes, Buffer.from('/')]);
  const ownsLease = options.lease === undefined;
  const lease = options.lease ?? (await client.lease(options.ttl ?? SESSION_TTL_DEFAULT_S));
  const key = Buffer.concat([prefix, Buffer.from(leaseKeySuffix(lease.id))]);
  const giveUp = async () => {
    if (ownsLease) await lease.revoke().catch(() => {});
    else await client.delete(key).catch(() => {});
  };
  try {
    throwIfAborted(options.signal);
    const r = await client
      .txn()
      .if(compare.createRevision(key, '=', 0))
      .then(op.put(key, '', { lease: lease.id }), firstCreated(prefix))
      .else(op.get(key), firstCreated(prefix))
      .commit();
    let myRevision = r.header.revision;
    if (!r.succeeded) {
      const mine = r.responses[0];
      const existing: KeyValue | undefined = mine?.type === 'get' ? mine.kvs[0] : undefined;
      if (existing === undefined) throw new TypeError('lock key vanished during acquisition');
      myRevision = existing.createRevision;
    }
    const owner = r.responses[1];
    const ownerKv = owner?.type === 'get' ? owner.kvs[0] : undefined;
    if (ownerKv === undefined || ownerKv.createRevision === myRevision) {
      return new Lock(client, nameBytes, key, myRevision, r.header, lease, ownsLease);
    }
    if (!wait) {
      await giveUp();
      return undefined;
    }
    const h = await waitDeletes(client, prefix, myRevision - 1n, options.signal);
    return new Lock(client, nameBytes, key, myRevision, h, lease, ownsLease);
  } catch (err) {
    await giveUp();
    throw err;
  }
}
