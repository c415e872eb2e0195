// Tests that follow the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
// Consensus Algorithm", extended version), section by section, in the manner of etcd-io/raft's
// raft_paper_test.go; then the five properties of Figure 3 on small clusters with partitions.

import assert from 'node:assert/strict';
import { describe as suite, test } from 'node:test';
import { createSeededRandom, type Message, MessageType, newMessage, StateType } from '../../src/raft/index.ts';
import { enc, entries, type Member, Network, ofType, testNode } from './harness.ts';

const msg = (m: Partial<Message> & { type: MessageType }): Message => newMessage(m);

/** Makes member `m` leader of its next term with the votes of `voters`, and persists its empty entry. */
function elect(m: Member, voters: readonly number[]): void {
  m.node.campaign();
  m.drain();
  for (const v of voters) {
    if (m.state === StateType.Leader) break;
    m.node.step(msg({ type: MessageType.MsgVoteResp, from: BigInt(v), to: m.id, term: m.term }));
  }
  assert.equal(m.state, StateType.Leader);
  m.drain();
}

/** Acknowledges the leader's whole log from every peer, so that its empty entry commits. */
function ackAll(m: Member, peers: readonly number[]): Message[] {
  const last = m.raft.raftLog.lastIndex();
  for (const p of peers) {
    m.node.step(msg({ type: MessageType.MsgAppResp, from: BigInt(p), to: m.id, term: m.term, index: last }));
  }
  return m.drain();
}

function logTerms(m: Member): number[] {
  const s = m.storage;
  return s.lastIndex() === 0 ? [] : s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity).map((e) => e.term);
}

suite('5.1 terms', () => {
  for (const [name, setup] of [
    ['follower', (_m: Member) => {}],
    ['candidate', (m: Member) => m.node.campaign()],
    ['leader', (m: Member) => elect(m, [2])],
  ] as const) {
    test(`a ${name} that sees a higher term adopts it and becomes follower`, () => {
      const m = testNode(1, [1, 2, 3]);
      setup(m);
      m.drain();
      m.node.step(msg({ type: MessageType.MsgApp, from: 2n, to: 1n, term: 5 }));
      assert.equal(m.term, 5);
      assert.equal(m.state, StateType.Follower);
      assert.equal(m.raft.lead, 2n);
    });
  }

  test('a request with a stale term is rejected (ignored)', () => {
    const m = testNode(1, [1, 2, 3], { term: 2 });
    m.node.step(
      msg({ type: MessageType.MsgApp, from: 2n, to: 1n, term: 1, index: 0, logTerm: 0, entries: entries(1, [1]) }),
    );
    assert.equal(m.term, 2);
    assert.equal(m.raft.raftLog.lastIndex(), 0);
    assert.deepEqual(m.drain(), []);
  });

  test('servers start as followers', () => {
    assert.equal(testNode(1, [1, 2, 3]).state, StateType.Follower);
  });
});

