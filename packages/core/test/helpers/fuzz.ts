/**
 * What every fuzz test shares: its size (NETPLEX_FUZZ_RUNS, default 5000), a seed printed with any
 * failure and replayable with NETPLEX_FUZZ_SEED, and a tiny seeded PRNG.
 */

/** fuzzRuns is how many inputs each fuzz test tries. */
export const fuzzRuns = Number(process.env.NETPLEX_FUZZ_RUNS ?? 5000);

/** fuzzSeed is this run's seed. */
export const fuzzSeed = Number(process.env.NETPLEX_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;

/** mulberry32 is a tiny seeded PRNG returning floats in [0, 1). */
export function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
