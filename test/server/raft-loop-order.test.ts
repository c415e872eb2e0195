/**
 * The order in which the raft loop (src/server/raft-loop.ts) answers, applies and sends: a
 * follower answers an append before it applies what the append commits (the leader's clients
 * wait for that answer); a leader applies newly committed entries before it tells its
 * followers the commit index (its clients wait for the apply); a leader sends a small append
 * to its followers, then writes it on its own thread (no turn of the loop in between); a
 * leader holds a commit notice for the next append unless the follower forwarded the proposal
 * (or a read index), and then tells that follower before it applies.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { type Entry, EntryType, type Message, MessageType, messageTypeName, newMessage } from '../../src/raft/index.ts';
import { NOTICE_HOLD_MS } from '../../src/server/outbox.ts';
import { RaftLoop } from '../../src/server/raft-loop.ts';

const TIMEOUT = { timeout: 20_000 };
const dirs: string[] = [];
const loops: RaftLoop[] = [];

after(async () => {
  for (const loop of loops) await loop.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A loop for member `id` of a new cluster of `peers` that records what it sends and applies. */
async function openLoop(
  id: bigint,
  peers: bigint[],
): Promise<{ loop: RaftLoop; events: string[]; sent: Message[]; marks: Array<(m: Message) => void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-raft-loop-'));
  dirs.push(dir);
  const events: string[] = [];
  const sent: Message[] = [];
  /** Called for every message sent (a test's probe). */
  const marks: Array<(m: Message) => void> = [];
  const { loop } = await RaftLoop.open(
    {
      memberId: id,
      memberIdFromMetadata: () => id,
      walDir: join(dir, 'wal'),
      snapDir: join(dir, 'snap'),
      // No election or heartbeat during a test: the test plays the other member.
      heartbeatMs: 60_000,
      electionMs: 600_000,
      walMetadata: new Uint8Array([1]),
      bootstrapPeers: peers.map((p) => ({ id: p })),
      appliedIndex: 0,
    },
    {
      appended: (entries) => {
        for (const e of entries) events.push(`appended ${e.index}`);
      },
      // A proposal with data stands for a client of this member: applying it answers one.
      apply: (entries) => {
        let answered = false;
        for (const e of entries) {
          if (e.type === EntryType.Normal && e.data.length > 0) {
            events.push(`apply ${e.index}`);
            answered = true;
          }
        }
        return answered;
      },
      applySnapshot: async () => {},
      readStates: () => {},
      send: (messages) => {
        for (const m of messages) {
          sent.push(m);
          events.push(`send ${messageTypeName(m.type)} index ${m.index} commit ${m.commit}`);
          for (const mark of marks) mark(m);
        }
      },
      softState: () => {},
      afterReady: () => {},
    },
  );
  loops.push(loop);
  return { loop, events, sent, marks };
}

