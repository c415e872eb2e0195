// Flow control (probe / replicate / snapshot, the inflight window, bytes per message), batching
// of proposals, the uncommitted-size limit, and snapshots for followers behind compaction.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EMPTY_BYTES,
  ErrProposalDropped,
  ErrSnapshotTemporarilyUnavailable,
  MessageType,
  newMessage,
  ProgressState,
  StateType,
} from '../../src/raft/index.ts';
import { enc, Network, ofType } from './harness.ts';

function cluster(options = {}): Network {
  const net = Network.bootstrap([1, 2, 3], options);
  net.campaign(1);
  return net;
}

test('proposals made between two Readies go out in one append per follower', () => {
  const net = cluster();
  for (let i = 0; i < 10; i++) net.node(1).propose(enc(`p${i}`));
  const out = net.member(1).drain();
  const apps = ofType(out, MessageType.MsgApp);
  assert.deepEqual(
    apps.map((m) => [m.to, m.entries.length]),
    [
      [2n, 10],
      [3n, 10],
    ],
  );
  net.send(out);
  net.stabilize();
  assert.equal(net.member(3).appliedData().length, 10);
});

test('an append carries at most maxSizePerMsg bytes of entries (but at least one entry)', () => {
  const net = cluster({ maxSizePerMsg: 250 });
  for (let i = 0; i < 7; i++) net.node(1).propose(new Uint8Array(100).fill(i));
  net.node(1).propose(new Uint8Array(1000)); // larger than the limit on its own
  const out = net.member(1).drain();
  const toTwo = ofType(out, MessageType.MsgApp).filter((m) => m.to === 2n);
  assert.deepEqual(
    toTwo.map((m) => m.entries.length),
    [2, 2, 2, 1, 1],
  );
  net.send(out);
  net.stabilize();
  assert.equal(net.member(2).applied.length, 8);
});

test('in replicate state at most maxInflightMsgs appends are unacknowledged', () => {
  const net = cluster({ maxInflightMsgs: 2, maxSizePerMsg: 1 });
  assert.equal(net.node(1).status().progress.get(2n)?.state, ProgressState.Replicate);
  for (let i = 0; i < 5; i++) net.node(1).propose(enc(`p${i}`));
  const out = net.member(1).drain();
  const toTwo = ofType(out, MessageType.MsgApp).filter((m) => m.to === 2n);
  assert.equal(toTwo.length, 2, 'the window is full after two messages');
  assert.equal(net.node(1).status().progress.get(2n)?.paused, true);
  // One acknowledgement frees one slot: one more message.
  net
    .node(1)
    .step(newMessage({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 2, index: toTwo[0]!.entries[0]!.index }));
  const more = ofType(net.member(1).drain(), MessageType.MsgApp).filter((m) => m.to === 2n);
  assert.equal(more.length, 1);
  // A heartbeat answer frees a slot of a full window, so a lost append cannot stall forever.
  net.node(1).step(newMessage({ type: MessageType.MsgHeartbeatResp, from: 2n, to: 1n, term: 2 }));
  assert.equal(ofType(net.member(1).drain(), MessageType.MsgApp).filter((m) => m.to === 2n).length, 1);
});

test('in probe state one append is in flight until the follower answers', () => {
  const net = cluster();
  net.isolate(3);
  net.node(1).reportUnreachable(3n); // back to probing
  assert.equal(net.node(1).status().progress.get(3n)?.state, ProgressState.Probe);
  for (let i = 0; i < 3; i++) {
    net.node(1).propose(enc(`p${i}`));
    net.member(1).drain();
  }
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    net.node(1).propose(enc(`q${i}`));
    out.push(ofType(net.member(1).drain(), MessageType.MsgApp).filter((m) => m.to === 3n).length);
  }
  assert.deepEqual(out, [0, 0, 0], 'paused: the probe of the first proposal is still unanswered');
  assert.equal(net.node(1).status().progress.get(3n)?.paused, true);
  // The heartbeat answer resumes probing; an accepted probe moves the follower to replicate.
  net.recover();
  net.tickAll();
  net.stabilize();
  assert.equal(net.node(1).status().progress.get(3n)?.state, ProgressState.Replicate);
  assert.equal(net.member(3).appliedData().length, 6);
});

test('a rejected append moves a replicating follower back to probe', () => {
  const net = cluster();
  net.node(1).step(
    newMessage({
      type: MessageType.MsgAppResp,
      from: 2n,
      to: 1n,
      term: 2,
      index: 50,
      reject: true,
      rejectHint: 3,
      logTerm: 1,
    }),
  );
  assert.equal(net.node(1).status().progress.get(2n)?.state, ProgressState.Probe);
});

