// The raft loop's outgoing messages: most go out at once. Of a Ready that commits entries, a
// commit notice to a follower that waits on it goes before this member applies; one to a
// follower that nothing waits on is held for the next append to carry; the rest waits until
// the responses to this member's clients of those entries have been written.
import { type Message, MessageType } from '../raft/index.ts';

/**
 * How long a commit notice may wait for an append to carry its commit index. Under a steady
 * client the next put's append comes sooner (a sequential put takes ~1 ms on three members);
 * an idle cluster's followers learn the commit index this much later.
 */
export const NOTICE_HOLD_MS = 1;

export class Outbox {
  readonly #send: (messages: readonly Message[]) => void;
  /** Messages held until the next turn of the event loop. */
  #nextTurn: Message[] = [];
  #nextTurnScheduled = false;
  /** Per follower, the latest commit notice held for an append to carry (or NOTICE_HOLD_MS). */
  readonly #notices = new Map<bigint, Message>();
  #noticeTimer: NodeJS.Timeout | undefined;
  /**
   * Per follower, an index it waits to see committed: a proposal or a read it forwarded (its
   * client waits for its apply). Notices to it are not held until one carries this index.
   */
  readonly #awaited = new Map<bigint, number>();
  #closed = false;

  constructor(send: (messages: readonly Message[]) => void) {
    this.#send = send;
  }

  /** Sends now, after what is held for the peers of `messages` (see #sendHeldFirst). */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    if (this.#nextTurn.length > 0 || this.#notices.size > 0) this.#sendHeldFirst(messages);
    this.#send(messages);
  }

  /**
   * Of a Ready that commits entries, before this member applies them: sends at once the commit
   * notices of followers that wait on a commit (a client there waits for that follower's
   * apply, not for this member's). Returns the other messages, for sendCommitted.
   */
  sendAwaited(messages: readonly Message[]): readonly Message[] {
    if (this.#closed || this.#awaited.size === 0) return messages;
    let awaited: Message[] | null = null;
    let rest: Message[] | null = null;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (isCommitNotice(m) && this.#isAwaited(m)) {
        if (rest === null) rest = messages.slice(0, i);
        (awaited ??= []).push(m);
      } else rest?.push(m);
    }
    if (awaited === null) return messages;
    this.send(awaited);
    return rest ?? [];
  }

  /**
   * Of a Ready that commits entries, after this member applied them. A commit notice is held
   * until the next message to its follower, or NOTICE_HOLD_MS: a follower applies an entry
   * when it learns of its commit, and with a client that writes one key after another (on
   * this member), the next append carries the commit a little later; each follower then reads
   * and answers one message per put, not two. The other messages go now, or on the next turn
   * of the event loop when `afterResponses` (the apply answered clients here: their responses
   * are written first).
   */
  sendCommitted(messages: readonly Message[], afterResponses: boolean): void {
    if (this.#closed) return;
    let now: Message[] | null = null;
    for (const m of messages) {
      if (isCommitNotice(m) && !this.#isAwaited(m)) this.#holdNotice(m);
      else if (afterResponses) this.#nextTurn.push(m);
      else (now ??= []).push(m);
    }
    if (now !== null) this.send(now);
    if (this.#nextTurn.length > 0 && !this.#nextTurnScheduled) {
      this.#nextTurnScheduled = true;
      setImmediate(this.#onNextTurn);
    }
  }

  /**
   * Notes that follower `from` waits to see `index` committed (a proposal or a read index it
   * forwarded): commit notices to it go out without the hold until one carries `index`.
   */
  awaitCommit(from: bigint, index: number): void {
    const known = this.#awaited.get(from);
    if (known === undefined || index > known) this.#awaited.set(from, index);
  }

  /** Drops what is held: nothing is sent after close. */
  close(): void {
    this.#closed = true;
    this.#nextTurn = [];
    this.#notices.clear();
    clearTimeout(this.#noticeTimer);
    this.#noticeTimer = undefined;
  }

  /** Whether the follower of notice `m` waits on a commit; forgets the wait once `m` carries it. */
  #isAwaited(m: Message): boolean {
    const index = this.#awaited.get(m.to);
    if (index === undefined) return false;
    if (m.commit >= index) this.#awaited.delete(m.to);
    return true;
  }

  /**
   * Sends what waits for the next turn (the order of messages to each peer is kept), and the
   * commit notices held for the peers of `messages`. A commit notice (an append without
   * entries: it only tells a follower the commit index) is dropped instead when an append to
   * its follower comes first in `messages`, which carries the commit index too.
   */
  #sendHeldFirst(messages: readonly Message[]): void {
    let first: Message[] | null = null;
    if (this.#nextTurn.length > 0) {
      first = this.#nextTurn.filter((m) => !(isCommitNotice(m) && hasAppendTo(messages, m.to)));
      this.#nextTurn = [];
    }
    if (this.#notices.size > 0) {
      for (const m of messages) {
        const notice = this.#notices.get(m.to);
        if (notice === undefined) continue;
        this.#notices.delete(m.to);
        if (m.type !== MessageType.MsgApp) (first ??= []).push(notice);
      }
    }
    if (first !== null && first.length > 0) this.#send(first);
  }

  #holdNotice(m: Message): void {
    this.#notices.set(m.to, m);
    if (this.#noticeTimer === undefined) {
      this.#noticeTimer = setTimeout(this.#onNoticeTimer, NOTICE_HOLD_MS);
      this.#noticeTimer.unref();
    }
  }

  readonly #onNextTurn = (): void => {
    this.#nextTurnScheduled = false;
    if (this.#nextTurn.length === 0 || this.#closed) return;
    const held = this.#nextTurn;
    this.#nextTurn = [];
    this.#send(held);
  };

  readonly #onNoticeTimer = (): void => {
    this.#noticeTimer = undefined;
    if (this.#notices.size === 0 || this.#closed) return;
    const notices = [...this.#notices.values()];
    this.#notices.clear();
    this.#send(notices);
  };
}

function hasAppendTo(messages: readonly Message[], to: bigint): boolean {
  for (const m of messages) if (m.type === MessageType.MsgApp && m.to === to) return true;
  return false;
}

function isCommitNotice(m: Message): boolean {
  return m.type === MessageType.MsgApp && m.entries.length === 0;
}
