// @ts-check
/** failures — what went wrong in a run: each is logged, listed in the results, and makes the run exit 1. */

/**
 * failureRecorder gives the list of failures and the function that records one.
 * @param {(msg: string) => void} log
 * @returns {{ failures: string[], fail: (scenario: string, msg: string) => void }}
 */
export function failureRecorder(log) {
  /** @type {string[]} */
  const failures = [];
  return {
    failures,
    fail: (scenario, msg) => {
      failures.push(`${scenario}: ${msg}`);
      log(`FAIL ${scenario}: ${msg}`);
    },
  };
}
