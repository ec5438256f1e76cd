/** random — seeded randomness for tests whose failures must replay. */

/** mulberry32 is a small seeded generator: a failing run names its seed, and the same seed replays it. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** pick chooses one of `items` by its weight. */
export function pick<T>(random: () => number, items: Array<[number, T]>): T {
  const total = items.reduce((sum, [w]) => sum + w, 0);
  let r = random() * total;
  for (const [w, item] of items) {
    r -= w;
    if (r < 0) return item;
  }
  return items.at(-1)![1];
}
