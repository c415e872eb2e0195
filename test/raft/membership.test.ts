// Membership changes one server at a time (Raft thesis 4.1-4.2), learners, and leader transfer
// (thesis 3.10).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ConfChange,
  ConfChangeType,
  EMPTY_BYTES,
  EntryType,
  ErrInvalidConfChange,
  ErrProposalDropped,
  encodeConfChange,
  MessageType,
  newMessage,
  StateType,
} from '../../src/raft/index.ts';
import { enc, Member, Network, ofType, testNode } from './harness.ts';

const cc = (type: ConfChange['type'], nodeId: number): ConfChange => ({
  id: 0n,
  type,
  nodeId: BigInt(nodeId),
  context: EMPTY_BYTES,
});

function cluster(ids = [1, 2, 3], options = {}): Network {
  const net = Network.bootstrap(ids, options);
  net.campaign(1);
  return net;
}

function voters(net: Network, id: number): bigint[] {
  return net.node(id).status().config.voters;
}

test('a learner receives the log but does not vote and does not count towards commitment', () => {
  const net = cluster();
  net.propose(1, 'before');
  net.add(new Member(4n, {}));
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4));
  net.stabilize();
  assert.deepEqual(net.node(1).status().config, { voters: [1n, 2n, 3n], learners: [4n] });
  assert.deepEqual(net.member(4).appliedData(), ['before']);
  assert.deepEqual(net.member(4).confState, { voters: [1n, 2n, 3n], learners: [4n] });
  // Two voters down: the leader and the learner are not a majority.
  net.cutLink(1, 2);
  net.cutLink(1, 3);
  net.propose(1, 'blocked');
  assert.deepEqual(net.member(4).appliedData(), ['before'], 'replicated but not committed');
  assert.equal(net.member(4).raft.raftLog.lastIndex(), net.member(1).raft.raftLog.lastIndex());
  // A learner never campaigns, whatever happens.
  for (let i = 0; i < 100; i++) net.tick(4);
  net.stabilize();
  assert.equal(net.member(4).state, StateType.Follower);
  assert.equal(ofType(net.delivered, MessageType.MsgPreVote).filter((m) => m.from === 4n).length, 0);
});

test('promoting a learner makes it a voter that counts', () => {
  const net = cluster();
  net.add(new Member(4n, {}));
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4));
  net.stabilize();
  net.node(1).proposeConfChange(cc(ConfChangeType.AddNode, 4));
  net.stabilize();
  assert.deepEqual(net.node(1).status().config, { voters: [1n, 2n, 3n, 4n], learners: [] });
  assert.deepEqual(net.member(4).confState, { voters: [1n, 2n, 3n, 4n], learners: [] });
  // Four voters: 1 and 4 alone are not a majority, 1, 2 and 4 are.
  net.cutLink(1, 2);
  net.cutLink(1, 3);
  net.propose(1, 'x');
  assert.deepEqual(net.member(1).appliedData(), []);
  net.recover();
  net.cutLink(1, 3);
  net.tickAll();
  net.stabilize();
  assert.deepEqual(net.member(1).appliedData(), ['x']);
});

test('a configuration takes effect when appended, before it commits', () => {
  const net = cluster();
  const applied = net.member(1).confChanges.length;
  net.isolate(1);
  net.node(1).proposeConfChange(cc(ConfChangeType.AddNode, 4));
  net.member(1).drain();
  assert.deepEqual(voters(net, 1), [1n, 2n, 3n, 4n], 'the leader uses it at once');
  assert.deepEqual(net.node(1).status().appliedConfig.voters, [1n, 2n, 3n], 'not applied yet');
  assert.equal(net.node(1).status().progress.has(4n), true, 'and replicates to the new member');
  assert.equal(net.member(1).confChanges.length, applied, 'the application sees it only once committed');
});

test('a follower undoes a configuration whose entry is truncated away', () => {
  const f = testNode(2, [1, 2, 3], { logTerms: [1], term: 1, commit: 1 });
  const conf = {
    index: 2,
    term: 1,
    type: EntryType.ConfChange,
    data: encodeConfChange(cc(ConfChangeType.RemoveNode, 3)),
  };
  f.node.step(
    newMessage({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, index: 1, logTerm: 1, entries: [conf] }),
  );
  f.drain();
  assert.deepEqual(f.node.status().config.voters, [1n, 2n]);
  // A new leader (term 2) never had it: its entry at 2 replaces the conf change.
  const plain = { index: 2, term: 2, type: EntryType.Normal, data: enc('other') };
  f.node.step(
    newMessage({ type: MessageType.MsgApp, from: 3n, to: 2n, term: 2, index: 1, logTerm: 1, entries: [plain] }),
  );
  f.drain();
  assert.deepEqual(f.node.status().config.voters, [1n, 2n, 3n]);
});

