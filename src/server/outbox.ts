// The raft loop's outgoing messages: most go out at once; those of a Ready that only applies
// entries wait until the responses to the clients of those entries have been written.
import { type Message, MessageType } from '../raft/index.ts';

export class Outbox {
  readonly #send: (messages: readonly Message[]) => void;
  /** Messages held until the next turn of the event loop. */
  #nextTurn: Message[] = [];
  #nextTurnScheduled = false;
  #closed = false;

  constructor(send: (messages: readonly Message[]) => void) {
    this.#send = send;
  }

  /**
   * Sends now, after what waits for the next turn (the order of those to each peer is kept).
   * A held commit notice (an append without entries: it only tells a follower the commit
   * index) is dropped when `messages` has an append to the same follower, which carries the
   * commit index too.
   */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    if (this.#nextTurn.length > 0) {
      let appendsTo: Set<bigint> | null = null;
      for (const m of messages) if (m.type === MessageType.MsgApp) (appendsTo ??= new Set()).add(m.to);
      const held = this.#nextTurn;
      this.#nextTurn = [];
      const kept = appendsTo === null ? held : held.filter((m) => !(isCommitNotice(m) && appendsTo.has(m.to)));
      if (kept.length > 0) this.#send(kept);
    }
    this.#send(messages);
  }

  /**
   * Holds messages until the next turn of the event loop, so that the responses to the entries
   * just applied are written first (a follower learns the new commit index a turn later).
   */
  sendAfterResponses(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const m of messages) this.#nextTurn.push(m);
    if (this.#nextTurn.length > 0 && !this.#nextTurnScheduled) {
      this.#nextTurnScheduled = true;
      setImmediate(this.#onNextTurn);
    }
  }

  /** Drops what is held: nothing is sent after close. */
  close(): void {
    this.#closed = true;
    this.#nextTurn = [];
  }

  readonly #onNextTurn = (): void => {
    this.#nextTurnScheduled = false;
    if (this.#nextTurn.length === 0 || this.#closed) return;
    const held = this.#nextTurn;
    this.#nextTurn = [];
    this.#send(held);
  };
}

function isCommitNotice(m: Message): boolean {
  return m.type === MessageType.MsgApp && m.entries.length === 0;
}
