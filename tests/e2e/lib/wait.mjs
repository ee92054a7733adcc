// Waiting on conditions in end-to-end tests: poll, never assert on time.
import assert from 'node:assert/strict';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * An `until(what, fn, ms = defaultMs)` that polls `fn` every 250 ms until it returns a truthy
 * value, and fails with `what` and the last value after `ms`.
 */
export function poller(defaultMs) {
  return async function until(what, fn, ms = defaultMs) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
      last = await fn();
      if (last) return last;
      if (Date.now() > deadline) assert.fail(`${what}: not reached (last: ${JSON.stringify(last)})`);
      await sleep(250);
    }
  };
}
