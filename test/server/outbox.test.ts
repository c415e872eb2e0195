/**
 * The raft loop's outbox (src/server/outbox.ts): messages of a Ready that only applies entries
 * wait for the next turn, a commit notice (an append without entries) is held for the next
 * append to its follower or NOTICE_HOLD_MS unless the follower waits on a commit, and nothing
 * is sent after close.
 */
import assert from 'node:assert/strict';
import { describe, mock, test } from 'node:test';
import { type Entry, EntryType, type Message, MessageType, messageTypeName, newMessage } from '../../src/raft/index.ts';
import { NOTICE_HOLD_MS, Outbox } from '../../src/server/outbox.ts';

const TIMEOUT = { timeout: 10_000 };

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs `body` with setTimeout mocked: `tick(ms)` fires the notice timer (setImmediate stays real). */
async function withMockTimers(body: (tick: (ms: number) => void) => Promise<void>): Promise<void> {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    await body((ms) => mock.timers.tick(ms));
  } finally {
    mock.timers.reset();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function entry(index: number): Entry {
  return { term: 2, index, type: EntryType.Normal, data: new Uint8Array([index]) };
}

/** An append to `to` at `index` committing `commit`, with `entries` (none: a commit notice). */
function append(to: bigint, index: number, commit: number, entries: Entry[] = []): Message {
  return newMessage({ type: MessageType.MsgApp, from: 1n, to, term: 2, index, logTerm: 2, commit, entries });
}

function heartbeat(to: bigint, commit: number): Message {
  return newMessage({ type: MessageType.MsgHeartbeat, from: 1n, to, term: 2, commit });
}

/** An outbox that records what it sends, one array per call. */
function recording(): { outbox: Outbox; sent: Message[][] } {
  const sent: Message[][] = [];
  return { outbox: new Outbox((messages) => sent.push([...messages])), sent };
}

function describeSent(sent: Message[][]): string[][] {
  return sent.map((batch) =>
    batch.map((m) => `${messageTypeName(m.type)} to ${m.to} commit ${m.commit} entries ${m.entries.length}`),
  );
}

describe('Outbox', () => {
  test('send goes out at once; sendCommitted after responses waits for the next turn', TIMEOUT, async () => {
    const { outbox, sent } = recording();
    outbox.send([heartbeat(2n, 5)]);
    assert.equal(sent.length, 1);
    outbox.sendCommitted([heartbeat(3n, 6)], true);
    await Promise.resolve();
    assert.equal(sent.length, 1, 'held through the microtasks of this turn');
    await nextTurn();
    assert.deepEqual(describeSent(sent), [
      ['MsgHeartbeat to 2 commit 5 entries 0'],
      ['MsgHeartbeat to 3 commit 6 entries 0'],
    ]);
    outbox.close();
  });

  test('what waits for the next turn goes before a later send (order per peer kept)', TIMEOUT, async () => {
    const { outbox, sent } = recording();
    outbox.sendCommitted([heartbeat(2n, 5)], true);
    outbox.send([heartbeat(2n, 6)]);
    assert.deepEqual(describeSent(sent), [
      ['MsgHeartbeat to 2 commit 5 entries 0'],
      ['MsgHeartbeat to 2 commit 6 entries 0'],
    ]);
    await nextTurn();
    assert.equal(sent.length, 2, 'nothing is sent twice');
    outbox.close();
  });

  test('an append to a follower replaces the commit notice held for it, not for others', TIMEOUT, async () => {
    await withMockTimers(async (tick) => {
      const { outbox, sent } = recording();
      outbox.sendCommitted([append(2n, 10, 10), append(3n, 10, 10), heartbeat(2n, 10)], true);
      outbox.send([append(2n, 10, 10, [entry(11)])]);
      assert.deepEqual(describeSent(sent), [
        ['MsgHeartbeat to 2 commit 10 entries 0'],
        ['MsgApp to 2 commit 10 entries 1'],
      ]);
      await nextTurn();
      assert.equal(sent.length, 2, 'the notice to 3 is still held');
      tick(NOTICE_HOLD_MS);
      assert.deepEqual(describeSent(sent).slice(2), [['MsgApp to 3 commit 10 entries 0']]);
      outbox.close();
    });
  });

  test(
    'a commit notice is held past the next turn, then sent by the timer (the latest per follower)',
    TIMEOUT,
    async () => {
      await withMockTimers(async (tick) => {
        const { outbox, sent } = recording();
        outbox.sendCommitted([append(2n, 10, 10)], true);
        outbox.sendCommitted([append(2n, 11, 11)], true);
        await nextTurn();
        await nextTurn();
        assert.deepEqual(sent, [], 'held beyond the next turn');
        tick(NOTICE_HOLD_MS);
        assert.deepEqual(describeSent(sent), [['MsgApp to 2 commit 11 entries 0']]);
        tick(NOTICE_HOLD_MS);
        assert.equal(sent.length, 1, 'nothing is sent twice');
        outbox.close();
      });
    },
  );

  test('a held notice goes before another kind of message to its follower', TIMEOUT, async () => {
    await withMockTimers(async (tick) => {
      const { outbox, sent } = recording();
      outbox.sendCommitted([append(2n, 10, 10), append(3n, 10, 10)], true);
      await nextTurn();
      outbox.send([heartbeat(2n, 10)]);
      assert.deepEqual(describeSent(sent), [
        ['MsgApp to 2 commit 10 entries 0'],
        ['MsgHeartbeat to 2 commit 10 entries 0'],
      ]);
      tick(NOTICE_HOLD_MS);
      assert.deepEqual(describeSent(sent).slice(2), [['MsgApp to 3 commit 10 entries 0']]);
      outbox.close();
    });
  });

  test(
    'a follower that waits on a commit gets its notices at once, before the apply, until one carries it',
    TIMEOUT,
    async () => {
      await withMockTimers(async (tick) => {
        const { outbox, sent } = recording();
        outbox.awaitCommit(2n, 11);
        const ready = [append(2n, 10, 10), append(3n, 10, 10), heartbeat(4n, 10)];
        const rest = outbox.sendAwaited(ready);
        assert.deepEqual(describeSent(sent), [['MsgApp to 2 commit 10 entries 0']], 'index 11 is not committed yet');
        assert.deepEqual(describeSent([[...rest]]), [
          ['MsgApp to 3 commit 10 entries 0', 'MsgHeartbeat to 4 commit 10 entries 0'],
        ]);
        outbox.sendCommitted(rest, false);
        assert.deepEqual(
          describeSent(sent).slice(1),
          [['MsgHeartbeat to 4 commit 10 entries 0']],
          'the notice to 3 held',
        );
        assert.deepEqual(outbox.sendAwaited([append(2n, 11, 11)]), [], 'sent, nothing left');
        assert.deepEqual(describeSent(sent).slice(2), [['MsgApp to 2 commit 11 entries 0']]);
        // The wait is over: the next notice to 2 is held like any other.
        const unchanged = [append(2n, 12, 12)];
        assert.equal(outbox.sendAwaited(unchanged), unchanged);
        outbox.sendCommitted(unchanged, true);
        await nextTurn();
        assert.equal(sent.length, 3);
        tick(NOTICE_HOLD_MS);
        assert.deepEqual(describeSent(sent).slice(3), [
          ['MsgApp to 3 commit 10 entries 0', 'MsgApp to 2 commit 12 entries 0'],
        ]);
        outbox.close();
      });
    },
  );

  test('close drops what is held; nothing is sent after it', TIMEOUT, async () => {
    const { outbox, sent } = recording();
    outbox.sendCommitted([append(2n, 10, 10), heartbeat(3n, 10)], true);
    outbox.sendCommitted([append(3n, 10, 10)], true);
    outbox.close();
    outbox.send([heartbeat(2n, 10)]);
    outbox.sendCommitted([heartbeat(2n, 10)], true);
    await delay(50);
    assert.deepEqual(sent, []);
  });
});
