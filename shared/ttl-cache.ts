// The small per-process cache in front of a hot lookup (API keys at the gateway, signing secrets
// at the worker): an entry is fresh for ttlMs, and the whole map is dropped when it reaches
// `max` entries, which bounds memory without LRU bookkeeping (a full map means thousands of
// distinct keys within one TTL, where one lookup each is what we would pay anyway).
export type TtlCache<V> = {
  /** The value while it is fresh; undefined when absent or older than the TTL. */
  get(key: string): V | undefined;
  /** The value however old: what to fall back on while the source cannot be asked. */
  stale(key: string): V | undefined;
  set(key: string, value: V): void;
};

export function createTtlCache<V>(o: { ttlMs: number; max: number; now: () => number }): TtlCache<V> {
  const map = new Map<string, { at: number; value: V }>();
  return {
    get(key) {
      const e = map.get(key);
      return e && o.now() - e.at < o.ttlMs ? e.value : undefined;
    },
    stale: (key) => map.get(key)?.value,
    set(key, value) {
      if (map.size >= o.max && !map.has(key)) map.clear();
      map.set(key, { at: o.now(), value });
    },
  };
}
