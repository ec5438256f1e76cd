// @ts-check
/** errors — the text of a thrown value. */

/**
 * messageOf is a thrown error's message, or the thrown value itself as a string.
 * @param {unknown} err
 * @returns {string}
 */
export function messageOf(err) {
  const message = /** @type {{ message?: unknown } | null | undefined} */ (err)?.message;
  return String(message ?? err);
}
