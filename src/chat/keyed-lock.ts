/**
 * In-process mutual exclusion per key (a conversation id). Chat holds a conversation's lock from
 * choosing a message id until the message is handed to the sockets, so every socket receives a
 * conversation's messages in id order (docs/chat.md, "Ordering"). Several keys are taken in sorted
 * order, so two holders of overlapping sets cannot deadlock.
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    try {
      for (const key of [...new Set(keys)].sort()) releases.push(await this.#acquire(key));
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  /** Keys held or awaited now (for tests and metrics). */
  get size(): number {
    return this.#tails.size;
  }

  #acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    return previous.then(() => () => {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
  }
}
