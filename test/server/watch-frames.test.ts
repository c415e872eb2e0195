// Live events framed once per notification (WatchSink.writeFrames) against responses written
// one by one and encoded by the codec: the same bytes in the same order, for watchers with and
// without previous values, filters, ranges, ids that take one or more varint bytes, and
// transactions whose several events go through the one-by-one path.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeWatchResponse } from '../../src/proto/fast/index.ts';
import { WatchCreateRequest, WatchCreateRequest_FilterType, type WatchResponse } from '../../src/proto/index.ts';
import { WatchHub } from '../../src/server/watch.ts';
import { Backend } from '../../src/storage/backend/index.ts';
import { MvccStore } from '../../src/storage/mvcc/index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-watch-frames-'));
after(() => rmSync(root, { recursive: true, force: true }));

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

function frameOf(response: WatchResponse): Buffer {
  const frame = encodeWatchResponse(response, 5);
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - 5, 1);
  return frame;
}

test('framed live events equal the codec-encoded responses, byte for byte and in order', async () => {
  const dir = join(root, 'a');
  const backend = Backend.open(dir);
  const store = MvccStore.open(backend);
  const opts = {
    maxResponseBytes: 1536 * 1024,
    progressNotifyIntervalMs: 600_000,
    header: (rev: number) => ({ clusterId: 0xabcn, memberId: 0x1234567890n, revision: BigInt(rev), raftTerm: 3n }),
  };
  const framedHub = new WatchHub(store, backend, opts);
  const plainHub = new WatchHub(store, backend, opts);
  const framedBytes: Buffer[] = [];
  const plainBytes: Buffer[] = [];
  let framedCount = 0;
  let frameWrites = 0;
  const framed = framedHub.openStream({
    write: (r) => {
      framedBytes.push(frameOf(r));
      framedCount++;
      return true;
    },
    writeFrames: (frames, count) => {
      framedBytes.push(Buffer.from(frames));
      framedCount += count;
      frameWrites++;
      return true;
    },
  });
  const plain = plainHub.openStream({
    write: (r) => {
      plainBytes.push(frameOf(r));
      return true;
    },
  });
  try {
    const creates: Partial<WatchCreateRequest>[] = [
      { key: bytes('k') },
      { key: bytes('k'), prevKv: true },
      { key: bytes('a'), rangeEnd: bytes('z') },
      { key: bytes('k'), filters: [WatchCreateRequest_FilterType.NODELETE] },
      { key: bytes('\x00'), rangeEnd: new Uint8Array([0]), prevKv: true },
      { key: bytes('k'), watchId: 200n },
      { key: bytes('k'), watchId: 70_000n, prevKv: true },
    ];
    for (const c of creates) {
      framed.create(WatchCreateRequest.fromPartial(c));
      plain.create(WatchCreateRequest.fromPartial(c));
    }
    // 130 more watchers on one key: ids past 127 take two varint bytes.
    for (let i = 0; i < 130; i++) {
      framed.create(WatchCreateRequest.fromPartial({ key: bytes('k') }));
      plain.create(WatchCreateRequest.fromPartial({ key: bytes('k') }));
    }
    const createdCount = framedCount;
    const notify = (write: (w: ReturnType<MvccStore['write']>) => void): void => {
      const w = store.write();
      write(w);
      const { rev, events } = w.end();
      framedHub.notify(rev, events);
      plainHub.notify(rev, events);
    };
    notify((w) => w.put(bytes('k'), bytes('v1'), 0n));
    notify((w) => w.put(bytes('k'), Buffer.alloc(300, 7), 5n));
    notify((w) => w.put(bytes('m'), bytes(''), 0n));
    notify((w) => w.deleteRange(bytes('k'), new Uint8Array(0)));
    notify((w) => {
      // A transaction of two events: range watchers get both in one response (not framed).
      w.put(bytes('k'), bytes('t1'), 0n);
      w.put(bytes('b'), bytes('t2'), 0n);
    });
    assert.ok(frameWrites >= 5, `${frameWrites} framed writes`);
    // Four puts or deletes of k reach the 130 extra watchers each (the delete, all but NODELETE).
    assert.ok(framedCount - createdCount > 4 * 130, `${framedCount - createdCount} responses`);
    assert.ok(Buffer.concat(framedBytes).equals(Buffer.concat(plainBytes)), 'framed bytes differ from encoded ones');
  } finally {
    framedHub.close();
    plainHub.close();
    await store.close();
    await backend.close();
  }
});
