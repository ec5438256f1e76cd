// @ts-check
/**
 * cpu — CPU pinning: servers run on CPU 0, the load (and this process) on CPU 1, when the machine has
 * two cores and taskset.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';

/** @typedef {[string, string[]]} Command  a program and its arguments */

/**
 * @typedef {object} Cpus
 * @property {number} cores  how many CPUs this machine has
 * @property {boolean} pinned  whether commands are pinned (taskset works and there are two cores)
 * @property {(cmd: string, args: string[]) => Command} onServer  the command, pinned to CPU 0
 * @property {(cmd: string, args: string[]) => Command} onLoad  the command, pinned to CPU 1
 * @property {(cmd: string, args: string[]) => Command} onEvery  the command, free to use every CPU
 *   (this process runs on the load CPU, and its children would inherit that)
 */

/**
 * pinCpus finds out whether commands can be pinned and, if so, moves this process (all its threads)
 * to the load CPU.
 * @param {(msg: string) => void} log
 * @returns {Cpus}
 */
export function pinCpus(log) {
  const cores = os.cpus().length;
  const pinned = cores >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  if (!pinned) log('taskset is missing or this machine has one core: server and load are not pinned');
  else spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  /**
   * @param {string} cpus
   * @param {string} cmd
   * @param {string[]} args
   * @returns {Command}
   */
  const on = (cpus, cmd, args) => (pinned ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args]);
  return {
    cores,
    pinned,
    onServer: (cmd, args) => on('0', cmd, args),
    onLoad: (cmd, args) => on('1', cmd, args),
    onEvery: (cmd, args) => on(`0-${cores - 1}`, cmd, args),
  };
}
