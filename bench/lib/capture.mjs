// @ts-check
/** capture — a tracked command run to its end, its output collected. */
/** @import { SpawnOptions } from 'node:child_process' */
/** @import { Tracker } from './tracker.mjs' */
import { spawn } from 'node:child_process';

/**
 * @typedef {object} Captured
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {string} out
 * @property {string} err
 */

/**
 * runCaptured runs a command to its end (SIGKILL after `ms`) and resolves with its exit and output;
 * a command that cannot start rejects.
 * @param {Tracker} tracker
 * @param {string} cmd
 * @param {string[]} args
 * @param {SpawnOptions} options
 * @param {number} ms
 * @param {(child: import('node:child_process').ChildProcess) => void} [started]  given the child once spawned
 * @returns {Promise<Captured>}
 */
export function runCaptured(tracker, cmd, args, options, ms, started) {
  const child = tracker.track(spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }));
  started?.(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}
