// @ts-check
/**
 * tracker — every process the bench started, tracked by pid, and how they are ended: one by one when a
 * scenario is done with them, and all at once on any exit path, so that no server outlives the run.
 */
/** @import { ChildProcess } from 'node:child_process' */
import { cmdlineOf, descendantsOf } from './proc.mjs';

export class Tracker {
  /** @type {Map<number, ChildProcess>} Every process this run started and has not seen exit, by pid. */
  children = new Map();
  /**
   * @type {Map<number, string>} Pids learned of that are not direct children (netplex workers,
   * watch-mode children, PM2's daemon and apps), each with a string its /proc cmdline must contain
   * before it is killed.
   */
  grandchildren = new Map();

  /**
   * track records `child` until it exits.
   * @template {ChildProcess} C
   * @param {C} child
   * @returns {C}
   */
  track(child) {
    const pid = child.pid;
    if (pid === undefined) return child;
    this.children.set(pid, child);
    child.once('exit', () => this.children.delete(pid));
    return child;
  }

  /**
   * mark records `pid`, not a direct child, to be killed while its cmdline contains `mark`.
   * @param {number} pid
   * @param {string} mark
   */
  mark(pid, mark) {
    this.grandchildren.set(pid, mark);
  }

  /**
   * killStray ends known grandchildren (those whose mark is `only`, or all), but only when that pid
   * still runs what we started: a pid the kernel reused for something else is left alone.
   * @param {NodeJS.Signals} signal
   * @param {string} [only]
   */
  killStray(signal, only) {
    for (const [pid, mark] of this.grandchildren) {
      if (only !== undefined && mark !== only) continue;
      const cmd = cmdlineOf(pid);
      if (cmd === undefined) this.grandchildren.delete(pid);
      else if (cmd.includes(mark)) {
        try {
          process.kill(pid, signal);
        } catch {}
      }
    }
  }

  /** killEverything sends SIGKILL to every tracked process and everything that runs below them. */
  killEverything() {
    // What runs below our processes is found before they die (their children are then re-parented).
    const ours = [...this.grandchildren]
      .filter(([pid, mark]) => cmdlineOf(pid)?.includes(mark))
      .map(([pid]) => pid);
    const below = descendantsOf([...this.children.keys(), ...ours]);
    for (const child of this.children.values()) {
      try {
        child.kill('SIGKILL');
      } catch {}
    }
    this.killStray('SIGKILL');
    for (const pid of below) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

/**
 * stopChild sends SIGTERM, waits up to `ms`, then SIGKILL; resolves once it exited.
 * @param {ChildProcess} child
 * @param {number} [ms]
 * @returns {Promise<void>}
 */
export async function stopChild(child, ms = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try {
    child.kill('SIGTERM');
  } catch {}
  const timer = setTimeout(() => {
    try {
      child.kill('SIGKILL');
    } catch {}
  }, ms);
  await exited;
  clearTimeout(timer);
}
