// Reading the store's history as events: what a watcher that starts behind the current
// revision replays (etcd's watchable store reads the key bucket by revision the same way).

import type { Backend } from '../backend/backend.ts';
import { Bucket } from '../backend/buckets.ts';
import { decodeKeyValue, deletedKeyValue } from './codec.ts';
import type { MvccEvent } from './kv.ts';
import { checkRevisionKey, isTombstoneKey, revisionKey, revisionMain } from './revision.ts';

export interface HistoryBatch {
  /** Events with main revision in [fromRev, nextRev), in revision order. */
  events: MvccEvent[];
  /** The first revision not read: fromRev + ... ; equals toRev + 1 when everything was read. */
  nextRev: number;
}

/**
 * The events of revisions fromRev..toRev (inclusive), stopping after the revision in which the
 * number of events reaches `maxEvents` (a revision is never split). The caller checks that
 * fromRev is not compacted; keys and values are copies, safe to keep.
 */
export function readHistory(backend: Backend, fromRev: number, toRev: number, maxEvents: number): HistoryBatch {
  const events: MvccEvent[] = [];
  if (fromRev > toRev) return { events, nextRev: fromRev };
  const limit = Math.max(1, maxEvents) + 1;
  const { keys, values } = backend.range(
    Bucket.key,
    revisionKey(fromRev, 0, false),
    revisionKey(toRev + 1, 0, false),
    limit,
  );
  let nextRev = toRev + 1;
  if (keys.length === limit) {
    // Truncated: stop before the last revision read, which may be incomplete; if it is the
    // only one, read that whole revision (one transaction may hold more than maxEvents).
    const lastMain = revisionMain(keys[keys.length - 1]!);
    if (revisionMain(keys[0]!) === lastMain) {
      return readWhole(backend, lastMain);
    }
    nextRev = lastMain;
  }
  for (let i = 0; i < keys.length; i++) {
    const rk = keys[i]!;
    checkRevisionKey(rk);
    const main = revisionMain(rk);
    if (main >= nextRev) break;
    events.push(toEvent(rk, values[i]!, main));
  }
  return { events, nextRev };
}

function readWhole(backend: Backend, rev: number): HistoryBatch {
  const { keys, values } = backend.range(Bucket.key, revisionKey(rev, 0, false), revisionKey(rev + 1, 0, false));
  const events: MvccEvent[] = [];
  for (let i = 0; i < keys.length; i++) {
    checkRevisionKey(keys[i]!);
    events.push(toEvent(keys[i]!, values[i]!, rev));
  }
  return { events, nextRev: rev + 1 };
}

function toEvent(rk: Uint8Array, value: Uint8Array, main: number): MvccEvent {
  const kv = decodeKeyValue(Buffer.from(value), main);
  return isTombstoneKey(rk) ? { type: 'delete', kv: deletedKeyValue(kv.key, main) } : { type: 'put', kv };
}
