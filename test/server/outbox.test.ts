/**
 * The raft loop's outbox (src/server/outbox.ts): messages of a Ready that only applies entries
 * wait for the next turn, a commit notice (an append without entries) gives way to an append to
 * its follower sent before then, and nothing is sent after close.
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
  test('send goes out at once; sendAfterResponses waits for the next turn', TIMEOUT, async () => {
    const { outbox, sent } = recording();
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
    const { outbox, sent } = recording();
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
    const { outbox, sent } = recording();
    outbox.sendAfterResponses([append(2n, 10, 10), append(3n, 10, 10), heartbeat(2n, 10)]);
    outbox.send([append(2n, 10, 10, [entry(11)])]);
    assert.deepEqual(describeSent(sent), [
      ['MsgApp to 3 commit 10 entries 0', 'MsgHeartbeat to 2 commit 10 entries 0'],
      ['MsgApp to 2 commit 10 entries 1'],
    ]);
    await nextTurn();
    assert.equal(sent.length, 2, 'nothing is sent twice');
    outbox.close();
  });

  test('close drops what is held; nothing is sent after it', TIMEOUT, async () => {
    const { outbox, sent } = recording();
    outbox.sendAfterResponses([append(2n, 10, 10), heartbeat(3n, 10)]);
    outbox.close();
    outbox.send([heartbeat(2n, 10)]);
    outbox.sendAfterResponses([heartbeat(2n, 10)]);
    await delay(50);
    assert.deepEqual(sent, []);
  });
});
