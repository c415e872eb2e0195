/**
 * etcd's watch guarantees on seeded random histories, against etcd-ts (or the real etcd with
 * COMPAT_TARGET=etcd, to prove the test). Three writers run puts, single and range deletes and
 * multi-put txns concurrently while watchers on one key, on a prefix, on a range and on every
 * key run, some from past revisions, some created while the writes go on, with prev_kv and
 * with the NOPUT and NODELETE filters.
 *
 * The expected history does not come from the writers: it is read back from the store with a
 * Range of every key at each revision (a key whose mod revision is r was put at r; a key at r-1
 * that is gone at r was deleted at r). Per watcher: events in revision order, each revision's
 * events in one response, and exactly the expected events (none missing, none twice), with the
 * right previous values. The member is then SIGKILLed and restarted; watchers resume from their
 * last revision + 1 and the history continues without a gap. Finally: a start revision before
 * the compaction gets `compact_revision` and a canceled watch, cancel stops a watch, and a
 * progress request answers watch id -1 with the current revision.
 *
 *   WATCH_SEED=<seed> node --import tsx --test test/compat/watch-guarantees.test.ts
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CompactionRequest,
  Compare_CompareResult,
  Compare_CompareTarget,
  DeleteRangeRequest,
  type Event,
  Event_EventType,
  type KeyValue,
  KVService,
  PutRequest,
  RangeRequest,
  type RequestOp,
  TxnRequest,
  type WatchCreateRequest,
  WatchCreateRequest_FilterType,
  type WatchResponse,
} from '../../src/proto/index.ts';
import { compatTarget, Member } from '../helpers/member.ts';
import { deriveSeed, parseSeed, Random, timeSeed } from '../helpers/random.ts';
import { WatchClient } from './watch-client.ts';

const TEST_TIMEOUT_MS = 60_000;
const CALL_TIMEOUT_MS = 5_000;
const WRITERS = 3;
const OPS_PER_WRITER = 60;
const KEY_COUNT = 20;
/** After the expected events have arrived, wait this long for any that should not come. */
const SETTLE_MS = 300;
/** More events in one revision than a catch-up scans for one response. */
const BIG_REVISION_KEYS = 1200;

const seed = process.env.WATCH_SEED !== undefined ? parseSeed(process.env.WATCH_SEED, 'WATCH_SEED') : timeSeed();
const text = (s: string) => Buffer.from(s);
const str = (b: Uint8Array) => Buffer.from(b).toString();
const keyName = (i: number) => `w/${String(i).padStart(2, '0')}`;

let member: Member | undefined;
after(async () => {
  await member?.stop();
});

function put(key: string, value: string): RequestOp {
  return { request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: text(key), value: text(value) }) } };
}

/** One random write: put, delete of a key, delete of a range, a txn of several puts, or a put outside `w/`. */
async function randomWrite(m: Member, rng: Random, tag: string): Promise<void> {
  const kind = rng.weighted([
    ['put', 5],
    ['delete', 1.5],
    ['deleteRange', 0.7],
    ['txn', 1.5],
    ['other', 0.5],
  ] as const);
  const options = { timeoutMs: CALL_TIMEOUT_MS };
  const value = `${tag}-${rng.int(0, 1e6)}`;
  switch (kind) {
    case 'put':
      await m.channel.unary(
        KVService.Put,
        PutRequest.fromPartial({ key: text(keyName(rng.int(0, KEY_COUNT - 1))), value: text(value) }),
        options,
      );
      return;
    case 'delete':
      await m.channel.unary(
        KVService.DeleteRange,
        DeleteRangeRequest.fromPartial({ key: text(keyName(rng.int(0, KEY_COUNT - 1))) }),
        options,
      );
      return;
    case 'deleteRange': {
      const from = rng.int(0, KEY_COUNT - 2);
      const to = rng.int(from + 1, Math.min(KEY_COUNT, from + 6));
      await m.channel.unary(
        KVService.DeleteRange,
        DeleteRangeRequest.fromPartial({ key: text(keyName(from)), rangeEnd: text(keyName(to)) }),
        options,
      );
      return;
    }
    case 'txn': {
      // Distinct keys: etcd refuses a txn that writes one key twice.
      const keys = new Set<number>();
      const n = rng.int(2, 6);
      while (keys.size < n) keys.add(rng.int(0, KEY_COUNT - 1));
      const [first, ...rest] = [...keys];
      const success = rest.map((k, i) => put(keyName(k), `${value}.${i}`));
      await m.channel.unary(
        KVService.Txn,
        TxnRequest.fromPartial({
          compare: [
            {
              result: Compare_CompareResult.GREATER,
              target: Compare_CompareTarget.VERSION,
              key: text(keyName(first!)),
              targetUnion: { $case: 'version', value: BigInt(rng.int(0, 3)) },
            },
          ],
          success,
          failure: [put(keyName(first!), `${value}.f`)],
        }),
        options,
      );
      return;
    }
    case 'other':
      await m.channel.unary(
        KVService.Put,
        PutRequest.fromPartial({ key: text(`x/${rng.int(0, 3)}`), value: text(value) }),
        options,
      );
      return;
  }
}

