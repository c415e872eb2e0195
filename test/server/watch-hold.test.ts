// Live events held while a stream's client is slow to read (WatchSink.backlogged): they leave
// merged, one response per watcher, when the stream drains; in order, never lost, never twice;
// beyond the stream's limit its watchers read them again from history. A second hub on the same
// store, whose stream is never backlogged, gives the events every watcher must receive.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Event, WatchCreateRequest, WatchCreateRequest_FilterType, WatchResponse } from '../../src/proto/index.ts';
import { WATCH_HELD_BYTES_MAX, type WatchHub } from '../../src/server/watch.ts';
import type { MvccStore } from '../../src/storage/mvcc/index.ts';
import { hubsOnOneStore } from './watch-hubs.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-watch-hold-'));
after(() => rmSync(root, { recursive: true, force: true }));

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

/** The gRPC frames written back to back, decoded. */
function decodeFrames(frames: Uint8Array): WatchResponse[] {
  const buf = Buffer.from(frames);
  const out: WatchResponse[] = [];
  let at = 0;
  while (at < buf.length) {
    assert.equal(buf[at], 0, 'uncompressed frame');
    const length = buf.readUInt32BE(at + 1);
    out.push(WatchResponse.decode(new Uint8Array(buf.subarray(at + 5, at + 5 + length))));
    at += 5 + length;
  }
  assert.equal(at, buf.length, 'whole frames');
  return out;
}

/** The events of each watch id, in the order received. */
function eventsById(responses: readonly WatchResponse[]): Map<bigint, Event[]> {
  const byId = new Map<bigint, Event[]>();
  for (const r of responses) {
    if (r.events.length === 0) continue;
    const list = byId.get(r.watchId) ?? [];
    list.push(...r.events);
    byId.set(r.watchId, list);
  }
  return byId;
}

/**
 * Two hubs on one store: `slow`'s stream says it is backlogged while `backlogged` is true;
 * `reference`'s stream never is. Both record every response they send, decoded.
 */
function twoHubs(name: string, maxResponseBytes?: number) {
  const {
    store,
    hubs: [slowHub, referenceHub],
    close,
  } = hubsOnOneStore(join(root, name), maxResponseBytes);
  const t = {
    store,
    slowHub,
    referenceHub,
    backlogged: false,
    waitsForRoom: 0,
    /** The slow stream's responses, and its writes (a writeFrames or write call each). */
    slowResponses: [] as WatchResponse[],
    slowWrites: 0,
    referenceResponses: [] as WatchResponse[],
    slow: undefined as unknown as ReturnType<WatchHub['openStream']>,
    reference: undefined as unknown as ReturnType<WatchHub['openStream']>,
    /** Writes one transaction and announces it to both hubs; returns its revision. */
    commit(write: (w: ReturnType<MvccStore['write']>) => void): number {
      const w = store.write();
      write(w);
      const { rev, events } = w.end();
      slowHub.notify(rev, events);
      referenceHub.notify(rev, events);
      return rev;
    },
    create(c: Partial<WatchCreateRequest>): void {
      t.slow.create(WatchCreateRequest.fromPartial(c));
      t.reference.create(WatchCreateRequest.fromPartial(c));
    },
    close,
  };
  t.slow = slowHub.openStream({
    write: (r) => {
      t.slowResponses.push(WatchResponse.decode(WatchResponse.encode(r).finish()));
      t.slowWrites++;
      return true;
    },
    writeFrames: (frames) => {
      t.slowResponses.push(...decodeFrames(frames));
      t.slowWrites++;
      return true;
    },
    backlogged: () => t.backlogged,
    waitForRoom: () => {
      t.waitsForRoom++;
    },
  });
  t.reference = referenceHub.openStream({
    write: (r) => {
      t.referenceResponses.push(WatchResponse.decode(WatchResponse.encode(r).finish()));
      return true;
    },
  });
  return t;
}

