// A seeded, deterministic simulation of a Raft cluster under faults.
//
// N members run RawNode over MemoryStorage (their "disk"). The network drops, duplicates,
// delays and reorders messages (every message goes through the binary codec, as on a real
// wire), and partitions and heals. Members crash, losing everything not persisted (including
// a hard state written without sync), and restart from their storage. Clients propose entries,
// ask for read indexes, move leadership and change membership (add learner, promote, add voter,
// remove) at random. Members snapshot and compact their logs, so lagging ones need snapshots.
//
// After every Ready (the only way state becomes visible) the checker asserts Raft's safety
// properties:
//   - election safety: at most one leader per term;
//   - leader append-only: a leader never rewrites its log within its term;
//   - log matching / committed entries never change: every member's committed entry at an
//     index is the same entry;
//   - leader completeness: a new leader holds every entry known committed;
//   - state machine safety: members apply the same entries in the same order (hash chain);
//   - read index: a read never returns an index below a write applied before it was asked.
// Then the faults stop and liveness is checked: a leader emerges within a bounded number of
// ticks and new proposals commit on every member.
//
// Everything is drawn from one seeded generator: a seed replays exactly.

import {
  type ConfChange,
  ConfChangeType,
  type Config,
  type ConfState,
  createSeededRandom,
  decodeConfChange,
  decodeMessage,
  type Entry,
  EntryType,
  ErrInvalidConfChange,
  ErrProposalDropped,
  ErrStepPeerNotFound,
  encodeMessage,
  type HardState,
  MemoryStorage,
  type Message,
  messageTypeName,
  RawNode,
  type Ready,
  type Snapshot,
  StateType,
} from '../../../src/raft/index.ts';

export interface SimOptions {
  seed: number;
  /** Voters at the start (3 or 5). */
  members: number;
  /** Rounds with faults (each round: events, one tick per member, deliveries, Readies). */
  faultRounds: number;
  /** Record a readable trace of events (printed with a failure). */
  trace?: boolean;
}

export interface SimResult {
  seed: number;
  /** Rounds from the end of faults until a leader with a current-term commit existed. */
  electionRounds: number;
  /** Rounds from then until the liveness proposals committed. */
  commitRounds: number;
  /** Rounds from then until every member of the configuration applied them. */
  catchUpRounds: number;
  committed: number;
  messages: number;
  crashes: number;
  snapshotsSent: number;
  confChanges: number;
  leaders: number;
  /** Batches of liveness proposals needed (more than one if leadership changed meanwhile). */
  proposalBatches: number;
}

export class SimFailure extends Error {
  constructor(
    readonly seed: number,
    readonly members: number,
    detail: string,
    trace: readonly string[],
  ) {
    super(
      `raft simulation failed (seed=${seed}, members=${members}): ${detail}\n` +
        `replay: RAFT_SIM_SEED=${seed} RAFT_SIM_TRACE=1 node --import tsx --test test/raft/simulation-${members}.test.ts\n` +
        (trace.length > 0 ? `last events:\n  ${trace.join('\n  ')}` : ''),
    );
    this.name = 'SimFailure';
  }
}

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;
/** A leader with a current-term commit must exist this many rounds after the network heals. */
export const ELECTION_BOUND_ROUNDS = 10 * ELECTION_TICK;
/**
 * Liveness proposals must commit this many rounds after a leader emerges, plus
 * COMMIT_ROUNDS_PER_LAGGING_ENTRY for each entry the furthest-behind member lacks (a majority
 * may first have to catch up, and in slow seeds an append carries one entry at a time).
 */
export const COMMIT_BOUND_ROUNDS = 20 * ELECTION_TICK;
export const COMMIT_ROUNDS_PER_LAGGING_ENTRY = 4;
/** ... and be applied by every member of the configuration this many rounds after that. */
export const CATCH_UP_BOUND_ROUNDS = 100 * ELECTION_TICK;
const LIVENESS_PROPOSALS = 5;
const TRACE_KEEP = 60;

function fnv(h: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ (v & 0xffff), 0x01000193);
  h = Math.imul(h ^ (v >>> 16), 0x01000193);
  return h >>> 0;
}

