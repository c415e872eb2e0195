// The bounded outbound queue of one peer: encoded messages waiting for the stream to take
// them. A ring buffer of fixed capacity (no array shifting, no growth), bounded both in
// messages and in bytes; a push that would exceed either bound is refused and the caller
// drops the message.

export class FrameQueue {
  readonly #items: (Uint8Array | undefined)[];
  readonly #bytesMax: number;
  #head = 0;
  #length = 0;
  #bytes = 0;

  constructor(messagesMax: number, bytesMax: number) {
    if (!Number.isInteger(messagesMax) || messagesMax < 1) throw new RangeError(`queue capacity ${messagesMax}`);
    if (!Number.isInteger(bytesMax) || bytesMax < 1) throw new RangeError(`queue byte bound ${bytesMax}`);
    this.#items = new Array<Uint8Array | undefined>(messagesMax).fill(undefined);
    this.#bytesMax = bytesMax;
  }

  get length(): number {
    return this.#length;
  }

  /** Bytes of the queued bodies. */
  get bytes(): number {
    return this.#bytes;
  }

  get capacity(): number {
    return this.#items.length;
  }

  /** Appends `item`; false (and nothing changed) when the queue is full in messages or bytes. */
  push(item: Uint8Array): boolean {
    if (this.#length === this.#items.length) return false;
    if (this.#bytes + item.byteLength > this.#bytesMax) return false;
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
    this.#bytes += item.byteLength;
    return true;
  }

  /** The oldest item, without removing it. */
  peek(): Uint8Array | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns the oldest item. */
  shift(): Uint8Array | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    this.#bytes -= item.byteLength;
    return item;
  }

  /** Drops everything; returns how many items were dropped. */
  clear(): number {
    const dropped = this.#length;
    while (this.#length > 0) this.shift();
    this.#head = 0;
    return dropped;
  }
}
