// Live events framed once per notification (WatchSink.writeFrames) against responses written
// one by one and encoded by the codec: the same bytes in the same order, for watchers with and
// without previous values, filters, ranges, ids that take one or more varint bytes, and
// transactions of several events. The same for catch-ups from history, whose watchers share
// one pass's history reads and encodings.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeWatchResponse } from '../../src/proto/fast/index.ts';
import { WatchCreateRequest, WatchCreateRequest_FilterType, type WatchResponse } from '../../src/proto/index.ts';
import type { WatchHub } from '../../src/server/watch.ts';
import type { MvccStore } from '../../src/storage/mvcc/index.ts';
import { hubsOnOneStore } from './watch-hubs.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-watch-frames-'));
after(() => rmSync(root, { recursive: true, force: true }));

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

function frameOf(response: WatchResponse): Buffer {
  const frame = encodeWatchResponse(response, 5);
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - 5, 1);
  return frame;
}

/**
 * Two hubs on one store: `framed` streams take frames (writeFrames), `plain` ones only messages,
 * which the codec encodes; both record the bytes a client would receive.
 */
function twoHubs(name: string) {
  const {
    backend,
    store,
    hubs: [framedHub, plainHub],
    close,
  } = hubsOnOneStore(join(root, name));
  const t = {
    backend,
    store,
    framedHub,
    plainHub,
    framedBytes: [] as Buffer[],
    plainBytes: [] as Buffer[],
    /** Responses the framed stream sent, and its writeFrames calls. */
    framedCount: 0,
    frameWrites: 0,
    framed: undefined as unknown as ReturnType<WatchHub['openStream']>,
    plain: undefined as unknown as ReturnType<WatchHub['openStream']>,
    close,
  };
  t.framed = framedHub.openStream({
    write: (r) => {
      t.framedBytes.push(frameOf(r));
      t.framedCount++;
      return true;
    },
    writeFrames: (frames, count) => {
      t.framedBytes.push(Buffer.from(frames));
      t.framedCount += count;
      t.frameWrites++;
      return true;
    },
  });
  t.plain = plainHub.openStream({
    write: (r) => {
      t.plainBytes.push(frameOf(r));
      return true;
    },
  });
  return t;
}

test('framed live events equal the codec-encoded responses, byte for byte and in order', async () => {
  const t = twoHubs('a');
  const { store, framedHub, plainHub, framed, plain, framedBytes, plainBytes } = t;
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
    const createdCount = t.framedCount;
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
      // A transaction of two events: range watchers get both in one response.
      w.put(bytes('k'), bytes('t1'), 0n);
      w.put(bytes('b'), bytes('t2'), 0n);
    });
    assert.ok(t.frameWrites >= 5, `${t.frameWrites} framed writes`);
    // Four puts or deletes of k reach the 130 extra watchers each (the delete, all but NODELETE).
    assert.ok(t.framedCount - createdCount > 4 * 130, `${t.framedCount - createdCount} responses`);
    assert.ok(Buffer.concat(framedBytes).equals(Buffer.concat(plainBytes)), 'framed bytes differ from encoded ones');
  } finally {
    await t.close();
  }
});

test('catch-up responses framed from a shared pass equal the codec-encoded responses', async () => {
  const t = twoHubs('b');
  const { backend, store, framedHub, plainHub, framed, plain, framedBytes, plainBytes } = t;
  let historyReads = 0;
  const range = backend.range.bind(backend);
  backend.range = ((...args: Parameters<typeof range>) => {
    historyReads++;
    return range(...args);
  }) as typeof backend.range;
  try {
    const creates: Partial<WatchCreateRequest>[] = [
      { key: bytes('k'), prevKv: true },
      { key: bytes('a'), rangeEnd: bytes('z') },
      { key: bytes('k'), filters: [WatchCreateRequest_FilterType.NODELETE] },
      { key: bytes('k'), rangeEnd: bytes('k3'), fragment: true },
    ];
    // 100 watchers of one key that fall behind together.
    for (let i = 0; i < 100; i++) creates.push({ key: bytes('k') });
    for (const c of creates) {
      framed.create(WatchCreateRequest.fromPartial(c));
      plain.create(WatchCreateRequest.fromPartial(c));
    }
    // The transport is full: the writes below leave every watcher behind, to catch up from history.
    framed.congested = true;
    plain.congested = true;
    for (let i = 0; i < 40; i++) {
      const w = store.write();
      w.put(bytes(i % 3 === 0 ? 'j' : 'k'), bytes(`v${i}`), 0n);
      if (i % 10 === 5) w.put(bytes('k2'), bytes(`t${i}`), 0n);
      const { rev, events } = w.end();
      framedHub.notify(rev, events);
      plainHub.notify(rev, events);
    }
    const w = store.write();
    w.deleteRange(bytes('k'), new Uint8Array(0));
    const { rev, events } = w.end();
    framedHub.notify(rev, events);
    plainHub.notify(rev, events);
    framedBytes.length = 0;
    plainBytes.length = 0;

    historyReads = 0;
    plain.drained();
    const plainReads = historyReads;
    historyReads = 0;
    framed.drained();
    const framedReads = historyReads;

    assert.ok(plainBytes.length >= creates.length, `${plainBytes.length} catch-up responses`);
    assert.ok(Buffer.concat(framedBytes).equals(Buffer.concat(plainBytes)), 'framed bytes differ from encoded ones');
    // One pass: the 100 watchers of k read the history once between them (one read each
    // otherwise), and their responses leave in a few writes.
    assert.ok(plainReads <= 10, `${plainReads} history reads in one pass (one by one)`);
    assert.ok(framedReads <= 10, `${framedReads} history reads in one pass (framed)`);
    assert.ok(t.frameWrites <= 10, `${t.frameWrites} framed writes`);
  } finally {
    await t.close();
  }
});
