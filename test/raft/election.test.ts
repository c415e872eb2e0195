// Pre-vote, check-quorum and the leader lease (Raft thesis 9.6 and 4.2.3), and proposals
// without a leader.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrProposalDropped, MessageType, newMessage, StateType } from '../../src/raft/index.ts';
import { enc, Network, ofType, testNode } from './harness.ts';

test('pre-vote: an isolated member does not raise its term, and rejoins without deposing the leader', () => {
  const net = Network.bootstrap([1, 2, 3]); // pre-vote and check-quorum on by default
  net.campaign(1);
  const term = net.member(1).term;
  net.isolate(3);
  for (let i = 0; i < 100; i++) {
    net.tickAll();
    net.stabilize();
  }
  assert.equal(net.member(3).term, term, 'pre-votes fail without changing the term');
  assert.notEqual(net.member(3).state, StateType.Leader);
  assert.equal(net.member(1).state, StateType.Leader);
  net.recover();
  for (let i = 0; i < 5; i++) {
    net.tickAll();
    net.stabilize();
  }
  assert.equal(net.member(1).state, StateType.Leader);
  assert.equal(net.member(1).term, term);
  assert.equal(net.member(3).raft.lead, 1n);
  net.propose(1, 'after');
  assert.deepEqual(net.member(3).appliedData(), ['after']);
});

test('without pre-vote, the same isolated member disrupts the leader when it returns', () => {
  const net = Network.bootstrap([1, 2, 3], { preVote: false, checkQuorum: false });
  net.campaign(1);
  const term = net.member(1).term;
  net.isolate(3);
  for (let i = 0; i < 100; i++) {
    net.tickAll();
    net.stabilize();
  }
  assert.ok(net.member(3).term > term + 2, 'each election timeout raised its term');
  net.recover();
  for (let i = 0; i < 30; i++) {
    net.tickAll();
    net.stabilize();
  }
  assert.ok(net.member(1).term > term + 2, 'the leader saw the higher term and stepped down');
});

test('a pre-vote changes neither the voter term nor its vote, and is granted for a later term', () => {
  const m = testNode(1, [1, 2, 3], { term: 2, vote: 1, logTerms: [1, 2], preVote: true });
  m.node.step(newMessage({ type: MessageType.MsgPreVote, from: 2n, to: 1n, term: 3, index: 2, logTerm: 2 }));
  const [resp] = ofType(m.drain(), MessageType.MsgPreVoteResp);
  assert.equal(resp?.reject, false);
  assert.equal(resp?.term, 3, 'the answer carries the term asked about');
  assert.equal(m.term, 2);
  assert.equal(m.raft.vote, 1n);
  assert.deepEqual(m.storage.initialState().hardState, { term: 2, vote: 1n, commit: 0 });
  // A candidate whose log is behind gets a rejection with the voter's term.
  m.node.step(newMessage({ type: MessageType.MsgPreVote, from: 3n, to: 1n, term: 3, index: 1, logTerm: 1 }));
  const [rej] = ofType(m.drain(), MessageType.MsgPreVoteResp);
  assert.equal(rej?.reject, true);
  assert.equal(rej?.term, 2);
});

test('a pre-candidate becomes candidate once a majority grants, follower if a majority refuses', () => {
  const won = testNode(1, [1, 2, 3], { preVote: true });
  won.node.campaign();
  assert.equal(won.state, StateType.PreCandidate);
  won.node.step(newMessage({ type: MessageType.MsgPreVoteResp, from: 2n, to: 1n, term: 1 }));
  assert.equal(won.state, StateType.Candidate);
  assert.equal(won.term, 1);
  assert.equal(ofType(won.drain(), MessageType.MsgVote).length, 2);

  const lost = testNode(1, [1, 2, 3], { preVote: true });
  lost.node.campaign();
  lost.node.step(newMessage({ type: MessageType.MsgPreVoteResp, from: 2n, to: 1n, term: 0, reject: true }));
  lost.node.step(newMessage({ type: MessageType.MsgPreVoteResp, from: 3n, to: 1n, term: 0, reject: true }));
  assert.equal(lost.state, StateType.Follower);
  assert.equal(lost.term, 0);
});

test('check-quorum: a leader that stops hearing from a majority steps down within two election timeouts', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  // The first check (after one election timeout) still sees the answers from before the cut.
  for (let i = 0; i < 10; i++) {
    net.tick(1);
    net.stabilize();
  }
  assert.equal(net.member(1).state, StateType.Leader);
  for (let i = 0; i < 10; i++) {
    net.tick(1);
    net.stabilize();
  }
  assert.equal(net.member(1).state, StateType.Follower);
  assert.throws(() => net.node(1).propose(enc('x')), ErrProposalDropped);
});