/** Writers running concurrently; `progress()` counts the writes done so far. */
function startWriters(m: Member, phase: number): { done: Promise<void>; progress: () => number } {
  let count = 0;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    const rng = new Random(deriveSeed(seed, phase * 100 + w));
    for (let i = 0; i < OPS_PER_WRITER; i++) {
      await randomWrite(m, rng, `p${phase}w${w}i${i}`);
      count++;
    }
  });
  return { done: Promise.all(writers).then(() => undefined), progress: () => count };
}

async function waitProgress(progress: () => number, count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (progress() < count) {
    if (Date.now() > deadline) throw new Error(`writers stuck at ${progress()} writes`);
    await sleep(5);
  }
}

async function currentRevision(m: Member): Promise<number> {
  const resp = await m.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: text('w/') }), {
    timeoutMs: CALL_TIMEOUT_MS,
  });
  return Number(resp.header!.revision);
}

/** The store's history: every key's pair at each revision, and the events of each revision. */
class History {
  readonly states = new Map<number, Map<string, KeyValue>>();
  readonly events = new Map<number, Event[]>();
  lastRev = 0;

  async readUpTo(m: Member, rev: number): Promise<void> {
    for (let r = Math.max(1, this.lastRev); r <= rev; r++) {
      if (this.states.has(r)) continue;
      const resp = await m.channel.unary(
        KVService.Range,
        RangeRequest.fromPartial({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0), revision: BigInt(r) }),
        { timeoutMs: CALL_TIMEOUT_MS },
      );
      this.states.set(r, new Map(resp.kvs.map((kv) => [str(kv.key), kv])));
    }
    for (let r = Math.max(2, this.lastRev + 1); r <= rev; r++) {
      const before = this.states.get(r - 1)!;
      const now = this.states.get(r)!;
      const events: Event[] = [];
      for (const [key, kv] of now) {
        if (Number(kv.modRevision) === r) events.push({ type: Event_EventType.PUT, kv, prevKv: before.get(key) });
      }
      for (const [key, kv] of before) {
        if (!now.has(key)) {
          events.push({
            type: Event_EventType.DELETE,
            kv: {
              key: kv.key,
              createRevision: 0n,
              modRevision: BigInt(r),
              version: 0n,
              value: new Uint8Array(0),
              lease: 0n,
            },
            prevKv: kv,
          });
        }
      }
      events.sort((a, b) => Buffer.compare(a.kv!.key, b.kv!.key));
      // Every revision after the first is one write transaction with at least one change.
      assert.ok(events.length > 0, `revision ${r} has no change in the store`);
      this.events.set(r, events);
    }
    this.lastRev = Math.max(this.lastRev, rev);
  }
}

interface WatchSpec {
  key: string;
  /** undefined: the single key; '\0': every key from `key` on. */
  rangeEnd?: string;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
}

function matches(spec: WatchSpec, key: string): boolean {
  if (spec.rangeEnd === undefined) return key === spec.key;
  return key >= spec.key && (spec.rangeEnd === '\0' || key < spec.rangeEnd);
}