/** The replicated state machine: a hash chain over applied entries, plus the membership. */
interface AppState {
  appliedIndex: number;
  hash: number;
  confState: ConfState;
}

function encodeApp(a: AppState): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setFloat64(0, a.appliedIndex);
  v.setUint32(8, a.hash);
  return b;
}

function decodeApp(s: Snapshot): AppState {
  const v = new DataView(s.data.buffer, s.data.byteOffset, s.data.byteLength);
  return {
    appliedIndex: v.getFloat64(0),
    hash: v.getUint32(8),
    confState: { voters: [...s.metadata.confState.voters], learners: [...s.metadata.confState.learners] },
  };
}

interface SimMember {
  readonly id: bigint;
  readonly storage: MemoryStorage;
  node: RawNode | undefined;
  app: AppState;
  /** The last hard state written, and the last one made durable by a sync (what survives a crash). */
  written: HardState;
  synced: HardState;
  removed: boolean;
  /** Commit index up to which committed entries were checked against the global record. */
  checkedCommit: number;
  /** Leader append-only: the term in which this member last led, and its last index then. */
  leaderTerm: number;
  leaderLastIndex: number;
  /** The commit index of this member's last Ready with a hard state. */
  readyCommit: number;
  /** Pending read requests: ctx -> the highest index applied anywhere when it was asked. */
  reads: Map<string, number>;
  snapshotEvery: number;
}

interface InFlight {
  at: number;
  bytes: Uint8Array;
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

class Simulation {
  private readonly rng: () => number;
  private readonly members = new Map<bigint, SimMember>();
  private readonly trace: string[] = [];
  private round = 0;
  private inflight: InFlight[] = [];
  /** Partition: member -> group; members in different groups cannot talk. Empty: healed. */
  private groups = new Map<bigint, number>();
  private faults = true;
  private nextId: bigint;
  private proposalSeq = 0;
  private readSeq = 0;
  private lastInterleavedProposal = -1;

  // Fault rates of this seed.
  private readonly dropRate: number;
  private readonly dupRate: number;
  private readonly maxDelay: number;
  private readonly crashRate: number;
  private readonly confRate: number;
  private readonly tickSkip: number;
  private readonly maxSizePerMsg: number;
  private readonly maxInflightMsgs: number;
  /** How often a member takes messages, ticks and proposals while its Ready is being persisted. */
  private readonly interleaveRate: number;

  // The checker's record.
  private readonly leaderOfTerm = new Map<number, bigint>();
  private readonly committedTerm: number[] = [];
  private readonly committedDigest: number[] = [];
  private readonly appliedHash: number[] = [];
  private maxCommitted = 0;
  private maxApplied = 0;

  private readonly stats: SimResult;

  constructor(private readonly opts: SimOptions) {
    this.rng = createSeededRandom(opts.seed);
    this.dropRate = this.pick([0, 0.02, 0.05, 0.1, 0.2]);
    this.dupRate = this.pick([0, 0.01, 0.05]);
    this.maxDelay = this.pick([0, 1, 2, 4]);
    this.crashRate = this.pick([0, 0.003, 0.01, 0.02]);
    this.confRate = this.pick([0, 0.01, 0.03]);
    this.tickSkip = this.pick([0, 0.1, 0.3]);
    this.maxSizePerMsg = this.pick([1, 64, 256, 1024 * 1024]);
    this.maxInflightMsgs = this.pick([1, 4, 256]);
    this.interleaveRate = this.pick([0, 0.2, 0.5]);
    this.nextId = BigInt(opts.members + 1);
    this.stats = {
      seed: opts.seed,
      electionRounds: 0,
      commitRounds: 0,
      catchUpRounds: 0,
      committed: 0,
      messages: 0,
      crashes: 0,
      snapshotsSent: 0,
      confChanges: 0,
      leaders: 0,
      proposalBatches: 0,
    };
    const peers = [];
    for (let i = 1; i <= opts.members; i++) peers.push({ id: BigInt(i) });
    for (const p of peers) {
      const m = this.newMember(p.id);
      m.node!.bootstrap(peers);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Helpers

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rng() * xs.length)]!;
  }

  private chance(p: number): boolean {
    return p > 0 && this.rng() < p;
  }

