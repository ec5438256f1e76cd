// @ts-check
/** format — how results.md writes numbers: integers with separators, fixed decimals, median (min–max). */
/** @import { Summary } from './stats.mjs' */

/** @typedef {number | null | undefined} Num */

/** @param {Num} x */
export const fmtInt = (x) => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
/** @param {Num} x */
export const fmt1 = (x) => (x === null || x === undefined ? '–' : x.toFixed(1));
/** @param {Num} x */
export const fmt2 = (x) => (x === null || x === undefined ? '–' : x.toFixed(2));
/**
 * range is a summary as "median (min–max)", each formatted with `f`.
 * @param {Summary | null | undefined} s
 * @param {(x: Num) => string} f
 */
export const range = (s, f) => (s ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : '–');
