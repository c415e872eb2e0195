/**
 * The raft loop of a member: drives the pure raft state machine with ticks, persists each
 * Ready to the WAL (one durable write per Ready, which is the group commit: every proposal
 * made while the previous write ran lands in the next batch; a Ready that only moves the
 * commit index is not synced, as raft's mustSync allows), sends messages, hands committed
 * entries to the applier, and advances.
 *
 * Handling order of a Ready (src/raft/README.md): early messages, persist snapshot + entries
 * + hard state, send the rest of the messages, apply, advance.
 */
import { randomInt } from 'node:crypto';
import {
  decodeSnapshot,
  type Entry,
  encodeSnapshot,
  type HardState,
  MemoryStorage,
  type Message,
  MessageType,
  type Peer,
  RawNode,
  type ReadState,
  type Ready,
  type Snapshot,
  type SoftState,
  StateType,
} from '../raft/index.ts';
import { Snapshotter } from '../storage/snap/index.ts';
import { Wal } from '../storage/wal/index.ts';
import { Outbox } from './outbox.ts';

/** A Ready of at most this many entries (and bytes) is written on the event loop's thread. */
const SAVE_NOW_MAX_ENTRIES = 2;
const SAVE_NOW_MAX_BYTES = 64 * 1024;

/** Snapshot files kept on disk (etcd's default --max-snapshots). */
export const SNAPSHOTS_KEPT = 5;

export interface RaftLoopOptions {
  /** This member's id for a new WAL; a restarted member reads it from the WAL's metadata. */
  memberId: bigint;
  memberIdFromMetadata(metadata: Uint8Array): bigint;
  walDir: string;
  snapDir: string;
  heartbeatMs: number;
  electionMs: number;
  /** Metadata stored at the head of a new WAL (member and cluster ids). */
  walMetadata: Uint8Array;
  /**
   * The members of a new cluster; ignored when the WAL already exists. Empty for a member
   * joining an existing cluster: it learns the membership from the leader.
   */
  bootstrapPeers: readonly Peer[];
  /** The applied index the state machine already has durably (entries up to it are skipped). */
  appliedIndex: number;
  /** Told the duration of every WAL fsync (etcd_disk_wal_fsync_duration_seconds). */
  onFsync?: (durationMs: number) => void;
}

export interface RaftLoopHandlers {
  /** Entries just made durable in this member's log (before they are committed). */
  appended(entries: readonly Entry[]): void;
  /**
   * Applies committed entries, synchronously and in order. Returns whether that answered a
   * client of this member (a proposal made here).
   */
  apply(entries: readonly Entry[]): boolean;
  /** Installs a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): Promise<void>;
  readStates(states: readonly ReadState[]): void;
  send(messages: readonly Message[]): void;
  softState(state: SoftState): void;
  /** Called once per Ready after the entries it applied are durable in the WAL. */
  afterReady(): void;
}

export interface RestoredRaft {
  metadata: Uint8Array;
  snapshot: Snapshot | undefined;
  hardState: HardState;
  isNew: boolean;
}

export class RaftLoop {
  readonly node: RawNode;
  readonly storage: MemoryStorage;
  private readonly wal: Wal;
  private readonly snapshotter: Snapshotter;
  private readonly handlers: RaftLoopHandlers;
  private readonly outbox: Outbox;
  private readonly tickTimer: NodeJS.Timeout;
  private processing = false;
  private scheduled = false;
  private closed = false;
  private idlePromise: Promise<void> | undefined = undefined;
  private idleResolve: (() => void) | undefined = undefined;
  /** The first error of the loop; once set, the member stops (it must not run on a broken WAL). */
  fatal: Error | undefined = undefined;
  onFatal: (err: Error) => void = () => {};