  private note(s: string | (() => string)): void {
    if (!this.opts.trace && this.trace.length >= TRACE_KEEP) this.trace.shift();
    this.trace.push(`[r${this.round}] ${typeof s === 'string' ? s : s()}`);
  }

  private fail(detail: string): never {
    throw new SimFailure(this.opts.seed, this.opts.members, detail, this.trace);
  }

  private config(id: bigint, applied: number): Config {
    return {
      id,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflightMsgs,
      random: createSeededRandom(Math.floor(this.rng() * 0x1_0000_0000)),
      applied,
      logger: this.opts.trace ? { info: (s) => this.note(s), warn: (s) => this.note(s) } : undefined,
    };
  }

  private newMember(id: bigint): SimMember {
    const storage = new MemoryStorage();
    const m: SimMember = {
      id,
      storage,
      node: new RawNode(this.config(id, 0), storage),
      app: { appliedIndex: 0, hash: 0, confState: { voters: [], learners: [] } },
      written: { term: 0, vote: 0n, commit: 0 },
      synced: { term: 0, vote: 0n, commit: 0 },
      removed: false,
      checkedCommit: 0,
      leaderTerm: 0,
      leaderLastIndex: 0,
      readyCommit: 0,
      reads: new Map(),
      snapshotEvery: 5 + Math.floor(this.rng() * 40),
    };
    this.members.set(id, m);
    return m;
  }

  private live(): SimMember[] {
    const out: SimMember[] = [];
    for (const m of this.members.values()) if (m.node !== undefined) out.push(m);
    return out;
  }

  private leaders(): SimMember[] {
    return this.live().filter((m) => m.node!.raft.state === StateType.Leader);
  }

  // ------------------------------------------------------------------------------------------
  // Faults

  private crash(m: SimMember, why: string): void {
    if (m.node === undefined) return;
    this.note(() => `crash ${m.id} (${why})`);
    m.node = undefined;
    // What was written without sync is lost. (Entries are always synced: mustSync.)
    m.storage.setHardState(m.synced);
    m.written = m.synced;
    m.reads.clear();
    this.stats.crashes++;
  }

