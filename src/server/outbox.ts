// The raft loop's outgoing messages: most go out at once; those of a Ready that only applies
// entries wait until the responses to the clients of those entries have been written.
import { type Message, MessageType } from '../raft/index.ts';

/**
 * How long a leader holds a commit notice (an append without entries: it only tells a follower
 * the new commit index) for the next append to the same follower to carry instead. Under a
 * stream of writes the notice is almost always replaced, which saves the follower a message,
 * a Ready and a response per write; after the last write of a burst, followers learn the commit
 * index at most this much later (heartbeats and read-index rounds carry it too).
 */
export const COMMIT_NOTICE_DELAY_MS = 1;

export class Outbox {
  readonly #send: (messages: readonly Message[]) => void;
  readonly #noticeDelayMs: number;
  /** Messages held until the next turn of the event loop. */
  #nextTurn: Message[] = [];
  #nextTurnScheduled = false;
  /** The newest commit notice held for each follower. */
  readonly #notices = new Map<bigint, Message>();
  #noticeTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(send: (messages: readonly Message[]) => void, noticeDelayMs = COMMIT_NOTICE_DELAY_MS) {
    this.#send = send;
    this.#noticeDelayMs = noticeDelayMs;
  }

  /**
   * Sends now, after what waits for the next turn (the order of those to each peer is kept).
   * An append replaces the commit notice held for its follower: it carries the commit index too.
   */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    if (this.#notices.size > 0) {
      for (const m of messages) if (m.type === MessageType.MsgApp) this.#notices.delete(m.to);
    }
    if (this.#nextTurn.length > 0) this.#sendNextTurn();
    this.#send(messages);
  }

  /**
   * Holds messages while the responses to the entries just applied are written: until the next
   * turn of the event loop, and commit notices up to the notice delay (see send).
   */
  sendAfterResponses(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const m of messages) {
      if (m.type === MessageType.MsgApp && m.entries.length === 0) {
        this.#notices.set(m.to, m);
        this.#noticeTimer ??= setTimeout(this.#sendNotices, this.#noticeDelayMs);
      } else {
        this.#nextTurn.push(m);
      }
    }
    if (this.#nextTurn.length > 0 && !this.#nextTurnScheduled) {
      this.#nextTurnScheduled = true;
      setImmediate(this.#onNextTurn);
    }
  }

  /** Drops what is held: nothing is sent after close. */
  close(): void {
    this.#closed = true;
    if (this.#noticeTimer !== null) clearTimeout(this.#noticeTimer);
    this.#noticeTimer = null;
    this.#notices.clear();
    this.#nextTurn = [];
  }

  readonly #onNextTurn = (): void => {
    this.#nextTurnScheduled = false;
    if (this.#nextTurn.length > 0 && !this.#closed) this.#sendNextTurn();
  };

  #sendNextTurn(): void {
    const held = this.#nextTurn;
    this.#nextTurn = [];
    this.#send(held);
  }

  readonly #sendNotices = (): void => {
    this.#noticeTimer = null;
    if (this.#notices.size === 0 || this.#closed) return;
    const notices = [...this.#notices.values()];
    this.#notices.clear();
    this.#send(notices);
  };
}
