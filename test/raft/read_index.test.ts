// ReadIndex (Raft thesis 6.4): linearizable reads without writing to the log.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageType, newMessage, ReadOnlyOption, StateType } from '../../src/raft/index.ts';
import { dec, enc, Network, ofType } from './harness.ts';

function cluster(options = {}): Network {
  const net = Network.bootstrap([1, 2, 3], options);
  net.campaign(1);
  return net;
}

test('the leader answers a read once a heartbeat round confirms it still leads', () => {
  const net = cluster();
  net.propose(1, 'w');
  const commit = net.member(1).raft.raftLog.committed;
  net.node(1).readIndex(enc('r1'));
  const out = net.member(1).drain();
  const hbs = ofType(out, MessageType.MsgHeartbeat);
  assert.equal(hbs.length, 2);
  for (const hb of hbs) assert.equal(dec(hb.context), 'r1');
  assert.deepEqual(net.member(1).readStates, [], 'not before the confirmation');
  net.send(out);
  net.stabilize();
  assert.deepEqual(
    net.member(1).readStates.map((rs) => [rs.index, dec(rs.requestCtx)]),
    [[commit, 'r1']],
  );
});

test('a leader cut off from the majority never answers', () => {
  const net = cluster();
  net.isolate(1);
  net.node(1).readIndex(enc('r'));
  net.stabilize();
  for (let i = 0; i < 5; i++) {
    net.tick(1);
    net.stabilize();
  }
  assert.deepEqual(net.member(1).readStates, []);
});

test('one heartbeat round answers every read queued before it (batching)', () => {
  const net = cluster();
  const leader = net.member(1);
  for (const ctx of ['a', 'b', 'c']) leader.node.readIndex(enc(ctx));
  leader.drain(); // three heartbeat rounds queued; deliver none of them
  // Only the acknowledgement of the last read arrives, from one follower: a majority with the leader.
  leader.node.step(newMessage({ type: MessageType.MsgHeartbeatResp, from: 2n, to: 1n, term: 2, context: enc('c') }));
  leader.drain();
  assert.deepEqual(
    leader.readStates.map((rs) => dec(rs.requestCtx)),
    ['a', 'b', 'c'],
  );
  // The acknowledgement of an older read, arriving late, answers nothing twice.
  leader.node.step(newMessage({ type: MessageType.MsgHeartbeatResp, from: 3n, to: 1n, term: 2, context: enc('a') }));
  leader.drain();
  assert.equal(leader.readStates.length, 3);
});

test('a new leader holds reads back until it has committed an entry of its term', () => {
  const net = Network.bootstrap([1, 2, 3]);
  net.dropIf((m) => m.type === MessageType.MsgApp); // the empty entry of the term cannot commit
  net.campaign(1);
  assert.equal(net.member(1).state, StateType.Leader);
  net.node(1).readIndex(enc('early'));
  net.stabilize();
  assert.deepEqual(net.member(1).readStates, []);
  assert.equal(
    ofType(net.delivered, MessageType.MsgHeartbeat).filter((m) => dec(m.context) === 'early').length,
    0,
    'not even asked',
  );
  net.recover();
  net.tickAll();
  net.stabilize();
  const [rs] = net.member(1).readStates;
  assert.equal(dec(rs!.requestCtx), 'early');
  assert.ok(rs!.index >= net.member(1).raft.raftLog.lastIndex(), 'the read index covers the new term');
});

test('a follower forwards the read to the leader and gets the leader commit index', () => {
  const net = cluster();
  net.propose(1, 'w1');
  net.propose(1, 'w2');
  net.node(3).readIndex(enc('from-3'));
  net.stabilize();
  const [rs] = net.member(3).readStates;
  assert.equal(dec(rs!.requestCtx), 'from-3');
  assert.equal(rs!.index, net.member(1).raft.raftLog.committed);
  assert.ok(net.member(3).raft.raftLog.applied >= rs!.index, 'the follower can serve once applied');
});

test('a read index is never below a write acknowledged before the read (linearizability)', () => {
  const net = cluster();
  for (let i = 0; i < 5; i++) {
    net.propose(1, `w${i}`);
    const written = Math.max(...[...net.members.values()].map((m) => m.raft.raftLog.applied));
    for (const id of [1, 2, 3]) net.node(id).readIndex(enc(`r${i}-${id}`));
    net.stabilize();
    for (const id of [1, 2, 3]) {
      const rs = net.member(id).readStates.find((r) => dec(r.requestCtx) === `r${i}-${id}`);
      assert.ok(rs !== undefined && rs.index >= written, `read ${i} on ${id}`);
    }
  }
});

test('lease-based reads are answered at once, without a heartbeat round', () => {
  const net = cluster({ readOnlyOption: ReadOnlyOption.LeaseBased });
  net.isolate(1); // the lease is trusted: no confirmation needed
  net.node(1).readIndex(enc('lease'));
  net.member(1).drain();
  assert.deepEqual(
    net.member(1).readStates.map((rs) => dec(rs.requestCtx)),
    ['lease'],
  );
});

test('a single voter answers reads at once', () => {
  const net = Network.bootstrap([1]);
  net.campaign(1);
  net.propose(1, 'w');
  net.node(1).readIndex(enc('solo'));
  net.stabilize();
  assert.equal(net.member(1).readStates[0]?.index, net.member(1).raft.raftLog.committed);
});