  private restart(m: SimMember): void {
    if (m.node !== undefined || m.removed) return;
    this.checkStoredLog(m);
    const snap = m.storage.snapshot();
    m.app =
      snap.metadata.index > 0 ? decodeApp(snap) : { appliedIndex: 0, hash: 0, confState: { voters: [], learners: [] } };
    m.node = new RawNode(this.config(m.id, snap.metadata.index), m.storage);
    m.checkedCommit = Math.max(m.checkedCommit, snap.metadata.index);
    m.leaderTerm = 0;
    this.note(
      () =>
        `restart ${m.id} from snapshot ${snap.metadata.index}, hard state ${JSON.stringify(m.synced, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
    );
  }

  private partition(): void {
    this.groups = new Map();
    const ids = [...this.members.keys()];
    for (const id of ids) this.groups.set(id, this.rng() < 0.5 ? 0 : 1);
    this.note(() => `partition ${ids.map((id) => `${id}:${this.groups.get(id)}`).join(' ')}`);
  }

  private heal(): void {
    if (this.groups.size > 0) this.note('heal');
    this.groups = new Map();
  }

  private connected(a: bigint, b: bigint): boolean {
    if (this.groups.size === 0) return true;
    return (this.groups.get(a) ?? 0) === (this.groups.get(b) ?? 0);
  }

  // ------------------------------------------------------------------------------------------
  // Network

  private send(msgs: readonly Message[]): void {
    for (let m of msgs) {
      this.stats.messages++;
      if (m.snapshot !== undefined) {
        this.stats.snapshotsSent++;
        m = this.freshSnapshot(m);
      }
      if (this.faults && this.chance(this.dropRate)) {
        this.noteSnapOutcome(m, false);
        continue;
      }
      if (!this.connected(m.from, m.to)) {
        this.noteSnapOutcome(m, false);
        continue;
      }
      const bytes = encodeMessage(m);
      // Once faults stop, the network is timely (at most one round of delay).
      const maxDelay = this.faults ? this.maxDelay : Math.min(this.maxDelay, 1);
      this.inflight.push({ at: this.round + Math.floor(this.rng() * (maxDelay + 1)), bytes });
      if (this.faults && this.chance(this.dupRate)) {
        this.inflight.push({ at: this.round + Math.floor(this.rng() * (this.maxDelay + 2)), bytes });
      }
      // The transport reports a snapshot as sent once it is on the wire.
      this.noteSnapOutcome(m, true);
    }
  }

  /**
   * Like etcd's server, the sender replaces the snapshot of a MsgSnap by one of its state at
   * its applied index: the stored one may predate the recipient's addition to the configuration
   * (the recipient would ignore it), and a newer one saves the follower replaying entries.
   */
  private freshSnapshot(m: Message): Message {
    const sender = this.members.get(m.from);
    if (sender?.node === undefined) return m;
    const stored = sender.storage.snapshot();
    if (sender.app.appliedIndex <= stored.metadata.index) return m;
    const snap = sender.storage.createSnapshot(sender.app.appliedIndex, sender.app.confState, encodeApp(sender.app));
    return { ...m, snapshot: snap };
  }

  private noteSnapOutcome(m: Message, ok: boolean): void {
    if (m.snapshot === undefined) return;
    const sender = this.members.get(m.from);
    sender?.node?.reportSnapshot(m.to, ok);
  }

  private deliverDue(): void {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.inflight) (f.at <= this.round ? due : later).push(f);
    this.inflight = later;
    for (const f of due) {
      const m = decodeMessage(f.bytes);
      const target = this.members.get(m.to);
      if (target?.node === undefined) {
        // Unreachable: a real transport would notice and tell the sender.
        this.members.get(m.from)?.node?.reportUnreachable(m.to);
        continue;
      }
      if (!this.connected(m.from, m.to)) continue;
      try {
        target.node.step(m);
      } catch (err) {
        if (!(err instanceof ErrStepPeerNotFound)) throw err;
      }
      this.processReadies(target);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Ready handling, with crash points

  private processReadies(m: SimMember): void {
    for (let i = 0; i < 100 && m.node !== undefined && m.node.hasReady(); i++) this.handleReady(m);
  }

  private handleReady(m: SimMember): void {
    const node = m.node!;
    const rd = node.ready();
    const raft = node.raft;
    this.checkLeader(m, rd);
    if (this.opts.trace) {
      const hs = rd.hardState;
      this.note(
        () =>
          `${m.id} ready: ${hs ? `hs(t${hs.term} v${hs.vote} c${hs.commit}) ` : ''}ents[${rd.entries.map((e) => `${e.index}/${e.term}`).join(',')}] ` +
          `msgs[${[...rd.earlyMessages.map((x) => `!${x.to}:${messageTypeName(x.type)}/t${x.term}`), ...rd.messages.map((x) => `${x.to}:${messageTypeName(x.type)}/t${x.term}${x.reject ? 'R' : ''}`)].join(' ')}]`,
      );
    }

    this.send(rd.earlyMessages);
    // A real member keeps receiving while it writes: step some of its messages now.
    if (this.faults && this.chance(this.interleaveRate)) this.interleave(m);
    if (this.faults && this.chance(this.crashRate / 4)) {
      this.crash(m, 'before persisting');
      return;
    }

    // Persist: snapshot, entries, hard state (synced if mustSync).
    if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState !== undefined) {
      m.storage.setHardState(rd.hardState);
      m.written = rd.hardState;
      this.checkCommitted(m, rd.hardState.commit);
    }
    // Like a WAL's fsync, a sync makes everything written before it durable.
    if (rd.mustSync || rd.snapshot !== undefined) m.synced = m.written;
    if (this.faults && this.chance(this.crashRate / 4)) {
      this.crash(m, 'after persisting, before sending');
      return;
    }

    this.send(rd.messages);
    if (this.faults && this.chance(this.crashRate / 4)) {
      this.crash(m, 'after sending, before applying');
      return;
    }

    if (rd.snapshot !== undefined) {
      const app = decodeApp(rd.snapshot);
      this.checkAppliedHash(m, app.appliedIndex, app.hash);
      m.app = app;
      this.note(() => `${m.id} installs snapshot ${rd.snapshot!.metadata.index}`);
    }
    for (const e of rd.committedEntries) this.apply(m, e);
    if (m.node === undefined) return; // removed while applying
    for (const rs of rd.readStates) {
      const key = String(rs.requestCtx[0]! | (rs.requestCtx[1]! << 8) | (rs.requestCtx[2]! << 16));
      const floor = m.reads.get(key);
      if (floor !== undefined) {
        if (rs.index < floor)
          this.fail(`read index ${rs.index} on ${m.id} is below index ${floor} applied before the read`);
        m.reads.delete(key);
      }
    }
    node.advance(rd);
    if (raft.state === StateType.Leader && this.faults && this.chance(this.crashRate / 4)) {
      this.crash(m, 'leader after advance');
      return;
    }
    this.maybeSnapshot(m);
  }

  /** Delivers a few of m's in-flight messages (ahead of their time), maybe a tick and a proposal. */
  private interleave(m: SimMember): void {
    const node = m.node!;
    let taken = 0;
    const rest: InFlight[] = [];
    for (const f of this.inflight) {
      const msg = taken < 3 ? decodeMessage(f.bytes) : undefined;
      if (msg === undefined || msg.to !== m.id || !this.connected(msg.from, msg.to)) {
        rest.push(f);
        continue;
      }
      taken++;
      try {
        node.step(msg);
      } catch (err) {
        if (!(err instanceof ErrStepPeerNotFound)) throw err;
      }
    }
    this.inflight = rest;
    if (this.chance(0.1)) node.tick();
    // At most one such proposal per round, or busy members would flood the log.
    if (this.lastInterleavedProposal < this.round && this.chance(0.3)) {
      this.lastInterleavedProposal = this.round;
      this.propose(m);
    }
  }

  private apply(m: SimMember, e: Entry): void {
    if (m.node === undefined) return;
    if (e.index !== m.app.appliedIndex + 1) {
      this.fail(`${m.id} applies index ${e.index} after ${m.app.appliedIndex}`);
    }
    this.checkEntry(m, e, 'applied');
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      try {
        m.app.confState = m.node.applyConfChange(cc);
      } catch (err) {
        // Invalid changes are refused identically by every member.
        if (!(err instanceof ErrInvalidConfChange)) throw err;
        if (!err.message.includes('cannot demote') && !err.message.includes('removed all voters')) throw err;
      }
      this.onConfChangeApplied(m, cc);
    }
    m.app.hash = mix(fnv(mix(m.app.hash, e.index), e.data), e.type);
    m.app.appliedIndex = e.index;
    this.checkAppliedHash(m, e.index, m.app.hash);
    if (e.index > this.maxApplied) this.maxApplied = e.index;
  }

  private onConfChangeApplied(m: SimMember, cc: ConfChange): void {
    if (cc.type === ConfChangeType.RemoveNode) {
      if (cc.nodeId === m.id) {
        // Like etcd's server, a member that applies its own removal shuts down. (One that never
        // learns of it just sits idle: nobody talks to it any more.)
        this.note(() => `${m.id} applied its own removal`);
        this.crash(m, 'removed');
        m.removed = true;
      }
    } else if (!this.members.has(cc.nodeId) && cc.type !== ConfChangeType.UpdateNode) {
      // A member added to the configuration starts, empty, once the change is committed.
      this.note(() => `start new member ${cc.nodeId}`);
      this.newMember(cc.nodeId);
    }
  }

  private maybeSnapshot(m: SimMember): void {
    const snapIndex = m.storage.snapshot().metadata.index;
    if (m.app.appliedIndex - snapIndex < m.snapshotEvery) return;
    m.storage.createSnapshot(m.app.appliedIndex, m.app.confState, encodeApp(m.app));
    // Keep a few entries for slow followers; older ones need the snapshot.
    const keep = Math.floor(this.rng() * 8);
    const compactTo = m.app.appliedIndex - keep;
    if (compactTo > m.storage.firstIndex()) m.storage.compact(compactTo);
  }

  // ------------------------------------------------------------------------------------------
  // Safety checks

  private checkLeader(m: SimMember, rd: Ready): void {
    const raft = m.node!.raft;
    const prevCommit = m.readyCommit;
    if (rd.hardState !== undefined) m.readyCommit = rd.hardState.commit;
    if (raft.state !== StateType.Leader) return;
    const prev = this.leaderOfTerm.get(raft.term);
    if (prev !== undefined && prev !== m.id) {
      this.fail(`election safety: ${prev} and ${m.id} are both leaders of term ${raft.term}`);
    }
    if (prev === undefined) {
      this.leaderOfTerm.set(raft.term, m.id);
      this.stats.leaders++;
      this.note(() => `${m.id} leads term ${raft.term} (last index ${raft.raftLog.lastIndex()})`);
      this.checkLeaderCompleteness(m);
    }
    // A leader (past its first Ready) commits, by counting replicas, only entries of its own
    // term (5.4.2).
    if (m.leaderTerm === raft.term && rd.hardState !== undefined && rd.hardState.commit > prevCommit) {
      const t = raft.raftLog.termOrUndefined(rd.hardState.commit);
      if (t !== raft.term) {
        this.fail(
          `leader ${m.id} of term ${raft.term} committed index ${rd.hardState.commit} of term ${t} by counting`,
        );
      }
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      const last = rd.entries[rd.entries.length - 1]!.index;
      if (m.leaderTerm === raft.term && first <= m.leaderLastIndex) {
        this.fail(
          `leader append-only: ${m.id} rewrites index ${first} (had ${m.leaderLastIndex}) in term ${raft.term}`,
        );
      }
      m.leaderTerm = raft.term;
      m.leaderLastIndex = last;
    }
  }

  private checkLeaderCompleteness(m: SimMember): void {
    const log = m.node!.raft.raftLog;
    const from = Math.max(log.firstIndex(), 1);
    if (this.maxCommitted > log.lastIndex()) {
      this.fail(`leader completeness: leader ${m.id} ends at ${log.lastIndex()} but ${this.maxCommitted} is committed`);
    }
    for (let i = from; i <= this.maxCommitted; i++) {
      const want = this.committedTerm[i];
      if (want === undefined) continue;
      const got = log.termOrUndefined(i);
      if (got !== undefined && got !== want) {
        this.fail(`leader completeness: leader ${m.id} has term ${got} at committed index ${i} (term ${want})`);
      }
    }
  }

  /** Every committed entry still on m's disk is the entry committed there (nothing changed it). */
  private checkStoredLog(m: SimMember): void {
    const s = m.storage;
    const commit = Math.min(s.initialState().hardState.commit, s.lastIndex());
    if (commit < s.firstIndex()) return;
    for (const e of s.entries(s.firstIndex(), commit + 1, Number.MAX_SAFE_INTEGER)) this.checkEntry(m, e, 'stored');
  }

  /** The member persisted commit index `commit`: its entries up to there are committed. */
  private checkCommitted(m: SimMember, commit: number): void {
    if (commit <= m.checkedCommit) return;
    const first = m.storage.firstIndex();
    const lo = Math.max(m.checkedCommit + 1, first);
    if (lo <= commit) {
      for (const e of m.storage.entries(lo, commit + 1, Number.MAX_SAFE_INTEGER)) this.checkEntry(m, e, 'committed');
    }
    m.checkedCommit = commit;
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  private checkEntry(m: SimMember, e: Entry, what: string): void {
    const digest = mix(fnv(0x811c9dc5, e.data), e.type);
    const term = this.committedTerm[e.index];
    if (term === undefined) {
      this.committedTerm[e.index] = e.term;
      this.committedDigest[e.index] = digest;
      return;
    }
    if (term !== e.term || this.committedDigest[e.index] !== digest) {
      this.fail(
        `${what} entry ${e.index} on ${m.id} has term ${e.term}, but the entry committed there has term ${term} (or other data)`,
      );
    }
  }

  private checkAppliedHash(m: SimMember, index: number, hash: number): void {
    const want = this.appliedHash[index];
    if (want === undefined) this.appliedHash[index] = hash;
    else if (want !== hash) this.fail(`state machine safety: ${m.id} state after index ${index} differs`);
  }

  // ------------------------------------------------------------------------------------------
  // Clients

  private propose(m: SimMember): boolean {
    const seq = ++this.proposalSeq;
    const pad = this.chance(0.2) ? Math.floor(this.rng() * 100) : 0;
    const data = new Uint8Array(4 + pad);
    new DataView(data.buffer).setUint32(0, seq);
    try {
      m.node!.propose(data);
      return true;
    } catch (err) {
      if (err instanceof ErrProposalDropped) return false;
      throw err;
    }
  }

  private readIndex(m: SimMember): void {
    const seq = ++this.readSeq;
    const ctx = new Uint8Array([seq & 0xff, (seq >>> 8) & 0xff, (seq >>> 16) & 0xff]);
    try {
      m.node!.readIndex(ctx);
      m.reads.set(String(seq & 0xffffff), this.maxApplied);
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
    }
  }

  private changeMembership(): void {
    const leader = this.pick(this.leaders().length > 0 ? this.leaders() : [undefined]);
    if (leader === undefined) return;
    const prs = leader.node!.raft.prs;
    const voters = [...prs.voters];
    const learners = [...prs.learners];
    const total = this.members.size;
    let cc: ConfChange | undefined;
    const r = this.rng();
    if (r < 0.3 && total < this.opts.members + 4) {
      cc = { id: 0n, type: ConfChangeType.AddLearnerNode, nodeId: this.nextId++, context: new Uint8Array() };
    } else if (r < 0.55 && learners.length > 0) {
      cc = { id: 0n, type: ConfChangeType.AddNode, nodeId: this.pick(learners), context: new Uint8Array() };
    } else if (r < 0.65 && total < this.opts.members + 4) {
      cc = { id: 0n, type: ConfChangeType.AddNode, nodeId: this.nextId++, context: new Uint8Array() };
    } else if (r < 0.9 && voters.length > 3) {
      cc = { id: 0n, type: ConfChangeType.RemoveNode, nodeId: this.pick(voters), context: new Uint8Array() };
    } else if (learners.length > 0) {
      cc = { id: 0n, type: ConfChangeType.RemoveNode, nodeId: this.pick(learners), context: new Uint8Array() };
    }
    if (cc === undefined) return;
    try {
      leader.node!.proposeConfChange(cc);
      this.stats.confChanges++;
      this.note(() => `propose conf change type=${cc.type} node=${cc.nodeId} via ${leader.id}`);
    } catch (err) {
      if (!(err instanceof ErrProposalDropped || err instanceof ErrInvalidConfChange)) throw err;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Rounds

  private tickAll(): void {
    for (const m of this.live()) {
      if (this.faults && this.chance(this.tickSkip)) continue;
      m.node!.tick();
    }
  }

  private processAll(): void {
    for (const m of this.live()) this.processReadies(m);
  }

  private faultRound(): void {
    const live = this.live();
    if (live.length > 0) {
      if (this.chance(0.3)) this.propose(this.pick(live));
      if (this.chance(0.05)) this.readIndex(this.pick(live));
      if (this.chance(this.crashRate)) this.crash(this.pick(live), 'random');
      if (this.chance(this.confRate)) this.changeMembership();
      if (this.chance(0.005)) {
        const leaders = this.leaders();
        if (leaders.length > 0) {
          const l = this.pick(leaders);
          const target = this.pick([...l.node!.raft.prs.voters]);
          this.note(() => `transfer leadership ${l.id} -> ${target}`);
          l.node!.transferLeader(target);
        }
      }
    }
    const down = [...this.members.values()].filter((m) => m.node === undefined && !m.removed);
    if (down.length > 0 && this.chance(0.05)) this.restart(this.pick(down));
    if (this.groups.size === 0 && this.chance(0.01)) this.partition();
    else if (this.groups.size > 0 && this.chance(0.03)) this.heal();
    this.step();
  }

  private step(): void {
    this.tickAll();
    this.processAll();
    this.deliverDue();
    this.processAll();
    this.round++;
  }

  /** The leader, if exactly one member leads and its term is the highest of all. */
  private electedLeader(): SimMember | undefined {
    const live = this.live();
    let maxTerm = 0;
    for (const m of live) maxTerm = Math.max(maxTerm, m.node!.raft.term);
    const leaders = live.filter((m) => m.node!.raft.state === StateType.Leader && m.node!.raft.term === maxTerm);
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  run(): SimResult {
    for (let i = 0; i < this.opts.faultRounds; i++) this.faultRound();

    // Liveness: faults stop, the network heals, every member that was not removed restarts.
    this.faults = false;
    this.heal();
    for (const m of this.members.values()) this.restart(m);
    this.note('faults stop');

    const healedAt = this.round;
    while (this.electedLeader() === undefined) {
      if (this.round - healedAt > ELECTION_BOUND_ROUNDS) {
        this.fail(`liveness: no leader ${ELECTION_BOUND_ROUNDS} rounds after the network healed (${this.describe()})`);
      }
      this.step();
    }
    this.stats.electionRounds = this.round - healedAt;

    const electedAt = this.round;
    const lastIndexes = this.live().map((m) => m.node!.raft.raftLog.lastIndex());
    const lag = Math.max(...lastIndexes) - Math.min(...lastIndexes);
    const commitBound = COMMIT_BOUND_ROUNDS + COMMIT_ROUNDS_PER_LAGGING_ENTRY * lag;
    // Clients propose through the leader and retry if leadership changes before their entries
    // commit (a deposed leader's uncommitted entries may be overwritten; that is Raft).
    let want: { index: number; term: number }[] = [];
    let proposer: SimMember | undefined;
    let proposerTerm = 0;
    const committed = (): boolean =>
      want.length === LIVENESS_PROPOSALS && want.every((w) => this.committedTerm[w.index] === w.term);
    while (!committed()) {
      if (this.round - electedAt > commitBound) {
        this.fail(`liveness: proposals not committed ${commitBound} rounds after election (${this.describe()})`);
      }
      const l = this.electedLeader();
      if (l !== undefined && (l !== proposer || l.node!.raft.term !== proposerTerm)) {
        // A new leader: (re)propose the batch through it.
        want = [];
        proposer = l;
        proposerTerm = l.node!.raft.term;
        while (want.length < LIVENESS_PROPOSALS && this.propose(l)) {
          const log = l.node!.raft.raftLog;
          want.push({ index: log.lastIndex(), term: log.lastTerm() });
        }
        if (want.length < LIVENESS_PROPOSALS) proposer = undefined; // dropped (e.g. a transfer): retry
        this.stats.proposalBatches++;
      }
      this.step();
    }
    this.stats.commitRounds = this.round - electedAt;

    // Then every member of the configuration applies them (far-behind members catch up).
    const committedAt = this.round;
    const target = want[want.length - 1]!.index;
    for (;;) {
      const leader = this.electedLeader();
      const members = leader?.node?.raft.prs.progress;
      const behind = this.live().filter((m) => m.app.appliedIndex < target && members?.has(m.id) !== false);
      if (behind.length === 0) break;
      if (this.round - committedAt > CATCH_UP_BOUND_ROUNDS) {
        this.fail(
          `liveness: ${behind.map((m) => m.id).join(',')} did not apply index ${target} ${CATCH_UP_BOUND_ROUNDS} rounds after it committed (${this.describe()})`,
        );
      }
      this.step();
    }
    this.stats.catchUpRounds = this.round - committedAt;
    // Everyone converged on the same state, and no committed entry changed on any disk.
    for (const m of this.members.values()) this.checkStoredLog(m);
    const live = this.live();
    const idx = Math.min(...live.map((m) => m.app.appliedIndex));
    for (const m of live) this.checkAppliedHash(m, m.app.appliedIndex, m.app.hash);
    this.stats.committed = idx;
    return this.stats;
  }

  private describe(): string {
    return [...this.members.values()]
      .map((m) => {
        if (m.node === undefined) return `${m.id}:${m.removed ? 'removed' : 'down'}`;
        const r = m.node.raft;
        const prs =
          r.state === StateType.Leader
            ? ` prs[${[...m.node.status().progress].map(([id, p]) => `${id}:${p.stateName}/m${p.match}/n${p.next}/ps${p.pendingSnapshot}/ra${p.recentActive}/if${p.inflight}`).join(' ')}]`
            : '';
        return `${m.id}:${['F', 'C', 'L', 'P'][r.state]} v[${[...r.prs.voters].join(',')}] l[${[...r.prs.learners].join(',')}] t${r.term} c${r.raftLog.committed} a${m.app.appliedIndex} li${r.raftLog.lastIndex()} fi${r.raftLog.firstIndex()} lead${r.lead}${prs}`;
      })
      .join(' ');
  }
}

export { messageTypeName };
