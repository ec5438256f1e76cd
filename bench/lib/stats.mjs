// @ts-check
/** stats — medians, percentiles, min–max summaries and round-by-round ratios, and the round order. */

/**
 * A summary of the rounds: the median, the extremes and how many values there were.
 * @typedef {{ median: number, min: number, max: number, n: number }} Summary
 */

/**
 * finite keeps the finite numbers of `xs`.
 * @param {ReadonlyArray<unknown>} xs
 * @returns {number[]}
 */
const finite = (xs) =>
  /** @type {number[]} */ (xs.filter((x) => typeof x === 'number' && Number.isFinite(x)));

/**
 * median of the finite numbers of `xs`, or null when there are none.
 * @param {ReadonlyArray<unknown>} xs
 * @returns {number | null}
 */
export function median(xs) {
  const v = finite(xs).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * percentile `p` (0 to 1) of the finite numbers of `xs`, or null when there are none.
 * @param {ReadonlyArray<number>} xs
 * @param {number} p
 * @returns {number | null}
 */
export function percentile(xs, p) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.floor(p * v.length))];
}

/**
 * summary of the finite numbers of `xs`, or null when there are none.
 * @param {ReadonlyArray<unknown>} xs
 * @returns {Summary | null}
 */
export function summary(xs) {
  const v = finite(xs);
  return v.length
    ? { median: /** @type {number} */ (median(v)), min: Math.min(...v), max: Math.max(...v), n: v.length }
    : null;
}

/**
 * ratios pairs round r of `a` with round r of `b` (measured moments apart) and summarizes a/b.
 * @param {ReadonlyArray<number | null | undefined>} a
 * @param {ReadonlyArray<number | null | undefined>} b
 * @returns {Summary | null}
 */
export function ratios(a, b) {
  /** @type {number[]} */
  const out = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x != null && y != null && x > 0 && y > 0) out.push(x / y);
  }
  return summary(out);
}

/**
 * push appends `value` to the list at `obj[key]`, starting the list when needed.
 * @template T
 * @param {Record<string, T[]>} obj
 * @param {string} key
 * @param {T} value
 */
export function push(obj, key, value) {
  if (!obj[key]) obj[key] = [];
  obj[key].push(value);
}

/**
 * rotate is `xs` started at index `r` (wrapping): the order of the systems in round r.
 * @template T
 * @param {T[]} xs
 * @param {number} r
 * @returns {T[]}
 */
export const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]);