suite('5.2 leader election', () => {
  test('a leader sends heartbeats to all followers every heartbeat timeout', () => {
    const m = testNode(1, [1, 2, 3], { heartbeatTick: 1 });
    elect(m, [2]);
    m.node.tick();
    const hb = ofType(m.drain(), MessageType.MsgHeartbeat);
    assert.deepEqual(
      hb.map((x) => [x.to, x.term, x.commit]),
      [
        [2n, 1, 0],
        [3n, 1, 0],
      ],
    );
  });

  test('a follower that hears nothing for an election timeout starts an election', () => {
    for (const preVote of [false, true]) {
      const m = testNode(1, [1, 2, 3], { preVote });
      for (let i = 0; i < 2 * 10; i++) m.node.tick();
      const out = m.drain();
      if (preVote) {
        // The pre-vote round asks about the next term without moving to it.
        assert.equal(m.state, StateType.PreCandidate);
        assert.equal(m.term, 0);
        assert.deepEqual(
          ofType(out, MessageType.MsgPreVote).map((x) => [x.to, x.term]),
          [
            [2n, 1],
            [3n, 1],
          ],
        );
      } else {
        // Increments its term, votes for itself, asks every other server.
        assert.equal(m.state, StateType.Candidate);
        assert.equal(m.term, 1);
        assert.equal(m.raft.vote, 1n);
        assert.deepEqual(
          ofType(out, MessageType.MsgVote).map((x) => [x.to, x.term]),
          [
            [2n, 1],
            [3n, 1],
          ],
        );
      }
    }
  });

  test('a candidate that times out starts a new election in the next term', () => {
    const m = testNode(1, [1, 2, 3]);
    m.node.campaign();
    m.drain();
    assert.equal(m.term, 1);
    for (let i = 0; i < 2 * 10; i++) m.node.tick();
    assert.equal(m.state, StateType.Candidate);
    assert.equal(m.term, 2);
    assert.equal(ofType(m.drain(), MessageType.MsgVote).length, 2);
  });

  test('a candidate wins with votes from a majority, loses with rejections from a majority', () => {
    const cases: [number, Record<number, boolean>, StateType][] = [
      [1, {}, StateType.Leader],
      [3, { 2: true, 3: true }, StateType.Leader],
      [3, { 2: true }, StateType.Leader],
      [5, { 2: true, 3: true, 4: true, 5: true }, StateType.Leader],
      [5, { 2: true, 3: true, 4: true }, StateType.Leader],
      [5, { 2: true, 3: true }, StateType.Leader],
      [3, { 2: false, 3: false }, StateType.Follower],
      [5, { 2: false, 3: false, 4: false, 5: false }, StateType.Follower],
      [5, { 2: true, 3: false, 4: false, 5: false }, StateType.Follower],
      [3, {}, StateType.Candidate],
      [5, { 2: true }, StateType.Candidate],
      [5, { 2: false, 3: false }, StateType.Candidate],
      [5, {}, StateType.Candidate],
    ];
    for (const [size, votes, want] of cases) {
      const peers = Array.from({ length: size }, (_, i) => i + 1);
      const m = testNode(1, peers);
      m.node.campaign();
      for (const [id, granted] of Object.entries(votes)) {
        m.node.step(msg({ type: MessageType.MsgVoteResp, from: BigInt(id), to: 1n, term: m.term, reject: !granted }));
      }
      assert.equal(m.state, want, `size ${size} votes ${JSON.stringify(votes)}`);
      assert.equal(m.term, 1);
    }
  });

  test('each server votes for at most one candidate in a term, first come first served', () => {
    const cases: [number, number, boolean][] = [
      [0, 2, false],
      [0, 3, false],
      [2, 2, false],
      [3, 3, false],
      [2, 3, true],
      [3, 2, true],
    ];
    for (const [vote, candidate, wantReject] of cases) {
      const m = testNode(1, [1, 2, 3], { term: 1, vote });
      m.node.step(msg({ type: MessageType.MsgVote, from: BigInt(candidate), to: 1n, term: 1 }));
      const resp = ofType(m.drain(), MessageType.MsgVoteResp);
      assert.equal(resp.length, 1);
      assert.equal(resp[0]!.reject, wantReject, `voted ${vote}, asked by ${candidate}`);
      // The vote is persisted before the answer goes out.
      assert.equal(m.storage.initialState().hardState.vote, BigInt(wantReject ? vote : candidate));
    }
  });

  test('a candidate that hears from a leader of its term or later steps down', () => {
    for (const term of [1, 2]) {
      const m = testNode(1, [1, 2, 3]);
      m.node.campaign();
      m.node.step(msg({ type: MessageType.MsgApp, from: 2n, to: 1n, term }));
      assert.equal(m.state, StateType.Follower);
      assert.equal(m.term, term);
      assert.equal(m.raft.lead, 2n);
    }
  });

  test('election timeouts are randomized in [electionTimeout, 2 * electionTimeout)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const m = testNode(1, [1, 2, 3], { random: createSeededRandom(seed) });
      let ticks = 0;
      while (m.state === StateType.Follower) {
        m.node.tick();
        ticks++;
        assert.ok(ticks < 20, 'a follower must time out before twice the election timeout');
      }
      assert.ok(ticks >= 10, `timed out after ${ticks} ticks`);
      seen.add(ticks);
    }
    assert.ok(seen.size >= 8, `only ${seen.size} distinct timeouts`);
  });

  test('randomized timeouts rarely make followers time out together (split votes are rare)', () => {
    let conflicts = 0;
    const rounds = 200;
    for (let round = 0; round < rounds; round++) {
      const timeouts = [1, 2, 3, 4, 5].map((id) => {
        const m = testNode(id, [1, 2, 3, 4, 5], { random: createSeededRandom(round * 10 + id) });
        let ticks = 0;
        while (m.state === StateType.Follower) {
          m.node.tick();
          ticks++;
        }
        return ticks;
      });
      const first = Math.min(...timeouts);
      if (timeouts.filter((t) => t === first).length > 1) conflicts++;
    }
    assert.ok(conflicts / rounds < 0.3, `${conflicts} of ${rounds} elections had simultaneous timeouts`);
  });

  test('a candidate asks for votes with the index and term of its last entry', () => {
    for (const terms of [[1], [1, 2], [1, 1, 3]]) {
      const m = testNode(1, [1, 2, 3], { logTerms: terms, term: terms[terms.length - 1]! });
      m.node.campaign();
      for (const v of ofType(m.drain(), MessageType.MsgVote)) {
        assert.equal(v.index, terms.length);
        assert.equal(v.logTerm, terms[terms.length - 1]);
        assert.equal(v.term, terms[terms.length - 1]! + 1);
      }
    }
  });
});