  private constructor(
    node: RawNode,
    storage: MemoryStorage,
    wal: Wal,
    snapshotter: Snapshotter,
    handlers: RaftLoopHandlers,
    heartbeatMs: number,
  ) {
    this.node = node;
    this.storage = storage;
    this.wal = wal;
    this.snapshotter = snapshotter;
    this.handlers = handlers;
    this.outbox = new Outbox((messages) => handlers.send(messages));
    this.tickTimer = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, heartbeatMs);
  }

  /**
   * Opens (or creates) the WAL, rebuilds the raft log from the newest snapshot and the WAL, and
   * starts ticking. A fresh member bootstraps the cluster from `bootstrapPeers`.
   */
  static async open(
    opts: RaftLoopOptions,
    handlers: RaftLoopHandlers,
  ): Promise<{ loop: RaftLoop; restored: RestoredRaft }> {
    const snapshotter = new Snapshotter(opts.snapDir);
    const storage = new MemoryStorage();
    let wal: Wal;
    let restored: RestoredRaft;
    const electionTick = Math.max(2, Math.round(opts.electionMs / opts.heartbeatMs));
    const random = () => randomInt(0, 2 ** 31) / 2 ** 31;
    if (Wal.exists(opts.walDir)) {
      const snapFile = await snapshotter.loadNewest();
      const snapshot = snapFile !== null ? decodeSnapshot(snapFile.data) : undefined;
      const from =
        snapshot !== undefined
          ? { index: snapshot.metadata.index, term: snapshot.metadata.term }
          : { index: 0, term: 0 };
      const opened = await Wal.open(opts.walDir, from, { onFsync: opts.onFsync });
      wal = opened.wal;
      if (snapshot !== undefined) storage.applySnapshot(snapshot);
      storage.setHardState(opened.hardState);
      storage.append(opened.entries as Entry[]);
      restored = { metadata: opened.metadata, snapshot, hardState: opened.hardState, isNew: false };
      const applied = Math.max(opts.appliedIndex, snapshot?.metadata.index ?? 0);
      const node = new RawNode(
        {
          id: opts.memberIdFromMetadata(opened.metadata),
          electionTick,
          heartbeatTick: 1,
          random,
          applied: Math.min(applied, opened.hardState.commit),
        },
        storage,
      );
      const loop = new RaftLoop(node, storage, wal, snapshotter, handlers, opts.heartbeatMs);
      const { voters } = node.status().config;
      if (voters.length === 1 && voters[0] === node.raft.id) node.campaign();
      loop.schedule();
      return { loop, restored };
    }
    wal = await Wal.create(opts.walDir, opts.walMetadata, { onFsync: opts.onFsync });
    const node = new RawNode({ id: opts.memberId, electionTick, heartbeatTick: 1, random }, storage);
    if (opts.bootstrapPeers.length > 0) node.bootstrap(opts.bootstrapPeers);
    restored = {
      metadata: opts.walMetadata,
      snapshot: undefined,
      hardState: { term: 0, vote: 0n, commit: 0 },
      isNew: true,
    };
    const loop = new RaftLoop(node, storage, wal, snapshotter, handlers, opts.heartbeatMs);
    // A single-member cluster needs no election timeout to pass before it leads.
    if (opts.bootstrapPeers.length === 1) node.campaign();
    loop.schedule();
    return { loop, restored };
  }

  /** Runs the Ready handler on the next turn of the event loop (once, however often called). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.processReady();
    });
  }

  /**
   * Steps a message from a peer and schedules the Ready it may make. On a leader, a proposal or
   * a read index that a follower forwarded makes that follower wait on a commit: its commit
   * notices are then not held (see Outbox.awaitCommit).
   */
  stepPeer(m: Message): void {
    this.node.step(m);
    if ((m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex) && this.isLeader()) {
      this.outbox.awaitCommit(m.from, this.node.raft.raftLog.lastIndex());
    }
    this.schedule();
  }

  isLeader(): boolean {
    return this.node.raft.state === StateType.Leader;
  }

  private async processReady(): Promise<void> {
    if (this.processing || this.closed || this.fatal !== undefined) return;
    if (!this.node.hasReady()) {
      this.signalIdle();
      return;
    }
    this.processing = true;
    let rd: Ready;
    let persisted = false;
    try {
      rd = this.node.ready();
      if (rd.softState !== undefined) this.handlers.softState(rd.softState);
      // On a leader, committed entries already durable in its log are applied before this
      // Ready's write, so that their clients need not wait for the next batch's fsync as well.
      // A follower writes and answers first: the leader's clients wait for its answer.
      const committed = rd.committedEntries;
      let applyNow = 0;
      if (rd.snapshot === undefined && this.isLeader()) {
        const durable = this.storage.lastIndex();
        while (applyNow < committed.length && committed[applyNow]!.index <= durable) applyNow++;
      }
      // A Ready that only applies entries (on a leader, the commit index moved): followers
      // whose clients wait on the commit hear of it first; then this member applies, and when
      // that answered clients here, their responses go out before its other messages.
      const onlyApplies = applyNow > 0 && rd.entries.length === 0;
      let clientsFirst = false;
      if (onlyApplies) {
        const rest = this.outbox.sendAwaited(rd.earlyMessages);
        clientsFirst = this.handlers.apply(committed.slice(0, applyNow));
        this.outbox.sendCommitted(rest, clientsFirst);
      } else {
        this.send(rd.earlyMessages, false);
        if (applyNow > 0) this.handlers.apply(committed.slice(0, applyNow));
      }
      if (rd.snapshot !== undefined) {
        await this.snapshotter.save({
          index: rd.snapshot.metadata.index,
          term: rd.snapshot.metadata.term,
          data: encodeSnapshot(rd.snapshot),
        });
        await this.wal.saveSnapshot({ index: rd.snapshot.metadata.index, term: rd.snapshot.metadata.term });
      }
      if (rd.entries.length > 0 || rd.mustSync) {
        if (!this.saveNow(rd)) await this.wal.save(rd.hardState ?? null, rd.entries);
        persisted = true;
      } else if (rd.hardState !== undefined) {
        // Only the commit index moved: no write or fsync of its own, it goes out with the next save.
        this.wal.deferHardState(rd.hardState);
      }
      if (rd.snapshot !== undefined) {
        this.storage.applySnapshot(rd.snapshot);
        await this.handlers.applySnapshot(rd.snapshot);
      }
      if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
      if (rd.entries.length > 0) {
        this.storage.append(rd.entries);
        this.handlers.appended(rd.entries);
      }
      this.send(rd.messages, clientsFirst);
      if (applyNow < committed.length) {
        this.handlers.apply(applyNow === 0 ? committed : committed.slice(applyNow));
      }
      if (rd.readStates.length > 0) this.handlers.readStates(rd.readStates);
      this.node.advance(rd);
      this.handlers.afterReady();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    } finally {
      this.processing = false;
    }
    // After a WAL write (a fresh stack), the next Ready (the commit of what was just written,
    // proposals that came meanwhile) is handled at once rather than a turn of the loop later.
    if (this.node.hasReady()) {
      if (persisted) void this.processReady();
      else this.schedule();
    } else this.signalIdle();
  }

  /**
   * Sends now, or, when an apply of this Ready answered clients here (`afterResponses`), as
   * Outbox.sendCommitted: after their responses, commit notices held for the next append.
   */
  private send(messages: readonly Message[], afterResponses: boolean): void {
    if (messages.length === 0) return;
    if (afterResponses) this.outbox.sendCommitted(messages, true);
    else this.outbox.send(messages);
  }

  /**
   * Writes a small Ready's entries on this thread: so few entries that few clients can be
   * waiting (under load, batches are larger and the write goes to the thread pool while the
   * next batch is received). A lone client's put then costs one blocking write instead of a trip
   * through the thread pool and back. A leader's appends to its followers are already on their
   * sockets (sent before the write, see processReady), so the followers write in parallel; the
   * leader needs its own write done before it counts itself anyway.
   */
  private saveNow(rd: Ready): boolean {
    if (rd.entries.length > SAVE_NOW_MAX_ENTRIES) return false;
    return this.wal.saveNow(rd.hardState ?? null, rd.entries, SAVE_NOW_MAX_BYTES);
  }

  private fail(err: Error): void {
    if (this.fatal !== undefined) return;
    this.fatal = err;
    this.onFatal(err);
  }

  private signalIdle(): void {
    const resolve = this.idleResolve;
    this.idleResolve = undefined;
    this.idlePromise = undefined;
    resolve?.();
  }

  /** Resolves when no Ready is being handled and none is pending. */
  idle(): Promise<void> {
    if (!this.processing && !this.node.hasReady()) return Promise.resolve();
    this.idlePromise ??= new Promise((resolve) => {
      this.idleResolve = resolve;
    });
    this.schedule();
    return this.idlePromise;
  }

  /**
   * Compacts the in-memory raft log into a snapshot at `appliedIndex` (the state machine must
   * be durable up to it), keeping `catchUpEntries` entries for slow followers, and releases WAL
   * segments that are no longer needed.
   */
  async snapshot(appliedIndex: number, data: Uint8Array, catchUpEntries: number): Promise<void> {
    // The configuration as applied (raft's own may be ahead: it switches when a change is appended).
    const confState = this.node.status().appliedConfig;
    const snap = this.storage.createSnapshot(appliedIndex, confState, data);
    await this.snapshotter.save({ index: snap.metadata.index, term: snap.metadata.term, data: encodeSnapshot(snap) });
    await this.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
    const compactTo = appliedIndex - catchUpEntries;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
    await this.wal.releaseTo(snap.metadata.index);
    // Keep the newest SNAPSHOTS_KEPT snapshot files (etcd's --max-snapshots default).
    const files = await this.snapshotter.list();
    const oldestKept = files[SNAPSHOTS_KEPT - 1];
    if (oldestKept !== undefined) await this.snapshotter.releaseOlderThan(oldestKept.index);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.tickTimer);
    // Let the Ready in progress finish so that its fsync completes before the WAL closes.
    while (this.processing) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    this.outbox.close();
    await this.wal.close();
  }
}
