/**
 * The Watch stream's protocol, the same requests against the real etcd and against etcd-ts (or
 * a second real etcd with COMPAT_TARGET=etcd), responses compared field by field (the header
 * reduced to its revision): create answers and refusals (an empty range, a duplicate id), how
 * ids are allocated (a refused create uses none), a start revision in the future, the empty
 * key (etcd's smallest key, `\x00`), cancel of an unknown and of a live watch, a progress
 * request, and fragmentation of a response larger than --max-request-bytes plus gRPC's 512 KiB
 * for a watcher that asked for fragments.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteRangeRequest, type Event, KVService, PutRequest, type WatchResponse } from '../../src/proto/index.ts';
import { compatTarget, Member, MemberKind } from '../helpers/member.ts';
import { WatchClient } from './watch-client.ts';

const SUITE_TIMEOUT_MS = 60_000;
const CALL = { timeoutMs: 10_000 };
/** Four values of this size, deleted with prev_kv, make a response of about 4 MB: two fragments. */
const BIG_VALUE_BYTES = 1_000_000;
const SETTLE_MS = 300;

let reference: Member;
let target: Member;

const text = (s: string) => Buffer.from(s);

function summarise(e: Event): string {
  const kv = e.kv!;
  const prev = e.prevKv === undefined ? '' : ` prev=${e.prevKv.value.length}B@${e.prevKv.modRevision}`;
  return `${e.type === 0 ? 'PUT' : 'DELETE'} ${JSON.stringify(Buffer.from(kv.key).toString())} ${kv.value.length}B@${kv.modRevision}${prev}`;
}

function plain(r: WatchResponse): object {
  return {
    revision: r.header?.revision,
    watchId: r.watchId,
    created: r.created,
    canceled: r.canceled,
    compactRevision: r.compactRevision,
    cancelReason: r.cancelReason,
    fragment: r.fragment,
    events: r.events.map(summarise),
  };
}

/** Runs `scenario` on both servers at once; the transcripts must be equal. */
async function same(name: string, scenario: (m: Member, out: object[]) => Promise<void>): Promise<object[]> {
  const ref: object[] = [];
  const tgt: object[] = [];
  await Promise.all([scenario(reference, ref), scenario(target, tgt)]);
  assert.deepEqual(tgt, ref, `${name}: ${target.kind} and etcd differ`);
  return ref;
}

describe(`watch protocol: ${MemberKind.ETCD} vs ${compatTarget()}`, { timeout: SUITE_TIMEOUT_MS }, () => {
  before(async () => {
    [reference, target] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'reference' }),
      Member.start({ kind: compatTarget(), name: 'target' }),
    ]);
  });

  after(async () => {
    await Promise.all([reference?.stop(), target?.stop()]);
  });

  test('creates, refusals, id allocation, the empty key, cancel, progress', async () => {
    const out = await same('create and cancel', async (m, out) => {
      const w = new WatchClient(m.endpoint);
      try {
        out.push(plain(await w.createRaw({ key: text('b'), rangeEnd: text('a') })));
        out.push(plain(await w.createRaw({ key: text('same'), rangeEnd: text('same') })));
        out.push(plain(await w.createRaw({ key: text('a'), watchId: 7n })));
        out.push(plain(await w.createRaw({ key: text('a'), watchId: 7n })));
        const first = await w.createRaw({ key: text('a') });
        out.push(plain(first));
        out.push(plain(await w.createRaw({ key: text('future'), startRevision: 1000n })));
        const empty = await w.createRaw({ key: new Uint8Array(0) });
        out.push(plain(empty));
        await m.channel.unary(
          KVService.Put,
          PutRequest.fromPartial({ key: Uint8Array.of(0), value: text('smallest') }),
          CALL,
        );
        await m.channel.unary(KVService.Put, PutRequest.fromPartial({ key: text('a'), value: text('x') }), CALL);
        await w.waitEvents(first.watchId, 1);
        await w.waitEvents(empty.watchId, 1);
        // Watch 7 sees the same put; which of the two watchers hears of it first is unspecified.
        await w.waitEvents(7n, 1);
        // A cancel of an unknown id is not answered: the next response is the progress one.
        const before = w.stream.received.length;
        w.cancel(12345n);
        w.progress();
        await w.stream.until((r) => r.length > before, 'progress response');
        out.push({ next: plain(w.stream.received[before]!) });
        w.cancel(7n);
        await w.stream.until((r) => r.some((x) => x.watchId === 7n && x.canceled), 'cancel of watch 7');
        await m.channel.unary(KVService.Put, PutRequest.fromPartial({ key: text('a'), value: text('y') }), CALL);
        await w.waitEvents(first.watchId, 2);
        await sleep(SETTLE_MS);
        // Per watch in arrival order (etcd orders the watches of one revision as it likes).
        const rest = w.stream.received.slice(7).map(plain) as { watchId: bigint }[];
        out.push(...rest.sort((a, b) => (a.watchId < b.watchId ? -1 : a.watchId > b.watchId ? 1 : 0)));
      } finally {
        w.close();
      }
    });
    assert.ok(
      out.some((r) => (r as { cancelReason: string }).cancelReason === 'mvcc: watcher range is empty'),
      'no refusal of the empty range',
    );
    assert.ok(
      out.some((r) => (r as { next?: { watchId: bigint } }).next?.watchId === -1n),
      'the unknown cancel was answered',
    );
  });

  test('a response larger than the limit is fragmented for a watcher that asked for it', async () => {
    const out = await same('fragments', async (m, out) => {
      const w = new WatchClient(m.endpoint);
      try {
        const range = { key: text('fr/'), rangeEnd: text('fr0'), prevKv: true };
        const fragmented = await w.create({ ...range, fragment: true });
        const whole = await w.create(range);
        // Each put is read before the next: a watcher whose transport is full gets the next
        // revisions through its catch-up, grouped differently from etcd (as it may).
        for (let i = 0; i < 4; i++) {
          await m.channel.unary(
            KVService.Put,
            PutRequest.fromPartial({ key: text(`fr/${i}`), value: Buffer.alloc(BIG_VALUE_BYTES, i) }),
            CALL,
          );
          await w.waitEvents(fragmented, i + 1, 20_000);
          await w.waitEvents(whole, i + 1, 20_000);
          await sleep(50);
        }
        await m.channel.unary(
          KVService.DeleteRange,
          DeleteRangeRequest.fromPartial({ key: text('fr/'), rangeEnd: text('fr0') }),
          CALL,
        );
        await w.waitEvents(fragmented, 8, 20_000);
        await w.waitEvents(whole, 8, 20_000);
        await sleep(SETTLE_MS);
        out.push({ fragmented: w.responses(fragmented).map(plain), whole: w.responses(whole).map(plain) });
      } finally {
        w.close();
      }
    });
    const { fragmented } = out[0] as { fragmented: { fragment: boolean }[] };
    assert.deepEqual(
      fragmented.slice(-2).map((r) => r.fragment),
      [true, false],
      'the delete of 4 MB reaches the fragmenting watcher in two fragments',
    );
  });
});