suite('5.3 log replication', () => {
  test('the leader appends a proposal and sends it with the preceding index and term', () => {
    const m = testNode(1, [1, 2, 3]);
    elect(m, [2]);
    ackAll(m, [2, 3]);
    const committed = m.raft.raftLog.committed;
    assert.equal(committed, 1, 'the empty entry of the term is committed');
    m.node.propose(enc('some data'));
    const rd = m.node.ready();
    assert.deepEqual(
      rd.entries.map((e) => [e.index, e.term]),
      [[2, 1]],
    );
    // Appends in a term already persisted may go out before the leader's own write.
    assert.deepEqual(
      rd.earlyMessages.map((x) => [x.type, x.to, x.index, x.logTerm, x.commit, x.entries.length]),
      [
        [MessageType.MsgApp, 2n, 1, 1, 1, 1],
        [MessageType.MsgApp, 3n, 1, 1, 1, 1],
      ],
    );
    assert.deepEqual(rd.messages, []);
    m.storage.append(rd.entries);
    m.node.advance(rd);
  });

  test('an entry commits once the leader has replicated it on a majority, and followers learn it', () => {
    const m = testNode(1, [1, 2, 3]);
    elect(m, [2]);
    ackAll(m, [2, 3]);
    m.node.propose(enc('x'));
    m.drain();
    assert.equal(m.raft.raftLog.committed, 1);
    m.node.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 1, index: 2 }));
    assert.equal(m.raft.raftLog.committed, 2);
    const out = m.drain();
    assert.deepEqual(m.appliedData(), ['x']);
    // The new commit index goes to every follower.
    assert.deepEqual(
      ofType(out, MessageType.MsgApp).map((x) => [x.to, x.commit]),
      [
        [2n, 2],
        [3n, 2],
      ],
    );
  });

  test('commitment needs a majority: which acknowledgements commit', () => {
    const cases: [number, number[], boolean][] = [
      [1, [], true],
      [3, [], false],
      [3, [2], true],
      [3, [2, 3], true],
      [5, [], false],
      [5, [2], false],
      [5, [2, 3], true],
      [5, [2, 3, 4], true],
      [5, [2, 3, 4, 5], true],
    ];
    for (const [size, acks, want] of cases) {
      const peers = Array.from({ length: size }, (_, i) => i + 1);
      const m = testNode(1, peers);
      elect(m, peers.slice(1));
      ackAll(m, peers.slice(1));
      m.node.propose(enc('x'));
      m.drain();
      const li = m.raft.raftLog.lastIndex();
      for (const a of acks)
        m.node.step(msg({ type: MessageType.MsgAppResp, from: BigInt(a), to: 1n, term: 1, index: li }));
      m.drain();
      assert.equal(m.raft.raftLog.committed >= li, want, `size ${size} acks ${acks}`);
    }
  });

  test('committing an entry commits every entry before it, including older terms', () => {
    const m = testNode(1, [1, 2, 3], { logTerms: [2, 2], term: 2 });
    elect(m, [2]);
    m.node.propose(enc('x'));
    m.drain();
    const li = m.raft.raftLog.lastIndex();
    assert.equal(li, 4);
    m.node.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 3, index: li }));
    m.drain();
    assert.equal(m.raft.raftLog.committed, 4);
    assert.deepEqual(m.appliedData(), ['e1', 'e2', 'x']);
  });

  test('a follower applies what the leader says is committed, in log order', () => {
    const m = testNode(2, [1, 2, 3]);
    m.node.step(
      msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, entries: entries(1, [1, 1, 1]), commit: 2 }),
    );
    m.drain();
    assert.equal(m.raft.raftLog.committed, 2);
    assert.deepEqual(m.appliedData(), ['e1', 'e2']);
    m.node.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1, commit: 3 }));
    m.drain();
    assert.deepEqual(m.appliedData(), ['e1', 'e2', 'e3']);
  });

  test('a follower refuses an append whose preceding entry it does not have, with a hint', () => {
    // [term, index of the preceding entry, answer index, reject, hint, hint term]
    const cases: [number, number, number, boolean, number, number][] = [
      [0, 0, 1, false, 0, 0], // below the commit index: acknowledged with the commit index
      [1, 1, 1, false, 0, 0],
      [2, 2, 2, false, 0, 0],
      [1, 2, 2, true, 1, 1], // term mismatch at 2: back off to the last entry of term <= 1
      [3, 3, 3, true, 2, 2], // missing entry 3: hint at our last entry
    ];
    for (const [logTerm, index, wantIndex, wantReject, wantHint, wantHintTerm] of cases) {
      const m = testNode(2, [1, 2, 3], { logTerms: [1, 2], term: 2, commit: 1 });
      m.node.step(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 2, logTerm, index }));
      const [resp] = ofType(m.drain(), MessageType.MsgAppResp);
      assert.ok(resp);
      assert.deepEqual(
        [resp.index, resp.reject, resp.rejectHint, resp.logTerm],
        [wantIndex, wantReject, wantHint, wantHintTerm],
        `append after (${index}, ${logTerm})`,
      );
    }
  });

  test('a follower deletes conflicting entries and appends new ones', () => {
    const cases: [number, number, [number, number][], number[]][] = [
      [2, 2, [[3, 3]], [1, 2, 3]],
      [
        1,
        1,
        [
          [2, 3],
          [3, 4],
        ],
        [1, 3, 4],
      ],
      [0, 0, [[1, 1]], [1, 2]],
      [0, 0, [[1, 3]], [3]],
    ];
    for (const [index, logTerm, ents, want] of cases) {
      const m = testNode(2, [1, 2, 3], { logTerms: [1, 2], term: 2 });
      m.node.step(
        msg({
          type: MessageType.MsgApp,
          from: 1n,
          to: 2n,
          term: 4,
          index,
          logTerm,
          entries: ents.map(([i, t]) => ({ index: i, term: t, type: 0, data: enc('new') })),
        }),
      );
      m.drain();
      assert.deepEqual(logTerms(m), want, `append after (${index}, ${logTerm})`);
    }
  });

  test("the leader brings every follower's log in line with its own (Figure 7)", () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers: Record<string, number[]> = {
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    for (const [name, log] of Object.entries(followers)) {
      const lead = testNode(1, [1, 2, 3], { logTerms: leaderLog, term: 8, commit: leaderLog.length });
      const follower = testNode(2, [1, 2, 3], { logTerms: log, term: 7 });
      const net = Network.of([lead, follower]); // 3 is down: the leader needs its vote, given by hand
      lead.node.campaign();
      net.stabilize();
      if (lead.state !== StateType.Leader) {
        lead.node.step(msg({ type: MessageType.MsgVoteResp, from: 3n, to: 1n, term: 9 }));
      }
      net.stabilize();
      assert.equal(lead.state, StateType.Leader, name);
      net.propose(1, 'x');
      assert.deepEqual(logTerms(follower), logTerms(lead), `follower ${name}`);
      assert.deepEqual(logTerms(lead), [...leaderLog, 9, 9]);
    }
  });

  test('fast back-off: a diverged follower is repaired in a few round trips, not one per entry', () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const follower = testNode(2, [1, 2, 3], { logTerms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], term: 7 });
    const lead = testNode(1, [1, 2, 3], { logTerms: leaderLog, term: 8, commit: 10 });
    const net = Network.of([lead, follower]);
    lead.node.campaign();
    net.stabilize();
    lead.node.step(msg({ type: MessageType.MsgVoteResp, from: 3n, to: 1n, term: 9 }));
    net.stabilize();
    const rejects = ofType(net.delivered, MessageType.MsgAppResp).filter((x) => x.reject);
    assert.ok(rejects.length <= 3, `${rejects.length} rejections`);
    assert.deepEqual(logTerms(follower), logTerms(lead));
  });
});