function createRequest(spec: WatchSpec, startRevision: number): Partial<WatchCreateRequest> {
  const filters: WatchCreateRequest_FilterType[] = [];
  if (spec.noPut) filters.push(WatchCreateRequest_FilterType.NOPUT);
  if (spec.noDelete) filters.push(WatchCreateRequest_FilterType.NODELETE);
  return {
    key: text(spec.key),
    rangeEnd: spec.rangeEnd === undefined ? new Uint8Array(0) : text(spec.rangeEnd),
    startRevision: BigInt(startRevision),
    prevKv: spec.prevKv ?? false,
    filters,
  };
}

function expectedEvents(history: History, spec: WatchSpec, fromRev: number, toRev: number): string[] {
  const out: string[] = [];
  for (let r = fromRev; r <= toRev; r++) {
    for (const e of history.events.get(r) ?? []) {
      if (!matches(spec, str(e.kv!.key))) continue;
      if (e.type === Event_EventType.PUT ? spec.noPut : spec.noDelete) continue;
      out.push(describe(e, spec.prevKv ?? false));
    }
  }
  return out;
}

function describe(e: Event, withPrev: boolean): string {
  const kv = e.kv!;
  const type = e.type === Event_EventType.PUT ? 'PUT' : 'DELETE';
  let s = `${kv.modRevision} ${type} ${str(kv.key)}`;
  if (e.type === Event_EventType.PUT) s += `=${str(kv.value)} create=${kv.createRevision} version=${kv.version}`;
  else s += ` create=${kv.createRevision} version=${kv.version} value=${str(kv.value)}`;
  if (withPrev) {
    const p = e.prevKv;
    s += p === undefined ? ' prev=none' : ` prev=${str(p.value)}@${p.modRevision}`;
  }
  return s;
}

/**
 * A watcher's received events as comparable lines, after checking order and atomicity: mod
 * revisions never go down, and no revision is split over two responses. Events of one revision
 * are sorted by key (the store's history gives them in key order; a txn sends them in op order).
 */
function receivedEvents(responses: readonly WatchResponse[], withPrev: boolean, label: string): string[] {
  const responseOfRev = new Map<number, number>();
  let lastRev = 0;
  const out: Event[][] = [];
  responses.forEach((resp, i) => {
    for (const e of resp.events) {
      const rev = Number(e.kv!.modRevision);
      assert.ok(rev >= lastRev, `${label}: revision ${rev} after ${lastRev}`);
      const seen = responseOfRev.get(rev);
      assert.ok(seen === undefined || seen === i, `${label}: revision ${rev} split over responses ${seen} and ${i}`);
      responseOfRev.set(rev, i);
      if (rev !== lastRev) out.push([]);
      out[out.length - 1]!.push(e);
      lastRev = rev;
    }
  });
  return out.flatMap((group) =>
    group.sort((a, b) => Buffer.compare(a.kv!.key, b.kv!.key)).map((e) => describe(e, withPrev)),
  );
}

interface Watched {
  label: string;
  spec: WatchSpec;
  client: WatchClient;
  id: bigint;
  /** The first revision this watch reports. */
  fromRev: number;
}

async function startWatch(
  label: string,
  client: WatchClient,
  spec: WatchSpec,
  startRevision: number,
): Promise<Watched> {
  const created = await client.createRaw(createRequest(spec, startRevision));
  assert.equal(created.canceled, false, `${label}: ${created.cancelReason}`);
  const fromRev = startRevision > 0 ? startRevision : Number(created.header!.revision) + 1;
  return { label, spec, client, id: created.watchId, fromRev };
}

/** Waits for the expected events of a watcher, then a little more, and compares. */
async function check(w: Watched, history: History, toRev: number, earlier: string[] = []): Promise<void> {
  const expected = expectedEvents(history, w.spec, w.fromRev, toRev);
  await w.client.waitEvents(w.id, expected.length, 10_000).catch((err: Error) => {
    const got = receivedEvents(w.client.responses(w.id), w.spec.prevKv ?? false, w.label);
    assert.fail(
      `${err.message}\nexpected ${expected.length}, got ${got.length}; first missing: ${expected.find((e) => !got.includes(e))}`,
    );
  });
  await sleep(SETTLE_MS);
  const got = receivedEvents(w.client.responses(w.id), w.spec.prevKv ?? false, w.label);
  assert.deepEqual([...earlier, ...got], [...earlier, ...expected], `${w.label} (seed ${seed})`);
  assert.ok(
    w.client.responses(w.id).every((r) => !r.canceled),
    `${w.label}: canceled by the server`,
  );
}