test('check-quorum: a leader that hears from a majority stays leader', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 50; i++) {
    net.tickAll();
    net.stabilize();
  }
  assert.equal(net.member(1).state, StateType.Leader);
});

test('leader lease: a follower that heard from the leader recently ignores vote requests', () => {
  const m = testNode(1, [1, 2, 3], { checkQuorum: true });
  m.node.step(newMessage({ type: MessageType.MsgHeartbeat, from: 2n, to: 1n, term: 1 }));
  m.drain();
  m.node.step(newMessage({ type: MessageType.MsgVote, from: 3n, to: 1n, term: 2, index: 5, logTerm: 1 }));
  assert.equal(m.term, 1, 'term unchanged');
  assert.deepEqual(ofType(m.drain(), MessageType.MsgVoteResp), [], 'no vote');
  // A vote request on a leader transfer overrides the lease.
  m.node.step(
    newMessage({
      type: MessageType.MsgVote,
      from: 3n,
      to: 1n,
      term: 2,
      index: 5,
      logTerm: 1,
      context: enc('CampaignTransfer'),
    }),
  );
  assert.equal(m.term, 2);
  assert.equal(ofType(m.drain(), MessageType.MsgVoteResp)[0]?.reject, false);
  // After an election timeout without the leader, vote requests count again.
  const n = testNode(1, [1, 2, 3], { checkQuorum: true });
  n.node.step(newMessage({ type: MessageType.MsgHeartbeat, from: 2n, to: 1n, term: 1 }));
  for (let i = 0; i < 10; i++) n.raft.electionElapsed++;
  n.node.step(newMessage({ type: MessageType.MsgVote, from: 3n, to: 1n, term: 2 }));
  assert.equal(n.term, 2);
});

test('a leader back from a partition learns the new term from the answer to its append', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  // The majority moves on.
  for (let i = 0; i < 40 && net.member(2).state !== StateType.Leader && net.member(3).state !== StateType.Leader; i++) {
    net.tick(2);
    net.tick(3);
    net.stabilize();
  }
  const newLeader = [2, 3].find((id) => net.member(id).state === StateType.Leader);
  assert.ok(newLeader !== undefined);
  // Freeze 1's clock so that check-quorum has not deposed it yet, then heal.
  net.member(1).raft.state === StateType.Leader || assert.fail('1 should still think it leads');
  net.recover();
  net.node(1).propose(enc('stale'));
  net.stabilize();
  assert.equal(net.member(1).state, StateType.Follower);
  assert.equal(net.member(1).term, net.member(newLeader).term);
  net.propose(newLeader, 'fresh');
  // The leader probes 1 again at the next heartbeat.
  net.tickAll();
  net.stabilize();
  for (const m of net.members.values()) assert.deepEqual(m.appliedData(), ['fresh'], `member ${m.id}`);
});

test('proposals are dropped with ErrProposalDropped when no leader is known', () => {
  const follower = testNode(1, [1, 2, 3]);
  assert.throws(() => follower.node.propose(enc('x')), ErrProposalDropped);
  follower.node.campaign();
  assert.equal(follower.state, StateType.Candidate);
  assert.throws(() => follower.node.propose(enc('x')), ErrProposalDropped);
  assert.throws(() => follower.node.readIndex(enc('r')), ErrProposalDropped);
  assert.equal(follower.raft.raftLog.lastIndex(), 0, 'nothing appended');
});

test('a follower forwards proposals to the leader, unless forwarding is disabled', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.campaign(1);
  net.propose(2, 'via follower');
  assert.deepEqual(net.member(1).appliedData(), ['via follower']);

  const quiet = Network.bootstrap([1, 2, 3], { disableProposalForwarding: true });
  quiet.campaign(1);
  assert.throws(() => quiet.node(2).propose(enc('x')), ErrProposalDropped);
});

test('a single-member cluster elects itself and commits once its log is persisted', () => {
  const net = Network.bootstrap([1]);
  net.campaign(1);
  const m = net.member(1);
  assert.equal(m.state, StateType.Leader);
  m.node.propose(enc('solo'));
  const rd = m.node.ready();
  assert.equal(rd.entries.length, 1);
  assert.deepEqual(rd.committedEntries, [], 'not committed before it is persisted');
  m.storage.append(rd.entries);
  m.node.advance(rd);
  const rd2 = m.node.ready();
  assert.deepEqual(
    rd2.committedEntries.map((e) => new TextDecoder().decode(e.data)),
    ['solo'],
  );
  m.node.advance(rd2);
});
