// reportWhileRunning: events reported by a running task come out of the generator in order, then its result.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportWhileRunning } from '../src/pipeline/progress-events.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

async function drain<E, T>(gen: AsyncGenerator<E, T>): Promise<{ events: E[]; result: T }> {
  const events: E[] = [];
  for (;;) {
    const r = await gen.next();
    if (r.done) return { events, result: r.value };
    events.push(r.value);
  }
}

test('yields every reported event in order (several per wake-up, and after waits), then returns the result', async () => {
  const { events, result } = await drain(
    reportWhileRunning<number, string>(async (report) => {
      report(1);
      report(2); // two before the generator runs again
      await tick();
      report(3);
      await tick();
      report(4);
      return 'done';
    }),
  );
  assert.deepEqual(events, [1, 2, 3, 4]);
  assert.equal(result, 'done');
});

test('a failing task rejects the generator after the events it reported', async () => {
  const gen = reportWhileRunning<string, void>(async (report) => {
    report('a');
    await tick();
    throw new Error('tile 2 failed');
  });
  assert.deepEqual(await gen.next(), { value: 'a', done: false });
  await assert.rejects(gen.next(), /tile 2 failed/);
});

test('stopping early waits for the task, so nothing it uses is released under it', async () => {
  let finished = false;
  const gen = reportWhileRunning<number, void>(async (report) => {
    report(1);
    await tick();
    await tick();
    finished = true;
  });
  await gen.next();
  await gen.return(undefined);
  assert.equal(finished, true);
});
