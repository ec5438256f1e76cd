// @ts-check
/** proc — what /proc says about a process: its command line, its descendants, its resident memory. */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * cmdlineOf is the command line of `pid` (arguments joined by spaces), or undefined once it is gone.
 * @param {number} pid
 * @returns {string | undefined}
 */
export function cmdlineOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/**
 * descendantsOf lists the live processes below `roots` (children, their children, ...), read from the
 * parent pids in /proc: a supervisor's workers, a PM2 daemon's apps.
 * @param {number[]} roots
 * @returns {number[]}
 */
export function descendantsOf(roots) {
  /** @type {Map<number, number[]>} parent pid -> child pids */
  const below = new Map();
  /** @type {string[]} */
  let names = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after its last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const kids = below.get(ppid) ?? [];
    kids.push(Number(name));
    below.set(ppid, kids);
  }
  /** @type {number[]} */
  const out = [];
  const queue = [...roots];
  while (queue.length) {
    const parent = /** @type {number} */ (queue.shift());
    for (const pid of below.get(parent) ?? []) {
      if (out.includes(pid) || roots.includes(pid)) continue;
      out.push(pid);
      queue.push(pid);
    }
  }
  return out;
}

/**
 * rssKb is the resident memory (VmRSS) of `pid`, in KB.
 * @param {number} pid
 * @returns {number}
 */
export function rssKb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}
