// Membership changes, one server at a time, effective when appended (Raft thesis 4.1):
// every member uses the latest configuration in its log, committed or not, and reverts to the
// previous one if that entry is truncated away. With the leader's rules (a new change only once
// the previous one is committed, and only after the leader committed an entry of its own term),
// two configurations in use at the same time differ by at most one voter, so their majorities
// overlap.
//
// (etcd's raft switches configuration when the application applies the entry instead; members
// that apply at different speeds can then use configurations several changes apart, and two
// leaders can be elected in one term: etcd-io/etcd#7625. The simulator in test/raft/ finds that
// schedule.)

import { decodeConfChange } from './codec.ts';
import { ErrDecode, ErrInvalidConfChange, invariant } from './errors.ts';
import { sortedIds } from './progress.ts';
import { type ConfChange, ConfChangeType, type ConfState, type Entry, EntryType, NONE } from './types.ts';

/** The most configuration entries kept beyond the applied index; older ones are dropped. */
export const CONFIG_HISTORY_MAX = 1 << 16;

export interface Configuration {
  /** The log index of the entry that established it (0 for the initial one). */
  readonly index: number;
  readonly voters: ReadonlySet<bigint>;
  readonly learners: ReadonlySet<bigint>;
  /** The change at `index` (undefined for a configuration from a snapshot or storage). */
  readonly change: ConfChange | undefined;
  /** Why the change at `index` was refused (it then left the configuration as it was). */
  readonly refused: string | undefined;
}

export function configurationFromState(index: number, cs: ConfState): Configuration {
  const voters = new Set<bigint>();
  const learners = new Set<bigint>();
  for (const id of cs.voters) {
    if (id === NONE || voters.has(id)) throw new ErrInvalidConfChange(`bad voter id ${id} in conf state`);
    voters.add(id);
  }
  for (const id of cs.learners) {
    if (id === NONE || learners.has(id) || voters.has(id)) {
      throw new ErrInvalidConfChange(`bad learner id ${id} in conf state`);
    }
    learners.add(id);
  }
  return { index, voters, learners, change: undefined, refused: undefined };
}

export function confStateOf(c: Configuration): ConfState {
  return { voters: sortedIds(c.voters), learners: sortedIds(c.learners) };
}

/**
 * The configuration after applying `cc` to `prev`. Throws ErrInvalidConfChange if the change
 * is not allowed: a zero id, demoting a voter, or removing the last voter.
 */
export function applyChange(
  prev: { voters: ReadonlySet<bigint>; learners: ReadonlySet<bigint> },
  cc: ConfChange,
): { voters: Set<bigint>; learners: Set<bigint> } {
  if (cc.nodeId === NONE) throw new ErrInvalidConfChange('node id must not be 0');
  const voters = new Set(prev.voters);
  const learners = new Set(prev.learners);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case ConfChangeType.AddLearnerNode:
      if (voters.has(cc.nodeId)) throw new ErrInvalidConfChange(`cannot demote voter ${cc.nodeId} to learner`);
      learners.add(cc.nodeId);
      break;
    case ConfChangeType.RemoveNode:
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      if (voters.size === 0) throw new ErrInvalidConfChange('removed all voters');
      break;
    case ConfChangeType.UpdateNode:
      break;
    default:
      throw new ErrInvalidConfChange(`unknown conf change type ${cc.type}`);
  }
  return { voters, learners };
}

/** The configuration established by a conf-change entry that follows `prev` in the log. */
export function configurationAfter(prev: Configuration, e: Entry): Configuration {
  let cc: ConfChange;
  try {
    cc = decodeConfChange(e.data);
  } catch (err) {
    if (!(err instanceof ErrDecode)) throw err;
    return { index: e.index, voters: prev.voters, learners: prev.learners, change: undefined, refused: err.message };
  }
  try {
    const next = applyChange(prev, cc);
    return { index: e.index, voters: next.voters, learners: next.learners, change: cc, refused: undefined };
  } catch (err) {
    if (!(err instanceof ErrInvalidConfChange)) throw err;
    // Refused identically on every member: the configuration stays as it was.
    return { index: e.index, voters: prev.voters, learners: prev.learners, change: cc, refused: err.message };
  }
}

/**
 * The configurations established by the conf-change entries of the log, oldest first. The
 * first one is the base: at or below the applied index (from a snapshot, or an entry already
 * applied); the last one is in force.
 */
export class ConfigHistory {
  private configs: Configuration[];

  constructor(base: Configuration) {
    this.configs = [base];
  }

  latest(): Configuration {
    return this.configs[this.configs.length - 1]!;
  }

  /** The configuration in force at log index i (i at or after the base). */
  at(i: number): Configuration {
    let found = this.configs[0]!;
    for (const c of this.configs) {
      if (c.index > i) break;
      found = c;
    }
    return found;
  }

  /** Forgets every configuration established at or after `index` (their entries were truncated). */
  truncateFrom(index: number): boolean {
    invariant(index > this.configs[0]!.index, () => `truncating the base configuration at ${this.configs[0]!.index}`);
    const before = this.configs.length;
    while (this.latest().index >= index) this.configs.pop();
    return this.configs.length !== before;
  }

  /** Records the configurations of the conf-change entries among `ents` (appended in order). */
  append(ents: readonly Entry[]): boolean {
    let changed = false;
    for (const e of ents) {
      if (e.type !== EntryType.ConfChange) continue;
      invariant(e.index > this.latest().index, 'configuration entries must be appended in order');
      this.configs.push(configurationAfter(this.latest(), e));
      changed = true;
    }
    invariant(this.configs.length <= CONFIG_HISTORY_MAX, 'too many configuration entries beyond the applied index');
    return changed;
  }

  /** Drops what is no longer needed: every configuration older than the last one at or below `applied`. */
  compact(applied: number): void {
    let keep = 0;
    for (let i = 0; i < this.configs.length; i++) if (this.configs[i]!.index <= applied) keep = i;
    if (keep > 0) this.configs = this.configs.slice(keep);
  }

  reset(base: Configuration): void {
    this.configs = [base];
  }
}
