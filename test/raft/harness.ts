// Test harness: members backed by MemoryStorage that handle their Ready exactly as the README
// says, and an in-memory network that can drop messages, cut links, isolate members and
// recover (etcd raft's `network`). Delivery is deterministic: FIFO, until quiet.

import {
  type ConfChange,
  type Config,
  type ConfState,
  createSeededRandom,
  decodeConfChange,
  type Entry,
  EntryType,
  ErrStepPeerNotFound,
  MemoryStorage,
  type Message,
  MessageType,
  messageTypeName,
  RawNode,
  type ReadState,
  type Ready,
  type Snapshot,
  StateType,
} from '../../src/raft/index.ts';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface MemberOptions extends Partial<Omit<Config, 'id'>> {}

export class Member {
  readonly storage: MemoryStorage;
  node: RawNode;
  /** Normal entries applied, in order (conf changes are applied too but kept apart). */
  readonly applied: Entry[] = [];
  readonly confChanges: ConfChange[] = [];
  readonly readStates: ReadState[] = [];
  confState: ConfState = { voters: [], learners: [] };
  /** Every Ready handled, for tests that inspect them. */
  readonly readies: Ready[] = [];
  appliedSnapshot: Snapshot | undefined;

  constructor(
    readonly id: bigint,
    readonly options: MemberOptions,
    storage?: MemoryStorage,
  ) {
    this.storage = storage ?? new MemoryStorage();
    this.node = this.newNode();
  }

  private newNode(): RawNode {
    return new RawNode(
      { random: createSeededRandom(Number(this.id) * 7919), ...this.options, id: this.id },
      this.storage,
    );
  }

  /**
   * Restarts from what was persisted (unpersisted state is lost). The state machine starts
   * over too: it is rebuilt by applying the log again.
   */
  restart(options: MemberOptions = {}): void {
    this.applied.length = 0;
    this.confChanges.length = 0;
    this.readStates.length = 0;
    this.node = new RawNode(
      { random: createSeededRandom(Number(this.id) * 104729), ...this.options, ...options, id: this.id },
      this.storage,
    );
  }

  get raft() {
    return this.node.raft;
  }

  get state(): StateType {
    return this.node.raft.state;
  }

  get term(): number {
    return this.node.raft.term;
  }

  /** Handles one Ready the way the README prescribes; returns the messages to send (early first). */
  handleReady(): Message[] {
    const rd = this.node.ready();
    this.readies.push(rd);
    const out: Message[] = [...rd.earlyMessages];
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    out.push(...rd.messages);
    if (rd.snapshot !== undefined) {
      this.appliedSnapshot = rd.snapshot;
      this.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        this.confChanges.push(cc);
        this.confState = this.node.applyConfChange(cc);
      } else if (e.data.length > 0) {
        this.applied.push(e);
      }
    }
    this.readStates.push(...rd.readStates);
    this.node.advance(rd);
    return out;
  }

  /** Handles every Ready until there is none; returns all messages produced. */
  drain(): Message[] {
    const out: Message[] = [];
    while (this.node.hasReady()) out.push(...this.handleReady());
    return out;
  }

  appliedData(): string[] {
    return this.applied.map((e) => dec(e.data));
  }
}

export interface TestNodeOptions extends MemberOptions {
  learners?: readonly number[];
  /** Terms of the entries at indexes 1, 2, ... */
  logTerms?: readonly number[];
  term?: number;
  vote?: number;
  commit?: number;
}

/**
 * A member with a given membership and log, as in the paper's examples. Pre-vote and
 * check-quorum are off unless asked for, so that the tests read like the paper.
 */
export function testNode(id: number, peers: readonly number[], o: TestNodeOptions = {}): Member {
  const storage = new MemoryStorage({
    voters: peers.map((p) => BigInt(p)),
    learners: (o.learners ?? []).map((p) => BigInt(p)),
  });
  storage.append(
    (o.logTerms ?? []).map((t, i) => ({ term: t, index: i + 1, type: EntryType.Normal, data: enc(`e${i + 1}`) })),
  );
  storage.setHardState({ term: o.term ?? 0, vote: BigInt(o.vote ?? 0), commit: o.commit ?? 0 });
  const { learners: _l, logTerms: _t, term: _term, vote: _v, commit: _c, ...rest } = o;
  return new Member(BigInt(id), { preVote: false, checkQuorum: false, ...rest }, storage);
}

