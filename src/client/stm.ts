/**
 * Software transactional memory over etcd with repeatable reads (etcd's concurrency.STM,
 * RepeatableReads isolation): each key is read from the server once and then served from the
 * transaction's read set; writes are buffered (and visible to later reads of the same
 * transaction); commit is one etcd transaction that applies the writes only if every key read
 * still has the mod revision it was read at (0 for a key that did not exist). On a conflict the
 * function runs again from scratch.
 *
 *   await client.stm(async (tx) => {
 *     const balance = Number((await tx.getString('a')) ?? '0');
 *     tx.put('a', String(balance - 10));
 *     tx.put('b', String(Number((await tx.getString('b')) ?? '0') + 10));
 *   });
 */
import { type Bytes, toBuffer } from './bytes.ts';
import type { Client } from './client.ts';
import { StmConflictError } from './errors.ts';
import type { KeyValue } from './kv.ts';
import { type Comparison, compare, type Operation, op } from './txn.ts';

export const STM_ATTEMPTS_DEFAULT = 64;
/** After a conflict, wait a random time up to this (doubling from 2 ms) before running again. */
const CONFLICT_BACKOFF_MS_MAX = 100;
/** Keys one transaction may read or write (etcd allows 128 operations per txn by default). */
export const STM_KEYS_MAX = 128;

export interface StmOptions {
  /** How many times to run the function before giving up with StmConflictError (default 64). */
  attempts?: number;
  /** Read with serializable (local, possibly stale) reads; the commit check still guards them. */
  serializable?: boolean;
}

/** The transaction handed to an STM function. */
export interface StmTx {
  /** The value of `key` (this transaction's write if any); undefined when absent. */
  get(key: Bytes): Promise<Buffer | undefined>;
  getString(key: Bytes): Promise<string | undefined>;
  getJson<T = unknown>(key: Bytes): Promise<T | undefined>;
  /** Mod revision of `key` as read (0n when absent). */
  rev(key: Bytes): Promise<bigint>;
  put(key: Bytes, value: Bytes): void;
  putJson(key: Bytes, value: unknown): void;
  delete(key: Bytes): void;
}

type Write = { type: 'put'; value: Buffer } | { type: 'delete' };

class Tx implements StmTx {
  private readonly client: Client;
  private readonly serializable: boolean;
  /** Keys read, by their bytes as latin1 text (a lossless map key), with what was read. */
  readonly reads = new Map<string, KeyValue | undefined>();
  readonly writes = new Map<string, Write>();

  constructor(client: Client, serializable: boolean) {
    this.client = client;
    this.serializable = serializable;
  }

  private async read(key: Bytes): Promise<{ name: string; kv: KeyValue | undefined }> {
    const k = toBuffer(key);
    const name = k.toString('latin1');
    if (!this.reads.has(name)) {
      this.checkSize(name);
      const r = await this.client.get(k, { serializable: this.serializable });
      // A concurrent read of the same key in this transaction may have landed first: keep it.
      if (!this.reads.has(name)) this.reads.set(name, r.kvs[0]);
    }
    return { name, kv: this.reads.get(name) };
  }

  async get(key: Bytes): Promise<Buffer | undefined> {
    const k = toBuffer(key);
    const written = this.writes.get(k.toString('latin1'));
    if (written !== undefined) return written.type === 'put' ? written.value : undefined;
    return (await this.read(k)).kv?.value;
  }

  async getString(key: Bytes): Promise<string | undefined> {
    return (await this.get(key))?.toString('utf8');
  }

  async getJson<T = unknown>(key: Bytes): Promise<T | undefined> {
    const v = await this.get(key);
    return v === undefined ? undefined : (JSON.parse(v.toString('utf8')) as T);
  }

  async rev(key: Bytes): Promise<bigint> {
    return (await this.read(key)).kv?.modRevision ?? 0n;
  }

  put(key: Bytes, value: Bytes): void {
    const name = toBuffer(key).toString('latin1');
    this.checkSize(name);
    this.writes.set(name, { type: 'put', value: Buffer.from(toBuffer(value)) });
  }

  putJson(key: Bytes, value: unknown): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError('value has no JSON form');
    this.put(key, text);
  }

  delete(key: Bytes): void {
    const name = toBuffer(key).toString('latin1');
    this.checkSize(name);
    this.writes.set(name, { type: 'delete' });
  }

  private checkSize(name: string): void {
    if (this.reads.has(name) || this.writes.has(name)) return;
    if (this.reads.size + this.writes.size >= STM_KEYS_MAX) {
      throw new RangeError(`an STM transaction touches at most ${STM_KEYS_MAX} keys`);
    }
  }

  conditions(): Comparison[] {
    return [...this.reads].map(([name, kv]) =>
      compare.modRevision(Buffer.from(name, 'latin1'), '=', kv?.modRevision ?? 0n),
    );
  }

  operations(): Operation[] {
    return [...this.writes].map(([name, w]) => {
      const key = Buffer.from(name, 'latin1');
      return w.type === 'put' ? op.put(key, w.value) : op.delete(key);
    });
  }
}

export async function runStm<T>(client: Client, fn: (tx: StmTx) => Promise<T>, options: StmOptions): Promise<T> {
  const attempts = options.attempts ?? STM_ATTEMPTS_DEFAULT;
  if (!Number.isSafeInteger(attempts) || attempts < 1) throw new RangeError('attempts must be a positive integer');
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const tx = new Tx(client, options.serializable === true);
    const result = await fn(tx);
    const r = await client
      .txn()
      .if(...tx.conditions())
      .then(...tx.operations())
      .commit();
    if (r.succeeded) return result;
    // Contenders that conflicted spread out instead of colliding again at once.
    if (attempt < attempts) {
      const capMs = Math.min(CONFLICT_BACKOFF_MS_MAX, 2 * 2 ** Math.min(attempt, 6));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * capMs));
    }
  }
  throw new StmConflictError(attempts);
}
