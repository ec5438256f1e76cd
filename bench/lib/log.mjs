// @ts-check
/** log — the bench's progress lines, on stderr. */

/**
 * log writes one line to stderr, prefixed "bench: ".
 * @param {string} msg
 */
export function log(msg) {
  process.stderr.write(`bench: ${msg}\n`);
}
