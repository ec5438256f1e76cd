/**
 * env — the supervisor's way to the world outside its own state: starting worker processes, timers,
 * the clock, and reading files. Real by default; unit tests pass fakes (a child process that speaks
 * the worker's side of the IPC protocol, a clock they advance), so that every interleaving of
 * reloads, restarts, exits and stops can be driven without real processes or waiting.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { forkWorker, type WorkerForkOptions } from './fork-worker.js';

/** TimerHandle is what setTimeout returns, to be given to clearTimeout. */
export type TimerHandle = { readonly __timer: unique symbol } | NodeJS.Timeout;

/** SupervisorEnv is everything the supervisor and its workers' handles do outside their state. */
export interface SupervisorEnv {
  /** fork starts a worker process (see forkWorker); its `kill()` is how the worker is killed. */
  fork(opts: WorkerForkOptions): ChildProcess;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(timer: TimerHandle | undefined): void;
  /** now is the time in ms since the epoch. */
  now(): number;
  /** readFile reads a text file (the user and group databases). */
  readFile(path: string): string;
}

/** realEnv is the real world: processes, timers, the clock and the file system. */
export const realEnv: SupervisorEnv = {
  fork: (opts) => forkWorker(opts),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
  now: () => Date.now(),
  readFile: (path) => readFileSync(path, 'utf8'),
};