/** The header revision of the last response of a watch: it has seen everything up to there. */
function lastSeenRevision(w: Watched): number {
  const responses = w.client.responses(w.id);
  const last = responses[responses.length - 1];
  return last === undefined ? w.fromRev - 1 : Number(last.header!.revision);
}

test(`watch guarantees on a random history (${compatTarget()}, seed ${seed})`, {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  member = await Member.start({ kind: compatTarget(), name: 'watch' });
  const m = member;
  const history = new History();
  const s1 = new WatchClient(m.endpoint);
  const s2 = new WatchClient(m.endpoint);
  const s3 = new WatchClient(m.endpoint);
  const clients = [s1, s2, s3];
  try {
    // Phase 1: watchers created before and while three writers run.
    const key = await startWatch('key w/03', s1, { key: 'w/03' }, 0);
    const writers = startWriters(m, 1);
    await waitProgress(writers.progress, (WRITERS * OPS_PER_WRITER) / 3);
    const prefix = await startWatch(
      'prefix w/ from 1 with prev_kv',
      s1,
      { key: 'w/', rangeEnd: 'w0', prevKv: true },
      1,
    );
    const midRev = await currentRevision(m);
    const range = await startWatch(
      'range [w/05, w/12) NOPUT from the past',
      s2,
      { key: 'w/05', rangeEnd: 'w/12', noPut: true, prevKv: true },
      Math.max(2, midRev - 20),
    );
    await waitProgress(writers.progress, (WRITERS * OPS_PER_WRITER) / 2);
    const all = await startWatch('every key NODELETE', s2, { key: '\0', rangeEnd: '\0', noDelete: true }, 0);
    const past = await startWatch('prefix w/ from the middle', s3, { key: 'w/', rangeEnd: 'w0' }, midRev);
    await writers.done;
    const end1 = await currentRevision(m);
    await history.readUpTo(m, end1);
    const phase1 = [key, prefix, range, all, past];
    for (const w of phase1) await check(w, history, end1);
    const seen1 = new Map(
      phase1.map((w) => [w, receivedEvents(w.client.responses(w.id), w.spec.prevKv ?? false, w.label)]),
    );

    // Phase 2: SIGKILL, restart, resume every watch from its last revision + 1.
    for (const c of clients) c.close();
    await m.kill('SIGKILL');
    await m.restart();
    assert.equal(await currentRevision(m), end1, 'the restarted member lost or invented revisions');
    const r1 = new WatchClient(m.endpoint);
    const r2 = new WatchClient(m.endpoint);
    clients.push(r1, r2);
    const resumed: [Watched, Watched][] = [];
    for (const [i, w] of phase1.entries()) {
      const client = i % 2 === 0 ? r1 : r2;
      resumed.push([w, await startWatch(`${w.label} (resumed)`, client, w.spec, lastSeenRevision(w) + 1)]);
    }
    const writers2 = startWriters(m, 2);
    await writers2.done;
    const end2 = await currentRevision(m);
    await history.readUpTo(m, end2);
    for (const [before, w] of resumed) {
      // The history seen before the restart and after it together: exactly the expected one.
      const expectedBefore = expectedEvents(history, before.spec, before.fromRev, w.fromRev - 1);
      assert.deepEqual(seen1.get(before), expectedBefore, `${before.label}: before the restart`);
      await check(w, history, end2, expectedBefore);
    }

    // Cancel: the canceled watch gets a canceled response and nothing more.
    const keyAgain = resumed[0]![1];
    keyAgain.client.cancel(keyAgain.id);
    await keyAgain.client.stream.until(
      (received) => received.some((r) => r.watchId === keyAgain.id && r.canceled),
      'cancel answered',
    );
    const countAfterCancel = keyAgain.client.events(keyAgain.id).length;
    const probe = await startWatch('key w/03 after the cancel', keyAgain.client, { key: 'w/03' }, 0);
    await m.channel.unary(KVService.Put, PutRequest.fromPartial({ key: text('w/03'), value: text('after-cancel') }));
    await probe.client.waitEvents(probe.id, 1);
    await sleep(SETTLE_MS);
    assert.equal(keyAgain.client.events(keyAgain.id).length, countAfterCancel, 'events after the cancel');

    // Progress request: watch id -1 and the current revision.
    const idle = new WatchClient(m.endpoint);
    clients.push(idle);
    await startWatch('idle', idle, { key: 'nothing-here' }, 0);
    const rev = await currentRevision(m);
    idle.progress();
    await idle.stream.until((received) => received.some((r) => r.watchId === -1n), 'progress response');
    const progress = idle.stream.received.find((r) => r.watchId === -1n)!;
    assert.equal(Number(progress.header!.revision), rev);
    assert.deepEqual([progress.events.length, progress.created, progress.canceled], [0, false, false]);

    // Compaction: a start before the compacted revision is refused with compact_revision; a
    // start after it catches up with the stored history.
    const end3 = await currentRevision(m);
    await history.readUpTo(m, end3);
    const compactRev = end3 - 10;
    await m.channel.unary(
      KVService.Compact,
      CompactionRequest.fromPartial({ revision: BigInt(compactRev), physical: true }),
    );
    const late = new WatchClient(m.endpoint);
    clients.push(late);
    const compacted = await startWatch(
      'from before the compaction',
      late,
      { key: 'w/', rangeEnd: 'w0' },
      compactRev - 3,
    );
    await late.stream.until(
      (received) => received.some((r) => r.watchId === compacted.id && r.canceled),
      'compacted watch canceled',
    );
    const cancel = late.responses(compacted.id).find((r) => r.canceled)!;
    assert.equal(Number(cancel.compactRevision), compactRev);
    assert.equal(cancel.events.length, 0);
    const fromAfter = await startWatch(
      'from after the compaction',
      late,
      { key: 'w/', rangeEnd: 'w0', prevKv: true },
      compactRev + 1,
    );
    await check(fromAfter, history, end3);
  } finally {
    for (const c of clients) c.close();
  }
});