test('events held while the client is slow leave merged, one response per watcher, when it drains', async () => {
  const t = twoHubs('merge');
  try {
    t.create({ key: bytes('k') });
    t.create({ key: bytes('k'), prevKv: true });
    t.create({ key: bytes('a'), rangeEnd: bytes('z') });
    t.create({ key: bytes('k'), filters: [WatchCreateRequest_FilterType.NOPUT] });
    // A watcher that asked for fragments is never held: its responses are cut by size when sent.
    t.create({ key: bytes('k'), fragment: true });
    t.commit((w) => w.put(bytes('k'), bytes('before'), 0n));
    const sentBefore = t.slowResponses.length;

    t.backlogged = true;
    let lastRev = 0;
    for (let i = 0; i < 6; i++) lastRev = t.commit((w) => w.put(bytes(i % 2 === 0 ? 'k' : 'm'), bytes(`v${i}`), 0n));
    lastRev = t.commit((w) => w.deleteRange(bytes('k'), new Uint8Array(0)));
    lastRev = t.commit((w) => {
      w.put(bytes('k'), bytes('t1'), 0n);
      w.put(bytes('b'), bytes('t2'), 0n);
    });
    const whileBacklogged = t.slowResponses.slice(sentBefore);
    assert.deepEqual(
      new Set(whileBacklogged.map((r) => r.watchId)),
      new Set([4n]),
      'only the fragment watcher was sent events while the client was slow',
    );
    assert.equal(t.waitsForRoom, 1, 'one wait for room');

    t.backlogged = false;
    const writesBefore = t.slowWrites;
    t.slow.drained();
    assert.equal(t.slowWrites, writesBefore + 1, 'the held events leave in one write');
    const released = t.slowResponses.slice(sentBefore + whileBacklogged.length);
    assert.deepEqual(
      released.map((r) => r.watchId),
      [0n, 1n, 2n, 3n],
      'one response per held watcher',
    );
    for (const r of released) assert.equal(r.header?.revision, BigInt(lastRev), 'the header of the latest revision');
    assert.ok(
      released.some((r) => r.events.length > 2),
      'events of several revisions merged into one response',
    );
    // Every watcher has exactly what the never-backlogged stream delivered, in the same order.
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));

    // Not backlogged any more: live events go out one response per revision again.
    const rev = t.commit((w) => w.put(bytes('k'), bytes('after'), 0n));
    const after = t.slowResponses.slice(sentBefore + whileBacklogged.length + released.length);
    assert.equal(after.length, 4, 'each watcher of puts to k is sent the put at once');
    for (const r of after) assert.equal(r.header?.revision, BigInt(rev));
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));
  } finally {
    await t.close();
  }
});

test('a progress request, or a cancel, sends the held events first', async () => {
  const t = twoHubs('order');
  try {
    t.create({ key: bytes('k') });
    t.create({ key: bytes('k') });
    t.backlogged = true;
    t.commit((w) => w.put(bytes('k'), bytes('1'), 0n));
    const rev = t.commit((w) => w.put(bytes('k'), bytes('2'), 0n));
    assert.equal(t.slowResponses.length, 2, 'only the created responses so far');

    t.slow.progress();
    t.reference.progress();
    const progress = t.slowResponses.at(-1);
    assert.equal(progress?.watchId, -1n, 'the progress response comes last');
    assert.equal(progress?.header?.revision, BigInt(rev));
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));

    // Held again, then a cancel: what was held is sent before the cancel response; after it,
    // only the other watcher's events, held until the stream drains.
    t.commit((w) => w.put(bytes('k'), bytes('3'), 0n));
    t.slow.cancel(1n);
    t.reference.cancel(1n);
    const cancelAt = t.slowResponses.findIndex((r) => r.canceled);
    assert.ok(cancelAt > 0, 'a cancel response');
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));
    t.commit((w) => w.put(bytes('k'), bytes('4'), 0n));
    assert.equal(t.slowResponses.length, cancelAt + 1, 'the event of watcher 0 is held');
    t.backlogged = false;
    t.slow.drained();
    assert.ok(
      t.slowResponses.slice(cancelAt + 1).every((r) => r.watchId === 0n),
      'nothing for the cancelled watcher after its cancel response',
    );
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));
  } finally {
    await t.close();
  }
});

test('past the stream limit the held events are dropped and read again from history, none lost or twice', async () => {
  // A 4 KiB response limit bounds what a stream holds (WATCH_HELD_BYTES_MAX is larger).
  const limit = 4 * 1024;
  assert.ok(limit < WATCH_HELD_BYTES_MAX);
  const t = twoHubs('overflow', limit);
  try {
    for (let i = 0; i < 20; i++) t.create({ key: bytes('k') });
    t.create({ key: bytes('a'), rangeEnd: bytes('z'), prevKv: true });
    t.backlogged = true;
    // 20 watchers x 40 events of about 80 bytes: far more than 4 KiB.
    for (let i = 0; i < 40; i++) t.commit((w) => w.put(bytes(i % 4 === 0 ? 'j' : 'k'), bytes(`value-${i}`), 0n));
    assert.ok(t.slow.congested, 'the stream stopped taking live events');
    assert.ok(
      t.slowResponses.every((r) => r.events.length === 0),
      'nothing was sent while the client was slow',
    );

    t.backlogged = false;
    t.slow.drained();
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));
    assert.equal(eventsById(t.slowResponses).get(0n)?.length, 30);
    assert.equal(eventsById(t.slowResponses).get(20n)?.length, 40);
    // Current again: the next put is live.
    t.commit((w) => w.put(bytes('k'), bytes('live'), 0n));
    assert.deepEqual(eventsById(t.slowResponses), eventsById(t.referenceResponses));
    assert.ok(!t.slow.congested);
  } finally {
    await t.close();
  }
});