test('a member campaigns with the latest configuration in its log, even if it lags in applying it', () => {
  // Entries 2 and 3 remove 3 and add 4; the member knows of no commit past 1.
  const m = testNode(1, [1, 2, 3], { logTerms: [1], term: 1, commit: 1 });
  const ents = [cc(ConfChangeType.RemoveNode, 3), cc(ConfChangeType.AddNode, 4)].map((c, i) => ({
    index: 2 + i,
    term: 1,
    type: EntryType.ConfChange,
    data: encodeConfChange(c),
  }));
  m.node.step(
    newMessage({ type: MessageType.MsgApp, from: 2n, to: 1n, term: 1, index: 1, logTerm: 1, entries: ents, commit: 1 }),
  );
  m.drain();
  m.node.campaign();
  const votes = ofType(m.drain(), MessageType.MsgVote).map((v) => v.to);
  assert.deepEqual(votes, [2n, 4n]);
});

test('removing a voter shrinks the quorum; the removed member is left out', () => {
  const net = cluster([1, 2, 3, 4, 5]);
  net.node(1).proposeConfChange(cc(ConfChangeType.RemoveNode, 5));
  net.stabilize();
  assert.deepEqual(voters(net, 1), [1n, 2n, 3n, 4n]);
  assert.equal(net.node(1).status().progress.has(5n), false);
  net.propose(1, 'x');
  assert.deepEqual(net.member(5).appliedData(), [], 'no longer replicated to');
  assert.deepEqual(net.member(4).appliedData(), ['x']);
  assert.equal(net.member(5).confChanges.at(-1)?.nodeId, 5n, 'it applied its own removal');
});

test('a removed leader leads until its removal commits, then steps down', () => {
  const net = cluster();
  net.node(1).proposeConfChange(cc(ConfChangeType.RemoveNode, 1));
  const out = net.member(1).drain();
  assert.equal(net.member(1).state, StateType.Leader, 'still leading the new configuration');
  net.send(out);
  net.stabilize();
  assert.equal(net.member(1).state, StateType.Follower);
  assert.deepEqual(net.member(2).confState.voters, [2n, 3n]);
  // The remaining members elect a leader and carry on.
  for (let i = 0; i < 30 && net.leaders().length === 0; i++) {
    net.tick(2);
    net.tick(3);
    net.stabilize();
  }
  const leader = net.leader();
  assert.notEqual(leader.id, 1n);
  net.propose(Number(leader.id), 'y');
  assert.deepEqual(net.member(2).appliedData(), ['y']);
  assert.deepEqual(net.member(1).appliedData(), []);
});

test('one change at a time: a second one waits until the first commits', () => {
  const net = cluster();
  net.isolate(1);
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4));
  assert.throws(
    () => net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5)),
    (err: unknown) => err instanceof ErrProposalDropped && err.message.includes('not committed'),
  );
  net.recover();
  net.stabilize();
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5));
  net.stabilize();
  assert.deepEqual(net.node(1).status().config.learners, [4n, 5n]);
});

test('a new leader accepts no change before it has committed an entry of its term', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.dropIf((m) => m.type === MessageType.MsgApp);
  net.campaign(1);
  assert.throws(
    () => net.node(1).proposeConfChange(cc(ConfChangeType.AddNode, 4)),
    (err: unknown) => err instanceof ErrProposalDropped && err.message.includes('term'),
  );
  net.recover();
  net.tickAll();
  net.stabilize();
  net.node(1).proposeConfChange(cc(ConfChangeType.AddNode, 4));
  net.stabilize();
  assert.deepEqual(voters(net, 2), [1n, 2n, 3n, 4n]);
});

test('invalid changes are refused and change nothing', () => {
  const one = cluster([1]);
  assert.throws(() => one.node(1).proposeConfChange(cc(ConfChangeType.RemoveNode, 1)), ErrInvalidConfChange);
  const net = cluster();
  assert.throws(() => net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 2)), ErrInvalidConfChange);
  assert.throws(() => net.node(1).proposeConfChange(cc(ConfChangeType.AddNode, 0)), ErrInvalidConfChange);
  assert.throws(() => net.node(1).proposeConfChange({ ...cc(ConfChangeType.AddNode, 4), type: 9 as 0 }));
  assert.equal(net.member(1).raft.raftLog.lastIndex(), net.member(1).raft.raftLog.committed, 'nothing appended');
  assert.deepEqual(voters(net, 1), [1n, 2n, 3n]);
});

