// @ts-check
/**
 * results — the run's results object (bench/results.json), merging a partial run into an earlier full
 * one, and writing the .json and .md files.
 */
/** @import { Config } from './config.mjs' */
/** @import { Cpus } from './cpu.mjs' */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { markdown } from './markdown.mjs';

/**
 * @typedef {object} Machine
 * @property {number} cores
 * @property {string} cpu
 * @property {number} memory_gb
 * @property {string} node
 * @property {string} kernel
 * @property {boolean} pinned
 */

/**
 * A run's results. `scenarios` holds each scenario's output by name, or `{ error }` when it threw;
 * after a merge some come from an earlier results.json, so their shape is not checked here.
 * @typedef {object} Results
 * @property {string} date
 * @property {'quick' | 'full'} mode
 * @property {Machine} machine
 * @property {Config} config
 * @property {string[]} skipped
 * @property {Record<string, any>} scenarios
 * @property {string[]} [failures]
 * @property {number} [seconds]
 * @property {{ scenario: string, date: string, machine: Machine }[]} [reran]
 */

/**
 * createResults starts the results of a run beginning now.
 * @param {{ quick: boolean, cfg: Config, cpu: Cpus, skipped: string[] }} run
 * @returns {Results}
 */
export function createResults({ quick, cfg, cpu, skipped }) {
  return {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: {
      cores: cpu.cores,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      memory_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      kernel: os.release(),
      pinned: cpu.pinned,
    },
    config: cfg,
    skipped,
    scenarios: {},
  };
}

/**
 * mergeInto keeps the scenarios of an earlier full run in `file` that this one (--only) did not run
 * again: the earlier date, machine, duration and failures stay, and `reran` records which scenarios are newer,
 * and when.
 * @param {Results} results
 * @param {string} file
 */
export function mergeInto(results, file) {
  /** @type {Results | undefined} */
  let earlier;
  try {
    earlier = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (earlier?.mode !== 'full' || typeof earlier.scenarios !== 'object') return;
  const ran = Object.keys(results.scenarios);
  const reran = (earlier.reran ?? []).filter((x) => !ran.includes(x.scenario));
  for (const scenario of ran) reran.push({ scenario, date: results.date, machine: results.machine });
  const failures = (earlier.failures ?? []).filter((f) => !ran.some((s) => f.startsWith(`${s}:`)));
  Object.assign(results, {
    date: earlier.date,
    machine: earlier.machine,
    config: earlier.config,
    seconds: earlier.seconds,
    scenarios: { ...earlier.scenarios, ...results.scenarios },
    failures: [...failures, ...(results.failures ?? [])],
    reran,
  });
}

/**
 * writeResults writes `base`.json and `base`.md.
 * @param {Results} results
 * @param {string} base
 */
export function writeResults(results, base) {
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown(results));
}

/**
 * keepSoak carries the soak of the results in `file` (a `--soak` run's) over into a full run, which
 * does not run it.
 * @param {Results} results
 * @param {string} file
 */
export function keepSoak(results, file) {
  try {
    /** @type {Results} */
    const earlier = JSON.parse(readFileSync(file, 'utf8'));
    const soak = earlier.scenarios?.soak;
    if (!soak) return;
    results.scenarios.soak = soak;
    results.reran = (earlier.reran ?? []).filter((x) => x.scenario === 'soak');
    const failures = (earlier.failures ?? []).filter((f) => f.startsWith('soak:'));
    results.failures = [...(results.failures ?? []), ...failures];
  } catch {}
}