/** Builds entries with the given terms at consecutive indexes starting at `from`. */
export function entries(from: number, terms: readonly number[]): Entry[] {
  return terms.map((t, i) => ({ term: t, index: from + i, type: EntryType.Normal, data: enc(`e${from + i}`) }));
}

export type MessageFilter = (m: Message) => boolean;

export class Network {
  readonly members = new Map<bigint, Member>();
  readonly queue: Message[] = [];
  /** Every message delivered, for tests that inspect traffic. */
  readonly delivered: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly ignored = new Set<MessageType>();
  private readonly filters: MessageFilter[] = [];

  /** Members with the given ids, bootstrapped as one cluster of voters. */
  static bootstrap(ids: readonly number[], options: MemberOptions = {}): Network {
    const net = new Network();
    for (const n of ids) {
      const m = new Member(BigInt(n), options);
      m.node.bootstrap(ids.map((i) => ({ id: BigInt(i) })));
      net.members.set(m.id, m);
    }
    net.stabilize();
    return net;
  }

  /** A network of the given members (built with testNode or new Member). */
  static of(members: readonly Member[]): Network {
    const net = new Network();
    for (const m of members) net.members.set(m.id, m);
    return net;
  }

  add(m: Member): Member {
    this.members.set(m.id, m);
    return m;
  }

  member(id: number | bigint): Member {
    const m = this.members.get(BigInt(id));
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: number | bigint): RawNode {
    return this.member(id).node;
  }

  /** Blocks both directions between a and b. */
  cutLink(a: number, b: number): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  isolate(id: number): void {
    for (const other of this.members.keys()) {
      if (other !== BigInt(id)) this.cutLink(id, Number(other));
    }
  }

  /** Drops every message of this type. */
  ignore(t: MessageType): void {
    this.ignored.add(t);
  }

  /** Drops messages for which `f` returns true. */
  dropIf(f: MessageFilter): void {
    this.filters.push(f);
  }

  recover(): void {
    this.cut.clear();
    this.ignored.clear();
    this.filters.length = 0;
  }

  private passes(m: Message): boolean {
    if (this.cut.has(`${m.from}-${m.to}`)) return false;
    if (this.ignored.has(m.type)) return false;
    for (const f of this.filters) if (f(m)) return false;
    return true;
  }

  /** Queues messages for delivery (filtered now, as a real network would lose them). */
  send(msgs: readonly Message[]): void {
    for (const m of msgs) if (this.passes(m)) this.queue.push(m);
  }

  /** Delivers one message now. */
  deliver(m: Message): void {
    const target = this.members.get(m.to);
    if (target === undefined) return;
    this.delivered.push(m);
    try {
      target.node.step(m);
    } catch (err) {
      if (!(err instanceof ErrStepPeerNotFound)) throw err;
    }
  }

  /** Handles Readies and delivers messages until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const m of this.members.values()) {
        const out = m.drain();
        if (out.length > 0) busy = true;
        this.send(out);
      }
      if (this.queue.length > 0) busy = true;
      const batch = this.queue.splice(0);
      for (const msg of batch) this.deliver(msg);
      if (!busy) return;
    }
    throw new Error('network did not stabilize');
  }

  tick(id: number, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const m of this.members.values()) m.node.tick();
  }

  campaign(id: number): void {
    this.node(id).campaign();
    this.stabilize();
  }

  propose(id: number, data: string): void {
    this.node(id).propose(enc(data));
    this.stabilize();
  }

  leaders(): Member[] {
    return [...this.members.values()].filter((m) => m.state === StateType.Leader);
  }

  leader(): Member {
    const ls = this.leaders();
    if (ls.length !== 1) throw new Error(`expected one leader, found ${ls.length}`);
    return ls[0]!;
  }
}

export function describe(m: Message): string {
  return `${m.from}->${m.to} ${messageTypeName(m.type)} term=${m.term} logTerm=${m.logTerm} index=${m.index} commit=${m.commit} entries=${m.entries.length}${m.reject ? ' reject' : ''}`;
}

export function ofType(msgs: readonly Message[], t: MessageType): Message[] {
  return msgs.filter((m) => m.type === t);
}

export { MessageType, StateType };
