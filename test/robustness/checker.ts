/**
 * A linearizability checker: Wing & Gong's search with Lowe's memoisation, as porcupine does it.
 *
 * A history is a set of operations, each with an input, an output, and the times it was invoked
 * and completed. It is linearizable if every operation can be given a point between its
 * invocation and its completion such that applying the operations in the order of those points
 * to the sequential model gives every operation the output it saw.
 *
 * The search walks the invocation/completion events in time order, trying to linearize each
 * invoked operation next; it backtracks when it reaches the completion of an operation not yet
 * linearized. A (set of linearized operations, model state) pair seen before is not explored
 * again: that cache is what makes real histories tractable.
 *
 * An operation whose outcome is unknown (a timed-out write, a failed request that may still be
 * applied) completes at `Infinity`: it may take effect at any point after its invocation, or
 * never (the search may leave it for last, after every other operation).
 */

export interface Model<State, Input, Output> {
  /** The state before any operation. */
  init(): State;
  /** Applies `input` to `state`: whether `output` is what the model answers, and the next state. */
  step(state: State, input: Input, output: Output): { ok: boolean; state: State };
  /** A string that is equal for equal states (the cache key). */
  stateKey(state: State): string;
  /** Splits a history into independent ones (e.g. one per key); default: one partition. */
  partition?(ops: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  /** For failure reports. */
  describe?(input: Input, output: Output): string;
}

export interface Operation<Input, Output> {
  clientId: number;
  input: Input;
  output: Output;
  /** Invocation time. */
  call: number;
  /** Completion time; `Infinity` when the outcome is unknown. */
  return: number;
}

export interface CheckOptions {
  /** Give up (result `unknown`) after this many milliseconds of search; default 60 s. */
  timeoutMs?: number;
}

export type CheckResult<Input, Output> =
  | { result: 'ok'; operations: number; partitions: number }
  | { result: 'unknown'; operations: number; partitions: number; reason: string }
  | {
      result: 'illegal';
      operations: number;
      partitions: number;
      /** The partition that cannot be linearized. */
      partition: Operation<Input, Output>[];
      /** The longest sequence of its operations the search could linearize, in order. */
      longestPrefix: Operation<Input, Output>[];
      /** Operations that were candidates next when the longest prefix could go no further. */
      stuckAt: Operation<Input, Output>[];
    };

const CALL = 0;
const RETURN = 1;

interface Entry {
  kind: typeof CALL | typeof RETURN;
  /** Index of the operation in its partition. */
  id: number;
  time: number;
  /** The return entry of a call entry. */
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** A fixed-size bit set with a hash kept up to date as bits flip. */
class BitSet {
  readonly words: Uint32Array;
  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32) || 1);
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  equals(other: Uint32Array): boolean {
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== other[i]) return false;
    return true;
  }
}

/** Checks one history (all its partitions); `illegal` names the first partition that fails. */
export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  for (const op of ops) {
    if (!(op.call <= op.return))
      throw new RangeError(`an operation completes before it is invoked: ${op.call} > ${op.return}`);
  }
  const partitions = model.partition?.(ops) ?? [ops.slice()];
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (const partition of partitions) {
    const outcome = checkSingle(model, partition, deadline);
    if (outcome === 'timeout') {
      return {
        result: 'unknown',
        operations: ops.length,
        partitions: partitions.length,
        reason: `search timed out on a partition of ${partition.length} operations`,
      };
    }
    if (outcome !== true) {
      return {
        result: 'illegal',
        operations: ops.length,
        partitions: partitions.length,
        partition,
        longestPrefix: outcome.longest.map((i) => partition[i]!),
        stuckAt: outcome.candidates.map((i) => partition[i]!),
      };
    }
  }
  return { result: 'ok', operations: ops.length, partitions: partitions.length };
}

