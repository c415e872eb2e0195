/**
 * The raft loop's outbox (src/server/outbox.ts): messages of a Ready that only applies entries
 * wait for the next turn, commit notices (appends without entries) for the next append to
 * their follower or the notice delay, and nothing is sent after close.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Entry, EntryType, type Message, MessageType, messageTypeName, newMessage } from '../../src/raft/index.ts';
import { Outbox } from '../../src/server/outbox.ts';

const TIMEOUT = { timeout: 10_000 };

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
function recording(noticeDelayMs: number): { outbox: Outbox; sent: Message[][] } {
  const sent: Message[][] = [];
  return { outbox: new Outbox((messages) => sent.push([...messages]), noticeDelayMs), sent };
}

function describeSent(sent: Message[][]): string[][] {
  return sent.map((batch) =>
    batch.map((m) => `${messageTypeName(m.type)} to ${m.to} commit ${m.commit} entries ${m.entries.length}`),
  );
}

describe('Outbox', () => {
  test('send goes out at once; sendAfterResponses waits for the next turn', TIMEOUT, async () => {
    const { outbox, sent } = recording(60_000);
    outbox.send([heartbeat(2n, 5)]);
    assert.equal(sent.length, 1);
    outbox.sendAfterResponses([heartbeat(3n, 6)]);
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
    const { outbox, sent } = recording(60_000);
    outbox.sendAfterResponses([heartbeat(2n, 5)]);
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
    const { outbox, sent } = recording(30);
    outbox.sendAfterResponses([append(2n, 10, 10), append(3n, 10, 10)]);
    await nextTurn();
    assert.equal(sent.length, 0, 'commit notices are held past the next turn');
    outbox.send([append(2n, 10, 10, [entry(11)])]);
    assert.deepEqual(describeSent(sent), [['MsgApp to 2 commit 10 entries 1']]);
    await delay(100);
    assert.deepEqual(describeSent(sent), [['MsgApp to 2 commit 10 entries 1'], ['MsgApp to 3 commit 10 entries 0']]);
    outbox.close();
  });

  test('a newer commit notice replaces an older one held for the same follower', TIMEOUT, async () => {
    const { outbox, sent } = recording(30);
    outbox.sendAfterResponses([append(2n, 10, 10)]);
    outbox.sendAfterResponses([append(2n, 11, 11)]);
    // A heartbeat is not an append: the notice stays.
    outbox.send([heartbeat(2n, 11)]);
    await delay(100);
    assert.deepEqual(describeSent(sent), [
      ['MsgHeartbeat to 2 commit 11 entries 0'],
      ['MsgApp to 2 commit 11 entries 0'],
    ]);
    outbox.close();
  });

  test('close drops what is held; nothing is sent after it', TIMEOUT, async () => {
    const { outbox, sent } = recording(10);
    outbox.sendAfterResponses([append(2n, 10, 10), heartbeat(3n, 10)]);
    outbox.close();
    outbox.send([heartbeat(2n, 10)]);
    outbox.sendAfterResponses([heartbeat(2n, 10)]);
    await delay(50);
    assert.deepEqual(sent, []);
  });
});
