/** Waiting in tests, event by event: no Node-RED or broker here, so any spec can import it. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once check() holds (looked at every `pollMs`); after `ms` fails naming what it waited for. */
export async function until(what: string, check: () => boolean, ms: number, pollMs = 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}
