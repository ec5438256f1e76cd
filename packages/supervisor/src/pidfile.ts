/**
 * pidfile — Net::Server's pid_file: refused while a live process holds it, replaced when the process
 * it names is gone, written atomically (temp file in the same directory, then rename), removed on
 * every exit path the supervisor controls.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { SupervisorError } from './errors.js';

/** PidFileState is what an existing pid file says. */
export type PidFileState =
  | { kind: 'absent' }
  | { kind: 'live'; pid: number }
  | { kind: 'stale'; pid: number | undefined };

/** isAlive tells whether a process exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** readPidFile reads a pid file: absent, naming a live process, or stale (dead process or garbage). */
export function readPidFile(path: string): PidFileState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw new SupervisorError('SUP_ERR_PIDFILE', `pid_file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = m ? Number(m[1]) : undefined;
  if (pid !== undefined && pid !== process.pid && isAlive(pid)) return { kind: 'live', pid };
  return { kind: 'stale', pid };
}

/**
 * checkPidFile refuses to start while the pid file names a live process; it returns the stale pid (to log)
 * when it names a dead one.
 */
export function checkPidFile(path: string): { stale?: number | undefined } {
  const state = readPidFile(path);
  if (state.kind === 'live') {
    throw new SupervisorError(
      'SUP_ERR_PIDFILE_LOCKED',
      `already running, pid ${state.pid} (pid_file ${path})`,
    );
  }
  return state.kind === 'stale' ? { stale: state.pid } : {};
}

/** writePidFile writes this process's pid atomically. */
export function writePidFile(path: string, pid = process.pid): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw new SupervisorError('SUP_ERR_PIDFILE', `pid_file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** removePidFile removes the pid file if it still names this process. */
export function removePidFile(path: string, pid = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path);
  } catch {
    // Already gone, or unreadable: nothing of ours to remove.
  }
}
