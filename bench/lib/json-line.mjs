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

/**
 * sayJson writes `o` as one JSON line on stdout: how a bench server tells the bench what it did.
 * @param {object} o
 */
export function sayJson(o) {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}
