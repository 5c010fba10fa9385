/**
 * Runs calls that share a key one after another, calls with different keys in parallel.
 *
 * The block service sends each IP's Updates through it: concurrent Updates to one workflow make the
 * Temporal server drop speculative workflow tasks ("Task not found when completing"), and the Updates in a
 * dropped task wait out the 10 s workflow task timeout. Queued here, each takes one round trip.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    // The last call of a key removes the entry, so idle keys hold no memory.
    void tail.then(() => this.tails.get(key) === tail && this.tails.delete(key));
    return result;
  }

  /** Keys with a call queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
