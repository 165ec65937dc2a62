/** Small async helpers shared by the tests. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every item of an async iterable (e.g. a source's `frames()`), awaiting `each` after each one. */
export async function collect<T>(items: AsyncIterable<T>, each?: (item: T) => Promise<void>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) {
    out.push(x);
    if (each) await each(x);
  }
  return out;
}

/** Polls `check` until it returns a truthy value (which it resolves with) or `ms` pass. */
export async function waitFor<T>(check: () => T | Promise<T>, ms = 5000, what = 'condition'): Promise<Exclude<T, undefined | null | false | 0 | ''>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as Exclude<T, undefined | null | false | 0 | ''>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
