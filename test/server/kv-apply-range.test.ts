// applyRange (src/server/kv-apply.ts) with keys_only and a sort by value: etcd sorts the full
// key-values and strips the values afterwards (etcd 3.4 etcdserver/apply.go, applierV3backend.Range), so
// the keys come in the order of the values they are sent without. The npm etcd3 package's
// getAll().sort('Value', ...).keys() asks exactly this.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RequestOp,
  TxnRequest,
} from '../../src/proto/index.ts';
import { applyRange, applyReadOnlyTxn } from '../../src/server/kv-apply.ts';
import { Backend } from '../../src/storage/backend/index.ts';
import { MvccStore } from '../../src/storage/mvcc/index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-kv-apply-range-'));
after(() => rmSync(root, { recursive: true, force: true }));

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

test('keys_only sorted by value is in the order of the values it leaves out', async () => {
  const backend = Backend.open(join(root, 'sort'));
  const store = MvccStore.open(backend);
  try {
    // Key order a, b, c, d; value order d, b, c, a ("10" < "2" < "3" < "5", bytewise).
    for (const [key, value] of [
      ['s/a', '5'],
      ['s/b', '2'],
      ['s/c', '3'],
      ['s/d', '10'],
    ] as const) {
      const w = store.write();
      w.put(bytes(key), bytes(value), 0n);
      w.end();
    }
    const byValue = (sortOrder: RangeRequest_SortOrder, fields: Partial<RangeRequest> = {}) =>
      RangeRequest.fromPartial({
        key: bytes('s/'),
        rangeEnd: bytes('s0'),
        keysOnly: true,
        sortTarget: RangeRequest_SortTarget.VALUE,
        sortOrder,
        ...fields,
      });
    const keysOf = (req: RangeRequest) => {
      const resp = applyRange(store, req);
      assert.ok(
        resp.kvs.every((kv) => kv.value.length === 0),
        'keys_only leaves the values out',
      );
      return resp.kvs.map((kv) => text(kv.key));
    };

    assert.deepEqual(keysOf(byValue(RangeRequest_SortOrder.ASCEND)), ['s/d', 's/b', 's/c', 's/a']);
    assert.deepEqual(keysOf(byValue(RangeRequest_SortOrder.DESCEND)), ['s/a', 's/c', 's/b', 's/d']);
    // NONE with a target other than the key sorts ascending.
    assert.deepEqual(keysOf(byValue(RangeRequest_SortOrder.NONE)), ['s/d', 's/b', 's/c', 's/a']);
    assert.deepEqual(keysOf(byValue(RangeRequest_SortOrder.DESCEND, { limit: 2n })), ['s/a', 's/c']);
    // An older revision sorts that revision's values: only a, b and c existed at revision 4.
    assert.deepEqual(keysOf(byValue(RangeRequest_SortOrder.ASCEND, { revision: 4n })), ['s/b', 's/c', 's/a']);

    // A txn's range goes the same way.
    const op: RequestOp = {
      request: { $case: 'requestRange', value: byValue(RangeRequest_SortOrder.DESCEND) },
    };
    const txn = applyReadOnlyTxn(store, TxnRequest.fromPartial({ success: [op] }));
    const inner = txn.responses[0]?.response;
    assert.equal(inner?.$case, 'responseRange');
    assert.deepEqual(
      inner.value.kvs.map((kv) => text(kv.key)),
      ['s/a', 's/c', 's/b', 's/d'],
    );
  } finally {
    await store.close();
    await backend.close();
  }
});