test('an invalid change that reaches the log anyway is a no-op on every member', () => {
  const f = testNode(2, [2], { term: 1 });
  const bad = {
    index: 1,
    term: 1,
    type: EntryType.ConfChange,
    data: encodeConfChange(cc(ConfChangeType.RemoveNode, 2)),
  };
  f.node.step(
    newMessage({
      type: MessageType.MsgApp,
      from: 1n,
      to: 2n,
      term: 1,
      index: 0,
      logTerm: 0,
      entries: [bad],
      commit: 1,
    }),
  );
  const rd = f.node.ready();
  assert.equal(rd.committedEntries.length, 1);
  assert.throws(
    () => f.node.applyConfChange(cc(ConfChangeType.RemoveNode, 2)),
    (err: unknown) => err instanceof ErrInvalidConfChange && err.message.includes('removed all voters'),
  );
  f.storage.append(rd.entries);
  f.node.advance(rd);
  assert.deepEqual(f.node.status().config.voters, [2n]);
});

test('a refused change forwarded by a follower becomes an empty entry', () => {
  const net = cluster();
  net.isolate(1);
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4)); // pending
  net.recover();
  net.node(2).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5)); // forwarded, refused
  net.stabilize();
  assert.deepEqual(net.node(1).status().config.learners, [4n]);
  assert.deepEqual(
    net.member(2).confChanges.map((c) => c.nodeId),
    [1n, 2n, 3n, 4n],
  );
});

test('applyConfChange returns the applied configuration; a refused change throws and changes nothing', () => {
  const net = cluster();
  const m = net.member(1);
  assert.deepEqual(m.confState, { voters: [1n, 2n, 3n], learners: [] });
  assert.throws(() => m.node.applyConfChange(cc(ConfChangeType.AddLearnerNode, 2)), ErrInvalidConfChange);
  net.add(new Member(4n, {}));
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4));
  net.stabilize();
  assert.deepEqual(m.confState, { voters: [1n, 2n, 3n], learners: [4n] });
  assert.deepEqual(net.member(4).confState, { voters: [1n, 2n, 3n], learners: [4n] });
});

test('a restarted member rebuilds its configuration from its snapshot and log', () => {
  const net = cluster();
  net.add(new Member(4n, {}));
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4));
  net.stabilize();
  const m = net.member(2);
  m.storage.createSnapshot(3, { voters: [1n, 2n, 3n], learners: [] }, EMPTY_BYTES);
  m.storage.compact(2);
  m.restart();
  assert.deepEqual(m.node.status().config, { voters: [1n, 2n, 3n], learners: [4n] });
});

test('leader transfer: the transferee is caught up, then campaigns at once', () => {
  const net = cluster();
  net.isolate(3);
  net.propose(1, 'a');
  net.recover();
  net.node(1).transferLeader(3n);
  assert.throws(() => net.node(1).propose(enc('during')), ErrProposalDropped, 'proposals wait for the transfer');
  net.stabilize();
  assert.equal(net.member(3).state, StateType.Leader);
  assert.equal(net.member(1).state, StateType.Follower);
  assert.ok(ofType(net.delivered, MessageType.MsgTimeoutNow).length === 1);
  net.propose(3, 'b');
  assert.deepEqual(net.member(1).appliedData(), ['a', 'b']);
});

test('leader transfer from a follower is forwarded to the leader', () => {
  const net = cluster();
  net.node(2).transferLeader(2n);
  net.stabilize();
  assert.equal(net.member(2).state, StateType.Leader);
});

test('a transfer that cannot finish within an election timeout is abandoned', () => {
  const net = cluster();
  net.isolate(3);
  net.node(1).transferLeader(3n);
  net.stabilize();
  assert.equal(net.node(1).status().leadTransferee, 3n);
  for (let i = 0; i < 10; i++) {
    net.tick(1);
    net.stabilize();
  }
  assert.equal(net.node(1).status().leadTransferee, 0n);
  assert.equal(net.member(1).state, StateType.Leader);
  net.propose(1, 'accepted again');
  assert.deepEqual(net.member(2).appliedData(), ['accepted again']);
});

test('transfers to itself, to a learner or to a stranger are ignored', () => {
  const net = cluster();
  net.add(new Member(4n, {}));
  net.node(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4));
  net.stabilize();
  for (const target of [1n, 4n, 9n]) {
    net.node(1).transferLeader(target);
    net.stabilize();
    assert.equal(net.node(1).status().leadTransferee, 0n, `transfer to ${target}`);
    assert.equal(net.member(1).state, StateType.Leader);
  }
});