test(`watch catch-up over many steps, a revision of ${BIG_REVISION_KEYS} events in one response (${compatTarget()})`, {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const m = await Member.start({ kind: compatTarget(), name: 'catch-up' });
  const live = new WatchClient(m.endpoint);
  const late = new WatchClient(m.endpoint);
  try {
    const spec: WatchSpec = { key: 'b/', rangeEnd: 'b0', prevKv: true };
    const synced = await startWatch('live prefix b/', live, spec, 0);
    const perTxn = 100;
    for (let i = 0; i < BIG_REVISION_KEYS; i += perTxn) {
      const ops = Array.from({ length: Math.min(perTxn, BIG_REVISION_KEYS - i) }, (_, j) =>
        put(`b/${String(i + j).padStart(5, '0')}`, `v${i + j}`),
      );
      await m.channel.unary(KVService.Txn, TxnRequest.fromPartial({ success: ops }), { timeoutMs: CALL_TIMEOUT_MS });
    }
    for (let i = 0; i < 40; i++) {
      await m.channel.unary(
        KVService.Put,
        PutRequest.fromPartial({ key: text(`b/${String(i * 7).padStart(5, '0')}`), value: text(`again${i}`) }),
      );
    }
    const deleted = await m.channel.unary(
      KVService.DeleteRange,
      DeleteRangeRequest.fromPartial({ key: text('b/'), rangeEnd: text('b0') }),
      { timeoutMs: CALL_TIMEOUT_MS },
    );
    assert.equal(Number(deleted.deleted), BIG_REVISION_KEYS);
    const deleteRev = Number(deleted.header!.revision);
    await m.channel.unary(KVService.Put, PutRequest.fromPartial({ key: text('b/after'), value: text('x') }));
    const end = await currentRevision(m);
    const history = new History();
    await history.readUpTo(m, end);
    const fromStart = await startWatch('prefix b/ from revision 1', late, spec, 1);
    for (const w of [synced, fromStart]) {
      await check(w, history, end);
      const holding = w.client
        .responses(w.id)
        .filter((r) => r.events.some((e) => Number(e.kv!.modRevision) === deleteRev));
      assert.equal(holding.length, 1, `${w.label}: the delete of ${BIG_REVISION_KEYS} keys in one response`);
    }
  } finally {
    live.close();
    late.close();
    await m.stop();
  }
});
