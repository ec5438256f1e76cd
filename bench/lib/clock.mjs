// @ts-check
/** clock — waiting, and the monotonic clock that loadgen reports in. */

/**
 * sleep resolves after `ms` milliseconds.
 * @param {number} ms
 * @returns {Promise<void>}
 */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** nowNs reads CLOCK_MONOTONIC on Linux (the clock loadgen reports in), in nanoseconds. */
export const nowNs = () => process.hrtime.bigint();
