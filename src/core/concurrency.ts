// Bounded parallelism (`--parallel`). Pure control flow, no I/O of its own.

/**
 * Run `fn` over `items` with at most `limit` calls in flight; results keep the
 * items' order. On the first rejection no new item is started, the ones in
 * flight are awaited (so nothing keeps running unobserved behind the caller's
 * back), and then the first error is thrown. Callers that want every node's
 * outcome catch inside `fn`.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency limit must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
  return results;
}
