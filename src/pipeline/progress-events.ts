// Turns a callback-reporting task into an async generator: the events the task reports while it runs are yielded
// in order, then its result is returned. Lets the pipeline's generator report progress from inside one long await
// (the tiles of a large decode).

export async function* reportWhileRunning<E, T>(task: (report: (event: E) => void) => Promise<T>): AsyncGenerator<E, T> {
  const queue: E[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  const result = task((event) => {
    queue.push(event);
    wake?.();
  }).finally(() => {
    finished = true;
    wake?.();
  });
  result.catch(() => {}); // rethrown by `await result` below, not an unhandled rejection meanwhile
  try {
    for (;;) {
      while (queue.length) yield queue.shift()!;
      if (finished) return await result;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    // A consumer that stops early (generator.return) must not release what the task is still using.
    if (!finished) await result.catch(() => {});
  }
}