suite('5.4 safety', () => {
  test('a voter denies its vote to a candidate whose log is less up to date (5.4.1)', () => {
    // [voter log terms, candidate last term, candidate last index, reject]
    const cases: [number[], number, number, boolean][] = [
      [[1], 1, 1, false],
      [[1], 1, 2, false],
      [[1, 1], 1, 1, true],
      [[1], 2, 1, false],
      [[1], 2, 2, false],
      [[1, 1], 2, 1, false],
      [[2], 1, 1, true],
      [[2], 1, 2, true],
      [[2, 1], 1, 1, true],
    ];
    for (const [log, logTerm, index, wantReject] of cases) {
      const m = testNode(1, [1, 2], { logTerms: log, term: 2 });
      m.node.step(msg({ type: MessageType.MsgVote, from: 2n, to: 1n, term: 3, logTerm, index }));
      const [resp] = ofType(m.drain(), MessageType.MsgVoteResp);
      assert.equal(resp?.reject, wantReject, `voter ${log}, candidate (${index}, ${logTerm})`);
    }
  });

  test('a leader commits entries of older terms only by committing one of its own term (5.4.2)', () => {
    // Leader of term 3 with entries of term 2 at 1 and 2, and its empty entry at 3.
    for (const [acked, wantCommit] of [
      [1, 0],
      [2, 0],
      [3, 3],
    ] as const) {
      const m = testNode(1, [1, 2, 3], { logTerms: [2, 2], term: 2 });
      elect(m, [2]);
      m.node.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 3, index: acked }));
      m.drain();
      assert.equal(m.raft.raftLog.committed, wantCommit, `acked up to ${acked}`);
    }
  });

  test('a leader never overwrites or deletes entries of its log (leader append-only)', () => {
    const m = testNode(1, [1, 2, 3], { logTerms: [1, 1], term: 1 });
    elect(m, [2]);
    const before = logTerms(m);
    // A stale leader's append, and an append claiming the leader's own term, change nothing.
    m.node.step(msg({ type: MessageType.MsgApp, from: 2n, to: 1n, term: 1, index: 0, entries: entries(1, [1]) }));
    m.node.step(
      msg({ type: MessageType.MsgApp, from: 3n, to: 1n, term: 2, index: 1, logTerm: 1, entries: entries(2, [2]) }),
    );
    m.drain();
    assert.equal(m.state, StateType.Leader);
    assert.deepEqual(logTerms(m), before);
    m.node.propose(enc('x'));
    m.drain();
    assert.deepEqual(logTerms(m), [...before, 2]);
  });
});

