// @ts-check
/** config — how long and how often each scenario measures: a full run, or --quick. */

/**
 * @typedef {object} Config
 * @property {number} rounds  rounds of every throughput, memory and migration scenario
 * @property {number} seconds  measured seconds of one load run
 * @property {number} warmup  unmeasured seconds before it
 * @property {number} idleConns  idle connections of the memory scenario
 * @property {number} reloads  reloads in the reload scenario
 * @property {number} reloadEvery  seconds between them
 * @property {number} startupTrials  trials of the startup scenario
 */

/**
 * configFor is the quick or the full configuration; BENCH_IDLE_CONNS sets the idle connection count
 * (1 to 50,000).
 * @param {boolean} quick
 * @param {NodeJS.ProcessEnv} env
 * @returns {Config}
 */
export function configFor(quick, env) {
  /** @type {Config} */
  const cfg = quick
    ? {
        rounds: 1,
        seconds: 1.5,
        warmup: 0.3,
        idleConns: 1000,
        reloads: 3,
        reloadEvery: 1.0,
        startupTrials: 2,
      }
    : {
        rounds: 3,
        seconds: 3,
        warmup: 1,
        idleConns: 10_000,
        reloads: 10,
        reloadEvery: 1.5,
        startupTrials: 15,
      };
  const { BENCH_IDLE_CONNS } = env;
  if (BENCH_IDLE_CONNS) cfg.idleConns = Math.max(1, Math.min(50_000, Number(BENCH_IDLE_CONNS)));
  return cfg;
}