test('a follower behind the compacted log gets a snapshot, then catches up', () => {
  const net = cluster();
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `p${i}`);
  const leader = net.member(1);
  const applied = leader.raft.raftLog.applied;
  leader.storage.createSnapshot(applied, leader.confState, enc('state'));
  leader.storage.compact(applied);
  net.recover();
  net.tickAll();
  net.stabilize();
  const snaps = ofType(net.delivered, MessageType.MsgSnap);
  assert.equal(snaps.length, 1);
  assert.equal(snaps[0]!.snapshot?.metadata.index, applied);
  assert.equal(net.member(3).appliedSnapshot?.metadata.index, applied);
  assert.deepEqual(net.member(3).appliedSnapshot?.data, enc('state'));
  assert.equal(net.node(1).status().progress.get(3n)?.state, ProgressState.Replicate);
  net.propose(1, 'after');
  assert.deepEqual(net.member(3).appliedData(), ['after']);
  assert.equal(net.member(3).storage.firstIndex(), applied + 1);
});

test('while a snapshot is in flight the leader sends nothing else; a failed one is retried by probing', () => {
  const net = cluster();
  net.isolate(3);
  for (let i = 0; i < 5; i++) net.propose(1, `p${i}`);
  const leader = net.member(1);
  const applied = leader.raft.raftLog.applied;
  leader.storage.createSnapshot(applied, leader.confState, EMPTY_BYTES);
  leader.storage.compact(applied);
  net.recover();
  net.ignore(MessageType.MsgSnap);
  net.tickAll();
  net.stabilize();
  let pr = net.node(1).status().progress.get(3n)!;
  assert.equal(pr.state, ProgressState.Snapshot);
  assert.equal(pr.pendingSnapshot, applied);
  const mark = net.delivered.length;
  net.propose(1, 'more');
  const toThree = ofType(net.delivered.slice(mark), MessageType.MsgApp).filter((m) => m.to === 3n);
  assert.deepEqual(toThree, []);
  net.node(1).reportSnapshot(3n, false);
  pr = net.node(1).status().progress.get(3n)!;
  assert.equal(pr.state, ProgressState.Probe);
  assert.equal(pr.paused, true, 'waits for a heartbeat interval before retrying');
  net.recover();
  net.tickAll();
  net.stabilize();
  assert.deepEqual(net.member(3).appliedData(), ['more']);
});

test('while storage reports ErrSnapshotTemporarilyUnavailable the leader waits, then sends the snapshot', () => {
  const net = cluster();
  net.isolate(3);
  for (let i = 0; i < 5; i++) net.propose(1, `p${i}`);
  const leader = net.member(1);
  const applied = leader.raft.raftLog.applied;
  leader.storage.createSnapshot(applied, leader.confState, EMPTY_BYTES);
  leader.storage.compact(applied);
  let unavailable = true;
  const real = leader.storage.snapshot.bind(leader.storage);
  leader.storage.snapshot = () => {
    if (unavailable) throw new ErrSnapshotTemporarilyUnavailable();
    return real();
  };
  net.recover();
  net.tickAll();
  net.stabilize();
  assert.equal(ofType(net.delivered, MessageType.MsgSnap).length, 0);
  assert.notEqual(net.node(1).status().progress.get(3n)?.state, ProgressState.Snapshot);
  unavailable = false;
  net.tickAll();
  net.stabilize();
  assert.equal(ofType(net.delivered, MessageType.MsgSnap).length, 1);
  assert.equal(net.member(3).appliedSnapshot?.metadata.index, applied);
});

test('a snapshot at or below the follower commit index is ignored', () => {
  const net = cluster();
  net.propose(1, 'a');
  const f = net.member(2);
  const before = f.raft.raftLog.committed;
  f.node.step(
    newMessage({
      type: MessageType.MsgSnap,
      from: 1n,
      to: 2n,
      term: 2,
      snapshot: { metadata: { index: before, term: 2, confState: f.confState }, data: EMPTY_BYTES },
    }),
  );
  const [resp] = ofType(f.drain(), MessageType.MsgAppResp);
  assert.equal(resp?.index, before);
  assert.equal(f.appliedSnapshot, undefined);
});

test('maxUncommittedEntriesSize bounds what a leader accepts beyond its commit index', () => {
  const net = cluster({ maxUncommittedEntriesSize: 20 });
  net.isolate(1);
  net.node(1).propose(new Uint8Array(10));
  net.node(1).propose(new Uint8Array(10));
  assert.throws(() => net.node(1).propose(new Uint8Array(10)), ErrProposalDropped);
  const last = net.member(1).raft.raftLog.lastIndex();
  net.recover();
  net.stabilize();
  assert.equal(net.member(1).raft.raftLog.committed, last);
  net.node(1).propose(new Uint8Array(10)); // room again once committed
  net.stabilize();
  assert.equal(net.member(2).applied.length, 3);
});

test('a leader keeps replicating to a follower that restarts with an older log', () => {
  const net = cluster();
  net.propose(1, 'a');
  net.member(3).restart();
  net.propose(1, 'b');
  net.tickAll();
  net.stabilize();
  assert.deepEqual(net.member(3).appliedData(), ['a', 'b']);
  assert.equal(net.member(1).state, StateType.Leader);
});
