// @ts-check
/** json-line — one line of a child's output read as JSON. */

/**
 * jsonLine parses `line` as JSON, or gives undefined when it is not JSON.
 * @param {string} line
 * @returns {any}
 */
export function jsonLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}
