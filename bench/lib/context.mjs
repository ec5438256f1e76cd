// @ts-check
/**
 * context — what every scenario is given: the run's configuration, the tracker of its children, the
 * CPU pinning, the optional tools, the log and the failure recorder.
 */
/** @import { Config } from './config.mjs' */
/** @import { Cpus } from './cpu.mjs' */
/** @import { Tools } from './tools.mjs' */
/** @import { Tracker } from './tracker.mjs' */

/**
 * @typedef {object} Context
 * @property {boolean} quick  a --quick run: short, checks that every scenario runs and verifies
 * @property {Config} cfg
 * @property {Tracker} tracker  every child started must be tracked here
 * @property {Cpus} cpu
 * @property {Tools} tools
 * @property {(msg: string) => void} log
 * @property {(scenario: string, msg: string) => void} fail  records a failure (the run then exits 1)
 * @property {number} quickBusyConns  the busy migration's connections in a --quick run (BENCH_BUSY_CONNS)
 */

export {};
