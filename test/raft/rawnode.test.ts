// The RawNode contract: what a Ready holds, in which order it may be handled, and how bad input
// is refused.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  ConfChangeType,
  type ConfState,
  createSeededRandom,
  decodeConfChange,
  EMPTY_BYTES,
  ErrInvalidConfChange,
  ErrInvalidConfig,
  ErrInvalidMessage,
  ErrStepLocalMsg,
  ErrStepPeerNotFound,
  MemoryStorage,
  MessageType,
  newMessage,
  RaftInvariantError,
  RawNode,
  StateType,
} from '../../src/raft/index.ts';
import { describe, enc, Member, Network, ofType, testNode } from './harness.ts';

const random = createSeededRandom(1);

test('bootstrap: the first Ready persists and applies the initial membership', () => {
  const storage = new MemoryStorage();
  const node = new RawNode({ id: 1n, random }, storage);
  node.bootstrap([{ id: 1n }, { id: 2n, context: enc('two') }, { id: 3n }]);
  const rd = node.ready();
  assert.deepEqual(rd.hardState, { term: 1, vote: 0n, commit: 3 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(
    rd.entries.map((e) => [e.index, e.term, e.type]),
    [
      [1, 1, 1],
      [2, 1, 1],
      [3, 1, 1],
    ],
  );
  assert.deepEqual(rd.committedEntries, rd.entries);
  const ccs = rd.committedEntries.map((e) => decodeConfChange(e.data));
  assert.deepEqual(
    ccs.map((c) => [c.type, c.nodeId]),
    [
      [ConfChangeType.AddNode, 1n],
      [ConfChangeType.AddNode, 2n],
      [ConfChangeType.AddNode, 3n],
    ],
  );
  assert.deepEqual(ccs[1]!.context, enc('two'));
  storage.append(rd.entries);
  storage.setHardState(rd.hardState!);
  let cs: ConfState | undefined;
  for (const c of ccs) cs = node.applyConfChange(c);
  assert.deepEqual(cs, { voters: [1n, 2n, 3n], learners: [] });
  node.advance(rd);
  assert.equal(node.hasReady(), false);
  assert.throws(() => node.bootstrap([{ id: 1n }]), ErrInvalidConfChange, 'a nonempty storage');
});

test('bootstrap refuses an empty or duplicated peer list', () => {
  const node = new RawNode({ id: 1n, random }, new MemoryStorage());
  assert.throws(() => node.bootstrap([]), ErrInvalidConfChange);
  assert.throws(() => node.bootstrap([{ id: 1n }, { id: 1n }]), ErrInvalidConfChange);
  assert.throws(() => node.bootstrap([{ id: 0n }]), ErrInvalidConfChange);
  assert.equal(node.hasReady(), false, 'nothing changed');
});

test('one Ready at a time: ready() throws until advance(), and hasReady() is false meanwhile', () => {
  const m = testNode(1, [1, 2, 3]);
  m.node.campaign();
  assert.equal(m.node.hasReady(), true);
  const rd = m.node.ready();
  m.node.tick();
  m.node.step(newMessage({ type: MessageType.MsgVoteResp, from: 2n, to: 1n, term: 1 }));
  assert.equal(m.node.hasReady(), false);
  assert.throws(() => m.node.ready(), RaftInvariantError);
  assert.throws(() => m.node.advance({ ...rd }), RaftInvariantError, 'not the Ready handed out');
  m.storage.setHardState(rd.hardState!);
  m.node.advance(rd);
  assert.equal(m.node.hasReady(), true, 'what happened meanwhile comes in the next Ready');
  assert.equal(m.node.ready().softState?.raftState, StateType.Leader);
});

test("a leader's appends and heartbeats may go out before its write; answers and votes only after", () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.node(1).campaign();
  const pre = net.member(1).node.ready();
  assert.deepEqual(pre.earlyMessages, [], 'a pre-candidate sends nothing early');
  assert.equal(ofType(pre.messages, MessageType.MsgPreVote).length, 2);
  net.member(1).storage.append(pre.entries);
  net.member(1).node.advance(pre);
  net.send(pre.messages);
  net.stabilize();
  const leader = net.member(1);
  assert.equal(leader.state, StateType.Leader);
  leader.node.propose(enc('x'));
  const rd = leader.node.ready();
  assert.deepEqual(
    rd.earlyMessages.map((m) => [m.type, m.to]),
    [
      [MessageType.MsgApp, 2n],
      [MessageType.MsgApp, 3n],
    ],
  );
  assert.deepEqual(rd.messages, []);
  leader.storage.append(rd.entries);
  leader.node.advance(rd);
  // The follower's acknowledgement promises persisted entries: never early.
  const f = net.member(2);
  f.node.step(rd.earlyMessages[0]!);
  const frd = f.node.ready();
  assert.deepEqual(frd.earlyMessages, []);
  assert.deepEqual(
    frd.messages.map((m) => [m.type, m.to, m.index]),
    [[MessageType.MsgAppResp, 1n, rd.entries[0]!.index]],
  );
  f.storage.append(frd.entries);
  f.node.advance(frd);
});

test('a Ready is a snapshot: what happens before advance() does not change it', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  const leader = net.member(1);
  leader.node.propose(enc('a'));
  const rd = leader.node.ready();
  const entries = rd.entries.map((e) => e.index);
  const committed = rd.committedEntries.length;
  // Proposals and answers arrive while the application is still writing.
  leader.node.propose(enc('b'));
  leader.node.step(newMessage({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 2, index: entries[0]! }));
  assert.deepEqual(
    rd.entries.map((e) => e.index),
    entries,
  );
  assert.equal(rd.committedEntries.length, committed);
  leader.storage.append(rd.entries);
  leader.node.advance(rd);
  // 'b' is still unstable: it comes in the next Ready.
  const next = leader.node.ready();
  assert.deepEqual(
    next.entries.map((e) => e.index),
    [entries[0]! + 1],
  );
  leader.storage.append(next.entries);
  leader.node.advance(next);
});