function entry(term: number, index: number): Entry {
  return { term, index, type: EntryType.Normal, data: new Uint8Array([index]) };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** As until, polling on every turn of the event loop (for tests that mock setTimeout). */
async function untilTurn(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Member 2 acknowledges the last append the leader sent it; returns the index acknowledged. */
function ackLast(loop: RaftLoop, sent: Message[]): number {
  const last = sent.filter((m) => m.type === MessageType.MsgApp).at(-1) as Message;
  const index = last.entries.at(-1)?.index ?? last.index;
  loop.node.step(newMessage({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: last.term, index }));
  loop.schedule();
  return index;
}

/** A proposal or read index (`type`) that member 2 forwards to member 1, with one byte of data. */
function fromFollower(type: MessageType, data: number): Message {
  return newMessage({
    type,
    from: 2n,
    to: 1n,
    entries: [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array([data]) }],
  });
}

/** Makes member 1 of a new cluster of two the leader, member 2 granting its votes. */
async function electLeader(): Promise<Awaited<ReturnType<typeof openLoop>>> {
  const opened = await openLoop(1n, [1n, 2n]);
  const { loop, sent } = opened;
  await loop.idle();
  loop.node.campaign();
  loop.schedule();
  await until(() => sent.some((m) => m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote), 'a vote');
  const vote = sent.find((m) => m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) as Message;
  const grant = (m: Message) =>
    newMessage({
      type: m.type === MessageType.MsgPreVote ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp,
      from: 2n,
      to: 1n,
      term: m.term,
    });
  loop.node.step(grant(vote));
  loop.schedule();
  if (vote.type === MessageType.MsgPreVote) {
    await until(() => sent.some((m) => m.type === MessageType.MsgVote), 'the vote after the pre-vote');
    loop.node.step(grant(sent.find((m) => m.type === MessageType.MsgVote) as Message));
    loop.schedule();
  }
  await until(() => loop.isLeader(), 'leadership');
  return opened;
}

describe('RaftLoop order', () => {
  test('a follower answers an append before it applies what the append commits', TIMEOUT, async () => {
    const { loop, events } = await openLoop(2n, [1n, 2n]);
    await loop.idle();
    // Member 1 leads term 2: entry 3, then entry 4 with the commit index at 3.
    const append = (index: number, commit: number) =>
      newMessage({
        type: MessageType.MsgApp,
        from: 1n,
        to: 2n,
        term: 2,
        index: index - 1,
        logTerm: index - 1 <= 2 ? 1 : 2,
        commit,
        entries: [entry(2, index)],
      });
    loop.node.step(append(3, 2));
    loop.schedule();
    await until(() => events.includes('send MsgAppResp index 3 commit 0'), 'the answer to entry 3');
    loop.node.step(append(4, 3));
    loop.schedule();
    await until(() => events.includes('apply 3'), 'entry 3 applied');
    const answer = events.indexOf('send MsgAppResp index 4 commit 0');
    assert.ok(answer >= 0, `entry 4 answered: ${events.join('; ')}`);
    assert.ok(answer < events.indexOf('apply 3'), `answered before applying: ${events.join('; ')}`);
  });

  test('a leader applies a committed entry before telling its follower the commit index', TIMEOUT, async () => {
    const { loop, events, sent } = await electLeader();
    // Member 2 acknowledges everything it is sent, so that the leader's entries commit.
    const ackAll = () => ackLast(loop, sent);
    await until(() => sent.some((m) => m.type === MessageType.MsgApp), 'the leader’s first append');
    const emptyEntry = ackAll();
    await until(() => sent.some((m) => m.type === MessageType.MsgApp && m.commit >= emptyEntry), 'its commit');
    loop.node.propose(new Uint8Array([9]));
    loop.schedule();
    await until(
      () => sent.some((m) => m.type === MessageType.MsgApp && m.entries.some((e) => e.data[0] === 9)),
      'the proposal sent',
    );
    const proposed = ackAll();
    await until(
      () => events.some((e) => e.startsWith(`send MsgApp index ${proposed} commit ${proposed}`)),
      'the notice',
    );
    const applied = events.indexOf(`apply ${proposed}`);
    assert.ok(applied >= 0, `applied: ${events.join('; ')}`);
    assert.ok(applied < events.indexOf(`send MsgApp index ${proposed} commit ${proposed}`), events.join('; '));
  });

  test('a leader writes a small append on its own thread, after sending it', TIMEOUT, async () => {
    const { loop, events, sent, marks } = await electLeader();
    await until(() => sent.some((m) => m.type === MessageType.MsgApp), 'the leader’s first append');
    // Member 2 takes the leader's first entry: the leader then replicates to it without probing.
    const first = sent.find((m) => m.type === MessageType.MsgApp) as Message;
    const firstIndex = first.entries.at(-1)?.index ?? first.index;
    loop.node.step(newMessage({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: first.term, index: firstIndex }));
    loop.schedule();
    await until(() => sent.some((m) => m.type === MessageType.MsgApp && m.commit >= firstIndex), 'its commit');
    // A microtask queued when the append leaves runs at the first await after it: with the
    // write on this thread, the entry is appended before that.
    let markedAt = -1;
    marks.push((m) => {
      if (m.type === MessageType.MsgApp && m.entries.some((e) => e.data[0] === 7)) {
        queueMicrotask(() => {
          markedAt = events.length;
          events.push('microtask');
        });
      }
    });
    loop.node.propose(new Uint8Array([7]));
    loop.schedule();
    await until(() => markedAt >= 0, 'the append sent');
    const index = (sent.find((m) => m.entries.some((e) => e.data[0] === 7)) as Message).entries[0]!.index;
    const appended = events.indexOf(`appended ${index}`);
    assert.ok(appended >= 0 && appended < markedAt, events.join('; '));
    const sentAt = events.findIndex((e) => e.startsWith(`send MsgApp index ${index - 1} `));
    assert.ok(sentAt >= 0 && sentAt < appended, `sent before the write: ${events.join('; ')}`);
  });

  test(
    'a leader holds a commit notice for the next append, unless the follower forwarded the proposal',
    TIMEOUT,
    async () => {
      const { loop, events, sent } = await electLeader();
      await until(() => sent.some((m) => m.type === MessageType.MsgApp), 'the leader’s first append');
      const first = ackLast(loop, sent);
      await until(() => sent.some((m) => m.type === MessageType.MsgApp && m.commit >= first), 'its commit');
      const carries = (data: number) => (m: Message) =>
        m.type === MessageType.MsgApp && m.entries.some((e) => e.data[0] === data);
      const notices = (commit: number) =>
        sent.filter((m) => m.type === MessageType.MsgApp && m.commit >= commit).length;
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        // A proposal of this member's client: applied (answering it), the notice of its commit held.
        loop.node.propose(new Uint8Array([7]));
        loop.schedule();
        await untilTurn(() => sent.some(carries(7)), 'the append of 7');
        const seven = ackLast(loop, sent);
        await untilTurn(() => events.includes(`apply ${seven}`), '7 applied');
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
        assert.equal(notices(seven), 0, `held: ${events.join('; ')}`);
        mock.timers.tick(NOTICE_HOLD_MS);
        assert.equal(notices(seven), 1, `sent by the timer: ${events.join('; ')}`);
        // A proposal member 2 forwarded: its client waits for member 2's apply, so no hold.
        loop.stepPeer(fromFollower(MessageType.MsgProp, 8));
        await untilTurn(() => sent.some(carries(8)), 'the append of 8');
        const eight = ackLast(loop, sent);
        await untilTurn(
          () => notices(eight) > 0 && events.includes(`apply ${eight}`),
          'the notice of 8 without the timer',
        );
        const noticeAt = events.findIndex((e) => e.startsWith('send MsgApp') && e.endsWith(`commit ${eight}`));
        assert.ok(
          noticeAt >= 0 && noticeAt < events.indexOf(`apply ${eight}`),
          `told before applying: ${events.join('; ')}`,
        );
        // A read index member 2 forwarded: it waits for the commit index, so the notice of
        // this member's next entry goes without the timer too.
        loop.stepPeer(fromFollower(MessageType.MsgReadIndex, 1));
        loop.node.propose(new Uint8Array([9]));
        loop.schedule();
        await untilTurn(() => sent.some(carries(9)), 'the append of 9');
        const nine = ackLast(loop, sent);
        await untilTurn(() => notices(nine) > 0, 'the notice of 9 without the timer');
      } finally {
        mock.timers.reset();
      }
    },
  );
});
