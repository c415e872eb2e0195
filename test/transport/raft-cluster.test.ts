// Raft end to end over the transport: three RawNodes in one process, each behind its own
// transport on a loopback port, driven by a tick timer and a Ready loop over an in-memory
// storage (src/raft/README.md, "The caller's contract"). A leader is elected, proposals made on
// any member commit on all three, and after the leader goes away the other two carry on.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import {
  createSeededRandom,
  decodeConfChange,
  EntryType,
  ErrProposalDropped,
  MemoryStorage,
  RawNode,
  StateType,
} from '../../src/raft/index.ts';
import { Transport } from '../../src/transport/index.ts';
import { CLUSTER_ID, PeerServer, waitFor, withTempDir } from './helpers.ts';

const TICK_MS = 10;
const ELECTION_TICK = 10;

class RaftMember {
  readonly id: bigint;
  readonly storage = new MemoryStorage();
  readonly node: RawNode;
  readonly server: PeerServer;
  transport: Transport | null = null;
  /** Data of the normal entries applied, in order. */
  readonly applied: string[] = [];
  #ticker: NodeJS.Timeout | null = null;
  #scheduled = false;
  #stopped = false;

  constructor(id: bigint, server: PeerServer, voters: readonly bigint[]) {
    this.id = id;
    this.server = server;
    this.node = new RawNode(
      { id, random: createSeededRandom(Number(id) * 7919), electionTick: ELECTION_TICK, heartbeatTick: 1 },
      this.storage,
    );
    this.node.bootstrap(voters.map((v) => ({ id: v })));
  }

  start(peers: Map<bigint, string[]>, snapshotDir: string): void {
    const transport = new Transport({
      memberId: this.id,
      clusterId: CLUSTER_ID,
      peers,
      snapshotDir,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      onMessage: (m) => {
        this.node.step(m);
        this.schedule();
      },
      onSnapshot: (m) => {
        this.node.step(m);
        this.schedule();
      },
      onUnreachable: (id) => {
        this.node.reportUnreachable(id);
        this.schedule();
      },
      onSnapshotStatus: (id, ok) => {
        this.node.reportSnapshot(id, ok);
        this.schedule();
      },
    });
    this.transport = transport;
    this.server.handler = transport.handler;
    this.#ticker = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, TICK_MS);
    this.schedule();
  }

  schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#handleReadies();
    });
  }

  /** The Ready contract: early messages, persist, messages, apply, advance. */
  #handleReadies(): void {
    while (!this.#stopped && this.node.hasReady()) {
      const rd = this.node.ready();
      this.transport!.send(rd.earlyMessages);
      if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) this.storage.append(rd.entries);
      if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
      this.transport!.send(rd.messages);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) this.node.applyConfChange(decodeConfChange(e.data));
        else if (e.data.byteLength > 0) this.applied.push(new TextDecoder().decode(e.data));
      }
      this.node.advance(rd);
    }
  }

  get lead(): bigint {
    return this.node.status().softState.lead;
  }

  get isLeader(): boolean {
    return this.node.status().softState.raftState === StateType.Leader;
  }

  /** Proposes `data`; false when raft dropped it (no leader known right now). */
  propose(data: string): boolean {
    try {
      this.node.propose(new TextEncoder().encode(data));
    } catch (err) {
      if (err instanceof ErrProposalDropped) return false;
      throw err;
    }
    this.schedule();
    return true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    await this.transport?.close();
    await this.server.close();
  }
}

/** The leader all of `members` agree on, or null. */
function agreedLeader(members: readonly RaftMember[]): RaftMember | null {
  const lead = members[0]!.lead;
  if (lead === 0n || !members.every((m) => m.lead === lead)) return null;
  return members.find((m) => m.id === lead) ?? null;
}

it('three RawNodes over the transport elect a leader, commit proposals everywhere, and survive losing the leader', async () => {
  await withTempDir(async (dir) => {
    const ids = [1n, 2n, 3n];
    const servers = await Promise.all(ids.map(() => PeerServer.start()));
    const members = ids.map((id, i) => new RaftMember(id, servers[i]!, ids));
    after(() => Promise.all(members.map((m) => m.stop())));
    for (const m of members) {
      const peers = new Map<bigint, string[]>();
      for (const [j, p] of ids.entries()) if (p !== m.id) peers.set(p, [servers[j]!.url]);
      const snapshotDir = join(dir, `member-${m.id}`);
      mkdirSync(snapshotDir);
      m.start(peers, snapshotDir);
    }

    await waitFor(() => agreedLeader(members) !== null, 10_000, 'a leader all three agree on');
    const leader = agreedLeader(members)!;
    assert.ok(leader.isLeader);

    // 300 proposals, in bursts, a third of them made on followers (forwarded to the leader as MsgProp).
    const proposed: string[] = [];
    for (let i = 0; i < 300; i++) {
      const on = i % 3 === 0 ? members.find((m) => m !== leader)! : leader;
      const data = `put k${i}`;
      if (on.propose(data)) proposed.push(data);
      if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.ok(proposed.length >= 290, `only ${proposed.length} of 300 proposals accepted`);
    await waitFor(
      () => members.every((m) => m.applied.length === proposed.length),
      10_000,
      'every proposal applied on all three',
    );
    // One log: the same entries in the same order everywhere, and exactly the accepted proposals.
    assert.deepEqual(members[1]!.applied, members[0]!.applied);
    assert.deepEqual(members[2]!.applied, members[0]!.applied);
    assert.deepEqual([...members[0]!.applied].sort(), [...proposed].sort());
    const leaderOrder = members[0]!.applied.filter((d) => Number(d.slice(5)) % 3 !== 0);
    assert.deepEqual(
      leaderOrder,
      proposed.filter((d) => Number(d.slice(5)) % 3 !== 0),
      'proposals made on the leader commit in the order they were made',
    );

    // The leader goes away; the other two elect one of themselves and keep committing.
    await leader.stop();
    const rest = members.filter((m) => m !== leader);
    await waitFor(
      () => {
        const l = agreedLeader(rest);
        return l !== null && l !== leader;
      },
      10_000,
      'a new leader among the two left',
    );
    const next = agreedLeader(rest)!;
    const before = next.applied.length;
    let accepted = 0;
    for (let i = 0; i < 50; i++) if (next.propose(`after ${i}`)) accepted++;
    assert.equal(accepted, 50);
    await waitFor(() => rest.every((m) => m.applied.length === before + 50), 10_000, 'commits with two of three');
    assert.deepEqual(rest[0]!.applied, rest[1]!.applied);
  });
});
