// Two watch hubs on one fresh store, set up as a member sets up its one: for tests that compare
// what two kinds of stream receive for the same events.
import { WatchHub } from '../../src/server/watch.ts';
import { Backend } from '../../src/storage/backend/index.ts';
import { MvccStore } from '../../src/storage/mvcc/index.ts';

/** A store in `dir` (created), two hubs on it; `close` closes all of them. */
export function hubsOnOneStore(dir: string, maxResponseBytes = 1536 * 1024) {
  const backend = Backend.open(dir);
  const store = MvccStore.open(backend);
  const opts = {
    maxResponseBytes,
    progressNotifyIntervalMs: 600_000,
    header: (rev: number) => ({ clusterId: 0xabcn, memberId: 0x1234567890n, revision: BigInt(rev), raftTerm: 3n }),
  };
  const hubs = [new WatchHub(store, backend, opts), new WatchHub(store, backend, opts)] as const;
  return {
    backend,
    store,
    hubs,
    async close(): Promise<void> {
      for (const hub of hubs) hub.close();
      await store.close();
      await backend.close();
    },
  };
}