test('nothing goes out early in a Ready that changes the term', () => {
  // A single voter with a learner: it wins its election, and appends to the learner, in one
  // Ready whose term is not yet persisted.
  const m = testNode(1, [1], { learners: [2] });
  m.node.campaign();
  const rd = m.node.ready();
  assert.equal(rd.softState?.raftState, StateType.Leader);
  assert.equal(rd.hardState?.term, 1);
  assert.deepEqual(rd.earlyMessages, []);
  assert.deepEqual(
    rd.messages.map((x) => [x.type, x.to]),
    [[MessageType.MsgApp, 2n]],
  );
});

test('the leader counts its own entries only once they are persisted', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  const leader = net.member(1);
  const before = leader.raft.raftLog.committed;
  leader.node.propose(enc('x'));
  const rd = leader.node.ready();
  // Follower 2 persists and acknowledges before the leader's own write completes.
  const toTwo = rd.earlyMessages.find((m) => m.to === 2n)!;
  net.member(2).node.step(toTwo);
  for (const m of net.member(2).drain()) if (m.to === 1n) leader.node.step(m);
  assert.equal(leader.raft.raftLog.committed, before, 'one follower alone is not a majority');
  // The leader's write completes: now the entry is on two of three.
  leader.storage.append(rd.entries);
  leader.node.advance(rd);
  assert.equal(leader.raft.raftLog.committed, before + 1);
});

test('mustSync is false when only the commit index changed', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.node(1).propose(enc('x'));
  const f = net.member(2);
  net.send(net.member(1).drain());
  // Deliver the append to 2 only, then the commit via a heartbeat.
  const app = net.queue.find((m) => m.to === 2n && m.type === MessageType.MsgApp)!;
  f.node.step(app);
  const rd1 = f.node.ready();
  assert.equal(rd1.mustSync, true);
  f.storage.append(rd1.entries);
  if (rd1.hardState) f.storage.setHardState(rd1.hardState);
  f.node.advance(rd1);
  f.node.step(newMessage({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 2, commit: app.entries[0]!.index }));
  const rd2 = f.node.ready();
  assert.equal(rd2.hardState?.commit, app.entries[0]!.index);
  assert.equal(rd2.mustSync, false);
  assert.equal(rd2.committedEntries.length, 1);
  f.node.advance(rd2);
});