suite('Figure 3 properties under partitions', () => {
  /**
   * Five members through a scripted history: leaders in several partitions write entries that
   * conflict, members restart, partitions heal. After each step the properties are checked.
   */
  function history(check: (net: Network, leaders: Map<number, bigint>) => void): void {
    const net = Network.bootstrap([1, 2, 3, 4, 5], { preVote: false, checkQuorum: false });
    const leaders = new Map<number, bigint>();
    const observe = (): void => {
      for (const l of net.leaders()) {
        const prev = leaders.get(l.term);
        assert.ok(prev === undefined || prev === l.id, `two leaders in term ${l.term}: ${prev} and ${l.id}`);
        leaders.set(l.term, l.id);
      }
      check(net, leaders);
    };
    net.campaign(1);
    observe();
    net.propose(1, 'a');
    observe();
    // 1 and 2 are cut off; 1 keeps accepting proposals it can never commit.
    net.cutLink(1, 3);
    net.cutLink(1, 4);
    net.cutLink(1, 5);
    net.cutLink(2, 3);
    net.cutLink(2, 4);
    net.cutLink(2, 5);
    net.propose(1, 'lost-1');
    net.propose(1, 'lost-2');
    observe();
    // The majority elects 3, which commits other entries at the same indexes.
    net.campaign(3);
    observe();
    net.propose(3, 'b');
    net.propose(3, 'c');
    observe();
    // 3 crashes and comes back; 4 leads the majority.
    net.member(3).restart();
    net.campaign(4);
    observe();
    net.propose(4, 'd');
    observe();
    // Heal: the old leader and its follower must discard their uncommitted entries.
    net.recover();
    net.tickAll(1);
    net.stabilize();
    net.propose(4, 'e');
    observe();
    // Another change of leader after healing.
    net.campaign(2);
    observe();
    net.propose(2, 'f');
    observe();
  }

  test('election safety: at most one leader per term', () => {
    let terms = 0;
    history((_net, leaders) => {
      terms = leaders.size;
    });
    assert.ok(terms >= 4, `only ${terms} terms had leaders`);
  });

  test('log matching: logs agreeing on an (index, term) agree on everything before it', () => {
    history((net) => {
      const logs = [...net.members.values()].map((m) => {
        const s = m.storage;
        return s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity);
      });
      for (const a of logs) {
        for (const b of logs) {
          const n = Math.min(a.length, b.length);
          let matchedAt = -1;
          for (let i = n - 1; i >= 0; i--) {
            if (a[i]!.term === b[i]!.term) {
              matchedAt = i;
              break;
            }
          }
          for (let i = 0; i <= matchedAt; i++) {
            assert.equal(a[i]!.term, b[i]!.term);
            assert.deepEqual(a[i]!.data, b[i]!.data);
          }
        }
      }
    });
  });

  test('leader completeness: a leader holds every entry committed before its term', () => {
    const committed = new Map<number, number>(); // index -> term
    const checked = new Set<number>(); // terms whose leader was checked when it appeared
    history((net) => {
      for (const l of net.leaders()) {
        if (checked.has(l.term)) continue;
        checked.add(l.term);
        for (const [i, t] of committed) assert.equal(l.raft.raftLog.term(i), t, `leader ${l.id} at ${i}`);
      }
      for (const m of net.members.values()) {
        const c = m.raft.raftLog.committed;
        for (let i = 1; i <= c; i++) committed.set(i, m.raft.raftLog.term(i));
      }
    });
    assert.ok(committed.size >= 8);
    assert.ok(checked.size >= 4);
  });

  test('state machine safety: members apply the same entries in the same order', () => {
    let longest: string[] = [];
    history((net) => {
      for (const m of net.members.values()) {
        const applied = m.appliedData();
        const shorter = applied.length < longest.length ? applied : longest;
        const longer = applied.length < longest.length ? longest : applied;
        assert.deepEqual(shorter, longer.slice(0, shorter.length), `member ${m.id}`);
        if (applied.length > longest.length) longest = applied;
      }
    });
    assert.deepEqual(longest, ['a', 'b', 'c', 'd', 'e', 'f']);
  });
});
