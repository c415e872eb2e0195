/**
 * Watches against the real etcd: the async-iterable and callback forms, keys, prefixes and
 * ranges, start revisions, prevKv, filters, progress notifications, compaction as a typed
 * error, and closing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, CompactedError, op, type WatchBatch, type WatchEvent } from '../../src/client/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';

let member: Member;
let client: Client;

function describeEvent(e: WatchEvent): string {
  return `${e.type} ${e.kv.key} ${e.kv.value}${e.prevKv === undefined ? '' : ` (was ${e.prevKv.value})`}`;
}

/** The first `n` events of an iterable watch. */
async function take(watcher: AsyncIterable<WatchBatch>, n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of watcher) {
    out.push(...batch.events.map(describeEvent));
    if (out.length >= n) break;
  }
  return out;
}

describe('client watch', { timeout: 60_000 }, () => {
  before(async () => {
    member = await Member.start({
      kind: MemberKind.ETCD,
      name: 'watch',
      extraArgs: ['--experimental-watch-progress-notify-interval=200ms'],
    });
    client = new Client({ endpoints: [member.endpoint] });
  });
  after(async () => {
    client?.close();
    await member?.stop();
  });

  test('async iteration over a prefix, with prevKv; breaking out closes the watch', async () => {
    const watcher = client.watch('it/', { prefix: true, prevKv: true });
    await watcher.ready();
    const events = take(watcher, 4);
    await client.put('it/a', '1');
    await client.put('it/a', '2');
    await client.put('other', 'x');
    await client.delete('it/a');
    await client.put('it/b', '3');
    assert.deepEqual(await events, ['put it/a 1', 'put it/a 2 (was 1)', 'delete it/a  (was 2)', 'put it/b 3']);
    assert.equal(watcher.closed, true);
  });

  test('callback form, a single key and a range; events of one transaction come together', async () => {
    const single: string[] = [];
    const ranged: WatchBatch[] = [];
    const w1 = client.watch('cb/key', {}, (b) => single.push(...b.events.map(describeEvent)));
    const w2 = client.watch('cb/a', { end: 'cb/c' }, (b) => ranged.push(b));
    assert.throws(() => w1[Symbol.asyncIterator](), /not iterable/);
    await Promise.all([w1.ready(), w2.ready()]);
    await client.put('cb/key', 'k');
    await client.txn().then(op.put('cb/a', 'v'), op.put('cb/b', 'v'), op.put('cb/c', 'v')).commit();
    await waitUntil(() => single.length === 1 && ranged.length === 1);
    assert.deepEqual(single, ['put cb/key k']);
    assert.deepEqual(
      ranged[0]!.events.map((e) => e.kv.key.toString()),
      ['cb/a', 'cb/b'],
    );
    const [a, b] = ranged[0]!.events;
    assert.equal(a!.kv.modRevision, b!.kv.modRevision);
    await Promise.all([w1.close(), w2.close()]);
  });

  test('from a start revision, with filters', async () => {
    const start = (await client.put('h/x', '1')).header.revision;
    await client.put('h/x', '2');
    await client.delete('h/x');
    await client.put('h/y', '3');
    const all = await take(client.watch('h/', { prefix: true, startRevision: start }), 4);
    assert.deepEqual(all, ['put h/x 1', 'put h/x 2', 'delete h/x ', 'put h/y 3']);
    const deletes = await take(client.watch('h/', { prefix: true, startRevision: start, noPut: true }), 1);
    assert.deepEqual(deletes, ['delete h/x ']);
    const puts = await take(client.watch('h/', { prefix: true, startRevision: start, noDelete: true }), 3);
    assert.deepEqual(puts, ['put h/x 1', 'put h/x 2', 'put h/y 3']);
  });

  test('progress notifications: on request, and while nothing changes', async () => {
    const watcher = client.watch('quiet/', { prefix: true });
    await watcher.ready();
    const progress = new Promise<WatchBatch>((resolve) => watcher.once('progress', resolve));
    client.requestWatchProgress();
    const batch = await progress;
    assert.equal(batch.events.length, 0);
    assert.equal(batch.progressNotify, true);
    assert.ok(batch.header.revision > 0n);
    await watcher.close();
    // Asked for at creation: the server sends them by itself while nothing happens.
    const notified = client.watch('quiet/', { prefix: true, progressNotify: true });
    const periodic = await new Promise<WatchBatch>((resolve) => notified.once('progress', resolve));
    assert.equal(periodic.progressNotify, true);
    assert.equal(notified.nextRevision, periodic.header.revision + 1n);
    await notified.close();
  });

  test('a start revision that was compacted away is a typed error with the compaction revision', async () => {
    const first = (await client.put('cmp', '1')).header.revision;
    const last = (await client.put('cmp', '2')).header.revision;
    await client.compact(last);
    const watcher = client.watch('cmp', { startRevision: first });
    await assert.rejects(take(watcher, 1), (err: unknown) => {
      assert.ok(err instanceof CompactedError);
      assert.equal(err.compactRevision, last);
      return true;
    });
    assert.equal(watcher.closed, true);
    const withListener = client.watch('cmp', { startRevision: first }, () => {});
    const failure = await new Promise<unknown>((resolve) => withListener.on('error', resolve));
    assert.ok(failure instanceof CompactedError);
  });

  test('an aborted signal closes the watch; close() ends iteration', async () => {
    const controller = new AbortController();
    const watcher = client.watch('sig/', { prefix: true, signal: controller.signal });
    await watcher.ready();
    const iteration = take(watcher, 1);
    controller.abort();
    assert.deepEqual(await iteration, []);
    assert.equal(watcher.closed, true);
  });
});

async function waitUntil(predicate: () => boolean): Promise<void> {
  const startMs = Date.now();
  while (!predicate()) {
    if (Date.now() - startMs > 5_000) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