/** Builds the doubly linked list of events: by time, an invocation before a completion at the same time. */
function makeEntries<Input, Output>(ops: readonly Operation<Input, Output>[]): Entry {
  const events: Entry[] = [];
  ops.forEach((op, id) => {
    const ret: Entry = { kind: RETURN, id, time: op.return, match: undefined, prev: undefined, next: undefined };
    events.push({ kind: CALL, id, time: op.call, match: ret, prev: undefined, next: undefined }, ret);
  });
  events.sort((a, b) => a.time - b.time || a.kind - b.kind || a.id - b.id);
  const head: Entry = { kind: CALL, id: -1, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/** Takes a call entry and its return out of the list. */
function lift(entry: Entry): void {
  entry.prev!.next = entry.next;
  if (entry.next !== undefined) entry.next.prev = entry.prev;
  const match = entry.match!;
  match.prev!.next = match.next;
  if (match.next !== undefined) match.next.prev = match.prev;
}

/** Puts a lifted call entry and its return back where they were. */
function unlift(entry: Entry): void {
  const match = entry.match!;
  match.prev!.next = match;
  if (match.next !== undefined) match.next.prev = match;
  entry.prev!.next = entry;
  if (entry.next !== undefined) entry.next.prev = entry;
}

/** Random 32-bit values per operation: the cache hashes a set of operations as the XOR of theirs. */
function randomWords(n: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    // xorshift32: deterministic, so a failing check behaves the same when run again.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 0;
  }
  return out;
}

const DEADLINE_CHECK_STEPS = 4096;

function checkSingle<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  deadline: number,
): true | 'timeout' | { longest: number[]; candidates: number[] } {
  const n = ops.length;
  if (n === 0) return true;
  const head = makeEntries(ops);
  const linearized = new BitSet(n);
  const words = randomWords(n);
  let hash = 0;
  const cache = new Map<string, Uint32Array[]>();
  const calls: { entry: Entry; state: State }[] = [];
  let state = model.init();
  let longest: number[] = [];
  let candidates: number[] = [];
  let steps = 0;

  // Remembers (linearized set, state); false if it was there already.
  const remember = (bits: BitSet, h: number, s: State): boolean => {
    const key = `${h}:${model.stateKey(s)}`;
    const seen = cache.get(key);
    if (seen === undefined) {
      cache.set(key, [bits.words.slice()]);
      return true;
    }
    for (const w of seen) if (bits.equals(w)) return false;
    seen.push(bits.words.slice());
    return true;
  };

  let entry = head.next;
  while (head.next !== undefined) {
    if (++steps % DEADLINE_CHECK_STEPS === 0 && Date.now() > deadline) return 'timeout';
    if (entry === undefined) throw new Error('linearizability search ran past the last event');
    if (entry.kind === CALL) {
      const op = ops[entry.id]!;
      const next = model.step(state, op.input, op.output);
      if (next.ok) {
        linearized.set(entry.id);
        const h = (hash ^ words[entry.id]!) >>> 0;
        if (remember(linearized, h, next.state)) {
          calls.push({ entry, state });
          state = next.state;
          hash = h;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized.clear(entry.id);
      }
      entry = entry.next;
      continue;
    }
    // A completion whose operation is not linearized yet: undo the last choice.
    if (calls.length > longest.length) {
      longest = calls.map((c) => c.entry.id);
      candidates = [];
      for (let e: Entry | undefined = head.next; e !== undefined && e.kind === CALL; e = e.next) candidates.push(e.id);
      // The operation that had to be linearized by now and could not be.
      if (!candidates.includes(entry.id)) candidates.push(entry.id);
    }
    const top = calls.pop();
    if (top === undefined) {
      if (longest.length === 0) {
        for (let e: Entry | undefined = head.next; e !== undefined && e.kind === CALL; e = e.next)
          candidates.push(e.id);
      }
      return { longest, candidates };
    }
    entry = top.entry;
    state = top.state;
    hash = (hash ^ words[entry.id]!) >>> 0;
    linearized.clear(entry.id);
    unlift(entry);
    entry = entry.next;
  }
  return true;
}