test('step refuses bad input with a typed error and changes nothing', () => {
  const m = testNode(1, [1, 2, 3], { logTerms: [1], term: 1 });
  const before = JSON.stringify(m.node.status(), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  const bad: [() => void, new (...a: never[]) => Error][] = [
    [() => m.node.step(newMessage({ type: MessageType.MsgHup, from: 2n, to: 1n })), ErrStepLocalMsg],
    [() => m.node.step(newMessage({ type: MessageType.MsgBeat, from: 2n, to: 1n })), ErrStepLocalMsg],
    [() => m.node.step(newMessage({ type: MessageType.MsgAppResp, from: 9n, to: 1n, term: 5 })), ErrStepPeerNotFound],
    [() => m.node.step(newMessage({ type: MessageType.MsgApp, from: 2n, to: 7n, term: 5 })), ErrInvalidMessage],
    [() => m.node.step(newMessage({ type: MessageType.MsgApp, from: 0n, to: 1n, term: 5 })), ErrInvalidMessage],
    [
      () => m.node.step({ ...newMessage({ type: MessageType.MsgApp, from: 2n, to: 1n }), type: 77 as 0 }),
      ErrInvalidMessage,
    ],
    [
      () =>
        m.node.step(
          newMessage({
            type: MessageType.MsgApp,
            from: 2n,
            to: 1n,
            term: 5,
            index: 1,
            logTerm: 1,
            entries: [{ term: 5, index: 3, type: 0, data: EMPTY_BYTES }],
          }),
        ),
      ErrInvalidMessage,
    ],
    [() => m.node.step(newMessage({ type: MessageType.MsgSnap, from: 2n, to: 1n, term: 5 })), ErrInvalidMessage],
    [
      () =>
        m.node.step(
          newMessage({
            type: MessageType.MsgSnap,
            from: 2n,
            to: 1n,
            term: 5,
            snapshot: {
              metadata: { index: 5, term: 5, confState: { voters: [2n, 2n], learners: [] } },
              data: EMPTY_BYTES,
            },
          }),
        ),
      ErrInvalidMessage,
    ],
    [() => m.node.step(newMessage({ type: MessageType.MsgProp, from: 2n, to: 1n })), ErrInvalidMessage],
    [() => m.node.step(newMessage({ type: MessageType.MsgApp, from: 2n, to: 1n, term: -1 })), ErrInvalidMessage],
    [() => m.node.propose('text' as unknown as Uint8Array), ErrInvalidMessage],
    [() => m.node.transferLeader(0n), ErrInvalidMessage],
  ];
  for (const [f, E] of bad) assert.throws(f, E);
  const after = JSON.stringify(m.node.status(), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  assert.equal(after, before);
  assert.equal(m.node.hasReady(), false);
});

test('invalid configuration is refused with ErrInvalidConfig', () => {
  const s = new MemoryStorage();
  const bad = [
    { id: 0n, random },
    { id: 1n, random, electionTick: 1, heartbeatTick: 1 },
    { id: 1n, random, heartbeatTick: 0 },
    { id: 1n, random, maxInflightMsgs: 0 },
    { id: 1n, random, maxSizePerMsg: -5 },
    { id: 1n, random, readOnlyOption: 1 as const, checkQuorum: false },
    { id: 1n, random, applied: 3 },
    { id: 1n } as unknown as { id: bigint; random: () => number },
  ];
  for (const c of bad)
    assert.throws(
      () => new RawNode(c, s),
      ErrInvalidConfig,
      JSON.stringify(c, (_k, v) => String(v)),
    );
});

test('after a restart, entries up to Config.applied are not handed out again', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  net.propose(1, 'b');
  const m = net.member(2);
  const applied = m.raft.raftLog.applied;
  const replay = new Member(2n, {}, m.storage);
  assert.ok(replay.node.ready().committedEntries.length >= 2, 'without applied: everything again');
  const resumed = new Member(2n, { applied }, m.storage);
  const rd = resumed.node.hasReady() ? resumed.node.ready() : undefined;
  assert.equal(rd?.committedEntries.length ?? 0, 0);
  assert.equal(resumed.node.status().applied, applied);
  assert.equal(resumed.node.status().hardState.commit, applied);
});

test('status reports progress on the leader only', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'x');
  const s = net.node(1).status();
  assert.equal(s.softState.raftState, StateType.Leader);
  assert.deepEqual([...s.progress.keys()], [1n, 2n, 3n]);
  const last = net.member(1).raft.raftLog.lastIndex();
  for (const p of s.progress.values()) {
    assert.equal(p.match, last);
    assert.equal(p.stateName, 'StateReplicate');
  }
  assert.equal(net.node(2).status().progress.size, 0);
  assert.equal(net.node(2).status().softState.lead, 1n);
});

test('the same seeds give the same history, message for message', () => {
  const run = (): string[] => {
    const net = Network.bootstrap([1, 2, 3, 4, 5]);
    for (let i = 0; i < 60; i++) {
      net.tickAll();
      net.stabilize();
      if (i === 30) net.isolate(Number(net.leaders()[0]?.id ?? 1));
      if (i === 45) net.recover();
      const l = net.leaders()[0];
      if (l !== undefined && i % 7 === 0) l.node.propose(enc(`p${i}`));
    }
    return net.delivered.map(describe);
  };
  const a = run();
  assert.ok(a.length > 100);
  assert.deepEqual(run(), a);
});

test('the library is pure: no imports outside src/raft, no node: modules, no clock, no Math.random', () => {
  const dir = join(import.meta.dirname, '../../src/raft');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    const src = readFileSync(join(dir, f), 'utf8');
    for (const [, spec] of src.matchAll(/from '([^']+)'/g)) {
      assert.match(spec!, /^\.\/[a-z_]+\.ts$/, `${f} imports ${spec}`);
    }
    const code = src.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const banned of [
      'Math.random',
      'Date.now',
      'new Date',
      'performance.now',
      'setTimeout',
      'setInterval',
      'process.',
    ]) {
      assert.ok(!code.includes(banned), `${f} uses ${banned}`);
    }
  }
});
