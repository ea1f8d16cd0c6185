// One way to bound a wait: the gateway's readiness probe and the worker's DNS and connect steps
// race a promise against a timer and must clear the timer after. (The gateway's request
// deadline re-arms its timer while a body arrives, so it keeps its own: gateway/http.ts.)

/**
 * Settles as `promise` does, or rejects with onTimeout()'s error once `ms` have passed,
 * whichever is first; the timer is cleared either way, so nothing is left to keep the process
 * alive. The promise itself is not cancelled: abort it from onTimeout when it can be.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
