/**
 * Leader elections, etcd's client-side recipe (clientv3/concurrency Election): candidates put
 * `<name>/<lease id in hex>` with their proposal as value; the key with the lowest create
 * revision is the leader; a candidate waits for the deletion of every older key. Observers
 * follow the leader's key. The same keys as `etcdctl elect`, so both interoperate.
 */
import { type Bytes, toBuffer } from './bytes.ts';
import type { Client } from './client.ts';
import { ElectionNotLeaderError } from './errors.ts';
import type { KeyValue, ResponseHeader } from './kv.ts';
import type { Lease } from './lease.ts';
import { firstCreated, leaseKeySuffix, SESSION_TTL_DEFAULT_S, throwIfAborted, waitDeletes } from './lock.ts';
import { compare, op } from './txn.ts';

export interface ElectionOptions {
  /** TTL in seconds of the lease created for campaigning (default 60). */
  ttl?: number;
  /** Campaign with this kept-alive lease instead of a new one (it is not revoked on resign). */
  lease?: Lease;
}

export class Election {
  readonly name: Buffer;
  private readonly prefix: Buffer;
  private readonly client: Client;
  private readonly options: ElectionOptions;
  private lease: Lease | undefined = undefined;
  private leaderKey: Buffer | undefined = undefined;
  private leaderRevision = 0n;
  /** The campaign finished: this candidate leads (until resign or its lease is lost). */
  private leading = false;
  private lastHeader: ResponseHeader | undefined = undefined;

  /** @internal */
  constructor(client: Client, name: Bytes, options: ElectionOptions) {
    this.client = client;
    this.name = toBuffer(name);
    this.prefix = Buffer.concat([this.name, Buffer.from('/')]);
    this.options = options;
  }

  /** This candidate's key while it campaigns or leads. */
  get key(): Buffer | undefined {
    return this.leaderKey;
  }

  /** Create revision of this candidate's key. */
  get revision(): bigint {
    return this.leaderRevision;
  }

  get header(): ResponseHeader | undefined {
    return this.lastHeader;
  }

  /** True after a successful campaign, until resign. */
  get isLeader(): boolean {
    return this.leading && this.leaderKey !== undefined;
  }

  /** Resolves once this candidate is the leader, with `value` as the leader's value. */
  async campaign(value: Bytes, options: { signal?: AbortSignal } = {}): Promise<void> {
    const lease = await this.session();
    const key = Buffer.concat([this.prefix, Buffer.from(leaseKeySuffix(lease.id))]);
    const v = toBuffer(value);
    const r = await this.client
      .txn()
      .if(compare.createRevision(key, '=', 0))
      .then(op.put(key, v, { lease: lease.id }))
      .else(op.get(key))
      .commit();
    this.leaderKey = key;
    this.leaderRevision = r.header.revision;
    if (!r.succeeded) {
      const got = r.responses[0];
      const kv = got?.type === 'get' ? got.kvs[0] : undefined;
      if (kv === undefined) throw new TypeError('election key vanished during campaign');
      this.leaderRevision = kv.createRevision;
      if (!kv.value.equals(v)) {
        try {
          await this.setValue(v);
        } catch (err) {
          await this.resign().catch(() => {});
          throw err;
        }
      }
    }
    try {
      throwIfAborted(options.signal);
      await waitDeletes(this.client, this.prefix, this.leaderRevision - 1n, options.signal);
    } catch (err) {
      await this.resign().catch(() => {});
      throw err;
    }
    this.lastHeader = r.header;
    this.leading = true;
  }

  /** Changes the leader's value without a new election; only the leader may. */
  async proclaim(value: Bytes): Promise<void> {
    if (!this.isLeader) throw new ElectionNotLeaderError();
    await this.setValue(value);
  }

  /** Puts `value` on this candidate's key if it is still the one it created. */
  private async setValue(value: Bytes): Promise<void> {
    const key = this.leaderKey;
    const lease = this.lease;
    if (key === undefined || lease === undefined) throw new ElectionNotLeaderError();
    const r = await this.client
      .txn()
      .if(compare.createRevision(key, '=', this.leaderRevision))
      .then(op.put(key, value, { lease: lease.id }))
      .commit();
    if (!r.succeeded) {
      this.leaderKey = undefined;
      this.leading = false;
      throw new ElectionNotLeaderError();
    }
    this.lastHeader = r.header;
  }

  /** Gives up leadership (or the candidacy). */
  async resign(): Promise<void> {
    const key = this.leaderKey;
    if (key === undefined) return;
    this.leaderKey = undefined;
    this.leading = false;
    const r = await this.client
      .txn()
      .if(compare.createRevision(key, '=', this.leaderRevision))
      .then(op.delete(key))
      .commit();
    this.lastHeader = r.header;
  }

  /** The leader's pair; undefined when nobody leads. */
  async leader(): Promise<KeyValue | undefined> {
    const r = await this.client.txn().then(firstCreated(this.prefix)).commit();
    const got = r.responses[0];
    return got?.type === 'get' ? got.kvs[0] : undefined;
  }

  /**
   * The leader and each change of it (a new leader, or a new value proclaimed), until the
   * signal aborts or the loop stops. Waits while nobody leads.
   */
  async *observe(options: { signal?: AbortSignal } = {}): AsyncGenerator<KeyValue> {
    const signal = options.signal;
    const watchSignal = signal === undefined ? {} : { signal };
    while (signal?.aborted !== true) {
      const first = await this.client.get(this.prefix, {
        prefix: true,
        sort: { target: 'create', order: 'ascend' },
        limit: 1,
      });
      let leader = first.kvs[0];
      if (leader === undefined) {
        // Nobody leads: wait for the first put under the prefix.
        const w = this.client.watch(this.prefix, {
          prefix: true,
          startRevision: first.header.revision,
          noDelete: true,
          ...watchSignal,
        });
        try {
          for await (const batch of w) {
            const put = batch.events.find((e) => e.type === 'put');
            if (put !== undefined) {
              leader = put.kv;
              break;
            }
          }
        } finally {
          await w.close();
        }
        if (leader === undefined) return;
      }
      yield leader;
      // Follow the leader's key: new values until it is deleted.
      const w = this.client.watch(leader.key, { startRevision: leader.modRevision + 1n, ...watchSignal });
      try {
        let deleted = false;
        for await (const batch of w) {
          for (const e of batch.events) {
            if (e.type === 'delete') {
              deleted = true;
              break;
            }
            yield e.kv;
          }
          if (deleted) break;
        }
        if (!deleted) return;
      } finally {
        await w.close();
      }
    }
  }

  /** Resigns and revokes the lease if the election created it. */
  async close(): Promise<void> {
    await this.resign();
    if (this.lease !== undefined && this.options.lease === undefined) await this.lease.revoke();
    this.lease = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async session(): Promise<Lease> {
    if (this.lease !== undefined && !this.lease.closed) return this.lease;
    this.lease = this.options.lease ?? (await this.client.lease(this.options.ttl ?? SESSION_TTL_DEFAULT_S));
    return this.lease;
  }
}
